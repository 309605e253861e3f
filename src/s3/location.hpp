// Where objects live: an endpoint (scheme, host, port, region, addressing
// style), a bucket on it with the credentials to sign with (a shared, possibly
// refreshing credentials::Source), and s3://BUCKET/PREFIX locations as the
// command line names them. Pure values and parsing.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "credentials/source.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::s3 {

inline constexpr std::size_t kMaxKeyBytes = 1024;  // S3's limit on an object key, in UTF-8 bytes

struct Endpoint {
  std::string scheme = "https";
  std::string host;  // no port; an IPv6 literal keeps its brackets
  int port = 0;      // 0: the scheme's default
  std::string region = "us-east-1";
  bool path_style = false;  // https://host/bucket/key instead of https://bucket.host/key
  // The host is AWS's for `region` (aws() made it), so a bucket found in
  // another region is reached at that region's host, not only signed for it.
  bool regional = false;
  bool fips = false;       // s3-fips.REGION...
  bool dualstack = false;  // s3.dualstack.REGION... (IPv6 and IPv4)

  // "http://127.0.0.1:57480" or "https://s3.eu-west-1.amazonaws.com". A path,
  // query or user part is refused: an endpoint names a server, not a resource.
  static Result<Endpoint> parse(std::string_view url);
  // AWS's endpoint for a region: https://s3.REGION.amazonaws.com, or the FIPS
  // (s3-fips.REGION), dual-stack (s3.dualstack.REGION) or both host; China's
  // regions under amazonaws.com.cn.
  static Endpoint aws(std::string_view region, bool fips = false, bool dualstack = false);
  // This endpoint for a bucket found in `region`: a regional AWS host moves
  // there, any other keeps its host and only signs for the region.
  Endpoint in_region(std::string_view region) const;
  // host[:port], as sent in the Host header (default ports omitted).
  std::string authority() const;
  // An IP literal or localhost cannot carry a bucket as a DNS label.
  bool host_is_literal() const;
  // AWS's own S3 (as opposed to an S3-compatible service).
  bool is_aws() const;
  bool operator==(const Endpoint&) const = default;
};

// A bucket, its endpoint and the credentials used for it: a legacy bucket may
// live on another service, with other keys, than the production one. Buckets
// signed alike share one Source (its refreshes serve both).
struct Bucket {
  Endpoint endpoint;
  std::shared_ptr<credentials::Source> credentials;  // null: unsigned-alike (empty keys), for tests
  std::string name;
  bool unsigned_payload = false;  // sign bodies unless told otherwise (safe over plain HTTP)
  bool operator==(const Bucket&) const = default;
};

// s3://BUCKET/PREFIX as given on the command line.
struct Location {
  std::string bucket;
  std::string prefix;  // may be empty; kept exactly as given after the bucket's '/'
  static Result<Location> parse(std::string_view uri);
  std::string to_string() const { return "s3://" + bucket + "/" + prefix; }
};

// S3's bucket naming rules (3-63 chars of a-z 0-9 . -, starting and ending
// with a letter or digit, not an IP address). Returns an explanation when not.
std::string bucket_name_problem(std::string_view name);

// Whether a bucket name can be used as a DNS label under TLS (no dots).
bool virtual_host_compatible(std::string_view bucket, bool tls);

// The bucket `name` on `endpoint`: path-style when the name cannot be a TLS
// host name (a dotted bucket), whatever the endpoint asks for.
Bucket bucket_on(Endpoint endpoint, std::shared_ptr<credentials::Source> credentials, std::string name);

}  // namespace assetmv::s3
