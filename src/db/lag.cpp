#include "db/lag.hpp"

#include <fmt/format.h>

#include <charconv>

namespace assetmv::db {

namespace {

double seconds_of(std::string_view v) {
  double d = 0;
  std::from_chars(v.data(), v.data() + v.size(), d);
  return d;
}

}  // namespace

Result<std::size_t> check_primary_lag_access(Executor& primary) {
  auto r = primary.exec(
      "SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') OR "
      "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_user, "
      "(SELECT count(*) FROM pg_stat_replication)");
  if (!r) return tl::unexpected(r.error());
  if (r->get(0, 0) != "t")
    return fail(ErrorKind::Fatal, "lag_privilege",
                fmt::format("--max-replica-lag: role {} cannot read the replicas' lag in pg_stat_replication "
                            "(it would read as NULL): GRANT pg_monitor TO {}; or give --replica-db",
                            r->get(0, 1), r->get(0, 1)));
  const auto n = static_cast<std::size_t>(r->get_int(0, 2));
  if (n == 0)
    return fail(ErrorKind::Fatal, "no_replica",
                "--max-replica-lag: no standby is connected to the primary (pg_stat_replication is empty); "
                "give the replicas with --replica-db, or drop --max-replica-lag");
  return n;
}

Statement primary_lag_statement() {
  // NULL replay_lag with the privilege: caught up with nothing to replay.
  return {
      "SELECT coalesce(application_name, '') || '@' || coalesce(host(client_addr), 'local'), "
      "coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication ORDER BY 1",
      {}};
}

std::vector<ReplicaLag> primary_lag_of(const Rows& r) {
  std::vector<ReplicaLag> out;
  out.reserve(static_cast<std::size_t>(r.count()));
  for (int i = 0; i < r.count(); ++i) out.push_back({std::string(r.get(i, 0)), seconds_of(r.get(i, 1))});
  return out;
}

Result<std::vector<ReplicaLag>> read_primary_lag(Executor& primary) {
  auto r = primary.exec(primary_lag_statement());
  if (!r) return tl::unexpected(r.error());
  return primary_lag_of(*r);
}

Result<void> check_replica(Executor& replica) {
  auto r = replica.exec("SELECT pg_is_in_recovery()");
  if (!r) return tl::unexpected(r.error());
  if (r->get(0, 0) != "t")
    return fail(ErrorKind::Fatal, "not_a_replica",
                fmt::format("--replica-db {}: not a replica (pg_is_in_recovery() is false)", replica.describe()));
  return {};
}

Statement replica_lag_statement() {
  return {
      "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 "
      "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END",
      {}};
}

ReplicaLag replica_lag_of(const Rows& r, const std::string& replica) { return {replica, seconds_of(r.get(0, 0))}; }

Result<ReplicaLag> read_replica_lag(Executor& replica) {
  auto r = replica.exec(replica_lag_statement());
  if (!r) return tl::unexpected(r.error());
  return replica_lag_of(*r, replica.describe());
}

}  // namespace assetmv::db
