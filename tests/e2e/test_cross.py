"""Two buckets on two providers (issue 13, item 6): the legacy bucket on
OpenStack Swift's s3api, the destination on the Ceph gateway, each with its
own keys (--dest-profile, as for a GCS or MinIO source beside AWS). No
server-side copy can cross them: the objects stream through assetmv, GET
then PUT, under the same verify, compare-and-set and delete rules. Runs in
the Swift stage (scripts/test.sh), with swift.sh's environment and the
gateway still up."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import IMPLEMENTATION, World, s3_client  # noqa: E402

LIMIT = int(os.environ.get("ASSETMV_HANG_LIMIT", "240"))
GATEWAY = f"http://127.0.0.1:{os.environ.get('ASSETMV_RGW_PORT', '57480')}"
GATEWAY_KEYS = (os.environ.get("ASSETMV_S3_ACCESS_KEY", "assetmvlocalaccess"),
                os.environ.get("ASSETMV_S3_SECRET_KEY", "assetmvlocalsecretassetmvlocalsecret00"))


@unittest.skipUnless(IMPLEMENTATION == "swift", "needs Swift as the environment's service and the gateway beside it")
class CrossProviderTest(unittest.TestCase):
    def world(self, name):
        w = World(name)
        self.addCleanup(w.close)
        w.dest_s3 = s3_client(GATEWAY, *GATEWAY_KEYS)
        # The destination's keys live in a profile of their own; the
        # environment's (Swift's) stay the source's.
        d = tempfile.mkdtemp()
        creds = os.path.join(d, "credentials")
        with open(creds, "w") as f:
            f.write(f"[gateway]\naws_access_key_id = {GATEWAY_KEYS[0]}\naws_secret_access_key = {GATEWAY_KEYS[1]}\n")
        self.env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=creds)
        self.extra = ["--dest-profile", "gateway", "--dest-endpoint", GATEWAY]
        return w

    def copied(self, w):
        return sum(1 for k in w.objects(w.dest_bucket) if k.startswith(w.dest_prefix))

    def test_legacy_on_swift_moves_to_the_gateway_through_kill9_and_resume(self):
        w = self.world("cross")
        w.seed(400, modern_share=0)
        before = w.snapshot()
        want = w.expected_after(before)
        self.assertEqual(len(before["legacy"]), 400)
        # Each run is killed once the copies pass another mark: mid-stream,
        # with GETs and PUTs on the wire.
        kills = 0
        for mark in (80, 160, 240):
            p = subprocess.Popen(w.command("migrate", *self.extra), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=self.env)
            deadline = time.monotonic() + 60
            while p.poll() is None and self.copied(w) < mark and time.monotonic() < deadline:
                time.sleep(0.05)
            if p.poll() is not None:
                break  # finished before the kill
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            kills += 1
        rc, report, err = w.run("migrate", *self.extra, env=self.env, timeout=LIMIT)
        self.assertEqual(rc, 0, err[-3000:])
        after = w.snapshot()
        ops = [op for op in report["requests"] if op != "total"]
        print(f"\n  cross-provider: kill -9 x{kills}, last run copied {report['counts']['objects_copied']}, "
              f"{report['counts']['objects_already_in_place']} already in place; "
              f"operations {sorted(ops)}", file=sys.stderr, end="")
        self.assertEqual(after["rows"], want["rows"])
        self.assertEqual(after["legacy"], want["legacy"])
        self.assertEqual(after["dest"], want["dest"])  # same keys, and the ETags are the sources' MD5s
        self.assertEqual(len(after["dest"]), 400)
        self.assertEqual(kills, 3)
        self.assertLess(report["counts"]["objects_copied"], 400 - 200)  # the killed runs' copies were kept
        self.assertIn("source: environment; dest: profile 'gateway'", err)
        self.assertIn("PutObject", ops)  # streamed through assetmv: no server-side copy can cross providers
        self.assertNotIn("CopyObject", ops)
        rc, v, err = w.run("verify", *self.extra, env=self.env, timeout=LIMIT)
        self.assertEqual(rc, 0, err[-3000:])

    def test_a_profile_that_does_not_exist_is_a_one_line_error(self):
        w = self.world("crossbad")
        w.seed(5, modern_share=0)
        before = w.snapshot()
        rc, _, err = w.run("migrate", "--dest-profile", "nosuch", "--dest-endpoint", GATEWAY, env=self.env)
        self.assertEqual(rc, 2, err[-2000:])
        self.assertIn("nosuch", err)
        self.assertEqual(w.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
