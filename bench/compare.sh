#!/usr/bin/env bash
# Side-by-side: the same world, the same local gateway, one run. Each
# contender gets its own freshly seeded prefixes (COUNT legacy avatars) and
# moves them to the production prefix:
#   assetmv   `assetmv migrate`: copy + verify + DB rewrite (compare-and-set) + delete
#   rclone    `rclone move`, server-side copy, --transfers 64 --checkers 64 (objects only, no DB)
#   awscli    `aws s3 mv --recursive`, max_concurrent_requests 64 (objects only)
#   python    bench/reference_migrate.py: boto3 + psycopg2, 64 threads, copy -> UPDATE by id -> delete
# and prints wall time, objects/s, client CPU per 1,000 objects, peak RSS,
# the gateway's CPU, and each ratio to assetmv.
# Usage: bench/compare.sh [--count N] [--only "assetmv rclone ..."]   (default 2000: fits a CI budget)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
COUNT=2000
CONTENDERS="assetmv rclone awscli python"
while (($#)); do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --only) CONTENDERS=$2; shift 2 ;;
    *) echo "usage: $0 [--count N] [--only 'assetmv rclone awscli python']" >&2; exit 2 ;;
  esac
done
scripts/services.sh start >/dev/null
eval "$(scripts/services.sh env)"
[[ -x build/src/assetmv ]] || { cmake -S . -B build -G Ninja >/dev/null && ninja -C build assetmv >/dev/null; }
BIN=$ROOT/build/src/assetmv
LB=$ASSETMV_LEGACY_BUCKET PB=$ASSETMV_PROD_BUCKET
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# rclone and the AWS CLI configured for the same gateway, from the same variables.
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL"
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export RCLONE_CONFIG_BENCH_REGION="$AWS_REGION" RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
printf '[default]\ns3 =\n  max_concurrent_requests = 64\n' >"$work/aws-config"

run_contender() {  # run_contender NAME TAG -> runs it under /usr/bin/time into $work/NAME.time
  local name=$1 tag=$2 src="$tag/image/" dst="$tag/avatar/" table="bench_${name}"
  local t=(/usr/bin/time -o "$work/$name.time" -f '%e %U %S %M')
  case "$name" in
    assetmv) "${t[@]}" "$BIN" migrate --source "s3://$LB/$src" --dest "s3://$PB/$dst" --table "$table" \
               --log-format json --progress never >"$work/$name.out" 2>"$work/$name.err" ;;
    # rclone's AWS SDK cannot load a custom CA bundle with its transport: plain HTTP here needs none.
    rclone) env -u AWS_CA_BUNDLE "${t[@]}" rclone move "bench:$LB/$src" "bench:$PB/$dst" --config /dev/null --transfers 64 \
              --checkers 64 --s3-no-check-bucket >"$work/$name.out" 2>"$work/$name.err" ;;
    awscli) AWS_CONFIG_FILE="$work/aws-config" "${t[@]}" /usr/bin/aws s3 mv "s3://$LB/$src" "s3://$PB/$dst" \
              --recursive --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" >"$work/$name.out" 2>"$work/$name.err" ;;
    python) "${t[@]}" /usr/bin/python3 bench/reference_migrate.py "$LB" "$src" "$PB" "$dst" "$table" \
              >"$work/$name.out" 2>"$work/$name.err" ;;
  esac
}

declare -A WALL CPU RSS SRV LEFT
for name in $CONTENDERS; do
  tag="bench-$name-$$"
  "$BIN" seed --source "s3://$LB/$tag/image/" --dest "s3://$PB/$tag/avatar/" --table "bench_${name}" \
    --count "$COUNT" --modern-share 0 --reset --log-format json >/dev/null 2>&1
  echo "running $name on $COUNT objects..." >&2
  s0=$(server_cpu)
  run_contender "$name" "$tag" || echo "  $name exited $? (see below)" >&2
  s1=$(server_cpu)
  read -r wall user sys rss < <(timing "$work/$name.time")
  WALL[$name]=$wall
  CPU[$name]=$(echo "scale=3; ($user + $sys) * 1000 / $COUNT" | bc)
  RSS[$name]=$((rss / 1024))
  SRV[$name]=$(echo "$s1 - $s0" | bc)
  LEFT[$name]=$(count_objects "$LB" "$tag/image/")
  moved=$(count_objects "$PB" "$tag/avatar/")
  [[ "${LEFT[$name]}" == 0 && "$moved" == "$COUNT" ]] || { echo "  $name left ${LEFT[$name]} legacy objects, moved $moved:" >&2; tail -5 "$work/$name.err" >&2; }
  "$BIN" seed --source "s3://$LB/$tag/image/" --dest "s3://$PB/$tag/avatar/" --table "bench_${name}" \
    --count 0 --reset --log-format json >/dev/null 2>&1  # leave the gateway as we found it
done

base=${WALL[assetmv]:-}
printf '\n%-8s %8s %9s %11s %15s %8s %13s %9s %10s %9s\n' contender objects "wall s" "objects/s" "cpu s/1k obj" "RSS MB" \
  "server cpu s" "wall/am" "cpu/am" "rss/am"
for name in $CONTENDERS; do
  rate=$(echo "scale=0; $COUNT / ${WALL[$name]}" | bc)
  if [[ -n "$base" ]]; then
    rw=$(echo "scale=2; ${WALL[$name]} / $base" | bc)
    rc=$(echo "scale=1; ${CPU[$name]} / ${CPU[assetmv]}" | bc)
    rr=$(echo "scale=1; ${RSS[$name]} / ${RSS[assetmv]}" | bc)
  else rw=- rc=- rr=-; fi
  printf '%-8s %8s %9s %11s %15s %8s %13s %9s %10s %9s\n' "$name" "$COUNT" "${WALL[$name]}" "$rate" "${CPU[$name]}" \
    "${RSS[$name]}" "${SRV[$name]}" "$rw" "$rc" "$rr"
done
echo "(assetmv also rewrites $COUNT rows with compare-and-set; rclone and awscli move objects only)"
