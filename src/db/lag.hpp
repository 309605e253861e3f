// Replication lag, read the two ways an operator can grant:
//  - on the primary, from pg_stat_replication (one row per connected
//    standby; its lag columns are NULL for a role without pg_monitor, so the
//    preflight insists on the role instead of reading NULL as "no lag");
//    replay_lag there is refreshed when the standby reports, every
//    wal_receiver_status_interval (10 s by default) or as WAL arrives;
//  - on a replica itself (--replica-db): the time since the last replayed
//    commit, when WAL has been received but not yet replayed, else 0.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "db/pg.hpp"

namespace assetmv::db {

struct ReplicaLag {
  std::string name;  // application_name@client_addr on the primary; the replica's user@host:port/db
  double seconds = 0;
};

// Refuses (Fatal, with the grant to give) a role that cannot read the lag
// columns, and a primary with no standby connected: there would be no lag
// to throttle on, and the operator asked for the check.
Result<std::size_t> check_primary_lag_access(Executor& primary);
Result<std::vector<ReplicaLag>> read_primary_lag(Executor& primary);

// Refuses a server that is not in recovery (not a replica).
Result<void> check_replica(Executor& replica);
Result<ReplicaLag> read_replica_lag(Executor& replica);

// The readings as statements and their answers, for the watch that sends
// them on the event loop (engine/lag_watch.hpp).
Statement primary_lag_statement();
std::vector<ReplicaLag> primary_lag_of(const Rows& answer);
Statement replica_lag_statement();
ReplicaLag replica_lag_of(const Rows& answer, const std::string& replica);

}  // namespace assetmv::db
