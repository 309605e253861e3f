// The rewrite stage: points the rows of verified names at their copies with
// compare-and-set statements (a row changes only if it still holds the
// legacy path, so the live application's own writes win), batched, one
// statement at a time. With a target statement time (pt-osc's --chunk-time)
// the batch follows the database: after each statement of at least half a
// batch, the next batch is sized to the rows that statement's pace would fit
// in the target, moving at most 20% up or half down per statement (so one
// slow statement cannot swing it), within [min_rows, max_rows]. A statement the
// database refuses for good ends the stage (failed), and one cancelled for a
// stop (Interrupted) is given up: nothing in either was committed, so its
// rows still point at legacy objects that all still exist, and each of its
// items is handed back (left) for a rerun, as is each one drop() forgets.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class Rewriter {
 public:
  struct Options {
    std::size_t batch_rows = 500;         // rows per statement to start with (and always, without a target)
    std::chrono::milliseconds target{0};  // statement time to aim for; 0: batches stay at batch_rows
    std::size_t min_rows = 50;            // below this a statement's round trip costs more than its rows
    std::size_t max_rows = 2000;          // bounds the rows waiting (4 batches) and the locks one statement holds
  };
  // The statement holding the item's rows committed: `updated` of them
  // changed, the others had been changed by the application first.
  using RewrittenFn = std::function<void(const ItemPtr& item, std::size_t updated)>;
  using FailedFn = std::function<void(const Error& e)>;
  // An item none of whose rows was committed, given up for a rerun.
  using LeftFn = std::function<void(const ItemPtr& item)>;

  Rewriter(RowStore& rows, Options options, RewrittenFn rewritten, FailedFn failed, LeftFn left)
      : rows_(rows),
        o_(options),
        rewritten_(std::move(rewritten)),
        failed_(std::move(failed)),
        left_(std::move(left)),
        batch_(o_.batch_rows) {}

  // Queues the item's rows; sends a batch once a full one is queued.
  void add(ItemPtr item);
  // Sends what is queued, a partial batch too, unless a statement is in flight.
  void flush();
  // Forgets what is queued (a stop on an error: a rerun picks those rows up).
  void drop();

  std::size_t queued_rows() const { return queued_rows_; }
  std::size_t batch_rows() const { return batch_; }
  bool idle() const { return queue_.empty() && !in_flight_; }

 private:
  void send();
  void committed(const std::vector<ItemPtr>& batch, const RowStore::Ids& updated);
  void adapt(std::size_t rows, std::chrono::steady_clock::duration took);

  RowStore& rows_;
  Options o_;
  RewrittenFn rewritten_;
  FailedFn failed_;
  LeftFn left_;
  std::vector<ItemPtr> queue_;
  std::size_t queued_rows_ = 0;
  bool in_flight_ = false;
  std::size_t batch_;  // rows per statement now
};

}  // namespace assetmv::engine
