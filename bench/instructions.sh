#!/usr/bin/env bash
# The CPU gate: instructions per object of `assetmv migrate` under callgrind
# on a fixed world (3,000 objects preloaded on bench/ceiling/s3_ceiling, at
# 30 ms per request and AWS's per-prefix rates, with their 3,000 rows in the
# local PostgreSQL). callgrind counts instructions, not seconds: the count
# does not depend on what else the machine does (two runs of one build
# differ by well under 1%), so a change that costs CPU shows even on a busy
# CI machine, where timings cannot.
#
# Usage: bench/instructions.sh            prints the count
#        bench/instructions.sh --check    also fails (exit 1) when the count
#                                         is more than 3% above the one kept
#                                         in bench/instructions.baseline
# ASSETMV_BENCH_BIN measures another build (two versions, one machine).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
COUNT=3000
TOLERANCE=3  # percent: above it, a change made every object dearer
BASELINE=bench/instructions.baseline
BIN=${ASSETMV_BENCH_BIN:-build/src/assetmv}
. bench/ceiling_lib.sh
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed (scripts/setup.sh)" >&2; exit 1; }

start_server --latency-ms "$LATENCY" --preload "legacy/image/:$COUNT"
make_table "$COUNT"
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$BIN" migrate --source s3://legacy/image/ \
  --dest s3://prod/avatar/ --table ceiling_avatars --log-format json --progress never \
  >"$work/report.json" 2>"$work/log" || { tail -20 "$work/log" >&2; exit 1; }
stop_server
copied=$(jq '.counts.objects_copied' "$work/report.json")
[[ $copied == "$COUNT" ]] || { echo "instructions.sh: $copied of $COUNT objects copied" >&2; tail -20 "$work/log" >&2; exit 1; }
total=$(awk '/^summary:/ {print $2}' "$work/callgrind.out")
per=$((total / COUNT))
echo "instructions per object: $per ($total in all, $COUNT objects, $(git rev-parse --short HEAD))"
if [[ ${1:-} == --check ]]; then
  base=$(grep -v '^#' "$BASELINE" | head -1)
  limit=$((base * (100 + TOLERANCE) / 100))
  if ((per > limit)); then
    echo "instructions.sh: $per instructions per object, more than $TOLERANCE% above the baseline $base" \
      "($BASELINE): find what made each object dearer, or raise the baseline in a commit that says why" >&2
    exit 1
  fi
  echo "within $TOLERANCE% of the baseline $base ($BASELINE)"
fi
