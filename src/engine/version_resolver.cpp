#include "engine/version_resolver.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

void VersionResolver::start(const ItemPtr& item) {
  ++in_flight_;
  store_.head(Side::Legacy, item->legacy_key, [this, item](Result<s3::ObjectInfo> info) {
    --in_flight_;
    using Kind = Resolved::Kind;
    const std::string& etag = item->src->etag;
    if (info && s3::etag_equal(info->etag, etag))
      return done_(item, {Kind::Delete, {item->legacy_key, info->version_id}});
    if (!info && info.error().kind == ErrorKind::Interrupted) return done_(item, {Kind::NotSent});
    if (!info && info.error().kind == ErrorKind::NotFound) return done_(item, {Kind::Gone});
    done_(item, {Kind::Failed,
                 {item->legacy_key},
                 info ? fmt::format("written since it was listed (ETag {} now, {} copied): that version is not the "
                                    "copy's, so it stays; its rows already point at the copy",
                                    info->etag, etag)
                      : "could not read which version to delete: " + info.error().describe()});
  });
}

}  // namespace assetmv::engine
