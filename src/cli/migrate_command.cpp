#include "cli/migrate_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/common.hpp"
#include "cli/progress.hpp"
#include "core/log.hpp"
#include "engine/audit.hpp"
#include "engine/migration.hpp"
#include "engine/rows.hpp"

namespace assetmv::cli {

namespace {

struct MigrateArgs {
  CommonOptions common;
  bool keep_source = false;
  bool dry_run = false;
  std::string report_file;
  std::uint64_t multipart_threshold = s3::kMaxSingleCopyBytes;
  std::string progress = "auto";
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Source and destination must not contain each other: the run would copy
// its own output or delete what it just wrote.
std::optional<std::string> overlap_problem(const Context& c) {
  const bool same_bucket =
      c.source.bucket == c.dest.bucket && c.source_bucket.endpoint.authority() == c.dest_bucket.endpoint.authority();
  if (!same_bucket) return std::nullopt;
  const auto& a = c.source.prefix;
  const auto& b = c.dest.prefix;
  if (a.compare(0, b.size(), b) == 0 || b.compare(0, a.size(), a) == 0)
    return fmt::format("source {} and destination {} overlap (one prefix contains the other)", c.source.to_string(),
                       c.dest.to_string());
  return std::nullopt;
}

// What the usual transport failures of a first request mean for the operator.
std::string transport_hint(const std::string& code, const std::string& scheme) {
  if (code == "curl60") return " (the certificate is not trusted: --ca-file trusts a private CA)";
  if (code == "curl35" && scheme == "https") return " (no TLS handshake: is the endpoint plain HTTP? use http://)";
  if ((code == "curl52" || code == "curl56") && scheme == "http")
    return " (no HTTP answer: is the endpoint TLS? use https://)";
  return {};
}

// Names a probe key that no one else uses, so probing it touches nothing real.
std::string probe_key(const std::string& prefix) {
  std::random_device rd;
  return fmt::format("{}.assetmv-preflight-{:08x}{:08x}", prefix, rd(), rd());
}

// A probe's failure: a denial names the permission, anything else says the
// permission could not be checked.
Result<void> permission_error(const Error& e, const std::string& what) {
  if (e.kind == ErrorKind::AccessDenied)
    return fail(ErrorKind::AccessDenied, e.code, fmt::format("no permission to {}: {}", what, e.describe()));
  return fail(e.kind, e.code, fmt::format("cannot check the permission to {}: {}", what, e.describe()));
}

// The preflight's checks as the report lists them: each says what it proved
// and how the store answered. A probe meant to be refused (the PUT on an
// impossible ETag) is a passed check, not a failed request of the run.
struct Checks {
  nlohmann::json list = nlohmann::json::array();
  bool conditional_writes = true;  // false: the store refuses If-Match/If-None-Match on a PUT
  void add(const std::string& permission, const std::string& operation, const std::string& target,
           const std::string& answer) {
    list.push_back({{"permission", permission}, {"operation", operation}, {"target", target}, {"answer", answer}});
  }
};

std::string answer_of(const Error& e) {
  return e.http_status > 0 ? fmt::format("{} {}", e.http_status, e.code) : e.code;
}

// Proves, without changing any object, that the credentials may do what the
// run will do (docs/privileges.md): read a source object, write and read
// under the destination prefix, delete under the source prefix.
// A HEAD of an absent key proves nothing: without an unconditional
// s3:ListBucket the store answers 403 rather than 404, so only listed keys
// are read.
Result<void> probe_permissions(Context& c, const std::optional<std::string>& source_key,
                               const std::optional<std::string>& dest_key, bool will_delete, Checks& checks) {
  auto& s3 = *c.s3;
  if (source_key) {  // CopyObject reads its source: s3:GetObject on the legacy bucket
    auto h = s3::wait<s3::ObjectInfo>(*c.loop, [&](auto cb) { s3.head_object(c.source_bucket, *source_key, cb); });
    if (!h && h.error().kind != ErrorKind::NotFound)
      return permission_error(h.error(), "read " + c.source.bucket + "/" + *source_key);
    checks.add("s3:GetObject", "HeadObject", c.source.bucket + "/" + *source_key, h ? "200" : answer_of(h.error()));
  }
  // A PUT conditional on an ETag that cannot exist is refused (412, or 404
  // where the key is absent) after the permission check and before any
  // write: s3:PutObject on the destination, proved without writing.
  const std::string dest_probe = probe_key(c.dest.prefix);
  s3::PutParams put;
  put.if_match = std::string(32, '0');
  auto w = s3::wait<std::string>(*c.loop, [&](auto cb) { s3.put_object(c.dest_bucket, dest_probe, "", put, cb); });
  if (w) {
    logging::warn("preflight.probe_written",
                  "the store ignored If-Match and wrote the empty probe object; delete it when convenient",
                  {{"key", c.dest.bucket + "/" + dest_probe}});
  } else if (w.error().code == "NotImplemented") {
    // Swift's s3api refuses any conditional PUT before it checks access:
    // prove the write with an upload started and aborted instead, and copy
    // without If-None-Match.
    checks.conditional_writes = false;
    checks.add("conditional writes", "PutObject If-Match on an impossible ETag", c.dest.bucket + "/" + dest_probe,
               answer_of(w.error()) + " (the store refuses conditional PUTs: copies go without If-None-Match)");
    logging::warn("preflight.no_conditional_writes",
                  "the destination store refuses conditional PUTs (If-None-Match); copies go without it, so a "
                  "destination object created by someone else after the listing could be overwritten by its "
                  "legacy twin",
                  {{"endpoint", c.dest_bucket.endpoint.authority()}});
    auto u = s3::wait<bool>(*c.loop, [&](auto cb) { s3.probe_upload(c.dest_bucket, dest_probe, cb); });
    if (!u) return permission_error(u.error(), "write under " + c.dest.to_string());
    checks.add("s3:PutObject", "CreateMultipartUpload then AbortMultipartUpload", c.dest.bucket + "/" + dest_probe,
               "200 (an upload started and aborted: nothing written)");
  } else if (w.error().kind != ErrorKind::PreconditionFailed && w.error().kind != ErrorKind::NotFound) {
    return permission_error(w.error(), "write under " + c.dest.to_string());
  }
  if (checks.conditional_writes)
    checks.add("s3:PutObject", "PutObject If-Match on an impossible ETag", c.dest.bucket + "/" + dest_probe,
               w ? "200 (written: the store ignored If-Match)"
                 : answer_of(w.error()) + " (refused as meant: nothing written)");
  if (dest_key) {  // reading copies back: s3:GetObject on the destination
    auto h = s3::wait<s3::ObjectInfo>(*c.loop, [&](auto cb) { s3.head_object(c.dest_bucket, *dest_key, cb); });
    if (!h && h.error().kind != ErrorKind::NotFound)
      return permission_error(h.error(), "read " + c.dest.bucket + "/" + *dest_key);
    checks.add("s3:GetObject", "HeadObject", c.dest.bucket + "/" + *dest_key, h ? "200" : answer_of(h.error()));
  }
  if (!will_delete) return {};
  // Deleting a key that does not exist changes nothing (on a versioned
  // bucket it leaves a delete marker for that never-existing key).
  const std::string src_probe = probe_key(c.source.prefix);
  auto d = s3::wait<s3::DeleteResult>(*c.loop, [&](auto cb) { s3.delete_objects(c.source_bucket, {src_probe}, cb); });
  if (!d) return permission_error(d.error(), "delete under " + c.source.to_string());
  if (!d->failed.empty()) {
    const auto& f = d->failed.front();
    return fail(f.code == "AccessDenied" ? ErrorKind::AccessDenied : ErrorKind::Fatal, f.code,
                fmt::format("no permission to delete under {}: {}: {}", c.source.to_string(), f.code, f.message));
  }
  checks.add("s3:DeleteObject", "DeleteObjects of a never-existing key", c.source.bucket + "/" + src_probe,
             "200 (nothing existed, nothing deleted)");
  return {};
}

struct PreflightNeeds {
  bool writes = false;   // a real migrate run (not verify, not --dry-run)
  bool deletes = false;  // ... that deletes the legacy objects (not --keep-source)
};

// Everything checked before anything changes; a failure here is exit 2.
Result<void> preflight(Context& c, engine::DbSession& db, PreflightNeeds needs, Checks& checks) {
  if (auto p = overlap_problem(c)) return fail(ErrorKind::Fatal, "Overlap", *p);
  if (auto r = db.connect(); !r) return r;
  if (auto r = db.table().check(); !r) return r;
  if (auto r = db.table().check_privileges(needs.writes); !r) return r;
  // One cheap listing per bucket proves the bucket exists, the endpoint
  // answers S3 and the credentials are accepted.
  const std::pair<const s3::Bucket*, const s3::Location*> targets[] = {{&c.source_bucket, &c.source},
                                                                       {&c.dest_bucket, &c.dest}};
  std::optional<std::string> listed[2];
  for (const auto& target : targets) {
    const s3::Bucket& bucket = *target.first;
    const s3::Location& loc = *target.second;
    s3::ListParams p;
    p.prefix = loc.prefix;
    p.max_keys = 1;
    auto page = s3::wait<s3::ListPage>(*c.loop, [&](auto cb) { c.s3->list_objects_v2(bucket, p, cb); });
    if (!page)
      return fail(page.error().kind, page.error().code,
                  fmt::format("cannot list {}: {}{}", loc.to_string(), page.error().describe(),
                              transport_hint(page.error().code, bucket.endpoint.scheme)));
    if (!page->objects.empty()) listed[&bucket == &c.source_bucket ? 0 : 1] = page->objects.front().key;
    checks.add("s3:ListBucket", "ListObjectsV2", loc.to_string(), "200");
  }
  if (needs.writes) return probe_permissions(c, listed[0], listed[1], needs.deletes, checks);
  return {};
}

// The run's own requests: those the preflight made are in its checks.
nlohmann::json requests_json(const Context& c, const s3::ClientStats& preflight) {
  const auto run = s3::stats_since(c.s3->stats(), preflight);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [op, st] : run.by_operation)
    j[op] = {{"requests", st.requests}, {"retries", st.retries}, {"throttled", st.throttled}, {"failed", st.failed}};
  j["total"] = {{"requests", run.total.requests},
                {"retries", run.total.retries},
                {"throttled", run.total.throttled},
                {"connections_opened", c.http->stats().connections_opened}};
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

int run(MigrateArgs& a, bool verify) {
  const auto started = std::chrono::steady_clock::now();
  const std::string started_at = utc_now();
  const char* command = verify ? "verify" : "migrate";
  init_logging(a.common);
  install_stop_handlers();
  auto ctx = make_context(a.common);
  if (!ctx) {
    logging::error("config", ctx.error().message);
    return kExitUsage;
  }
  auto table = ctx->table;
  db::ConnectOptions db_options;
  db_options.answer_timeout_ms = a.common.stall_timeout_s * 1000;  // the same patience as for S3
  engine::DbSession db(a.common.db, table, RetryPolicy{}, db_options);
  nlohmann::json out = {{"command", command},
                        {"version", ASSETMV_VERSION},
                        {"started_at", started_at},
                        {"source", ctx->source.to_string()},
                        {"dest", ctx->dest.to_string()},
                        {"table", table.display()},
                        {"db", db.describe()}};
  if (!verify) {
    out["dry_run"] = a.dry_run;
    out["keep_source"] = a.keep_source;
  }
  auto finish = [&](int code, const std::string& outcome) {
    out["outcome"] = outcome;
    out["exit_code"] = code;
    out["elapsed_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    write_report(a.report_file, out);
    fmt::print("{}\n", out.dump(2));
    std::fflush(stdout);
    return code;
  };

  Checks checks;
  const auto pf = preflight(*ctx, db, {!verify && !a.dry_run, !verify && !a.dry_run && !a.keep_source}, checks);
  const s3::ClientStats preflight_stats = ctx->s3->stats();
  out["preflight"] = {{"checks", checks.list}, {"requests", preflight_stats.total.requests}};
  if (!pf) {
    logging::error("preflight", pf.error().message, {{"kind", to_string(pf.error().kind)}});
    out["error"] = pf.error().message;  // already names the underlying error and its code
    return finish(kExitUsage, "preflight_failed");
  }
  if (!ctx->source.prefix.empty() && ctx->source.prefix.back() != '/')
    logging::warn("config.prefix", fmt::format("source prefix {:?} has no trailing '/': it also matches longer names",
                                               ctx->source.prefix));

  engine::MigrationOptions mo;
  mo.legacy_prefix = ctx->source.prefix;
  mo.dest_prefix = ctx->dest.prefix;
  mo.keep_source = a.keep_source;
  mo.dry_run = a.dry_run;
  mo.concurrency = static_cast<std::size_t>(a.common.concurrency);
  mo.multipart_threshold = a.multipart_threshold;
  mo.conditional_writes = checks.conditional_writes;

  ProgressDisplay display(command, progress_on_terminal(a));
  engine::Hooks hooks;
  hooks.stop_requested = [] { return stop_requested(); };
  hooks.on_progress = [&display](const engine::Progress& p) { display.update(p); };
  logging::info(fmt::format("{}.start", command),
                fmt::format("{} {} -> {}{}", command, ctx->source.to_string(), ctx->dest.to_string(),
                            a.dry_run ? " (dry run: nothing will change)" : ""),
                {{"table", table.display()}, {"db", db.describe()}, {"credentials", ctx->credentials_source}});

  if (verify) {
    engine::Report report;
    auto r = engine::audit(*ctx->loop, *ctx->s3, ctx->source_bucket, ctx->dest_bucket, db, mo, hooks, report);
    display.finish();
    out["counts"] = engine::counts_json(report.counts, true);
    out["needs_human"] = report.items_json();
    out["requests"] = requests_json(*ctx, preflight_stats);
    if (r.error) {
      logging::error("verify.stopped", r.error->describe());
      out["error"] = r.error->describe();
      out["stop_reason"] = r.error->kind == ErrorKind::Interrupted ? "signal" : "error";
      return finish(kExitStopped, "stopped");
    }
    logging::info("verify.done", r.consistent ? "fully migrated and consistent" : "not fully migrated", out["counts"]);
    return finish(r.consistent ? kExitOk : kExitNeedsHuman, r.consistent ? "consistent" : "inconsistent");
  }

  engine::Migration m(*ctx->loop, *ctx->s3, ctx->source_bucket, ctx->dest_bucket, db, mo, hooks);
  auto r = m.run();
  display.finish();
  out["counts"] = engine::counts_json(m.report().counts, false);
  out["needs_human"] = m.report().items_json();
  out["requests"] = requests_json(*ctx, preflight_stats);
  if (r.outcome == engine::Outcome::Stopped) {
    if (r.error) out["error"] = r.error->describe();
    out["stop_reason"] = r.stop_reason;
    logging::error("migrate.stopped", fmt::format("stopped ({}); run the same command again to resume", r.stop_reason),
                   out["counts"]);
    return finish(kExitStopped, "stopped");
  }
  const bool complete = r.outcome == engine::Outcome::Complete;
  const char* summary = a.dry_run  ? "dry run finished: the counts say what a real run would do; nothing changed"
                        : complete ? "everything moved and rewritten"
                                   : "finished; some items need a human (see needs_human in the report)";
  logging::info("migrate.done", summary, out["counts"]);
  return finish(complete ? kExitOk : kExitNeedsHuman, complete ? "complete" : "needs_human");
}

void add_options(CLI::App& cmd, MigrateArgs& a) {
  add_common_options(cmd, a.common);
  cmd.add_option("--report", a.report_file, "Also write the JSON report to this file");
  cmd.add_option("--progress", a.progress, "auto (a progress line when stderr is a terminal), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
}

}  // namespace

void add_migrate_commands(CLI::App& app, int& exit_code) {
  auto m = std::make_shared<MigrateArgs>();
  auto* migrate = app.add_subcommand(
      "migrate", "Move every object under the source prefix to the destination prefix and rewrite the table");
  add_options(*migrate, *m);
  migrate->add_flag("--keep-source", m->keep_source,
                    "Leave legacy objects in place (delete them later by running again without this flag)");
  migrate->add_flag("--dry-run", m->dry_run, "Show what would happen; change nothing");
  migrate
      ->add_option("--multipart-threshold", m->multipart_threshold,
                   "Objects larger than this many bytes are copied in parts (UploadPartCopy)")
      ->check(CLI::Range(s3::kMinPartBytes, s3::kMaxSingleCopyBytes))
      ->capture_default_str();
  migrate->callback([m, &exit_code] { exit_code = run(*m, false); });

  auto v = std::make_shared<MigrateArgs>();
  auto* verify = app.add_subcommand(
      "verify", "Read-only audit: rows by prefix, rows whose object is missing, objects left under the source prefix");
  add_options(*verify, *v);
  verify->callback([v, &exit_code] { exit_code = run(*v, true); });
}

}  // namespace assetmv::cli
