// S3 request builders: pure functions from an operation's parameters to an
// unsigned request description, and one function that turns a description
// into a signed HTTP request for a bucket at an instant. No I/O, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/http.hpp"
#include "s3/location.hpp"
#include "s3/parsers.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::s3 {

inline constexpr int kMaxListKeys = 1000;            // S3 returns at most 1,000 keys per ListObjectsV2 page
inline constexpr std::size_t kMaxDeleteKeys = 1000;  // S3 DeleteObjects limit
inline constexpr std::uint64_t kMaxSingleCopyBytes = 5ULL << 30;  // CopyObject is atomic up to 5 GiB
inline constexpr int kMaxParts = 10'000;                          // multipart upload part limit
inline constexpr std::uint64_t kMinPartBytes = 5ULL << 20;        // every part but the last

// One S3 operation, before addressing and signing.
struct S3Request {
  std::string operation;  // "ListObjectsV2", "CopyObject", ...: for stats and messages
  std::string method;
  std::string bucket;
  std::string key;  // raw; empty for bucket-level operations
  std::vector<sigv4::QueryParam> query;
  std::vector<sigv4::Header> headers;  // signed along with host and x-amz-*
  std::string body;
  // A copy's source as s3://BUCKET/KEY (raw key), empty for other operations:
  // its errors name what was read, not only what was written.
  std::string source = {};
};

struct ListParams {
  std::string prefix;
  std::string start_after;         // raw key; ignored by S3 once a continuation token is given
  std::string continuation_token;  // opaque, from the previous page
  int max_keys = kMaxListKeys;
  std::string delimiter;
};

struct CopyParams {
  std::string source_bucket;
  std::string source_key;
  std::string dest_key;
  std::string if_match;        // x-amz-copy-source-if-match: copy only this version (ETag, no quotes)
  bool if_none_match = false;  // If-None-Match: * : never overwrite the destination
  // Also send the condition as x-amz-copy-if-match: Ceph RGW up to at least
  // 16.2 reads only that (misnamed) header for CopyObject and silently
  // ignores the standard one. Off for AWS endpoints.
  bool legacy_if_match_header = false;
  // x-amz-metadata-directive REPLACE with these headers (replayable_headers
  // of a HEAD) instead of COPY: S3 refuses to copy an object onto itself
  // without a change, and REPLACE with the same headers is one.
  bool replace_metadata = false;
  std::vector<http::Header> replace_headers = {};
  // How the destination object is stored, whatever the source had: storage
  // class, ACL, encryption (write_headers). Sent with either directive, and
  // on the CreateMultipartUpload of a multipart copy; they win over the
  // source's headers of the same name.
  std::vector<http::Header> dest_headers = {};
};

// What the operator asked every written object to carry (--acl, --sse,
// --sse-kms-key-id); empty fields send nothing.
struct WriteOptions {
  std::string acl;             // a canned ACL (is_canned_acl)
  std::string sse;             // AES256 or aws:kms
  std::string sse_kms_key_id;  // with aws:kms: the key; empty: the account's default key
};
// The headers for WriteOptions. Pure.
std::vector<http::Header> write_headers(const WriteOptions& w);
// `base` with every header of `over` replacing those of the same name. Pure.
std::vector<http::Header> with_overrides(std::vector<http::Header> base, const std::vector<http::Header>& over);
// The x-amz-server-side-encryption* headers of a HEAD answer: what a copy of
// an object onto itself sends to stay encrypted as it was. Pure.
std::vector<http::Header> encryption_headers(const std::vector<http::Header>& head);
// S3's canned ACLs (x-amz-acl values).
bool is_canned_acl(std::string_view acl);
// Storage classes whose objects cannot be read, hence not copied, until a
// restore completes (CopyObject answers 403 InvalidObjectState).
bool is_archived_class(std::string_view storage_class);
// True when an x-amz-restore value says a restore has completed
// (ongoing-request="false", with the restored copy's expiry date).
bool restore_completed(std::string_view x_amz_restore);

// The headers of a HEAD answer that a REPLACE copy must send again to keep
// the object as it was: Content-Type and the other representation headers,
// user metadata (x-amz-meta-*), storage class and website redirect. Pure.
std::vector<http::Header> replayable_headers(const std::vector<http::Header>& head);

struct PutParams {
  std::string content_type = "application/octet-stream";
  bool if_none_match = false;
  std::string if_match = {};  // ETag (unquoted) the existing object must have; empty: none
  // More headers to send (a copy between services: the source's
  // replayable_headers; a Content-Type among them gives way to content_type).
  std::vector<http::Header> headers = {};
};

struct CompletedPart {
  int number = 0;
  std::string etag;
};

S3Request list_objects_v2(std::string bucket, const ListParams& p);
S3Request head_object(std::string bucket, std::string key);
S3Request head_bucket(std::string bucket);
// GetObject; with last >= first only bytes [first, last] (a Range), and with
// if_match only while the object is still that version (else 412).
struct GetParams {
  std::uint64_t first = 1;
  std::uint64_t last = 0;
  std::string if_match = {};  // ETag, unquoted
};
S3Request get_object(std::string bucket, std::string key, const GetParams& p = {});
S3Request put_object(std::string bucket, std::string key, std::string body, const PutParams& p);
S3Request copy_object(std::string dest_bucket, CopyParams p);
// A key and, optionally, the one version of it a delete removes. Without a
// version id a delete on a versioned bucket only adds a delete marker; with
// one it removes exactly that version, whichever is current.
struct ObjectVersion {
  std::string key;
  std::string version_id = {};
};
S3Request delete_object(std::string bucket, const ObjectVersion& object);
// At most kMaxDeleteKeys keys; carries Content-MD5 as S3 requires. Quiet mode
// reports only the keys that failed.
S3Request delete_objects(std::string bucket, const std::vector<ObjectVersion>& objects, bool quiet);
// The user metadata a multipart copy of ours carries: the source's ETag, so a
// later run can prove the copy identical although its ETag is not an MD5.
inline constexpr const char* kSourceEtagHeader = "x-amz-meta-assetmv-source-etag";
// CreateMultipartUpload. For a copy (whose parts carry none of the source's
// headers) `headers` are the source's replayable_headers and `tags` its tags
// (sent as x-amz-tagging), so the object arrives as it was.
S3Request create_multipart_upload(std::string bucket, std::string key, const std::vector<http::Header>& headers,
                                  const std::string& source_etag = {}, const std::vector<Tag>& tags = {});
S3Request get_object_tagging(std::string bucket, std::string key);
// GetBucketOwnershipControls: whether the bucket refuses object ACLs
// (BucketOwnerEnforced).
S3Request get_bucket_ownership_controls(std::string bucket);
// GetBucketVersioning: whether a delete removes the object or only hides it.
S3Request get_bucket_versioning(std::string bucket);
// Replaces an object's tags (a tag XML cannot carry is sent empty; S3 tag
// keys and values are text).
S3Request put_object_tagging(std::string bucket, std::string key, const std::vector<Tag>& tags);
// "k1=v1&k2=v2", each part percent-encoded: the x-amz-tagging header's value.
std::string tagging_header(const std::vector<Tag>& tags);
// Copies bytes [first, last] of the source as part `part_number`; with
// last < first, the whole source (an empty one has no byte range).
S3Request upload_part_copy(std::string dest_bucket, const CopyParams& p, const std::string& upload_id, int part_number,
                           std::uint64_t first, std::uint64_t last);
// Uploads `body` as part `part_number`, with its Content-MD5 (the store
// checks it, and the part's ETag is then that MD5).
S3Request upload_part(std::string bucket, std::string key, const std::string& upload_id, int part_number,
                      std::string body);
S3Request complete_multipart_upload(std::string bucket, std::string key, const std::string& upload_id,
                                    const std::vector<CompletedPart>& parts, bool if_none_match);
S3Request abort_multipart_upload(std::string bucket, std::string key, const std::string& upload_id);

// x-amz-copy-source value: "/bucket/key" with the key percent-encoded once.
std::string copy_source(const std::string& bucket, const std::string& key);
// Escapes text for an XML element body; characters XML 1.0 cannot carry
// (most control characters) make it return nullopt.
std::optional<std::string> xml_escape(std::string_view s);
// Whether XML 1.0 can carry s (xml_escape gives a value), without escaping it.
bool xml_representable(std::string_view s);
// Appends s escaped; s must be xml_representable.
void append_xml_escaped(std::string& out, std::string_view s);

// Addresses and signs: the URL for the bucket's endpoint and style, a Host
// header, and SigV4 headers for `now`, signed with `keys`.
http::Request to_http(const S3Request& r, const Bucket& bucket, const sigv4::Credentials& keys,
                      std::chrono::system_clock::time_point now);
// The encoded path and host used by to_http, exposed for tests.
struct Address {
  std::string host;  // Host header value
  std::string path;  // percent-encoded once
  std::string url;   // scheme://host/path?query (query encoded)
};
Address address(const S3Request& r, const Endpoint& ep);

}  // namespace assetmv::s3
