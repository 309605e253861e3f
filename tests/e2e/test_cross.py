"""Two buckets on two providers (issue 13, item 6): the legacy bucket on
OpenStack Swift's s3api, the destination on the Ceph gateway, each with its
own keys (--dest-profile, as for a GCS or MinIO source beside AWS). No
server-side copy can cross them: the objects stream through assetmv, GET
then PUT, under the same verify, compare-and-set and delete rules. Runs in
the Swift stage (scripts/test.sh), with swift.sh's environment and the
gateway still up."""
import hashlib
import json
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
MIB = 1024 * 1024
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
        w.make_mixed(400)  # conflicts, dangling rows, orphans, odd keys: the mixed world, on two providers
        before = w.snapshot()
        want = w.expected_after(before)
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
        self.assertEqual(rc, 1, err[-3000:])  # the conflicts and dangling rows, for a human
        self.assertEqual(report["counts"]["conflicts"], len(w.conflicts))
        after = w.snapshot()
        ops = [op for op in report["requests"] if op != "total"]
        print(f"\n  cross-provider: kill -9 x{kills}, last run copied {report['counts']['objects_copied']}, "
              f"{report['counts']['objects_already_in_place']} already in place; "
              f"operations {sorted(ops)}", file=sys.stderr, end="")
        self.assertEqual(after["rows"], want["rows"])
        self.assertEqual(after["legacy"], want["legacy"])
        self.assertEqual(after["dest"], want["dest"])  # same keys, and the ETags are the sources' MD5s
        self.assertEqual(kills, 3)
        self.assertLess(report["counts"]["objects_copied"], len(want["dest"]) - 200)  # the killed runs' copies stay
        self.assertIn("source: environment; dest: profile 'gateway'", err)
        self.assertIn("PutObject", ops)  # streamed through assetmv: no server-side copy can cross providers
        self.assertNotIn("CopyObject", ops)
        rc, v, err = w.run("verify", *self.extra, env=self.env, timeout=LIMIT)
        self.assertEqual(rc, 1, err[-3000:])  # exactly what the run left for a human
        self.assertEqual((v["counts"]["legacy_objects_left"], v["counts"]["dangling_rows"]),
                         (len(w.conflicts), len(w.dangling)))

    def test_large_objects_stream_in_parts_within_the_memory_budget(self):
        w = self.world("crossbig")
        w.seed(10, modern_share=0)
        big = {f"big-{i}.bin": (48 if i < 4 else 20) * MIB + i for i in range(6)}
        sources = {}
        for n, size in big.items():
            data = os.urandom(size)
            sources[n] = hashlib.md5(data).hexdigest()
            w.s3.put_object(Bucket=w.legacy_bucket, Key=w.legacy_prefix + n, Body=data, ContentType="image/png",
                            CacheControl="max-age=60", Metadata={"origin": "legacy"})
            w.insert_row(w.legacy_prefix + n)
        budget = ["--memory-budget", "32MiB", "--multipart-threshold", str(8 * MIB)]
        # Killed once the first large object has arrived, then resumed.
        p = subprocess.Popen(w.command("migrate", *self.extra, *budget), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + LIMIT
        while p.poll() is None and not any(k.endswith(".bin") for k in w.objects(w.dest_bucket)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        p = subprocess.Popen(w.command("migrate", *self.extra, *budget), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, text=True)
        out, err = p.communicate(timeout=LIMIT)
        report = json.loads(out)
        peak_mib = report["peak_rss_bytes"] / MIB
        print(f"\n  streamed {len(big)} objects of 20-48 MiB (killed mid-run: {killed}) with a 32 MiB budget: "
              f"peak RSS {peak_mib:.1f} MiB; copied {report['counts']['objects_copied']}, "
              f"in place {report['counts']['objects_already_in_place']}; requests {report['requests']}",
              file=sys.stderr, end="")
        self.assertEqual(p.returncode, 0, err[-3000:])
        self.assertTrue(killed)
        for n, md5 in sources.items():
            key = w.dest_prefix + n
            head = w.dest_s3.head_object(Bucket=w.dest_bucket, Key=key)
            self.assertEqual(head["ContentLength"], big[n])
            self.assertEqual((head["CacheControl"], head["Metadata"].get("origin")), ("max-age=60", "legacy"))
            body = w.dest_s3.get_object(Bucket=w.dest_bucket, Key=key)["Body"].read()
            self.assertEqual(hashlib.md5(body).hexdigest(), md5, f"{n} arrived altered")
        self.assertEqual(w.objects(w.legacy_bucket), {})
        rows = w.rows()
        self.assertEqual(len(rows), 10 + len(big))
        self.assertTrue(all(p.startswith(w.dest_prefix) for p in rows.values()), rows)
        # Bounded by the budget, not by the objects: 32 MiB of parts over a
        # process that needs about 30 MiB without any.
        self.assertLess(peak_mib, 32 + 48)

    def test_swift_has_no_object_tagging(self):
        # Pinned (AWS and the gateway differ): Swift's s3api refuses a write
        # carrying tags and reads every object's tags as none, so a Swift
        # source has none to carry (docs/reliability.md, known limits).
        w = self.world("swifttags")
        key = w.legacy_prefix + "tagged.png"
        with self.assertRaises(Exception) as refused:
            w.s3.put_object(Bucket=w.legacy_bucket, Key=key, Body=b"x", Tagging="a=b")
        self.assertIn("NotImplemented", str(refused.exception))
        w.s3.put_object(Bucket=w.legacy_bucket, Key=key, Body=b"x")
        self.assertEqual(w.s3.get_object_tagging(Bucket=w.legacy_bucket, Key=key)["TagSet"], [])
        self.assertNotIn("TagCount", w.s3.head_object(Bucket=w.legacy_bucket, Key=key))

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
