// The table's rows, read for the join: the keyset scan that feeds them into
// the Spool, and the listings' split points chosen from a sample of them.
//
// Privileges: the scan needs SELECT on the table; compare-and-set needs
// UPDATE(path) (and SELECT, which its WHERE clause reads). Nothing else:
// see docs/privileges.md.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/shard.hpp"
#include "engine/report.hpp"
#include "engine/spool.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

struct ScanOptions {
  std::string legacy_prefix;
  std::string dest_prefix;
  // Also spool rows under the destination prefix and count every row by
  // kind (verify); otherwise only rows under the legacy prefix (migrate).
  bool audit = false;
  // Only rows whose name is in this shard (migrate --shard); the audit reads all.
  Shard shard;
  std::int64_t range_ids = 100'000;  // ids per keyset range: one short statement each
  int batch_rows = 10'000;           // rows per statement at most
};

// A uniform sample of the names seen (reservoir sampling), from which the
// listings' split points are chosen: ranges then hold similar numbers of keys.
class NameSample {
 public:
  static constexpr std::size_t kSize = 1024;
  void offer(const std::string& name);
  const std::vector<std::string>& names() const { return names_; }
  std::uint64_t seen() const { return seen_; }

 private:
  std::vector<std::string> names_;
  std::uint64_t seen_ = 0;
  std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;  // xorshift: reproducible, no global RNG
};

// Walks the table by primary-key ranges and adds the rows under the prefixes
// to the spool (tagged kRowLegacy/kRowDest), counting rows in `counts` and
// sampling their names into `sample`. Stops early, with an Interrupted
// error, when stop() turns true.
Result<void> scan_rows(RowStore& db, const ScanOptions& o, Spool& spool, Counts& counts, NameSample& sample,
                       const std::function<bool()>& stop);

// Split points for listing the prefixes in parallel: one range per
// kKeysPerRange rows sampled, at most kMaxRanges ranges.
std::vector<std::string> listing_splits(const NameSample& sample);

// What migrate and verify both do first: scan the table into `spool` with
// the prefixes given (audit: rows under both, else under the legacy one
// only), then return the listings' split points, shared by both prefixes
// since they hold the same names.
Result<std::vector<std::string>> read_rows(RowStore& db, ScanOptions o, std::string legacy_prefix,
                                           std::string dest_prefix, bool audit, Spool& spool, Counts& counts,
                                           const std::function<bool()>& stop);

}  // namespace assetmv::engine
