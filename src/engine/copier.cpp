#include "engine/copier.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace assetmv::engine {

void Copier::fail(const ItemPtr& item, std::string why, std::optional<Error> e) {
  settled_(item, Settled{Settled::Kind::Failed, std::move(why), "", std::move(e)});
}

void Copier::unreadable(const ItemPtr& item, std::string kind, std::string why) {
  settled_(item, Settled{Settled::Kind::Unreadable, std::move(why), std::move(kind)});
}

// CopyObject and PutObject store in STANDARD unless told: the listed class
// goes with every copy (a STANDARD one needs nothing), or the operator's.
std::vector<http::Header> Copier::class_header(const Item& i) const {
  const std::string& c = o_.storage_class.empty() ? i.src->storage_class : o_.storage_class;
  if (c.empty() || (o_.storage_class.empty() && c == "STANDARD")) return {};
  return {{"x-amz-storage-class", c}};
}

s3::CopyParams Copier::params(const Item& i) const {
  s3::CopyParams p;
  p.source_key = i.legacy_key;
  p.dest_key = i.dest_key;
  p.if_match = i.src->etag;                 // only the version we listed
  p.if_none_match = o_.conditional_writes;  // never overwrite what is there (where the store honours it)
  p.dest_headers = class_header(i);
  return p;
}

void Copier::start(const ItemPtr& item) {
  if (!s3::is_archived_class(item->src->storage_class)) return begin(item);
  // A listing says GLACIER whether or not a restore has made it readable:
  // the HEAD's x-amz-restore says which.
  store_.head(Side::Legacy, item->legacy_key, [this, item](Result<s3::ObjectInfo> info) {
    if (!info) return answered(item, tl::unexpected(info.error()), false);
    if (!s3::restore_completed(info->restore))
      return unreadable(item, "archived",
                        fmt::format("{} is in {}{}: restore it (RestoreObject) and run again; its rows stay on it",
                                    item->legacy_key, item->src->storage_class,
                                    info->restore.empty() ? " and not restored" : ", its restore still going on"));
    begin(item);
  });
}

void Copier::begin(const ItemPtr& item) {
  const auto size = item->src->size;
  const bool in_parts = size > o_.multipart_threshold || o_.multipart_always;
  if (!store_.same_service() || (in_parts && !part_copy_)) return across(item);
  if (in_parts) {
    const auto part = part_size(Route::ServerSide, size, o_.multipart_threshold, o_.memory_budget);
    store_.multipart_copy(params(*item), size, part, [this, item](Result<std::string> r) {
      // No UploadPartCopy here (the s3 client said so once): this copy, and
      // every later one in parts, streams instead; nothing was written.
      if (!r && r.error().code == "NotImplemented") {
        part_copy_ = false;
        return across(item);
      }
      answered(item, std::move(r), true);
    });
    return;
  }
  store_.copy(params(*item), size, [this, item](Result<std::string> r) { answered(item, std::move(r), false); });
}

std::uint64_t Copier::part_size(Route route, std::uint64_t object_size, std::uint64_t multipart_threshold,
                                std::uint64_t memory_budget) {
  std::uint64_t part = route == Route::ServerSide
                           ? std::min(multipart_threshold, s3::kMaxSingleCopyBytes)
                           : std::min({multipart_threshold, kMaxStreamPartBytes, memory_budget / 2});
  part = std::max(part, s3::kMinPartBytes);
  const std::uint64_t fewest = (object_size + s3::kMaxParts - 1) / s3::kMaxParts;  // S3's 10,000 parts
  return std::max(part, fewest);
}

// Two services cannot copy server-side: the bytes pass through this process,
// under the memory budget, read only from the listed version (If-Match) and
// never written over an existing object (If-None-Match).
void Copier::across(const ItemPtr& item) {
  const auto size = item->src->size;
  const auto part = part_size(Route::Streamed, size, o_.multipart_threshold, o_.memory_budget);
  if (part > kMaxStreamPartBytes)
    return fail(item, fmt::format("{} bytes needs parts of {} bytes to stay within S3's {} parts, over the {} bytes "
                                  "assetmv reads at once between two services",
                                  size, part, s3::kMaxParts, kMaxStreamPartBytes));
  store_.stream_copy(params(*item), size, part, budget_, [this, item, multipart = size > part](Result<std::string> r) {
    answered(item, std::move(r), multipart);
  });
}

void Copier::answered(const ItemPtr& item, Result<std::string> etag, bool multipart) {
  if (etag) return verifier_.copied(item, *etag, multipart);
  const Error& e = etag.error();

  if (e.kind == ErrorKind::PreconditionFailed) return verifier_.refused(item);
  // 403 InvalidObjectState: archived after all (an Intelligent-Tiering
  // archive tier lists as INTELLIGENT_TIERING); 400 naming server-side
  // encryption: a customer-provided key (SSE-C) we do not have.
  if (e.code == "InvalidObjectState")
    return unreadable(item, "archived",
                      fmt::format("{} is archived ({}): restore it and run again; its rows stay on it",
                                  item->legacy_key, e.describe()));
  if (e.code == "InvalidRequest" && e.message.find("Server Side Encryption") != std::string::npos)
    return unreadable(item, "sse_c",
                      fmt::format("{} is encrypted with a customer-provided key (SSE-C), which assetmv does not "
                                  "handle: copy it by hand; its rows stay on it ({})",
                                  item->legacy_key, e.describe()));
  if (stops_the_run(e)) return fail(item, e.describe(), e);
  // No source: perhaps another worker moved it since the listing (the
  // verifier looks). NoSuchUpload is a multipart upload aborted under us: a
  // plain failure, which the outage breaker ignores as not retryable.
  if (e.kind == ErrorKind::NotFound && e.code != "NoSuchUpload") return verifier_.vanished(item, e);
  fail(item, "copy failed: " + e.describe(), e);
}

}  // namespace assetmv::engine
