"""Nothing the database does may stop the copies (issue 25), measured on the
bench's ceiling endpoint, where S3 answers in 30 ms at AWS's per-prefix rates
and only the database can slow the run:

- a session of the application holds FOR UPDATE locks on every row of the
  table for 4 s, 6 s into a migration of 60,000 objects: the endpoint's
  request rate during the locks stays at least 80% of the rate before them,
  and the end state is exact;
- the database 20 ms away (faultproxy.py's --delay-ms in front of
  PostgreSQL): the run still moves at least 3,000 objects a second.

The rows live in the real PostgreSQL; the objects in the ceiling endpoint's
memory, checked through its own listing."""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ceiling import CEILING, Ceiling  # noqa: E402
from test_faults import FaultProxy  # noqa: E402
from world import ASSETMV, db_connect  # noqa: E402

COUNT = int(os.environ.get("ASSETMV_STALL_OBJECTS", "60000"))
LOCK_AT, LOCK_FOR = 6.0, 4.0


class RequestRate(threading.Thread):
    """The endpoint's request counter, read every 0.25 s."""

    def __init__(self, ceiling):
        super().__init__(daemon=True)
        self.ceiling, self.samples, self.done = ceiling, [], threading.Event()

    def run(self):
        while not self.done.wait(0.25):
            try:
                self.samples.append((time.time(), self.ceiling.stats()["requests"]))
            except OSError:
                pass

    def stop(self):
        self.done.set()
        self.join(timeout=5)

    def rate(self, start, end):
        inside = [(t, n) for t, n in self.samples if start <= t <= end]
        if len(inside) < 2:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


class DatabaseStallTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(CEILING):
            self.skipTest(f"{CEILING} is not built")
        self.ceiling = Ceiling(["legacy", "prod"], f"legacy/stall/image/:{COUNT}")
        self.addCleanup(self.ceiling.stop)
        self.db = db_connect()
        self.addCleanup(self.db.close)
        self.table = f"stall_avatars_{os.getpid()}"
        with self.db.cursor() as c:
            c.execute(f'DROP TABLE IF EXISTS "{self.table}"')
            c.execute(f'CREATE TABLE "{self.table}" (id SERIAL PRIMARY KEY, path VARCHAR)')
            c.execute(f"""INSERT INTO "{self.table}" (path) SELECT 'stall/image/avatar-' || g || '.png'
                          FROM generate_series(0, {COUNT - 1}) g""")
            c.execute(f'VACUUM ANALYZE "{self.table}"')
        self.addCleanup(self.drop)

    def drop(self):
        with self.db.cursor() as c:
            c.execute(f'DROP TABLE IF EXISTS "{self.table}"')

    def migrate(self, env_extra=None):
        env = dict(self.ceiling.env(), **(env_extra or {}))
        argv = [ASSETMV, "migrate", "--source", "s3://legacy/stall/image/", "--dest", "s3://prod/stall/avatar/",
                "--table", self.table, "--log-format", "json", "--progress", "never"]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def assert_exact(self, report):
        self.assertEqual(report["counts"]["rows_rewritten"], COUNT)
        self.assertEqual(report["counts"]["legacy_objects_deleted"], COUNT)
        self.assertEqual(report["counts"]["failures"], 0)
        with self.db.cursor() as c:
            c.execute(f"""SELECT count(*) FILTER (WHERE starts_with(path, 'stall/avatar/')), count(*)
                          FROM "{self.table}" """)
            self.assertEqual(c.fetchone(), (COUNT, COUNT))
        s3 = boto3.client("s3", endpoint_url=self.ceiling.url, aws_access_key_id="ceilingaccess",
                          aws_secret_access_key=self.ceiling.env()["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))

        def count(bucket, prefix):
            n = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                n += page.get("KeyCount", 0)
            return n
        self.assertEqual((count("legacy", "stall/image/"), count("prod", "stall/avatar/")), (0, COUNT))

    def test_rows_locked_by_the_application_for_4s_do_not_stop_the_copies(self):
        rate = RequestRate(self.ceiling)
        rate.start()
        run = self.migrate()
        started = time.time()
        time.sleep(LOCK_AT)
        locker = db_connect()
        locker.autocommit = False
        with locker.cursor() as c:
            lock_start = time.time()
            c.execute(f'SELECT id FROM "{self.table}" FOR UPDATE')  # every row, as a long transaction would
            locked = time.time()
            time.sleep(max(0.0, LOCK_FOR - (locked - lock_start)))
        locker.commit()
        lock_end = time.time()
        locker.close()
        out, err = run.communicate(timeout=600)
        rate.stop()
        self.assertEqual(run.returncode, 0, err[-3000:])
        before = rate.rate(started + 2.0, lock_start)
        during = rate.rate(lock_start, lock_end)
        print(f"\nstall: {COUNT} objects; S3 requests/s {before:.0f} before the locks, {during:.0f} while every row "
              f"was locked ({during / before:.2f}); locks held {lock_end - lock_start:.1f} s", file=sys.stderr)
        self.assertGreaterEqual(during, 0.8 * before, "the copies slowed while the database was locked")
        self.assert_exact(json.loads(out))

    def test_a_database_20ms_away_keeps_3000_objects_per_second(self):
        host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
        proxy = FaultProxy("tcp", f"{host}:{port}", "--delay-ms", "20")
        self.addCleanup(proxy.proc.kill)
        run = self.migrate({"PGHOST": "127.0.0.1", "PGPORT": str(proxy.port)})
        out, err = run.communicate(timeout=600)
        proxy.stop()
        self.assertEqual(run.returncode, 0, err[-3000:])
        report = json.loads(out)
        # Sustained: from the first copy (after the preflight and the table's
        # scan, each statement of them 40 ms longer) to the end.
        first = next(json.loads(line)["seconds"] for line in err.splitlines() if '"migrate.first_copy"' in line)
        per_s = report["counts"]["objects_copied"] / (report["elapsed_seconds"] - first)
        print(f"\nstall: {COUNT} objects with the database 20 ms away: {per_s:.0f} objects/s sustained "
              f"({report['counts']['objects_copied'] / report['elapsed_seconds']:.0f} over the whole "
              f"{report['elapsed_seconds']:.1f} s, the first copy {first:.1f} s in)", file=sys.stderr)
        self.assertGreaterEqual(per_s, 3000)
        self.assert_exact(report)


if __name__ == "__main__":
    unittest.main()
