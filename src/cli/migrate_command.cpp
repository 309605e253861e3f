#include "cli/migrate_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/build_info.hpp"
#include "cli/common.hpp"
#include "cli/control.hpp"
#include "cli/metrics_page.hpp"
#include "cli/preflight.hpp"
#include "cli/progress.hpp"
#include "cli/signals.hpp"
#include "core/log.hpp"
#include "core/shard.hpp"
#include "core/utc_time.hpp"
#include "engine/audit.hpp"
#include "engine/db_session.hpp"
#include "engine/lag_watch.hpp"
#include "engine/migration.hpp"
#include "engine/rows.hpp"
#include "engine/s3_store.hpp"
#include "metrics/server.hpp"

namespace assetmv::cli {

namespace {

// VmHWM from /proc/self/status, in bytes; nullopt where there is none.
std::optional<std::uint64_t> peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    const auto digits = line.find_first_of("0123456789");
    std::uint64_t kib = 0;
    if (digits == std::string::npos ||
        std::from_chars(line.data() + digits, line.data() + line.size(), kib).ec != std::errc())
      return std::nullopt;
    return kib * 1024;
  }
  return std::nullopt;
}

// A replica that takes longer than this to say its lag is as good as
// lagging: the watch gives up on the answer and counts it unreadable.
constexpr int kLagAnswerTimeoutMs = 5'000;
// How fresh /metrics is: scrapers ask every few seconds at the most.
constexpr std::chrono::milliseconds kMetricsInterval{1'000};

struct MigrateArgs {
  CommonOptions common;
  bool keep_source = false;
  bool rollback = false;  // rows back to the legacy prefix; nothing copied or deleted
  bool delete_versions = false;
  bool dry_run = false;
  std::string report_file;
  std::uint64_t multipart_threshold = s3::kMaxSingleCopyBytes;
  std::uint64_t memory_budget = engine::kDefaultMemoryBudget;
  std::string progress = "auto";
  int batch_time_ms = 100;
  std::string control_file;
  std::string pause_file;
  std::string metrics_addr;
  double max_replica_lag_s = 0;
  double delete_grace_s = 0;
  engine::Prices prices;
  double prefix_write_rate = engine::Rates{}.prefix_writes_per_s;
  std::vector<std::string> replica_dbs;
  double metrics_linger_s = 0;
  std::string storage_class;  // empty: each copy keeps its source's class
  s3::WriteOptions write;     // --acl, --sse, --sse-kms-key-id
  std::string shard;          // --shard K/N
  std::uint32_t shards = 0;   // --shards N: K from the environment
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The run's own requests: those the preflight made are in its checks.
nlohmann::json requests_json(const Context& c, const s3::ClientStats& preflight) {
  const auto run = s3::stats_since(c.s3->stats(), preflight);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [op, st] : run.by_operation)
    j[op] = {{"requests", st.requests}, {"retries", st.retries}, {"throttled", st.throttled}, {"failed", st.failed}};
  j["total"] = {{"requests", run.total.requests},   {"retries", run.total.retries},
                {"throttled", run.total.throttled}, {"resigned", run.resigned},
                {"redirected", run.redirected},     {"connections_opened", c.http->stats().connections_opened}};
  return j;
}

// Where each side's keys came from and how their refreshes went.
nlohmann::json credentials_json(const s3::Bucket& b) {
  const auto& src = *b.credentials;
  nlohmann::json j = {{"from", src.description()},
                      {"refreshable", src.refreshable()},
                      {"refreshes", src.stats().refreshes},
                      {"refresh_failures", src.stats().failures}};
  if (src.stats().expires) j["expires"] = format_utc_time(*src.stats().expires);
  return j;
}

// What each store lacks, as the run found out (or knew: GCS).
nlohmann::json store_json(const Context& c) {
  auto caps = [](const s3::Capabilities& k) {
    return nlohmann::json{
        {"multi_object_delete", k.multi_delete}, {"upload_part_copy", k.part_copy}, {"object_tagging", k.tagging}};
  };
  nlohmann::json j = {{"legacy", caps(c.s3->capabilities(c.source_bucket))},
                      {"dest", caps(c.s3->capabilities(c.dest_bucket))}};
  if (!c.s3->learned_regions().empty()) j["regions_learned"] = c.s3->learned_regions();
  return j;
}

// Written to a temporary name and renamed, so a reader never sees half a report.
void write_report(const std::string& path, const nlohmann::json& report) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << report.dump(2) << "\n";
    if (!out) {
      logging::error("report.write", fmt::format("cannot write report to {}", path));
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    logging::error("report.write", fmt::format("cannot rename report into {}", path));
}

bool progress_on_terminal(const MigrateArgs& a) {
  if (a.progress == "always") return true;
  if (a.progress == "never") return false;
  return isatty(STDERR_FILENO) != 0;
}

// Source and destination the other way round: the locations and what
// reaches each (endpoint, profile, region).
void swap_sides(CommonOptions& c) {
  std::swap(c.source, c.dest);
  std::swap(c.source_endpoint, c.dest_endpoint);
  std::swap(c.source_profile, c.dest_profile);
  std::swap(c.source_region, c.dest_region);
}

// One migrate or verify command: the setup and preflight both share, then
// each one's own half, and the report either way.
class CommandRun {
 public:
  CommandRun(const MigrateArgs& a, bool verify) : a_(a), verify_(verify), command_(verify ? "verify" : "migrate") {}

  int run() {
    init_logging(a_.common);
    install_stop_handlers();
    if (auto code = set_up()) return *code;
    describe();
    Checks checks;
    if (auto code = check_before_start(checks)) return *code;
    warn_about_settings();

    ProgressDisplay display(command_, progress_on_terminal(a_));
    display_ = &display;
    ControlFiles control(a_.control_file, a_.pause_file, shard_.index, shard_.count);
    if (!control_files_usable(control)) return kExitUsage;
    const engine::Hooks hooks = make_hooks(control);
    log_start();

    engine::S3Store store(*ctx_->s3, ctx_->source_bucket, ctx_->dest_bucket, a_.write);
    engine::DbRows rows(*db_);
    const auto mo = migration_options(checks);
    return verify_ ? audit(store, rows, mo, hooks, display) : migrate(store, rows, mo, hooks, display);
  }

 private:
  // The shard, the clients and the database session, and /metrics: what
  // both commands need before the preflight. An exit code if it cannot be.
  std::optional<int> set_up() {
    if (auto s = resolve_shard(); !s) {
      logging::error("config.shard", s.error().message);
      return kExitUsage;
    } else {
      shard_ = *s;
    }
    // Every rate the operator gives is the whole run's: each of N shards
    // takes its share, so N workers together stay under it.
    CommonOptions common = a_.common;
    common.max_rate = rate_share(a_.common.max_rate);
    // A rollback is a run the other way round that only moves rows: from
    // the destination prefix back onto the legacy objects still there.
    if (a_.rollback) swap_sides(common);
    auto ctx = make_context(common);
    if (!ctx) {
      logging::error("config", ctx.error().message);
      return kExitUsage;
    }
    context_.emplace(std::move(*ctx));
    ctx_ = &*context_;
    if (!a_.write.sse_kms_key_id.empty() && a_.write.sse != "aws:kms") {
      logging::error("config", "--sse-kms-key-id names a KMS key: it needs --sse aws:kms");
      return kExitUsage;
    }
    if (!start_metrics()) return kExitUsage;
    db_options_.answer_timeout_ms = a_.common.stall_timeout_s * 1000;  // the same patience as for S3
    db_session_.emplace(*ctx_->loop, a_.common.db, ctx_->table, RetryPolicy{}, db_options_);
    db_ = &*db_session_;
    return std::nullopt;
  }

  // The report's head: what runs, against what, with which settings.
  void describe() {
    out_ = {{"command", command_},
            {"version", kVersion},
            {"commit", kCommit},
            {"started_at", utc_now()},
            {"source", a_.rollback ? ctx_->dest.to_string() : ctx_->source.to_string()},
            {"dest", a_.rollback ? ctx_->source.to_string() : ctx_->dest.to_string()},
            {"table", ctx_->table.display()},
            {"db", db_->describe()}};
    if (verify_) return;
    out_["shard"] = {{"index", shard_.index}, {"count", shard_.count}, {"max_rate", rate_share(a_.common.max_rate)}};
    out_["dry_run"] = a_.dry_run;
    if (a_.rollback) {
      out_["rollback"] = true;
      return;
    }
    out_["keep_source"] = a_.keep_source;
    out_["delete_grace_seconds"] = a_.delete_grace_s;
    out_["delete_versions"] = a_.delete_versions;
    out_["writes"] = {{"storage_class", a_.storage_class.empty() ? "as listed" : a_.storage_class},
                      {"acl", a_.write.acl.empty() ? "bucket default (private)" : a_.write.acl},
                      {"sse", a_.write.sse.empty() ? "bucket default" : a_.write.sse}};
  }

  // The preflight and the replica-lag watch: either failing is exit 2, with
  // the report saying why.
  std::optional<int> check_before_start(Checks& checks) {
    const bool writes = !verify_ && !a_.dry_run && !a_.rollback;
    const bool deletes = writes && !a_.keep_source;
    const bool updates_rows = a_.rollback && !a_.dry_run;
    const auto pf =
        preflight(*ctx_, *db_, {writes, updates_rows, deletes, writes && a_.delete_versions, a_.write}, checks);
    preflight_stats_ = ctx_->s3->stats();
    out_["preflight"] = {{"checks", checks.list}, {"requests", preflight_stats_.total.requests}};
    if (checks.legacy_versioning) {
      // Deleted legacy objects stay as noncurrent versions (or may: unknown).
      out_["legacy_versioning"] = *checks.legacy_versioning;
      out_["legacy_versions_remain"] = !checks.legacy_versioning->empty() && !a_.delete_versions;
    }
    std::optional<Error> failed;
    if (!pf) {
      failed = pf.error();
    } else if (auto lag = start_lag_watch(db_options_); !lag) {
      failed = lag.error();
    }
    if (!failed) return std::nullopt;
    logging::error("preflight", failed->message, {{"kind", to_string(failed->kind)}});
    out_["error"] = failed->message;  // already names the underlying error and its code
    const int code = refusal_exit_code(*failed);
    return finish(code, code == kExitUnavailable ? "unavailable" : "preflight_failed");
  }

  void warn_about_settings() const {
    if (!verify_ && multipart_always())
      logging::warn("config.sse_multipart",
                    "--sse: every copy goes through the multipart path (UploadPartCopy), about 4 requests per "
                    "object instead of 1: off AWS because Ceph RGW 16 stores a CopyObject unencrypted whatever it "
                    "is asked; on AWS with aws:kms because a KMS copy's ETag is no MD5, and the multipart copy "
                    "carries the source's ETag for a later run to prove it identical",
                    {{"endpoint", ctx_->dest_bucket.endpoint.authority()}});
    if (!ctx_->source.prefix.empty() && ctx_->source.prefix.back() != '/')
      logging::warn("config.prefix", fmt::format("source prefix {:?} has no trailing '/': it also matches longer names",
                                                 ctx_->source.prefix));
  }

  // A control file that is there and wrong at the start is a mistake to fix
  // before anything moves; later, a typo is reported and ignored.
  static bool control_files_usable(ControlFiles& control) {
    if (!control.any()) return true;
    const Control first = control.poll();
    if (first.problems.empty()) return true;
    logging::error("config.control_file", first.problems.front() + "; fix it and run again");
    return false;
  }

  engine::Hooks make_hooks(ControlFiles& control) {
    engine::Hooks hooks;
    hooks.stop_requested = [] { return stop_requested(); };
    hooks.on_progress = [this](const engine::Progress& p) {
      display_->update(p);
      progress_ = p;
      publish_metrics(false);
    };
    if (control.any() || lag_)
      hooks.pause_requested = [this, &control] { return pause_reason(control.any() ? &control : nullptr); };
    return hooks;
  }

  void log_start() const {
    logging::info(fmt::format("{}.start", command_),
                  fmt::format("{} {} -> {}{}{}", command_, ctx_->source.to_string(), ctx_->dest.to_string(),
                              shard_.whole() ? "" : fmt::format(", shard {}", shard_.to_string()),
                              a_.dry_run ? " (dry run: nothing will change)" : ""),
                  {{"table", ctx_->table.display()},
                   {"db", db_->describe()},
                   {"credentials", ctx_->credentials_source},
                   {"shard", shard_.to_string()}});
  }

  // The operator's control files, polled each tick: the request-rate cap is
  // applied here; the pause goes to the engine.
  std::optional<std::string> steer(ControlFiles& control) {
    const Control c = control.poll();
    for (const auto& p : c.problems) logging::warn("control.ignored", p + "; ignored, the run goes on");
    const double total = c.max_rate.value_or(a_.common.max_rate);
    const double rate = c.shard_max_rate.value_or(rate_share(total));  // a "shard K:" line: this shard's own
    auto& pacer = ctx_->s3->pacer();
    if (rate != pacer.max_rate()) {
      const std::string share = shard_.whole() ? ""
                                : c.shard_max_rate
                                    ? fmt::format(" (shard {}'s own, from its shard line)", shard_.index)
                                    : fmt::format(" (shard {}'s 1/{} of {})", shard_.to_string(), shard_.count, total);
      logging::info(
          "control.max_rate",
          rate > 0 ? fmt::format("request rate capped at {} per second{}", rate, share) : "request rate not capped",
          {{"max_rate", rate}, {"max_rate_total", total}});
      pacer.set_max_rate(rate);
    }
    if (!c.paused) return std::nullopt;
    pause_kind_ = "operator";
    return c.pause_reason;
  }

  // Why the run should be paused now, if it should: the operator's control
  // files first, then the replicas' lag.
  std::optional<std::string> pause_reason(ControlFiles* control) {
    std::optional<std::string> why;
    if (control != nullptr) why = steer(*control);
    if (!lag_) return why;
    const auto st = lag_->state();
    if (st.throttled != lag_throttled_) {
      lag_throttled_ = st.throttled;
      if (!st.throttled)
        logging::info("replica_lag.resume",
                      fmt::format("replicas caught up (worst {:.1f} s, under half the {} s limit): resuming writes",
                                  st.worst_seconds.value_or(0), lag_->max_seconds()),
                      {{"lag_seconds", st.worst_seconds.value_or(0)}});
      else
        logging::warn("replica_lag.throttle", lag_reason(st),
                      {{"lag_seconds", st.worst_seconds.value_or(-1)}, {"replica", st.worst}});
    }
    if (why || !st.throttled) return why;
    pause_kind_ = "replica_lag";
    return lag_reason(st);
  }

  std::string lag_reason(const engine::LagState& st) const {
    if (!st.worst_seconds) return fmt::format("cannot read the lag of {}: {}", st.worst, st.problem);
    return fmt::format("replica {} lags {:.1f} s, more than --max-replica-lag {} s", st.worst, *st.worst_seconds,
                       lag_->max_seconds());
  }

  // The replica-lag check is part of the preflight: a role that cannot read
  // the lag, a replica that cannot be reached or is not one: exit 2.
  Result<void> start_lag_watch(const db::ConnectOptions& base) {
    if (a_.max_replica_lag_s <= 0) return {};
    db::ConnectOptions o = base;
    o.answer_timeout_ms = std::min(o.answer_timeout_ms, kLagAnswerTimeoutMs);
    auto w = engine::LagWatch::start(*ctx_->loop, {a_.common.db, a_.replica_dbs}, a_.max_replica_lag_s, o);
    if (!w) return tl::unexpected(w.error());
    lag_ = std::move(*w);
    const auto& st = lag_->state();
    logging::info("replica_lag.watch",
                  fmt::format("watching replica lag on {} (now {:.1f} s on {}; pausing above {} s)",
                              a_.replica_dbs.empty() ? "the primary's pg_stat_replication"
                                                     : fmt::format("{} replica(s)", a_.replica_dbs.size()),
                              st.worst_seconds.value_or(0), st.worst, a_.max_replica_lag_s));
    out_["max_replica_lag_seconds"] = a_.max_replica_lag_s;
    return {};
  }

  bool start_metrics() {
    if (a_.metrics_addr.empty()) return true;
    auto addr = metrics::parse_listen_address(a_.metrics_addr);
    if (!addr) {
      logging::error("config.metrics_addr", addr.error());
      return false;
    }
    auto server = metrics::Server::start(*addr);
    if (!server) {
      logging::error("config.metrics_addr", server.error());
      return false;
    }
    metrics_ = std::move(*server);
    publish_metrics(false);
    logging::info("metrics.listen", fmt::format("serving metrics at http://{}/metrics", metrics_->bound()),
                  {{"address", metrics_->bound()}, {"port", metrics_->port()}});
    return true;
  }

  // Renders the page for the next scrape: at most once a second (no scraper
  // asks more often), and once more at the end with the final counts.
  void publish_metrics(bool finished) {
    if (!metrics_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!finished && now - last_publish_ < kMetricsInterval) return;
    last_publish_ = now;
    MetricsView v;
    v.command = command_;
    v.version = kVersion;
    v.commit = kCommit;
    v.shard = shard_.to_string();
    v.start_time_seconds = start_unix_;
    v.counts = live_report_ != nullptr ? &live_report_->counts : nullptr;
    v.progress = progress_;
    v.s3 = &ctx_->s3->stats();
    v.s3_in_flight = ctx_->s3->in_flight();
    v.s3_rate_cap = ctx_->s3->pacer().max_rate();
    v.s3_window = ctx_->s3->pacer().window();
    v.db_statements = db_ != nullptr ? &db_->statement_latency() : nullptr;
    v.pause_reason = pause_kind_;
    if (lag_) v.replica_lag_seconds = lag_->state().worst_seconds;
    if (display_ != nullptr) v.eta_seconds = display_->eta_seconds(progress_);
    v.finished = finished;
    v.source_credentials = ctx_->source_bucket.credentials.get();
    v.dest_credentials = ctx_->dest_bucket.credentials.get();
    metrics_->publish(render_metrics(v));
  }

  // Keeps serving the final values for a scraper that has not seen them yet
  // (its next scrape comes within its interval); a signal ends it at once.
  void linger() {
    if (!metrics_ || a_.metrics_linger_s <= 0) return;
    logging::info("metrics.linger",
                  fmt::format("serving the final metrics for {} s more (a signal ends it)", a_.metrics_linger_s));
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(a_.metrics_linger_s);
    while (std::chrono::steady_clock::now() < until && !stop_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  Result<Shard> resolve_shard() const {
    if (!a_.shard.empty()) return Shard::parse(a_.shard);
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read at startup, before any thread
    if (a_.shards > 0) return Shard::from_env(a_.shards, [](const char* v) { return std::getenv(v); });
    return Shard{};
  }

  double rate_share(double total) const { return total / shard_.count; }

  bool multipart_always() const {
    const auto& sse = a_.write.sse;
    return !sse.empty() && (!ctx_->dest_bucket.endpoint.is_aws() || sse == "aws:kms");
  }

  engine::MigrationOptions migration_options(const Checks& checks) const {
    engine::MigrationOptions mo;
    mo.legacy_prefix = ctx_->source.prefix;
    mo.dest_prefix = ctx_->dest.prefix;
    mo.keep_source = a_.keep_source || a_.rollback;
    mo.rewrite_only = a_.rollback;
    mo.delete_versions = a_.delete_versions;
    mo.dry_run = a_.dry_run;
    mo.concurrency = static_cast<std::size_t>(a_.common.concurrency);
    mo.multipart_threshold = a_.multipart_threshold;
    mo.memory_budget = a_.memory_budget;
    mo.conditional_writes = checks.conditional_writes;
    mo.storage_class = a_.storage_class;
    mo.multipart_always = multipart_always();
    mo.cas_target = std::chrono::milliseconds(a_.batch_time_ms);
    mo.shard = shard_;
    mo.delete_grace = std::chrono::seconds(static_cast<std::int64_t>(std::ceil(a_.delete_grace_s)));
    return mo;
  }

  int audit(engine::ObjectStore& store, engine::RowStore& rows, const engine::MigrationOptions& mo,
            const engine::Hooks& hooks, ProgressDisplay& display) {
    engine::Report report;
    live_report_ = &report;
    auto r = engine::audit(*ctx_->loop, store, rows, mo, hooks, report);
    display.finish();
    add_outcome(report);
    if (r.error) {
      logging::error("verify.stopped", r.error->describe());
      out_["error"] = r.error->describe();
      out_["stop_reason"] = r.error->kind == ErrorKind::Interrupted ? "signal" : "error";
      return finish(kExitStopped, "stopped");
    }
    logging::info("verify.done", r.consistent ? "fully migrated and consistent" : "not fully migrated", out_["counts"]);
    return finish(r.consistent ? kExitOk : kExitNeedsHuman, r.consistent ? "consistent" : "inconsistent");
  }

  int migrate(engine::ObjectStore& store, engine::RowStore& rows, const engine::MigrationOptions& mo,
              const engine::Hooks& hooks, ProgressDisplay& display) {
    engine::Migration m(*ctx_->loop, store, rows, mo, hooks);
    live_report_ = &m.report();
    auto r = m.run();
    display.finish();
    add_outcome(m.report());
    out_["paused_seconds"] = r.paused_seconds;
    if (a_.dry_run) out_["forecast"] = forecast(m.forecast());
    if (r.outcome == engine::Outcome::Stopped) {
      if (r.error) out_["error"] = r.error->describe();
      out_["stop_reason"] = r.stop_reason;
      logging::error("migrate.stopped",
                     fmt::format("stopped ({}); run the same command again to resume", r.stop_reason), out_["counts"]);
      return finish(kExitStopped, "stopped");
    }
    const bool complete = r.outcome == engine::Outcome::Complete;
    const char* summary = a_.dry_run    ? "dry run finished: the counts say what a real run would do; nothing changed"
                          : !complete   ? "finished; some items need a human (see needs_human in the report)"
                          : a_.rollback ? "rolled back: every row whose legacy object is still there and identical "
                                          "points at it again (rows_kept: those that had nowhere to go back to)"
                                        : "everything moved and rewritten";
    logging::info("migrate.done", summary, out_["counts"]);
    return finish(complete ? kExitOk : kExitNeedsHuman, complete ? "complete" : "needs_human");
  }

  // The dry run's forecast: its own read requests (the real run's too) plus
  // the writes it counted, priced and timed.
  nlohmann::json forecast(engine::Forecast f) const {
    const auto run = s3::stats_since(ctx_->s3->stats(), preflight_stats_);
    for (const char* op : {"ListObjectsV2", "HeadObject"})
      if (auto it = run.by_operation.find(op); it != run.by_operation.end()) f.add(op, it->second.requests);
    engine::Rates rates;
    rates.prefix_writes_per_s = rate_share(a_.prefix_write_rate);  // the shards share the one destination prefix
    rates.max_rate = rate_share(a_.common.max_rate);
    auto j = engine::price_forecast(f, a_.prices, rates);
    logging::info("migrate.forecast",
                  fmt::format("a real run would send {} requests ({} class A, {} class B), about ${:.2f} at list "
                              "prices, and take at least {} ({})",
                              j["class_a_requests"].get<std::uint64_t>() + j["class_b_requests"].get<std::uint64_t>() +
                                  j["free_requests"].get<std::uint64_t>(),
                              j["class_a_requests"].get<std::uint64_t>(), j["class_b_requests"].get<std::uint64_t>(),
                              j["cost_usd"].get<double>(), format_duration(j["estimated_seconds"].get<double>()),
                              j["bound_by"].get<std::string>()),
                  j);
    return j;
  }

  void add_outcome(const engine::Report& report) {
    out_["counts"] = engine::counts_json(report.counts, verify_       ? engine::CountsOf::Verify
                                                        : a_.rollback ? engine::CountsOf::Rollback
                                                                      : engine::CountsOf::Migrate);
    out_["needs_human"] = report.items_json();
    out_["requests"] = requests_json(*ctx_, preflight_stats_);
    out_["credentials"] = {{"source", credentials_json(ctx_->source_bucket)},
                           {"dest", credentials_json(ctx_->dest_bucket)}};
    out_["store"] = store_json(*ctx_);
  }

  int finish(int code, const std::string& outcome) {
    out_["outcome"] = outcome;
    out_["exit_code"] = code;
    out_["elapsed_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    // The process's high-water mark, for sizing a pod's memory limit (and
    // checking --memory-budget held). VmHWM, not getrusage's ru_maxrss, which
    // carries over the RSS of the process that forked this one.
    if (auto hwm = peak_rss_bytes()) out_["peak_rss_bytes"] = *hwm;
    write_report(a_.report_file, out_);
    fmt::print("{}\n", out_.dump(2));
    std::fflush(stdout);
    if (metrics_) {
      publish_metrics(true);
      linger();
      live_report_ = nullptr;  // the engine's report ends with its scope
    }
    return code;
  }

  const MigrateArgs& a_;
  const bool verify_;
  const char* command_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  const double start_unix_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Declared first, so destroyed last: everything below runs on its loop.
  std::optional<Context> context_;
  db::ConnectOptions db_options_;
  std::optional<engine::DbSession> db_session_;
  Context* ctx_ = nullptr;
  engine::DbSession* db_ = nullptr;
  ProgressDisplay* display_ = nullptr;
  const engine::Report* live_report_ = nullptr;
  engine::Progress progress_;
  std::string pause_kind_;  // why the run is paused, for /metrics
  std::unique_ptr<metrics::Server> metrics_;
  std::chrono::steady_clock::time_point last_publish_{};
  std::unique_ptr<engine::LagWatch> lag_;
  bool lag_throttled_ = false;
  nlohmann::json out_;
  s3::ClientStats preflight_stats_;
  Shard shard_;  // the whole run unless --shard/--shards
};

// "10s", "500ms", "2m", "1h", "7d", or a number of seconds.
const auto kDuration =
    CLI::AsNumberWithUnit(std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86'400}},
                          CLI::AsNumberWithUnit::CASE_SENSITIVE, "DURATION");

void add_options(CLI::App& cmd, MigrateArgs& a) {
  add_common_options(cmd, a.common);
  cmd.add_option("--report", a.report_file, "Also write the JSON report to this file");
  cmd.add_option("--delete-grace", a.delete_grace_s,
                 "Delete a legacy object only once its destination copy is older than this (e.g. 7d, 12h), so "
                 "caches holding old URLs keep working; younger ones are kept, counted, and deleted by a later run "
                 "(verify counts them as in grace)")
      ->transform(kDuration)
      ->check(CLI::Range(0.0, 3.0e9));
  cmd.add_option("--metrics-addr", a.metrics_addr,
                 "Serve Prometheus metrics at http://[HOST:]PORT/metrics during the run (no HOST: 127.0.0.1; "
                 "port 0: any free one, logged)");
  cmd.add_option("--metrics-linger", a.metrics_linger_s,
                 "After the run, keep serving the final metrics this many seconds (set it above the scrape "
                 "interval so the last values are scraped; a signal ends it)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--progress", a.progress, "auto (a progress line when stderr is a terminal), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
}

// The dry run's forecast: prices and the store's write rate.
void add_dry_run_options(CLI::App& cmd, MigrateArgs& m) {
  cmd.add_option("--price-class-a", m.prices.class_a_per_1000,
                 "USD per 1,000 PUT/COPY/POST/LIST requests, for the dry run's cost (S3 Standard list price)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--price-class-b", m.prices.class_b_per_1000,
                 "USD per 1,000 GET/HEAD requests, for the dry run's cost")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--prefix-write-rate", m.prefix_write_rate,
                 "Writes per second the store takes on one prefix, for the dry run's time (S3: 3,500)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

// How large objects are copied, and the memory copies between two services hold.
void add_copy_options(CLI::App& cmd, MigrateArgs& m) {
  cmd.add_option("--multipart-threshold", m.multipart_threshold,
                 "Objects larger than this many bytes are copied in parts (UploadPartCopy)")
      ->check(CLI::Range(s3::kMinPartBytes, s3::kMaxSingleCopyBytes))
      ->capture_default_str();
  cmd.add_option("--memory-budget", m.memory_budget,
                 "Bytes of object data held at once by copies between two services (e.g. 256MiB): they stream "
                 "through assetmv, GET then PUT, in parts of at most half this above --multipart-threshold")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(2 * s3::kMinPartBytes, std::uint64_t{64} << 30))
      ->capture_default_str();
}

// What every copy is stored as: class, ACL, encryption.
void add_write_options(CLI::App& cmd, MigrateArgs& m) {
  cmd.add_option("--storage-class", m.storage_class,
                 "Store every copy in this class (STANDARD, STANDARD_IA, INTELLIGENT_TIERING...); default: the "
                 "class each legacy object is listed in")
      ->check([](const std::string& v) {
        const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char ch) {
          return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        });
        return ok ? std::string() : "a storage class is upper-case letters, digits and '_' (e.g. STANDARD_IA)";
      });
  cmd.add_option("--acl", m.write.acl,
                 "Give every copy this canned ACL (e.g. public-read, for a bucket that serves by object ACL); "
                 "default: none, so copies are private as CopyObject makes them")
      ->check([](const std::string& v) {
        return s3::is_canned_acl(v) ? std::string()
                                    : "not a canned ACL: private, public-read, public-read-write, authenticated-read, "
                                      "aws-exec-read, bucket-owner-read or bucket-owner-full-control";
      });
  auto* sse = cmd.add_option("--sse", m.write.sse,
                             "Encrypt every copy: AES256 (SSE-S3) or aws:kms (SSE-KMS), for a destination whose "
                             "policy requires it; default: the bucket's default encryption")
                  ->check(CLI::IsMember({"AES256", "aws:kms"}));
  cmd.add_option("--sse-kms-key-id", m.write.sse_kms_key_id, "With --sse aws:kms: the KMS key (id or ARN)")->needs(sse);
}

// What slows or pauses the run: statement size, replica lag, control files.
void add_steering_options(CLI::App& cmd, MigrateArgs& m) {
  cmd.add_option("--batch-time-ms", m.batch_time_ms,
                 "Compare-and-set statements are sized to take about this long (50 to 2,000 rows, starting at "
                 "500), so a busy database gets smaller statements; 0: always 500 rows")
      ->check(CLI::Range(0, 60'000))
      ->capture_default_str();
  cmd.add_option("--max-replica-lag", m.max_replica_lag_s,
                 "Pause while any replica lags more than this (e.g. 10s, 500ms); resumes under half of it. Read "
                 "on the primary (pg_stat_replication; needs pg_monitor) unless --replica-db is given")
      ->transform(kDuration)
      ->check(CLI::Range(0.0, 86'400.0));
  cmd.add_option("--replica-db", m.replica_dbs,
                 "Read the lag on this replica instead (libpq conninfo or URI; repeat for each replica)")
      ->needs("--max-replica-lag");
  cmd.add_option("--control-file", m.control_file,
                 "Steer the run while it goes: a file with `pause` and/or `max-rate N` lines, read when it "
                 "changes (absent: run at --max-rate)");
  cmd.add_option("--pause-file", m.pause_file,
                 "The run pauses while this file exists (touch to pause, rm to resume): no new copy or delete "
                 "starts; what is in flight finishes and its rows are committed");
}

// One of N workers.
void add_shard_options(CLI::App& cmd, MigrateArgs& m) {
  auto* shard = cmd.add_option(
      "--shard", m.shard,
      "Do only shard K of N (K/N, from 0): the names whose hash falls in it, in the table and both listings; N "
      "workers with K = 0..N-1 together do what one run does, each at 1/N of --max-rate (docs/scaling.md)");
  cmd.add_option("--shards", m.shards,
                 "Do one shard of N, K taken from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or "
                 "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job)")
      ->check(CLI::Range(1U, Shard::kMaxCount))
      ->excludes(shard);
}

}  // namespace

void add_migrate_commands(CLI::App& app, int& exit_code) {
  auto m = std::make_shared<MigrateArgs>();
  auto* migrate = app.add_subcommand(
      "migrate", "Move every object under the source prefix to the destination prefix and rewrite the table");
  add_options(*migrate, *m);
  migrate->add_flag("--keep-source", m->keep_source,
                    "Leave legacy objects in place (delete them later by running again without this flag)");
  auto* rollback = migrate->add_flag(
      "--rollback", m->rollback,
      "The way back, with the same --source and --dest as the run to undo: every row on the destination prefix whose "
      "legacy object is still there and identical points at it again (compare-and-set); nothing is copied or "
      "deleted, and rows with no identical legacy object stay (counted rows_kept)");
  migrate->add_flag("--delete-versions", m->delete_versions,
                    "On a versioned legacy bucket, delete exactly the version that was copied (by its version id, "
                    "read by a HEAD just before) instead of hiding it behind a delete marker; needs "
                    "s3:DeleteObjectVersion");
  migrate->add_flag("--dry-run", m->dry_run,
                    "Show what would happen, the requests a real run would send, their cost and the time it "
                    "would take; change nothing");
  add_dry_run_options(*migrate, *m);
  add_copy_options(*migrate, *m);
  add_write_options(*migrate, *m);
  add_steering_options(*migrate, *m);
  add_shard_options(*migrate, *m);
  // What a rollback never does: delete, or write an object.
  for (const char* name : {"--keep-source", "--delete-grace", "--delete-versions", "--storage-class", "--acl", "--sse"})
    rollback->excludes(migrate->get_option(name));
  migrate->footer(kExitCodesHelp);
  migrate->callback([m, &exit_code] { exit_code = CommandRun(*m, false).run(); });

  auto v = std::make_shared<MigrateArgs>();
  auto* verify = app.add_subcommand(
      "verify", "Read-only audit: rows by prefix, rows whose object is missing, objects left under the source prefix");
  add_options(*verify, *v);
  verify->footer(kExitCodesHelp);
  verify->callback([v, &exit_code] { exit_code = CommandRun(*v, true).run(); });
}

}  // namespace assetmv::cli
