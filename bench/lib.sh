# Shared helpers of the bench scripts (sourced).

server_cpu() {  # total user+system CPU seconds of the local gateway's processes so far
  local t=0 pid
  for pid in $(pgrep -f 'radosgw|ceph-osd|ceph-mon'); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "scale=2; $t / $(getconf CLK_TCK)" | bc
}

timing() {  # timing FILE: "wall user sys maxrss_kb" from /usr/bin/time -f '%e %U %S %M' (it prefixes a
  tail -1 "$1"   # status line when the command failed, so the figures are on the last line)
}

count_objects() {  # count_objects BUCKET PREFIX [ENDPOINT]
  /usr/bin/python3 - "$@" <<'PY'
import os, sys, boto3
from botocore.config import Config
bucket, prefix = sys.argv[1], sys.argv[2]
endpoint = sys.argv[3] if len(sys.argv) > 3 else os.environ["AWS_ENDPOINT_URL"]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    n += page.get("KeyCount", 0)
print(n)
PY
}
