"""A test world on the real local services: its own table and its own key
prefixes (so tests run side by side in the same buckets), built with
`assetmv seed` and then made messy with boto3 and psycopg2, which also serve
as the independent checkers of the end state.

Environment: what `scripts/services.sh env` prints (AWS_*, PG*), and
ASSETMV_BIN (the binary under test).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
import psycopg2
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETMV = os.environ.get("ASSETMV_BIN", os.path.join(ROOT, "build", "src", "assetmv"))
LEGACY_BUCKET = os.environ.get("ASSETMV_LEGACY_BUCKET", "legacy-s3")
DEST_BUCKET = os.environ.get("ASSETMV_PROD_BUCKET", "production-s3")
# Which S3 implementation AWS_ENDPOINT_URL is: "rgw" (Ceph RADOS Gateway,
# scripts/rgw.sh) or "swift" (OpenStack Swift's s3api, scripts/swift.sh).
IMPLEMENTATION = os.environ.get("ASSETMV_S3_IMPLEMENTATION", "rgw")

# Names that need encoding in URLs, signatures and XML.
ODD_NAMES = ["with space.png", "unicodé-ß-日本.png", "plus+sign.png", "percent%41.png",
             "tilde~equals=amp&.png", "semi;colon,comma.png", "quote'dq\".png", "brackets[1](2).png"]


def s3_client(endpoint=None, access_key=None, secret_key=None):
    """The environment's S3 service, or another one given by its endpoint and keys."""
    return boto3.client("s3", endpoint_url=endpoint or os.environ["AWS_ENDPOINT_URL"],
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=64,
                                      retries={"max_attempts": 10, "mode": "standard"}))


def s3_user(uid):
    """A gateway user of the test's own (no rights on the shared buckets
    unless a bucket policy grants them); returns its environment."""
    access, secret = uid.upper().replace("-", ""), "secret-" + uuid.uuid4().hex
    subprocess.run(["radosgw-admin", "-c", os.path.join(ROOT, ".local", "ceph", "ceph.conf"), "user", "create",
                    f"--uid={uid}", f"--display-name={uid}", f"--access-key={access}", f"--secret={secret}"],
                   capture_output=True, check=True)
    return dict(os.environ, AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)


def bucket_policy(bucket, prefix, uid, exclude=None, legacy=True):
    """The S3 statements of docs/privileges.md for one bucket, granted to one
    gateway user (minus `exclude`). The gateway (Ceph 16) checks DeleteObjects
    against the bucket's ARN, so s3:DeleteObject is granted there too."""
    principal = {"AWS": [f"arn:aws:iam:::user/{uid}"]}
    objects = ["s3:GetObject", "s3:GetObjectTagging", "s3:DeleteObject"] if legacy else [
        "s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:AbortMultipartUpload"]
    objects = [a for a in objects if a != exclude]
    statements = [{"Effect": "Allow", "Principal": principal, "Action": "s3:ListBucket",
                   "Resource": f"arn:aws:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": [prefix + "*"]}}},
                  {"Effect": "Allow", "Principal": principal, "Action": objects,
                   "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}]
    if legacy and exclude != "s3:DeleteObject":
        statements.append({"Effect": "Allow", "Principal": principal, "Action": "s3:DeleteObject",
                           "Resource": f"arn:aws:s3:::{bucket}"})
    return {"Version": "2012-10-17", "Statement": statements}


def make_role(world, table_grants, password=None):
    """A login role with CONNECT, USAGE on the schema and table_grants on the
    world's table (docs/privileges.md); returns (role, drop) where drop() removes it."""
    role = "assetmv_" + uuid.uuid4().hex[:8]
    dbname = world.db.get_dsn_parameters()["dbname"]
    with world.db.cursor() as c:
        c.execute(f"CREATE ROLE {role} LOGIN" + (" PASSWORD %s" if password else ""), (password,) if password else None)
        c.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {role}')
        c.execute(f'GRANT USAGE ON SCHEMA public TO {role}')
        c.execute(f'GRANT {table_grants} ON "{world.table}" TO {role}')

    def drop():
        db = db_connect()
        with db.cursor() as c:
            c.execute(f'REVOKE ALL ON "{world.table}" FROM {role}')
            c.execute(f'DROP OWNED BY {role}')
            c.execute(f'DROP ROLE {role}')
        db.close()
    return role, drop


def db_connect(**kw):
    conn = psycopg2.connect(**kw)
    conn.autocommit = True
    return conn


def body_for(name):
    """Distinct bytes per name, so a wrong mapping changes the ETag."""
    return b"\x89PNG-test " + hashlib.sha256(name.encode()).digest() + name.encode()


def md5(data):
    return hashlib.md5(data).hexdigest()


class World:
    def __init__(self, name, dest_bucket=DEST_BUCKET, legacy_bucket=LEGACY_BUCKET):
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        self.tag = tag
        self.table = "avatars_" + tag.replace("-", "_")
        self.legacy_bucket = legacy_bucket
        self.dest_bucket = dest_bucket
        self.legacy_prefix = f"{tag}/image/"
        self.dest_prefix = f"{tag}/avatar/"
        self.s3 = s3_client()
        self.dest_s3 = self.s3  # a destination on another service: its own client (test_cross.py)
        self.db = db_connect()
        # What the world holds on purpose, for the expected end state.
        self.conflicts = set()   # names whose destination holds other content
        self.dangling = set()    # names with rows and no object anywhere
        self.repairable = set()  # names with rows, legacy object gone, destination present

    # ---- running the tool -------------------------------------------------

    def args(self):
        return ["--source", f"s3://{self.legacy_bucket}/{self.legacy_prefix}",
                "--dest", f"s3://{self.dest_bucket}/{self.dest_prefix}",
                "--table", self.table, "--log-format", "json"]

    def command(self, cmd, *extra):
        argv = [ASSETMV, cmd, *self.args(), *extra]
        if cmd in ("migrate", "verify"):
            argv += ["--progress", "never"]
        return argv

    def run(self, cmd, *extra, env=None, timeout=600):
        p = subprocess.run(self.command(cmd, *extra), capture_output=True, text=True, timeout=timeout,
                           env=env)
        report = None
        try:
            report = json.loads(p.stdout) if p.stdout.strip() else None
        except json.JSONDecodeError:
            pass
        return p.returncode, report, p.stderr

    def seed(self, count, modern_share=0.2):
        rc, report, err = self.run("seed", "--count", str(count), "--modern-share", str(modern_share), "--reset")
        assert rc == 0, err[-2000:]
        return report

    # ---- making it messy --------------------------------------------------

    def put(self, bucket, key, body):
        s3 = self.dest_s3 if bucket == self.dest_bucket else self.s3
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")

    def insert_row(self, path):
        with self.db.cursor() as c:
            c.execute(f'INSERT INTO "{self.table}" (path) VALUES (%s) RETURNING id', (path,))
            return c.fetchone()[0]

    def legacy_names(self, limit):
        with self.db.cursor() as c:
            c.execute(f'SELECT path FROM "{self.table}" WHERE starts_with(path, %s) ORDER BY id LIMIT %s',
                      (self.legacy_prefix, limit))
            return [r[0][len(self.legacy_prefix):] for r in c.fetchall()]

    def make_mixed(self, seed_count=5000):
        """The exercise's world plus every special case the rules name."""
        self.seed(seed_count)
        lp, dp, other = self.legacy_prefix, self.dest_prefix, f"{self.tag}/other/"
        extra = {}
        first = self.legacy_names(1)[0]
        for _ in range(2):  # two more rows for one object
            self.insert_row(lp + first)
        extra["duplicate_rows"] = 2
        for i in range(20):  # orphans: objects no row points to
            self.put(self.legacy_bucket, f"{lp}orphan-{i}.png", body_for(f"orphan-{i}"))
        extra["orphans"] = 20
        for i in range(10):  # dangling: rows whose object exists nowhere
            self.dangling.add(f"dangling-{i}.png")
            self.insert_row(f"{lp}dangling-{i}.png")
        for i in range(5):  # destination already identical
            n = f"identical-{i}.png"
            self.put(self.legacy_bucket, lp + n, body_for(n))
            self.put(self.dest_bucket, dp + n, body_for(n))
            self.insert_row(lp + n)
        for i in range(5):  # destination holds other content
            n = f"conflict-{i}.png"
            self.conflicts.add(n)
            self.put(self.legacy_bucket, lp + n, body_for(n))
            self.put(self.dest_bucket, dp + n, body_for("other content " + n))
            self.insert_row(lp + n)
        for i in range(3):  # legacy object gone, destination present: the row is repaired
            n = f"moved-{i}.png"
            self.repairable.add(n)
            self.put(self.dest_bucket, dp + n, body_for(n))
            self.insert_row(lp + n)
        for n in ODD_NAMES:
            self.put(self.legacy_bucket, lp + n, body_for(n))
            self.insert_row(lp + n)
        for _ in range(5):
            self.insert_row(None)
            self.insert_row("")
        for i in range(5):  # other prefixes, near misses of the legacy prefix included
            self.insert_row(f"{other}x-{i}.png")
            self.put(self.legacy_bucket, f"{other}x-{i}.png", body_for(f"other-{i}"))
        self.insert_row(lp.rstrip("/"))
        self.put(self.legacy_bucket, f"{self.tag}/imagery/a.png", b"near miss")
        self.put(self.legacy_bucket, lp.rstrip("/"), b"prefix without slash")
        self.insert_row(lp.upper() + "avatar-1.png")
        return extra

    # ---- observing ----------------------------------------------------------

    def rows(self):
        with self.db.cursor() as c:
            c.execute(f'SELECT id, path FROM "{self.table}" ORDER BY id')
            return dict(c.fetchall())

    def objects(self, bucket):
        out = {}
        s3 = self.dest_s3 if bucket == self.dest_bucket else self.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=self.tag + "/"):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["ETag"].strip('"')
        return out

    def snapshot(self):
        return {"rows": self.rows(), "legacy": self.objects(self.legacy_bucket),
                "dest": self.objects(self.dest_bucket)}

    def expected_after(self, before, keep_source=False):
        """The end state the rules define, computed from a snapshot."""
        lp, dp = self.legacy_prefix, self.dest_prefix
        legacy_objs = {k: v for k, v in before["legacy"].items()}
        dest_objs = dict(before["dest"])
        for key, etag in before["legacy"].items():
            if not key.startswith(lp):
                continue
            name = key[len(lp):]
            if name in self.conflicts:
                continue
            dest_objs.setdefault(dp + name, etag)
            if not keep_source:
                del legacy_objs[key]
        rows = {}
        for rid, path in before["rows"].items():
            if path is not None and path.startswith(lp):
                name = path[len(lp):]
                if name not in self.conflicts and (lp + name in before["legacy"] or dp + name in dest_objs):
                    path = dp + name
            rows[rid] = path
        return {"rows": rows, "legacy": legacy_objs, "dest": dest_objs}

    def expected_with_app(self, before, app, got):
        """expected_after(before), plus what the live application (actors.py's
        live_app result `app`) wrote during the run: its rows win, and its own
        objects are expected with whatever ETag `got` shows."""
        want = self.expected_after(before)
        for rid, path in app["inserted"].items():
            want["rows"][int(rid)] = path
            want["dest"][path] = None
        for rid, path in app["changed"].items():
            want["rows"][int(rid)] = path  # the application's write wins
            want["dest"][path] = None
        for key in app["uploaded"]:
            want["dest"][key] = None
        for k, v in want["dest"].items():  # the app's own objects: any ETag
            if v is None and k in got["dest"]:
                want["dest"][k] = got["dest"][k]
        return want

    def copy_ops(self):
        """copy_obj operations the gateway counted for the destination bucket (its usage log)."""
        out = subprocess.run(["radosgw-admin", "-c", os.path.join(ROOT, ".local", "ceph", "ceph.conf"),
                              "usage", "show", "--uid=assetmv"], capture_output=True, text=True, check=True)
        for entry in json.loads(out.stdout)["entries"]:
            for b in entry["buckets"]:
                if b["bucket"] == self.dest_bucket:
                    return sum(c["ops"] for c in b["categories"] if c["category"] == "copy_obj")
        return 0

    def wait_usage_flushed(self, want_at_least=0):
        # The gateway flushes its usage log every second (rgw.sh sets the tick).
        deadline = time.time() + 15
        while True:
            n = self.copy_ops()
            time.sleep(2.5)
            m = self.copy_ops()
            if (m == n and m >= want_at_least) or time.time() > deadline:
                return m

    def close(self):
        self.db.close()


def assert_state(test, got, want):
    """Fails `test` naming what differs, part by part, between a snapshot and the expected end state."""
    for part in ("rows", "legacy", "dest"):
        missing = {k: v for k, v in want[part].items() if got[part].get(k, "<absent>") != v}
        extra = {k: v for k, v in got[part].items() if k not in want[part]}
        test.assertEqual((missing, extra), ({}, {}), f"{part}: differs from the expected end state")


class Actors:
    """actors.py processes (`live_app`, `probe`) running beside a migration of
    `world`, straight against the services. Rows broken before the run (no
    object at their path) are not the run's doing: the probe skips them."""

    def __init__(self, world, before, roles=("live_app", "probe")):
        self.tmp = tempfile.mkdtemp()
        cfg = {"table": world.table, "legacy_prefix": world.legacy_prefix, "dest_prefix": world.dest_prefix,
               "legacy_bucket": world.legacy_bucket, "dest_bucket": world.dest_bucket,
               "skip_ids": [rid for rid, p in before["rows"].items()
                            if p and p[len(world.legacy_prefix):] in world.dangling | world.repairable]}
        with open(os.path.join(self.tmp, "cfg.json"), "w") as f:
            json.dump(cfg, f)
        self.stop_file = os.path.join(self.tmp, "stop")
        here = os.path.dirname(os.path.abspath(__file__))
        self.procs = {role: subprocess.Popen([sys.executable, os.path.join(here, "actors.py"), role,
                                              os.path.join(self.tmp, "cfg.json"),
                                              os.path.join(self.tmp, role + ".json"), self.stop_file])
                      for role in roles}
        # At work before the migration starts: on a busy machine their start
        # (boto3's import, a client per thread) can take longer than a short run.
        deadline = time.time() + 60
        for role, p in self.procs.items():
            while not os.path.exists(os.path.join(self.tmp, role + ".json.ready")):
                if p.poll() is not None or time.time() > deadline:
                    self.close()
                    raise AssertionError(f"actor {role} did not start (exit {p.poll()})")
                time.sleep(0.05)
        time.sleep(0.5)  # their first statements and requests

    def close(self):
        """For a test's cleanup: ends them whatever happened (a failed assertion
        must not leave a probe running, holding the test's output open)."""
        open(self.stop_file, "w").close()
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @staticmethod
    def describe_app(app):
        """One line on what the live application did and what it waited on."""
        return (f"app: {len(app['inserted'])} rows inserted, {len(app['changed'])} legacy rows changed, "
                f"{app['put_retries']} PUT retries, slowest PUT {app['slowest_put']:.1f} s, "
                f"slowest row write {app['slowest_row']:.1f} s")

    def stop(self):
        """Stops them and returns {role: result}; raises if one of them failed."""
        open(self.stop_file, "w").close()
        out = {}
        for role, p in self.procs.items():
            if p.wait(timeout=60) != 0:
                raise AssertionError(f"actor {role} exited with {p.returncode}")
            with open(os.path.join(self.tmp, role + ".json")) as f:
                out[role] = json.load(f)
        return out
