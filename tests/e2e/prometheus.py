"""A real Prometheus server (Debian's `prometheus`) on loopback, scraping one
target every second, for the /metrics tests. Its data lives in a temporary
directory and goes with it."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

BINARY = os.environ.get("ASSETMV_PROMETHEUS", "/usr/bin/prometheus")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, target_port, start_limit=60):
        self.dir = tempfile.mkdtemp(prefix="assetmv-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                    "scrape_configs:\n  - job_name: assetmv\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([BINARY, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_limit
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = self.tail()  # before close() closes the log
                self.close()
                raise AssertionError(f"prometheus did not start: {why}")
            time.sleep(0.2)

    def tail(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def query(self, promql):
        """The instant vector as {frozenset(labels): value}."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {frozenset((k, v) for k, v in s["metric"].items() if k not in ("instance", "job")): float(s["value"][1])
                for s in body["data"]["result"]}

    def scalar(self, promql):
        """The single value of a query, or None when it has no result."""
        r = self.query(promql)
        assert len(r) <= 1, r
        return next(iter(r.values())) if r else None

    def wait_for(self, promql, want, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.scalar(promql) == want:
                return
            time.sleep(0.5)
        raise AssertionError(f"{promql} never became {want} (now {self.scalar(promql)})")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
