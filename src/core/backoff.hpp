// The one way anything here waits before trying again: a jittered backoff
// (RetryPolicy) on the event loop's timers, cancellable, with one stop
// behaviour. The S3 client's retries, the deleter's keys, the database
// session's statements and reconnects, and the replica-lag watch all wait
// through a Backoff, so a stop answers every one of them the same way: each
// waiting retry is given up at once with an Interrupted error ("not retried:
// WHY"), and every later wait is refused the same way, without waiting.
//
// Contract: the loop's thread only; `again` and `given_up` run on it, never
// inside the call that scheduled them; each wait ends in exactly one of them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/retry.hpp"

namespace assetmv {

class Backoff {
 public:
  using Again = std::function<void()>;
  using GivenUp = std::function<void(Error)>;

  Backoff(EventLoop& loop, RetryPolicy policy) : loop_(loop), policy_(policy) {}
  ~Backoff();
  Backoff(const Backoff&) = delete;
  Backoff& operator=(const Backoff&) = delete;

  // The wait before the next attempt after `failures` failed ones whose last
  // was of `kind` (at least `at_least`, a server's Retry-After), or nullopt
  // when the error is not worth retrying or the attempts are used up.
  std::optional<std::chrono::milliseconds> delay(int failures, ErrorKind kind, std::chrono::milliseconds at_least = {});
  // Calls `again` after `delay`, or `given_up` (Interrupted) at once when
  // stopped before it fires. Stopped already: `given_up`, posted.
  void wait(std::chrono::milliseconds delay, Again again, GivenUp given_up);
  // Both in one: the delay for this failure, then the wait; `given_up` gets
  // the failure itself when it is not worth retrying or out of attempts.
  // Returns the delay waited, nullopt when given up.
  std::optional<std::chrono::milliseconds> retry(const Error& failure, int failures, Again again, GivenUp given_up,
                                                 std::chrono::milliseconds at_least = {});

  // Gives up every waiting retry now and every later one, saying `why`.
  void stop(const std::string& why);
  bool stopped() const { return !stopped_why_.empty(); }
  const std::string& why_stopped() const { return stopped_why_; }
  std::size_t waiting() const { return waits_.size(); }
  const RetryPolicy& policy() const { return policy_; }

 private:
  struct Wait {
    EventLoop::TimerId timer = 0;
    Again again;
    GivenUp given_up;
  };
  Error interrupted() const;

  EventLoop& loop_;
  RetryPolicy policy_;
  Jitter jitter_;
  std::unordered_map<std::uint64_t, Wait> waits_;
  std::uint64_t next_ = 0;
  std::string stopped_why_;
};

}  // namespace assetmv
