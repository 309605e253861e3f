#!/usr/bin/env bash
# Throw-away PostgreSQL 15 cluster on loopback, with a streaming replica of
# it (pg_basebackup -R) on the next port: start | stop | status | env.
# Idempotent: start on a running cluster does nothing; stop uses the cluster's
# own postmaster.pid. Data lives in $ASSETMV_STATE/pg (see pg_dir for a clone
# the postgres user cannot reach) and is disposable.
source "$(dirname "$0")/common.sh"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
RUN_AS=()
# initdb refuses to run as root, so the cluster belongs to the postgres user.
# From /, which postgres can enter wherever the clone is (else every command
# warns that it cannot change to the working directory).
if [[ $(id -u) == 0 ]]; then RUN_AS=(runuser -u postgres -- env -C /); fi

# Where the cluster lives: $ASSETMV_PG_DIR, else $ASSETMV_STATE/pg when the
# postgres user can reach it. A clone under a directory only root can enter
# (root's home is mode 700 on Debian) cannot hold a cluster that postgres
# owns, and the user's own directories are not ours to open up: the cluster
# then lives in a directory of its own under /var/tmp, named after the clone.
pg_dir() {
  [[ -n ${ASSETMV_PG_DIR:-} ]] && { echo "$ASSETMV_PG_DIR"; return; }
  local reach=$ASSETMV_STATE
  [[ -d $reach ]] || reach=$(dirname "$reach")
  if ((${#RUN_AS[@]})) && ! "${RUN_AS[@]}" test -x "$reach" 2>/dev/null; then
    echo "/var/tmp/assetmv-pg-$(printf %s "$ASSETMV_STATE" | sha256sum | cut -c1-12)/pg"
  else
    echo "$ASSETMV_STATE/pg"
  fi
}
DIR=$(pg_dir)
RDIR="$DIR-replica"

pg_env() {
  echo "export PGHOST=127.0.0.1 PGPORT=$ASSETMV_PG_PORT PGUSER=postgres PGDATABASE=$ASSETMV_PG_DB"
  # The README's and the runbook's commands pass --db "$DATABASE_URL".
  echo "export DATABASE_URL=postgresql://postgres@127.0.0.1:$ASSETMV_PG_PORT/$ASSETMV_PG_DB"
  echo "export ASSETMV_PG_REPLICA_PORT=$ASSETMV_PG_REPLICA_PORT"
}

running() { "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "${1:-$DIR}" status >/dev/null 2>&1; }

# The replica: a base backup of the primary that streams from it (-R writes
# primary_conninfo and standby.signal). It reports its replay position every
# second instead of ten, so the primary's pg_stat_replication.replay_lag
# follows a paused replay within a second or two. Rebuilt when the primary
# was created anew (its WAL would not match). A physical replication slot
# keeps on the primary the WAL the replica has not received, so a replica
# stopped while the primary went on (another session's tests) catches up on
# its next start; one that still cannot stream (a replica from before the
# slot, whose WAL is gone) is rebuilt rather than left behind for the
# replica-lag tests to fail on.
SLOT=assetmv_replica
psql_primary() { "${RUN_AS[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$ASSETMV_PG_PORT" -U postgres -d postgres -qAtc "$1"; }

build_replica() {
  if running "$RDIR"; then "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$RDIR" -m immediate -w stop >/dev/null; fi
  rm -rf "$RDIR"
  install -d -m 700 "$RDIR"
  [[ $(id -u) == 0 ]] && chown postgres:postgres "$RDIR"
  psql_primary "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
  "${RUN_AS[@]}" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$ASSETMV_PG_PORT" -U postgres -D "$RDIR" -R -X stream \
    -C -S "$SLOT" --no-sync --checkpoint=fast >"$ASSETMV_STATE/pg-basebackup.log" 2>&1
}

run_replica() {
  "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$RDIR" -w -t 60 -l "$RDIR/server.log" start \
    -o "-c listen_addresses=127.0.0.1 -p $ASSETMV_PG_REPLICA_PORT -k $RDIR -c fsync=off -c max_connections=200 -c wal_receiver_status_interval=1s" >/dev/null
}

# True once the primary sees the replica streaming, within 20 s.
streaming() {
  for _ in $(seq 40); do
    [[ $(psql_primary "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") -ge 1 ]] && return 0
    sleep 0.5
  done
  return 1
}

start_replica() {
  if [[ ${1:-} == fresh || ! -f "$RDIR/standby.signal" ]]; then build_replica; fi
  if ! running "$RDIR"; then
    run_replica
    log "replica started on 127.0.0.1:$ASSETMV_PG_REPLICA_PORT (cluster in $RDIR)"
  fi
  streaming && return
  log "the replica cannot stream from the primary: $(grep FATAL "$RDIR/server.log" | tail -n1); rebuilding it"
  build_replica
  run_replica
  streaming || { log "the rebuilt replica does not stream either; its log:"; tail -n 20 "$RDIR/server.log" >&2; exit 1; }
  log "replica rebuilt and streaming on 127.0.0.1:$ASSETMV_PG_REPLICA_PORT"
}

start() {
  [[ -x "$PGBIN/initdb" ]] || { log "PostgreSQL server not installed: run scripts/setup.sh"; exit 1; }
  mkdir -p "$ASSETMV_STATE"
  local fresh=
  if [[ ! -s "$DIR/PG_VERSION" ]]; then
    fresh=fresh
    [[ -d "$(dirname "$DIR")" ]] || install -d -m 755 "$(dirname "$DIR")"
    install -d -m 700 "$DIR"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$DIR"
    "${RUN_AS[@]}" "$PGBIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$ASSETMV_STATE/pg-initdb.log"
  fi
  if running; then log "already running on port $ASSETMV_PG_PORT"; else
    "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR" -w -t 60 -l "$DIR/server.log" start \
      -o "-c listen_addresses=127.0.0.1 -p $ASSETMV_PG_PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
    log "started on 127.0.0.1:$ASSETMV_PG_PORT (cluster in $DIR)"
  fi
  "${RUN_AS[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$ASSETMV_PG_PORT" -U postgres -d postgres -qAtc \
    "SELECT 1 FROM pg_database WHERE datname = '$ASSETMV_PG_DB'" | grep -q 1 ||
    "${RUN_AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$ASSETMV_PG_PORT" -U postgres "$ASSETMV_PG_DB"
  start_replica $fresh
}

stop() {
  if [[ -s "$RDIR/postmaster.pid" ]] && running "$RDIR"; then
    "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$RDIR" -m immediate -w stop >/dev/null
  fi
  if [[ -s "$DIR/postmaster.pid" ]] && running; then
    "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR" -m immediate -w stop >/dev/null
    log "stopped"
  fi
}

case "${1:-}" in
  start) reserve_ports; start ;;
  stop) stop ;;
  status) running && echo "running on 127.0.0.1:$ASSETMV_PG_PORT, cluster in $DIR" || { echo stopped; exit 1; }
    running "$RDIR" && echo "replica running on 127.0.0.1:$ASSETMV_PG_REPLICA_PORT" || echo "replica stopped" ;;
  env) pg_env ;;
  destroy) stop; rm -rf "$DIR" "$RDIR"; [[ $DIR == /var/tmp/assetmv-pg-* ]] && rmdir "$(dirname "$DIR")" 2>/dev/null; true ;;
  *) echo "usage: $0 start|stop|status|env|destroy" >&2; exit 2 ;;
esac
