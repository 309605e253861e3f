// Spares the database: while any replica lags more than --max-replica-lag,
// the run is paused (no new copy or delete starts, so neither writes nor
// copies pile up ahead of their rows), and it resumes once the worst lag is
// back under half the limit (hysteresis, so it does not flap at the limit).
//
// The lag is read on a thread of its own, once a second, on connections of
// its own: a replica that stops answering holds that thread (up to its
// answer timeout), never the event loop. A lag that cannot be read counts
// as too much: the safe side is to wait. The thread only records; the
// caller reads state() on the loop and says what changed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "db/lag.hpp"
#include "db/pg.hpp"

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
  // connected, a replica in recovery), reads it once, then starts watching.
  // An error here is the preflight's: exit 2, nothing changed.
  static Result<std::unique_ptr<LagWatch>> start(LagSources sources, double max_seconds, db::ConnectOptions options);
  ~LagWatch();
  LagWatch(const LagWatch&) = delete;
  LagWatch& operator=(const LagWatch&) = delete;

  LagState state() const;
  double max_seconds() const { return max_; }

 private:
  LagWatch(LagSources sources, double max_seconds, db::ConnectOptions options);
  struct Reading {
    std::optional<double> worst;
    std::string name;
    std::string problem;
  };
  Reading read_all();
  void loop();

  LagSources sources_;
  double max_;
  db::ConnectOptions options_;
  std::vector<std::unique_ptr<db::Connection>> conns_;  // one per source, reopened after a failure
  LagGate gate_;
  mutable std::mutex mu_;
  LagState state_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace assetmv::engine
