"""A world large enough for the listing to be split into more than four key
ranges, most of them empty: what a verify after a migration, or a resumed
migrate, looks like. The listing used to hang here for good (issue 10): a
range beyond the first four was never requested once the ones before it came
back empty. Every run of the binary is under a wall-clock limit, so a hang
fails the test instead of stalling CI."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import World, body_for  # noqa: E402

# Rows in the world: 12,500 modern names give seven listing ranges
# (engine/rows.cpp: one range per 2,000 sampled names).
MODERN = int(os.environ.get("ASSETMV_LARGE_WORLD_ROWS", "12500"))
# Seconds a verify or migrate of this world may take before it counts as a
# hang: it needs a few seconds on the gateway, a minute under TSan.
LIMIT_S = int(os.environ.get("ASSETMV_HANG_LIMIT", "240"))


class LargeWorldTest(unittest.TestCase):
    def test_verify_and_resumed_migrate_with_mostly_empty_ranges(self):
        w = World("large")
        self.addCleanup(w.close)
        w.seed(MODERN, modern_share=1.0)  # already migrated: the legacy prefix is empty
        # Stragglers only before and after every seeded name: under the legacy
        # prefix the first and last ranges hold keys, every range between is empty.
        stragglers = [f"aaa-{i:02}.png" for i in range(20)] + [f"zzz-{i:02}.png" for i in range(20)]
        for n in stragglers:
            w.put(w.legacy_bucket, w.legacy_prefix + n, body_for(n))
            w.insert_row(w.legacy_prefix + n)
        before = w.snapshot()

        rc, report, err = w.run("verify", timeout=LIMIT_S)
        self.assertEqual(rc, 1, err[-3000:])  # not done yet: stragglers left
        self.assertEqual(report["counts"]["legacy_objects_left"], len(stragglers))
        self.assertEqual(report["counts"]["dest_objects"], MODERN)

        # A resumed migrate: everything but the stragglers is in place.
        rc, report, err = w.run("migrate", timeout=LIMIT_S)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["objects_copied"], len(stragglers))
        self.assertEqual(report["counts"]["rows_rewritten"], len(stragglers))
        self.assertEqual(w.snapshot(), w.expected_after(before))

        # The verify after it: every legacy range is empty now.
        rc, report, err = w.run("verify", timeout=LIMIT_S)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["legacy_objects_left"], 0)
        self.assertEqual(report["counts"]["dest_objects"], MODERN + len(stragglers))


if __name__ == "__main__":
    unittest.main()
