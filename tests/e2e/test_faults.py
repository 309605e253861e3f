"""The fault matrix: a migration of a few thousand objects through
faultproxy.py (S3 and PostgreSQL faults) or beside a hostile database session,
with the invariant probe of test_migrate watching straight against the
services. Each test asserts that the run completes, at once or after runs that
stop with exit 3, with exactly the end state of a clean run, and that the probe
saw no row pointing at a missing object.

Each test prints one line `fault NAME: ...` (and appends it to
$ASSETMV_FAULT_TABLE when set): the source of docs/reliability.md's table.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import ASSETMV, Actors, World, db_connect  # noqa: E402

OBJECTS = int(os.environ.get("ASSETMV_FAULT_OBJECTS", "2000"))
MAX_RUNS = 6  # a run that stops with exit 3 is resumed; more than this many is a failure
STALL_S = 3   # --stall-timeout for the runs: a blackholed request is abandoned this fast


class FaultProxy:
    """faultproxy.py as a subprocess; `port` once it listens, `stats()` after stop()."""

    def __init__(self, mode, upstream, *args):
        self.tmp = tempfile.mkdtemp()
        port_file = os.path.join(self.tmp, "port")
        self.stats_file = os.path.join(self.tmp, "stats.json")
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen([sys.executable, os.path.join(here, "faultproxy.py"), "--mode", mode,
                                      "--upstream", upstream, "--port-file", port_file,
                                      "--stats-file", self.stats_file, *args])
        deadline = time.time() + 10
        while not (os.path.exists(port_file) and open(port_file).read()):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("faultproxy did not start")
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        with open(self.stats_file) as f:
            return json.load(f)


def s3_upstream():
    return os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1].rstrip("/")


def tls_front(upstream):
    """faultproxy.py serving TLS in front of `upstream`, with a certificate for
    127.0.0.1 made here: (the proxy, the certificate's path)."""
    tmp = tempfile.mkdtemp()
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return FaultProxy("http", upstream, "--tls-cert", cert, "--tls-key", key), cert


class Hostile(threading.Thread):
    """A database session that does `act(cursor)` every `every` seconds until stopped."""

    def __init__(self, act, every):
        super().__init__(daemon=True)
        self.act, self.every, self.done, self.count = act, every, threading.Event(), 0

    def run(self):
        db = db_connect()
        while not self.done.wait(self.every):
            with db.cursor() as c:
                self.count += self.act(c) or 0
        db.close()

    def stop(self):
        self.done.set()
        self.join(timeout=60)
        return self.count


class FaultTest(unittest.TestCase):
    def world(self, name):
        w = World(name)
        self.addCleanup(w.close)
        w.make_mixed(OBJECTS)
        return w

    def migrate_through(self, w, name, env=None, fault_stats=None, during=None):
        """Runs migrate (again after each exit 3) with the probe watching, checks
        the end state and the probe, prints the matrix line; returns the runs' exit codes."""
        before = w.snapshot()
        want = w.expected_after(before)
        actors = Actors(w, before, roles=("probe",))
        codes = []
        started = time.time()
        if during is not None:
            during.start()
        while len(codes) < MAX_RUNS:
            rc, report, err = w.run("migrate", "--stall-timeout", str(STALL_S), env=env, timeout=300)
            codes.append(rc)
            if rc != 3:
                break
            self.assertIsNotNone(report, err[-2000:])
            self.assertIn(report["stop_reason"], ("error",), err[-2000:])
        injected = during.stop() if during is not None else None
        elapsed = time.time() - started
        probe = actors.stop()["probe"]
        stats = fault_stats() if fault_stats else {}
        if injected is not None:
            stats["injected"] = injected
        got = w.snapshot()
        moved = sum(1 for k in before["legacy"] if k not in got["legacy"])
        end_ok = got == want
        build = os.path.basename(os.path.dirname(os.path.dirname(ASSETMV)))
        line = (f"fault {name} [{build}]: runs {codes}, {moved} objects moved in {elapsed:.1f} s, "
                f"injected {json.dumps(stats, sort_keys=True)}, probe {probe['checks']} checks "
                f"{len(probe['violations'])} violations, end state {'exact' if end_ok else 'DIFFERS'}")
        print("\n" + line, file=sys.stderr)
        if os.environ.get("ASSETMV_FAULT_TABLE"):
            with open(os.environ["ASSETMV_FAULT_TABLE"], "a") as f:
                f.write(line + "\n")
        self.assertEqual(codes[-1], 1, f"last run: {err[-3000:]}")  # the mixed world's conflicts and dangling rows
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object")
        for part in ("rows", "legacy", "dest"):
            self.assertEqual(got[part], want[part], f"{part} differs from the clean run's end state")
        self.assertGreater(moved, OBJECTS // 2)
        return codes, stats

    def proxied(self, mode, *proxy_args):
        """A FaultProxy in front of the gateway (http) or PostgreSQL (tcp),
        stopped at cleanup, and the environment that sends assetmv through it."""
        if mode == "http":
            proxy = FaultProxy("http", s3_upstream(), *proxy_args)
            env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}")
        else:
            upstream = f"{os.environ.get('PGHOST', '127.0.0.1')}:{os.environ.get('PGPORT', '5432')}"
            proxy = FaultProxy("tcp", upstream, *proxy_args)
            env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(proxy.port))
        self.addCleanup(lambda: proxy.proc.poll() is None and proxy.stop())
        return proxy, env

    def through_proxy(self, name, mode, *proxy_args):
        """migrate_through a proxy; returns the proxy's counts."""
        w = self.world(name)
        proxy, env = self.proxied(mode, *proxy_args)
        _, stats = self.migrate_through(w, name, env=env, fault_stats=proxy.stop)
        return stats

    # ---- S3 faults --------------------------------------------------------------

    def test_s3_latency_and_jitter(self):
        stats = self.through_proxy("latency", "http", "--fault", "latency", "--rate", "1", "--base-ms", "20",
                                      "--jitter-ms", "200")
        self.assertEqual(stats["latency"], stats["requests"])
        self.assertGreater(stats["latency"], OBJECTS // 2)

    def test_s3_connection_reset_mid_response(self):
        stats = self.through_proxy("reset", "http", "--fault", "reset", "--rate", "0.05")
        self.assertGreater(stats["reset"], 20)

    def test_s3_blackhole_times_out_and_retries(self):
        stats = self.through_proxy("blackhole", "http", "--fault", "blackhole", "--rate", "0.01")
        self.assertGreater(stats["blackhole"], 3)

    def test_s3_500_internal_error(self):
        stats = self.through_proxy("e500", "http", "--fault", "e500", "--rate", "0.05")
        self.assertGreater(stats["e500"], 20)

    def test_s3_503_slowdown(self):
        stats = self.through_proxy("e503", "http", "--fault", "e503", "--rate", "0.10")
        self.assertGreater(stats["e503"], 40)

    def test_s3_copy_200_with_error_body(self):
        stats = self.through_proxy("copy_error", "http", "--fault", "copy_error", "--rate", "0.05")
        self.assertGreater(stats["copy_error"], 20)

    def test_s3_truncated_body(self):
        stats = self.through_proxy("truncate", "http", "--fault", "truncate", "--rate", "0.05")
        self.assertGreater(stats["truncate"], 5)

    def test_s3_outage_stops_3_and_resumes(self):
        """The store fails every request after the first few hundred: the run
        gives up with exit 3 once retries are spent; the next run, with the store
        back, finishes the job."""
        w = self.world("outage")
        proxy, env = self.proxied("http", "--fault", "e500", "--rate", "1", "--after", "600")
        started = time.time()
        rc, report, err = w.run("migrate", "--stall-timeout", str(STALL_S), timeout=300, env=env)
        stats = proxy.stop()
        self.assertEqual(rc, 3, err[-3000:])
        self.assertEqual(report["stop_reason"], "error")
        print(f"\noutage: exit 3 after {time.time() - started:.1f} s, "
              f"{report['counts']['objects_copied']} objects copied first: {report['error']}", file=sys.stderr)
        self.assertGreater(stats["e500"], 10)
        codes, _ = self.migrate_through(w, "outage_then_resume")
        self.assertEqual(codes, [1])

    def test_s3_sigterm_during_backoffs_exits_at_once(self):
        """A stop asked for while requests wait out their backoffs (the store
        fails everything, and each retry would wait up to 20 s) does not wait
        them out: the run exits 3 with stop_reason signal within seconds, and
        the next run, with the store back, finishes the job."""
        w = self.world("sigterm_backoff")
        proxy, env = self.proxied("http", "--fault", "e500", "--rate", "1", "--after", "300")
        p = subprocess.Popen(w.command("migrate", "--stall-timeout", str(STALL_S)), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)  # the outage began after the first 300 requests: backoffs are piling up
        self.assertIsNone(p.poll(), "the run ended before the stop")
        asked = time.time()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        took = time.time() - asked
        proxy.stop()
        self.assertEqual(p.returncode, 3, err[-3000:])
        report = json.loads(out)
        self.assertEqual(report["stop_reason"], "signal")
        print(f"\nsigterm during backoffs: exit 3 {took:.1f} s after the signal", file=sys.stderr)
        self.assertLess(took, 10, "the stop waited out the backoffs")
        codes, _ = self.migrate_through(w, "sigterm_backoff_then_resume")
        self.assertEqual(codes, [1])

    # ---- PostgreSQL faults --------------------------------------------------------

    def test_pg_connection_killed_mid_run(self):
        stats = self.through_proxy("pg_kill", "tcp", "--kill-every", "0.7")
        self.assertGreater(stats.get("kill", 0), 2)

    def test_pg_connection_reset_at_start_is_retried(self):
        """The first connection to PostgreSQL is reset as it opens (a failover,
        a proxy restarting): the preflight tries again instead of calling it a
        configuration error (it used to exit 2, which a connection killed at the
        wrong moment in test_pg_connection_killed_mid_run once showed)."""
        stats = self.through_proxy("pg_reset_at_start", "tcp", "--reset-first", "1")
        self.assertEqual(stats.get("reset_at_start"), 1)

    def test_pg_blackhole_times_out_and_reconnects(self):
        """The database stops answering for 12 s mid-run (connections stay
        open, nothing comes back): the statement is abandoned after
        --stall-timeout's patience (at least lock_timeout + 1 s) and the
        session reconnects once the database is back."""
        stats = self.through_proxy("pg_blackhole", "tcp", "--blackhole-at", "3", "--blackhole-for", "12")
        self.assertGreater(stats.get("blackholed_connections", 0), 0)

    def test_pg_terminate_backend_mid_run(self):
        w = self.world("pgterm")
        app = "assetmv-" + w.tag  # only this run's sessions: other tests may run beside it

        def terminate(c):
            c.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                      (app,))
            return c.fetchone()[0]

        _, stats = self.migrate_through(w, "pg_terminate_backend", env=dict(os.environ, PGAPPNAME=app),
                                        during=Hostile(terminate, 0.5))
        self.assertGreater(stats["injected"], 2)

    def test_pg_rows_locked_by_another_session(self):
        w = self.world("pglock")
        legacy_ids = [rid for rid, p in w.rows().items() if p and p.startswith(w.legacy_prefix)]
        locker = RowLocker(w.table, legacy_ids[::5], hold_s=8)
        _, stats = self.migrate_through(w, "pg_row_lock", during=locker)
        self.assertGreater(stats["injected"], 100)


class RowLocker(threading.Thread):
    """Holds FOR UPDATE locks on `ids` in one open transaction for `hold_s`
    seconds, longer than the tool's lock_timeout (5 s), then lets go."""

    def __init__(self, table, ids, hold_s):
        super().__init__(daemon=True)
        self.table, self.ids, self.hold_s = table, ids, hold_s
        self.locked = threading.Event()
        self.count = 0

    def start(self):
        super().start()
        self.locked.wait(timeout=30)

    def run(self):
        db = db_connect()
        db.autocommit = False
        with db.cursor() as c:
            c.execute(f'SELECT id FROM "{self.table}" WHERE id = ANY(%s) FOR UPDATE', (self.ids,))
            self.count = len(c.fetchall())
            self.locked.set()
            time.sleep(self.hold_s)
        db.rollback()
        db.close()

    def stop(self):
        self.join(timeout=60)
        return self.count


if __name__ == "__main__":
    unittest.main()
