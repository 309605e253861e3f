"""Bad input: each case is refused before anything changes, with exit 2 and
one clear error line, against the real local services."""
import json
import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import ASSETMV, World, bucket_policy, make_role, s3_user  # noqa: E402


def error_lines(stderr):
    """The error-level records of a JSON log (anything else on stderr is a bug too)."""
    out = []
    for line in stderr.splitlines():
        rec = json.loads(line)  # every line is JSON: --log-format json
        if rec["level"] == "error":
            out.append(rec["msg"])
    return out


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = World("bad")
        cls.w.make_mixed(200)
        cls.before = cls.w.snapshot()

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def refused(self, *argv, expect, env=None, args=None, code=2):
        """Runs migrate with the world's arguments (or `args`) plus argv;
        asserts exit `code` (2: permanent; 4: a service unreachable at the
        start), one error line containing `expect`, nothing changed."""
        w = self.w
        base = w.args() if args is None else [*args, "--log-format", "json"]
        p = subprocess.run([ASSETMV, "migrate", *base, "--progress", "never", *argv], capture_output=True,
                           text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, code, p.stderr[-2000:])
        errors = error_lines(p.stderr)
        self.assertEqual(len(errors), 1, p.stderr[-2000:])
        self.assertIn(expect.lower(), errors[0].lower())
        self.assertNotIn("\n", errors[0])
        self.assertEqual(w.snapshot(), self.before, "a refused run changed something")
        print(f"\n  exit {code}: {errors[0]}", file=sys.stderr, end="")
        return errors[0]

    def locations(self, source, dest):
        return ["--source", source, "--dest", dest, "--table", self.w.table]

    def test_malformed_s3_uris(self):
        good = f"s3://{self.w.dest_bucket}/{self.w.dest_prefix}"
        for bad in ["legacy-s3/image/", "s3://", "s3:///image/", "https://legacy-s3/image/", "s3://Bad_Bucket!/x/",
                    "s3://ab/x/", "s3://legacy-s3/image/\x01/"]:
            with self.subTest(uri=bad):
                self.refused(args=self.locations(bad, good), expect="s3://")

    def test_source_and_destination_overlap(self):
        w = self.w
        inner = f"s3://{w.legacy_bucket}/{w.legacy_prefix}sub/"
        outer = f"s3://{w.legacy_bucket}/{w.legacy_prefix}"
        self.refused(args=self.locations(outer, inner), expect="overlap")
        self.refused(args=self.locations(inner, outer), expect="overlap")
        self.refused(args=self.locations(outer, outer), expect="overlap")

    def test_missing_bucket(self):
        w = self.w
        self.refused(args=self.locations(f"s3://{w.legacy_bucket}/{w.legacy_prefix}",
                                         f"s3://no-such-{uuid.uuid4().hex[:12]}/avatar/"), expect="NoSuchBucket")

    def test_wrong_credentials(self):
        self.refused(env=dict(os.environ, AWS_SECRET_ACCESS_KEY="wrong" * 8), expect="SignatureDoesNotMatch")
        self.refused(env=dict(os.environ, AWS_ACCESS_KEY_ID="NOSUCHKEY"), expect="InvalidAccessKeyId")

    def test_access_denied_on_one_operation_found_by_preflight(self):
        """A user allowed everything but one action is stopped before any change."""
        w = self.w
        uid = "bad-" + uuid.uuid4().hex[:8]
        env = s3_user(uid)
        # Private buckets of this test: a bucket policy applies to the whole bucket.
        legacy, dest = "bl-" + uuid.uuid4().hex[:12], "bd-" + uuid.uuid4().hex[:12]
        for b in (legacy, dest):
            w.s3.create_bucket(Bucket=b)
        w.s3.put_object(Bucket=legacy, Key="image/a.png", Body=b"png")
        args = ["--source", f"s3://{legacy}/image/", "--dest", f"s3://{dest}/avatar/", "--table", w.table]
        for missing, expect in [("s3:DeleteObject", "no permission to delete"),
                                ("s3:PutObject", "no permission to write"),
                                ("s3:GetObject", "no permission to read"),
                                ("s3:GetObjectTagging", "no permission to read the tags")]:
            with self.subTest(missing=missing):
                for b, prefix in ((legacy, "image/"), (dest, "avatar/")):
                    w.s3.put_bucket_policy(Bucket=b, Policy=json.dumps(
                        bucket_policy(b, prefix, uid, exclude=missing,
                                      legacy=(b == legacy))))
                self.refused(args=args, env=env, expect=expect)
        self.assertEqual(sorted(o["Key"] for o in w.s3.list_objects_v2(Bucket=legacy).get("Contents", [])),
                         ["image/a.png"])
        self.assertEqual(w.s3.list_objects_v2(Bucket=dest).get("KeyCount"), 0, "the probe wrote an object")

    def test_unreachable_database(self):
        # Transient: exit 4, which a scheduler retries; a TLS setting that
        # cannot work (a server without TLS where verify-full requires it)
        # is permanent: exit 2, which it must not.
        self.refused(env=dict(os.environ, PGHOST="127.0.0.1", PGPORT="1"), expect="cannot connect to PostgreSQL",
                     code=4)
        self.refused(env=dict(os.environ, PGSSLMODE="verify-full", PGSSLROOTCERT="/nonexistent/root.crt"),
                     expect="SSL")

    def test_seed_refuses_a_store_not_on_this_machine(self):
        """seed --reset truncates the table and deletes both prefixes: aimed at
        anything but this machine it is refused, naming what it would change,
        unless the operator names exactly that."""
        w = self.w
        where = ["--source", f"s3://{w.legacy_bucket}/{w.legacy_prefix}",
                 "--dest", f"s3://{w.dest_bucket}/{w.dest_prefix}", "--table", w.table, "--log-format", "json"]
        env = dict(os.environ, AWS_ENDPOINT_URL="http://s3.example.invalid:57480")
        names = f"{w.table},{w.legacy_bucket},{w.dest_bucket}"
        for confirm in ([], ["--confirm-non-local", f"{w.table},{w.dest_bucket},{w.legacy_bucket}"]):
            p = subprocess.run([ASSETMV, "seed", "--count", "5", "--reset", *where, *confirm], capture_output=True,
                               text=True, env=env, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr[-2000:])
            (line,) = error_lines(p.stderr)
            self.assertIn(f"--confirm-non-local {names}", line)
            self.assertIn("s3.example.invalid", line)
            self.assertIn("after emptying the table and deleting both prefixes", line)
        self.assertEqual(w.snapshot(), self.before, "a refused seed changed something")
        # Named exactly, it gets past the guard (and then cannot resolve the host).
        p = subprocess.run([ASSETMV, "seed", "--count", "5", *where, "--confirm-non-local", names],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertNotIn("seed.refused", p.stderr)
        self.assertNotEqual(p.returncode, 0)
        print(f"\n  exit 2: {line}", file=sys.stderr, end="")

    def test_unreachable_store(self):
        self.refused(env=dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:1"), expect="127.0.0.1:1", code=4)

    def test_missing_table_or_column(self):
        w = self.w
        where = self.locations(f"s3://{w.legacy_bucket}/{w.legacy_prefix}", f"s3://{w.dest_bucket}/{w.dest_prefix}")
        self.refused(args=where[:-2] + ["--table", "no_such_table"], expect="no_such_table")
        self.refused(args=where[:-2] + ["--table", 'avatars"; DROP TABLE x; --'], expect="")
        self.refused("--path-column", "no_such_column", expect="no_such_column")
        self.refused("--id-column", "path", expect="different columns")

    def test_metrics_address_in_use_or_unusable(self):
        import socket
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            self.refused("--metrics-addr", str(port), expect="address already in use")
        self.refused("--metrics-addr", "192.0.2.1:9464", expect="cannot listen")  # not this machine's address
        self.refused("--metrics-addr", "99999", expect="port must be a number")

    def test_malformed_control_file(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".ctl") as f:
            f.write("max-rate fast\n")
            f.flush()
            self.refused("--control-file", f.name, expect="max-rate")

    def test_replica_lag_check_that_cannot_work(self):
        role, drop = make_role(self.w, "SELECT, UPDATE (path)")
        self.addCleanup(drop)
        env = dict(os.environ, PGUSER=role)
        self.refused("--max-replica-lag", "5s", expect="GRANT pg_monitor TO " + role, env=env)
        port = os.environ.get("PGPORT", "55432")
        # A replica that cannot be reached at the start may come back: exit 4, not 2.
        self.refused("--max-replica-lag", "5s", "--replica-db", "host=127.0.0.1 port=1 connect_timeout=2",
                     expect="--replica-db", code=4)
        self.refused("--max-replica-lag", "5s", "--replica-db", f"host=127.0.0.1 port={port}",
                     expect="not a replica")

    def test_identifiers_needing_quotes_work(self):
        """A schema, table and columns whose names need quoting are found and updated."""
        w = World("quoted")
        self.addCleanup(w.close)
        w.seed(200, modern_share=0.2)
        before = w.snapshot()
        schema = f"Odd Schema {uuid.uuid4().hex[:6]}"
        with w.db.cursor() as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
            c.execute(f'ALTER TABLE "{w.table}" SET SCHEMA "{schema}"')
            c.execute(f'ALTER TABLE "{schema}"."{w.table}" RENAME TO "Avatar ""Pics"""')
            c.execute(f'ALTER TABLE "{schema}"."Avatar ""Pics""" RENAME COLUMN path TO "Path Col"')
            c.execute(f'ALTER TABLE "{schema}"."Avatar ""Pics""" RENAME COLUMN id TO "ID"')
        table_arg = '"' + schema + '"."Avatar ""Pics"""'
        argv = [ASSETMV, "migrate", "--source", f"s3://{w.legacy_bucket}/{w.legacy_prefix}",
                "--dest", f"s3://{w.dest_bucket}/{w.dest_prefix}", "--table", table_arg, "--id-column", "ID",
                "--path-column", "Path Col", "--progress", "never", "--log-format", "json"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        with w.db.cursor() as c:  # put it back where World looks
            c.execute(f'ALTER TABLE "{schema}"."Avatar ""Pics""" RENAME COLUMN "Path Col" TO path')
            c.execute(f'ALTER TABLE "{schema}"."Avatar ""Pics""" RENAME COLUMN "ID" TO id')
            c.execute(f'ALTER TABLE "{schema}"."Avatar ""Pics""" RENAME TO "{w.table}"')
            c.execute(f'ALTER TABLE "{schema}"."{w.table}" SET SCHEMA public')
            c.execute(f'DROP SCHEMA "{schema}"')
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertEqual(w.snapshot(), w.expected_after(before))


if __name__ == "__main__":
    unittest.main()
