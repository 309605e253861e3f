#include "core/byte_budget.hpp"

#include <algorithm>

namespace assetmv {

void ByteBudget::grant(std::uint64_t bytes) {
  held_ += bytes;
  peak_ = std::max(peak_, held_);
}

void ByteBudget::acquire(std::uint64_t bytes, std::function<void()> granted) {
  if (waiting_.empty() && fits(bytes)) {
    grant(bytes);
    return granted();
  }
  waiting_.emplace_back(bytes, std::move(granted));
}

void ByteBudget::release(std::uint64_t bytes) {
  held_ -= std::min(bytes, held_);
  // A granted callback may acquire or release again: take each off the
  // queue before calling it.
  while (!waiting_.empty() && fits(waiting_.front().first)) {
    auto [n, granted] = std::move(waiting_.front());
    waiting_.pop_front();
    grant(n);
    granted();
  }
}

}  // namespace assetmv
