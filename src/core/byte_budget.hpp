// A budget of bytes held in memory at once, shared by every transfer that
// buffers object data (the copies between two services): a transfer asks for
// its bytes before it reads them and gives them back when they are written,
// so the process's memory is bounded by the budget, not by object sizes or
// the number of copies in flight. Grants go in the order asked (no large ask
// starves behind small ones); an ask larger than the whole budget is granted
// when nothing else is held, so it cannot wait forever. Single-threaded: the
// loop's thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

namespace assetmv {

class ByteBudget {
 public:
  explicit ByteBudget(std::uint64_t capacity) : capacity_(capacity) {}

  // Calls `granted` once the bytes are reserved: at once when they fit
  // (inside this call), else from a later release().
  void acquire(std::uint64_t bytes, std::function<void()> granted);
  void release(std::uint64_t bytes);

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t held() const { return held_; }
  std::uint64_t peak() const { return peak_; }
  std::size_t waiting() const { return waiting_.size(); }

 private:
  bool fits(std::uint64_t bytes) const { return held_ == 0 || held_ + bytes <= capacity_; }
  void grant(std::uint64_t bytes);

  std::uint64_t capacity_;
  std::uint64_t held_ = 0;
  std::uint64_t peak_ = 0;
  std::deque<std::pair<std::uint64_t, std::function<void()>>> waiting_;
};

}  // namespace assetmv
