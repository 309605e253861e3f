// The version stage, for --delete-versions: on a versioned bucket a plain
// delete only hides the object behind a marker. A HEAD names the version now
// current; when its ETag is the listed one (the copy was conditional on it)
// that is the version copied, and exactly it is deleted, so no marker is left
// and no other version is touched. Another ETag: someone wrote the key since;
// that version is not the copy's and stays, reported.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

struct Resolved {
  enum class Kind {
    Delete,   // `object` names the version copied: delete exactly it
    Gone,     // already deleted by someone else: nothing to do
    NotSent,  // given up for a stop: a rerun deletes it
    Failed,   // written since, or unreadable: it stays, reported (`why`)
  };
  Kind kind = Kind::Failed;
  s3::ObjectVersion object = {};
  std::string why = {};
};

class VersionResolver {
 public:
  using DoneFn = std::function<void(const ItemPtr& item, Resolved r)>;

  VersionResolver(ObjectStore& store, DoneFn done) : store_(store), done_(std::move(done)) {}

  // The item's rows have moved (or it had none); its legacy object is listed.
  void start(const ItemPtr& item);
  std::size_t in_flight() const { return in_flight_; }

 private:
  ObjectStore& store_;
  DoneFn done_;
  std::size_t in_flight_ = 0;
};

}  // namespace assetmv::engine
