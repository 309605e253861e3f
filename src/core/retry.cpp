#include "core/retry.hpp"

#include <algorithm>
#include <cmath>

namespace assetmv {

std::optional<std::chrono::milliseconds> RetryPolicy::next_delay(int failures, ErrorKind kind, double u) const {
  if (kind != ErrorKind::Retryable && kind != ErrorKind::Throttled) return std::nullopt;
  if (failures < 1 || failures >= max_attempts) return std::nullopt;
  const auto b = kind == ErrorKind::Throttled ? throttled_base : base;
  // base * 2^(failures-1), computed in double to avoid overflow, then capped.
  const double ceiling =
      std::min(static_cast<double>(cap.count()), static_cast<double>(b.count()) * std::exp2(failures - 1));
  const double clamped_u = std::clamp(u, 0.0, 1.0);
  // Full jitter: uniform in [0, ceiling], but never a zero wait that would
  // turn a retry storm into a tight loop.
  const auto ms = static_cast<std::int64_t>(std::max(1.0, ceiling * clamped_u));
  return std::chrono::milliseconds(ms);
}

}  // namespace assetmv
