#!/usr/bin/env bash
# Local OpenStack Swift with its s3api middleware on loopback, the second S3
# implementation the tests run against: start | stop | status | env | destroy.
# One replica, one device directory, the account, container and object
# servers, a proxy with s3api and tempauth, and memcached. Every server reads
# its configuration (swift.conf and the rings included) from $DIR/etc, so
# nothing of the machine's own /etc/swift is used or changed. Idempotent;
# data lives in $DIR and is disposable.
source "$(dirname "$0")/common.sh"

DIR="$ASSETMV_STATE/swift"
ETC="$DIR/etc"
# tempauth names S3 users account:user; the secret is the user's key.
SWIFT_ACCESS_KEY="$ASSETMV_SWIFT_ACCOUNT:$ASSETMV_SWIFT_USER"
SERVERS=(account container object proxy)

port_of() {
  case $1 in
    proxy) echo "$ASSETMV_SWIFT_PORT" ;;
    account) echo $((ASSETMV_SWIFT_PORT + 2)) ;;
    container) echo $((ASSETMV_SWIFT_PORT + 1)) ;;
    object) echo $((ASSETMV_SWIFT_PORT + 3)) ;;
  esac
}
MEMCACHED_PORT=$((ASSETMV_SWIFT_PORT + 4))

write_conf() {
  mkdir -p "$ETC" "$DIR/node/d1" "$DIR/run" "$DIR/log" "$DIR/cache"
  cat >"$ETC/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = assetmv-local-$(uuidgen)
[storage-policy:0]
name = local
default = yes
CONF
  local s
  for s in account container object; do
    cat >"$ETC/$s-server.conf" <<CONF
[DEFAULT]
swift_dir = $ETC
devices = $DIR/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $(port_of "$s")
workers = 1
user = root
log_facility = LOG_LOCAL2
log_level = WARNING
recon_cache_path = $DIR/cache
[pipeline:main]
pipeline = $s-server
[app:$s-server]
use = egg:swift#$s
CONF
  done
  cat >"$ETC/proxy-server.conf" <<CONF
[DEFAULT]
swift_dir = $ETC
bind_ip = 127.0.0.1
bind_port = $ASSETMV_SWIFT_PORT
# Two workers: the proxy, not the storage servers, is where s3api spends its CPU.
workers = 2
user = root
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
[filter:tempauth]
use = egg:swift#tempauth
user_${ASSETMV_SWIFT_ACCOUNT}_${ASSETMV_SWIFT_USER} = $ASSETMV_S3_SECRET_KEY .admin
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
CONF
  # The rest of the pipeline with their defaults.
  local f
  for f in catch_errors gatekeeper healthcheck listing_formats bulk copy slo dlo; do
    printf '[filter:%s]\nuse = egg:swift#%s\n' "$f" "$f" >>"$ETC/proxy-server.conf"
  done
  # Rings: one device, one replica, 2^4 partitions.
  for s in account container object; do
    swift-ring-builder "$ETC/$s.builder" create 4 1 1 >/dev/null
    swift-ring-builder "$ETC/$s.builder" add "r1z1-127.0.0.1:$(port_of "$s")/d1" 100 >/dev/null
    swift-ring-builder "$ETC/$s.builder" rebalance >/dev/null 2>&1 || true
  done
}

running() { pid_alive "$DIR/run/proxy.pid"; }

# put_container TOKEN NAME: a bucket is a container, made with Swift's own API.
put_container() {
  curl -fsS -X PUT -o /dev/null -K - "http://127.0.0.1:$ASSETMV_SWIFT_PORT/v1/AUTH_$ASSETMV_SWIFT_ACCOUNT/$2" \
    <<<"header = \"X-Auth-Token: $1\""
}
proxy_ok() { curl -fsS -o /dev/null "http://127.0.0.1:$ASSETMV_SWIFT_PORT/healthcheck"; }
listens() { bash -c "</dev/tcp/127.0.0.1/$1"; }

# fetch_token: sets TOKEN from tempauth. Tempauth keeps tokens in memcached
# and answers 503 while it cannot reach it, so callers retry.
fetch_token() {
  TOKEN=$(curl -fsS -o /dev/null -D - -K - "http://127.0.0.1:$ASSETMV_SWIFT_PORT/auth/v1.0" \
    <<<"header = \"X-Auth-User: $SWIFT_ACCESS_KEY\"
header = \"X-Auth-Key: $ASSETMV_S3_SECRET_KEY\"" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" {print $2}') || return 1
  [[ -n $TOKEN ]]
}

start() {
  command -v swift-proxy-server >/dev/null || { log "Swift not installed: run scripts/setup.sh"; exit 1; }
  if running && proxy_ok; then log "already running on port $ASSETMV_SWIFT_PORT"; return 0; fi
  stop
  rm -rf "$DIR"
  write_conf
  # A server whose port is taken retries binding for 30 s, then exits: say who holds it instead.
  local s p holder
  for p in $(for s in "${SERVERS[@]}"; do port_of "$s"; done) "$MEMCACHED_PORT"; do
    holder=$(port_holder "$p")
    [[ -z $holder ]] || { log "port $p, one of Swift's, is taken:"; echo "$holder" >&2; exit 1; }
  done
  memcached -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -d -P "$DIR/run/memcached.pid"
  # memcached -d returns before it listens; a proxy that meets it closed
  # answers tempauth with 503 and then shuns it for 60 s after 10 errors.
  wait_for 30 listens "$MEMCACHED_PORT" || fail "memcached did not listen on $MEMCACHED_PORT"
  for s in "${SERVERS[@]}"; do
    nohup "swift-$s-server" "$ETC/$s-server.conf" >"$DIR/log/$s.log" 2>&1 &
    echo $! >"$DIR/run/$s.pid"
  done
  wait_for 60 proxy_ok || fail "Swift proxy did not answer" proxy.log
  for s in account container object; do
    wait_for 60 listens "$(port_of "$s")" || fail "Swift $s server did not listen" "$s.log"
  done
  # Buckets are containers: created through Swift's own API, since curl's
  # SigV4 cannot carry an access key with a colon in it. Secrets go through
  # stdin, not argv. 90 s: longer than the proxy's 60 s memcached shunning.
  local b TOKEN=
  wait_for 90 fetch_token || fail "no token from tempauth" proxy.log
  for b in "$ASSETMV_LEGACY_BUCKET" "$ASSETMV_PROD_BUCKET"; do
    # The proxy answers before the storage servers behind it do: retry.
    wait_for 30 put_container "$TOKEN" "$b" || fail "cannot create bucket $b on Swift" proxy.log
  done
  log "Swift s3api on http://127.0.0.1:$ASSETMV_SWIFT_PORT (buckets $ASSETMV_LEGACY_BUCKET, $ASSETMV_PROD_BUCKET)"
}

stop() {
  local s
  [[ -d "$DIR/run" ]] || return 0
  for s in proxy object container account memcached; do
    if [[ -e "$DIR/run/$s.pid" ]]; then stop_pid "$DIR/run/$s.pid"; fi
  done
  # The servers fork their workers; take those down with their parents.
  pkill -f "swift-[a-z]*-server $ETC/" 2>/dev/null || true
  wait_for 10 bash -c "! pgrep -f 'swift-[a-z]*-server $ETC/'" || log "Swift workers still running after stop"
}

s3_env() { print_s3_env "$SWIFT_ACCESS_KEY" "$ASSETMV_SWIFT_PORT" swift; }

s3_service_main Swift "$ASSETMV_SWIFT_PORT" "$@"
