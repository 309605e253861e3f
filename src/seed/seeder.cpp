#include "seed/seeder.hpp"

#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "seed/png.hpp"

namespace assetmv::seed {

namespace {

using SteadyClock = std::chrono::steady_clock;

double since(SteadyClock::time_point t0) { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }

constexpr std::size_t kCopyChunkBytes = 1 << 20;  // COPY data is sent in chunks of about 1 MiB

}  // namespace

bool is_modern(std::uint64_t n, double modern_share) {
  if (modern_share <= 0) return false;
  if (modern_share >= 1) return true;
  // Golden-ratio sequence: evenly spread, deterministic, no clumps.
  const double frac = static_cast<double>(n) * 0.6180339887498949;
  return frac - static_cast<double>(static_cast<std::uint64_t>(frac)) < modern_share;
}

std::string avatar_name(std::uint64_t n) { return fmt::format("avatar-{}.png", n); }

Result<void> create_exercise_table(db::Connection& conn, const db::TableRef& table) {
  if (table.schema) {
    auto s = conn.exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", db::quote_ident(*table.schema)));
    if (!s) return tl::unexpected(s.error());
  }
  auto r = conn.exec(fmt::format("CREATE TABLE IF NOT EXISTS {} ({} SERIAL PRIMARY KEY, {} VARCHAR)", table.sql_table(),
                                 table.sql_id(), table.sql_path()));
  if (!r) return tl::unexpected(r.error());
  return {};
}

Result<std::uint64_t> delete_prefix(EventLoop& loop, s3::Client& client, const s3::Bucket& bucket,
                                    const std::string& prefix) {
  std::uint64_t deleted = 0;
  // Listing from the start each round is correct because each round deletes what it listed.
  for (;;) {
    s3::ListParams p;
    p.prefix = prefix;
    auto page = s3::wait<s3::ListPage>(loop, [&](auto cb) { client.list_objects_v2(bucket, p, cb); });
    if (!page) return tl::unexpected(page.error());
    if (page->objects.empty()) return deleted;
    std::vector<s3::ObjectVersion> keys;
    for (auto& o : page->objects) keys.push_back({std::move(o.key)});
    auto res = s3::wait<s3::DeleteResult>(loop, [&](auto cb) { client.delete_objects(bucket, keys, cb); });
    if (!res) return tl::unexpected(res.error());
    if (!res->failed.empty())
      return fail(
          ErrorKind::Fatal, res->failed[0].code,
          fmt::format("could not delete s3://{}/{}: {}", bucket.name, res->failed[0].key, res->failed[0].message));
    deleted += keys.size();
  }
}

namespace {

// --reset: the table emptied and both prefixes deleted. The objects deleted.
Result<std::uint64_t> reset(EventLoop& loop, s3::Client& client, const s3::Bucket& legacy, const s3::Bucket& production,
                            db::Connection& conn, const db::TableRef& table, const SeedOptions& opt) {
  auto t = conn.exec(fmt::format("TRUNCATE {} RESTART IDENTITY", table.sql_table()));
  if (!t) return tl::unexpected(t.error());
  std::uint64_t deleted = 0;
  for (const auto& [bucket, prefix] :
       {std::pair{&legacy, opt.legacy_prefix}, std::pair{&production, opt.modern_prefix}}) {
    auto d = delete_prefix(loop, client, *bucket, prefix);
    if (!d) return tl::unexpected(d.error());
    deleted += *d;
  }
  return deleted;
}

// Uploads: a fixed window outstanding, refilled from each completion, so
// memory stays flat whatever the count.
Result<void> upload(EventLoop& loop, s3::Client& client, const s3::Bucket& legacy, const s3::Bucket& production,
                    const SeedOptions& opt, const Progress& progress, SeedReport& rep) {
  std::uint64_t next = 0, done = 0;
  std::size_t outstanding = 0;
  std::optional<Error> first_error;
  std::function<void()> fill;
  fill = [&] {
    while (!first_error && outstanding < opt.window && next < opt.count) {
      const std::uint64_t n = opt.first + next++;
      const bool modern = is_modern(n, opt.modern_share);
      const s3::Bucket& b = modern ? production : legacy;
      const std::string key = (modern ? opt.modern_prefix : opt.legacy_prefix) + avatar_name(n);
      ++outstanding;
      client.put_object(b, key, avatar_png(n), {"image/png", false, {}}, [&, modern](Result<std::string> r) {
        --outstanding;
        ++done;
        if (!r && !first_error) first_error = r.error();
        if (r) ++(modern ? rep.modern_objects : rep.legacy_objects);
        if (progress) progress(done, opt.count);
        fill();
      });
    }
  };
  fill();
  if (auto w =
          loop.run_until("the seed's uploads", [&] { return outstanding == 0 && (first_error || next >= opt.count); });
      !w)
    return tl::unexpected(w.error());
  if (first_error) return tl::unexpected(*first_error);
  return {};
}

// Rows in one COPY, in n order, so ids follow n. The rows written.
Result<std::uint64_t> insert_rows(db::Connection& conn, const db::TableRef& table, const SeedOptions& opt) {
  std::uint64_t row = 0;
  return conn.copy_in(
      fmt::format("COPY {} ({}) FROM STDIN", table.sql_table(), table.sql_path()), [&](std::string& chunk) {
        while (row < opt.count && chunk.size() < kCopyChunkBytes) {
          const std::uint64_t n = opt.first + row++;
          chunk += db::copy_escape((is_modern(n, opt.modern_share) ? opt.modern_prefix : opt.legacy_prefix) +
                                   avatar_name(n));
          chunk += '\n';
        }
        return row < opt.count;
      });
}

}  // namespace

Result<SeedReport> seed(EventLoop& loop, s3::Client& client, const s3::Bucket& legacy, const s3::Bucket& production,
                        db::Connection& conn, const db::TableRef& table, const SeedOptions& opt,
                        const Progress& progress) {
  SeedReport rep;
  const auto t0 = SteadyClock::now();
  if (auto r = create_exercise_table(conn, table); !r) return tl::unexpected(r.error());
  if (opt.reset) {
    auto d = reset(loop, client, legacy, production, conn, table, opt);
    if (!d) return tl::unexpected(d.error());
    rep.deleted_on_reset = *d;
  }
  const auto t_up = SteadyClock::now();
  if (auto u = upload(loop, client, legacy, production, opt, progress, rep); !u) return tl::unexpected(u.error());
  rep.upload_seconds = since(t_up);
  const auto t_rows = SteadyClock::now();
  auto copied = insert_rows(conn, table, opt);
  if (!copied) return tl::unexpected(copied.error());
  rep.rows = *copied;
  rep.rows_seconds = since(t_rows);
  rep.total_seconds = since(t0);
  return rep;
}

}  // namespace assetmv::seed
