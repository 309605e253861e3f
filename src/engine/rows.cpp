#include "engine/rows.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.hpp"
#include "engine/join.hpp"
#include "engine/lister.hpp"

namespace assetmv::engine {

namespace {

bool has_prefix(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

void NameSample::offer(const std::string& name) {
  ++seen_;
  if (names_.size() < kSize) {
    names_.push_back(name);
    return;
  }
  state_ ^= state_ << 13;
  state_ ^= state_ >> 7;
  state_ ^= state_ << 17;
  const std::uint64_t slot = state_ % seen_;
  if (slot < kSize) names_[slot] = name;
}

std::vector<std::string> listing_splits(const NameSample& sample) {
  constexpr std::uint64_t kKeysPerRange = 2'000;  // two pages: below this, a split costs more than it gains
  constexpr std::uint64_t kMaxRanges = 64;        // each boundary costs at most one extra page request
  const std::uint64_t ranges = std::min(kMaxRanges, sample.seen() / kKeysPerRange + 1);
  return split_points(sample.names(), static_cast<std::size_t>(ranges - 1));
}

Result<void> scan_rows(RowStore& db, const ScanOptions& o, Spool& spool, Counts& counts, NameSample& sample,
                       const std::function<bool()>& stop) {
  auto bounds = db.id_bounds();
  if (!bounds) return tl::unexpected(bounds.error());
  if (!*bounds) return spool.finish();
  const auto [lo, hi] = **bounds;
  auto last_log = std::chrono::steady_clock::now();
  auto take = [&](std::string name, std::int64_t id, std::uint8_t tag) {
    sample.offer(name);
    return spool.add({std::move(name), id, tag});
  };

  // Rows inserted after `hi` was read are the live application's, and it
  // writes only modern paths: they never need migrating.
  std::int64_t after = lo - 1;
  while (after < hi) {
    if (stop()) return fail(ErrorKind::Interrupted, "Interrupted", "stopped while reading the table");
    const std::int64_t upto = (hi - after > o.range_ids) ? after + o.range_ids : hi;
    auto rows = o.audit ? db.page(after, o.batch_rows) : db.scan(after, upto, o.legacy_prefix, o.batch_rows, o.shard);
    if (!rows) return tl::unexpected(rows.error());
    for (auto& r : *rows) {
      if (o.audit && r.id > hi) break;
      ++counts.rows_total;
      if (!r.path) {
        ++counts.rows_null;
      } else if (r.path->empty()) {
        ++counts.rows_empty;
      } else if (has_prefix(*r.path, o.legacy_prefix)) {
        ++counts.rows_legacy;
        std::string name = r.path->substr(o.legacy_prefix.size());
        // The database applied the shard's hash; a row it let through that
        // this one places elsewhere would be migrated by two shards, or none.
        if (!o.audit && !o.shard.owns(name))
          return fail(ErrorKind::Fatal, "ShardHashMismatch",
                      fmt::format("the database placed row {} ({:?}) in shard {}, assetmv in shard {} of {}: "
                                  "the two hashes disagree; run without --shard",
                                  r.id, *r.path, o.shard.to_string(), Shard::of(name, o.shard.count), o.shard.count));
        auto a = take(std::move(name), r.id, kRowLegacy);
        if (!a) return a;
      } else if (o.audit && has_prefix(*r.path, o.dest_prefix)) {
        ++counts.rows_dest;
        auto a = take(r.path->substr(o.dest_prefix.size()), r.id, kRowDest);
        if (!a) return a;
      } else {
        ++counts.rows_other;
      }
    }
    if (o.audit) {
      after = rows->size() < static_cast<std::size_t>(o.batch_rows) ? hi : rows->back().id;
    } else {
      after = rows->size() == static_cast<std::size_t>(o.batch_rows) ? rows->back().id : upto;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log > std::chrono::seconds(5)) {
      last_log = now;
      logging::info("scan.progress", fmt::format("table read up to id {} of {}", after, hi),
                    {{"rows_spooled", spool.size()}});
    }
  }
  return spool.finish();
}

Result<std::vector<std::string>> read_rows(RowStore& db, ScanOptions o, std::string legacy_prefix,
                                           std::string dest_prefix, bool audit, Spool& spool, Counts& counts,
                                           const std::function<bool()>& stop) {
  o.legacy_prefix = std::move(legacy_prefix);
  o.dest_prefix = std::move(dest_prefix);
  o.audit = audit;
  NameSample sample;
  auto scanned = scan_rows(db, o, spool, counts, sample, stop);
  if (!scanned) return tl::unexpected(scanned.error());
  return listing_splits(sample);
}

}  // namespace assetmv::engine
