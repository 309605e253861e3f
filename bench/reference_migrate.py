#!/usr/bin/python3
"""The straightforward approach, for comparison only (bench/compare.sh).

What a typical solution to the exercise does: read the legacy rows, then a
thread pool of 64 does, per row, CopyObject -> UPDATE ... WHERE id = $1 ->
DeleteObject. boto3 and psycopg2 from Debian. Not safe for production
(no compare-and-set, no handling of shared objects or orphans): it is only
the speed baseline.

usage: reference_migrate.py SOURCE_BUCKET SOURCE_PREFIX DEST_BUCKET DEST_PREFIX TABLE
"""
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import psycopg2
from botocore.config import Config

THREADS = 64


def main():
    src_bucket, src_prefix, dst_bucket, dst_prefix, table = sys.argv[1:6]
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                      config=Config(s3={"addressing_style": "path"}, max_pool_connections=THREADS,
                                    retries={"max_attempts": 10, "mode": "standard"}))
    local = threading.local()

    def conn():
        if not hasattr(local, "db"):
            local.db = psycopg2.connect("")
            local.db.autocommit = True
        return local.db

    with psycopg2.connect("") as db, db.cursor() as c:
        c.execute(f'SELECT id, path FROM "{table}" WHERE path LIKE %s', (src_prefix.replace("%", r"\%") + "%",))
        rows = c.fetchall()

    def move(row):
        rid, path = row
        new = dst_prefix + path[len(src_prefix):]
        s3.copy_object(Bucket=dst_bucket, Key=new, CopySource={"Bucket": src_bucket, "Key": path})
        with conn().cursor() as c:
            c.execute(f'UPDATE "{table}" SET path = %s WHERE id = %s', (new, rid))
        s3.delete_object(Bucket=src_bucket, Key=path)

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(move, rows):
            pass
    print(f"moved {len(rows)} objects", file=sys.stderr)


if __name__ == "__main__":
    main()
