#include "engine/rewriter.hpp"

#include <unordered_set>

#include "core/log.hpp"

namespace assetmv::engine {

void Rewriter::add(ItemPtr item) {
  queued_rows_ += item->ids.size();
  queue_.push_back(std::move(item));
  if (queued_rows_ >= o_.batch_rows) flush();
}

void Rewriter::flush() {
  if (!in_flight_ && !queue_.empty()) send();
}

void Rewriter::drop() {
  queue_.clear();
  queued_rows_ = 0;
}

void Rewriter::send() {
  // Whole items, up to a batch's worth of rows (an item is never split:
  // its legacy object may be deleted only once all its rows have moved).
  std::vector<ItemPtr> batch;
  std::size_t rows = 0;
  std::size_t taken = 0;
  while (taken < queue_.size() && (rows == 0 || rows + queue_[taken]->ids.size() <= o_.batch_rows)) {
    rows += queue_[taken]->ids.size();
    batch.push_back(std::move(queue_[taken++]));
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
  queued_rows_ -= rows;
  if (o_.dry_run) {
    for (const auto& item : batch) rewritten_(item, item->ids.size());
    return;
  }
  std::vector<db::CasItem> cas;
  cas.reserve(rows);
  for (const auto& item : batch)
    for (auto id : item->ids) cas.push_back({id, item->legacy_key, item->dest_key});
  in_flight_ = true;
  rows_.compare_and_set(std::move(cas), [this, batch = std::move(batch)](Result<RowStore::Ids> updated) {
    in_flight_ = false;
    if (!updated) return failed_(updated.error());
    committed(batch, *updated);
    if (queued_rows_ >= o_.batch_rows) flush();  // a full batch waited behind this one
  });
}

void Rewriter::committed(const std::vector<ItemPtr>& batch, const RowStore::Ids& updated) {
  const std::unordered_set<std::int64_t> done(updated.begin(), updated.end());
  for (const auto& item : batch) {
    std::size_t n = 0;
    for (auto id : item->ids) {
      if (done.count(id) != 0U) {
        ++n;
      } else {
        // The live application changed (or deleted) the row first; it
        // writes only modern paths, so the row no longer needs us.
        logging::debug("migrate.superseded", "row changed by the application first", {{"id", id}});
      }
    }
    rewritten_(item, n);
  }
}

}  // namespace assetmv::engine
