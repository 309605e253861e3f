// The engine's session with PostgreSQL: runs the table's statements,
// retrying transient failures with backoff and reconnecting when the
// connection is gone, so that a restart of the database or a dropped
// connection costs the run a pause, not its work.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/log.hpp"
#include "core/retry.hpp"
#include "db/table.hpp"

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

}  // namespace assetmv::engine
