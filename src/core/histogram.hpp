// A latency histogram with fixed buckets, as Prometheus exposes them
// (cumulative counts per upper bound, plus the sum and count). Fixed bounds
// keep it a plain value: cheap to update per request, cheap to copy for a
// scrape.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace assetmv {

class Histogram {
 public:
  // Upper bounds in seconds: from a fast local answer to a stalled request.
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

  void observe(std::chrono::steady_clock::duration d) {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < kBounds.size() && s > kBounds[i]) ++i;
    ++counts_[i];  // counts_[kBounds.size()] is +Inf
    sum_ += s;
    ++count_;
  }
  // Observations at or below kBounds[i] (i == kBounds.size(): all of them).
  std::uint64_t cumulative(std::size_t i) const {
    std::uint64_t n = 0;
    for (std::size_t j = 0; j <= i && j < counts_.size(); ++j) n += counts_[j];
    return n;
  }
  double sum() const { return sum_; }
  std::uint64_t count() const { return count_; }

 private:
  std::array<std::uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace assetmv
