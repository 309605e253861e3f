"""How a migration is closed, as docs/operations.md tells an operator, run
against the real gateway and PostgreSQL:

- section 9, the way back: after a forward run that kept the legacy
  objects, `migrate --rollback`, beside the live application and the
  invariant probe, puts every row the forward run moved back on its legacy
  object, exactly, and changes no object;
- section 8, each kind of needs_human item settled with the commands that
  section gives (read from the page and run as written, with bash, the AWS
  CLI and psql), after which a rerun ends with exit 0 and verify finds
  nothing wrong."""
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

import boto3  # noqa: F401  (the world's clients)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_faults import FaultProxy, s3_upstream  # noqa: E402
from world import ROOT, Actors, World, assert_state  # noqa: E402

SEED = int(os.environ.get("ASSETMV_CLOSURE_OBJECTS", "2000"))
RUNBOOK = os.path.join(ROOT, "docs", "operations.md")
AWS_CLI = os.environ.get("ASSETMV_AWS_CLI", "/usr/bin/aws")


def runbook_snippets():
    """docs/operations.md's settle procedures: {name: the sh block after `<!-- settle: name -->`}."""
    text = open(RUNBOOK).read()
    return dict(re.findall(r"<!-- settle: ([\w-]+) -->\n```sh\n(.*?)```", text, re.S))


class ClosureTest(unittest.TestCase):
    def world(self, name, **kw):
        w = World(name, **kw)
        self.addCleanup(w.close)
        return w

    def beside_the_app(self, w, before, *args):
        """migrate with `args` while the live application and the invariant
        probe run: (exit code, report, stderr, the actors' results)."""
        actors = Actors(w, before)
        self.addCleanup(actors.close)
        rc, report, err = w.run("migrate", *args)
        time.sleep(1)
        return rc, report, err, actors.stop()

    # ---- section 9: the way back ------------------------------------------------

    def test_a_rollback_restores_every_row_beside_the_live_app(self):
        w = self.world("rollback")
        w.make_mixed(SEED)
        before = w.snapshot()

        rc, forward, err, first = self.beside_the_app(w, before, "--keep-source")
        self.assertEqual(rc, 1, err[-3000:])  # the mixed world's conflicts and dangling rows
        self.assertEqual(first["probe"]["violations"], [], "a row pointed at a missing object")
        moved = w.snapshot()

        rc, report, err, second = self.beside_the_app(w, before, "--rollback")
        app1, app2, probe = first["live_app"], second["live_app"], second["probe"]
        print(f"\nrollback: {report['counts']}; forward {forward['counts']['rows_rewritten']} rows rewritten; "
              f"probe {probe['checks']} checks, {len(probe['violations'])} violations; during the rollback "
              f"{Actors.describe_app(app2)}", file=sys.stderr)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object during the rollback")
        self.assertGreater(probe["checks"], 50)  # it watched the rollback
        self.assertGreater(len(app2["inserted"]) + len(app2["changed"]), 0, "the application was busy")

        got = w.snapshot()
        want = {"rows": dict(before["rows"]), "legacy": dict(before["legacy"]),
                # The copies stay; the application's objects are its own.
                "dest": dict(moved["dest"])}
        for name in w.repairable:  # their legacy object was gone: the forward run repaired them, they stay
            for rid, path in before["rows"].items():
                if path == w.legacy_prefix + name:
                    want["rows"][rid] = w.dest_prefix + name
        for app in (app1, app2):  # the application's writes win
            for rid, path in {**app["inserted"], **app["changed"]}.items():
                want["rows"][int(rid)] = path
        for key in app2["uploaded"]:
            want["dest"][key] = got["dest"].get(key)
        assert_state(self, got, want)

        c = report["counts"]
        self.assertEqual(report["rollback"], True)
        self.assertEqual((report["source"], report["dest"]), (forward["source"], forward["dest"]))
        self.assertEqual(c["failures"], 0)
        self.assertEqual(c["rows_restored"] + c["rows_superseded"] + c["rows_kept"] + c["dangling_rows"], c["rows_found"])
        self.assertEqual(c["dangling_rows"], 0)
        self.assertGreaterEqual(c["rows_restored"], forward["counts"]["rows_rewritten"] - len(app1["changed"]) -
                                len(app2["changed"]) - len(w.repairable))
        for op in ("CopyObject", "PutObject", "DeleteObjects", "DeleteObject", "UploadPartCopy"):
            self.assertNotIn(op, report["requests"], "a rollback writes no object")

        # The way forward again reuses the copies.
        rc, again, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])
        self.assertEqual(again["counts"]["objects_copied"], 0)
        self.assertEqual(again["counts"]["failures"], 0)

    # ---- section 8: settling each kind -------------------------------------------

    def settle(self, w, procedure, cwd, **fields):
        """Runs the runbook's procedure as written, with the names its section defines."""
        script = runbook_snippets()[procedure]
        env = dict(os.environ, TABLE=w.table, LEGACY_BUCKET=w.legacy_bucket, PROD_BUCKET=w.dest_bucket,
                   DEST_PREFIX=w.dest_prefix, **fields)
        # AWS CLI v2 as Debian 12 ships it (2.9) predates AWS_ENDPOINT_URL: the endpoint is given here.
        prelude = f'aws() {{ {AWS_CLI} --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }}\n'
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + script], env=env, cwd=cwd,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, f"{procedure}: {p.stdout}{p.stderr}")

    def test_each_kind_of_needs_human_is_settled_as_the_runbook_says(self):
        w = self.world("settle")
        w.seed(30, modern_share=0.2)
        lp, dp = w.legacy_prefix, w.dest_prefix
        s3 = w.s3

        def legacy(name, body, **extra):
            s3.put_object(Bucket=w.legacy_bucket, Key=lp + name, Body=body, ContentType="image/png", **extra)
            return w.insert_row(lp + name)

        ids = {
            "legacy-wins.png": legacy("legacy-wins.png", b"legacy A"),
            "dest-wins.png": legacy("dest-wins.png", b"legacy B"),
            "found.png": w.insert_row(lp + "found.png"),
            "lost.png": w.insert_row(lp + "lost.png"),
            "frozen.png": legacy("frozen.png", b"archived", StorageClass="GLACIER"),
        }
        w.put(w.dest_bucket, dp + "legacy-wins.png", b"stale leftover")
        w.put(w.dest_bucket, dp + "dest-wins.png", b"newer, by the application")
        too_long = "l" * (1024 - len(lp) - 4) + ".png"  # fits under the legacy prefix, not under the longer one
        ids[too_long] = legacy(too_long, b"too long")
        sse_key = hashlib.sha256(w.tag.encode()).hexdigest()[:32]
        ids["sse.png"] = legacy("sse.png", b"customer keyed", SSECustomerAlgorithm="AES256", SSECustomerKey=sse_key)

        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])
        items = {i["key"][len(lp):]: i for i in report["needs_human"]["items"]}
        kinds = {name: i["kind"] for name, i in items.items()}
        # The gateway answers a copy of an SSE-C object 501 (AWS: 400, reported as sse_c): a failure here.
        self.assertEqual(kinds, {"legacy-wins.png": "conflict", "dest-wins.png": "conflict",
                                 too_long: "key_too_long", "found.png": "dangling_row", "lost.png": "dangling_row",
                                 "frozen.png": "archived", "sse.png": "failure"}, report["needs_human"])

        procedure = {"legacy-wins.png": "conflict-legacy-wins", "dest-wins.png": "conflict-destination-wins",
                     too_long: "key-too-long", "found.png": "dangling-found", "lost.png": "dangling-lost",
                     "frozen.png": "archived-restored", "sse.png": "sse-c"}
        with tempfile.TemporaryDirectory() as cwd:
            with open(os.path.join(cwd, "recovered.png"), "wb") as f:
                f.write(b"from the backup")
            for name, item in items.items():
                with self.subTest(name):
                    self.settle(w, procedure[name], cwd, KEY=item["key"], DEST_KEY=item["dest_key"],
                                SSE_C_KEY=sse_key)

        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["needs_human"]["count"], 0)
        rc, audit, err = w.run("verify")
        self.assertEqual(rc, 0, err[-3000:])
        a = audit["counts"]
        self.assertEqual((a["rows_legacy"], a["rows_missing_object"], a["legacy_objects_left"]), (0, 0, 0), a)

        rows = w.rows()
        new_key = dp + hashlib.sha256((lp + too_long).encode()).hexdigest()[:40] + ".png"
        want = {"legacy-wins.png": dp + "legacy-wins.png", "dest-wins.png": dp + "dest-wins.png",
                too_long: new_key, "found.png": dp + "found.png", "lost.png": None,
                "frozen.png": dp + "frozen.png", "sse.png": dp + "sse.png"}
        self.assertEqual({name: rows[rid] for name, rid in ids.items()}, want)

        def body(key):
            return s3.get_object(Bucket=w.dest_bucket, Key=key)["Body"].read()
        self.assertEqual(body(dp + "legacy-wins.png"), b"legacy A")
        self.assertEqual(body(dp + "dest-wins.png"), b"newer, by the application")
        self.assertEqual(body(new_key), b"too long")
        self.assertEqual(body(dp + "found.png"), b"from the backup")
        self.assertEqual(body(dp + "sse.png"), b"customer keyed")
        self.assertEqual([k for k in w.objects(w.legacy_bucket) if k.startswith(lp)], [])

    def test_failures_and_refused_deletes_are_settled_by_a_rerun(self):
        w = self.world("rerun")
        w.seed(6, modern_share=0)
        before = w.snapshot()

        def through(fault, *extra):
            proxy = FaultProxy("http", s3_upstream(), "--fault", fault, "--rate", "1", *extra)
            self.addCleanup(proxy.proc.kill)
            rc, report, err = w.run("migrate", env=dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}"))
            proxy.stop()
            return rc, report, err

        # Every copy fails after its retries (a store failing one operation): failure items, nothing moved.
        rc, report, err = through("copy_error")
        self.assertEqual(rc, 1, err[-3000:])
        self.assertEqual({i["kind"] for i in report["needs_human"]["items"]}, {"failure"})
        self.assertEqual(report["needs_human"]["count"], 6)
        self.assertEqual(w.snapshot(), before)
        # Every delete refused (an object lock, a policy), after the preflight's own probe passed: the
        # rows move, the legacy objects stay, each a delete_failed item.
        preflight = report["preflight"]["requests"]
        rc, report, err = through("delete_denied", "--after", str(preflight))
        self.assertEqual(rc, 1, err[-3000:])
        self.assertEqual({i["kind"] for i in report["needs_human"]["items"]}, {"delete_failed"})
        self.assertEqual(report["counts"]["rows_rewritten"], 6)
        # The runbook: once the cause is gone, the same command again.
        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["legacy_objects_deleted"], 6)
        assert_state(self, w.snapshot(), w.expected_after(before))
        rc, audit, err = w.run("verify")
        self.assertEqual(rc, 0, err[-3000:])


if __name__ == "__main__":
    unittest.main()
