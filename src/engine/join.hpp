// Joins three streams sorted by name: the objects under the legacy prefix,
// the objects under the destination prefix, and the rows whose path is under
// either prefix (from the Spool). Each name comes out once, with what each
// stream holds for it. A sort-merge join: no per-item lookup, no index on the
// path column, memory bounded by the listers' pages.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/lister.hpp"
#include "engine/spool.hpp"

namespace assetmv::engine {

// Spool tags: which prefix a row's path has.
inline constexpr std::uint8_t kRowLegacy = 0;
inline constexpr std::uint8_t kRowDest = 1;

struct Group {
  std::string name;
  std::optional<s3::ObjectEntry> src;  // the legacy object, if listed
  std::optional<s3::ObjectEntry> dst;  // the destination object, if listed
  std::vector<std::int64_t> legacy_rows;
  std::vector<std::int64_t> dest_rows;
};

class Joiner {
 public:
  enum class Step { Ready, Wait, End };

  Joiner(Lister& src, Lister& dst, Spool& rows) : src_(src), dst_(dst), rows_(rows) {}
  // Ready: `out` holds the next group. Wait: a lister has no page yet (call
  // fill() and come back when it has). End: all three streams are exhausted.
  Result<Step> next(Group& out);

 private:
  Lister& src_;
  Lister& dst_;
  Spool& rows_;
};

}  // namespace assetmv::engine
