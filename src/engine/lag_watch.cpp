#include "engine/lag_watch.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

namespace {

// Reconnecting to a source that failed: from a second, doubling, at most 30 s;
// the readings go on meanwhile (the source counts as unreadable).
RetryPolicy reconnect_policy() {
  RetryPolicy p;
  p.base = std::chrono::milliseconds(1'000);
  p.cap = std::chrono::milliseconds(30'000);
  p.max_attempts = 1'000'000;
  return p;
}

}  // namespace

struct LagWatch::Source {
  Source(EventLoop& loop, std::string info, const db::ConnectOptions& options)
      : conninfo(std::move(info)), conn(loop, conninfo, options), backoff(loop, reconnect_policy()) {}
  std::string conninfo;
  db::AsyncConnection conn;
  Backoff backoff;
  int failures = 0;
  bool may_connect = true;  // its backoff after a failure has passed
  std::optional<double> seconds;
  std::string name;
  std::string problem;
};

LagWatch::LagWatch(EventLoop& loop, LagSources sources, double max_seconds, db::ConnectOptions options)
    : loop_(loop), on_primary_(sources.replicas.empty()), max_(max_seconds), gate_(max_seconds) {
  if (on_primary_) {
    sources_.push_back(std::make_unique<Source>(loop, std::move(sources.primary), options));
  } else {
    for (auto& r : sources.replicas) sources_.push_back(std::make_unique<Source>(loop, std::move(r), options));
  }
}

LagWatch::~LagWatch() {
  *alive_ = false;
  if (timer_armed_) loop_.cancel(timer_);
}

Result<void> LagWatch::check(Source& s) {
  std::optional<Result<void>> connected;
  s.conn.connect([&connected](Result<void> r) { connected = std::move(r); });
  if (auto w = loop_.run_until("a connection for the lag check", [&] { return connected.has_value(); }); !w) return w;
  if (!*connected) {
    auto e = connected->error();
    e.message = fmt::format("{}: {}", on_primary_ ? "--max-replica-lag (on the primary)" : "--replica-db", e.message);
    return tl::unexpected(e);
  }
  db::LoopExecutor exec(loop_, s.conn);
  if (on_primary_) {
    auto n = db::check_primary_lag_access(exec);
    if (!n) return tl::unexpected(n.error());
    return {};
  }
  return db::check_replica(exec);
}

Result<std::unique_ptr<LagWatch>> LagWatch::start(EventLoop& loop, LagSources sources, double max_seconds,
                                                  db::ConnectOptions options) {
  std::unique_ptr<LagWatch> w(new LagWatch(loop, std::move(sources), max_seconds, options));
  for (auto& s : w->sources_)
    if (auto ok = w->check(*s); !ok) return tl::unexpected(ok.error());
  w->round();
  if (auto r = loop.run_until("the first lag reading", [&w] { return w->outstanding_ == 0; }); !r)
    return tl::unexpected(r.error());
  if (!w->state_.worst_seconds) return fail(ErrorKind::Fatal, "lag_unreadable", w->state_.problem);
  return w;
}

void LagWatch::round() {
  timer_armed_ = false;
  outstanding_ = sources_.size();
  for (auto& s : sources_) read(*s);
}

void LagWatch::read(Source& s) {
  if (!s.conn.connected()) {
    // Still in its backoff: the last problem stands for this round.
    if (!s.may_connect) return answered(s, std::nullopt, db::describe_conninfo(s.conninfo), s.problem);
    s.conn.connect([this, &s, alive = std::weak_ptr<bool>(alive_)](Result<void> r) {
      if (!alive.lock()) return;
      if (!r) return failed(s, r.error());
      read(s);
    });
    return;
  }
  const auto statement = on_primary_ ? db::primary_lag_statement() : db::replica_lag_statement();
  s.conn.send(statement, [this, &s, alive = std::weak_ptr<bool>(alive_)](Result<db::Rows> r) {
    if (!alive.lock()) return;
    if (!r) return failed(s, r.error());
    s.failures = 0;
    if (!on_primary_) {
      const auto lag = db::replica_lag_of(*r, s.conn.describe());
      return answered(s, lag.seconds, lag.name, "");
    }
    const auto lags = db::primary_lag_of(*r);
    if (lags.empty())
      return answered(s, std::nullopt, s.conn.describe(), "no standby connected to the primary any more");
    const auto worst = std::max_element(lags.begin(), lags.end(), [](const db::ReplicaLag& a, const db::ReplicaLag& b) {
      return a.seconds < b.seconds;
    });
    answered(s, worst->seconds, worst->name, "");
  });
}

void LagWatch::failed(Source& s, const Error& e) {
  // Read again only after a backoff: a source that is down is not hammered.
  s.may_connect = false;
  s.conn.close("its reading failed");
  const auto delay = s.backoff.delay(++s.failures, ErrorKind::Retryable).value_or(std::chrono::seconds(30));
  s.backoff.wait(
      delay, [&s] { s.may_connect = true; }, [](const Error&) {});
  answered(s, std::nullopt, s.conn.describe(), e.describe());
}

void LagWatch::answered(Source& s, std::optional<double> seconds, std::string name, std::string problem) {
  s.seconds = seconds;
  s.name = std::move(name);
  s.problem = std::move(problem);
  if (outstanding_ == 0 || --outstanding_ > 0) return;  // each source answers once a round
  // The round is complete: the worst reading, or the first that failed.
  LagState next;
  next.worst_seconds = 0.0;
  for (const auto& src : sources_) {
    if (!src->seconds) {
      next = {std::nullopt, src->name, src->problem, false};
      break;
    }
    if (*src->seconds >= *next.worst_seconds) {
      next.worst_seconds = src->seconds;
      next.worst = src->name;
    }
  }
  next.throttled = gate_.update(next.worst_seconds);
  state_ = std::move(next);
  // Nothing waits on the next round: it must not keep a wait alive by itself.
  timer_ = loop_.call_passive_at(EventLoop::Clock::now() + kPollInterval, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.lock()) round();
  });
  timer_armed_ = true;
}

}  // namespace assetmv::engine
