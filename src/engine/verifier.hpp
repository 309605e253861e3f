// The verify stage: proves that what is at the destination is the listed
// legacy object before any row may point at it. Three ways in:
//   copied()   the copy request answered: its ETag, or a HEAD of the copy
//              (and, for a multipart copy, of the source) must agree;
//   refused()  the copy was refused by a condition (412): a HEAD of the
//              destination says identical (InPlace), different (Conflict)
//              or absent (Failed: the source changed since it was listed);
//   existing() a destination was listed: compare, HEADing it when the ETags
//              alone cannot tell (a multipart copy this tool made carries the
//              source's ETag in its metadata);
//   vanished() the copy found no source: another worker (two N at once, a
//              second operator) may have moved it since the listing. A HEAD
//              of the destination proving it the listed object settles it
//              InPlace; anything else is Failed, and a rerun plans it afresh.
// Each item ends in exactly one call of `settled`.
#pragma once

#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class Verifier {
 public:
  Verifier(ObjectStore& store, SettledFn settled) : store_(store), settled_(std::move(settled)) {}

  void copied(const ItemPtr& item, const std::string& etag, bool multipart);
  void refused(const ItemPtr& item);
  void existing(const ItemPtr& item);
  void vanished(const ItemPtr& item, const Error& e);

 private:
  void head_copy(const ItemPtr& item, bool multipart);
  void compare(const ItemPtr& item, const s3::ObjectEntry& dst, const s3::ObjectInfo* head, const char* if_different,
               const char* if_unknown);
  void by_metadata(const ItemPtr& item, const s3::ObjectInfo& dst, const char* if_unknown);
  static bool carries_source(const s3::ObjectEntry& src, const s3::ObjectInfo& dst);
  void fail(const ItemPtr& item, std::string why, std::optional<Error> e = std::nullopt);

  ObjectStore& store_;
  SettledFn settled_;
};

}  // namespace assetmv::engine
