// Spares the database: while any replica lags more than --max-replica-lag,
// the run is paused (no new copy or delete starts, so neither writes nor
// copies pile up ahead of their rows), and it resumes once the worst lag is
// back under half the limit (hysteresis, so it does not flap at the limit).
//
// The lag is read once a second on the event loop, each source on an
// AsyncConnection of its own: a replica that stops answering fails its
// statement after its answer timeout and is reconnected after a backoff
// (the one Backoff), and never holds the loop. A lag that cannot be read
// counts as too much: the safe side is to wait. The caller reads state() on
// the loop and says what changed.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.hpp"
#include "core/error.hpp"
#include "core/loop.hpp"
#include "db/async.hpp"
#include "db/lag.hpp"

namespace assetmv::engine {

// The throttle decision on each reading. Pure.
class LagGate {
 public:
  explicit LagGate(double max_seconds) : max_(max_seconds) {}
  // lag: the worst replica's, nullopt when it could not be read.
  bool update(std::optional<double> lag) {
    if (!lag || *lag > max_) {
      closed_ = true;
    } else if (*lag <= max_ * kResumeFraction) {
      closed_ = false;
    }
    return closed_;
  }
  bool closed() const { return closed_; }

 private:
  static constexpr double kResumeFraction = 0.5;  // resume well under the limit, not at it
  double max_;
  bool closed_ = false;
};

struct LagSources {
  std::string primary;                // the --db conninfo, used when replicas is empty
  std::vector<std::string> replicas;  // --replica-db
};

struct LagState {
  std::optional<double> worst_seconds;  // nullopt: not read (see problem)
  std::string worst;                    // which replica
  std::string problem;                  // why it could not be read
  bool throttled = false;
};

class LagWatch {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{1000};

  // Connects to each source and checks it can be read (the role, a standby
  // connected, a replica in recovery), reads it once, then watches it on
  // the loop. An error here is the preflight's: exit 2, nothing changed.
  static Result<std::unique_ptr<LagWatch>> start(EventLoop& loop, LagSources sources, double max_seconds,
                                                 db::ConnectOptions options);
  ~LagWatch();
  LagWatch(const LagWatch&) = delete;
  LagWatch& operator=(const LagWatch&) = delete;

  const LagState& state() const { return state_; }
  double max_seconds() const { return max_; }

 private:
  struct Source;
  LagWatch(EventLoop& loop, LagSources sources, double max_seconds, db::ConnectOptions options);
  Result<void> check(Source& s);
  void round();
  void read(Source& s);
  void answered(Source& s, std::optional<double> seconds, std::string name, std::string problem);
  void failed(Source& s, const Error& e);

  EventLoop& loop_;
  bool on_primary_ = true;
  double max_;
  std::vector<std::unique_ptr<Source>> sources_;
  LagGate gate_;
  LagState state_;
  std::size_t outstanding_ = 0;  // sources not answered in this round
  EventLoop::TimerId timer_ = 0;
  bool timer_armed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace assetmv::engine
