#include "engine/s3_store.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

namespace {

// A server-side copy is signed with the destination's keys and reads the
// source with them: with two sets of keys (--source-profile, --dest-profile)
// that cannot be assumed to work, so the copy goes through the client.
bool on_one_service(const s3::Bucket& a, const s3::Bucket& b) {
  const auto signer = [](const s3::Bucket& x) { return x.credentials ? x.credentials->identity() : std::string(); };
  if (signer(a) != signer(b)) return false;
  if (a.endpoint.is_aws() && b.endpoint.is_aws()) return true;  // cross-region copies work within AWS
  return a.endpoint.scheme == b.endpoint.scheme && a.endpoint.authority() == b.endpoint.authority();
}

}  // namespace

S3Store::S3Store(s3::Client& client, s3::Bucket legacy, s3::Bucket dest, const s3::WriteOptions& write)
    : client_(client),
      legacy_(std::move(legacy)),
      dest_(std::move(dest)),
      write_(s3::write_headers(write)),
      sse_given_(!write.sse.empty()) {
  same_service_ = on_one_service(legacy_, dest_);
}

void S3Store::list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) {
  client_.list_objects_v2(bucket(side), p, std::move(cb));
}

void S3Store::head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) {
  client_.head_object(bucket(side), key, std::move(cb));
}

void S3Store::copy(s3::CopyParams p, std::uint64_t /*size*/, Callback<std::string> cb) {
  p.source_bucket = legacy_.name;
  p.dest_headers = s3::with_overrides(std::move(p.dest_headers), write_);
  client_.copy_object(dest_, std::move(p), std::move(cb));
}

void S3Store::multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, Callback<std::string> cb) {
  p.source_bucket = legacy_.name;
  p.dest_headers = s3::with_overrides(std::move(p.dest_headers), write_);
  client_.multipart_copy(dest_, p, size, part_size, std::move(cb));
}

void S3Store::restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) {
  client_.head_object(dest_, dest_key, [this, dest_key, etag, cb = std::move(cb)](Result<s3::ObjectInfo> info) mutable {
    if (!info) return cb(tl::unexpected(info.error()));
    if (info->size > s3::kMaxSingleCopyBytes)
      return cb(fail(
          ErrorKind::Fatal, "TooLargeToRestamp",
          fmt::format("{} is over {} bytes: one CopyObject cannot restamp it", dest_key, s3::kMaxSingleCopyBytes)));
    s3::CopyParams p;
    p.source_bucket = dest_.name;
    p.source_key = dest_key;
    p.dest_key = dest_key;
    p.if_match = etag;
    p.replace_metadata = true;
    p.replace_headers = std::move(info->replayable);
    // A copy onto itself is encrypted afresh: as it was, unless --sse says
    // otherwise (then none of the old key's headers may go with it).
    p.dest_headers = s3::with_overrides(sse_given_ ? std::vector<http::Header>{} : info->encryption, write_);
    client_.copy_object(dest_, std::move(p), std::move(cb));
  });
}

void S3Store::stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                          Callback<std::string> cb) {
  p.source_bucket = legacy_.name;
  p.dest_headers = s3::with_overrides(std::move(p.dest_headers), write_);
  client_.stream_copy(legacy_, dest_, p, size, part_size, budget, std::move(cb));
}

void S3Store::delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) {
  client_.delete_objects(legacy_, legacy, std::move(cb));
}

void S3Store::delete_object(const s3::ObjectVersion& legacy, Callback<bool> cb) {
  client_.delete_object(legacy_, legacy, std::move(cb));
}

void S3Store::throttled() { client_.pacer().throttled(Pacer::Clock::now()); }

void S3Store::stop_retrying(const std::string& why) { client_.stop_retrying(why); }

}  // namespace assetmv::engine
