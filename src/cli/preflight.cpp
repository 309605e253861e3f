#include "cli/preflight.hpp"

#include <fmt/format.h>

#include <optional>
#include <random>

#include "core/log.hpp"

namespace assetmv::cli {

void Checks::add(const std::string& permission, const std::string& operation, const std::string& target,
                 const std::string& answer) {
  list.push_back({{"permission", permission}, {"operation", operation}, {"target", target}, {"answer", answer}});
}

namespace {

// Source and destination must not contain each other: the run would copy
// its own output or delete what it just wrote.
std::optional<std::string> overlap_problem(const Context& c) {
  const bool same_bucket =
      c.source.bucket == c.dest.bucket && c.source_bucket.endpoint.authority() == c.dest_bucket.endpoint.authority();
  if (!same_bucket) return std::nullopt;
  const auto& a = c.source.prefix;
  const auto& b = c.dest.prefix;
  if (a.compare(0, b.size(), b) == 0 || b.compare(0, a.size(), a) == 0)
    return fmt::format("source {} and destination {} overlap (one prefix contains the other)", c.source.to_string(),
                       c.dest.to_string());
  return std::nullopt;
}

// What the usual transport failures of a first request mean for the operator.
std::string transport_hint(const std::string& code, const std::string& scheme) {
  if (code == "curl60") return " (the certificate is not trusted: --ca-file trusts a private CA)";
  if (code == "curl35" && scheme == "https") return " (no TLS handshake: is the endpoint plain HTTP? use http://)";
  if ((code == "curl52" || code == "curl56") && scheme == "http")
    return " (no HTTP answer: is the endpoint TLS? use https://)";
  return {};
}

// Names a probe key that no one else uses, so probing it touches nothing real.
std::string probe_key(const std::string& prefix) {
  std::random_device rd;
  return fmt::format("{}.assetmv-preflight-{:08x}{:08x}", prefix, rd(), rd());
}

// A probe's failure: a denial names the permission, anything else says the
// permission could not be checked.
Result<void> permission_error(const Error& e, const std::string& what) {
  if (e.kind == ErrorKind::AccessDenied)
    return fail(ErrorKind::AccessDenied, e.code, fmt::format("no permission to {}: {}", what, e.describe()));
  return fail(e.kind, e.code, fmt::format("cannot check the permission to {}: {}", what, e.describe()));
}

std::string answer_of(const Error& e) {
  return e.http_status > 0 ? fmt::format("{} {}", e.http_status, e.code) : e.code;
}

// Proves, without changing any object, that the credentials may do what the
// run will do (docs/privileges.md): read a source object, write and read
// under the destination prefix, delete under the source prefix.
// A HEAD of an absent key proves nothing: without an unconditional
// s3:ListBucket the store answers 403 rather than 404, so only listed keys
// are read.
// Copies carry the source's tags: reading them is s3:GetObjectTagging on a
// listed legacy object. A store without the tagging API (501) has no tags to
// carry. Setting them (s3:PutObjectTagging) cannot be proved without a write:
// on a key that does not exist, a policy granting ListBucket by prefix only
// makes the store answer 403 whatever the grant (docs/privileges.md).
Result<void> probe_tagging(Context& c, const std::optional<std::string>& source_key, Checks& checks) {
  auto& s3 = *c.s3;
  if (source_key) {
    auto t = s3::wait<std::vector<s3::Tag>>(*c.loop,
                                            [&](auto cb) { s3.get_object_tagging(c.source_bucket, *source_key, cb); });
    if (!t && t.error().code != "NotImplemented" && t.error().kind != ErrorKind::NotFound)
      return permission_error(t.error(), "read the tags of " + c.source.bucket + "/" + *source_key +
                                             " (s3:GetObjectTagging: copies carry the source's tags)");
    checks.add("s3:GetObjectTagging", "GetObjectTagging", c.source.bucket + "/" + *source_key,
               t ? "200" : answer_of(t.error()));
  }
  return {};
}

// What every copy carries (--acl, --sse): a bucket that enforces bucket-owner
// ownership refuses any ACL but bucket-owner-full-control, said up front; then
// an upload started with the same headers and aborted proves the ACL
// permission (s3:PutObjectAcl) and the KMS key's use, writing nothing.
Result<void> probe_write_options(Context& c, const s3::WriteOptions& w, const std::string& dest_probe, Checks& checks) {
  auto& s3 = *c.s3;
  if (!w.acl.empty()) {
    auto own = s3::wait<std::string>(*c.loop, [&](auto cb) { s3.get_bucket_ownership_controls(c.dest_bucket, cb); });
    if (own && *own == "BucketOwnerEnforced" && w.acl != "bucket-owner-full-control")
      return fail(ErrorKind::Fatal, "AccessControlListNotSupported",
                  fmt::format("--acl {}: bucket {} enforces bucket-owner ownership (BucketOwnerEnforced), so it "
                              "refuses object ACLs; grant access with its bucket policy and drop --acl",
                              w.acl, c.dest.bucket));
    checks.add("object ownership", "GetBucketOwnershipControls", c.dest.bucket,
               own ? "200 " + *own : answer_of(own.error()) + " (not said: the upload probe decides)");
  }
  const auto headers = s3::write_headers(w);
  if (headers.empty()) return {};
  auto u = s3::wait<bool>(*c.loop, [&](auto cb) { s3.probe_upload(c.dest_bucket, dest_probe, headers, cb); });
  if (!u)
    return permission_error(
        u.error(), fmt::format("write under {} with{}{}", c.dest.to_string(), w.acl.empty() ? "" : " --acl " + w.acl,
                               w.sse.empty() ? "" : " --sse " + w.sse));
  checks.add(w.acl.empty() ? "s3:PutObject with encryption" : "s3:PutObjectAcl",
             "CreateMultipartUpload (with the copies' ACL and encryption headers) then AbortMultipartUpload",
             c.dest.bucket + "/" + dest_probe, "200 (an upload started and aborted: nothing written)");
  return {};
}

// On a versioned legacy bucket a delete only adds a delete marker: the
// copied version stays, billed and readable by its version id, unless each
// delete names it (--delete-versions). Said up front; not knowing
// (s3:GetBucketVersioning denied) is said too, not fatal.
void versioning(Context& c, bool delete_versions, Checks& checks) {
  auto v = s3::wait<std::string>(*c.loop, [&](auto cb) { c.s3->get_bucket_versioning(c.source_bucket, cb); });
  checks.legacy_versioning = v ? *v : "unknown";
  checks.add("s3:GetBucketVersioning", "GetBucketVersioning", c.source.bucket,
             v ? "200 " + (v->empty() ? std::string("never versioned") : *v) : answer_of(v.error()));
  if (v && !v->empty() && delete_versions)
    logging::info("preflight.versioned_legacy",
                  fmt::format("{} is versioned ({}): with --delete-versions each delete removes exactly the version "
                              "copied; other versions of a key stay, and an older one becomes current again",
                              c.source.bucket, *v));
  else if (!v)
    logging::warn("preflight.versioning_unknown",
                  fmt::format("cannot tell whether {} is versioned ({}): if it is, each delete leaves the copied "
                              "version behind, billed and readable by its version id",
                              c.source.bucket, v.error().describe()));
  else if (!v->empty())
    logging::warn("preflight.versioned_legacy",
                  fmt::format("{} is versioned ({}): each delete adds a delete marker and leaves the copied version "
                              "behind, billed and readable by its version id; expire noncurrent versions with a "
                              "lifecycle rule once the run is verified",
                              c.source.bucket, *v));
}

// A HEAD of an object the run will read: s3:GetObject (a 404 proves it too).
Result<void> probe_read(Context& c, const s3::Bucket& bucket, const std::string& key, Checks& checks) {
  auto h = s3::wait<s3::ObjectInfo>(*c.loop, [&](auto cb) { c.s3->head_object(bucket, key, cb); });
  if (!h && h.error().kind != ErrorKind::NotFound)
    return permission_error(h.error(), "read " + bucket.name + "/" + key);
  checks.add("s3:GetObject", "HeadObject", bucket.name + "/" + key, h ? "200" : answer_of(h.error()));
  return {};
}

// A PUT conditional on an ETag that cannot exist is refused (412, or 404
// where the key is absent) after the permission check and before any
// write: s3:PutObject on the destination, proved without writing.
Result<void> probe_write(Context& c, const std::string& dest_probe, Checks& checks) {
  s3::PutParams put;
  put.if_match = std::string(32, '0');
  auto w = s3::wait<std::string>(*c.loop, [&](auto cb) { c.s3->put_object(c.dest_bucket, dest_probe, "", put, cb); });
  if (w) {
    logging::warn("preflight.probe_written",
                  "the store ignored If-Match and wrote the empty probe object; delete it when convenient",
                  {{"key", c.dest.bucket + "/" + dest_probe}});
  } else if (w.error().code == "NotImplemented") {
    // Swift's s3api refuses any conditional PUT before it checks access:
    // prove the write with an upload started and aborted instead, and copy
    // without If-None-Match.
    checks.conditional_writes = false;
    checks.add("conditional writes", "PutObject If-Match on an impossible ETag", c.dest.bucket + "/" + dest_probe,
               answer_of(w.error()) + " (the store refuses conditional PUTs: copies go without If-None-Match)");
    logging::warn("preflight.no_conditional_writes",
                  "the destination store refuses conditional PUTs (If-None-Match); copies go without it, so a "
                  "destination object created by someone else after the listing could be overwritten by its "
                  "legacy twin",
                  {{"endpoint", c.dest_bucket.endpoint.authority()}});
    auto u = s3::wait<bool>(*c.loop, [&](auto cb) { c.s3->probe_upload(c.dest_bucket, dest_probe, {}, cb); });
    if (!u) return permission_error(u.error(), "write under " + c.dest.to_string());
    checks.add("s3:PutObject", "CreateMultipartUpload then AbortMultipartUpload", c.dest.bucket + "/" + dest_probe,
               "200 (an upload started and aborted: nothing written)");
    return {};
  } else if (w.error().kind != ErrorKind::PreconditionFailed && w.error().kind != ErrorKind::NotFound) {
    return permission_error(w.error(), "write under " + c.dest.to_string());
  }
  checks.add(
      "s3:PutObject", "PutObject If-Match on an impossible ETag", c.dest.bucket + "/" + dest_probe,
      w ? "200 (written: the store ignored If-Match)" : answer_of(w.error()) + " (refused as meant: nothing written)");
  return {};
}

// Deleting a key that does not exist changes nothing (on a versioned
// bucket it leaves a delete marker for that never-existing key). Deletes
// by version id need s3:DeleteObjectVersion: the probe then names the
// "null" version of that key, which proves it and leaves no marker.
Result<void> probe_delete(Context& c, const PreflightNeeds& needs, Checks& checks) {
  versioning(c, needs.delete_versions, checks);
  const bool by_version = needs.delete_versions && checks.legacy_versioning != "";
  const std::string src_probe = probe_key(c.source.prefix);
  auto d = s3::wait<s3::DeleteResult>(*c.loop, [&](auto cb) {
    c.s3->delete_objects(c.source_bucket, {{src_probe, by_version ? "null" : ""}}, cb);
  });
  if (!d) return permission_error(d.error(), "delete under " + c.source.to_string());
  if (!d->failed.empty()) {
    const auto& f = d->failed.front();
    return fail(f.code == "AccessDenied" ? ErrorKind::AccessDenied : ErrorKind::Fatal, f.code,
                fmt::format("no permission to delete under {}: {}: {}", c.source.to_string(), f.code, f.message));
  }
  const bool multi = c.s3->capabilities(c.source_bucket).multi_delete;
  checks.add(by_version ? "s3:DeleteObjectVersion" : "s3:DeleteObject",
             fmt::format("{} of a never-existing key{}", multi ? "DeleteObjects" : "DeleteObject",
                         by_version ? "'s null version" : ""),
             c.source.bucket + "/" + src_probe,
             multi ? "200 (nothing existed, nothing deleted)"
                   : "deleted nothing (the store has no DeleteObjects: one DeleteObject per key)");
  return {};
}

// CopyObject reads its source (s3:GetObject on the legacy bucket), writes
// the destination, reads copies back; the deletes last.
Result<void> probe_permissions(Context& c, const std::optional<std::string>& source_key,
                               const std::optional<std::string>& dest_key, const PreflightNeeds& needs,
                               Checks& checks) {
  if (source_key)
    if (auto r = probe_read(c, c.source_bucket, *source_key, checks); !r) return r;
  const std::string dest_probe = probe_key(c.dest.prefix);
  if (auto r = probe_write(c, dest_probe, checks); !r) return r;
  if (auto r = probe_write_options(c, needs.write, dest_probe, checks); !r) return r;
  if (auto r = probe_tagging(c, source_key, checks); !r) return r;
  if (dest_key)
    if (auto r = probe_read(c, c.dest_bucket, *dest_key, checks); !r) return r;
  if (!needs.deletes) return {};
  return probe_delete(c, needs, checks);
}

}  // namespace

namespace {

// A store known to lack part of S3 (GCS's XML API) is said once, with what
// the run does instead; one that turns out to lack it says so when it does.
void known_gaps(const Context& c) {
  for (const auto* b : {&c.source_bucket, &c.dest_bucket}) {
    const auto caps = c.s3->capabilities(*b);
    if (caps == s3::Capabilities{} || (b == &c.dest_bucket && c.dest_bucket.endpoint == c.source_bucket.endpoint))
      continue;
    logging::info("preflight.store_lacks",
                  fmt::format("the store at {} has {}{}{}", b->endpoint.authority(),
                              caps.multi_delete ? "" : "no DeleteObjects (deletes go one key per request); ",
                              caps.part_copy ? "" : "no UploadPartCopy (large objects stream through assetmv); ",
                              caps.tagging ? "" : "no object tagging (no tags are read or written)"),
                  {{"endpoint", b->endpoint.authority()},
                   {"multi_object_delete", caps.multi_delete},
                   {"upload_part_copy", caps.part_copy},
                   {"object_tagging", caps.tagging}});
  }
}

}  // namespace

Result<void> preflight(Context& c, engine::DbSession& db, PreflightNeeds needs, Checks& checks) {
  if (auto p = overlap_problem(c)) return fail(ErrorKind::Fatal, "Overlap", *p);
  known_gaps(c);
  if (auto r = db.connect(); !r) return r;
  // Once connected, the checks are statements like any of the run's: a
  // connection lost under them is retried, not called a misconfiguration.
  if (auto r = db.run("checking the table", [](db::PathTable& t) { return t.check(); }); !r) return r;
  if (auto r = db.run("checking the grants",
                      [&](db::PathTable& t) { return t.check_privileges(needs.writes || needs.updates_rows); });
      !r)
    return r;
  // One cheap listing per bucket proves the bucket exists, the endpoint
  // answers S3 and the credentials are accepted.
  const std::pair<const s3::Bucket*, const s3::Location*> targets[] = {{&c.source_bucket, &c.source},
                                                                       {&c.dest_bucket, &c.dest}};
  std::optional<std::string> listed[2];
  for (const auto& target : targets) {
    const s3::Bucket& bucket = *target.first;
    const s3::Location& loc = *target.second;
    s3::ListParams p;
    p.prefix = loc.prefix;
    p.max_keys = 1;
    auto page = s3::wait<s3::ListPage>(*c.loop, [&](auto cb) { c.s3->list_objects_v2(bucket, p, cb); });
    if (!page) {
      // A scheme that does not match the port is the operator's to fix, not
      // a store to wait for: refused as configuration (exit 2), not exit 4.
      const auto hint = transport_hint(page.error().code, bucket.endpoint.scheme);
      return fail(hint.empty() ? page.error().kind : ErrorKind::Fatal, page.error().code,
                  fmt::format("cannot list {}: {}{}", loc.to_string(), page.error().describe(), hint));
    }
    if (!page->objects.empty()) listed[&bucket == &c.source_bucket ? 0 : 1] = page->objects.front().key;
    checks.add("s3:ListBucket", "ListObjectsV2", loc.to_string(), "200");
  }
  if (needs.writes) return probe_permissions(c, listed[0], listed[1], needs, checks);
  return {};
}

}  // namespace assetmv::cli
