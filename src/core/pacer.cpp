#include "core/pacer.hpp"

#include <algorithm>
#include <cmath>

namespace assetmv {

namespace {
// Bursts of at most a tenth of a second's worth of requests: smooth enough
// for a store's per-second limits, loose enough not to starve the pipeline.
constexpr double kBurstSeconds = 0.1;
}  // namespace

Pacer::Pacer(Options options) : opt_(options), window_(options.initial_window) {
  window_ = std::clamp(window_, opt_.min_window, opt_.max_window);
}

void Pacer::refill(TimePoint now) {
  if (opt_.max_rate <= 0) return;
  const double burst = std::max(1.0, opt_.max_rate * kBurstSeconds);
  if (!refilled_once_) {
    tokens_ = burst;
    last_refill_ = now;
    refilled_once_ = true;
    return;
  }
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  if (elapsed > 0) {
    tokens_ = std::min(burst, tokens_ + elapsed * opt_.max_rate);
    last_refill_ = now;
  }
}

Pacer::Admission Pacer::try_acquire(TimePoint now) {
  if (now < paused_until_) return {false, paused_until_, false};
  if (in_flight_ >= static_cast<int>(std::floor(window_))) return {false, {}, true};
  refill(now);
  if (opt_.max_rate > 0) {
    if (tokens_ < 1.0) {
      const double wait_s = (1.0 - tokens_) / opt_.max_rate;
      return {false, now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s)), false};
    }
    tokens_ -= 1.0;
  }
  ++in_flight_;
  return {true, {}, false};
}

void Pacer::release(TimePoint now, Outcome outcome) {
  in_flight_ = std::max(0, in_flight_ - 1);
  switch (outcome) {
    case Outcome::Ok:
      // Additive increase: about one more slot per window's worth of successes.
      window_ = std::min(opt_.max_window, window_ + 1.0 / window_);
      break;
    case Outcome::Throttled:
      throttled(now);
      break;
    case Outcome::Failed:
      break;
  }
}

void Pacer::set_max_rate(double max_rate) {
  opt_.max_rate = std::max(0.0, max_rate);
  refilled_once_ = false;
}

void Pacer::throttled(TimePoint now) {
  ++throttle_events_;
  paused_until_ = std::max(paused_until_, now + opt_.throttle_pause);
  if (!decreased_once_ || now - last_decrease_ >= opt_.decrease_cooldown) {
    window_ = std::max(opt_.min_window, window_ * opt_.decrease_factor);
    last_decrease_ = now;
    decreased_once_ = true;
  }
}

}  // namespace assetmv
