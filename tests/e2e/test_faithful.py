"""Faithful copies on real-world buckets (issue 13), against the real gateway:
storage classes kept (the gateway has STANDARD_IA and GLACIER besides
STANDARD, scripts/rgw.sh), an archived object reported with its rows
untouched, and the operator's ACL and encryption on every copy, through the
single CopyObject and the multipart path alike."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import ASSETMV, World  # noqa: E402

MIB = 1024 * 1024
KMS_KEY = "assetmv-test-key"  # the gateway's built-in test key (scripts/rgw.sh)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@unittest.skipUnless(os.environ.get("ASSETMV_S3_IMPLEMENTATION", "rgw") == "rgw",
                     "storage classes and KMS keys are configured on the Ceph gateway")
class FaithfulTest(unittest.TestCase):
    def world(self, name):
        w = World(name)
        self.addCleanup(w.close)
        w.seed(5, modern_share=0)  # makes the table; the objects under test are added below
        return w

    def put(self, w, name, size, **kw):
        w.s3.put_object(Bucket=w.legacy_bucket, Key=w.legacy_prefix + name, Body=os.urandom(size),
                        ContentType="image/png", **kw)
        w.insert_row(w.legacy_prefix + name)

    def dest_classes(self, w):
        out = {}
        for page in w.s3.get_paginator("list_objects_v2").paginate(Bucket=w.dest_bucket, Prefix=w.dest_prefix):
            for o in page.get("Contents", []):
                out[o["Key"][len(w.dest_prefix):]] = o.get("StorageClass", "STANDARD")
        return out

    def test_storage_classes_are_kept_on_both_copy_paths_or_set_by_the_option(self):
        w = self.world("classes")
        for name, size, sc in [("ia.png", 1024, "STANDARD_IA"), ("big-ia.png", 6 * MIB, "STANDARD_IA"),
                               ("std.png", 1024, "STANDARD"), ("big-std.png", 6 * MIB, "STANDARD")]:
            self.put(w, name, size, StorageClass=sc)
        rc, report, err = w.run("migrate", "--multipart-threshold", str(5 * MIB))
        self.assertEqual(rc, 0, err[-3000:])
        classes = self.dest_classes(w)
        print(f"\n  kept: {classes}", file=sys.stderr, end="")
        self.assertEqual({k: classes[k] for k in ["ia.png", "big-ia.png", "std.png", "big-std.png"]},
                         {"ia.png": "STANDARD_IA", "big-ia.png": "STANDARD_IA", "std.png": "STANDARD",
                          "big-std.png": "STANDARD"})
        self.assertEqual(report["writes"]["storage_class"], "as listed")

        w2 = self.world("classopt")
        for name, size in [("a.png", 1024), ("big.png", 6 * MIB)]:
            self.put(w2, name, size)
        rc, report, err = w2.run("migrate", "--multipart-threshold", str(5 * MIB), "--storage-class", "STANDARD_IA")
        self.assertEqual(rc, 0, err[-3000:])
        classes = self.dest_classes(w2)
        self.assertEqual(set(classes.values()), {"STANDARD_IA"}, classes)

    def test_an_archived_object_is_reported_and_its_rows_stay(self):
        # The gateway lists GLACIER as AWS does but cannot archive: what the
        # engine decides from the listing and the HEAD (no x-amz-restore) is
        # what is under test; a real archive would refuse the copy besides.
        w = self.world("archived")
        self.put(w, "frozen.png", 1024, StorageClass="GLACIER")
        self.put(w, "warm.png", 1024)
        lp, dp = w.legacy_prefix, w.dest_prefix
        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])
        c = report["counts"]
        self.assertEqual((c["archived_objects"], c["failures"], c["conflicts"]), (1, 0, 0), c)
        items = [i for i in report["needs_human"]["items"] if i["kind"] == "archived"]
        self.assertEqual([i["key"] for i in items], [lp + "frozen.png"])
        print(f"\n  archived: {items[0]['message']}", file=sys.stderr, end="")
        self.assertIn("restore", items[0]["message"])
        rows = w.rows()
        self.assertIn(lp + "frozen.png", rows.values())
        self.assertIn(dp + "warm.png", rows.values())
        self.assertIn(lp + "frozen.png", w.objects(w.legacy_bucket))
        self.assertNotIn(dp + "frozen.png", w.objects(w.dest_bucket))
        # A second run reports it again and changes nothing more.
        rc, report, err = w.run("migrate")
        self.assertEqual((rc, report["counts"]["archived_objects"]), (1, 1), err[-3000:])
        self.assertEqual(w.rows(), rows)

    def test_acl_and_kms_encryption_arrive_on_both_copy_paths(self):
        w = self.world("aclsse")
        for name, size in [("small.png", 64 * 1024), ("big.png", 6 * MIB), ("empty.png", 0)]:
            self.put(w, name, size)
        # Pinned: Ceph RGW 16 stores a CopyObject unencrypted whatever its
        # headers say (AWS encrypts it), hence every copy through the
        # multipart path under --sse off AWS. When this fails, RGW was fixed.
        src = w.legacy_prefix + "small.png"
        w.s3.copy_object(Bucket=w.dest_bucket, Key=w.tag + "/pin-copy", CopySource={"Bucket": w.legacy_bucket,
                         "Key": src}, ServerSideEncryption="aws:kms", SSEKMSKeyId=KMS_KEY)
        self.assertIsNone(w.s3.head_object(Bucket=w.dest_bucket, Key=w.tag + "/pin-copy").get("ServerSideEncryption"))
        w.s3.delete_object(Bucket=w.dest_bucket, Key=w.tag + "/pin-copy")
        rc, report, err = w.run("migrate", "--multipart-threshold", str(5 * MIB), "--acl", "public-read",
                                "--sse", "aws:kms", "--sse-kms-key-id", KMS_KEY)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertIn('"config.sse_multipart"', err)
        self.assertEqual(report["counts"]["objects_copied"], 8)
        checks = {c["permission"]: c for c in report["preflight"]["checks"]}
        self.assertIn("s3:PutObjectAcl", checks)  # the upload probe carried the ACL and the key
        self.assertIn("object ownership", checks)
        self.assertIn("s3:GetObjectTagging", checks)
        for key in w.objects(w.dest_bucket):  # the seeded ones too
            h = w.s3.head_object(Bucket=w.dest_bucket, Key=key)
            grants = w.s3.get_object_acl(Bucket=w.dest_bucket, Key=key)["Grants"]
            public = [g["Permission"] for g in grants if g["Grantee"].get("URI") == ALL_USERS]
            print(f"\n  {key}: sse {h.get('ServerSideEncryption')} key {h.get('SSEKMSKeyId')} public {public}",
                  file=sys.stderr, end="")
            self.assertEqual((h.get("ServerSideEncryption"), h.get("SSEKMSKeyId")), ("aws:kms", KMS_KEY), key)
            self.assertEqual(public, ["READ"], key)

    def versioned_world(self, name):
        """20 legacy objects with rows in a bucket of their own, versioning on."""
        w = World(name, legacy_bucket="v-" + __import__("uuid").uuid4().hex[:12])
        self.addCleanup(w.close)
        w.s3.create_bucket(Bucket=w.legacy_bucket)
        w.s3.put_bucket_versioning(Bucket=w.legacy_bucket, VersioningConfiguration={"Status": "Enabled"})
        w.seed(20, modern_share=0)
        return w

    def test_a_versioned_legacy_bucket_is_said_and_its_versions_remain(self):
        # Without --delete-versions a delete on a versioned bucket adds a
        # marker: the report and the log must say the copied versions are
        # still there.
        w = self.versioned_world("versioned")
        legacy = w.legacy_bucket
        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["legacy_objects_deleted"], 20)
        self.assertEqual((report["legacy_versioning"], report["legacy_versions_remain"]), ("Enabled", True))
        self.assertIn('"preflight.versioned_legacy"', err)
        self.assertEqual(w.s3.list_objects_v2(Bucket=legacy, Prefix=w.legacy_prefix)["KeyCount"], 0)
        v = w.s3.list_object_versions(Bucket=legacy, Prefix=w.legacy_prefix)
        print(f"\n  versioned legacy: {len(v.get('Versions', []))} versions and "
              f"{len(v.get('DeleteMarkers', []))} delete markers left", file=sys.stderr, end="")
        markers = [m for m in v.get("DeleteMarkers", []) if ".assetmv-preflight-" not in m["Key"]]
        self.assertEqual((len(v.get("Versions", [])), len(markers)), (20, 20))  # + the delete probe's marker

        # A bucket never versioned says so, and nothing remains.
        w2 = self.world("unversioned")
        rc, report, err = w2.run("migrate")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual((report["legacy_versioning"], report["legacy_versions_remain"]), ("", False))
        self.assertNotIn('"preflight.versioned_legacy"', err)

    def test_delete_versions_removes_exactly_the_copied_versions(self):
        w = self.versioned_world("delversions")
        legacy, lp = w.legacy_bucket, w.legacy_prefix
        # Versions that are not the copy's: an older version of a migrated
        # key, and a key outside the legacy prefix with two versions.
        rewritten = w.legacy_names(1)[0]
        w.s3.put_object(Bucket=legacy, Key=lp + rewritten, Body=os.urandom(300), ContentType="image/png")
        other = f"{w.tag}/other/keep.png"
        for _ in range(2):
            w.s3.put_object(Bucket=legacy, Key=other, Body=os.urandom(100), ContentType="image/png")

        def versions(prefix):
            v = w.s3.list_object_versions(Bucket=legacy, Prefix=prefix)
            return ({(x["Key"], x["VersionId"]) for x in v.get("Versions", [])},
                    [m for m in v.get("DeleteMarkers", []) if ".assetmv-preflight-" not in m["Key"]])

        before, _ = versions(w.tag + "/")
        current = {x["Key"]: x["VersionId"] for x in w.s3.list_object_versions(Bucket=legacy, Prefix=lp)["Versions"]
                   if x["IsLatest"]}
        self.assertEqual(len(before), 20 + 1 + 2)
        rc, report, err = w.run("migrate", "--delete-versions")
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["legacy_objects_deleted"], 20)
        self.assertEqual((report["legacy_versioning"], report["legacy_versions_remain"]), ("Enabled", False))
        self.assertTrue(any(c["permission"] == "s3:DeleteObjectVersion" for c in report["preflight"]["checks"]))
        after, markers = versions(w.tag + "/")
        print(f"\n  --delete-versions: {len(before)} versions before, {len(after)} after, {len(markers)} delete "
              f"markers", file=sys.stderr, end="")
        self.assertEqual(markers, [])  # removed, not hidden
        self.assertEqual(after, before - set(current.items()))  # exactly the copied versions went
        # The older version of the rewritten key is current again: not the
        # copy's content, so it stays for a human (verify shows it).
        self.assertEqual(w.s3.list_objects_v2(Bucket=legacy, Prefix=lp)["KeyCount"], 1)
        dest = w.objects(w.dest_bucket)
        self.assertEqual(len([k for k in dest if k.startswith(w.dest_prefix)]), 20)

    def test_write_options_that_cannot_work_are_refused_at_the_start(self):
        w = self.world("writeopts")
        before = w.snapshot()
        for argv, expect in [(["--acl", "public"], "not a canned ACL"),
                             (["--sse", "AES256", "--sse-kms-key-id", "k"], "needs --sse aws:kms"),
                             (["--sse", "aws:kms", "--sse-kms-key-id", "no-such-key"], "--sse aws:kms"),
                             (["--storage-class", "standard ia"], "storage class")]:
            p = subprocess.run([ASSETMV, "migrate", *w.args(), "--progress", "never", *argv], capture_output=True,
                               text=True, timeout=120)
            print(f"\n  {' '.join(argv)}: exit {p.returncode}: {p.stderr.strip().splitlines()[-1][:200]}",
                  file=sys.stderr, end="")
            self.assertEqual(p.returncode, 2, p.stderr[-2000:])
            self.assertIn(expect.lower(), p.stderr.lower())
        self.assertEqual(w.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
