"""The bench's ceiling endpoint (bench/ceiling/s3_ceiling: in-memory S3,
SigV4 checked, AWS's latency and per-prefix rates when asked) for the few
tests that need what no real server here can give: a bucket in another
region (test_clouds.py), or S3 fast enough that only the database can be
what slows a run (test_database_stall.py)."""
import json
import os
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CEILING = os.environ.get("ASSETMV_CEILING_BIN", os.path.join(ROOT, "build", "bench", "ceiling", "s3_ceiling"))
SECRET = "ceilingsecretceilingsecretceiling00"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ceiling:
    """s3_ceiling as a subprocess: its buckets, objects preloaded under
    BUCKET/PREFIX (avatar-N.png), buckets in the regions given; `latency_ms`
    per answer and, with `rates`, AWS's per-prefix rates (3,500 writes and
    5,500 reads per second)."""

    def __init__(self, buckets, preload, regions=None, latency_ms=30, rates=True):
        self.port = free_port()
        args = [CEILING, "--port", str(self.port), "--secret-env", "CEILING_SECRET", "--latency-ms", str(latency_ms)]
        if not rates:
            args += ["--write-rate", "0", "--read-rate", "0"]
        for b in buckets:
            args += ["--bucket", b]
        args += ["--preload", preload]
        for b, r in (regions or {}).items():
            args += ["--bucket-region", f"{b}={r}"]
        self.proc = subprocess.Popen(args, env=dict(os.environ, CEILING_SECRET=SECRET), stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/__stats", timeout=1)
                return
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("s3_ceiling did not start")
                time.sleep(0.1)

    def env(self):
        """The variables that point assetmv (and boto3) at it."""
        return dict(os.environ, AWS_ACCESS_KEY_ID="ceilingaccess", AWS_SECRET_ACCESS_KEY=SECRET,
                    AWS_ENDPOINT_URL=self.url)

    def stats(self):
        return json.loads(urllib.request.urlopen(self.url + "/__stats", timeout=5).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
