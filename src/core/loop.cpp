#include "core/loop.hpp"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <thread>

namespace assetmv {

namespace {
constexpr int kMaxEventsPerWait = 256;  // events drained per epoll_wait; more come next iteration
constexpr int kCoalesceBelow = 8;       // a wakeup with fewer I/O events than this was mostly overhead
}  // namespace

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || wakefd_ < 0) throw std::runtime_error("event loop: cannot create epoll or eventfd descriptors");
  watch(wakefd_, true, false, [this](bool, bool, bool) {
    std::uint64_t n = 0;
    while (::read(wakefd_, &n, sizeof n) > 0) {
    }
    std::vector<Callback> batch;
    {
      std::lock_guard lock(foreign_mu_);
      batch.swap(foreign_);
    }
    for (auto& cb : batch) posted_.push_back(std::move(cb));
  });
}

EventLoop::~EventLoop() {
  if (epfd_ >= 0) ::close(epfd_);
  if (wakefd_ >= 0) ::close(wakefd_);
}

EventLoop::TimerId EventLoop::add_timer(Clock::time_point when, Callback cb, bool passive) {
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(cb));
  timer_when_.emplace(id, TimerEntry{when, passive});
  if (passive) ++passive_timers_;
  return id;
}

EventLoop::TimerId EventLoop::call_at(Clock::time_point when, Callback cb) {
  return add_timer(when, std::move(cb), false);
}

EventLoop::TimerId EventLoop::call_passive_at(Clock::time_point when, Callback cb) {
  return add_timer(when, std::move(cb), true);
}

void EventLoop::cancel(TimerId id) {
  auto it = timer_when_.find(id);
  if (it == timer_when_.end()) return;
  timers_.erase({it->second.when, id});
  if (it->second.passive) --passive_timers_;
  timer_when_.erase(it);
}

void EventLoop::post(Callback cb) { posted_.push_back(std::move(cb)); }

void EventLoop::post_from_any_thread(Callback cb) {
  {
    std::lock_guard lock(foreign_mu_);
    foreign_.push_back(std::move(cb));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
}

void EventLoop::watch(int fd, bool want_read, bool want_write, IoCallback cb) {
  epoll_event ev{};
  ev.events = (want_read ? EPOLLIN : 0U) | (want_write ? EPOLLOUT : 0U);
  ev.data.fd = fd;
  const bool known = watches_.count(fd) != 0;
  if (epoll_ctl(epfd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
    // A descriptor closed and reused behind our back: re-register it.
    if (known && errno == ENOENT) {
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    } else if (!known && errno == EEXIST) {
      epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    }
  }
  auto& w = watches_[fd];
  if (w.passive) --passive_;
  w = {std::move(cb), false};
}

void EventLoop::unwatch(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  if (it->second.passive) --passive_;
  watches_.erase(it);
  // Fails harmlessly with EBADF when the descriptor is already closed.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

bool EventLoop::rebind(int fd, IoCallback cb, bool passive) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  if (it->second.passive) --passive_;
  if (passive) ++passive_;
  it->second = {std::move(cb), passive};
  return true;
}

int EventLoop::run_posted() {
  int ran = 0;
  // Only what was posted before this point: callbacks that post again run next time.
  for (auto n = posted_.size(); n > 0 && !posted_.empty(); --n) {
    auto cb = std::move(posted_.front());
    posted_.pop_front();
    cb();
    ++ran;
  }
  return ran;
}

int EventLoop::run_timers() {
  int ran = 0;
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    auto entry = timer_when_.find(node.key().second);
    if (entry->second.passive) --passive_timers_;
    timer_when_.erase(entry);
    node.mapped()();
    ++ran;
  }
  return ran;
}

int EventLoop::run_once(Clock::duration max_wait) {
  int ran = run_posted();
  auto wait = max_wait;
  if (!posted_.empty() || ran > 0) wait = Clock::duration::zero();
  if (!timers_.empty()) {
    wait = std::min(wait, std::max(Clock::duration::zero(), timers_.begin()->first.first - Clock::now()));
  }
  if (coalesce_ > Clock::duration::zero() && wait > Clock::duration::zero() && last_io_events_ > 0 &&
      last_io_events_ < kCoalesceBelow) {
    const auto pause = std::min(wait, coalesce_);
    std::this_thread::sleep_for(pause);
    wait -= pause;
  }
  // Round up so that a timer 0.3 ms away does not become a busy loop of zero waits.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  std::array<epoll_event, kMaxEventsPerWait> events{};
  const int n = epoll_wait(epfd_, events.data(), kMaxEventsPerWait, static_cast<int>(std::min<long long>(ms, 60'000)));
  last_io_events_ = std::max(n, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[static_cast<std::size_t>(i)].data.fd;
    const auto e = events[static_cast<std::size_t>(i)].events;
    auto it = watches_.find(fd);
    if (it == watches_.end()) continue;  // unwatched by an earlier callback of this batch
    auto cb = it->second.cb;             // a copy: the callback may replace its own watch
    cb((e & (EPOLLIN | EPOLLHUP)) != 0, (e & EPOLLOUT) != 0, (e & EPOLLERR) != 0);
    ++ran;
  }
  ran += run_timers();
  return ran;
}

bool EventLoop::nothing_pending() {
  // watches_ holds wakefd_, and passive watches and timers cannot end a wait.
  if (!posted_.empty() || timers_.size() > passive_timers_ || watches_.size() - passive_ > 1) return false;
  std::lock_guard lock(foreign_mu_);
  return foreign_.empty();
}

Result<void> EventLoop::run_until(std::string_view waiting_for, const std::function<bool()>& done) {
  stopped_ = false;
  while (!stopped_ && !done()) {
    if (nothing_pending())
      return fail(ErrorKind::Fatal, "WaitWithNothingPending",
                  fmt::format("internal error: waiting for {} with nothing in flight, no timer and no task that "
                              "could end the wait; stopping rather than hanging (please report this)",
                              waiting_for));
    run_once(std::chrono::seconds(1));
  }
  return {};
}

}  // namespace assetmv
