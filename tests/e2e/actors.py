"""Processes that run beside a migration.

  live_app  plays the site: uploads new avatars and inserts their rows, and
            moves some legacy rows to fresh modern objects (object first,
            then the row, as a real app does). It writes only modern paths.
  probe     samples rows continuously and checks that each row's object
            exists; a missing object counts as a violation only if the row
            still holds the same path when read again.

Usage: actors.py live_app|probe CONFIG_JSON OUT_JSON STOP_FILE
OUT_JSON.ready appears once its workers are at work (world.Actors waits for it).
"""
import json
import os
import random
import sys
import threading
import time

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import body_for, db_connect, s3_client  # noqa: E402


READY_FILE = None  # set by __main__: touched once the workers have started


def in_threads(workers, loop):
    """Runs loop(s3_client, worker) in `workers` threads; returns their results.
    The clients are made up front: boto3 cannot create them from several threads at once."""
    results = [None] * workers
    clients = [s3_client() for _ in range(workers)]

    def work(n):
        results[n] = loop(clients[n], n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    if READY_FILE:
        open(READY_FILE, "w").close()
    for t in threads:
        t.join()
    return results


def id_range(db, table):
    with db.cursor() as c:
        c.execute(f'SELECT min(id), max(id) FROM "{table}"')
        return c.fetchone()


def live_app(cfg, stop, workers=4):
    """Several writer threads, so the load does not depend on one PUT's latency."""
    out = {"inserted": {}, "changed": {}, "uploaded": [], "put_retries": 0, "slowest_put": 0.0, "slowest_row": 0.0}
    for r in in_threads(workers, lambda s3, n: live_app_loop(cfg, stop, s3, n)):
        out["inserted"].update(r["inserted"])
        out["changed"].update(r["changed"])
        out["uploaded"] += r["uploaded"]
        out["put_retries"] += r["put_retries"]
        out["slowest_put"] = max(out["slowest_put"], r["slowest_put"])
        out["slowest_row"] = max(out["slowest_row"], r["slowest_row"])
    return out


def live_app_loop(cfg, stop, s3, worker):
    db = db_connect()
    table, lp, dp = cfg["table"], cfg["legacy_prefix"], cfg["dest_prefix"]
    inserted, changed, uploaded = {}, {}, []
    # What the app waited on, so that a test finding it idle can tell a
    # throttled store (retries, slow PUTs) from a locked row.
    put_retries, slowest_put, slowest_row = 0, 0.0, 0.0
    i = 0
    lo, hi = id_range(db, table)
    while not os.path.exists(stop):
        i += 1
        key = f"{dp}app-{os.getpid()}-{worker}-{i}.png"
        t0 = time.monotonic()
        put = s3.put_object(Bucket=cfg["dest_bucket"], Key=key, Body=body_for(key))
        t1 = time.monotonic()
        uploaded.append(key)
        put_retries += put["ResponseMetadata"].get("RetryAttempts", 0)
        with db.cursor() as c:
            if i % 2:
                c.execute(f'INSERT INTO "{table}" (path) VALUES (%s) RETURNING id', (key,))
                inserted[c.fetchone()[0]] = key
            else:
                rid = random.randint(lo, hi)
                c.execute(f'UPDATE "{table}" SET path = %s WHERE id = %s AND starts_with(path, %s) RETURNING id',
                          (key, rid, lp))
                if c.fetchone():
                    changed[rid] = key
        slowest_put, slowest_row = max(slowest_put, t1 - t0), max(slowest_row, time.monotonic() - t1)
        time.sleep(0.01)
    return {"inserted": inserted, "changed": changed, "uploaded": uploaded, "put_retries": put_retries,
            "slowest_put": slowest_put, "slowest_row": slowest_row}


def probe(cfg, stop, workers=8):
    """Several sampling threads, so coverage does not depend on one HEAD's latency."""
    results = in_threads(workers, lambda s3, n: probe_loop(cfg, stop, s3))
    return {"checks": sum(r["checks"] for r in results), "rechecked": sum(r["rechecked"] for r in results),
            "violations": [v for r in results for v in r["violations"]]}


def probe_loop(cfg, stop, s3):
    db = db_connect()
    table, lp, dp = cfg["table"], cfg["legacy_prefix"], cfg["dest_prefix"]
    skip = set(cfg.get("skip_ids", []))
    checks, violations, rechecked = 0, [], 0
    lo, hi = id_range(db, table)
    while not os.path.exists(stop):
        ids = [random.randint(lo, hi + 50) for _ in range(20)]
        with db.cursor() as c:
            c.execute(f'SELECT id, path FROM "{table}" WHERE id = ANY(%s)', (ids,))
            rows = c.fetchall()
        for rid, path in rows:
            if rid in skip or path is None:
                continue
            if path.startswith(lp):
                bucket = cfg["legacy_bucket"]
            elif path.startswith(dp):
                bucket = cfg["dest_bucket"]
            else:
                continue
            checks += 1
            try:
                s3.head_object(Bucket=bucket, Key=path)
            except ClientError as e:
                if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                    raise
                with db.cursor() as c:
                    c.execute(f'SELECT path FROM "{table}" WHERE id = %s', (rid,))
                    now = c.fetchone()
                if now and now[0] == path:
                    violations.append({"id": rid, "path": path})
                else:
                    rechecked += 1
    return {"checks": checks, "violations": violations, "rechecked": rechecked}


if __name__ == "__main__":
    role, cfg_file, out_file, stop_file = sys.argv[1:5]
    READY_FILE = out_file + ".ready"
    with open(cfg_file) as f:
        cfg = json.load(f)
    result = {"live_app": live_app, "probe": probe}[role](cfg, stop_file)
    with open(out_file, "w") as f:
        json.dump(result, f)
