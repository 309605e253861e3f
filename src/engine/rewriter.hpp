// The rewrite stage: points the rows of verified names at their copies with
// compare-and-set statements (a row changes only if it still holds the
// legacy path, so the live application's own writes win), batched to about
// `batch_rows` rows per statement, one statement at a time. A statement the
// database refuses for good ends the stage (failed): nothing in it was
// committed, so its rows still point at legacy objects that all still exist.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class Rewriter {
 public:
  struct Options {
    std::size_t batch_rows = 500;  // rows per statement: one short statement, one round trip
    bool dry_run = false;          // count the rows as rewritten, send nothing
  };
  // The statement holding the item's rows committed: `updated` of them
  // changed, the others had been changed by the application first.
  using RewrittenFn = std::function<void(const ItemPtr& item, std::size_t updated)>;
  using FailedFn = std::function<void(const Error& e)>;

  Rewriter(RowStore& rows, Options options, RewrittenFn rewritten, FailedFn failed)
      : rows_(rows), o_(options), rewritten_(std::move(rewritten)), failed_(std::move(failed)) {}

  // Queues the item's rows; sends a batch once a full one is queued.
  void add(ItemPtr item);
  // Sends what is queued, a partial batch too, unless a statement is in flight.
  void flush();
  // Forgets what is queued (a stop on an error: a rerun picks those rows up).
  void drop();

  std::size_t queued_rows() const { return queued_rows_; }
  bool idle() const { return queue_.empty() && !in_flight_; }

 private:
  void send();
  void committed(const std::vector<ItemPtr>& batch, const RowStore::Ids& updated);

  RowStore& rows_;
  Options o_;
  RewrittenFn rewritten_;
  FailedFn failed_;
  std::vector<ItemPtr> queue_;
  std::size_t queued_rows_ = 0;
  bool in_flight_ = false;
};

}  // namespace assetmv::engine
