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

// Bytes of object data the copies between two services hold at once, unless
// --memory-budget says otherwise: room for 256 copies of avatar-sized objects
// and four 64 MiB parts, a fraction of any machine this runs on.
constexpr std::uint64_t kDefaultMemoryBudget = 256ULL << 20;

struct CopyOptions {
  std::uint64_t multipart_threshold = s3::kMaxSingleCopyBytes;  // larger objects go through UploadPartCopy
  bool conditional_writes = true;                               // send If-None-Match (see MigrationOptions)
  std::string storage_class = {};                               // see MigrationOptions
  bool multipart_always = false;                                // see MigrationOptions
  std::uint64_t memory_budget = kDefaultMemoryBudget;           // see MigrationOptions
};

class Copier {
 public:
  // The largest part a copy between two services reads at once: within the
  // HTTP layer's response limit (http::ClientOptions::max_response_bytes).
  static constexpr std::uint64_t kMaxStreamPartBytes = 64ULL << 20;

  Copier(EventLoop& loop, ObjectStore& store, CopyOptions options, Verifier& verifier, SettledFn settled)
      : loop_(loop),
        store_(store),
        o_(std::move(options)),
        verifier_(verifier),
        settled_(std::move(settled)),
        budget_(o_.memory_budget) {}

  // How a copy in parts moves its bytes.
  enum class Route {
    ServerSide,  // UploadPartCopy: the store copies each part
    Streamed,    // GET then PUT (or UploadPart) through this process, between two services
  };
  // The one part size of every copy in parts: the multipart threshold, within
  // S3's part limits (5 MiB to 5 GiB, at most 10,000 parts); streamed, also
  // within the HTTP layer's response limit and half the memory budget (each
  // part is held twice). A streamed object up to it goes in one GET and one
  // PUT. The dry run's forecast counts the parts the copier asks for.
  static std::uint64_t part_size(Route route, std::uint64_t object_size, std::uint64_t multipart_threshold,
                                 std::uint64_t memory_budget);

  // The item has a listed legacy object and no listed destination. Over the
  // multipart threshold it goes through UploadPartCopy, or, on a store
  // without it, streams in parts as a copy between two services does. An
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
  ByteBudget budget_;  // the bytes copies between two services hold at once
  // The store copies parts server-side (UploadPartCopy). Once it answers
  // NotImplemented (GCS, some S3 implementations), every copy that would
  // have gone in parts streams through this process instead.
  bool part_copy_ = true;
};

}  // namespace assetmv::engine
