// The engine's session with PostgreSQL: runs the table's statements,
// retrying transient failures with backoff and reconnecting when the
// connection is gone, so that a restart of the database or a dropped
// connection costs the run a pause, not its work.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/histogram.hpp"
#include "core/log.hpp"
#include "core/loop.hpp"
#include "core/retry.hpp"
#include "db/table.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class DbSession {
 public:
  DbSession(std::string conninfo, db::TableRef ref, RetryPolicy policy, db::ConnectOptions options = {})
      : conninfo_(std::move(conninfo)), ref_(std::move(ref)), policy_(policy), options_(options) {}

  Result<void> connect();
  std::string describe() const { return conn_ ? conn_->describe() : db::describe_conninfo(conninfo_); }
  db::PathTable& table() { return *table_; }

  // Runs f(PathTable&) until it succeeds, fails for good, or the attempts
  // are used up. A retry waits (blocking the caller: it is for the scan and
  // the preflight, when nothing else is in flight) and reconnects if needed.
  template <class F>
  auto run(std::string_view what, F&& f) -> decltype(f(std::declval<db::PathTable&>())) {
    for (int failures = 0;;) {
      auto r = attempt(f);
      if (r) return r;
      const auto delay = retry_delay(what, r.error(), ++failures);
      if (!delay) return r;
      std::this_thread::sleep_for(*delay);
    }
  }

  // One try of f, connecting first when there is no usable connection.
  template <class F>
  auto attempt(F&& f) -> decltype(f(std::declval<db::PathTable&>())) {
    if (!conn_ || !conn_->ok()) {
      if (auto c = connect(); !c) return tl::unexpected(c.error());
    }
    const auto start = std::chrono::steady_clock::now();
    auto r = f(*table_);
    statement_latency_.observe(std::chrono::steady_clock::now() - start);
    return r;
  }

  // Each statement's time, answered or failed (for /metrics).
  const Histogram& statement_latency() const { return statement_latency_; }

  // How long to wait before the next try after `failures` failed ones (and
  // says so in the log), or nullopt when the error is not worth retrying or
  // the attempts are used up.
  std::optional<std::chrono::milliseconds> retry_delay(std::string_view what, const Error& e, int failures);

 private:
  std::string conninfo_;
  db::TableRef ref_;
  RetryPolicy policy_;
  db::ConnectOptions options_;
  Jitter jitter_;
  std::unique_ptr<db::Connection> conn_;
  std::unique_ptr<db::PathTable> table_;
  Histogram statement_latency_;
};

// The engine's RowStore on the session: the scan's statements retried in
// place, and compare-and-set retried on the loop's timers, so a database
// backoff never blocks the loop that is serving the copies in flight.
class DbRows final : public RowStore {
 public:
  DbRows(EventLoop& loop, DbSession& db) : loop_(loop), db_(db) {}
  ~DbRows() override;
  DbRows(const DbRows&) = delete;
  DbRows& operator=(const DbRows&) = delete;

  Result<Bounds> id_bounds() override;
  Result<std::vector<db::Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                    const Shard& shard) override;
  Result<std::vector<db::Row>> page(std::int64_t after, int limit) override;
  void compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) override;

 private:
  struct Pending;
  void try_cas(std::shared_ptr<Pending> p);

  EventLoop& loop_;
  DbSession& db_;
  std::vector<EventLoop::TimerId> timers_;  // retries waiting; cancelled if the rows go first
};

}  // namespace assetmv::engine
