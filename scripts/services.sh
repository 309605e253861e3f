#!/usr/bin/env bash
# Starts, stops or describes all local services: start | stop | status | env.
# `eval "$(scripts/services.sh env)"` sets the AWS_* and PG* variables that
# point assetmv (and psql, aws, rclone) at them.
source "$(dirname "$0")/common.sh"
here="$(dirname "$0")"
case "${1:-}" in
  start) "$here/pg.sh" start && "$here/rgw.sh" start ;;
  stop) "$here/rgw.sh" stop; "$here/swift.sh" stop; "$here/pg.sh" stop ;;
  status) "$here/pg.sh" status; "$here/rgw.sh" status; "$here/swift.sh" status || true ;;
  env)
    "$here/pg.sh" env
    "$here/rgw.sh" env
    echo "export ASSETMV_LEGACY_BUCKET=$ASSETMV_LEGACY_BUCKET ASSETMV_PROD_BUCKET=$ASSETMV_PROD_BUCKET"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
