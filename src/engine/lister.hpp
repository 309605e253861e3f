// Streams the objects under one prefix in key order, split into key ranges
// that are listed in parallel (StartAfter at each split point) and handed
// out in order, so the consumer sees one sorted stream while several pages
// are in flight. Each range keeps about two pages (2,000 entries) buffered:
// memory is bounded by kParallelRanges, never by the object count.
//
// Contract: the lister keeps its own window full. It starts listing when it
// is constructed and asks for the next pages itself whenever a page lands or
// pop() drains a range, so a consumer never has to prompt it: whenever
// ready() is false, a page is in flight for the range the consumer reads, and
// its arrival calls on_progress. ready() says whether front()/pop() can
// answer without waiting. The lister fails (error()) on a listing error after
// the client's retries, and on a listing that goes backwards, since the join
// relies on key order. It must outlive its pages in flight (in_flight()).
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/shard.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

struct Listed {
  std::string name;  // key without the prefix
  s3::ObjectEntry entry;
};

class Lister {
 public:
  // Ranges listed at once: enough to keep the join fed at tens of thousands
  // of keys per second with 30 ms per page, few enough to stay frugal.
  static constexpr std::size_t kParallelRanges = 4;

  // splits: names (without the prefix), sorted and unique; range i holds the
  // keys after splits[i-1] up to and including splits[i]. Empty: one range.
  // on_progress is called on the loop after each page arrives. Only names in
  // `shard` are handed out (and counted in listed()); the others are still
  // listed, since S3 can only list by key order.
  Lister(ObjectStore& store, Side side, std::string prefix, std::function<void()> on_progress,
         const std::vector<std::string>& splits = {}, Shard shard = {});
  // Pages in flight hold a pointer to it.
  Lister(const Lister&) = delete;
  Lister& operator=(const Lister&) = delete;

  bool ready() const;
  bool exhausted() const;
  const Listed* front() const;
  void pop();
  const std::optional<Error>& error() const { return error_; }
  std::uint64_t listed() const { return listed_; }
  bool in_flight() const;

 private:
  struct Range {
    std::string start_after;  // full key; empty for the first range
    std::string last;         // full key, inclusive; empty for the last range
    std::deque<Listed> buffer;
    std::string token;
    std::string last_key;
    bool started = false;
    bool in_flight = false;
    bool done = false;
  };
  // Keeps kParallelRanges ranges from the current one listed or listing.
  void fill();
  void request(std::size_t index);
  void on_page(std::size_t index, Result<s3::ListPage> page);
  void skip_finished();

  ObjectStore& store_;
  Side side_;
  std::string prefix_;
  std::function<void()> on_progress_;
  std::vector<Range> ranges_;
  std::size_t current_ = 0;  // the range the consumer reads
  std::optional<Error> error_;
  Shard shard_;
  std::uint64_t listed_ = 0;
};

// Up to `count` split points spread evenly over a sorted sample of names.
std::vector<std::string> split_points(std::vector<std::string> sample, std::size_t count);

}  // namespace assetmv::engine
