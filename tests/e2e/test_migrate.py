"""End-to-end tests of `assetmv migrate` and `assetmv verify` against the
real local PostgreSQL and Ceph RADOS Gateway (scripts/services.sh)."""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import IMPLEMENTATION, ODD_NAMES, Actors, World, assert_state, make_role  # noqa: E402

SEED = int(os.environ.get("ASSETMV_E2E_OBJECTS", "5000"))


class MigrateTest(unittest.TestCase):
    def world(self, name, **kw):
        w = World(name, **kw)
        self.addCleanup(w.close)
        return w

    def assertState(self, got, want):
        assert_state(self, got, want)

    def test_mixed_world(self):
        w = self.world("mixed")
        w.make_mixed(SEED)
        before = w.snapshot()
        legacy_seeded = sum(1 for k in before["legacy"] if k.startswith(w.legacy_prefix + "avatar-"))
        self.assertGreater(legacy_seeded, 0)

        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])  # conflicts and dangling rows need a human
        self.assertState(w.snapshot(), w.expected_after(before))

        odd = len(ODD_NAMES)
        c = report["counts"]
        self.assertEqual(c["rows_rewritten"], legacy_seeded + 2 + 5 + 3 + odd)
        self.assertEqual(c["objects_copied"], legacy_seeded + 20 + odd)
        self.assertEqual(c["objects_already_in_place"], 5 + 3)
        self.assertEqual(c["orphan_objects_moved"], 20)
        self.assertEqual(c["rows_superseded"], 0)
        self.assertEqual(c["dangling_rows"], 10)
        self.assertEqual(c["conflicts"], 5)
        self.assertEqual(c["legacy_objects_deleted"], legacy_seeded + 20 + 5 + odd)
        self.assertEqual(c["failures"], 0)
        self.assertEqual(report["needs_human"]["count"], 15)
        kinds = sorted({i["kind"] for i in report["needs_human"]["items"]})
        self.assertEqual(kinds, ["conflict", "dangling_row"])
        # The preflight's deliberate probes are its checks, not failed requests of the run.
        failed = {op: st["failed"] for op, st in report["requests"].items() if op != "total" and st["failed"]}
        self.assertEqual(failed, {}, "a clean run shows no failed request")
        checks = {c["permission"]: c["answer"] for c in report["preflight"]["checks"]}
        if IMPLEMENTATION == "swift":  # s3api refuses conditional PUTs: the write is proved by an aborted upload
            self.assertIn("refuses conditional PUTs", checks.pop("conditional writes"))
            self.assertIn("upload started and aborted", checks["s3:PutObject"])
        else:
            self.assertIn("refused as meant", checks["s3:PutObject"])
        self.assertEqual(set(checks), {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                       "s3:GetObjectTagging", "s3:GetBucketVersioning"})
        self.assertGreaterEqual(report["preflight"]["requests"], 6)

        # Running again changes nothing and finds the same items.
        after = w.snapshot()
        rc, report2, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])
        self.assertState(w.snapshot(), after)
        self.assertEqual(report2["counts"]["objects_copied"], 0)
        self.assertEqual(report2["counts"]["rows_rewritten"], 0)

        rc, audit, err = w.run("verify")
        self.assertEqual(rc, 1, err[-3000:])
        a = audit["counts"]
        self.assertEqual(a["rows_legacy"], 15)
        self.assertEqual(a["dangling_rows"], 10)
        self.assertEqual(a["legacy_objects_left"], 5)
        self.assertEqual(a["rows_missing_object"], 0)
        self.assertEqual(a["rows_null_path"], 5)
        self.assertEqual(a["rows_empty_path"], 5)
        self.assertEqual(a["rows_other_prefix"], 5 + 2)

    def test_clean_world_verifies(self):
        w = self.world("clean")
        w.seed(500, modern_share=0.5)
        rc, _, err = w.run("verify")
        self.assertEqual(rc, 1, err[-2000:])
        rc, report, err = w.run("migrate", "--report", os.path.join(tempfile.mkdtemp(), "r.json"))
        self.assertEqual(rc, 0, err[-2000:])
        rc, audit, err = w.run("verify")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual(audit["counts"]["rows_dest"], 500)
        self.assertEqual(audit["counts"]["legacy_objects_left"], 0)

    def test_keep_source_then_delete(self):
        w = self.world("keep")
        w.seed(300, modern_share=0.1)
        before = w.snapshot()
        rc, report, err = w.run("migrate", "--keep-source")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertState(w.snapshot(), w.expected_after(before, keep_source=True))
        self.assertEqual(report["counts"]["legacy_objects_deleted"], 0)
        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertState(w.snapshot(), w.expected_after(before))
        self.assertEqual(report["counts"]["objects_copied"], 0)
        self.assertEqual(report["counts"]["legacy_objects_deleted"], report["counts"]["objects_already_in_place"])

    def test_dry_run_changes_nothing(self):
        w = self.world("dry")
        w.make_mixed(1000)
        before = w.snapshot()
        rc, report, err = w.run("migrate", "--dry-run")
        self.assertEqual(rc, 1, err[-2000:])
        self.assertEqual(w.snapshot(), before)
        self.assertTrue(report["dry_run"])
        self.assertEqual(report["counts"]["conflicts"], 5)
        self.assertEqual(report["counts"]["dangling_rows"], 10)
        self.assertGreater(report["counts"]["objects_copied"], 0)
        requests = report["requests"]
        self.assertEqual(set(requests) - {"total"}, {"ListObjectsV2"}, "a dry run only lists")
        # The forecast: what a real run sends, priced and timed; then the real run, to hold it to it.
        f = report["forecast"]
        self.assertEqual(f["requests"]["CopyObject"], report["counts"]["objects_copied"])
        self.assertEqual(f["requests"]["ListObjectsV2"], requests["ListObjectsV2"]["requests"])
        self.assertGreaterEqual(f["requests"]["DeleteObjects"], 1)
        self.assertAlmostEqual(f["cost_usd"], f["class_a_requests"] * 0.005 / 1000 + f["class_b_requests"] * 0.0004 / 1000)
        self.assertGreater(f["estimated_seconds"], 0)
        rc, priced, _ = w.run("migrate", "--dry-run", "--price-class-a", "1", "--prefix-write-rate", "10")
        self.assertAlmostEqual(priced["forecast"]["cost_usd"], f["class_a_requests"] / 1000 + f["class_b_requests"] * 0.0004 / 1000)
        writes = sum(f["requests"].get(op, 0) for op in ("CopyObject", "UploadPartCopy", "CreateMultipartUpload",
                                                          "CompleteMultipartUpload", "PutObject"))
        # The slower prefix: copies land on the destination one, deletes on the legacy one.
        self.assertAlmostEqual(priced["forecast"]["estimated_seconds"],
                               max(writes, report["counts"]["legacy_objects_deleted"]) / 10)
        rc, real, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-2000:])
        sent = {op: st["requests"] - st["retries"] for op, st in real["requests"].items() if op != "total"}
        print(f"\nforecast {f['requests']} (${f['cost_usd']:.6f}, {f['estimated_seconds']:.2f} s); real run sent {sent}",
              file=sys.stderr)
        self.assertEqual(sent.get("CopyObject"), f["requests"]["CopyObject"])

    def test_live_app_and_probe(self):
        w = self.world("live")
        w.make_mixed(SEED)
        before = w.snapshot()
        actors = Actors(w, before)
        rc, report, err = w.run("migrate")
        time.sleep(1)
        results = actors.stop()
        app, probe = results["live_app"], results["probe"]
        print(f"\nprobe: {probe['checks']} checks, {probe['rechecked']} rows re-read after a miss, "
              f"{len(probe['violations'])} violations; {Actors.describe_app(app)}", file=sys.stderr)
        self.assertEqual(rc, 1, err[-3000:])
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object")
        self.assertGreater(probe["checks"], 200)
        self.assertGreater(len(app["inserted"]), 10)  # the application was busy during the run
        self.assertGreater(len(app["changed"]), 0)

        got = w.snapshot()
        self.assertState(got, w.expected_with_app(before, app, got))
        c = report["counts"]
        self.assertLessEqual(c["rows_superseded"], len(app["changed"]))
        legacy_rows = sum(1 for p in before["rows"].values() if p and p.startswith(w.legacy_prefix))
        self.assertLessEqual(c["legacy_rows_found"], legacy_rows)  # the app moved some before the scan
        conflict_rows = sum(len(i.get("row_ids", [])) for i in report["needs_human"]["items"] if i["kind"] == "conflict")
        self.assertEqual(c["rows_rewritten"] + c["rows_superseded"] + c["dangling_rows"] + conflict_rows,
                         c["legacy_rows_found"])

    def test_kill9_resume(self):
        bucket = "kill-" + uuid.uuid4().hex[:12]
        w = self.world("kill", dest_bucket=bucket)
        w.s3.create_bucket(Bucket=bucket)
        w.make_mixed(SEED)
        before = w.snapshot()
        want = w.expected_after(before)
        to_copy = sum(1 for k in before["legacy"]
                      if k.startswith(w.legacy_prefix) and k[len(w.legacy_prefix):] not in w.conflicts
                      and w.dest_prefix + k[len(w.legacy_prefix):] not in before["dest"])
        # Only the gateway keeps a usage log that counts copies.
        count_copies = IMPLEMENTATION == "rgw"
        copies_before = w.wait_usage_flushed() if count_copies else 0
        rng = random.Random(int(os.environ.get("ASSETMV_KILL_SEED", str(random.randrange(1 << 30)))))
        kills = 0
        while kills < 10:
            p = subprocess.Popen(w.command("migrate"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 0.8))
            if p.poll() is not None:
                break  # finished before the kill: nothing left to interrupt
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            kills += 1
        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])
        self.assertState(w.snapshot(), want)
        self.assertGreaterEqual(kills, 5, "the run was too short to be killed ten times")
        if not count_copies:
            print(f"\nkill -9 x{kills} on {IMPLEMENTATION}: exact end state", file=sys.stderr)
            return
        copies = w.wait_usage_flushed(to_copy) - copies_before
        print(f"\nkill -9 x{kills}: {copies} copy requests for {to_copy} objects "
              f"({100.0 * (copies - to_copy) / to_copy:.2f}% extra)", file=sys.stderr)
        self.assertGreaterEqual(copies, to_copy)
        self.assertLessEqual(copies, to_copy * 1.05)

    def test_sigterm_exits_3_and_resumes(self):
        w = self.world("sigterm")
        w.seed(3000, modern_share=0)
        before = w.snapshot()
        p = subprocess.Popen(w.command("migrate"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, err[-2000:])
        report = json.loads(out)
        self.assertEqual(report["stop_reason"], "signal")
        rc, _, err = w.run("migrate")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertState(w.snapshot(), w.expected_after(before))

    def test_restricted_role(self):
        w = self.world("role")
        w.seed(500, modern_share=0.2)
        before = w.snapshot()
        role = self.make_role(w, "SELECT, UPDATE (path)")  # exactly the grants of docs/privileges.md
        env = dict(os.environ, PGUSER=role)
        rc, _, err = w.run("migrate", env=env)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertState(w.snapshot(), w.expected_after(before))
        rc, _, err = w.run("verify", env=env)
        self.assertEqual(rc, 0, err[-2000:])

    def test_database_error_mid_run_stops_with_3_safely_and_resumes(self):
        w = self.world("dbfail")
        w.seed(3000, modern_share=0)
        before = w.snapshot()
        role = self.make_role(w, "SELECT, UPDATE (path)")
        env = dict(os.environ, PGUSER=role)
        p = subprocess.Popen(w.command("migrate"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        time.sleep(1.5)
        with w.db.cursor() as c:  # the next compare-and-set fails for good (42501, not retryable)
            c.execute(f'REVOKE UPDATE ON "{w.table}" FROM {role}')
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 3, err[-2000:])
        report = json.loads(out)
        self.assertEqual(report["stop_reason"], "error")
        self.assertIn("42501", report["error"])
        # Stopped, yet every row points at an object that exists.
        mid = w.snapshot()
        for rid, path in mid["rows"].items():
            self.assertTrue(path in mid["legacy"] or path in mid["dest"], f"row {rid} -> {path} points nowhere")
        with w.db.cursor() as c:
            c.execute(f'GRANT UPDATE (path) ON "{w.table}" TO {role}')
        rc, _, err = w.run("migrate", env=env)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertState(w.snapshot(), w.expected_after(before))

    def test_missing_update_grant_is_exit_2_and_changes_nothing(self):
        w = self.world("nogrant")
        w.seed(50, modern_share=0)
        before = w.snapshot()
        role = self.make_role(w, "SELECT")
        rc, report, err = w.run("migrate", env=dict(os.environ, PGUSER=role))
        self.assertEqual(rc, 2, err[-2000:])
        self.assertIn("UPDATE(path)", report["error"])
        self.assertEqual(w.snapshot(), before)

    def make_role(self, w, table_grants):
        role, drop = make_role(w, table_grants)
        self.addCleanup(drop)
        return role


if __name__ == "__main__":
    unittest.main()
