// The shared pacer: every request to one store asks it before starting, so a
// SlowDown seen by one request slows all of them.
//
// It combines three limits:
//  - a concurrency window that grows additively on success and shrinks
//    multiplicatively on throttling (AIMD), so it settles just below the
//    store's throttling point;
//  - a pause after throttling, during which nothing new starts;
//  - an optional request-rate cap (token bucket) for production courtesy.
// Pure state machine: time is passed in; no clock, no threads.
#pragma once

#include <chrono>
#include <cstdint>

namespace assetmv {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  struct Options {
    double initial_window = 64;
    double min_window = 4;
    double max_window = 1024;
    double decrease_factor = 0.7;  // window *= this on throttle
    std::chrono::milliseconds decrease_cooldown{
        500};                                       // at most one decrease per this, so one burst of 503s counts once
    std::chrono::milliseconds throttle_pause{100};  // nothing new starts for this long after a throttle
    double max_rate = 0;                            // requests per second; 0 means no cap
  };

  enum class Outcome { Ok, Throttled, Failed };

  struct Admission {
    bool go = false;
    TimePoint retry_at{};  // when !go and the wait is for time, not for a completion
    bool wait_for_completion = false;
  };

  explicit Pacer(Options options);

  // Asks to start one request now. On go, the request counts as in flight
  // until release(). Otherwise retry at retry_at, or after the next release()
  // when wait_for_completion is set.
  Admission try_acquire(TimePoint now);
  void release(TimePoint now, Outcome outcome);
  // A new request-rate cap, from now on (0: none): an operator's change
  // during the run. Starts from a full burst at the new rate.
  void set_max_rate(double max_rate);
  double max_rate() const { return opt_.max_rate; }
  // A throttle reported inside a successful answer (DeleteObjects' per-key
  // SlowDown): slows everyone as a 503 would, with nothing to release.
  void throttled(TimePoint now);

  double window() const { return window_; }
  int in_flight() const { return in_flight_; }
  std::uint64_t throttle_events() const { return throttle_events_; }

 private:
  void refill(TimePoint now);

  Options opt_;
  double window_;
  int in_flight_ = 0;
  TimePoint paused_until_{};
  TimePoint last_decrease_{};
  bool decreased_once_ = false;
  double tokens_ = 0;
  TimePoint last_refill_{};
  bool refilled_once_ = false;
  std::uint64_t throttle_events_ = 0;
};

}  // namespace assetmv
