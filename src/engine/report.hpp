// What a run did, for the JSON report and the exit code: counters, and the
// items that need a human (capped, with the count of all of them).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace assetmv::engine {

struct Counts {
  // migrate
  std::uint64_t legacy_rows_found = 0;         // rows under the legacy prefix when the run started
  std::uint64_t legacy_objects_listed = 0;     // objects under the legacy prefix
  std::uint64_t rows_rewritten = 0;            // compare-and-set succeeded
  std::uint64_t objects_copied = 0;            // server-side copies made by this run
  std::uint64_t objects_already_in_place = 0;  // destination already held identical content
  std::uint64_t orphan_objects_moved = 0;      // legacy objects no row pointed to, now at the destination
  std::uint64_t rows_superseded = 0;           // the live application changed the row first
  std::uint64_t dangling_rows = 0;             // row under the legacy prefix, object nowhere
  std::uint64_t conflicts = 0;                 // destination holds different content
  std::uint64_t archived_objects = 0;          // GLACIER/DEEP_ARCHIVE without a completed restore: not copied
  std::uint64_t sse_c_objects = 0;             // encrypted with a customer-provided key: not copied
  std::uint64_t legacy_objects_deleted = 0;
  std::uint64_t legacy_objects_kept = 0;      // --keep-source
  std::uint64_t legacy_objects_in_grace = 0;  // --delete-grace: kept until the destination is older than the grace
  std::uint64_t failures = 0;                 // items that failed after retries
  std::uint64_t rows_kept = 0;                // --rollback: no identical object to go back to; left as they are
  // verify
  std::uint64_t rows_total = 0;
  std::uint64_t rows_legacy = 0;
  std::uint64_t rows_dest = 0;
  std::uint64_t rows_other = 0;
  std::uint64_t rows_null = 0;
  std::uint64_t rows_empty = 0;
  std::uint64_t rows_missing_object = 0;  // rows under the destination prefix whose object does not exist
  std::uint64_t dest_objects_listed = 0;
};

struct HumanItem {
  std::string kind;  // conflict, dangling_row, failure, ...
  std::string key;
  std::string dest_key;
  std::vector<std::int64_t> row_ids;
  std::string message;
};

class Report {
 public:
  static constexpr std::size_t kMaxListedItems = 1000;  // the report stays readable; the count is always exact

  Counts counts;
  void needs_human(HumanItem item);
  std::uint64_t needs_human_count() const { return human_count_; }
  nlohmann::json items_json() const;

 private:
  std::vector<HumanItem> items_;
  std::uint64_t human_count_ = 0;
};

// The counts each command reports: a rollback's are named for what it does
// (rows back on the legacy prefix), not for a forward run's copies.
enum class CountsOf { Migrate, Verify, Rollback };
nlohmann::json counts_json(const Counts& c, CountsOf command);

}  // namespace assetmv::engine
