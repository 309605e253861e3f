#include "core/backoff.hpp"

#include <algorithm>

namespace assetmv {

Backoff::~Backoff() {
  for (const auto& [key, w] : waits_) loop_.cancel(w.timer);
}

std::optional<std::chrono::milliseconds> Backoff::delay(int failures, ErrorKind kind,
                                                        std::chrono::milliseconds at_least) {
  auto d = policy_.next_delay(failures, kind, jitter_());
  if (d) d = std::max(*d, at_least);
  return d;
}

Error Backoff::interrupted() const {
  return Error{ErrorKind::Interrupted, "Interrupted", "not retried: " + stopped_why_, 0};
}

void Backoff::wait(std::chrono::milliseconds delay, Again again, GivenUp given_up) {
  if (stopped()) {
    loop_.post([given_up = std::move(given_up), e = interrupted()] { given_up(e); });
    return;
  }
  const std::uint64_t key = next_++;
  const auto timer = loop_.call_after(delay, [this, key] {
    auto it = waits_.find(key);
    if (it == waits_.end()) return;
    auto next = std::move(it->second.again);
    waits_.erase(it);
    next();
  });
  waits_.emplace(key, Wait{timer, std::move(again), std::move(given_up)});
}

std::optional<std::chrono::milliseconds> Backoff::retry(const Error& failure, int failures, Again again,
                                                        GivenUp given_up, std::chrono::milliseconds at_least) {
  const auto d = delay(failures, failure.kind, at_least);
  if (!d) {
    loop_.post([given_up = std::move(given_up), failure] { given_up(failure); });
    return std::nullopt;
  }
  wait(*d, std::move(again), std::move(given_up));
  return d;
}

void Backoff::stop(const std::string& why) {
  stopped_why_ = why.empty() ? "stopped" : why;
  // Moved out first: a given_up may schedule again (and be refused).
  auto waits = std::move(waits_);
  waits_.clear();
  for (auto& [key, w] : waits) {
    loop_.cancel(w.timer);
    w.given_up(interrupted());
  }
}

}  // namespace assetmv
