#include "engine/lister.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

namespace {
// Ask for the next page once fewer entries than this remain buffered.
constexpr std::size_t kLowWater = s3::kMaxListKeys;
}  // namespace

Lister::Lister(s3::Client& client, const s3::Bucket& bucket, std::string prefix, std::function<void()> on_progress)
    : client_(client), bucket_(bucket), prefix_(std::move(prefix)), on_progress_(std::move(on_progress)) {}

void Lister::fill() {
  if (in_flight_ || done_ || error_ || buffer_.size() >= kLowWater) return;
  s3::ListParams p;
  p.prefix = prefix_;
  if (started_) p.continuation_token = token_;
  started_ = true;
  in_flight_ = true;
  client_.list_objects_v2(bucket_, p, [this](Result<s3::ListPage> page) { on_page(std::move(page)); });
}

void Lister::on_page(Result<s3::ListPage> page) {
  in_flight_ = false;
  if (!page) {
    error_ = page.error();
  } else {
    for (auto& o : page->objects) {
      if (o.key.compare(0, prefix_.size(), prefix_) != 0) continue;  // defensive: the server filtered already
      if (listed_ > 0 && o.key <= last_key_) {
        error_ = Error{ErrorKind::Fatal, "ListingOutOfOrder",
                       fmt::format("listing of s3://{}/{} is not in key order at {:?} after {:?}; the join needs "
                                   "S3's sorted listing",
                                   bucket_.name, prefix_, o.key, last_key_)};
        break;
      }
      last_key_ = o.key;
      ++listed_;
      std::string name = o.key.substr(prefix_.size());
      buffer_.push_back({std::move(name), std::move(o)});
    }
    if (!page->truncated) {
      done_ = true;
    } else if (page->next_continuation_token.empty()) {
      error_ =
          Error{ErrorKind::Fatal, "ListingNoToken",
                fmt::format("listing of s3://{}/{} is truncated but has no continuation token", bucket_.name, prefix_)};
    } else {
      token_ = page->next_continuation_token;
    }
  }
  if (on_progress_) on_progress_();
}

}  // namespace assetmv::engine
