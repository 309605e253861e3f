"""assetmv behind a real forward proxy (Debian's tinyproxy), as in a network
whose only way out is an egress proxy: plain-HTTP endpoints go through it as
absolute-form requests, HTTPS ones through a CONNECT tunnel, and no_proxy
hosts around it. Each test has its own proxy and its own proxy log, which
says what went through it."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prometheus import free_port  # noqa: E402
from test_faults import s3_upstream, tls_front  # noqa: E402
from world import ODD_NAMES, body_for, World  # noqa: E402

TINYPROXY = os.environ.get("ASSETMV_TINYPROXY", "/usr/bin/tinyproxy")
# Keys that a proxy or an HTTP library could rewrite on the way: dot
# segments, and what needs percent-encoding.
ODD_KEYS = ODD_NAMES + ["./dot.png", "../dotdot.png", "a//double-slash.png"]


class TinyProxy:
    """tinyproxy in the foreground on a free loopback port; `requests()` reads
    the request lines it logged."""

    def __init__(self, start_limit=15):
        self.dir = tempfile.mkdtemp(prefix="assetmv-proxy-")
        self.port = free_port()
        self.logfile = os.path.join(self.dir, "tinyproxy.log")
        conf = os.path.join(self.dir, "tinyproxy.conf")
        with open(conf, "w") as f:
            # No ConnectPort line: CONNECT to any port (the TLS front's is random).
            # MaxClients above assetmv's connection pool, so none is refused.
            f.write(f'Port {self.port}\nListen 127.0.0.1\nTimeout 120\nMaxClients 1024\nAllow 127.0.0.1\n'
                    f'LogLevel Info\nLogFile "{self.logfile}"\nPidFile "{self.dir}/tinyproxy.pid"\n')
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        self.proc = subprocess.Popen([TINYPROXY, "-d", "-c", conf], stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_limit
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = self.tail()  # before close() closes the output
                self.close()
                raise AssertionError(f"tinyproxy did not start: {why}")
            time.sleep(0.1)

    def tail(self):
        self.out.seek(0)
        text = self.out.read()
        if os.path.exists(self.logfile):
            with open(self.logfile, errors="replace") as f:
                text += f.read()
        return text[-2000:]

    def requests(self):
        """The request lines the proxy received, as (method, target)."""
        if not os.path.exists(self.logfile):
            return []
        with open(self.logfile, errors="replace") as f:
            return re.findall(r"Request \(file descriptor \d+\): (\S+) (\S+) HTTP/1\.1", f.read())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def without_proxy_variables(env):
    return {k: v for k, v in env.items()
            if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}


class ForwardProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(TINYPROXY, os.X_OK):
            raise AssertionError(f"{TINYPROXY} not found: scripts/setup.sh installs Debian's tinyproxy")
        cls.tls, cls.cert = tls_front(s3_upstream())

    @classmethod
    def tearDownClass(cls):
        cls.tls.stop()

    def setUp(self):
        self.proxy = TinyProxy()
        self.addCleanup(self.proxy.close)
        self.w = World("proxy")
        self.addCleanup(self.w.close)
        self.w.seed(60, modern_share=0.2)
        for n in ODD_KEYS:
            self.w.put(self.w.legacy_bucket, self.w.legacy_prefix + n, body_for(n))
            self.w.insert_row(self.w.legacy_prefix + n)
        self.before = self.w.snapshot()
        self.base_env = without_proxy_variables(os.environ)

    def migrate(self, env, *extra):
        rc, report, err = self.w.run("migrate", *extra, env=env, timeout=300)
        self.assertEqual(rc, 0, err[-3000:] + "\n--- proxy:\n" + self.proxy.tail())
        self.assertEqual(self.w.snapshot(), self.w.expected_after(self.before))
        return report

    def test_plain_http_endpoint_goes_through_the_proxy_with_keys_as_signed(self):
        env = dict(self.base_env, http_proxy=f"http://127.0.0.1:{self.proxy.port}")
        report = self.migrate(env)
        seen = self.proxy.requests()
        origin = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
        self.assertTrue(seen and all(target.startswith(origin + "/") for _, target in seen), seen[:5])
        copies = [t for m, t in seen if m == "PUT" and "/" + self.w.dest_prefix in t]
        self.assertGreaterEqual(len(copies), report["counts"]["objects_copied"])
        self.assertTrue(any("/./dot.png" in t for t in copies) and any("/../dotdot.png" in t for t in copies),
                        "dot segments reach the proxy as they were signed")
        print(f"\n  through tinyproxy: {len(seen)} requests, {len(copies)} copies, "
              f"{report['counts']['objects_copied']} objects copied", file=sys.stderr, end="")

    def test_https_endpoint_is_tunnelled_through_the_proxy(self):
        env = dict(self.base_env, https_proxy=f"http://127.0.0.1:{self.proxy.port}",
                   AWS_ENDPOINT_URL=f"https://127.0.0.1:{self.tls.port}")
        report = self.migrate(env, "--ca-file", self.cert)
        seen = self.proxy.requests()
        self.assertTrue(seen, self.proxy.tail())
        self.assertEqual({m for m, _ in seen}, {"CONNECT"}, "the proxy sees tunnels, never the requests in them")
        self.assertEqual({t for _, t in seen}, {f"127.0.0.1:{self.tls.port}"})
        print(f"\n  {len(seen)} CONNECT tunnels for {report['counts']['objects_copied']} copies", file=sys.stderr,
              end="")

    def test_no_proxy_hosts_are_reached_directly(self):
        host = s3_upstream().rsplit(":", 1)[0]
        env = dict(self.base_env, http_proxy=f"http://127.0.0.1:{self.proxy.port}", no_proxy=host)
        self.migrate(env)
        self.assertEqual(self.proxy.requests(), [])


if __name__ == "__main__":
    unittest.main()
