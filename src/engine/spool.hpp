// A sorted stream of (name, row id, tag) records larger than memory: records
// are added in any order, sorted in bounded in-memory runs that spill to
// anonymous temporary files, and read back in name order by a k-way merge.
// This is how the table's rows are joined with S3's listing (which comes in
// key order) without an index on the path column and with flat memory.
//
// Contract: add() any number of records, then finish() once, then next()
// until it returns false. Temporary files are unlinked at creation (tmpfile),
// so nothing is left behind even after kill -9.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace assetmv::engine {

struct SpoolRecord {
  std::string name;  // the key without its prefix
  std::int64_t id = 0;
  std::uint8_t tag = 0;  // which prefix the row's path had (the caller's meaning)
  bool operator==(const SpoolRecord&) const = default;
};

// Name order is S3's listing order: bytewise (UTF-8 binary), then id.
bool spool_less(const SpoolRecord& a, const SpoolRecord& b);

class Spool {
 public:
  // Records held in memory before a run is sorted and spilled: 64k records
  // of a typical avatar name are about 5 MB, so memory stays flat from a
  // hundred thousand rows to many millions (more runs, same memory).
  static constexpr std::size_t kDefaultRunRecords = std::size_t{64} * 1024;

  explicit Spool(std::size_t run_records = kDefaultRunRecords);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  Result<void> add(SpoolRecord r);
  Result<void> finish();
  // The next record in order, or false at the end.
  Result<bool> next(SpoolRecord& out);
  // The next record without consuming it, or nullptr at the end.
  Result<const SpoolRecord*> peek();

  std::uint64_t size() const { return total_; }
  std::size_t runs() const { return runs_.size(); }

 private:
  struct Run;
  Result<void> spill();
  Result<bool> pop(SpoolRecord& out);

  std::size_t run_records_;
  std::vector<SpoolRecord> buffer_;
  std::vector<std::unique_ptr<Run>> runs_;
  std::vector<std::size_t> heap_;  // indices into runs_, ordered by their head record
  std::optional<SpoolRecord> peeked_;
  bool finished_ = false;
  bool in_memory_ = false;  // one run that never spilled: read straight from buffer_
  std::size_t memory_pos_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace assetmv::engine
