#include "engine/verifier.hpp"

#include <fmt/format.h>

#include "engine/plan.hpp"

namespace assetmv::engine {

namespace {
using Kind = Settled::Kind;

// A destination read by HEAD, as a listing would have shown it.
s3::ObjectEntry as_listed(const std::string& key, const s3::ObjectInfo& head) {
  return {key, head.etag, head.size, head.last_modified, ""};
}
}  // namespace

void Verifier::fail(const ItemPtr& item, std::string why, std::optional<Error> e) {
  settled_(item, Settled{Kind::Failed, std::move(why), "", std::move(e)});
}

void Verifier::copied(const ItemPtr& item, const std::string& etag, bool multipart) {
  if (!multipart && s3::etag_is_md5(item->src->etag)) {
    if (s3::etag_equal(etag, item->src->etag)) return settled_(item, {Kind::Copied});
    return fail(item, fmt::format("the copy's ETag {} differs from the source's {}; the destination is left for "
                                  "inspection and the row is unchanged",
                                  etag, item->src->etag));
  }
  head_copy(item, multipart);
}

// Non-MD5 ETags (multipart, KMS): compare sizes, and for a multipart copy
// (whose source condition some stores ignore) re-check the source's ETag.
void Verifier::head_copy(const ItemPtr& item, bool multipart) {
  store_.head(Side::Dest, item->dest_key, [this, item, multipart](Result<s3::ObjectInfo> d) {
    if (!d) return fail(item, "cannot read back the copy: " + d.error().describe(), d.error());
    if (d->size != item->src->size)
      return fail(item, fmt::format("the copy has {} bytes, the source {}", d->size, item->src->size));
    if (!multipart) return settled_(item, {Kind::Copied});
    store_.head(Side::Legacy, item->legacy_key, [this, item](Result<s3::ObjectInfo> s) {
      if (!s) return fail(item, "cannot re-read the source: " + s.error().describe(), s.error());
      if (!s3::etag_equal(s->etag, item->src->etag))
        return fail(item, "the legacy object changed during its multipart copy; run again");
      settled_(item, {Kind::Copied});
    });
  });
}

void Verifier::refused(const ItemPtr& item) {
  store_.head(Side::Dest, item->dest_key, [this, item](Result<s3::ObjectInfo> d) {
    if (!d) {
      if (d.error().kind == ErrorKind::NotFound)
        return fail(item, "the legacy object changed since it was listed (copy condition failed); run again");
      return fail(item, "copy refused and the destination cannot be read: " + d.error().describe(), d.error());
    }
    compare(item, as_listed(item->dest_key, *d), &*d, "the destination appeared during the run with different content",
            "the destination appeared during the run; its ETag cannot prove it identical");
  });
}

void Verifier::existing(const ItemPtr& item) {
  compare(item, *item->dst, nullptr, "the destination already holds different content (size or MD5 ETag differ)",
          "the destination has the same size but an ETag that is not an MD5; cannot prove it identical");
}

// `head` is the destination's HEAD when there is one already: only it
// carries the metadata that can settle an Unknown.
void Verifier::compare(const ItemPtr& item, const s3::ObjectEntry& dst, const s3::ObjectInfo* head,
                       const char* if_different, const char* if_unknown) {
  switch (compare_objects(*item->src, dst)) {
    case Sameness::Same:
      return settled_(item, {Kind::InPlace});
    case Sameness::Different:
      return settled_(item, {Kind::Conflict, if_different});
    case Sameness::Unknown:
      if (head != nullptr) return by_metadata(item, *head, if_unknown);
      return store_.head(Side::Dest, item->dest_key, [this, item, if_unknown](Result<s3::ObjectInfo> d) {
        if (!d && d.error().kind == ErrorKind::NotFound)
          return fail(item, "the destination disappeared since it was listed; run again");
        if (!d) return fail(item, "cannot read the destination to compare it: " + d.error().describe(), d.error());
        by_metadata(item, *d, if_unknown);
      });
  }
}

void Verifier::by_metadata(const ItemPtr& item, const s3::ObjectInfo& dst, const char* if_unknown) {
  if (carries_source(*item->src, dst)) return settled_(item, {Kind::InPlace});
  settled_(item, {Kind::Conflict, if_unknown});
}

// A copy this tool made of `src` (multipart, or whose ETag is not an MD5)
// records the source's ETag in its metadata.
bool Verifier::carries_source(const s3::ObjectEntry& src, const s3::ObjectInfo& dst) {
  return dst.size == src.size && !dst.source_etag.empty() && s3::etag_equal(dst.source_etag, src.etag);
}

void Verifier::vanished(const ItemPtr& item, const Error& e) {
  store_.head(Side::Dest, item->dest_key, [this, item, e](Result<s3::ObjectInfo> d) {
    if (d) {
      const auto same = compare_objects(*item->src, as_listed(item->dest_key, *d));
      if (same == Sameness::Same || (same == Sameness::Unknown && carries_source(*item->src, *d)))
        return settled_(item, {Kind::InPlace});
    }
    std::string why = fmt::format("the legacy object disappeared before it could be copied ({})", e.describe());
    if (d)
      why += "; the destination is not proven to be it";
    else if (d.error().kind != ErrorKind::NotFound)
      why += "; the destination cannot be read: " + d.error().describe();
    fail(item, std::move(why));
  });
}

}  // namespace assetmv::engine
