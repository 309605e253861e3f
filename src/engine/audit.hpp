// verify: a read-only audit of the end state. Joins the table's rows under
// both prefixes with both listings and counts rows by kind, rows whose object
// is missing, and objects left under the legacy prefix.
#pragma once

#include "core/loop.hpp"
#include "engine/migration.hpp"
#include "engine/report.hpp"
#include "engine/rows.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

struct AuditResult {
  bool consistent = false;  // fully migrated: no legacy rows, no legacy objects, no row without its object
  std::optional<Error> error;
};

AuditResult audit(EventLoop& loop, ObjectStore& store, RowStore& rows, const MigrationOptions& o, const Hooks& hooks,
                  Report& report);

}  // namespace assetmv::engine
