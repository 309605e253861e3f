// A single-threaded event loop over epoll: file-descriptor readiness, timers
// and posted callbacks. The HTTP layer drives curl multi from it and the
// database layer can watch libpq's socket from it, so one thread keeps
// hundreds of requests in flight.
//
// Contract: every method except post_from_any_thread() must be called on the
// loop's thread. Callbacks run on that thread, one at a time; they may add or
// remove watches and timers, including their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace assetmv {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;
  using IoCallback = std::function<void(bool readable, bool writable, bool error)>;
  using TimerId = std::uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  TimerId call_at(Clock::time_point when, Callback cb);
  TimerId call_after(Clock::duration delay, Callback cb) { return call_at(Clock::now() + delay, std::move(cb)); }
  // A passive timer is one that cannot end a wait by itself (a refresh due
  // in half an hour while nothing waits for it): it fires like any other but
  // does not count in nothing_pending(), so a wait it alone could end is
  // still reported instead of sleeping until it fires.
  TimerId call_passive_at(Clock::time_point when, Callback cb);
  void cancel(TimerId id);  // no-op for a fired or unknown timer

  void post(Callback cb);                  // runs on the next iteration
  void post_from_any_thread(Callback cb);  // thread-safe; wakes the loop

  // Watches fd for the given readiness, replacing any earlier watch of fd.
  void watch(int fd, bool want_read, bool want_write, IoCallback cb);
  void unwatch(int fd);
  // Replaces the callback of a watched fd, keeping its registration (no
  // system call); false when fd is not watched. A passive watch is one that
  // cannot end a wait by itself (an idle kept-alive connection, registered
  // only to learn of its closing): it does not count in nothing_pending().
  bool rebind(int fd, IoCallback cb, bool passive);

  // One iteration: waits at most max_wait for I/O or the next timer, then runs
  // what is due. Returns the number of callbacks run.
  int run_once(Clock::duration max_wait);
  // Iterates until done() holds (checked before every wait) or stop() is
  // called. A wait that nothing could ever end (no posted task, no timer, no
  // watched descriptor besides the loop's own wakeup) is a bug of the
  // caller's, not a state to sleep in: it fails at once with a Fatal
  // "WaitWithNothingPending" error naming `waiting_for`. A caller that waits
  // for another thread's post_from_any_thread() keeps a watch or a timer.
  [[nodiscard]] Result<void> run_until(std::string_view waiting_for, const std::function<bool()>& done);
  // True when nothing could end a wait: see run_until.
  bool nothing_pending();
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  // Wakeup coalescing: when the previous wait returned only a few I/O
  // events, pause up to `window` (never past the next timer) before waiting
  // again, so that answers trickling in from a busy server are handled in
  // batches, one wakeup each, instead of one wakeup per answer. Zero (the
  // default) turns it off. Trades at most `window` of latency for CPU.
  void set_coalescing(Clock::duration window) { coalesce_ = window; }
  // The window assetmv runs with (and the benches that measure its stack):
  // answers from a busy store trickle in one per wakeup; waiting up to 10 ms
  // to take them in batches cut client CPU per object by about a third on
  // the local gateway, and costs nothing in throughput with hundreds of
  // requests in flight (docs/performance.md).
  static constexpr Clock::duration kCoalesceWindow = std::chrono::milliseconds(10);

  std::size_t timers() const { return timers_.size(); }
  std::size_t passive_timers() const { return passive_timers_; }
  std::size_t passive_watches() const { return passive_; }

 private:
  int run_posted();
  int run_timers();
  TimerId add_timer(Clock::time_point when, Callback cb, bool passive);

  int epfd_ = -1;
  int wakefd_ = -1;  // eventfd for post_from_any_thread
  bool stopped_ = false;
  Clock::duration coalesce_{};
  int last_io_events_ = 0;
  TimerId next_timer_ = 1;
  std::map<std::pair<Clock::time_point, TimerId>, Callback> timers_;
  struct TimerEntry {
    Clock::time_point when;
    bool passive = false;
  };
  std::unordered_map<TimerId, TimerEntry> timer_when_;
  std::size_t passive_timers_ = 0;  // how many of timers_ are passive
  struct Watch {
    IoCallback cb;
    bool passive = false;
  };
  std::unordered_map<int, Watch> watches_;
  std::size_t passive_ = 0;  // how many of watches_ are passive
  std::deque<Callback> posted_;
  std::mutex foreign_mu_;
  std::vector<Callback> foreign_;
};

}  // namespace assetmv
