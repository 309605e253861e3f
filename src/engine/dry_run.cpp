#include "engine/dry_run.hpp"

#include <memory>

namespace assetmv::engine {

namespace {
std::uint64_t parts(std::uint64_t size, std::uint64_t part_size) {
  return part_size == 0 ? 1 : (size + part_size - 1) / part_size;
}
}  // namespace

template <class T>
void RecordingStore::answer(Callback<T> cb, T value) {
  ++pending_;
  loop_.post([this, cb = std::move(cb), value = Result<T>(std::move(value))]() mutable {
    --pending_;
    cb(std::move(value));
  });
}

void RecordingStore::wrote(const s3::CopyParams& p, std::uint64_t size, bool in_parts) {
  if (!in_parts && s3::etag_is_md5(p.if_match)) return;  // the copy's ETag proves it: no HEAD follows
  s3::ObjectInfo info;
  info.size = size;
  info.etag = p.if_match;
  info.source_etag = p.if_match;
  written_[p.dest_key] = std::move(info);
}

void RecordingStore::head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) {
  if (side == Side::Dest) {
    if (auto it = written_.find(key); it != written_.end()) {
      forecast_.add("HeadObject");
      auto info = std::move(it->second);
      written_.erase(it);
      return answer<s3::ObjectInfo>(std::move(cb), std::move(info));
    }
  }
  real_.head(side, key, std::move(cb));
}

// The copy's answer is the listed ETag: what a copy of that version has.
void RecordingStore::copy(s3::CopyParams p, std::uint64_t size, Callback<std::string> cb) {
  forecast_.add("CopyObject");
  wrote(p, size, false);
  answer<std::string>(std::move(cb), p.if_match);
}

void RecordingStore::multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size,
                                    Callback<std::string> cb) {
  forecast_.add("HeadObject");  // the source's headers, which the parts do not carry
  forecast_.add("CreateMultipartUpload");
  forecast_.add("UploadPartCopy", parts(size, part_size));
  forecast_.add("CompleteMultipartUpload");
  wrote(p, size, true);
  answer<std::string>(std::move(cb), p.if_match);
}

void RecordingStore::stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& /*budget*/,
                                 Callback<std::string> cb) {
  const bool in_parts = size > part_size;
  if (!in_parts) {
    forecast_.add("GetObject");
    forecast_.add("PutObject");
  } else {
    forecast_.add("HeadObject");
    forecast_.add("CreateMultipartUpload");
    forecast_.add("GetObject", parts(size, part_size));
    forecast_.add("UploadPart", parts(size, part_size));
    forecast_.add("CompleteMultipartUpload");
  }
  wrote(p, size, in_parts);
  answer<std::string>(std::move(cb), p.if_match);
}

void RecordingStore::restamp(const std::string& /*dest_key*/, const std::string& etag, Callback<std::string> cb) {
  forecast_.add("HeadObject");  // its headers, to copy it onto itself keeping them
  forecast_.add("CopyObject");
  answer<std::string>(std::move(cb), etag);
}

void RecordingStore::delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) {
  forecast_.add("DeleteObjects");
  forecast_.deleted_keys += legacy.size();
  answer<s3::DeleteResult>(std::move(cb), s3::DeleteResult{});  // quiet mode: no failure listed
}

void RecordingStore::delete_object(const s3::ObjectVersion& /*legacy*/, Callback<bool> cb) {
  forecast_.add("DeleteObject");
  ++forecast_.deleted_keys;
  answer<bool>(std::move(cb), true);
}

void CountingRows::compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) {
  ++statements_;
  Ids ids;
  ids.reserve(items.size());
  for (const auto& i : items) ids.push_back(i.id);
  loop_.post([done = std::move(done), ids = std::move(ids)]() mutable { done(std::move(ids)); });
}

}  // namespace assetmv::engine
