#!/usr/bin/env bash
# How fast can `assetmv seed` fill the local gateway, and is the client or
# the server the limit? Seeds COUNT objects at several concurrency levels and
# prints, for each, the rate and the CPU seconds spent by assetmv and by the
# gateway's own processes (radosgw, ceph-osd, ceph-mon) during the run.
# Usage: bench/seed_ceiling.sh [COUNT] [CONCURRENCY...]   (default 20000; 8 32 128 512)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
COUNT=${1:-20000}; shift || true
LEVELS=("${@:-8 32 128 512}")
read -r -a LEVELS <<<"${LEVELS[*]}"
scripts/services.sh start >/dev/null
eval "$(scripts/services.sh env)"
[[ -x build/src/assetmv ]] || { cmake -S . -B build -G Ninja >/dev/null && ninja -C build assetmv >/dev/null; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
seed() {
  build/src/assetmv seed --source "s3://$ASSETMV_LEGACY_BUCKET/image/" --dest "s3://$ASSETMV_PROD_BUCKET/avatar/" \
    --log-format json "$@" 2>/dev/null
}
printf '%-12s %9s %10s %11s %13s %13s %16s\n' concurrency objects "wall s" "objects/s" "client cpu s" "server cpu s" "cpu per 1k obj"
for c in "${LEVELS[@]}"; do
  seed --count 0 --reset >/dev/null  # empty the world outside the measurement
  before=$(server_cpu)
  out=$(/usr/bin/time -o "$tmp" -f '%U %S %e' build/src/assetmv seed --source "s3://$ASSETMV_LEGACY_BUCKET/image/" \
          --dest "s3://$ASSETMV_PROD_BUCKET/avatar/" --count "$COUNT" --concurrency "$c" --log-format json 2>/dev/null)
  after=$(server_cpu)
  read -r user sys wall <"$tmp"
  rate=$(grep -o '"uploads_per_second": [0-9.]*' <<<"$out" | awk '{printf "%.0f", $2}')
  client=$(echo "$user + $sys" | bc)
  server=$(echo "$after - $before" | bc)
  printf '%-12s %9s %10s %11s %13s %13s %16s\n' "$c" "$COUNT" "$wall" "$rate" "$client" "$server" \
    "$(echo "scale=3; $client * 1000 / $COUNT" | bc)/$(echo "scale=3; $server * 1000 / $COUNT" | bc)"
done
