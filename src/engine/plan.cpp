#include "engine/plan.hpp"

#include "core/utc_time.hpp"
#include "s3/location.hpp"

namespace assetmv::engine {

Action plan(const Item& item) {
  if (item.src) {
    if (item.dst) return Action::Compare;
    return item.dest_key.size() > s3::kMaxKeyBytes ? Action::KeyTooLong : Action::Copy;
  }
  if (item.ids.empty()) return Action::Nothing;
  return item.dst ? Action::RepairRows : Action::Dangling;
}

Sameness compare_objects(const s3::ObjectEntry& a, const s3::ObjectEntry& b) {
  if (a.size != b.size) return Sameness::Different;
  if (s3::etag_equal(a.etag, b.etag)) return Sameness::Same;
  if (s3::etag_is_md5(a.etag) && s3::etag_is_md5(b.etag)) return Sameness::Different;
  return Sameness::Unknown;
}

bool grace_elapsed(const std::optional<s3::ObjectEntry>& dst, std::chrono::seconds grace,
                   std::chrono::system_clock::time_point now) {
  if (grace.count() <= 0) return true;
  if (!dst) return false;
  const auto stamped = parse_utc_time(dst->last_modified);
  return stamped && now - *stamped >= grace;
}

}  // namespace assetmv::engine
