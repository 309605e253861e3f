// Retry policy: capped exponential backoff with full jitter, as AWS advises
// for S3 (and as fits PostgreSQL serialization failures). Pure: the caller
// supplies the random draw, so tests can pin every delay.
#pragma once

#include <chrono>
#include <optional>
#include <random>

#include "core/error.hpp"

namespace assetmv {

struct RetryPolicy {
  std::chrono::milliseconds base{50};             // first backoff ceiling
  std::chrono::milliseconds throttled_base{250};  // a throttled server needs longer to recover
  std::chrono::milliseconds cap{20'000};          // no single wait beyond this
  int max_attempts = 10;                          // attempts in all, the first included

  // Delay before the next attempt after `failures` failed attempts (>= 1)
  // whose last failure was of `kind`; nullopt when the error is not worth
  // retrying or the attempts are used up. `u` is a uniform draw in [0, 1).
  std::optional<std::chrono::milliseconds> next_delay(int failures, ErrorKind kind, double u) const;
};

// A per-thread source of uniform draws for RetryPolicy::next_delay.
class Jitter {
 public:
  explicit Jitter(std::uint64_t seed = std::random_device{}()) : rng_(seed) {}
  double operator()() { return dist_(rng_); }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> dist_{0.0, 1.0};
};

// Tells a store that is down from a store that failed one request. Each
// request already had its retries; when `threshold` of them in a row fail for
// good with a transient error and none succeeds in between, the run should
// stop (exit 3, resume later) instead of marking every remaining item failed
// and hammering a store that is not there.
class OutageBreaker {
 public:
  explicit OutageBreaker(int threshold) : threshold_(threshold) {}
  // Counts a request that failed after its retries; true when the run should stop.
  bool failed(const Error& e) {
    if (!e.retryable()) return false;  // a per-item problem, not an outage
    return ++in_a_row_ >= threshold_;
  }
  void succeeded() { in_a_row_ = 0; }
  int in_a_row() const { return in_a_row_; }

 private:
  int threshold_;
  int in_a_row_ = 0;
};

}  // namespace assetmv
