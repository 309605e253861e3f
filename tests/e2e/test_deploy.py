"""What the package and the deployment examples promise, checked as far as a
machine without Kubernetes or AWS allows: the man page and the bash
completion carry every option the binary has; the Kubernetes and AWS Batch
manifests validate against the Kubernetes API's schema (unknown fields
included), run docs/operations.md's safe sequence, agree with each other
(N shards, the metrics port, the mounts, the exit-code policy), and their
command lines are accepted by the real binary; the alert rules pass
promtool and its unit tests.

Environment: ASSETMV_BIN, and ASSETMV_MAN_PAGE / ASSETMV_COMPLETION (the
build's by default; the installed ones when .ci/run tests the package)."""
import glob
import gzip
import json
import os
import re
import shlex
import shutil
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
MONITORING = os.path.join(ROOT, "deploy", "monitoring")


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
    the shard's index (exit 4 from the preflight, which cannot reach a database on
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


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_template(obj):
    """The pod template of a Job or of a CronJob's Jobs."""
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec, spec["template"]


def args_of(obj):
    (c,) = pod_template(obj)[1]["spec"]["containers"]
    return c["args"]


NPM = os.environ.get("ASSETMV_NPM", os.path.join(ROOT, ".local", "npm"))


def validate(paths):
    """tests/deploy/validate_manifests.mjs over `paths`, beside the npm
    packages scripts/setup.sh installs: (exit code, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "validate.mjs")
        shutil.copy(os.path.join(ROOT, "tests", "deploy", "validate_manifests.mjs"), script)
        os.symlink(os.path.join(NPM, "node_modules"), os.path.join(tmp, "node_modules"))
        p = subprocess.run(["node", script, *paths], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class ManifestTest(unittest.TestCase):
    """deploy/kubernetes: the shared pieces (kustomization.yaml) and one file
    per step of docs/operations.md's sequence (steps/)."""

    def setUp(self):
        self.shared = {d["metadata"]["name"]: d for f in ("serviceaccount.yaml", "configmap.yaml")
                       for d in load_all(os.path.join(K8S, f))}
        self.steps = {os.path.basename(f)[:-5]: load_all(f)[0] for f in sorted(glob.glob(os.path.join(K8S, "steps", "*.yaml")))}

    def test_every_manifest_validates_against_the_kubernetes_and_operator_schemas(self):
        files = sorted(glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True) +
                       glob.glob(os.path.join(MONITORING, "*.yaml")))
        files = [f for f in files if not f.endswith(".rules.yaml") and not f.endswith(".test.yaml")]
        rc, out = validate(files)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"{len(files) + 1} objects, 0 problems", out)  # configmap.yaml holds two
        # The check can fail: a misspelt field, a wrong type.
        with tempfile.TemporaryDirectory() as tmp:
            text = open(os.path.join(K8S, "steps", "2-move.yaml")).read()
            for i, (old, new) in enumerate([("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
                                            ("backoffLimitPerIndex: 3", "backoffLimitPerIndex: three")]):
                broken = os.path.join(tmp, f"broken-{i}.yaml")
                with open(broken, "w") as f:
                    f.write(text.replace(old, new))
                rc, out = validate([broken])
                self.assertEqual(rc, 1, out)
                self.assertIn("1 problems", out)

    def test_apply_k_creates_no_secret_and_starts_no_run(self):
        kustomization = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
        kinds = {d["kind"] for r in kustomization["resources"] for d in load_all(os.path.join(K8S, r))}
        self.assertEqual(kinds, {"ServiceAccount", "ConfigMap"})
        self.assertEqual(glob.glob(os.path.join(K8S, "**", "secret*"), recursive=True), [])

    def test_the_steps_are_the_safe_sequence(self):
        self.assertEqual(sorted(self.steps), ["1-plan", "2-move", "3-delete", "4-verify", "rollback"])
        plan, move, delete, verify, rollback = (args_of(self.steps[k]) for k in sorted(self.steps))
        self.assertEqual(plan[:2], ["migrate", "--dry-run"])
        # The move keeps every legacy object for a grace; the delete is the same command, suspended.
        self.assertEqual(move[0], "migrate")
        self.assertGreater(float(flag(move, "--delete-grace").rstrip("d")), 0)
        self.assertNotIn("--dry-run", move)
        self.assertEqual(delete, move)
        self.assertEqual(flag(plan, "--delete-grace"), flag(move, "--delete-grace"))
        cron = self.steps["3-delete"]
        self.assertEqual(cron["kind"], "CronJob")
        self.assertIs(cron["spec"]["suspend"], True, "nothing is deleted before someone says so")
        self.assertEqual(cron["spec"]["concurrencyPolicy"], "Forbid")
        self.assertEqual(verify[0], "verify")
        self.assertEqual(rollback[:2], ["migrate", "--rollback"])
        for args in (plan, move, verify, rollback):
            for f in ("--source", "--dest", "--table"):
                self.assertEqual(flag(args, f), flag(move, f), f)

    def test_every_step_shares_the_pods_identity_settings_and_exit_code_policy(self):
        config, control = self.shared["assetmv-config"], self.shared["assetmv-control"]
        account = self.shared["assetmv"]
        self.assertRegex(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], r"^arn:aws:iam::\d{12}:role/")
        self.assertLessEqual({"AWS_REGION", "PGHOST", "PGUSER", "PGDATABASE", "PGSSLMODE"}, set(config["data"]))
        self.assertFalse(any("SECRET" in k or "PASSWORD" in k for k in config["data"]), "no secret in the ConfigMap")
        reference = pod_template(self.steps["2-move"])[1]["spec"]
        for name, obj in self.steps.items():
            with self.subTest(name):
                spec, template = pod_template(obj)
                pod = template["spec"]
                (c,) = pod["containers"]
                args = c["args"]
                self.assertEqual(pod["serviceAccountName"], account["metadata"]["name"])
                for same in ("securityContext", "volumes", "serviceAccountName", "restartPolicy"):
                    self.assertEqual(pod[same], reference[same], same)
                self.assertEqual(c["envFrom"], reference["containers"][0]["envFrom"])
                self.assertEqual(c["resources"], reference["containers"][0]["resources"])
                self.assertEqual(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"])
                self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
                sources = {(k, v["name"]) for s in c["envFrom"] for k, v in s.items()}
                self.assertEqual(sources, {("configMapRef", "assetmv-config"), ("secretRef", "assetmv-db")})
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                volumes = {v["name"]: v for v in pod["volumes"]}
                # verify-full with its root certificate mounted: the pods' user has no home for libpq's default.
                self.assertEqual(config["data"]["PGSSLMODE"], "verify-full")
                ca_dir = os.path.dirname(config["data"]["PGSSLROOTCERT"])
                self.assertEqual(volumes[mounts[ca_dir]]["configMap"]["name"], "assetmv-db-ca")
                self.assertEqual(os.path.basename(config["data"]["PGSSLROOTCERT"]), "root.crt")
                # A writable /tmp (the row spool, the report, the pause file); the control file mounted.
                self.assertIn("emptyDir", volumes[mounts["/tmp"]])
                if name != "4-verify":  # verify is read-only: nothing to pause
                    ctl = flag(args, "--control-file")
                    if ctl:
                        vol = volumes[mounts[os.path.dirname(ctl)]]["configMap"]
                        self.assertEqual(vol["name"], control["metadata"]["name"])
                        self.assertEqual([i["path"] for i in vol["items"]], [os.path.basename(ctl)])
                        self.assertIn("control", control["data"])
                        self.assertEqual(os.path.dirname(flag(args, "--pause-file")), "/tmp")
                # Exit 1 and 2 are final; 3, 4 and kills are tried again.
                rules = spec["podFailurePolicy"]["rules"]
                final = [r for r in rules if r["action"] in ("FailIndex", "FailJob")]
                self.assertEqual([r["onExitCodes"]["values"] for r in final], [[1, 2]])
                self.assertEqual(final[0]["action"], "FailIndex" if spec.get("completionMode") == "Indexed" else "FailJob")
                self.assertEqual(pod["restartPolicy"], "Never")
                # The metrics port: the same in the flag, the container, the annotation and the PodMonitor.
                port = int(flag(args, "--metrics-addr").rsplit(":", 1)[1])
                self.assertEqual(flag(args, "--metrics-addr").rsplit(":", 1)[0], "0.0.0.0", "reachable by the scraper")
                self.assertEqual([(p["name"], p["containerPort"]) for p in c["ports"]], [("metrics", port)])
                self.assertEqual(template["metadata"]["annotations"]["prometheus.io/port"], str(port))
                monitor = load_all(os.path.join(MONITORING, "podmonitor.yaml"))[0]["spec"]
                self.assertLessEqual(monitor["selector"]["matchLabels"].items(), template["metadata"]["labels"].items())
                self.assertEqual(monitor["podMetricsEndpoints"][0]["port"], "metrics")
                # Resources sized from the measured figures (docs/performance.md: ~27 MB flat).
                res = c["resources"]
                self.assertGreaterEqual(quantity(res["limits"]["memory"]), 2 * 27e6)
                self.assertLessEqual(quantity(res["requests"]["memory"]), quantity(res["limits"]["memory"]))

    def test_each_steps_command_line_is_accepted_by_the_binary(self):
        for name, obj in self.steps.items():
            with self.subTest(name):
                spec, _ = pod_template(obj)
                args = args_of(obj)
                env = {}
                if spec.get("completionMode") == "Indexed":
                    n = int(flag(args, "--shards"))
                    self.assertEqual(spec["completions"], n, "one completion per shard")
                    self.assertLessEqual(spec["parallelism"], n)
                    self.assertGreaterEqual(spec["backoffLimitPerIndex"], 1, "a failed shard is retried by its index")
                    env["JOB_COMPLETION_INDEX"] = str(n - 1)
                rc, report, err = accepted_by_the_binary(args, env)
                self.assertEqual(rc, 4, err[-2000:])  # the database on port 1: unreachable, worth retrying
                self.assertEqual(report["outcome"], "unavailable", err[-2000:])
                if env:
                    self.assertEqual(report["shard"]["index"], n - 1)
                    self.assertEqual(report["shard"]["count"], n)
                self.assertNotIn("Run with --help", err)

    def test_the_aws_batch_steps_match_their_shards_and_keep_secrets_out(self):
        with open(os.path.join(BATCH, "job-definition.json")) as f:
            jd = json.load(f)
        final = {e["onExitCode"] for e in jd["retryStrategy"]["evaluateOnExit"] if e["action"] == "EXIT"}
        self.assertEqual(final, {"0", "1", "2"})
        self.assertGreater(jd["retryStrategy"]["attempts"], 1)
        props = jd["containerProperties"]
        secrets = {s["name"] for s in props["secrets"]}
        self.assertEqual(secrets, {"PGPASSWORD"}, "no AWS keys: the job has a role")
        self.assertRegex(props["jobRoleArn"], r"^arn:aws:iam::\d{12}:role/")
        self.assertNotIn("AWS_ACCESS_KEY_ID", json.dumps(jd))
        env = {e["name"]: e["value"] for e in props["environment"]}
        self.assertFalse(set(env) & secrets)
        self.assertEqual((env["PGSSLMODE"], env["PGSSLROOTCERT"]), ("verify-full", "/etc/assetmv/db-ca/root.crt"))
        move = props["command"]
        self.assertGreater(float(flag(move, "--delete-grace").rstrip("d")), 0)
        submits = {os.path.basename(p)[7:-5]: json.load(open(p)) for p in glob.glob(os.path.join(BATCH, "submit-*.json"))}
        self.assertEqual(sorted(submits), ["delete", "move", "plan", "rollback", "verify"])
        for name, submit in submits.items():
            with self.subTest(name):
                self.assertEqual(submit["jobDefinition"], jd["jobDefinitionName"])
                cmd = submit.get("containerOverrides", {}).get("command", move)
                env = {}
                if "arrayProperties" in submit:
                    self.assertEqual(submit["arrayProperties"]["size"], int(flag(cmd, "--shards")))
                    env["AWS_BATCH_JOB_ARRAY_INDEX"] = "0"
                rc, report, err = accepted_by_the_binary(cmd, env)
                self.assertEqual(rc, 4, err[-2000:])
                if env:
                    self.assertEqual(report["shard"]["count"], int(flag(cmd, "--shards")))
        self.assertEqual(submits["plan"]["containerOverrides"]["command"][:2], ["migrate", "--dry-run"])
        self.assertEqual(submits["verify"]["containerOverrides"]["command"][0], "verify")
        self.assertEqual(submits["rollback"]["containerOverrides"]["command"][:2], ["migrate", "--rollback"])
        self.assertNotIn("containerOverrides", submits["delete"], "the delete is the move's command, later")


class AlertRulesTest(unittest.TestCase):
    """deploy/monitoring: the rule file passes promtool and its unit tests,
    the PrometheusRule holds the same groups, every alert can be acted on."""

    def test_rules_pass_promtool_and_its_unit_tests(self):
        rules = os.path.join(MONITORING, "assetmv.rules.yaml")
        for argv in (["promtool", "check", "rules", rules],
                     ["promtool", "test", "rules", os.path.join(MONITORING, "assetmv.rules.test.yaml")]):
            p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The unit tests can fail: an alert that waits longer than they expect.
        with tempfile.TemporaryDirectory() as tmp:
            for f in ("assetmv.rules.yaml", "assetmv.rules.test.yaml"):
                shutil.copy(os.path.join(MONITORING, f), tmp)
            broken = open(rules).read().replace("for: 15m", "for: 45m", 1)
            open(os.path.join(tmp, "assetmv.rules.yaml"), "w").write(broken)
            p = subprocess.run(["promtool", "test", "rules", os.path.join(tmp, "assetmv.rules.test.yaml")],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)

    def test_the_operator_rule_is_the_plain_file_and_every_alert_says_what_to_do(self):
        plain = load_all(os.path.join(MONITORING, "assetmv.rules.yaml"))[0]
        operator = load_all(os.path.join(MONITORING, "prometheusrule.yaml"))[0]
        self.assertEqual(operator["spec"], plain)
        runbook = re.sub(r"```.*?```", "", open(os.path.join(ROOT, "docs", "operations.md")).read(), flags=re.S)
        anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", runbook, re.M)}
        tested = open(os.path.join(MONITORING, "assetmv.rules.test.yaml")).read()
        for rule in plain["groups"][0]["rules"]:
            with self.subTest(rule["alert"]):
                self.assertRegex(rule["for"], r"^\d+[mh]$")
                self.assertIn(rule["labels"]["severity"], ("page", "ticket"))
                self.assertLessEqual({"summary", "description", "runbook_url"}, set(rule["annotations"]))
                self.assertIn(rule["annotations"]["runbook_url"].split("#", 1)[1], anchors)
                self.assertIn(f"alertname: {rule['alert']}", tested, "each alert has a promtool unit test")


if __name__ == "__main__":
    unittest.main()
