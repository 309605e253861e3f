#!/usr/bin/env bash
# The demo: on a fresh Debian 12 machine, installs what is missing, builds,
# starts the local PostgreSQL and Ceph RADOS Gateway, seeds 10,000 avatars
# in a mixed state (some rows already modern, plus an orphan object, a
# dangling row and a duplicate row), runs `assetmv migrate` with its progress
# line, runs `assetmv verify`, and prints the migration's report.
#   DEMO_COUNT=100000 scripts/demo.sh     a bigger world
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
COUNT="${DEMO_COUNT:-10000}"
step() { printf '\n==> %s\n' "$*" >&2; }

step "dependencies"
scripts/setup.sh
step "build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build assetmv >/dev/null
step "local services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

BIN=build/src/assetmv
LOC=(--source "s3://$ASSETMV_LEGACY_BUCKET/image/" --dest "s3://$ASSETMV_PROD_BUCKET/avatar/")
REPORT="$ROOT/.local/demo-report.json"

step "seed $COUNT avatars, 30% already modern"
"$BIN" seed "${LOC[@]}" --count "$COUNT" --modern-share 0.3 --reset --log-format text >/dev/null
# A little of the real world's mess, so the report has something to say.
psql -qc "INSERT INTO avatars (path) VALUES ('image/avatar-1.png'), ('image/deleted-long-ago.png'), (NULL)"
printf 'not referenced by any row' >"$ROOT/.local/orphan.png"
aws s3 cp --quiet "$ROOT/.local/orphan.png" "s3://$ASSETMV_LEGACY_BUCKET/image/orphan.png"

step "before"
psql -c "SELECT split_part(path, '/', 1) AS prefix, count(*) FROM avatars GROUP BY 1 ORDER BY 1"

# Every run of the binary is under a wall-clock limit: a hang fails the demo.
LIMIT="${DEMO_LIMIT_SECONDS:-600}"
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

step "assetmv migrate"
t0=$SECONDS
set +e
timeout "$LIMIT" "$BIN" migrate "${LOC[@]}" --report "$REPORT" --progress always --log-format text >/dev/null
rc=$?
set -e
echo "migrate exit code: $rc after $((SECONDS - t0)) s (1 = finished, some items need a human: see needs_human below)" >&2
((rc != 124)) || fail "migrate did not finish within $LIMIT s"
((rc == 1)) || fail "migrate exited $rc; expected 1 for the demo's deliberate dangling row"

step "after"
psql -c "SELECT split_part(path, '/', 1) AS prefix, count(*) FROM avatars GROUP BY 1 ORDER BY 1"

step "assetmv verify"
t0=$SECONDS
set +e
timeout "$LIMIT" "$BIN" verify "${LOC[@]}" --log-format text --progress never >"$ROOT/.local/demo-verify.json"
rc=$?
set -e
echo "verify exit code: $rc after $((SECONDS - t0)) s (0 only when fully migrated and consistent; the dangling row keeps it at 1)" >&2
((rc != 124)) || fail "verify did not finish within $LIMIT s"
((rc == 1)) || fail "verify exited $rc; expected 1 for the demo's deliberate dangling row"

# The end state the demo promises: the legacy prefix is empty, and the only
# row left on it is the dangling one, whose object never existed.
left=$(jq -r '.counts.legacy_objects_left' "$ROOT/.local/demo-verify.json")
legacy_rows=$(jq -r '.counts.rows_legacy' "$ROOT/.local/demo-verify.json")
[[ $left == 0 && $legacy_rows == 1 ]] ||
  fail "verify found $left legacy objects and $legacy_rows legacy rows; expected 0 and 1 (the dangling row)"

step "the migration's report ($REPORT)"
cat "$REPORT"
echo "demo: OK (migrate and verify as expected)" >&2
