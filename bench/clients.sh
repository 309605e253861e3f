#!/usr/bin/env bash
# Clients side by side on the ceiling endpoint, where the store is not the
# bottleneck (the local gateway burns ~3.7 ms of its own CPU per object on
# the same two cores and hides every client behind it). One run, and for
# each contender a fresh endpoint preloaded with the same COUNT objects under
# legacy/image/, 30 ms per request, 3,500 writes/s and 5,500 reads/s per
# prefix (AWS's per-prefix rates):
#   assetmv   `assetmv migrate` with its COUNT rows: copy, verify, compare-and-set, delete
#   rclone    `rclone move --transfers 256 --checkers 256`, server-side copy (objects only)
#   awscli    `aws s3 mv --recursive`, max_concurrent_requests 64 (objects only)
#   python    bench/reference_migrate.py: boto3 + psycopg2, 64 threads, with the rows
#   floor     bench/ceiling/s3_floor: assetmv's own S3 and HTTP layers listing and copying
#             each object (no rows, no delete): the floor under assetmv's CPU per object
# Prints wall time, objects/s, client CPU per object, peak RSS, the share of
# SlowDown answers, and each ratio to assetmv.
# Usage: bench/clients.sh [COUNT] [--only "assetmv rclone awscli python floor"]   (default 20000)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
COUNT=20000
CONTENDERS="assetmv rclone awscli python floor"
while (($#)); do
  case "$1" in
    --only) CONTENDERS=$2; shift 2 ;;
    [0-9]*) COUNT=$1; shift ;;
    *) echo "usage: $0 [COUNT] [--only 'assetmv rclone awscli python floor']" >&2; exit 2 ;;
  esac
done
BIN=${ASSETMV_BENCH_BIN:-build/src/assetmv}
FLOOR_BIN=build/bench/ceiling/s3_floor  # built by ceiling_lib.sh, from the tree as it is
. bench/ceiling_lib.sh

# rclone and the AWS CLI pointed at the endpoint from the same variables. The
# endpoint is one rclone does not know, so it must be told to use ListObjectsV2.
export RCLONE_CONFIG_CEIL_TYPE=s3 RCLONE_CONFIG_CEIL_PROVIDER=Other RCLONE_CONFIG_CEIL_ENDPOINT="$AWS_ENDPOINT_URL"
export RCLONE_CONFIG_CEIL_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_CEIL_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export RCLONE_CONFIG_CEIL_REGION=us-east-1 RCLONE_CONFIG_CEIL_FORCE_PATH_STYLE=true RCLONE_CONFIG_CEIL_LIST_VERSION=2
printf '[default]\ns3 =\n  max_concurrent_requests = 64\n  max_queue_size = 10000\n' >"$work/aws-config"

run() {  # run NAME: the contender under /usr/bin/time, into $work/NAME.*
  local name=$1 t=(/usr/bin/time -o "$work/$name.time" -f '%e %U %S %M')
  case "$name" in
    assetmv) "${t[@]}" "$BIN" migrate --source s3://legacy/image/ --dest s3://prod/avatar/ --table ceiling_avatars \
               --log-format json --progress never ;;
    rclone) env -u AWS_CA_BUNDLE "${t[@]}" rclone move ceil:legacy/image/ ceil:prod/avatar/ --config /dev/null \
              --transfers 256 --checkers 256 --s3-no-check-bucket ;;
    awscli) AWS_CONFIG_FILE="$work/aws-config" "${t[@]}" /usr/bin/aws s3 mv s3://legacy/image/ s3://prod/avatar/ \
              --recursive --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" ;;
    python) env -u AWS_CA_BUNDLE "${t[@]}" /usr/bin/python3 bench/reference_migrate.py legacy image/ prod avatar/ \
              ceiling_avatars ;;
    floor) "${t[@]}" "$FLOOR_BIN" s3://legacy/image/ s3://prod/avatar/ --window 256 ;;
  esac >"$work/$name.out" 2>"$work/$name.err"
}

echo "== $COUNT objects per contender, ${LATENCY} ms per request, 3,500 writes/s and 5,500 reads/s per prefix"
for name in $CONTENDERS; do
  start_server --latency-ms "$LATENCY" --preload "legacy/image/:$COUNT"
  make_table "$COUNT"
  echo "running $name..." >&2
  rc=0
  run "$name" || rc=$?
  left=$(count_objects legacy image/)
  moved=$(count_objects prod avatar/)
  stats=$(curl -s "$AWS_ENDPOINT_URL/__stats")
  stop_server
  ((rc == 0)) || { echo "$name exited $rc:" >&2; tail -5 "$work/$name.err" >&2; }
  echo "$name $rc $left $moved $(timing "$work/$name.time") $stats" >>"$work/results"
done

/usr/bin/python3 - "$COUNT" "$work/results" <<'PY'
import json, sys
count, rows = int(sys.argv[1]), {}
for line in open(sys.argv[2]):
    name, rc, left, moved, wall, user, sys_, rss, stats = line.split(" ", 8)
    st = json.loads(stats)
    rows[name] = dict(rc=int(rc), left=int(left), moved=int(moved), wall=float(wall), cpu=float(user) + float(sys_),
                      rss=int(rss) / 1024, slow=100.0 * st["slowdowns"] / max(1, st["requests"]))
print(f"{'client':8} {'exit':>4} {'moved':>7} {'left':>6} {'wall s':>8} {'objects/s':>10} {'CPU us/obj':>11} "
      f"{'peak RSS MB':>12} {'SlowDown%':>10} {'wall ÷':>7} {'CPU ÷':>7} {'RSS ÷':>7}")
base = rows.get("assetmv")
for name, r in rows.items():
    ratio = lambda k: f"{r[k] / base[k]:7.1f}" if base and base[k] else f"{'-':>7}"
    print(f"{name:8} {r['rc']:4d} {r['moved']:7d} {r['left']:6d} {r['wall']:8.1f} {count / r['wall']:10.0f} "
          f"{1e6 * r['cpu'] / count:11.0f} {r['rss']:12.1f} {r['slow']:10.2f} {ratio('wall')} {ratio('cpu')} {ratio('rss')}")
print("(÷: the contender's figure over assetmv's. assetmv and python also rewrite the rows; rclone and awscli move objects only;\n"
      " floor is assetmv's S3 and HTTP layers alone, listing and copying with the same requests: what is left above it is the engine's and the database's)")
PY
