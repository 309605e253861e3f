#include "cli/seed_command.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/common.hpp"
#include "core/log.hpp"
#include "db/pg.hpp"
#include "seed/seeder.hpp"

namespace assetmv::cli {

namespace {

struct SeedArgs {
  CommonOptions common;
  seed::SeedOptions seed;
  std::string confirm;  // --confirm-non-local TABLE,LEGACY_BUCKET,PRODUCTION_BUCKET
};

// This machine only: a loopback address, localhost, or a Unix socket.
bool is_local_host(std::string_view host) {
  if (host.empty() || host.front() == '/' || host == "localhost" || host == "::1" || host == "[::1]") return true;
  return host.starts_with("127.");
}

// seed writes (and with --reset truncates and deletes) exactly what migrate
// reads in production, from the same environment. Off this machine it runs
// only when the operator names what it will change. nullopt: go on.
std::optional<std::string> refuse_non_local(const SeedArgs& a, const Context& ctx, const db::Connection& conn) {
  std::vector<std::string> remote;
  for (const auto* b : {&ctx.source_bucket, &ctx.dest_bucket})
    if (!is_local_host(b->endpoint.host)) remote.push_back(fmt::format("bucket {} at {}", b->name, b->endpoint.host));
  if (!is_local_host(conn.host())) remote.push_back(fmt::format("the database at {}", conn.host()));
  if (remote.empty()) return std::nullopt;
  const std::string names = fmt::format("{},{},{}", ctx.table.display(), ctx.source_bucket.name, ctx.dest_bucket.name);
  if (a.confirm == names) return std::nullopt;
  return fmt::format(
      "seed writes test data{} into {}, which is not on this machine ({}); if that is really a "
      "test environment, say so with --confirm-non-local {}",
      a.seed.reset ? " after emptying the table and deleting both prefixes" : "", names, fmt::join(remote, ", "),
      names);
}

// A seed.progress line at most every 5 s, and one at the end.
std::function<void(std::uint64_t, std::uint64_t)> progress_logger() {
  return [last_logged = std::uint64_t{0}, last_time = std::chrono::steady_clock::now()](std::uint64_t done,
                                                                                        std::uint64_t total) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (done != total && now - last_time < std::chrono::seconds(5)) return;
    const double secs = std::chrono::duration<double>(now - last_time).count();
    logging::info("seed.progress", fmt::format("{}/{} objects uploaded", done, total),
                  {{"rate_per_s", secs > 0 ? static_cast<double>(done - last_logged) / secs : 0.0}});
    last_logged = done;
    last_time = now;
  };
}

nlohmann::json summarize(const seed::SeedReport& rep, const Context& ctx) {
  const auto& st = ctx.s3->stats();
  const double up = rep.upload_seconds > 0 ? rep.upload_seconds : 1e-9;
  return {
      {"legacy_objects", rep.legacy_objects},
      {"modern_objects", rep.modern_objects},
      {"rows", rep.rows},
      {"deleted_on_reset", rep.deleted_on_reset},
      {"upload_seconds", rep.upload_seconds},
      {"uploads_per_second", static_cast<double>(rep.legacy_objects + rep.modern_objects) / up},
      {"rows_seconds", rep.rows_seconds},
      {"total_seconds", rep.total_seconds},
      {"requests", st.total.requests},
      {"retries", st.total.retries},
      {"throttled", st.total.throttled},
      {"connections_opened", ctx.http->stats().connections_opened},
  };
}

int run_seed(SeedArgs& a) {
  init_logging(a.common);
  auto ctx = make_context(a.common);
  if (!ctx) {
    logging::error("config", ctx.error().message);
    return kExitUsage;
  }
  a.seed.legacy_prefix = ctx->source.prefix;
  a.seed.modern_prefix = ctx->dest.prefix;
  a.seed.window = static_cast<std::size_t>(a.common.concurrency);

  auto conn = db::Connection::open(a.common.db);
  if (!conn) {
    logging::error("db.connect", conn.error().message);
    return refusal_exit_code(conn.error());
  }
  if (auto why = refuse_non_local(a, *ctx, *conn)) {
    logging::error("seed.refused", *why);
    return kExitUsage;
  }
  logging::info("seed.start", fmt::format("seeding {} avatars", a.seed.count),
                {{"source", ctx->source.to_string()},
                 {"dest", ctx->dest.to_string()},
                 {"table", ctx->table.display()},
                 {"db", conn->describe()},
                 {"credentials", ctx->credentials_source},
                 {"modern_share", a.seed.modern_share}});
  auto progress = progress_logger();
  auto rep =
      seed::seed(*ctx->loop, *ctx->s3, ctx->source_bucket, ctx->dest_bucket, *conn, ctx->table, a.seed, progress);
  if (!rep) {
    logging::error("seed.failed", rep.error().message, {{"kind", to_string(rep.error().kind)}});
    return rep.error().kind == ErrorKind::AccessDenied || rep.error().kind == ErrorKind::NotFound ? kExitUsage
                                                                                                  : kExitStopped;
  }
  const auto summary = summarize(*rep, *ctx);
  logging::info("seed.done", "seeded", summary);
  fmt::print("{}\n", summary.dump(2));
  return kExitOk;
}

}  // namespace

void add_seed_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SeedArgs>();
  auto* cmd =
      app.add_subcommand("seed", "Create the exercise's table and N legacy avatars (distinct PNGs) with their rows");
  add_common_options(*cmd, args->common);
  cmd->add_option("--count", args->seed.count, "Number of avatars")->required()->check(CLI::Range(0, 1'000'000'000));
  cmd->add_option("--first", args->seed.first, "Number of the first avatar (avatar-<n>.png)")->capture_default_str();
  cmd->add_option("--modern-share", args->seed.modern_share,
                  "Fraction seeded as already migrated: object in the destination, row on its prefix")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--reset", args->seed.reset, "Empty the table and both prefixes first");
  cmd->add_option("--confirm-non-local", args->confirm,
                  "Seed a store or database that is not on this machine (refused otherwise): name what it changes, "
                  "as TABLE,LEGACY_BUCKET,PRODUCTION_BUCKET");
  cmd->footer(kExitCodesHelp);
  cmd->callback([args, &exit_code] { exit_code = run_seed(*args); });
}

}  // namespace assetmv::cli
