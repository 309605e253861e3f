#include "engine/restamper.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

bool Restamper::needed(const Item& item, std::chrono::seconds delete_grace, bool keep_source) {
  return (delete_grace.count() > 0 || keep_source) && item.src && !item.copied_now && item.dst.has_value() &&
         !item.ids.empty();
}

void Restamper::start(const ItemPtr& item) {
  ++in_flight_;
  store_.restamp(item->dest_key, item->dst->etag, [this, item](Result<std::string> r) {
    --in_flight_;
    // 412: someone wrote the destination since it was listed, later still.
    if (r || r.error().kind == ErrorKind::PreconditionFailed) return done_(item, std::nullopt);
    if (r.error().kind == ErrorKind::Interrupted) return done_(item, Settled{Settled::Kind::NotSent});
    done_(item, Settled{Settled::Kind::Failed,
                        fmt::format("could not restamp {} for the grace clock ({}); its rows stay on the legacy object",
                                    item->dest_key, r.error().describe()),
                        "conflict", r.error()});
  });
}

}  // namespace assetmv::engine
