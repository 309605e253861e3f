// AWS Signature Version 4, as pure functions: nothing here reads a clock, the
// environment or the network, so each step can be checked against AWS's
// published vectors (canonical request, string to sign, signing key, signature).
//
// Two path modes: S3 signs the key exactly as sent, percent-encoded once
// (PathMode::S3); other services normalise the path and encode it a second
// time (PathMode::Generic), which is what the generic test suite exercises.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.hpp"
#include "core/secret.hpp"

namespace assetmv::sigv4 {

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

// A query parameter, raw (not percent-encoded): encoding is part of signing.
struct QueryParam {
  std::string name;
  std::string value;
  bool operator==(const QueryParam&) const = default;
};

struct Credentials {
  std::string access_key_id;
  Secret secret_access_key;
  Secret session_token;  // empty unless temporary credentials
  bool operator==(const Credentials&) const = default;
};

enum class PathMode { S3, Generic };

// Payload hash for requests whose body is not signed (allowed by S3 over TLS).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// The SHA-256 of an empty payload (a CopyObject, a HEAD, a GET), known without hashing.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Percent-encodes every byte outside A-Z a-z 0-9 - . _ ~ as %XX (upper-case
// hex); '/' is kept when keep_slash is set (object key paths).
std::string uri_encode(std::string_view s, bool keep_slash);
// Decodes %XX sequences; '+' stays '+' (S3 keys are not form-encoded).
// Returns false on a malformed escape.
bool uri_decode(std::string_view s, std::string& out);

// "20150830T123600Z" and "20150830" for a UTC instant.
std::string amz_date(std::chrono::system_clock::time_point t);
std::string amz_day(std::chrono::system_clock::time_point t);

// The pieces of a canonical request.
std::string canonical_uri(std::string_view path, PathMode mode);
std::string canonical_query(const std::vector<QueryParam>& query);
struct CanonicalHeaders {
  std::string block;           // "name:value\n" lines, sorted, names lower-cased
  std::string signed_headers;  // "host;x-amz-date"
};
CanonicalHeaders canonical_headers(const std::vector<Header>& headers);

struct RequestToSign {
  std::string method;
  std::string path;  // as sent on the wire (S3: already percent-encoded once)
  std::vector<QueryParam> query;
  std::vector<Header> headers;  // every header that is signed; must include host and x-amz-date
  std::string payload_hash;     // hex SHA-256 of the body, or kUnsignedPayload
};

std::string canonical_request(const RequestToSign& req, PathMode mode);
std::string credential_scope(std::string_view day, std::string_view region, std::string_view service);
std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);
Sha256 signing_key(const Secret& secret, std::string_view day, std::string_view region, std::string_view service);
std::string signature(const Sha256& key, std::string_view string_to_sign);
std::string authorization(std::string_view access_key_id, std::string_view scope, std::string_view signed_headers,
                          std::string_view signature);

struct SignParams {
  std::string region;
  std::string service = "s3";
  PathMode path_mode = PathMode::S3;
  std::chrono::system_clock::time_point now;
};

// Signs req: adds x-amz-date, x-amz-content-sha256 (S3 only),
// x-amz-security-token (when a session token is set) to req.headers, and
// returns the Authorization header value. Every header in req.headers is signed.
std::string sign(RequestToSign& req, const Credentials& creds, const SignParams& params);

}  // namespace assetmv::sigv4
