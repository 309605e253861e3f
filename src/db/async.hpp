// One PostgreSQL connection driven by the event loop, never blocking it:
// libpq's non-blocking API throughout (PQconnectStartParams/PQconnectPoll,
// PQsendQueryParams, PQflush, PQconsumeInput/PQisBusy/PQgetResult), the
// connection's socket watched by the loop, and pipeline mode (libpq >= 14):
// statements queue and several are in flight at once, each followed by its
// own sync (so each is its own implicit transaction, as PQexec would run it),
// their answers delivered in order.
//
// A connection that breaks, or gives no answer for answer_timeout_ms while a
// statement waits (a dead server, a blackhole: statement_timeout cannot fire
// when its answer cannot reach us), fails every statement in flight with a
// Retryable error and is closed: the session above reconnects. cancel()
// asks the server to cancel what is running (PQcancel, from a thread of its
// own: libpq 15's cancel request connects and blocks).
//
// Contract: the loop's thread only; callbacks run on it, never inside the
// call that started them.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "db/pg.hpp"

namespace assetmv::db {

class AsyncConnection {
 public:
  using Done = std::function<void(Result<Rows>)>;

  AsyncConnection(EventLoop& loop, std::string conninfo, ConnectOptions options);
  ~AsyncConnection();
  AsyncConnection(const AsyncConnection&) = delete;
  AsyncConnection& operator=(const AsyncConnection&) = delete;

  // Connects (closing any earlier connection): the session is set up with
  // lock_timeout and statement_timeout before `done` hears of it. A refused
  // or unreachable server is Retryable, a wrong password AccessDenied, a
  // missing database NotFound; the message names user@host:port/db, never
  // the password.
  void connect(std::function<void(Result<void>)> done);
  // Queues a statement; sent at once when connected (it fails as Retryable,
  // "NotConnected", when not: the caller connects first).
  void send(Statement statement, Done done);
  // Asks the server to cancel the statements running now; they answer with
  // SQLSTATE 57014 (query_canceled) or, had they finished, with their result.
  void cancel();
  // Closes the connection; statements in flight fail as Interrupted.
  void close(const std::string& why);

  bool connected() const { return state_ == State::Ready; }
  bool connecting() const { return state_ == State::Connecting; }
  std::size_t in_flight() const { return in_flight_.size(); }
  const std::string& describe() const { return description_; }

 private:
  enum class State { Closed, Connecting, Ready };
  struct Pending {
    Statement statement;
    Done done;
    bool results_done = false;  // its results read; its sync's result comes next
    std::optional<Rows> rows = {};
    std::optional<Error> error = {};
  };

  void poll_connect();
  void connected_now();
  void on_socket(bool readable, bool writable, bool error);
  void read_answers();
  void flush();
  void arm_answer_timer();
  void watch(bool want_write);
  void broken(Error e);

  EventLoop& loop_;
  std::string conninfo_;
  ConnectOptions options_;
  std::string description_;
  std::unique_ptr<PGconn, ConnDeleter> conn_;
  State state_ = State::Closed;
  int fd_ = -1;
  bool want_write_ = false;
  std::function<void(Result<void>)> connect_done_;
  std::deque<Pending> in_flight_;
  EventLoop::TimerId deadline_ = 0;  // the connect's, then the answer's
  bool deadline_armed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Runs one statement on an AsyncConnection and waits for it by running the
// loop: for the preflight and the table scan, before transfers are in flight
// (the loop still serves its timers and the metrics page meanwhile).
class LoopExecutor final : public Executor {
 public:
  LoopExecutor(EventLoop& loop, AsyncConnection& conn) : loop_(loop), conn_(conn) {}
  Result<Rows> exec(const std::string& sql, const std::vector<Param>& params = {}) override;
  const std::string& describe() const override { return conn_.describe(); }

 private:
  EventLoop& loop_;
  AsyncConnection& conn_;
};

}  // namespace assetmv::db
