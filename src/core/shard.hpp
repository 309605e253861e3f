// Shards: N workers split one migration by name, with no coordinator. A
// name (the key without its prefix, the same for the legacy object, its
// destination and the rows) belongs to shard K of N when the first four bytes
// of its MD5, read big-endian, are K modulo N. MD5 because PostgreSQL has it
// built in: the table scan filters by the same hash on the server
// (db::PathTable::scan), so each worker reads only its own rows. The hash
// never depends on N's history: a run with another N finds the state the
// previous shards left and finishes it (docs/scaling.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace assetmv {

// Where a shard's index comes from when only --shards N is given: the index
// Kubernetes gives each pod of an Indexed Job, then AWS Batch's array index.
inline constexpr const char* kShardIndexVariables[] = {"JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"};

struct Shard {
  static constexpr std::uint32_t kMaxCount = 4096;  // far past where more workers pay (docs/scaling.md)

  std::uint32_t index = 0;
  std::uint32_t count = 1;  // 1: the whole migration

  bool whole() const { return count == 1; }
  bool owns(std::string_view name) const { return whole() || of(name, count) == index; }
  std::string to_string() const { return std::to_string(index) + "/" + std::to_string(count); }

  // The shard a name falls in among `count`.
  static std::uint32_t of(std::string_view name, std::uint32_t count);
  // "K/N" with 0 <= K < N <= kMaxCount.
  static Result<Shard> parse(std::string_view text);
  // --shards N: K from the first of kShardIndexVariables that is set
  // (getenv returns it); an error names them when none is, or it is not in [0, N).
  static Result<Shard> from_env(std::uint32_t count, const std::function<const char*(const char*)>& getenv);
};

}  // namespace assetmv
