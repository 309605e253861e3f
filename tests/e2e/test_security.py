"""Security: least privilege on both sides, TLS verification, and secrets
that never reach an output, against the real local services."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_faults import s3_upstream, tls_front  # noqa: E402
from world import bucket_policy, make_role, s3_user, World  # noqa: E402


class SecurityTest(unittest.TestCase):
    def world(self, name, **kw):
        w = World(name, **kw)
        self.addCleanup(w.close)
        return w

    def private_world(self, name):
        """A world in two buckets of its own, so a bucket policy can restrict them."""
        legacy, dest = "ll-" + uuid.uuid4().hex[:12], "pd-" + uuid.uuid4().hex[:12]
        w = self.world(name, legacy_bucket=legacy, dest_bucket=dest)
        for b in (legacy, dest):
            w.s3.create_bucket(Bucket=b)
        return w

    def test_least_privilege_s3_bucket_policy_user_and_pg_role(self):
        """The whole migration as an S3 user granted only docs/privileges.md's
        actions (by bucket policy on the gateway) and a PostgreSQL role with
        only its grants."""
        w = self.private_world("leastpriv")
        w.make_mixed(500)
        before = w.snapshot()
        uid = "lp-" + uuid.uuid4().hex[:8]
        env = s3_user(uid)
        for b, prefix, legacy in ((w.legacy_bucket, w.legacy_prefix, True), (w.dest_bucket, w.dest_prefix, False)):
            w.s3.put_bucket_policy(Bucket=b, Policy=json.dumps(bucket_policy(b, prefix, uid, legacy=legacy)))
        role, drop = make_role(w, "SELECT, UPDATE (path)")
        self.addCleanup(drop)
        env["PGUSER"] = role
        # The user can do nothing outside its prefixes.
        outside = subprocess.run(w.command("verify")[:1] + ["verify", "--source", f"s3://{w.legacy_bucket}/other/",
                                                             "--dest", f"s3://{w.dest_bucket}/{w.dest_prefix}",
                                                             "--table", w.table, "--log-format", "json"],
                                 capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(outside.returncode, 2, outside.stderr[-2000:])
        self.assertIn("AccessDenied", outside.stderr)
        rc, report, err = w.run("migrate", env=env)
        self.assertEqual(rc, 1, err[-3000:])  # the mixed world's conflicts and dangling rows
        self.assertEqual(w.snapshot(), w.expected_after(before))
        rc, _, err = w.run("verify", env=env)
        self.assertEqual(rc, 1, err[-2000:])

    def test_secrets_never_in_outputs_or_process_title(self):
        w = self.world("secret")
        w.make_mixed(300)
        pg_password = "pgpw-" + uuid.uuid4().hex
        role, drop = make_role(w, "SELECT, UPDATE (path)", password=pg_password)
        self.addCleanup(drop)
        env = dict(os.environ)
        aws_secret = env["AWS_SECRET_ACCESS_KEY"]
        dsn = (f"postgresql://{role}:{pg_password}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/"
               f"{w.db.get_dsn_parameters()['dbname']}")
        report_file = os.path.join(tempfile.mkdtemp(), "report.json")
        outputs = []
        # A real run with debug logging, its process title sampled while it works.
        p = subprocess.Popen(w.command("migrate", "--db", dsn, "-v", "--report", report_file), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        titles, core = [], ["?"]
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                    titles.append(f.read().decode(errors="replace"))
                with open(f"/proc/{p.pid}/limits") as f:
                    core = [line for line in f if line.startswith("Max core file size")]
            except OSError:
                break
            time.sleep(0.05)
        out, err = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 1, err[-2000:])
        # Between exec and main the kernel shows argv as typed (no program can
        # help that; docs/reliability.md says to prefer PGPASSWORD or .pgpass):
        # from the first masked title on, no title may show the password.
        masked = [i for i, t in enumerate(titles) if f"{role}:*****" in t]
        self.assertTrue(masked, f"no masked process title among {len(titles)}")
        titles = titles[masked[0]:]
        self.assertEqual(core[0].split()[4], "0", f"core dumps are on: {core[0]}")
        outputs += [("stdout", out), ("stderr", err), ("title", "\n".join(titles))]
        with open(report_file) as f:
            outputs.append(("report", f.read()))
        # Failing runs: wrong AWS secret, and a database password in a conninfo.
        wrong = "wrong-" + uuid.uuid4().hex
        # (a wrong secret is refused for good, exit 2; a database not listening, exit 4)
        for extra_env, argv, secret, code in (
                ({"AWS_SECRET_ACCESS_KEY": wrong}, [], wrong, 2),
                ({}, ["--db", f"host=127.0.0.1 port=1 password={pg_password}"], None, 4)):
            r = subprocess.run(w.command("migrate", "-v", *argv), env=dict(env, **extra_env), capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(r.returncode, code, r.stderr[-2000:])
            outputs += [("failing stdout", r.stdout), ("failing stderr", r.stderr)]
            if secret:
                self.assertNotIn(secret, r.stdout + r.stderr)
        for name, text in outputs:
            for secret in (aws_secret, pg_password):
                self.assertNotIn(secret, text, f"a secret in {name}")
        print(f"\nsecrets: {sum(len(t) for _, t in outputs)} bytes of output from 3 runs and "
              f"{len(titles)} process titles searched, no secret found", file=sys.stderr)


class TlsTest(unittest.TestCase):
    """assetmv through a TLS front (faultproxy.py with a certificate made here)."""

    @classmethod
    def setUpClass(cls):
        cls.proxy, cls.cert = tls_front(s3_upstream())

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def run_with(self, w, endpoint, *extra):
        return w.run("migrate", *extra, env=dict(os.environ, AWS_ENDPOINT_URL=endpoint), timeout=300)

    def setUp(self):
        self.w = World("tls")
        self.addCleanup(self.w.close)
        self.w.seed(100, modern_share=0.2)
        self.before = self.w.snapshot()
        self.https = f"https://127.0.0.1:{self.proxy.port}"

    def refused(self, rc, report, err, expect):
        self.assertEqual(rc, 2, err[-2000:])
        self.assertIn(expect, report["error"])
        self.assertEqual(self.w.snapshot(), self.before)
        print(f"\n  exit 2: {report['error']}", file=sys.stderr, end="")

    def test_certificate_verified_by_default(self):
        rc, report, err = self.run_with(self.w, self.https)
        self.refused(rc, report, err, "certificate")

    def test_ca_file_trusts_the_endpoint(self):
        rc, _, err = self.run_with(self.w, self.https, "--ca-file", self.cert)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual(self.w.snapshot(), self.w.expected_after(self.before))

    def test_insecure_flag_works_and_is_loud(self):
        rc, _, err = self.run_with(self.w, self.https, "--insecure-tls")
        self.assertEqual(rc, 0, err[-2000:])
        warnings = [json.loads(line) for line in err.splitlines() if '"tls.insecure"' in line]
        self.assertEqual(warnings[0]["level"], "warn")
        self.assertEqual(self.w.snapshot(), self.w.expected_after(self.before))

    def test_plain_http_to_a_tls_port(self):
        rc, report, err = self.run_with(self.w, f"http://127.0.0.1:{self.proxy.port}")
        self.refused(rc, report, err, "ListObjectsV2")

    def test_https_to_a_plain_port(self):
        rc, report, err = self.run_with(self.w, "https://" + s3_upstream())
        self.refused(rc, report, err, "ListObjectsV2")


if __name__ == "__main__":
    unittest.main()
