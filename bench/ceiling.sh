#!/usr/bin/env bash
# The client's own ceiling, against bench/ceiling/s3_ceiling (an in-memory S3
# endpoint with AWS-like latency and per-prefix rates, SigV4 checked):
#   1. the endpoint's own capacity: a signed GetObject replayed by wrk with no
#      latency and no rate limit, on its single thread (must be >= 20,000/s);
#   2. `assetmv migrate` of COUNT preloaded objects with their COUNT rows in
#      the local PostgreSQL, at 30 ms per request and 3,500 writes/s and
#      5,500 reads/s per prefix: wall time, sustained objects/s, time to first
#      copy, share of SlowDown answers, client CPU, peak RSS.
#   3. the Python reference on ASSETMV_CEILING_PEER_COUNT objects (default 20000; 0 skips it).
# Usage: bench/ceiling.sh [COUNT...]   (default 100000 1000000; 0: only parts 1 and 3)
# ASSETMV_BENCH_ARGS adds migrate options (e.g. "--metrics-addr 9464").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
COUNTS=("${@:-100000 1000000}")
[[ "${COUNTS[*]}" == "0" ]] && COUNTS=()  # bench/ceiling.sh 0: only the endpoint and the peer
read -r -a COUNTS <<<"${COUNTS[*]}"
BIN=${ASSETMV_BENCH_BIN:-build/src/assetmv}  # another build of assetmv, to compare two versions on one machine
read -r -a EXTRA <<<"${ASSETMV_BENCH_ARGS:-}"  # more migrate options, e.g. --metrics-addr 9464 to measure their cost
. bench/ceiling_lib.sh

echo "== 1. the endpoint's own capacity (no latency, no rate limit, SigV4 checked on every request)"
start_server --latency-ms 0 --write-rate 0 --read-rate 0 --preload legacy/image/:10
headers=$(/usr/bin/python3 - <<'PY'
import os
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = AWSRequest(method="GET", url=os.environ["AWS_ENDPOINT_URL"] + "/legacy/image/avatar-1.png")
S3SigV4Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "s3", "us-east-1").add_auth(req)
for k in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
    print(f"{k}: {req.headers[k]}")
PY
)
wrk_args=()
while IFS= read -r h; do wrk_args+=(-H "$h"); done <<<"$headers"
before=$(curl -s "$AWS_ENDPOINT_URL/__stats")
wrk -t1 -c64 -d10s "${wrk_args[@]}" "$AWS_ENDPOINT_URL/legacy/image/avatar-1.png" | grep -E "Requests/sec|Non-2xx|requests in"
after=$(curl -s "$AWS_ENDPOINT_URL/__stats")
/usr/bin/python3 -c "
import json,sys; b,a=json.loads(sys.argv[1]),json.loads(sys.argv[2])
n=a['requests']-b['requests']; cpu=a['cpu_seconds']-b['cpu_seconds']
print(f'server: {n} requests, {a[\"auth_failures\"]} auth failures, {cpu:.2f} CPU s: {n/cpu:,.0f} requests per CPU second (one thread)')
" "$before" "$after"
stop_server

echo
echo "== 2. assetmv migrate at ${LATENCY} ms per request, 3,500 writes/s and 5,500 reads/s per prefix"
printf '%10s %8s %10s %13s %10s %10s %10s %12s %8s %11s\n' objects "wall s" "objects/s" "sustained/s" \
  "1st copy s" "SlowDown%" "cpu s" "cpu/1k obj" "cores" "peak RSS MB"
for count in "${COUNTS[@]}"; do
  start_server --latency-ms "$LATENCY" --preload "legacy/image/:$count"
  make_table "$count"
  /usr/bin/time -o "$work/time" -f '%e %U %S %M' "$BIN" migrate --source s3://legacy/image/ \
    --dest s3://prod/avatar/ --table ceiling_avatars --log-format json --progress never ${EXTRA[@]+"${EXTRA[@]}"} \
    >"$work/report.json" 2>"$work/log"
  read -r wall user sys rss < <(timing "$work/time")
  stats=$(curl -s "$AWS_ENDPOINT_URL/__stats")
  stop_server
  /usr/bin/python3 - "$count" "$wall" "$user" "$sys" "$rss" "$stats" "$work/report.json" "$work/log" <<'PY'
import json, sys
count, wall, user, sys_, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
stats, report = json.loads(sys.argv[6]), json.load(open(sys.argv[7]))
first = next(json.loads(l)["seconds"] for l in open(sys.argv[8]) if '"migrate.first_copy"' in l)
c = report["counts"]
assert report["exit_code"] == 0 and c["rows_rewritten"] == count and c["legacy_objects_deleted"] == count, report["counts"]
cpu = user + sys_
sustained = count / (wall - first)
slow = 100.0 * stats["slowdowns"] / stats["requests"]
print(f"{count:10d} {wall:8.1f} {count / wall:10.0f} {sustained:13.0f} {first:10.2f} {slow:10.2f} {cpu:10.1f} "
      f"{1000 * cpu / count:12.3f} {cpu / wall:8.2f} {rss / 1024:11.1f}")
PY
done

# 3. The straightforward peer on the same endpoint, where the store is not the bottleneck: the
#    reference implementation (boto3 + psycopg2, 64 threads) on PEER_COUNT objects.
PEER_COUNT=${ASSETMV_CEILING_PEER_COUNT:-20000}
if ((PEER_COUNT > 0)); then
  echo
  echo "== 3. bench/reference_migrate.py (64 threads) on $PEER_COUNT objects, same endpoint and limits"
  start_server --latency-ms "$LATENCY" --preload "legacy/image/:$PEER_COUNT"
  make_table "$PEER_COUNT"
  env -u AWS_CA_BUNDLE /usr/bin/time -o "$work/time" -f '%e %U %S %M' /usr/bin/python3 bench/reference_migrate.py \
    legacy image/ prod avatar/ ceiling_avatars 2>"$work/peer.log"
  read -r wall user sys rss < <(timing "$work/time")
  stats=$(curl -s "$AWS_ENDPOINT_URL/__stats")
  stop_server
  /usr/bin/python3 - "$PEER_COUNT" "$wall" "$user" "$sys" "$rss" "$stats" <<'PY'
import json, sys
n, wall, user, sys_, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
st = json.loads(sys.argv[6])
print(f"{n} objects in {wall:.1f} s: {n / wall:.0f} objects/s, {1000 * (user + sys_) / n:.3f} CPU ms per object, "
      f"{(user + sys_) / wall:.2f} cores, peak RSS {rss / 1024:.0f} MB, SlowDown {100.0 * st['slowdowns'] / st['requests']:.2f}%")
PY
fi
