"""What differs on the real clouds, end to end:

- a bucket in another region than the run was told: the bench's ceiling
  endpoint (bench/ceiling/s3_ceiling --bucket-region) refuses a request
  signed for the wrong region as AWS does (AuthorizationHeaderMalformed
  naming the region, or a HEAD's bare 400 with x-amz-bucket-region): no
  server here can do it for real;
- a store with only the basics of S3, as GCS's XML API is (no DeleteObjects,
  no UploadPartCopy, no tagging): faultproxy.py's `partial` fault in front
  of the real gateway, a mixed world with objects large enough to be copied
  in parts.
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ceiling import CEILING, Ceiling  # noqa: E402
from test_faults import FaultProxy, s3_upstream  # noqa: E402
from world import ASSETMV, World, assert_state, db_connect  # noqa: E402

MIB = 1 << 20


class RegionTest(unittest.TestCase):
    COUNT = 1000

    def setUp(self):
        if not os.path.exists(CEILING):
            self.skipTest(f"{CEILING} is not built")
        self.ceiling = Ceiling(["legacy", "prod"], f"legacy/r/image/:{self.COUNT}",
                               {"legacy": "eu-west-1", "prod": "ap-south-1"}, latency_ms=0, rates=False)
        self.addCleanup(self.ceiling.stop)
        self.db = db_connect()
        self.addCleanup(self.db.close)
        self.table = f"region_avatars_{os.getpid()}"
        with self.db.cursor() as c:
            c.execute(f'DROP TABLE IF EXISTS "{self.table}"')
            c.execute(f'CREATE TABLE "{self.table}" (id SERIAL PRIMARY KEY, path VARCHAR)')
            c.execute(f"""INSERT INTO "{self.table}" (path) SELECT 'r/image/avatar-' || g || '.png'
                          FROM generate_series(0, {self.COUNT - 1}) g""")
        self.addCleanup(self.drop)

    def drop(self):
        with self.db.cursor() as c:
            c.execute(f'DROP TABLE IF EXISTS "{self.table}"')

    def run_tool(self, cmd, *extra):
        env = dict(self.ceiling.env(), AWS_REGION="us-east-1")
        argv = [ASSETMV, cmd, "--source", "s3://legacy/r/image/", "--dest", "s3://prod/r/avatar/", "--table",
                self.table, "--log-format", "json", "--progress", "never", *extra]
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None, p.stderr

    def test_buckets_in_other_regions_are_learned_once_and_the_run_goes_on(self):
        rc, report, err = self.run_tool("migrate")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["rows_rewritten"], self.COUNT)
        self.assertEqual(report["counts"]["legacy_objects_deleted"], self.COUNT)
        self.assertEqual(report["store"]["regions_learned"], {"legacy": "eu-west-1", "prod": "ap-south-1"})
        learned = [json.loads(line) for line in err.splitlines() if '"s3.bucket_region"' in line]
        self.assertEqual(sorted(e["bucket"] for e in learned), ["legacy", "prod"], "each bucket's region logged once")
        # One refused request per bucket: every later one is signed for its region.
        refused = self.ceiling.stats()["ops"].get("WrongRegion", 0)
        self.assertEqual(refused, 2)
        with self.db.cursor() as c:
            c.execute(f"""SELECT count(*) FROM "{self.table}" WHERE starts_with(path, 'r/avatar/')""")
            self.assertEqual(c.fetchone()[0], self.COUNT)
        rc, audit, err = self.run_tool("verify")
        self.assertEqual(rc, 0, err[-3000:])

    def test_regions_given_per_side_need_no_discovery(self):
        rc, report, err = self.run_tool("migrate", "--source-region", "eu-west-1", "--dest-region", "ap-south-1")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertNotIn("regions_learned", report["store"])
        self.assertEqual(self.ceiling.stats()["ops"].get("WrongRegion", 0), 0)


class PartialStoreTest(unittest.TestCase):
    """A store without DeleteObjects, UploadPartCopy and tagging, in front of
    the real gateway: deletes go key by key, large objects stream in parts,
    no tag is read or written, and the world ends exact."""

    def test_a_mixed_world_with_large_objects_ends_exact_on_a_store_with_only_the_basics(self):
        if "AWS_ENDPOINT_URL" not in os.environ:
            self.skipTest("no gateway (run scripts/test.sh)")
        proxy = FaultProxy("http", s3_upstream(), "--fault", "partial")
        self.addCleanup(proxy.proc.kill)
        w = World("partial")
        self.addCleanup(w.close)
        w.make_mixed(int(os.environ.get("ASSETMV_PARTIAL_OBJECTS", "1000")))
        big = {f"big-{n}.png": os.urandom(n * MIB) for n in (6, 12, 17)}
        for name, body in big.items():
            w.put(w.legacy_bucket, w.legacy_prefix + name, body)
            w.insert_row(w.legacy_prefix + name)
        before = w.snapshot()
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}")
        rc, report, err = w.run("migrate", "--multipart-threshold", str(5 * MIB), "--memory-budget", "24MiB",
                                env=env, timeout=600)
        self.assertEqual(rc, 1, err[-3000:])  # the mixed world's conflicts and dangling rows
        got = w.snapshot()
        want = w.expected_after(before)
        for name, body in big.items():  # streamed in parts: a multipart ETag
            key = w.dest_prefix + name
            self.assertRegex(got["dest"][key], r"-\d+$")
            want["dest"][key] = got["dest"][key]
            self.assertEqual(w.s3.get_object(Bucket=w.dest_bucket, Key=key)["Body"].read(), body)
        assert_state(self, got, want)
        self.assertEqual(report["counts"]["failures"], 0)
        self.assertEqual(report["store"]["legacy"], {"multi_object_delete": False, "upload_part_copy": False,
                                                     "object_tagging": False})
        if not os.environ.get("ASSETMV_SANITIZED"):  # a sanitizer's shadow memory is not the tool's
            self.assertLessEqual(report["peak_rss_bytes"], 24 * MIB + 64 * MIB)
        rc, audit, verify_err = w.run("verify", env=env)
        self.assertEqual(rc, 1, verify_err[-3000:])
        self.assertEqual(audit["counts"]["legacy_objects_left"], 5)  # the conflicts', kept for a human
        stats = proxy.stop()
        # Each gap was learned once: one refused DeleteObjects (the
        # preflight's probe), one tagging read, the parts of the large copies under way.
        self.assertEqual(stats.get("no_multi_delete"), 1, stats)
        self.assertEqual(stats.get("no_tagging"), 1, stats)
        self.assertLessEqual(stats.get("no_upload_part_copy", 0), 2 + 3 + 4, stats)  # parts of copies already started
        for event in ('"s3.store_lacks"', '"operation":"DeleteObjects"', '"operation":"UploadPartCopy"',
                      '"operation":"GetObjectTagging"'):
            self.assertIn(event, err)


if __name__ == "__main__":
    unittest.main()
