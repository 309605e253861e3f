#include "s3/requests.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/digest.hpp"

namespace assetmv::s3 {

using sigv4::Header;
using sigv4::QueryParam;

S3Request list_objects_v2(std::string bucket, const ListParams& p) {
  S3Request r{"ListObjectsV2", "GET", std::move(bucket), {}, {}, {}, {}};
  r.query.push_back({"list-type", "2"});
  // Keys come back percent-encoded, so any byte (even one XML cannot hold) survives.
  r.query.push_back({"encoding-type", "url"});
  r.query.push_back({"max-keys", std::to_string(p.max_keys)});
  if (!p.prefix.empty()) r.query.push_back({"prefix", p.prefix});
  if (!p.delimiter.empty()) r.query.push_back({"delimiter", p.delimiter});
  if (!p.continuation_token.empty())
    r.query.push_back({"continuation-token", p.continuation_token});
  else if (!p.start_after.empty())
    r.query.push_back({"start-after", p.start_after});
  return r;
}

S3Request head_object(std::string bucket, std::string key) {
  return {"HeadObject", "HEAD", std::move(bucket), std::move(key), {}, {}, {}};
}

S3Request head_bucket(std::string bucket) { return {"HeadBucket", "HEAD", std::move(bucket), {}, {}, {}, {}}; }

S3Request get_object(std::string bucket, std::string key, const GetParams& p) {
  S3Request r{"GetObject", "GET", std::move(bucket), std::move(key), {}, {}, {}};
  if (p.last >= p.first) r.headers.push_back({"range", fmt::format("bytes={}-{}", p.first, p.last)});
  if (!p.if_match.empty()) r.headers.push_back({"if-match", "\"" + p.if_match + "\""});
  return r;
}

S3Request put_object(std::string bucket, std::string key, std::string body, const PutParams& p) {
  S3Request r{"PutObject", "PUT", std::move(bucket), std::move(key), {}, {}, std::move(body)};
  r.headers.push_back({"content-type", p.content_type});
  for (const auto& h : p.headers)
    if (h.name != "content-type") r.headers.push_back({h.name, h.value});
  r.headers.push_back({"content-md5", base64(as_view(md5(r.body)))});
  if (p.if_none_match) r.headers.push_back({"if-none-match", "*"});
  if (!p.if_match.empty()) r.headers.push_back({"if-match", "\"" + p.if_match + "\""});
  return r;
}

namespace {
std::string source_of(const CopyParams& p) { return fmt::format("s3://{}/{}", p.source_bucket, p.source_key); }
}  // namespace

std::string copy_source(const std::string& bucket, const std::string& key) {
  return "/" + bucket + "/" + sigv4::uri_encode(key, true);
}

S3Request copy_object(std::string dest_bucket, CopyParams p) {
  S3Request r{"CopyObject", "PUT", std::move(dest_bucket), std::move(p.dest_key), {}, {}, {}};
  r.source = source_of(p);
  r.headers.push_back({"x-amz-copy-source", copy_source(p.source_bucket, p.source_key)});
  // COPY is S3's default (and RGW's and Swift's): said only when it is REPLACE,
  // which spares ~60 bytes signed and sent on every plain copy.
  if (p.replace_metadata) r.headers.push_back({"x-amz-metadata-directive", "REPLACE"});
  auto sent =
      p.replace_metadata ? with_overrides(std::move(p.replace_headers), p.dest_headers) : std::move(p.dest_headers);
  for (auto& h : sent) r.headers.push_back({std::move(h.name), std::move(h.value)});
  if (!p.if_match.empty()) {
    std::string quoted = "\"" + p.if_match + "\"";
    if (p.legacy_if_match_header) r.headers.push_back({"x-amz-copy-if-match", quoted});
    r.headers.push_back({"x-amz-copy-source-if-match", std::move(quoted)});
  }
  if (p.if_none_match) r.headers.push_back({"if-none-match", "*"});
  return r;
}

std::vector<http::Header> replayable_headers(const std::vector<http::Header>& head) {
  static constexpr std::string_view kKept[] = {
      "content-type",     "cache-control", "content-disposition", "content-encoding",
      "content-language", "expires",       "x-amz-storage-class", "x-amz-website-redirect-location"};
  std::vector<http::Header> out;
  for (const auto& h : head) {
    const bool meta = h.name.rfind("x-amz-meta-", 0) == 0;
    if (meta || std::find(std::begin(kKept), std::end(kKept), h.name) != std::end(kKept)) out.push_back(h);
  }
  return out;
}

std::vector<http::Header> write_headers(const WriteOptions& w) {
  std::vector<http::Header> out;
  if (!w.acl.empty()) out.push_back({"x-amz-acl", w.acl});
  if (!w.sse.empty()) out.push_back({"x-amz-server-side-encryption", w.sse});
  if (!w.sse_kms_key_id.empty()) out.push_back({"x-amz-server-side-encryption-aws-kms-key-id", w.sse_kms_key_id});
  return out;
}

std::vector<http::Header> with_overrides(std::vector<http::Header> base, const std::vector<http::Header>& over) {
  std::erase_if(base, [&](const http::Header& h) {
    return std::any_of(over.begin(), over.end(), [&](const http::Header& o) { return o.name == h.name; });
  });
  base.insert(base.end(), over.begin(), over.end());
  return base;
}

std::vector<http::Header> encryption_headers(const std::vector<http::Header>& head) {
  static constexpr std::string_view kKept[] = {"x-amz-server-side-encryption",
                                               "x-amz-server-side-encryption-aws-kms-key-id",
                                               "x-amz-server-side-encryption-bucket-key-enabled"};
  std::vector<http::Header> out;
  for (const auto& h : head)
    if (std::find(std::begin(kKept), std::end(kKept), h.name) != std::end(kKept)) out.push_back(h);
  return out;
}

bool is_canned_acl(std::string_view acl) {
  static constexpr std::string_view kCanned[] = {
      "private",       "public-read",       "public-read-write",        "authenticated-read",
      "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control"};
  return std::find(std::begin(kCanned), std::end(kCanned), acl) != std::end(kCanned);
}

bool is_archived_class(std::string_view storage_class) {
  return storage_class == "GLACIER" || storage_class == "DEEP_ARCHIVE";
}

bool restore_completed(std::string_view x_amz_restore) {
  return x_amz_restore.find("ongoing-request=\"false\"") != std::string_view::npos;
}

S3Request delete_object(std::string bucket, const ObjectVersion& object) {
  S3Request r{"DeleteObject", "DELETE", std::move(bucket), object.key, {}, {}, {}};
  if (!object.version_id.empty()) r.query.push_back({"versionId", object.version_id});
  return r;
}

bool xml_representable(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || c == 0x7f;  // not in XML 1.0
  });
}

void append_xml_escaped(std::string& out, std::string_view s) {
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
        out += "&#x9;";  // kept exactly, not normalised by the parser
        break;
      case '\n':
        out += "&#xA;";
        break;
      case '\r':
        out += "&#xD;";
        break;
      default:
        out.push_back(ch);
    }
  }
}

std::optional<std::string> xml_escape(std::string_view s) {
  if (!xml_representable(s)) return std::nullopt;
  std::string out;
  out.reserve(s.size() + 16);
  append_xml_escaped(out, s);
  return out;
}

S3Request delete_objects(std::string bucket, const std::vector<ObjectVersion>& objects, bool quiet) {
  std::string body =
      R"(<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
  if (quiet) body += "<Quiet>true</Quiet>";
  for (const auto& o : objects) {
    // Callers route keys that XML cannot carry to DeleteObject; an empty
    // element here would make S3 refuse the whole batch.
    body += "<Object><Key>";
    if (xml_representable(o.key)) append_xml_escaped(body, o.key);
    body += "</Key>";
    if (!o.version_id.empty()) {
      body += "<VersionId>";
      if (xml_representable(o.version_id)) append_xml_escaped(body, o.version_id);
      body += "</VersionId>";
    }
    body += "</Object>";
  }
  body += "</Delete>";
  S3Request r{"DeleteObjects", "POST", std::move(bucket), {}, {{"delete", ""}}, {}, std::move(body)};
  r.headers.push_back({"content-type", "application/xml"});
  r.headers.push_back({"content-md5", base64(as_view(md5(r.body)))});
  return r;
}

S3Request create_multipart_upload(std::string bucket, std::string key, const std::vector<http::Header>& headers,
                                  const std::string& source_etag, const std::vector<Tag>& tags) {
  S3Request r{"CreateMultipartUpload", "POST", std::move(bucket), std::move(key), {{"uploads", ""}}, {}, {}};
  for (const auto& h : headers)
    if (h.name != kSourceEtagHeader) r.headers.push_back({h.name, h.value});  // ours is set below, once
  if (!source_etag.empty()) r.headers.push_back({kSourceEtagHeader, source_etag});
  if (!tags.empty()) r.headers.push_back({"x-amz-tagging", tagging_header(tags)});
  return r;
}

S3Request get_bucket_ownership_controls(std::string bucket) {
  return {"GetBucketOwnershipControls", "GET", std::move(bucket), {}, {{"ownershipControls", ""}}, {}, {}};
}

S3Request get_bucket_versioning(std::string bucket) {
  return {"GetBucketVersioning", "GET", std::move(bucket), {}, {{"versioning", ""}}, {}, {}};
}

S3Request get_object_tagging(std::string bucket, std::string key) {
  return {"GetObjectTagging", "GET", std::move(bucket), std::move(key), {{"tagging", ""}}, {}, {}};
}

S3Request put_object_tagging(std::string bucket, std::string key, const std::vector<Tag>& tags) {
  std::string body =
      R"(<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>)";
  for (const auto& t : tags)
    body += "<Tag><Key>" + xml_escape(t.key).value_or("") + "</Key><Value>" + xml_escape(t.value).value_or("") +
            "</Value></Tag>";
  body += "</TagSet></Tagging>";
  S3Request r{"PutObjectTagging", "PUT", std::move(bucket), std::move(key), {{"tagging", ""}}, {}, std::move(body)};
  r.headers.push_back({"content-type", "application/xml"});
  r.headers.push_back({"content-md5", base64(as_view(md5(r.body)))});
  return r;
}

std::string tagging_header(const std::vector<Tag>& tags) {
  std::string out;
  for (const auto& t : tags) {
    if (!out.empty()) out += '&';
    out += sigv4::uri_encode(t.key, false) + "=" + sigv4::uri_encode(t.value, false);
  }
  return out;
}

S3Request upload_part_copy(std::string dest_bucket, const CopyParams& p, const std::string& upload_id, int part_number,
                           std::uint64_t first, std::uint64_t last) {
  S3Request r{"UploadPartCopy", "PUT", std::move(dest_bucket), p.dest_key, {}, {}, {}};
  r.source = source_of(p);
  r.query.push_back({"partNumber", std::to_string(part_number)});
  r.query.push_back({"uploadId", upload_id});
  r.headers.push_back({"x-amz-copy-source", copy_source(p.source_bucket, p.source_key)});
  // An empty source has no byte 0: without a range the part is all of it.
  if (last >= first) r.headers.push_back({"x-amz-copy-source-range", fmt::format("bytes={}-{}", first, last)});
  if (!p.if_match.empty()) r.headers.push_back({"x-amz-copy-source-if-match", "\"" + p.if_match + "\""});
  return r;
}

S3Request upload_part(std::string bucket, std::string key, const std::string& upload_id, int part_number,
                      std::string body) {
  S3Request r{"UploadPart", "PUT", std::move(bucket), std::move(key), {}, {}, std::move(body)};
  r.query.push_back({"partNumber", std::to_string(part_number)});
  r.query.push_back({"uploadId", upload_id});
  r.headers.push_back({"content-md5", base64(as_view(md5(r.body)))});
  return r;
}

S3Request complete_multipart_upload(std::string bucket, std::string key, const std::string& upload_id,
                                    const std::vector<CompletedPart>& parts, bool if_none_match) {
  std::string body =
      R"(<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
  for (const auto& part : parts)
    body += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>", part.number, part.etag);
  body += "</CompleteMultipartUpload>";
  S3Request r{"CompleteMultipartUpload", "POST", std::move(bucket), std::move(key),
              {{"uploadId", upload_id}}, {},     std::move(body)};
  r.headers.push_back({"content-type", "application/xml"});
  if (if_none_match) r.headers.push_back({"if-none-match", "*"});
  return r;
}

S3Request abort_multipart_upload(std::string bucket, std::string key, const std::string& upload_id) {
  return {"AbortMultipartUpload", "DELETE", std::move(bucket), std::move(key), {{"uploadId", upload_id}}, {}, {}};
}

Address address(const S3Request& r, const Endpoint& ep) {
  Address a;
  const std::string encoded_key = sigv4::uri_encode(r.key, true);
  if (ep.path_style || r.bucket.empty()) {
    a.host = ep.authority();
    a.path = r.bucket.empty() ? "/" : "/" + r.bucket + (r.key.empty() ? "" : "/" + encoded_key);
  } else {
    Endpoint vh = ep;
    vh.host = r.bucket + "." + ep.host;
    a.host = vh.authority();
    a.path = "/" + encoded_key;
  }
  a.url = ep.scheme + "://" + a.host + a.path;
  const auto q = sigv4::canonical_query(r.query);
  if (!q.empty()) a.url += "?" + q;
  return a;
}

http::Request to_http(const S3Request& r, const Bucket& bucket, const sigv4::Credentials& keys,
                      std::chrono::system_clock::time_point now) {
  auto a = address(r, bucket.endpoint);
  sigv4::RequestToSign ts;
  ts.method = r.method;
  ts.path = std::move(a.path);
  ts.query = r.query;
  ts.headers.reserve(r.headers.size() + 4);  // + host, and what sign() adds: date, payload hash, token
  ts.headers = r.headers;
  ts.headers.push_back({"host", std::move(a.host)});
  ts.payload_hash = bucket.unsigned_payload ? std::string(sigv4::kUnsignedPayload)
                    : r.body.empty()        ? std::string(sigv4::kEmptyPayloadHash)
                                            : hex(sha256(r.body));
  auto authz = sigv4::sign(ts, keys, {bucket.endpoint.region, "s3", sigv4::PathMode::S3, now});
  http::Request out;
  out.method = r.method;
  out.url = std::move(a.url);
  out.body = r.body;
  out.headers.reserve(ts.headers.size() + 1);
  for (auto& h : ts.headers) out.headers.push_back({std::move(h.name), std::move(h.value)});
  out.headers.push_back({"authorization", std::move(authz)});
  return out;
}

}  // namespace assetmv::s3
