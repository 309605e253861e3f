// `assetmv seed`: builds the exercise's world on real services. The table is
// exactly the exercise's (id SERIAL PRIMARY KEY, path VARCHAR; no index on
// path), and every object is a distinct PNG. Objects are uploaded before
// their rows are inserted, so the seeded world already satisfies the
// invariant that every row points to an existing object.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "db/pg.hpp"
#include "db/table.hpp"
#include "s3/client.hpp"

namespace assetmv::seed {

struct SeedOptions {
  std::uint64_t count = 0;
  std::uint64_t first = 0;  // n of the first avatar: keys avatar-<first>.png ...
  double modern_share = 0;  // fraction already migrated: object in production, row on the modern prefix
  std::string legacy_prefix = "image/";
  std::string modern_prefix = "avatar/";
  bool reset = false;        // empty the table and both prefixes first
  std::size_t window = 256;  // uploads outstanding at once
};

struct SeedReport {
  std::uint64_t legacy_objects = 0;
  std::uint64_t modern_objects = 0;
  std::uint64_t rows = 0;
  std::uint64_t deleted_on_reset = 0;
  double upload_seconds = 0;
  double rows_seconds = 0;
  double total_seconds = 0;
};

// Whether avatar n is seeded as already migrated, spread evenly over n.
bool is_modern(std::uint64_t n, double modern_share);
std::string avatar_name(std::uint64_t n);  // "avatar-<n>.png"

// Creates the table if it does not exist, exactly as the exercise gives it.
Result<void> create_exercise_table(db::Connection& conn, const db::TableRef& table);

// Deletes every object under prefix (ListObjectsV2 + DeleteObjects).
Result<std::uint64_t> delete_prefix(EventLoop& loop, s3::Client& client, const s3::Bucket& bucket,
                                    const std::string& prefix);

using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

Result<SeedReport> seed(EventLoop& loop, s3::Client& client, const s3::Bucket& legacy, const s3::Bucket& production,
                        db::Connection& conn, const db::TableRef& table, const SeedOptions& options,
                        const Progress& progress = {});

}  // namespace assetmv::seed
