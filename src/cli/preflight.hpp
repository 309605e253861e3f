// The preflight: everything checked before anything changes, each failure
// an exit 2 with one line saying what. The locations must not overlap; the
// table, its columns and the grants must be there; and every S3 permission
// the run needs is proved without changing an object (docs/privileges.md
// lists the probes). What each check proved is kept for the report.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/common.hpp"
#include "core/error.hpp"
#include "engine/db_session.hpp"
#include "s3/requests.hpp"

namespace assetmv::cli {

struct PreflightNeeds {
  bool writes = false;           // a real migrate run (not verify, not --dry-run)
  bool updates_rows = false;     // ... or a rollback, which writes only rows
  bool deletes = false;          // ... that deletes the legacy objects (not --keep-source)
  bool delete_versions = false;  // ... each by its version id (--delete-versions)
  s3::WriteOptions write = {};   // what every copy carries: its ACL and encryption are proved too
};

// The preflight's checks as the report lists them: each says what it proved
// and how the store answered. A probe meant to be refused (the PUT on an
// impossible ETag) is a passed check, not a failed request of the run.
struct Checks {
  nlohmann::json list = nlohmann::json::array();
  bool conditional_writes = true;  // false: the store refuses If-Match/If-None-Match on a PUT
  // Checked when the run deletes: Enabled, Suspended, "" (never versioned) or "unknown".
  std::optional<std::string> legacy_versioning;
  void add(const std::string& permission, const std::string& operation, const std::string& target,
           const std::string& answer);
};

Result<void> preflight(Context& c, engine::DbSession& db, PreflightNeeds needs, Checks& checks);

}  // namespace assetmv::cli
