// Streams the objects under one prefix in key order, one page ahead of its
// consumer: a page is requested as soon as the buffer runs low, so listing
// overlaps with the work done on the previous page while memory stays at
// about two pages (2,000 entries).
//
// Contract: call fill() whenever the consumer may wait (it is idempotent);
// ready() says whether front()/pop() can answer without waiting. The lister
// fails (error()) on a listing error after the client's retries, and on a
// listing that goes backwards, since the join relies on key order.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "s3/client.hpp"

namespace assetmv::engine {

struct Listed {
  std::string name;  // key without the prefix
  s3::ObjectEntry entry;
};

class Lister {
 public:
  // on_progress is called on the loop after each page arrives.
  Lister(s3::Client& client, const s3::Bucket& bucket, std::string prefix, std::function<void()> on_progress);

  void fill();
  bool ready() const { return !buffer_.empty() || done_ || error_.has_value(); }
  bool exhausted() const { return buffer_.empty() && done_; }
  const Listed* front() const { return buffer_.empty() ? nullptr : &buffer_.front(); }
  void pop() { buffer_.pop_front(); }
  const std::optional<Error>& error() const { return error_; }
  std::uint64_t listed() const { return listed_; }
  bool in_flight() const { return in_flight_; }

 private:
  void on_page(Result<s3::ListPage> page);

  s3::Client& client_;
  const s3::Bucket& bucket_;
  std::string prefix_;
  std::function<void()> on_progress_;
  std::deque<Listed> buffer_;
  std::string token_;
  std::string last_key_;
  bool in_flight_ = false;
  bool done_ = false;
  bool started_ = false;
  std::optional<Error> error_;
  std::uint64_t listed_ = 0;
};

}  // namespace assetmv::engine
