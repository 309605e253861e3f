// What a bucket signs with: the keys of one credential chain (chain.hpp),
// fetched at the start and refreshed ahead of their expiry for as long as
// the run lasts, on the event loop, so the copies never pause for it:
//
//   - a refresh starts botocore's advisory window before the expiry
//     (15 minutes), or half-way through a lifetime shorter than twice that
//     (a 60 s key is refreshed after 30 s);
//   - the old keys keep signing until a margin before they expire (a
//     minute, or a tenth of a short lifetime: clock skew and time on the
//     wire), so a slow or failing refresh costs nothing while they last;
//   - a failed refresh is logged and tried again after a jittered backoff;
//   - a request the store refused as signed with expired or unknown keys
//     (refused()) makes the keys unusable at once and starts a refresh;
//   - requests that find no usable keys wait (when_ready) and go on with
//     the fresh ones; only once the keys have really expired (or were
//     refused) and give_up_after refreshes in a row have failed does the
//     source give up: every waiter and every later request gets a
//     CredentialsExpired error (AccessDenied, which stops the run with exit
//     3: run it again once the source works).
//
// Single-threaded: the loop's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/retry.hpp"
#include "credentials/providers.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::credentials {

// The backoff between failed refreshes: from a second, doubling, at most 30 s.
RetryPolicy refresh_backoff();

struct RefreshOptions {
  std::chrono::seconds advisory{15 * 60};  // botocore's advisory refresh window
  std::chrono::seconds margin{60};         // old keys stop signing this long before they expire
  RetryPolicy retry = refresh_backoff();   // between failed refreshes
  int give_up_after = 5;                   // failed refreshes in a row, once the keys are dead
};

class Source {
 public:
  using Options = RefreshOptions;
  using Clock = std::chrono::system_clock;
  using Ready = std::function<void(const std::optional<Error>&)>;

  // Keys that never change: the environment's, a profile's.
  static std::shared_ptr<Source> fixed(sigv4::Credentials keys, std::string description = "given keys");

  Source(EventLoop& loop, std::unique_ptr<Provider> provider, std::string description, Options options = {});
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // The first keys, fetched by running the loop (the process's start): a
  // failure is a configuration error, one line naming the source (exit 2).
  // A transient one is tried kStartAttempts times.
  Result<void> start();

  // The keys to sign a request with now; nullptr while fresh ones are
  // awaited, or after the source gave up (failure() says why).
  const sigv4::Credentials* keys(Clock::time_point now);
  // Called once keys() gives keys again (nullopt), or with the error once
  // the source has given up. Never from inside when_ready().
  void when_ready(Ready cb);
  // A request signed with `access_key_id` was refused as expired, invalid or
  // unknown: unless newer keys are here already, they are fetched now.
  void refused(const std::string& access_key_id);
  // A refusal that does not say why (a HEAD's bare 403): treated as
  // refused(), but at most once per kDoubtInterval, so that a run of
  // genuine denials costs one fetch, not one each.
  void doubt(const std::string& access_key_id);
  static constexpr std::chrono::seconds kDoubtInterval{10};

  bool refreshable() const { return provider_ != nullptr; }
  const std::string& description() const { return description_; }
  // Two sources sign alike when this is equal: the same static key, or the same chain.
  std::string identity() const;
  const std::optional<Error>& failure() const { return failure_; }

  struct Stats {
    std::uint64_t refreshes = 0;  // successful fetches after the first
    std::uint64_t failures = 0;   // failed fetches
    std::optional<Clock::time_point> expires;
    std::string access_key_id;  // the current keys' (an id, not a secret)
  };
  const Stats& stats() const { return stats_; }

  static constexpr int kStartAttempts = 3;

 private:
  struct FixedTag {};
  Source(FixedTag, sigv4::Credentials keys, std::string description);
  void fetch();
  void fetched(Result<Fresh> r);
  void install(Fresh f, Clock::time_point now);
  void schedule(Clock::time_point when);
  void notify(const std::optional<Error>& e);

  EventLoop* loop_ = nullptr;
  std::unique_ptr<Provider> provider_;
  std::string description_;
  Options o_;
  Jitter jitter_;
  std::optional<Fresh> current_;
  Clock::time_point refresh_at_ = Clock::time_point::max();
  Clock::time_point usable_until_ = Clock::time_point::max();
  bool in_flight_ = false;
  bool starting_ = false;
  bool refused_ = false;            // the store refused the current keys
  Clock::time_point last_doubt_{};  // the last doubt() that fetched
  int failures_in_a_row_ = 0;
  std::optional<Error> start_error_;
  std::optional<Error> failure_;
  EventLoop::TimerId timer_ = 0;
  bool timer_armed_ = false;
  bool timer_passive_ = false;
  Clock::time_point timer_when_{};
  std::vector<Ready> waiters_;
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for callbacks that outlive this
};

}  // namespace assetmv::credentials
