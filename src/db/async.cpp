#include "db/async.hpp"

#include <fmt/format.h>

#include <thread>

#include "core/log.hpp"

namespace assetmv::db {

namespace {

std::string_view verb_of(std::string_view sql) { return sql.substr(0, sql.find(' ')); }

// Reads of the socket per wakeup while an answer is incomplete: enough for a
// page of the scan (a few MB), bounded so one answer cannot hold the loop.
constexpr int kMaxReadsAtOnce = 256;

}  // namespace

AsyncConnection::AsyncConnection(EventLoop& loop, std::string conninfo, ConnectOptions options)
    : loop_(loop), conninfo_(std::move(conninfo)), options_(options), description_(describe_conninfo(conninfo_)) {
  // An answer may take as long as a lock wait, and a little more.
  options_.answer_timeout_ms = std::max(options_.answer_timeout_ms, options_.lock_timeout_ms + 1'000);
}

AsyncConnection::~AsyncConnection() {
  *alive_ = false;
  if (deadline_armed_) loop_.cancel(deadline_);
  if (fd_ >= 0) loop_.unwatch(fd_);
}

void AsyncConnection::connect(std::function<void(Result<void>)> done) {
  close("a new connection replaces it");
  state_ = State::Connecting;
  connect_done_ = std::move(done);
  const auto params = connect_params(conninfo_, options_);
  conn_.reset(PQconnectStartParams(params.keys.data(), params.values.data(), 1));
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) return broken(connect_error(conn_.get(), description_));
  // libpq keeps no connect_timeout of its own in a non-blocking connect.
  deadline_ = loop_.call_after(std::chrono::seconds(connect_timeout_s(conn_.get(), options_)),
                               [this, alive = std::weak_ptr<bool>(alive_)] {
                                 if (!alive.lock()) return;
                                 deadline_armed_ = false;
                                 broken(Error{ErrorKind::Retryable, "ConnectionFailed",
                                              fmt::format("cannot connect to PostgreSQL {}: no answer within {} s",
                                                          description_, connect_timeout_s(conn_.get(), options_)),
                                              0});
                               });
  deadline_armed_ = true;
  want_write_ = true;  // as libpq says to begin: as if PQconnectPoll had answered WRITING
  watch(true);
}

void AsyncConnection::watch(bool want_write) {
  const int fd = conn_ ? PQsocket(conn_.get()) : -1;
  if (fd != fd_ && fd_ >= 0) loop_.unwatch(fd_);  // a connect can move to another socket (another host, SSL)
  fd_ = fd;
  want_write_ = want_write;
  if (fd_ < 0) return;
  loop_.watch(fd_, true, want_write, [this, alive = std::weak_ptr<bool>(alive_)](bool r, bool w, bool e) {
    if (alive.lock()) on_socket(r, w, e);
  });
  // An idle ready connection cannot end a wait: only the statements in flight can.
  if (state_ == State::Ready && in_flight_.empty() && !want_write)
    loop_.rebind(
        fd_,
        [this, alive = std::weak_ptr<bool>(alive_)](bool r, bool w, bool e) {
          if (alive.lock()) on_socket(r, w, e);
        },
        true);
}

void AsyncConnection::poll_connect() {
  switch (PQconnectPoll(conn_.get())) {
    case PGRES_POLLING_READING:
      return watch(false);
    case PGRES_POLLING_WRITING:
      return watch(true);
    case PGRES_POLLING_OK:
      return connected_now();
    default:
      return broken(connect_error(conn_.get(), description_));
  }
}

void AsyncConnection::connected_now() {
  if (PQsetnonblocking(conn_.get(), 1) != 0 || PQenterPipelineMode(conn_.get()) != 1)
    return broken(connect_error(conn_.get(), description_));
  quiet_notices(conn_.get());
  state_ = State::Ready;
  if (deadline_armed_) loop_.cancel(deadline_);
  deadline_armed_ = false;
  watch(false);
  // The session's timeouts go first; the connect is done once they are set.
  send(session_settings(options_), [this](Result<Rows> r) {
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    if (!r) {
      close("its session could not be set up");
      if (done) done(tl::unexpected(r.error()));
      return;
    }
    if (done) done({});
  });
}

void AsyncConnection::send(Statement statement, Done done) {
  if (state_ != State::Ready) {
    loop_.post([this, done = std::move(done), verb = std::string(verb_of(statement.sql))] {
      done(fail(ErrorKind::Retryable, "NotConnected", fmt::format("{} on {}: not connected", verb, description_)));
    });
    return;
  }
  std::vector<const char*> values;
  values.reserve(statement.params.size());
  for (const auto& p : statement.params) values.push_back(p ? p->c_str() : nullptr);
  const bool sent = PQsendQueryParams(conn_.get(), statement.sql.c_str(), static_cast<int>(values.size()), nullptr,
                                      values.data(), nullptr, nullptr, 0) == 1 &&
                    PQpipelineSync(conn_.get()) == 1;
  if (!sent) {
    Error e = statement_error(conn_.get(), nullptr, statement.sql, description_);
    loop_.post([done = std::move(done), e] { done(tl::unexpected(e)); });
    return;
  }
  const bool first = in_flight_.empty();
  in_flight_.push_back({std::move(statement), std::move(done)});
  if (first) arm_answer_timer();
  flush();
}

void AsyncConnection::flush() {
  const int f = PQflush(conn_.get());
  if (f < 0) return broken(statement_error(conn_.get(), nullptr, "flush", description_));
  watch(f == 1);  // more to write: wait until the socket takes it
}

void AsyncConnection::arm_answer_timer() {
  if (deadline_armed_) loop_.cancel(deadline_);
  deadline_ = loop_.call_after(std::chrono::milliseconds(options_.answer_timeout_ms),
                               [this, alive = std::weak_ptr<bool>(alive_)] {
                                 if (!alive.lock()) return;
                                 deadline_armed_ = false;
                                 const std::string verb(verb_of(in_flight_.front().statement.sql));
                                 broken(Error{ErrorKind::Retryable, "NoAnswer",
                                              fmt::format("{} on {}: no answer within {} ms; connection dropped", verb,
                                                          description_, options_.answer_timeout_ms),
                                              0});
                               });
  deadline_armed_ = true;
}

void AsyncConnection::on_socket(bool readable, bool writable, bool error) {
  if (state_ == State::Connecting) return poll_connect();
  if (state_ != State::Ready) return;
  if (writable && want_write_) flush();
  if (state_ == State::Ready && (readable || error)) read_answers();
}

void AsyncConnection::read_answers() {
  // libpq reads at most its buffer's worth (16 KB to start) per call: while
  // an answer is incomplete, what the kernel holds already is read now, not
  // after the loop's next wait (which may pause to coalesce wakeups, and a
  // 10,000-row page arrives in dozens of reads).
  for (int reads = 0;; ++reads) {
    if (PQconsumeInput(conn_.get()) == 0)
      return broken(statement_error(conn_.get(), nullptr,
                                    in_flight_.empty() ? "idle" : in_flight_.front().statement.sql, description_));
    if (PQisBusy(conn_.get()) == 0 || reads == kMaxReadsAtOnce) break;
  }
  bool progressed = false;
  while (!in_flight_.empty() && PQisBusy(conn_.get()) == 0) {
    std::unique_ptr<PGresult, ResultDeleter> r(PQgetResult(conn_.get()));
    Pending& head = in_flight_.front();
    if (!head.results_done) {
      if (!r) {
        head.results_done = true;  // its sync's answer comes next
        continue;
      }
      const auto st = PQresultStatus(r.get());
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        head.rows.emplace(r.release());  // as PQexec: the last result, unless one is an error
      } else if (!head.error) {
        head.error = statement_error(conn_.get(), r.get(), head.statement.sql, description_);
      }
      continue;
    }
    if (!r) break;                                                 // its sync's answer has not arrived yet
    if (PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) continue;  // nothing else comes between
    Pending done = std::move(head);
    in_flight_.pop_front();
    progressed = true;
    if (done.error) {
      done.done(tl::unexpected(*done.error));
    } else if (done.rows) {
      done.done(std::move(*done.rows));
    } else {
      done.done(tl::unexpected(statement_error(conn_.get(), nullptr, done.statement.sql, description_)));
    }
    if (state_ != State::Ready) return;  // a callback closed us
  }
  if (progressed) {
    if (in_flight_.empty()) {
      if (deadline_armed_) loop_.cancel(deadline_);
      deadline_armed_ = false;
      watch(want_write_);  // idle: the watch turns passive
    } else {
      arm_answer_timer();  // the next one gets its own time
    }
  }
  if (PQstatus(conn_.get()) != CONNECTION_OK) broken(statement_error(conn_.get(), nullptr, "connection", description_));
}

void AsyncConnection::cancel() {
  if (state_ != State::Ready || in_flight_.empty()) return;
  PGcancel* c = PQgetCancel(conn_.get());
  if (c == nullptr) return;
  // PQcancel opens a connection of its own and waits for it: never on the loop.
  std::thread([c] {
    char err[256];
    PQcancel(c, err, sizeof err);
    PQfreeCancel(c);
  }).detach();
}

void AsyncConnection::close(const std::string& why) {
  if (auto done = std::move(connect_done_); done) {
    connect_done_ = nullptr;
    loop_.post([done = std::move(done), e = Error{ErrorKind::Interrupted, "Interrupted",
                                                  fmt::format("connecting to {}: {}", description_, why), 0}] {
      done(tl::unexpected(e));
    });
  }
  if (deadline_armed_) loop_.cancel(deadline_);
  deadline_armed_ = false;
  if (fd_ >= 0) loop_.unwatch(fd_);
  fd_ = -1;
  conn_.reset();
  state_ = State::Closed;
  auto pending = std::move(in_flight_);
  in_flight_.clear();
  for (auto& p : pending)
    p.done(fail(ErrorKind::Interrupted, "Interrupted",
                fmt::format("{} on {}: not answered: {}", verb_of(p.statement.sql), description_, why)));
}

void AsyncConnection::broken(Error e) {
  const bool was_connecting = state_ == State::Connecting;
  if (deadline_armed_) loop_.cancel(deadline_);
  deadline_armed_ = false;
  if (fd_ >= 0) loop_.unwatch(fd_);
  fd_ = -1;
  conn_.reset();
  state_ = State::Closed;
  // A lost connection is worth another: retryable, unless it never came up
  // for a reason no retry cures (the credentials, the database's name, TLS
  // set up wrong: connect_error says which).
  const bool permanent = e.kind == ErrorKind::AccessDenied || e.kind == ErrorKind::NotFound ||
                         (was_connecting && e.kind == ErrorKind::Fatal);
  if (!permanent) e.kind = ErrorKind::Retryable;
  auto pending = std::move(in_flight_);
  in_flight_.clear();
  auto done = std::move(connect_done_);
  connect_done_ = nullptr;
  // Callbacks go last: they may reconnect.
  if (was_connecting && done) {
    loop_.post([done = std::move(done), e] { done(tl::unexpected(e)); });
  } else if (done) {
    done(tl::unexpected(e));
  }
  for (auto& p : pending) p.done(tl::unexpected(e));
}

Result<Rows> LoopExecutor::exec(const std::string& sql, const std::vector<Param>& params) {
  std::optional<Result<Rows>> out;
  conn_.send({sql, params}, [&out](Result<Rows> r) { out = std::move(r); });
  if (auto w = loop_.run_until("a database answer", [&out] { return out.has_value(); }); !w)
    return tl::unexpected(w.error());
  return std::move(*out);
}

}  // namespace assetmv::db
