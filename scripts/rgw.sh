#!/usr/bin/env bash
# Local Ceph RADOS Gateway (one monitor, one memstore OSD, the gateway) on
# loopback: start | stop | status | env | destroy.
# Idempotent; every daemon is stopped by the pid file it wrote. Objects live in
# memory (memstore), so a stop loses them: this is a test fixture, not storage.
source "$(dirname "$0")/common.sh"

DIR="$ASSETMV_STATE/ceph"
CONF="$DIR/ceph.conf"

write_conf() {
  local fsid=$1
  cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$ASSETMV_MON_PORT]
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid
# One loopback process set: no authentication, no replication.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_bind_msgr1 = false
# With auth off the default secure mode loops on "get_initial_auth_request returned -13".
ms_mon_client_mode = crc
ms_client_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
[mon.a]
mon_data = $DIR/mon
[osd]
osd_objectstore = memstore
osd_data = $DIR/osd
# memstore keeps everything in RAM; allow room for a 100k-object seed.
memstore_device_bytes = 8589934592
osd_memory_target = 1073741824
[client.rgw.local]
rgw_data = $DIR/rgw
# tcp_nodelay: without it every request stalls about 40 ms (Nagle + delayed ACK).
rgw_frontends = beast endpoint=127.0.0.1:$ASSETMV_RGW_PORT tcp_nodelay=1
rgw_dns_name = localhost
rgw_thread_pool_size = 256
# The usage log counts requests per bucket and category (tests read it to
# count copies); flushed every second, not after every entry, which would
# cost a RADOS write per request.
rgw_enable_usage_log = true
rgw_usage_log_tick_interval = 1
rgw_usage_log_flush_threshold = 1024
# SSE-KMS with the gateway's built-in test keys (never a production setup):
# --sse aws:kms --sse-kms-key-id assetmv-test-key can be tried on loopback.
rgw_crypt_require_ssl = false
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = assetmv-test-key=YXUmSHp4EiYkqyOI6irvKYuYomxrf6EIrgzBLRjw/X0=
# Level 1 writes three lines per request (start, done, access log): on two
# cores that is CPU taken from the gateway and from every client measured
# against it. Errors still reach the log.
debug_rgw = 0/0
debug_ms = 0/0
# A second gateway on the same cluster (the same users and buckets) with STS
# (AssumeRole, AssumeRoleWithWebIdentity, GetSessionToken), so that the
# credential tests get temporary keys from a real STS
# (tests/e2e/test_credentials.py). Apart from the first: with STS on, RGW 16
# answers a wrong secret or an unknown key with a bare AccessDenied, where S3
# (and the first gateway, whose answers the other tests pin) says
# SignatureDoesNotMatch or InvalidAccessKeyId.
[client.rgw.sts]
rgw_data = $DIR/rgw
rgw_frontends = beast endpoint=127.0.0.1:$ASSETMV_RGW_STS_PORT tcp_nodelay=1
rgw_dns_name = localhost
rgw_thread_pool_size = 64
rgw_s3_auth_use_sts = true
# Encrypts session tokens: 16 characters, loopback only, never reused.
rgw_sts_key = assetmvlocalsts0
debug_rgw = 0/0
debug_ms = 0/0
CONF
}

running() { pid_alive "$DIR/run/client.rgw.local.pid" && pid_alive "$DIR/run/client.rgw.sts.pid"; }

gw_ok() {  # gw_ok [PORT]
  local port=${1:-$ASSETMV_RGW_PORT}
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" || curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" | grep -q 403
}

start() {
  command -v radosgw >/dev/null || { log "radosgw not installed: run scripts/setup.sh"; exit 1; }
  if running && gw_ok; then log "already running on port $ASSETMV_RGW_PORT"; return 0; fi
  # memstore forgets everything with its OSD, so a partial cluster cannot be
  # revived: stop what is left and bootstrap afresh (about 14 s).
  stop
  rm -rf "$DIR"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon" "$DIR/osd" "$DIR/rgw"
  local fsid; fsid=$(uuidgen)
  write_conf "$fsid"
  local C=(-c "$CONF")

  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$ASSETMV_MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" >/dev/null
  ceph-mon "${C[@]}" -i a
  wait_for 30 timeout 5 ceph "${C[@]}" mon stat || fail "monitor did not answer" mon.a.log

  local id uuid
  uuid=$(uuidgen)
  id=$(timeout 20 ceph "${C[@]}" osd new "$uuid")
  ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
  ceph-osd "${C[@]}" -i "$id" 2>/dev/null
  wait_for 60 bash -c "timeout 5 ceph -c '$CONF' osd stat | grep -q '1 up'" || fail "OSD did not come up" osd.0.log

  radosgw "${C[@]}" -n client.rgw.local
  wait_for 120 gw_ok || fail "gateway did not answer" client.rgw.local.log
  # Storage classes beyond STANDARD, so that a copy can be seen to keep its
  # class. The gateway stores GLACIER like any other class (it cannot
  # archive): a listed GLACIER object exercises the archived-object path. The
  # gateway reads placement at start, hence the restart.
  local sc
  for sc in STANDARD_IA GLACIER; do
    timeout 20 radosgw-admin "${C[@]}" zonegroup placement add --rgw-zonegroup default \
      --placement-id default-placement --storage-class "$sc" >/dev/null
    timeout 20 radosgw-admin "${C[@]}" zone placement add --rgw-zone default --placement-id default-placement \
      --storage-class "$sc" --data-pool "default.rgw.${sc,,}.data" >/dev/null
  done
  stop_pid "$DIR/run/client.rgw.local.pid"
  radosgw "${C[@]}" -n client.rgw.local
  wait_for 120 gw_ok || fail "gateway did not answer after its restart" client.rgw.local.log

  radosgw-admin "${C[@]}" user create --uid=assetmv --display-name=assetmv \
    --access-key="$ASSETMV_S3_ACCESS_KEY" --secret="$ASSETMV_S3_SECRET_KEY" >/dev/null
  # The credential tests register their OpenID Connect issuer through the IAM API.
  radosgw-admin "${C[@]}" caps add --uid=assetmv --caps="oidc-provider=*;roles=*" >/dev/null
  local b
  for b in "$ASSETMV_LEGACY_BUCKET" "$ASSETMV_PROD_BUCKET"; do
    # curl signs with SigV4 itself; the secret goes through stdin, not argv.
    curl -fsS -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -K - \
      -o /dev/null "http://127.0.0.1:$ASSETMV_RGW_PORT/$b" <<<"user = \"$ASSETMV_S3_ACCESS_KEY:$ASSETMV_S3_SECRET_KEY\"" ||
      { log "cannot create bucket $b"; exit 1; }
  done
  radosgw "${C[@]}" -n client.rgw.sts
  wait_for 60 gw_ok "$ASSETMV_RGW_STS_PORT" || fail "the STS gateway did not answer" client.rgw.sts.log
  log "gateway on http://127.0.0.1:$ASSETMV_RGW_PORT (buckets $ASSETMV_LEGACY_BUCKET, $ASSETMV_PROD_BUCKET)," \
    "with STS on http://127.0.0.1:$ASSETMV_RGW_STS_PORT"
}

stop() {
  local f
  [[ -d "$DIR/run" ]] || return 0
  # Gateway first, monitor last: each daemon wrote its own pid file.
  for f in "$DIR"/run/client.rgw.*.pid "$DIR"/run/osd.*.pid "$DIR"/run/mon.*.pid; do
    if [[ -e "$f" ]]; then stop_pid "$f"; fi
  done
}

s3_env() {
  print_s3_env "$ASSETMV_S3_ACCESS_KEY" "$ASSETMV_RGW_PORT" rgw
  echo "export ASSETMV_STS_ENDPOINT_URL=http://127.0.0.1:$ASSETMV_RGW_STS_PORT"
}

s3_service_main gateway "$ASSETMV_RGW_PORT" "$@"
