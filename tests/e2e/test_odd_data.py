"""Odd data, handled and reported: zero-byte and non-PNG objects, objects
over the single-copy limit (a small --multipart-threshold stands in for
5 GiB) with a resume after the copy, keys at S3's 1,024-byte limit, keys with
every character class that needs encoding, and rows whose path is the legacy
prefix with trailing spaces or another case."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import World, body_for  # noqa: E402

MIB = 1024 * 1024
# Names needing encoding in a URL path, a signature, a copy source or XML:
# reserved and unreserved punctuation, XML metacharacters, 2-, 3- and 4-byte
# UTF-8, nested "folders" and dot segments, doubled and trailing slashes.
ENCODING_NAMES = ["sp ace.png", "hash#.png", "question?.png", "pct%2F.png", "amp&lt;.png", "lt<gt>.png",
                  "quote\"apos'.png", "back\\slash.png", "caret^grave`.png", "brace{pipe|}.png", "star*at@.png",
                  "dollar$bang!.png", "colon:semi;.png", "comma,eq=plus+.png", "tilde~under_dash-.png",
                  "é-ñ-ü.png", "日本語.png", "emoji-😀.png", "a/b/c.png", "./dot.png", "../dotdot.png",
                  "double//slash.png", "trailing-space.png ", " leading-space.png", "tab\tinside.png"]


class OddDataTest(unittest.TestCase):
    def world(self, name):
        w = World(name)
        self.addCleanup(w.close)
        return w

    def test_odd_objects_keys_and_rows(self):
        w = self.world("odd")
        w.seed(50, modern_share=0)
        lp, dp = w.legacy_prefix, w.dest_prefix
        odd = {"empty.png": b"", "not-a-png.gif": b"GIF89a\x01\x00\x01\x00" + bytes(range(256)),
               "text.png": b"this is text, not a PNG"}
        for n in ENCODING_NAMES:
            odd[n] = body_for(n)
        # The longest legacy key whose destination still fits in 1,024 bytes,
        # and one byte more: that one cannot be copied under the longer prefix.
        extra = len(dp) - len(lp)
        fits = "k" * (1024 - len(lp) - extra - 4) + ".png"
        too_long = "l" * (1024 - len(lp) - 4) + ".png"
        odd[fits] = b"fits"
        for name, body in odd.items():
            w.put(w.legacy_bucket, lp + name, body)
            w.insert_row(lp + name)
        w.put(w.legacy_bucket, lp + too_long, b"too long")
        too_long_id = w.insert_row(lp + too_long)
        w.conflicts.add(too_long)  # stays where it is, reported
        # Rows that look legacy but are not the legacy prefix's keys.
        first = w.legacy_names(1)[0]
        spaced_id = w.insert_row(lp + first + "  ")   # trailing spaces: no such object
        w.dangling.add(first + "  ")
        upper_id = w.insert_row(lp.upper() + first)   # other case: another prefix, untouched
        before = w.snapshot()

        rc, report, err = w.run("migrate")
        self.assertEqual(rc, 1, err[-3000:])  # the too-long key and the spaced row need a human
        got = w.snapshot()
        self.assertEqual(got, w.expected_after(before))
        for name, body in odd.items():
            obj = w.s3.get_object(Bucket=w.dest_bucket, Key=dp + name)
            self.assertEqual(obj["Body"].read(), body, name)
        self.assertEqual(w.s3.head_object(Bucket=w.dest_bucket, Key=dp + "not-a-png.gif")["ContentType"], "image/png")
        self.assertEqual(got["rows"][spaced_id], lp + first + "  ")
        self.assertEqual(got["rows"][upper_id], lp.upper() + first)
        items = {(i["kind"], tuple(i.get("row_ids", []))): i for i in report["needs_human"]["items"]}
        self.assertIn(("dangling_row", (spaced_id,)), items)
        long_item = [i for i in report["needs_human"]["items"] if too_long_id in i.get("row_ids", [])]
        self.assertEqual(len(long_item), 1, report["needs_human"])
        self.assertEqual(long_item[0]["kind"], "key_too_long")
        self.assertIn("1024-byte limit", long_item[0]["message"])
        self.assertEqual(report["counts"]["failures"], 0)

    def test_multipart_copies_and_resume_after_the_copy(self):
        """Objects over --multipart-threshold go through UploadPartCopy; a run
        that stops after such a copy and before its rows resumes without
        calling the copy a conflict."""
        w = self.world("multipart")
        w.seed(20, modern_share=0)
        lp, dp = w.legacy_prefix, w.dest_prefix
        big = {"big-6m.png": os.urandom(6 * MIB), "big-11m.png": os.urandom(11 * MIB)}
        for name, body in big.items():
            w.put(w.legacy_bucket, lp + name, body)
            w.insert_row(lp + name)
        before = w.snapshot()
        threshold = ["--multipart-threshold", str(5 * MIB)]

        # A first run that copies everything and stops before the rows move:
        # --keep-source, then the rows put back as a crash before the commit leaves them.
        rc, _, err = w.run("migrate", "--keep-source", *threshold)
        self.assertEqual(rc, 0, err[-3000:])
        for name in big:
            etag = w.s3.head_object(Bucket=w.dest_bucket, Key=dp + name)["ETag"].strip('"')
            self.assertRegex(etag, r"-\d+$", "not a multipart copy")
            head = w.s3.head_object(Bucket=w.dest_bucket, Key=dp + name)
            self.assertEqual(head["ContentType"], "image/png")  # the parts carry none: read from the source
        with w.db.cursor() as c:
            for rid, path in before["rows"].items():
                c.execute(f'UPDATE "{w.table}" SET path = %s WHERE id = %s', (path, rid))

        rc, report, err = w.run("migrate", *threshold)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["conflicts"], 0)
        got = w.snapshot()
        want = w.expected_after(before)
        for name in big:  # multipart ETags differ from the source's MD5
            want["dest"][dp + name] = got["dest"][dp + name]
            self.assertEqual(w.s3.get_object(Bucket=w.dest_bucket, Key=dp + name)["Body"].read(), big[name])
        self.assertEqual(got, want)

    def test_every_header_metadata_and_tag_arrives_on_both_copy_paths(self):
        """Issue 13: an object carries its representation headers, user
        metadata and tags through the single CopyObject and, where S3 carries
        none of them, through UploadPartCopy (set on CreateMultipartUpload)."""
        w = self.world("headers")
        w.seed(5, modern_share=0)  # makes the table; the objects under test are added below
        lp, dp = w.legacy_prefix, w.dest_prefix
        extra = {"CacheControl": "public, max-age=86400", "ContentDisposition": 'inline; filename="a b.png"',
                 "ContentEncoding": "identity", "ContentLanguage": "en-GB", "ContentType": "image/png",
                 "Expires": __import__("datetime").datetime(2030, 1, 2, 3, 4, 5,
                                                            tzinfo=__import__("datetime").timezone.utc),
                 "Metadata": {"owner": "user-42", "origin": "upload v2"}}
        tags = "team=avatars&cost%20center=web%2Fcdn"
        bodies = {"small.png": os.urandom(64 * 1024), "big-6m.png": os.urandom(6 * MIB)}
        for name, body in bodies.items():
            w.s3.put_object(Bucket=w.legacy_bucket, Key=lp + name, Body=body, Tagging=tags, **extra)
            w.insert_row(lp + name)
        fields = ["CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "ContentType",
                  "Expires", "Metadata", "ContentLength"]
        source = {}
        for name in bodies:
            h = w.s3.head_object(Bucket=w.legacy_bucket, Key=lp + name)
            t = w.s3.get_object_tagging(Bucket=w.legacy_bucket, Key=lp + name)["TagSet"]
            source[name] = ({f: h.get(f) for f in fields}, sorted((x["Key"], x["Value"]) for x in t))
        self.assertEqual(source["small.png"][1], [("cost center", "web/cdn"), ("team", "avatars")])
        rc, report, err = w.run("migrate", "--multipart-threshold", str(5 * MIB))
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(report["counts"]["objects_copied"], 7)
        for name, body in bodies.items():
            h = w.s3.head_object(Bucket=w.dest_bucket, Key=dp + name)
            t = w.s3.get_object_tagging(Bucket=w.dest_bucket, Key=dp + name)["TagSet"]
            meta = dict(h.get("Metadata", {}))
            if name.startswith("big"):
                self.assertRegex(h["ETag"], r"-\d+\"?$", "not a multipart copy")
                self.assertIn("assetmv-source-etag", meta)  # ours, proving the copy identical later
                meta.pop("assetmv-source-etag")
            got = ({**{f: h.get(f) for f in fields}, "Metadata": meta}, sorted((x["Key"], x["Value"]) for x in t))
            print(f"\n  {name}: {got[0]} tags {got[1]}", file=sys.stderr, end="")
            self.assertEqual(got, source[name], f"{name} lost what it carried")
            self.assertEqual(w.s3.get_object(Bucket=w.dest_bucket, Key=dp + name)["Body"].read(), body)


if __name__ == "__main__":
    unittest.main()
