"""End-to-end tests of `assetmv migrate --shards N`: N concurrent processes,
each given its index through the environment as a Kubernetes Indexed Job
gives it (JOB_COMPLETION_INDEX), on the real local PostgreSQL and gateway.
Together they must do exactly what one run does, through a kill -9 of one
of them and a change of N between runs (docs/scaling.md)."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import IMPLEMENTATION, Actors, World, assert_state  # noqa: E402

SEED = int(os.environ.get("ASSETMV_E2E_OBJECTS", "5000"))
RUN_TIMEOUT = 600  # seconds any one shard may take before the test fails
# Each worker's window. N workers keep N windows in flight; four default ones
# (256) are 1,024 requests, every request slot of the gateway
# (rgw_max_concurrent_requests), which sheds any request past them with 503
# SlowDown: the live app's, and those of the test ctest runs beside. CI saw the
# app write 4 rows in 73 s. With the slots cut to 512 here, four windows of 256
# drew 1,034 sheds and one app PUT waited 66 s; four of 64 drew none.
WINDOW = ("--concurrency", "64")


class Shard:
    """One worker: `migrate --shards n` with its index in the environment."""

    def __init__(self, world, index, count, *extra):
        env = dict(os.environ, JOB_COMPLETION_INDEX=str(index))
        self.index, self.count = index, count
        self.started = time.time()
        self.proc = subprocess.Popen(world.command("migrate", "--shards", str(count), *WINDOW, *extra), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def kill9(self):
        """SIGKILL; True if it was still running (so the kill landed mid-run)."""
        running = self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)
        return running

    def finish(self):
        """(exit code, report, stderr), failing the test past RUN_TIMEOUT."""
        try:
            out, err = self.proc.communicate(timeout=max(1, RUN_TIMEOUT - (time.time() - self.started)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(f"shard {self.index}/{self.count} ran past {RUN_TIMEOUT} s")
        return self.proc.returncode, (json.loads(out) if out.strip() else None), err


def run_shards(world, count, *extra):
    shards = [Shard(world, k, count, *extra) for k in range(count)]
    return [s.finish() for s in shards]


def summed(reports):
    total = {}
    for r in reports:
        for k, v in r["counts"].items():
            total[k] = total.get(k, 0) + v
    return total


class ShardsTest(unittest.TestCase):
    def world(self, name, **kw):
        w = World(name, **kw)
        self.addCleanup(w.close)
        return w

    def assertState(self, got, want):
        assert_state(self, got, want)

    def test_four_shards_count_exactly_what_one_run_counts(self):
        one, four = self.world("one"), self.world("four")
        one.make_mixed(SEED)
        four.make_mixed(SEED)
        rc, single, err = one.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])  # conflicts and dangling rows need a human

        before = four.snapshot()
        results = run_shards(four, 4, "--max-rate", "100000")
        for rc, report, err in results:
            self.assertEqual(rc, 1 if report and report["needs_human"]["count"] else 0, err[-3000:])
        reports = [r for _, r, _ in results]
        self.assertEqual(sorted(r["shard"]["index"] for r in reports), [0, 1, 2, 3])
        self.assertEqual({r["shard"]["max_rate"] for r in reports}, {25000}, "each shard takes 1/N of --max-rate")
        self.assertEqual(summed(reports), single["counts"])
        for r in reports:  # an even split: no shard got less than half its share
            self.assertGreater(r["counts"]["legacy_rows_found"], single["counts"]["legacy_rows_found"] / 8)
        self.assertEqual(sum(r["needs_human"]["count"] for r in reports), single["needs_human"]["count"])
        self.assertState(four.snapshot(), four.expected_after(before))

        # verify audits the whole, whoever moved it.
        v1, v4 = one.run("verify")[1], four.run("verify")[1]
        self.assertEqual(v4["counts"], v1["counts"])
        print(f"\n4 shards: {summed(reports)['objects_copied']} copies, counts equal to one run's; "
              f"walls {[round(r['elapsed_seconds'], 1) for r in reports]} s "
              f"vs {round(single['elapsed_seconds'], 1)} s for one", file=sys.stderr)

    def test_a_shard_killed_and_restarted_with_its_index_ends_exact_beside_the_live_app(self):
        bucket = "shards-" + uuid.uuid4().hex[:12]
        w = self.world("shards", dest_bucket=bucket)
        w.s3.create_bucket(Bucket=bucket)
        w.make_mixed(SEED)
        before = w.snapshot()
        to_copy = sum(1 for k in before["legacy"]
                      if k.startswith(w.legacy_prefix) and k[len(w.legacy_prefix):] not in w.conflicts
                      and w.dest_prefix + k[len(w.legacy_prefix):] not in before["dest"])
        count_copies = IMPLEMENTATION == "rgw"  # only the gateway keeps a usage log that counts copies
        copies_before = w.wait_usage_flushed() if count_copies else 0
        actors = Actors(w, before)
        self.addCleanup(actors.close)

        rng = random.Random(int(os.environ.get("ASSETMV_KILL_SEED", str(random.randrange(1 << 30)))))
        victim = rng.randrange(4)
        shards = [Shard(w, k, 4) for k in range(4)]
        time.sleep(rng.uniform(1.0, 2.5))
        killed_mid_run = shards[victim].kill9()
        shards[victim] = Shard(w, victim, 4)  # Kubernetes restarts the pod with the same index
        results = [s.finish() for s in shards]
        time.sleep(1)
        found = actors.stop()
        app, probe = found["live_app"], found["probe"]
        print(f"\nshard {victim} killed mid-run: {killed_mid_run}; probe: {probe['checks']} checks, "
              f"{len(probe['violations'])} violations; {Actors.describe_app(app)}", file=sys.stderr)
        self.assertTrue(killed_mid_run, "the shard finished before the kill: nothing was interrupted")
        for rc, report, err in results:
            self.assertIn(rc, (0, 1), err[-3000:])
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object")
        self.assertGreater(probe["checks"], 200)
        self.assertGreater(len(app["inserted"]), 10)

        got = w.snapshot()
        self.assertState(got, w.expected_with_app(before, app, got))
        counts = summed([r for _, r, _ in results])
        self.assertEqual(counts["conflicts"], len(w.conflicts))  # by name: the app's writes leave it
        # By row: a dangling row the application rewrote before its shard
        # read it is no longer dangling.
        dangling = {w.legacy_prefix + n for n in w.dangling}
        taken = sum(1 for rid in app["changed"] if before["rows"].get(int(rid)) in dangling)
        self.assertIn(counts["dangling_rows"], range(len(w.dangling) - taken, len(w.dangling) + 1))
        self.assertEqual(counts["failures"], 0)
        if count_copies:
            copies = w.wait_usage_flushed(to_copy) - copies_before
            print(f"4 shards, one killed: {copies} copy requests for {to_copy} objects "
                  f"({100.0 * (copies - to_copy) / to_copy:.2f}% extra)", file=sys.stderr)
            self.assertGreaterEqual(copies, to_copy)
            self.assertLessEqual(copies, to_copy * 1.05)

    def test_a_partial_run_of_four_shards_then_three_shards_ends_exact(self):
        w = self.world("reshard")
        w.make_mixed(SEED)
        before = w.snapshot()
        # Four shards, each killed mid-run: a partial state in every shard.
        shards = [Shard(w, k, 4) for k in range(4)]
        time.sleep(2.0)
        interrupted = sum(1 for s in shards if s.kill9())
        left = sum(1 for k in w.snapshot()["legacy"] if k.startswith(w.legacy_prefix))
        self.assertGreater(interrupted, 0, "every shard finished before the kill")
        # The operator changes N: three shards finish it, then verify audits the whole.
        results = run_shards(w, 3)
        for rc, _, err in results:
            self.assertIn(rc, (0, 1), err[-3000:])
        self.assertState(w.snapshot(), w.expected_after(before))
        counts = summed([r for _, r, _ in results])
        self.assertEqual(counts["conflicts"], len(w.conflicts))
        self.assertEqual(counts["dangling_rows"], len(w.dangling))
        rc, report, err = w.run("verify")
        self.assertEqual(rc, 1, err[-3000:])  # the conflicts and dangling rows stay for a human
        self.assertEqual(report["counts"]["rows_missing_object"], 0)
        # One more run, unsharded: nothing left to copy.
        rc, report, err = w.run("migrate")
        self.assertEqual(report["counts"]["objects_copied"], 0)
        print(f"\n{interrupted} of 4 shards killed mid-run ({left} legacy objects left), "
              f"then 3 shards: exact", file=sys.stderr)

    def test_two_different_n_at_once_keep_every_row_on_an_object_and_end_exact(self):
        # The mistake docs/scaling.md warns of: a Job's completions edited
        # while pods of the old N still run. Every name then belongs to one
        # shard of each N, and two workers act on it at once, beside the live
        # application: the conditional steps must keep the invariant and the
        # end state, whatever work is duplicated.
        w = self.world("twon")
        w.make_mixed(SEED)
        before = w.snapshot()
        actors = Actors(w, before)
        self.addCleanup(actors.close)
        shards = [Shard(w, k, n) for n in (4, 3) for k in range(n)]
        results = [s.finish() for s in shards]
        time.sleep(1)
        found = actors.stop()
        app, probe = found["live_app"], found["probe"]
        counts = summed([r for _, r, _ in results if r])
        print(f"\n4 and 3 shards at once: exits {[rc for rc, _, _ in results]}, {counts['objects_copied']} copies, "
              f"{counts['objects_already_in_place']} already in place, {counts['failures']} failures; probe: "
              f"{probe['checks']} checks, {len(probe['violations'])} violations; {Actors.describe_app(app)}",
              file=sys.stderr)
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object")
        self.assertGreater(probe["checks"], 200)
        for rc, report, err in results:
            self.assertIn(rc, (0, 1), err[-3000:])
        # A name the other N's worker moved and deleted first is found in
        # place at the destination, not reported as a failure.
        self.assertEqual(counts["failures"], 0, [i["message"] for _, r, _ in results if r
                                                 for i in r["needs_human"]["items"] if i["kind"] == "failure"][:5])
        got = w.snapshot()
        self.assertState(got, w.expected_with_app(before, app, got))
        rc, report, err = w.run("verify")
        self.assertEqual(report["counts"]["rows_missing_object"], 0, err[-3000:])


if __name__ == "__main__":
    unittest.main()
