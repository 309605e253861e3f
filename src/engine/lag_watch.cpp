#include "engine/lag_watch.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

LagWatch::LagWatch(LagSources sources, double max_seconds, db::ConnectOptions options)
    : sources_(std::move(sources)), max_(max_seconds), options_(options), gate_(max_seconds) {
  const std::size_t n = sources_.replicas.empty() ? 1 : sources_.replicas.size();
  conns_.resize(n);
}

Result<std::unique_ptr<LagWatch>> LagWatch::start(LagSources sources, double max_seconds, db::ConnectOptions options) {
  std::unique_ptr<LagWatch> w(new LagWatch(std::move(sources), max_seconds, options));
  const bool on_primary = w->sources_.replicas.empty();
  for (std::size_t i = 0; i < w->conns_.size(); ++i) {
    const std::string& info = on_primary ? w->sources_.primary : w->sources_.replicas[i];
    auto c = db::Connection::open(info, options);
    if (!c) {
      auto e = c.error();
      e.message = fmt::format("{}: {}", on_primary ? "--max-replica-lag (on the primary)" : "--replica-db", e.message);
      return tl::unexpected(e);
    }
    w->conns_[i] = std::make_unique<db::Connection>(std::move(*c));
    if (on_primary) {
      auto n = db::check_primary_lag_access(*w->conns_[i]);
      if (!n) return tl::unexpected(n.error());
    } else if (auto ok = db::check_replica(*w->conns_[i]); !ok) {
      return tl::unexpected(ok.error());
    }
  }
  const Reading first = w->read_all();
  if (!first.worst) return fail(ErrorKind::Fatal, "lag_unreadable", first.problem);
  w->state_ = {first.worst, first.name, "", w->gate_.update(first.worst)};
  w->thread_ = std::thread([raw = w.get()] { raw->loop(); });
  return w;
}

LagWatch::~LagWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

LagState LagWatch::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

LagWatch::Reading LagWatch::read_all() {
  Reading out;
  out.worst = 0.0;
  const bool on_primary = sources_.replicas.empty();
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    auto& c = conns_[i];
    const std::string& info = on_primary ? sources_.primary : sources_.replicas[i];
    if (!c || !c->ok()) {
      auto opened = db::Connection::open(info, options_);
      if (!opened) return {std::nullopt, db::describe_conninfo(info), opened.error().describe()};
      c = std::make_unique<db::Connection>(std::move(*opened));
    }
    if (on_primary) {
      auto lags = db::read_primary_lag(*c);
      if (!lags) return {std::nullopt, c->describe(), lags.error().describe()};
      if (lags->empty()) return {std::nullopt, c->describe(), "no standby connected to the primary any more"};
      for (const auto& l : *lags)
        if (l.seconds >= *out.worst) out = {l.seconds, l.name, ""};
    } else {
      auto lag = db::read_replica_lag(*c);
      if (!lag) return {std::nullopt, c->describe(), lag.error().describe()};
      if (lag->seconds >= *out.worst) out = {lag->seconds, lag->name, ""};
    }
  }
  return out;
}

void LagWatch::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, kPollInterval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Reading r = read_all();  // blocking libpq, outside the lock
    lock.lock();
    state_ = {r.worst, r.name, r.problem, gate_.update(r.worst)};
  }
}

}  // namespace assetmv::engine
