// The engine's session with PostgreSQL, on the event loop: one
// AsyncConnection (db/async.hpp), never a blocking call, so that nothing the
// database does (a row lock held by the application, a slow replica under
// synchronous commit, a server 20 ms away) can stop the loop from serving
// the S3 transfers in flight. Transient failures are retried through the one
// Backoff, reconnecting when the connection is gone, so a restart of the
// database or a dropped connection costs the run a pause, not its work.
//
// Two ways in: run() for the preflight and the table scan, before transfers
// are in flight (it runs the loop until its statements are answered), and
// send() for the compare-and-set statements of a running migration (it
// returns at once; the answer comes on the loop).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/backoff.hpp"
#include "core/histogram.hpp"
#include "core/loop.hpp"
#include "db/async.hpp"
#include "db/table.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class DbSession {
 public:
  // A connection refused or reset as the run starts (a proxy, a failover, a
  // restart) is not a configuration error: tried again, while a wrong host
  // or password still answers in well under a second.
  static constexpr int kConnectAttempts = 3;

  DbSession(EventLoop& loop, std::string conninfo, db::TableRef ref, RetryPolicy policy,
            db::ConnectOptions options = {});

  // Connects before anything moves (the preflight), kConnectAttempts times
  // for a transient failure.
  Result<void> connect();
  std::string describe() const { return conn_.describe(); }
  const db::PathTable& table() const { return table_; }

  // Runs f(PathTable&) until it succeeds, fails for good, or the attempts
  // are used up, its statements answered on the loop and its retries
  // waited out on the loop's timers, reconnecting if needed.
  template <class F>
  auto run(std::string_view what, F&& f) -> decltype(f(std::declval<db::PathTable&>())) {
    for (int failures = 0;;) {
      if (!conn_.connected()) {
        if (auto c = connect_once(); !c) {
          if (!pause_before_retry(what, c.error(), ++failures)) return tl::unexpected(c.error());
          continue;
        }
      }
      const auto start = std::chrono::steady_clock::now();
      auto r = f(table_);
      statement_latency_.observe(std::chrono::steady_clock::now() - start);
      if (r || !pause_before_retry(what, r.error(), ++failures)) return r;
    }
  }

  // One statement, without waiting: sent now (connecting first when there
  // is no connection), retried after a backoff when it fails transiently,
  // `done` called once with its answer, its last error, or Interrupted
  // after stop().
  void send(std::string what, db::Statement statement, std::function<void(Result<db::Rows>)> done);

  // For a stop: statements running now are cancelled (their rows stay as
  // they were: nothing of theirs is committed), none waits out a backoff or
  // is sent again; each answers Interrupted.
  void stop(const std::string& why);
  bool stopped() const { return backoff_.stopped(); }

  // Each statement's time, answered or failed (for /metrics).
  const Histogram& statement_latency() const { return statement_latency_; }

 private:
  struct Try;
  Result<void> connect_once();
  // Logs the failure and waits out its backoff on the loop; false when it is
  // not worth another attempt (or a stop came).
  bool pause_before_retry(std::string_view what, const Error& e, int failures);
  void attempt(std::shared_ptr<Try> t);
  void answered(const std::shared_ptr<Try>& t, Result<db::Rows> r);
  void connect_async();

  EventLoop& loop_;
  db::AsyncConnection conn_;
  db::LoopExecutor exec_;
  db::PathTable table_;
  Backoff backoff_;
  std::vector<std::shared_ptr<Try>> waiting_for_connection_;
  Histogram statement_latency_;
};

// The engine's RowStore on the session: the scan's statements answered (and
// retried) before transfers start, and compare-and-set sent on the loop.
class DbRows final : public RowStore {
 public:
  explicit DbRows(DbSession& db) : db_(db) {}

  Result<Bounds> id_bounds() override;
  Result<std::vector<db::Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                    const Shard& shard) override;
  Result<std::vector<db::Row>> page(std::int64_t after, int limit) override;
  void compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) override;
  void stop(const std::string& why) override { db_.stop(why); }

 private:
  DbSession& db_;
};

}  // namespace assetmv::engine
