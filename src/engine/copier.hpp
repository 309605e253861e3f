// The copy stage: puts the listed legacy object at its destination key,
// server-side (CopyObject, or UploadPartCopy over the multipart threshold),
// or by GET then PUT when the two buckets are on different services. Only
// the listed version is copied (If-Match) and nothing is overwritten
// (If-None-Match, where the store honours it). A copy that lands goes to the
// verify stage; a refusal by a condition (412) too, to find out why; any
// other failure ends the item (Settled::Failed, with the request's error).
#pragma once

#include <cstdint>

#include "core/loop.hpp"
#include "engine/item.hpp"
#include "engine/store.hpp"
#include "engine/verifier.hpp"

namespace assetmv::engine {

struct CopyOptions {
  bool dry_run = false;
  std::uint64_t multipart_threshold = s3::kMaxSingleCopyBytes;  // larger objects go through UploadPartCopy
  bool conditional_writes = true;                               // send If-None-Match (see MigrationOptions)
  std::string storage_class = {};                               // see MigrationOptions
  bool multipart_always = false;                                // see MigrationOptions
};

class Copier {
 public:
  // Objects copied across two services go through this client's memory.
  static constexpr std::uint64_t kMaxCrossServiceBytes = 256ULL * 1024 * 1024;

  Copier(EventLoop& loop, ObjectStore& store, CopyOptions options, Verifier& verifier, SettledFn settled)
      : loop_(loop), store_(store), o_(std::move(options)), verifier_(verifier), settled_(std::move(settled)) {}

  // The item has a listed legacy object and no listed destination. An
  // archived one (GLACIER, DEEP_ARCHIVE) is HEADed first and copied only once
  // a restore has completed; otherwise it settles Unreadable, as does one
  // the store refuses to read for its archive tier or its customer key.
  void start(const ItemPtr& item);

 private:
  void begin(const ItemPtr& item);
  s3::CopyParams params(const Item& i) const;
  void across(const ItemPtr& item);
  void answered(const ItemPtr& item, Result<std::string> etag, bool multipart);
  void fail(const ItemPtr& item, std::string why, std::optional<Error> e = std::nullopt);
  void unreadable(const ItemPtr& item, std::string kind, std::string why);
  std::vector<http::Header> class_header(const Item& i) const;

  EventLoop& loop_;
  ObjectStore& store_;
  CopyOptions o_;
  Verifier& verifier_;
  SettledFn settled_;
};

}  // namespace assetmv::engine
