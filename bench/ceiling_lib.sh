# The ceiling endpoint (bench/ceiling/s3_ceiling: in-memory S3 with AWS-like
# latency and per-prefix rates, SigV4 checked), for the scripts that measure
# clients against it (sourced after bench/lib.sh). Sets the AWS_* variables
# every client reads, a work directory, and:
#   start_server ARGS...   a fresh endpoint (its buckets legacy and prod), waits until it answers
#   stop_server            stops it (also on exit)
#   make_table COUNT       the rows of COUNT preloaded objects, in ceiling_avatars of the local PostgreSQL
PORT=${ASSETMV_CEILING_PORT:-58000}
LATENCY=${ASSETMV_CEILING_LATENCY_MS:-30}
scripts/services.sh start >/dev/null
eval "$(scripts/services.sh env)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build assetmv s3_ceiling s3_floor >/dev/null
export CEILING_SECRET=ceilingsecretceilingsecretceiling00
export AWS_ACCESS_KEY_ID=ceilingaccess AWS_SECRET_ACCESS_KEY=$CEILING_SECRET AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_REGION=us-east-1
work=$(mktemp -d)
server=""
stop_server() { [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=""; }
trap 'stop_server; rm -rf "$work"' EXIT
start_server() {  # start_server ARGS...
  build/bench/ceiling/s3_ceiling --port "$PORT" --secret-env CEILING_SECRET --bucket legacy --bucket prod "$@" \
    2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do
    kill -0 "$server" 2>/dev/null || { echo "s3_ceiling exited (port $PORT in use?)" >&2; cat "$work/server.log" >&2; exit 1; }
    curl -sf "$AWS_ENDPOINT_URL/__stats" >/dev/null && return
    sleep 0.2
  done
  echo "s3_ceiling did not start" >&2; cat "$work/server.log" >&2; exit 1
}
make_table() {  # make_table COUNT: the rows of the COUNT preloaded objects
  psql -q -c "DROP TABLE IF EXISTS ceiling_avatars" -c "CREATE TABLE ceiling_avatars (id SERIAL PRIMARY KEY, path VARCHAR)" \
    -c "INSERT INTO ceiling_avatars (path) SELECT 'image/avatar-' || g || '.png' FROM generate_series(0, $1 - 1) g" \
    -c "VACUUM ANALYZE ceiling_avatars" 2>/dev/null
}
