// Parsers for S3's XML responses: pure functions from a body to a value or an
// Error. They accept what real servers send (AWS, Ceph RGW, Swift s3api):
// ETags with or without quotes, namespaced or bare elements, and keys
// percent-encoded when the request asked for encoding-type=url.
// Every parser is fuzzed (tests/fuzz).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.hpp"
#include "core/error.hpp"

namespace assetmv::s3 {

struct ObjectEntry {
  std::string key;
  std::string etag;  // without quotes
  std::uint64_t size = 0;
  std::string last_modified;
  std::string storage_class = {};  // as listed (STANDARD, STANDARD_IA, GLACIER...); empty when the store omits it
  bool operator==(const ObjectEntry&) const = default;
};

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};

struct ListPage {
  std::vector<ObjectEntry> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;
};

struct ErrorBody {
  std::string code;
  std::string message;
  std::string resource;
  std::string request_id;
  std::string host_id;
  std::string region = {};  // AuthorizationHeaderMalformed names the bucket's region
};

struct DeleteFailure {
  std::string key;
  std::string code;
  std::string message;
};

struct DeleteResult {
  std::vector<std::string> deleted;
  std::vector<DeleteFailure> failed;
};

// An <Error> document, if body is one (at the root, as S3 sends it).
std::optional<ErrorBody> parse_error_body(std::string_view body);

Result<ListPage> parse_list_objects_v2(std::string_view body);
// CopyObjectResult or CopyPartResult: the new ETag. A 200 whose body is an
// <Error> (S3 may fail a copy after sending 200) comes back as that Error.
Result<std::string> parse_copy_result(std::string_view body);
// The same read through the DOM only: what the scan below must agree with
// wherever it answers (the fuzzer compares them).
Result<std::string> parse_copy_result_dom(std::string_view body);
// The usual copy result read by a scan instead of a DOM (one per object: the
// DOM's pages and copies were most of the client's parsing work). Takes only
// the plain shape S3 and RGW send: an optional declaration, <CopyObjectResult>
// or <CopyPartResult> (plain attributes) holding flat <Name>text</Name>
// elements, closed at the end; the ETag's text may hold &quot; only. Anything
// else (an <Error>, a prefix, another entity, CDATA, a comment, nesting, a
// truncated body) gives nullopt, and parse_copy_result asks the DOM.
std::optional<std::string> scan_copy_result(std::string_view body);
Result<DeleteResult> parse_delete_result(std::string_view body);
Result<std::string> parse_initiate_multipart(std::string_view body);  // the UploadId
Result<std::vector<Tag>> parse_tagging(std::string_view body);        // GetObjectTagging's TagSet
Result<std::string> parse_complete_multipart(std::string_view body);  // the ETag
// GetBucketOwnershipControls: the rule's ObjectOwnership (BucketOwnerEnforced,
// BucketOwnerPreferred, ObjectWriter).
Result<std::string> parse_ownership_controls(std::string_view body);
// GetBucketVersioning: Enabled, Suspended, or empty for a bucket that was
// never versioned.
Result<std::string> parse_versioning(std::string_view body);

// Strips the quotes S3 puts around ETags, so values compare as listed.
std::string unquote_etag(std::string_view etag);

// True for an ETag that is the MD5 of the content (single-part, no KMS):
// 32 hex digits. A multipart ETag ends in "-N".
bool etag_is_md5(std::string_view etag);
// The ETag S3 gives a completed multipart upload: the MD5 of the parts' raw
// MD5s one after another, then "-" and the number of parts. Pure.
std::string multipart_etag(const std::vector<Md5>& part_md5s);
// The one rule for "same ETag", everywhere: quotes stripped, hex digits
// compared without regard to case (stores differ in the case they send).
bool etag_equal(std::string_view a, std::string_view b);

}  // namespace assetmv::s3
