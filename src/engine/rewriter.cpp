#include "engine/rewriter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "core/log.hpp"

namespace assetmv::engine {

void Rewriter::add(ItemPtr item) {
  queued_rows_ += item->ids.size();
  queue_.push_back(std::move(item));
  if (queued_rows_ >= batch_) flush();
}

void Rewriter::flush() {
  if (!in_flight_ && !queue_.empty()) send();
}

void Rewriter::drop() {
  auto dropped = std::move(queue_);
  queue_.clear();
  for (const auto& item : dropped) left_(item);
  queued_rows_ = 0;
}

void Rewriter::send() {
  // Whole items, up to a batch's worth of rows (an item is never split:
  // its legacy object may be deleted only once all its rows have moved).
  std::vector<ItemPtr> batch;
  std::size_t rows = 0;
  std::size_t taken = 0;
  while (taken < queue_.size() && (rows == 0 || rows + queue_[taken]->ids.size() <= batch_)) {
    rows += queue_[taken]->ids.size();
    batch.push_back(std::move(queue_[taken++]));
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
  queued_rows_ -= rows;
  std::vector<db::CasItem> cas;
  cas.reserve(rows);
  for (const auto& item : batch)
    for (auto id : item->ids) cas.push_back({id, item->legacy_key, item->dest_key});
  in_flight_ = true;
  const auto sent = std::chrono::steady_clock::now();
  rows_.compare_and_set(std::move(cas), [this, rows, sent, batch = std::move(batch)](Result<RowStore::Ids> updated) {
    in_flight_ = false;
    // Cancelled for a stop: nothing of it was committed, so its rows still
    // point at legacy objects that all exist; a rerun rewrites them.
    if (!updated) {
      for (const auto& item : batch) left_(item);
      if (updated.error().kind != ErrorKind::Interrupted) failed_(updated.error());
      return;
    }
    adapt(rows, std::chrono::steady_clock::now() - sent);
    committed(batch, *updated);
    if (queued_rows_ >= batch_) flush();  // a full batch waited behind this one
  });
}

void Rewriter::adapt(std::size_t rows, std::chrono::steady_clock::duration took) {
  if (o_.target.count() == 0 || rows * 2 < batch_) return;  // a small statement says little about a full one
  const double seconds = std::max(1e-4, std::chrono::duration<double>(took).count());
  const double fits = static_cast<double>(rows) * std::chrono::duration<double>(o_.target).count() / seconds;
  const double next = std::clamp(fits, static_cast<double>(batch_) * 0.5, static_cast<double>(batch_) * 1.2);
  const auto sized = std::clamp(static_cast<std::size_t>(next), o_.min_rows, o_.max_rows);
  if (sized != batch_)
    logging::debug("rewrite.batch",
                   fmt::format("{} rows took {:.1f} ms; next batches {} rows", rows, seconds * 1e3, sized),
                   {{"rows", sized}});
  batch_ = sized;
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
