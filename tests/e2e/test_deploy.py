"""What the package and the deployment examples promise, checked as far as a
machine without Kubernetes or AWS allows: the man page and the bash
completion carry every option the binary has; the Kubernetes and AWS Batch
manifests parse, hold the fields docs/scaling.md promises, agree with each
other (N shards, the metrics port, the Secret's keys), and their command
lines are accepted by the real binary.

Environment: ASSETMV_BIN, and ASSETMV_MAN_PAGE / ASSETMV_COMPLETION (the
build's by default; the installed ones when .ci/run tests the package)."""
import glob
import gzip
import json
import os
import re
import shlex
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETMV = os.environ.get("ASSETMV_BIN", os.path.join(ROOT, "build", "src", "assetmv"))
MANUAL = os.path.join(os.path.dirname(os.path.dirname(ASSETMV)), "packaging")
MAN_PAGE = os.environ.get("ASSETMV_MAN_PAGE", os.path.join(MANUAL, "assetmv.1.gz"))
COMPLETION = os.environ.get("ASSETMV_COMPLETION", os.path.join(MANUAL, "assetmv.bash"))
K8S = os.path.join(ROOT, "deploy", "kubernetes")
BATCH = os.path.join(ROOT, "deploy", "aws-batch")


def subcommands():
    out = subprocess.run([ASSETMV, "--help"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^  (\w+) ", out.split("Subcommands:")[1], re.M)


def options(sub):
    out = subprocess.run([ASSETMV, sub, "--help"], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"(?:^  |,)(--[a-z0-9-]+)", out, re.M)))


def complete(*words):
    """What bash offers after `words` (the last one being completed)."""
    script = (f"source {shlex.quote(COMPLETION)}; COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; _assetmv; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.split()


def flag(args, name):
    """The value of --name=VALUE in a command line, or None."""
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def accepted_by_the_binary(args, env):
    """Runs the command line against nowhere: it must get past option parsing and
    the shard's index (exit 2 from the preflight, which cannot reach a database on
    port 1), never a usage error. The metrics port and linger are made 0 so the
    check needs no free port and no wait."""
    args = [re.sub(r"^--metrics-addr=.*:", "--metrics-addr=127.0.0.1:", a) for a in args]
    args = ["--metrics-linger=0" if a.startswith("--metrics-linger=") else a for a in args]
    with tempfile.TemporaryDirectory() as tmp:
        args = [a.replace("=/tmp/", f"={tmp}/") for a in args]
        env = dict(PATH=os.environ["PATH"], HOME=tmp, AWS_ENDPOINT_URL="http://127.0.0.1:1",
                   AWS_ACCESS_KEY_ID="placeholder", AWS_SECRET_ACCESS_KEY="placeholder",
                   PGHOST="127.0.0.1", PGPORT="1", **env)
        p = subprocess.run([ASSETMV, *args], capture_output=True, text=True, env=env, timeout=60)
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None, p.stderr


def quantity(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "m": 0.001}
    for u, f in units.items():
        if str(q).endswith(u):
            return float(str(q)[:-len(u)]) * f
    return float(q)


class ManualTest(unittest.TestCase):
    def test_the_man_page_documents_every_option_and_the_exit_codes(self):
        page = gzip.open(MAN_PAGE, "rt").read().replace("\\-", "-")
        self.assertIn(".TH ASSETMV", page.upper())
        for sub in subcommands():
            self.assertIn(f'.SS "assetmv {sub}"', page)
            for opt in options(sub):
                self.assertIn(opt, page, f"{sub} {opt} missing from the man page")
        for section in ("EXIT STATUS", "ENVIRONMENT", "JOB_COMPLETION_INDEX"):
            self.assertIn(section, page)
        version = subprocess.run([ASSETMV, "--version"], capture_output=True, text=True, check=True).stdout
        self.assertRegex(version.strip(), r"^assetmv \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)$")

    def test_bash_completes_subcommands_options_and_their_choices(self):
        self.assertEqual(complete("assetmv", "mi"), ["migrate"])
        self.assertEqual(sorted(complete("assetmv", "migrate", "--shar")), ["--shard", "--shards"])
        self.assertEqual(sorted(complete("assetmv", "migrate", "--log-format", "")), ["auto", "json", "text"])
        self.assertEqual(complete("assetmv", "verify", "--shar"), [], "verify audits the whole: no shards")
        for sub in subcommands():
            self.assertEqual(sorted(set(complete("assetmv", sub, "--")) & set(options(sub))), options(sub), sub)


class ManifestTest(unittest.TestCase):
    def load(self, name):
        with open(os.path.join(K8S, name)) as f:
            return yaml.safe_load(f)

    def test_the_indexed_job_runs_n_shards_restarts_one_by_its_index_and_exposes_metrics(self):
        job = self.load("job.yaml")
        self.assertEqual((job["apiVersion"], job["kind"]), ("batch/v1", "Job"))
        spec = job["spec"]
        pod = spec["template"]["spec"]
        (c,) = pod["containers"]
        args = c["args"]
        self.assertEqual(args[0], "migrate")
        n = int(flag(args, "--shards"))
        self.assertEqual(spec["completionMode"], "Indexed")
        self.assertEqual(spec["completions"], n, "one completion per shard")
        self.assertLessEqual(spec["parallelism"], n)
        self.assertGreaterEqual(spec["backoffLimitPerIndex"], 1, "a failed shard is retried by its index")
        self.assertEqual(pod["restartPolicy"], "Never")
        fail_now = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailIndex"]
        self.assertEqual(fail_now[0]["onExitCodes"]["values"], [1], "only 'needs a human' is final")

        # Credentials and settings come in as the standard AWS and libpq variables.
        secret, config = self.load("secret.yaml"), self.load("configmap.yaml")
        sources = {(next(iter(k for k in s if k.endswith("Ref"))), next(iter(s.values()))["name"]) for s in c["envFrom"]}
        self.assertEqual(sources, {("secretRef", secret["metadata"]["name"]),
                                   ("configMapRef", config["metadata"]["name"])})
        self.assertEqual(set(secret["stringData"]), {"PGPASSWORD"}, "no AWS keys: the pods have a role")
        # The role: the service account IRSA annotates (or Pod Identity associates), readable by the pod's user.
        account = self.load("serviceaccount.yaml")
        self.assertEqual(pod["serviceAccountName"], account["metadata"]["name"])
        self.assertRegex(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                         r"^arn:aws:iam::\d{12}:role/")
        self.assertEqual(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"])
        self.assertLessEqual({"AWS_REGION", "PGHOST", "PGUSER", "PGDATABASE", "PGSSLMODE"}, set(config["data"]))
        self.assertFalse(any("SECRET" in k or "PASSWORD" in k for k in config["data"]), "no secret in the ConfigMap")

        # The metrics port: the same in the flag, the container and the scrape annotation.
        port = int(flag(args, "--metrics-addr").rsplit(":", 1)[1])
        self.assertEqual(flag(args, "--metrics-addr").rsplit(":", 1)[0], "0.0.0.0", "reachable by the scraper")
        self.assertEqual([p["containerPort"] for p in c["ports"]], [port])
        self.assertEqual(spec["template"]["metadata"]["annotations"]["prometheus.io/port"], str(port))

        # Resources sized from the measured figures (docs/performance.md: ~27 MB flat).
        res = c["resources"]
        self.assertGreaterEqual(quantity(res["limits"]["memory"]), 2 * 27e6)
        self.assertGreater(quantity(res["requests"]["cpu"]), 0)
        self.assertLessEqual(quantity(res["requests"]["memory"]), quantity(res["limits"]["memory"]))

        # A read-only root needs a writable /tmp (the row spool); the control file is mounted.
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertIn("/tmp", mounts)
        control = flag(args, "--control-file")
        self.assertIn(os.path.dirname(control), mounts)
        self.assertIn("control", config["data"])

        rc, report, err = accepted_by_the_binary(args, {"JOB_COMPLETION_INDEX": str(n - 1)})
        self.assertEqual(rc, 2, err[-2000:])
        self.assertEqual(report["outcome"], "preflight_failed", err[-2000:])
        self.assertEqual(report["shard"]["index"], n - 1)
        self.assertEqual(report["shard"]["count"], n)
        self.assertNotIn("Run with --help", err)

        kustomization = self.load("kustomization.yaml")
        self.assertEqual(sorted(kustomization["resources"]),
                         sorted(os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml"))
                                if not p.endswith("kustomization.yaml")))

    def test_the_aws_batch_array_job_matches_its_shards_and_keeps_secrets_out_of_the_definition(self):
        with open(os.path.join(BATCH, "job-definition.json")) as f:
            jd = json.load(f)
        with open(os.path.join(BATCH, "submit-job.json")) as f:
            submit = json.load(f)
        cmd = jd["containerProperties"]["command"]
        n = int(flag(cmd, "--shards"))
        self.assertEqual(submit["arrayProperties"]["size"], n)
        self.assertEqual(submit["jobDefinition"], jd["jobDefinitionName"])
        final = {e["onExitCode"] for e in jd["retryStrategy"]["evaluateOnExit"] if e["action"] == "EXIT"}
        self.assertEqual(final, {"0", "1"})
        self.assertGreater(jd["retryStrategy"]["attempts"], 1)
        secrets = {s["name"] for s in jd["containerProperties"]["secrets"]}
        self.assertEqual(secrets, {"PGPASSWORD"}, "no AWS keys: the job has a role")
        self.assertRegex(jd["containerProperties"]["jobRoleArn"], r"^arn:aws:iam::\d{12}:role/")
        self.assertNotIn("AWS_ACCESS_KEY_ID", json.dumps(jd))
        plain = {e["name"] for e in jd["containerProperties"]["environment"]}
        self.assertFalse(plain & secrets)
        rc, report, err = accepted_by_the_binary(cmd, {"AWS_BATCH_JOB_ARRAY_INDEX": "0"})
        self.assertEqual(rc, 2, err[-2000:])
        self.assertEqual(report["shard"], {"index": 0, "count": n, "max_rate": float(flag(cmd, "--max-rate")) / n})


if __name__ == "__main__":
    unittest.main()
