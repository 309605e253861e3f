"""Credentials as the users of this tool get them, against the real gateway:
a role assumed and a web identity exchanged at the gateway's own STS (Ceph
RGW implements AssumeRole and AssumeRoleWithWebIdentity), a
credential_process, and container credentials and IMDSv2 served by
credserver.py by AWS's published protocols with keys the gateway accepts;
each broken source is one line and exit 2; and a long migration whose keys
live 60 s and are then removed from the gateway, refreshed under load.

Each run gets no static keys: AWS_ACCESS_KEY_ID and its kin are removed
from its environment, and HOME points at a directory of the test's own. Runs
that use STS talk to the cluster's second gateway, the one with STS
(ASSETMV_STS_ENDPOINT_URL, scripts/rgw.sh), for S3 and STS alike.
"""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identity import STS, CredServer, OidcIssuer, gateway_user_role  # noqa: E402
from world import Actors, World, assert_state  # noqa: E402

SMALL = 300        # a mixed world's seed for the sources' own tests
LOAD = int(os.environ.get("ASSETMV_EXPIRY_OBJECTS", "20000"))  # legacy objects of the expiry test
LIFETIME = 60      # seconds each key of the expiry test lives before the gateway drops it


class CredentialsTest(unittest.TestCase):
    def setUp(self):
        if "AWS_ENDPOINT_URL" not in os.environ or not STS:
            self.skipTest("no gateway with STS (run scripts/test.sh)")
        self.home = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.home, ".aws"))

    def world(self, name):
        w = World(name)
        self.addCleanup(w.close)
        return w

    def env(self, **extra):
        """The run's environment: the gateway with STS, no static keys, no
        profile of the machine's, no instance metadata unless asked, plus `extra`."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
        env.update({"HOME": self.home, "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": STS})
        env.update(extra)
        return env

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.home, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def migrate_small(self, name, env, source_words):
        """A mixed world migrated with `env`: the exact end state, and the
        report's credentials naming the source (`source_words` in it)."""
        w = self.world(name)
        w.make_mixed(SMALL)
        before = w.snapshot()
        rc, report, err = w.run("migrate", env=env)
        self.assertEqual(rc, 1, err[-3000:])  # its conflicts and dangling rows need a human
        assert_state(self, w.snapshot(), w.expected_after(before))
        self.assertEqual(report["counts"]["failures"], 0)
        for side in ("source", "dest"):
            self.assertIn(source_words, report["credentials"][side]["from"])
            self.assertTrue(report["credentials"][side]["refreshable"])
        start = [json.loads(line) for line in err.splitlines() if '"migrate.start"' in line]
        self.assertIn(source_words, start[0]["credentials"])
        self.assertNotIn(os.environ["AWS_SECRET_ACCESS_KEY"], err + json.dumps(report))
        return report, err

    # ---- each source, as its users configure it ---------------------------------

    def test_a_role_profile_is_assumed_at_the_gateways_sts(self):
        role = gateway_user_role()
        self.write(".aws/credentials", f"[base]\naws_access_key_id = {os.environ['AWS_ACCESS_KEY_ID']}\n"
                                       f"aws_secret_access_key = {os.environ['AWS_SECRET_ACCESS_KEY']}\n")
        self.write(".aws/config", f"[profile mover]\nrole_arn = {role}\nsource_profile = base\n"
                                  "role_session_name = assetmv-e2e\nduration_seconds = 900\n")
        report, _ = self.migrate_small("role", self.env(AWS_PROFILE="mover"), f"role {role} of profile 'mover'")
        self.assertIn("assumed with profile 'base'", report["credentials"]["source"]["from"])

    def test_a_web_identity_token_is_exchanged_at_the_gateways_sts(self):
        issuer = OidcIssuer()
        self.addCleanup(issuer.close)
        token = self.write("token", issuer.token())
        # What EKS injects for IRSA.
        env = self.env(AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN=issuer.role_arn,
                       AWS_ROLE_SESSION_NAME="assetmv-irsa")
        self.migrate_small("irsa", env, f"web identity from AWS_WEB_IDENTITY_TOKEN_FILE (role {issuer.role_arn}")

    def test_a_credential_process_hands_over_gateway_sts_keys(self):
        role = gateway_user_role()
        script = self.write("get-keys.py", f"""#!/usr/bin/python3
import json, boto3
c = boto3.client("sts", endpoint_url={STS!r}, region_name="us-east-1",
                 aws_access_key_id={os.environ['AWS_ACCESS_KEY_ID']!r},
                 aws_secret_access_key={os.environ['AWS_SECRET_ACCESS_KEY']!r}).assume_role(
    RoleArn={role!r}, RoleSessionName="assetmv-process", DurationSeconds=900)["Credentials"]
print(json.dumps({{"Version": 1, "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                  "SessionToken": c["SessionToken"], "Expiration": c["Expiration"].isoformat()}}))
""", mode=0o700)
        self.write(".aws/config", f"[default]\ncredential_process = {script} --profile ignored\n")
        self.migrate_small("process", self.env(), "credential_process of profile 'default'")

    def test_container_credentials_with_a_rotated_token_file(self):
        server = CredServer("container", "--keys", "sts", "--role-arn", gateway_user_role(), "--token",
                            "pod-identity-token")
        self.addCleanup(server.stop)
        token = self.write("eks-pod-identity-token", "pod-identity-token\n")
        # What EKS Pod Identity injects (its agent listens on 169.254.170.23; the loopback stands in).
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=server.url + "/v1/credentials",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token)
        self.migrate_small("pod", env, "container credentials from AWS_CONTAINER_CREDENTIALS_FULL_URI")
        stats = server.stop()
        self.assertGreaterEqual(stats["handed_out"], 1)
        self.assertEqual(stats["refused"], 0)

    def test_instance_metadata_v2_gives_the_instance_roles_keys(self):
        server = CredServer("imds", "--keys", "sts", "--role-arn", gateway_user_role())
        self.addCleanup(server.stop)
        env = self.env(AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=server.url)
        self.migrate_small("imds", env, f"EC2 instance metadata (IMDSv2 at {server.url})")
        self.assertEqual(server.stop()["refused"], 0)  # every GET carried its session token

    # ---- a broken source is one line, exit 2, and nothing changed --------------

    def test_each_broken_source_is_one_line_naming_it_and_exit_2(self):
        w = self.world("broken")
        w.make_mixed(50)
        before = w.snapshot()
        hang = CredServer("imds", "--hang")
        self.addCleanup(hang.stop)
        failing = self.write("failing.sh", "#!/bin/sh\necho 'Error: the SSO session has expired' >&2\nexit 1\n",
                             mode=0o700)
        self.write(".aws/config", f"[profile proc]\ncredential_process = {failing}\n"
                                  "[profile sso]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = R\n"
                                  "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n")
        cases = [
            ("an unreadable token file",
             self.env(AWS_WEB_IDENTITY_TOKEN_FILE=os.path.join(self.home, "nope"), AWS_ROLE_ARN="arn:aws:iam:::role/x"),
             "cannot read the web identity token file"),
            ("a process that exits 1", self.env(AWS_PROFILE="proc"),
             f"credential_process of profile 'proc' in {self.home}/.aws/config ({failing}): exited with status 1: "
             "Error: the SSO session has expired"),
            ("an IMDS that times out",
             self.env(AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=hang.url),
             f"EC2 instance metadata (IMDSv2 at {hang.url}): the session token (PUT /latest/api/token): no answer "
             "within 1000 ms"),
            ("an SSO profile", self.env(AWS_PROFILE="sso"), "aws configure export-credentials --profile sso"),
        ]
        for what, env, says in cases:
            with self.subTest(what):
                t0 = time.time()
                rc, report, err = w.run("migrate", env=env, timeout=60)
                self.assertEqual(rc, 2, err[-2000:])
                self.assertLess(time.time() - t0, 15)
                errors = [json.loads(line) for line in err.splitlines() if '"level":"error"' in line]
                self.assertEqual(len(errors), 1, err[-2000:])
                self.assertIn(says, errors[0]["msg"])
                self.assertNotIn("\n", errors[0]["msg"])
        assert_state(self, w.snapshot(), before)

    # ---- keys that expire under load --------------------------------------------

    def test_keys_living_60s_and_then_removed_are_refreshed_under_load(self):
        """≥ 20,000 objects moved with keys that the gateway drops 60 s after
        handing them out (one of them 15 s after, unannounced), beside the
        live application and the invariant probe: at least three refreshes,
        no failed item, no probe violation, the exact end state, and no
        stretch of more than 2 s in which the copies run below half their
        rate."""
        w = self.world("expiry")
        w.seed(LOAD + LOAD // 4, modern_share=0.2)  # LOAD legacy objects and their rows
        before = w.snapshot()
        legacy = sum(1 for k in before["legacy"] if k.startswith(w.legacy_prefix))
        self.assertGreaterEqual(legacy, LOAD)
        server = CredServer("container", "--keys", "rotate", "--lifetime", str(LIFETIME), "--revoke-early", "3",
                            "--token", "ecs-task-token")
        self.addCleanup(server.stop)
        port = free_port()
        # A capped rate makes the run last long enough for three refreshes
        # and gives the copies a steady rate to hold through each of them.
        rate = int(os.environ.get("ASSETMV_EXPIRY_RATE", "170"))
        # The gateway's own user keys (no session token): either gateway takes them.
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=server.url + "/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="ecs-task-token",
                       AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"])
        actors = Actors(w, before)
        self.addCleanup(actors.close)
        sampler = MetricsSampler(f"http://127.0.0.1:{port}/metrics")
        sampler.start()
        rc, report, err = w.run("migrate", "--max-rate", str(rate), "--metrics-addr", f"127.0.0.1:{port}",
                                "--report", os.path.join(self.home, "report.json"), env=env, timeout=900)
        sampler.stop()
        time.sleep(1)
        results = actors.stop()
        stats = server.stop()
        app, probe = results["live_app"], results["probe"]
        creds = report["credentials"]["source"] if report else {}
        print(f"\nexpiry: {legacy} legacy objects, exit {rc}, {report and report['elapsed_seconds']:.0f} s, "
              f"{creds.get('refreshes')} refreshes, {report and report['requests']['total']['resigned']} requests "
              f"signed again; gateway: {stats['handed_out']} keys handed out, {stats['revoked']} removed "
              f"({stats['revoked_early']} early); probe {probe['checks']} checks, {len(probe['violations'])} "
              f"violations; {Actors.describe_app(app)}; {sampler.summary()}", file=sys.stderr)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["failures"], 0)
        self.assertEqual(report["needs_human"]["count"], 0)
        self.assertEqual(probe["violations"], [], "a row pointed at a missing object")
        self.assertGreaterEqual(creds["refreshes"], 3)
        self.assertGreaterEqual(stats["revoked"], 3)  # keys the run had used were removed while it ran
        self.assertEqual(stats["revoked_early"], 1)
        got = w.snapshot()
        assert_state(self, got, w.expected_with_app(before, app, got))
        self.assertEqual(report["counts"]["objects_copied"], legacy)
        # The copies' rate around each refresh.
        slow = sampler.longest_slow_stretch()
        self.assertLessEqual(slow, 2.0, f"the copies ran below half their rate for {slow:.1f} s")
        self.assertGreaterEqual(sampler.refresh_moments(), 3)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MetricsSampler(threading.Thread):
    """Scrapes the run's /metrics every 0.25 s: copies done and refreshes, on
    the sampler's own clock."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.samples, self.done = url, [], threading.Event()

    def run(self):
        while not self.done.wait(0.25):
            try:
                text = urllib.request.urlopen(self.url, timeout=1).read().decode()
            except OSError:
                continue
            values = {}
            for line in text.splitlines():
                if line.startswith('assetmv_objects_total{outcome="copied"}'):
                    values["copied"] = float(line.split()[-1])
                elif line.startswith('assetmv_credentials_refreshes_total{side="source",outcome="ok"}'):
                    values["refreshes"] = float(line.split()[-1])
            if "copied" in values:
                self.samples.append((time.time(), values["copied"], values.get("refreshes", 0)))

    def stop(self):
        self.done.set()
        self.join(timeout=5)

    def intervals(self):
        """(start, seconds, copies per second) between successive updates of
        the copy count (the page is rendered about once a second, from the
        loop: a loop that stops, stops it too), over the copying part of the
        run: not the listing before the first copies, nor the tail."""
        changes = []
        for t, c, _ in self.samples:
            if not changes or c != changes[-1][1]:
                changes.append((t, c))
        if len(changes) < 2:
            return []
        total = changes[-1][1]
        return [(t0, t1 - t0, (c1 - c0) / (t1 - t0)) for (t0, c0), (t1, c1) in zip(changes, changes[1:])
                if 0.02 * total <= c0 and c1 <= 0.98 * total]

    def refresh_times(self):
        """When the scrapes first showed each refresh."""
        out, last = [], None
        for t, _, refreshes in self.samples:
            if last is not None and refreshes > last:
                out.append(t)
            last = refreshes
        return out

    def longest_slow_stretch(self, around=5.0):
        """The longest time the copies ran below half their median rate
        within `around` seconds of a refresh (elsewhere a neighbouring test's
        load on the gateway, not the refresh, would be measured)."""
        iv = self.intervals()
        if not iv:
            return float("inf")
        steady = sorted(r for _, _, r in iv)[len(iv) // 2]
        refreshes = self.refresh_times()
        longest = run = 0.0
        for start, seconds, rate in iv:
            near = any(t - around <= start + seconds and start <= t + around for t in refreshes)
            run = run + seconds if near and rate < steady / 2 else 0.0
            longest = max(longest, run)
        return longest

    def refresh_moments(self):
        return len(self.refresh_times())

    def summary(self):
        iv = self.intervals()
        if not iv:
            return "no samples"
        rates = sorted(r for _, _, r in iv)
        return (f"copies {rates[len(rates) // 2]:.0f}/s median over {len(iv)} intervals, lowest {rates[0]:.0f}/s, "
                f"longest gap between updates {max(s for _, s, _ in iv):.2f} s, longest stretch below half "
                f"within 5 s of a refresh {self.longest_slow_stretch():.1f} s ({self.refresh_moments()} refreshes "
                f"seen)")


if __name__ == "__main__":
    unittest.main()
