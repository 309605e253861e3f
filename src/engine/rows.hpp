// The engine's side of PostgreSQL: a session that retries transient failures
// (reconnecting when the connection is gone) and the keyset scan that feeds
// the table's rows into the Spool.
//
// Privileges: the scan needs SELECT on the table; compare-and-set needs
// UPDATE(path) (and SELECT, which its WHERE clause reads). Nothing else:
// see docs/privileges.md.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/log.hpp"
#include "core/retry.hpp"
#include "db/table.hpp"
#include "engine/report.hpp"
#include "engine/spool.hpp"

namespace assetmv::engine {

class DbSession {
 public:
  DbSession(std::string conninfo, db::TableRef ref, RetryPolicy policy, db::ConnectOptions options = {})
      : conninfo_(std::move(conninfo)), ref_(std::move(ref)), policy_(policy), options_(options) {}

  Result<void> connect();
  std::string describe() const { return conn_ ? conn_->describe() : db::describe_conninfo(conninfo_); }
  db::PathTable& table() { return *table_; }

  // Runs f(PathTable&) until it succeeds, fails for good, or the attempts
  // are used up. A retry waits (blocking the caller: without the database
  // there is nothing the run can finish anyway) and reconnects if needed.
  template <class F>
  auto run(std::string_view what, F&& f) -> decltype(f(std::declval<db::PathTable&>())) {
    for (int failures = 0;;) {
      if (!conn_ || !conn_->ok()) {
        auto c = connect();
        if (!c) {
          if (!back_off(what, c.error(), ++failures)) return tl::unexpected(c.error());
          continue;
        }
      }
      auto r = f(*table_);
      if (r || !back_off(what, r.error(), ++failures)) return r;
    }
  }

 private:
  // Waits before the next attempt after `failures` failed ones, or returns
  // false when the error is not worth retrying or the attempts are used up.
  bool back_off(std::string_view what, const Error& e, int failures);

  std::string conninfo_;
  db::TableRef ref_;
  RetryPolicy policy_;
  db::ConnectOptions options_;
  Jitter jitter_;
  std::unique_ptr<db::Connection> conn_;
  std::unique_ptr<db::PathTable> table_;
};

struct ScanOptions {
  std::string legacy_prefix;
  std::string dest_prefix;
  // Also spool rows under the destination prefix and count every row by
  // kind (verify); otherwise only rows under the legacy prefix (migrate).
  bool audit = false;
  std::int64_t range_ids = 100'000;  // ids per keyset range: one short statement each
  int batch_rows = 10'000;           // rows per statement at most
};

// A uniform sample of the names seen (reservoir sampling), from which the
// listings' split points are chosen: ranges then hold similar numbers of keys.
class NameSample {
 public:
  static constexpr std::size_t kSize = 1024;
  void offer(const std::string& name);
  const std::vector<std::string>& names() const { return names_; }
  std::uint64_t seen() const { return seen_; }

 private:
  std::vector<std::string> names_;
  std::uint64_t seen_ = 0;
  std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;  // xorshift: reproducible, no global RNG
};

// Walks the table by primary-key ranges and adds the rows under the prefixes
// to the spool (tagged kRowLegacy/kRowDest), counting rows in `counts` and
// sampling their names into `sample`. Stops early, with an Interrupted
// error, when stop() turns true.
Result<void> scan_rows(DbSession& db, const ScanOptions& o, Spool& spool, Counts& counts, NameSample& sample,
                       const std::function<bool()>& stop);

// Split points for listing the prefixes in parallel: one range per
// kKeysPerRange rows sampled, at most kMaxRanges ranges.
std::vector<std::string> listing_splits(const NameSample& sample);

// What migrate and verify both do first: scan the table into `spool` with
// the prefixes given (audit: rows under both, else under the legacy one
// only), then return the listings' split points, shared by both prefixes
// since they hold the same names.
Result<std::vector<std::string>> read_rows(DbSession& db, ScanOptions o, std::string legacy_prefix,
                                           std::string dest_prefix, bool audit, Spool& spool, Counts& counts,
                                           const std::function<bool()>& stop);

}  // namespace assetmv::engine
