# Shared settings for the local-service scripts. Sourced, not run.
# Every value can be overridden from the environment so that two test runs,
# or a developer's own services, can live side by side on other ports.
set -euo pipefail

ASSETMV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${ASSETMV_STATE:=$ASSETMV_ROOT/.local}"   # all service data, logs and pid files
: "${ASSETMV_PG_PORT:=55432}"
: "${ASSETMV_PG_REPLICA_PORT:=55433}"       # a streaming replica of it, for the lag throttle
: "${ASSETMV_MON_PORT:=53300}"
: "${ASSETMV_RGW_PORT:=57480}"
: "${ASSETMV_RGW_STS_PORT:=57481}"          # a second gateway of the same cluster, with STS (rgw.sh)
: "${ASSETMV_SWIFT_PORT:=58080}"             # the Swift proxy; its servers use the next four ports
: "${ASSETMV_SWIFT_ACCOUNT:=assetmv}"
: "${ASSETMV_SWIFT_USER:=local}"
: "${ASSETMV_S3_ACCESS_KEY:=assetmvlocalaccess}"
# A throw-away secret for a loopback-only gateway; never reuse it elsewhere.
: "${ASSETMV_S3_SECRET_KEY:=assetmvlocalsecretassetmvlocalsecret00}"
: "${ASSETMV_LEGACY_BUCKET:=legacy-s3}"
: "${ASSETMV_PROD_BUCKET:=production-s3}"
: "${ASSETMV_PG_DB:=assetmv}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

# fail MESSAGE LOG: says why, shows the daemon's last log lines (a CI checkout
# and its logs are deleted after the run), and stops.
fail() {
  log "$1; see $DIR/log"
  [[ -n ${2:-} && -s "$DIR/log/$2" ]] && { log "last lines of $2:"; tail -n 40 "$DIR/log/$2" >&2; }
  exit 1
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid FILE: TERM the process named in FILE, KILL it after 10 s.
stop_pid() {
  local f=$1 pid
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# reserve_ports: keeps the kernel from giving our services' ports to outgoing
# connections. They lie in Linux's ephemeral range (32768-60999), from which
# every client socket takes its local port; a CI run failed when Swift's
# account server could not bind 58082 for 30 s, a long-lived connection
# holding it. ip_local_reserved_ports takes them out of that pool (listening
# on them is unaffected). Needs root and a writable /proc/sys; elsewhere the
# services start as before.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports have
  local want="$ASSETMV_MON_PORT,$ASSETMV_PG_PORT,$ASSETMV_PG_REPLICA_PORT,$ASSETMV_RGW_PORT,$ASSETMV_RGW_STS_PORT"
  want+=",$ASSETMV_SWIFT_PORT-$((ASSETMV_SWIFT_PORT + 4))"
  have=$(cat "$f" 2>/dev/null) || return 0
  # The kernel merges the list it is given, so writing ours again changes nothing.
  echo "${have:+$have,}$want" 2>/dev/null >"$f" ||
    log "note: could not reserve ports $want against outgoing connections (not root?)"
}

# port_holder PORT: the sockets bound to PORT that a live process owns (a
# listener, or a client socket given PORT as its local port); empty when a
# server may listen on it. Sockets no process owns any more (TIME-WAIT,
# FIN-WAIT of a stopped server's connections) do not stop a SO_REUSEADDR bind.
port_holder() { ss -Htanp "( sport = :$1 )" 2>/dev/null | grep 'users:' || true; }

# s3_service_main NAME PORT ARGS...: the start|stop|status|env|destroy
# dispatch every S3 service script shares. The script defines start, stop,
# running, and s3_env (which calls print_s3_env), and sets DIR.
s3_service_main() {
  local name=$1 port=$2
  shift 2
  case "${1:-}" in
    start) reserve_ports; start ;;
    stop) stop ;;
    status) running && echo "$name running on 127.0.0.1:$port" || { echo "$name stopped"; return 1; } ;;
    env) s3_env ;;
    destroy) stop; rm -rf "$DIR" ;;
    *) echo "usage: $0 start|stop|status|env|destroy" >&2; return 2 ;;
  esac
}

# print_s3_env ACCESS_KEY PORT IMPLEMENTATION: the variables that point
# assetmv, aws, rclone and the tests at a local S3 service.
print_s3_env() {
  cat <<ENV
export AWS_ACCESS_KEY_ID=$1
export AWS_SECRET_ACCESS_KEY=$ASSETMV_S3_SECRET_KEY
export AWS_ENDPOINT_URL=http://127.0.0.1:$2
export AWS_REGION=us-east-1
export ASSETMV_S3_IMPLEMENTATION=$3
ENV
}
