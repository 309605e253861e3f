// The plan stage: what to do with one name, from what the join found for it
// (docs/design.md, "What happens to each name"). Pure.
#pragma once

#include <chrono>
#include <optional>

#include "engine/item.hpp"

namespace assetmv::engine {

enum class Action {
  Copy,        // legacy object, no destination: copy, verify, rewrite rows, delete
  Compare,     // legacy object and a destination: identical -> rewrite and delete; else conflict
  RepairRows,  // rows, no legacy object, a destination: the rows move to it
  Dangling,    // rows, no object anywhere: reported, left as they are
  KeyTooLong,  // the destination key would be over S3's limit: reported, nothing changes
  Nothing,     // only a destination object: a modern name
};

Action plan(const Item& item);

// Equal size and equal ETag. Only an MD5 ETag identifies content; two
// different non-MD5 ETags prove nothing, so Unknown asks for a closer look.
enum class Sameness { Same, Different, Unknown };
Sameness compare_objects(const s3::ObjectEntry& a, const s3::ObjectEntry& b);

// The delete grace (--delete-grace): whether a legacy object that no row
// references any more may go, given its identical destination as listed.
// The clock is the destination's LastModified; the run that rewrites a
// name's rows stamps it then (a copy it makes, or a restamp of one that was
// already there), so "older than the grace" means the rows left the legacy
// object at least that long ago. An unknown or unreadable time keeps it.
bool grace_elapsed(const std::optional<s3::ObjectEntry>& dst, std::chrono::seconds grace,
                   std::chrono::system_clock::time_point now);

}  // namespace assetmv::engine
