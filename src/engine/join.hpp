// Joins three streams sorted by name: the objects under the legacy prefix,
// the objects under the destination prefix, and the rows whose path is under
// either prefix (from the Spool). Each name comes out once, with what each
// stream holds for it. A sort-merge join: no per-item lookup, no index on the
// path column, memory bounded by the listers' pages.
#pragma once

#include <functional>
#include <memory>
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
  // Ready: `out` holds the next group. Wait: a lister has no page yet (its
  // page is in flight; the lister's on_progress says when it lands). End:
  // all three streams are exhausted.
  Result<Step> next(Group& out);

 private:
  Lister& src_;
  Lister& dst_;
  Spool& rows_;
};

// Drives the join from the event loop, the one way both migrate and verify
// consume it. The feed owns both listers; every page that lands posts one
// wake() (coalesced, never from inside a client callback), and the consumer
// answers it, or any moment it has made room, by calling pump(). So a
// consumer waits only for what is in flight: when pump() says Waiting, a
// listing page is on its way and its wake() will come.
class Feed {
 public:
  struct Streams {
    std::string legacy_prefix;
    std::string dest_prefix;
    std::vector<std::string> splits;  // listing ranges (see Lister)
    Shard shard = {};                 // only the names in it come out
  };
  Feed(EventLoop& loop, ObjectStore& store, const Streams& streams, Spool& rows, std::function<void()> wake);
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  enum class State {
    Full,     // has_room() said no: call pump() again when there is room
    Waiting,  // a lister is between pages: wake() comes when one lands
    Ended,    // every name has been handed out
  };
  // Hands groups to take() while has_room() holds. An error (a listing or
  // the spool) ends the feed; pump() keeps returning it.
  Result<State> pump(const std::function<bool()>& has_room, const std::function<void(Group)>& take);

  bool ended() const { return ended_; }
  std::uint64_t legacy_listed() const { return src_.listed(); }
  std::uint64_t dest_listed() const { return dst_.listed(); }
  bool listing_in_flight() const { return src_.in_flight() || dst_.in_flight(); }

 private:
  void request_wake();

  EventLoop& loop_;
  std::function<void()> wake_;
  bool wake_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // a posted wake outliving the feed does nothing
  Lister src_;
  Lister dst_;
  Joiner join_;
  bool ended_ = false;
  std::optional<Error> error_;
};

}  // namespace assetmv::engine
