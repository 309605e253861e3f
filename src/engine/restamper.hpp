// The restamp stage, for --delete-grace and --keep-source: a destination that
// was there before this run has a LastModified older than the rewrite about
// to happen, and a later run would start the grace from it. Copying it onto
// itself (its own headers, metadata and class; only while it is the version
// listed) makes the clock start now, just before the commit, as a copy made
// by this run would. A crash in between leaves the rows on the legacy
// object, and the rerun restamps again (docs/design.md, "grace").
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class Restamper {
 public:
  // nullopt: restamped (or written by someone since the listing, later
  // still), so the rows may move; else Settled NotSent (a stop) or Failed.
  using DoneFn = std::function<void(const ItemPtr& item, std::optional<Settled> not_restamped)>;

  Restamper(ObjectStore& store, DoneFn done) : store_(store), done_(std::move(done)) {}

  // Whether the item's rows wait for a restamp: its legacy object stays for
  // a later run (a grace, or --keep-source) and its destination was there
  // before this run.
  static bool needed(const Item& item, std::chrono::seconds delete_grace, bool keep_source);
  void start(const ItemPtr& item);
  std::size_t in_flight() const { return in_flight_; }

 private:
  ObjectStore& store_;
  DoneFn done_;
  std::size_t in_flight_ = 0;
};

}  // namespace assetmv::engine
