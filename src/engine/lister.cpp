#include "engine/lister.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace assetmv::engine {

namespace {
// Ask for a range's next page once fewer entries than this remain buffered.
constexpr std::size_t kLowWater = s3::kMaxListKeys;
}  // namespace

std::vector<std::string> split_points(std::vector<std::string> sample, std::size_t count) {
  std::sort(sample.begin(), sample.end());
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  std::vector<std::string> out;
  if (sample.empty() || count == 0) return out;
  for (std::size_t i = 1; i <= count; ++i) {
    const std::size_t at = i * sample.size() / (count + 1);
    if (at < sample.size() && (out.empty() || out.back() < sample[at])) out.push_back(sample[at]);
  }
  return out;
}

Lister::Lister(ObjectStore& store, Side side, std::string prefix, std::function<void()> on_progress,
               const std::vector<std::string>& splits, Shard shard)
    : store_(store), side_(side), prefix_(std::move(prefix)), on_progress_(std::move(on_progress)), shard_(shard) {
  ranges_.resize(splits.size() + 1);
  for (std::size_t i = 0; i < splits.size(); ++i) {
    ranges_[i].last = prefix_ + splits[i];
    ranges_[i + 1].start_after = prefix_ + splits[i];
  }
  fill();
}

void Lister::skip_finished() {
  while (current_ + 1 < ranges_.size() && ranges_[current_].done && ranges_[current_].buffer.empty()) ++current_;
}

bool Lister::ready() const {
  if (error_) return true;
  const Range& r = ranges_[current_];
  return !r.buffer.empty() || (r.done && current_ + 1 == ranges_.size());
}

bool Lister::exhausted() const {
  const Range& r = ranges_[current_];
  return r.buffer.empty() && r.done && current_ + 1 == ranges_.size();
}

const Listed* Lister::front() const {
  const Range& r = ranges_[current_];
  return r.buffer.empty() ? nullptr : &r.buffer.front();
}

void Lister::pop() {
  ranges_[current_].buffer.pop_front();
  fill();
}

bool Lister::in_flight() const {
  return std::any_of(ranges_.begin(), ranges_.end(), [](const Range& r) { return r.in_flight; });
}

void Lister::fill() {
  if (error_) return;
  skip_finished();
  const std::size_t end = std::min(ranges_.size(), current_ + kParallelRanges);
  for (std::size_t i = current_; i < end; ++i) {
    Range& r = ranges_[i];
    if (!r.in_flight && !r.done && r.buffer.size() < kLowWater) request(i);
  }
}

void Lister::request(std::size_t index) {
  Range& r = ranges_[index];
  s3::ListParams p;
  p.prefix = prefix_;
  if (r.started) {
    p.continuation_token = r.token;
  } else {
    p.start_after = r.start_after;
  }
  r.started = true;
  r.in_flight = true;
  store_.list(side_, p, [this, index](Result<s3::ListPage> page) { on_page(index, std::move(page)); });
}

void Lister::on_page(std::size_t index, Result<s3::ListPage> page) {
  Range& r = ranges_[index];
  r.in_flight = false;
  if (!page) {
    error_ = page.error();
  } else {
    for (auto& o : page->objects) {
      if (o.key.compare(0, prefix_.size(), prefix_) != 0) continue;  // defensive: the server filtered already
      if (!r.last.empty() && o.key > r.last) {                       // the next range's keys: that range lists them
        r.done = true;
        break;
      }
      if ((!r.last_key.empty() && o.key <= r.last_key) || (!r.start_after.empty() && o.key <= r.start_after)) {
        error_ = Error{
            ErrorKind::Fatal, "ListingOutOfOrder",
            fmt::format("listing of s3://{}/{} is not in key order at {:?} after {:?}; the join needs "
                        "S3's sorted listing",
                        store_.bucket_name(side_), prefix_, o.key, r.last_key.empty() ? r.start_after : r.last_key)};
        break;
      }
      r.last_key = o.key;
      if (!shard_.owns(std::string_view(o.key).substr(prefix_.size()))) continue;  // another shard's name
      ++listed_;
      std::string name = o.key.substr(prefix_.size());
      r.buffer.push_back({std::move(name), std::move(o)});
    }
    if (!r.done && !error_) {
      if (!page->truncated) {
        r.done = true;
      } else if (page->next_continuation_token.empty()) {
        error_ = Error{ErrorKind::Fatal, "ListingNoToken",
                       fmt::format("listing of s3://{}/{} is truncated but has no continuation token",
                                   store_.bucket_name(side_), prefix_)};
      } else {
        r.token = page->next_continuation_token;
      }
    }
  }
  // The window moves as ranges finish: a range that came back empty must not
  // leave the next one unrequested (issue 10: verify waited on it for good).
  fill();
  if (on_progress_) on_progress_();
}

}  // namespace assetmv::engine
