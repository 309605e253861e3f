// s3_ceiling: an in-memory S3-compatible endpoint for measuring a client's
// own ceiling (bench only; never used by correctness tests). Real servers
// available here are CPU-bound at a few hundred copies per second and hide
// the client's limits; this one answers tens of thousands of requests per
// second on one core while behaving like AWS where it matters for speed:
//
//   - every request's SigV4 signature is checked (our sigv4 layer, used
//     here as the verifier);
//   - every answer is held back by a fixed latency (default 30 ms);
//   - each prefix (bucket + key up to its last '/') has AWS's documented
//     rates, 3,500 writes/s and 5,500 reads/s, as token buckets; beyond
//     them the answer is 503 SlowDown.
//
// Operations: ListObjectsV2 (prefix, start-after, continuation-token,
// max-keys, encoding-type=url), HeadObject, GetObject,
// PutObject (If-Match, If-None-Match: *),
// CopyObject (x-amz-copy-source-if-match, If-None-Match: *), DeleteObject,
// DeleteObjects (Content-MD5 checked), HeadBucket. GET /__stats returns
// counters as JSON. Single-threaded epoll, HTTP/1.1 keep-alive, no TLS.
// --bucket-region B=R puts bucket B in region R: requests signed for
// another region are refused as AWS refuses them (the region-discovery
// test, tests/e2e/test_clouds.py, uses it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/digest.hpp"
#include "http/http.hpp"
#include "process_cpu.hpp"
#include "s3/requests.hpp"
#include "sigv4/sigv4.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace sigv4 = assetmv::sigv4;

struct Config {
  int port = 0;
  std::string access_key = "ceilingaccess";
  std::string secret = "ceilingsecretceilingsecretceiling00";
  int latency_ms = 30;
  double write_rate = 3500;  // per prefix per second; 0: unlimited
  double read_rate = 5500;
  std::vector<std::string> buckets;
  struct Preload {
    std::string bucket, prefix;
    long count;
  };
  std::vector<Preload> preload;
  // A bucket's region: a request signed for another is refused as AWS
  // refuses it (AuthorizationHeaderMalformed naming the region, or a HEAD's
  // bare 400 with x-amz-bucket-region), so a client can learn it.
  std::map<std::string, std::string> regions;
};

struct Object {
  std::shared_ptr<const std::string> body;
  std::string etag;
  std::string content_type = "application/octet-stream";
};

struct Bucket {
  std::map<std::string, Object, std::less<>> objects;
};

struct TokenBucket {
  double tokens = 0;
  Clock::time_point last{};
  bool take(double rate, Clock::time_point now) {
    if (rate <= 0) return true;
    const double burst = rate / 10;  // a tenth of a second of headroom, as a partition briefly absorbs
    if (last == Clock::time_point{}) {
      tokens = burst;
    } else {
      tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
    }
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

struct Stats {
  std::map<std::string, unsigned long> ops;
  unsigned long requests = 0, slowdowns = 0, auth_failures = 0, connections = 0;
};

struct Request {
  std::string method, target, path;
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  const std::string* header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return &v;
    return nullptr;
  }
  const std::string* param(std::string_view name) const {
    for (const auto& [n, v] : query)
      if (n == name) return &v;
    return nullptr;
  }
};

struct Response {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool head = false;  // Content-Length of the object, no body
  std::size_t head_length = 0;
};

struct Conn {
  int fd = -1;
  std::uint64_t gen = 0;
  std::string in, out;
  bool waiting = false;  // a response is being held back by the latency
};

struct Pending {
  Clock::time_point due;
  int fd;
  std::uint64_t gen;
  std::string bytes;
};

std::string utc_now(const char* format) {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}
std::string http_date() { return utc_now("%a, %d %b %Y %H:%M:%S GMT"); }
std::string iso_now() { return utc_now("%Y-%m-%dT%H:%M:%S.000Z"); }

// XML text through the S3 layer's escaping; a key XML 1.0 cannot carry
// (control characters) goes out percent-encoded rather than as invalid XML.
std::string xml_text(std::string_view s) { return assetmv::s3::xml_escape(s).value_or(sigv4::uri_encode(s, true)); }

// An ETag as a condition header carries it: without its quotes.
std::string_view unquoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

Response error(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + std::string(code) + "</Code><Message>" +
           xml_text(message) + "</Message><RequestId>ceiling</RequestId></Error>";
  r.headers.emplace_back("Content-Type", "application/xml");
  return r;
}

class Server {
 public:
  explicit Server(Config c) : cfg_(std::move(c)) {
    for (const auto& b : cfg_.buckets) buckets_[b];
    assetmv::Secret secret(cfg_.secret);
    secret_ = secret;
    for (const auto& p : cfg_.preload) preload(p);
  }

  int run();
  void dump_stats(FILE* f) const;

 private:
  void preload(const Config::Preload& p) {
    auto& objs = buckets_[p.bucket].objects;
    for (long n = 0; n < p.count; ++n) {
      auto body = std::make_shared<const std::string>("\x89PNG ceiling object " + std::to_string(n) + " " + p.prefix);
      Object o{body, assetmv::hex(assetmv::md5(*body)), "image/png"};
      objs.emplace_hint(objs.end(), p.prefix + "avatar-" + std::to_string(n) + ".png", std::move(o));
    }
    std::fprintf(stderr, "preloaded %ld objects under %s/%s\n", p.count, p.bucket.c_str(), p.prefix.c_str());
  }

  bool parse(Conn& c, Request& r, std::size_t& consumed);
  bool authorized(const Request& r, std::string& why);
  Response handle(const Request& r);
  Response list(Bucket& b, const std::string& bucket, const Request& r);
  Response copy(Bucket& dst, const std::string& key, const Request& r);
  Response delete_objects(Bucket& b, const Request& r);
  bool admit(const std::string& bucket, std::string_view key, bool write);
  void respond(Conn& c, const Response& resp);
  void on_readable(Conn& c);
  void serve_buffered(Conn& c);
  void flush(Conn& c);
  void close_conn(int fd);

  Config cfg_;
  assetmv::Secret secret_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::unordered_map<std::string, TokenBucket> write_buckets_, read_buckets_;
  std::unordered_map<int, Conn> conns_;
  std::deque<Pending> pending_;                  // fixed latency: due times are in arrival order
  std::map<std::string, assetmv::Sha256> keys_;  // signing key per day/region
  std::uint64_t next_gen_ = 1;
  int epfd_ = -1;
  Stats stats_;
};

bool Server::parse(Conn& c, Request& r, std::size_t& consumed) {
  const auto end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string_view head(c.in.data(), end);
  auto line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 + 1);
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::size_t length = 0;
  std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    auto e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view h = head.substr(pos, e - pos);
    auto colon = h.find(':');
    if (colon != std::string_view::npos) {
      std::string name(h.substr(0, colon));
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string_view v = h.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      if (name == "content-length") length = std::stoul(std::string(v));
      r.headers.emplace_back(std::move(name), std::string(v));
    }
    pos = e + 2;
  }
  if (c.in.size() < end + 4 + length) return false;
  r.body = c.in.substr(end + 4, length);
  consumed = end + 4 + length;
  const auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) {
    std::string_view qs(r.target);
    qs.remove_prefix(q + 1);
    while (!qs.empty()) {
      auto amp = qs.find('&');
      std::string_view kv = qs.substr(0, amp);
      auto eq = kv.find('=');
      std::string k, v;
      sigv4::uri_decode(kv.substr(0, eq), k);
      if (eq != std::string_view::npos) sigv4::uri_decode(kv.substr(eq + 1), v);
      r.query.emplace_back(std::move(k), std::move(v));
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  return true;
}

bool Server::authorized(const Request& r, std::string& why) {
  const std::string* auth = r.header("authorization");
  const std::string* date = r.header("x-amz-date");
  const std::string* payload = r.header("x-amz-content-sha256");
  if (!auth || !date || !payload) {
    why = "missing Authorization, x-amz-date or x-amz-content-sha256";
    return false;
  }
  // AWS4-HMAC-SHA256 Credential=AK/DAY/REGION/s3/aws4_request, SignedHeaders=a;b, Signature=hex
  auto field = [&](std::string_view name) -> std::string {
    auto p = auth->find(name);
    if (p == std::string::npos) return {};
    p += name.size();
    auto e = auth->find_first_of(", ", p);
    return auth->substr(p, e == std::string::npos ? std::string::npos : e - p);
  };
  const std::string credential = field("Credential=");
  const std::string signed_headers = field("SignedHeaders=");
  const std::string signature = field("Signature=");
  std::vector<std::string> parts;
  for (std::size_t s = 0, e; s <= credential.size(); s = e + 1) {
    e = credential.find('/', s);
    if (e == std::string::npos) e = credential.size();
    parts.push_back(credential.substr(s, e - s));
  }
  if (parts.size() != 5 || parts[0] != cfg_.access_key) {
    why = "unknown access key";
    return false;
  }
  sigv4::RequestToSign req;
  req.method = r.method;
  req.path = r.path;
  for (const auto& [k, v] : r.query) req.query.push_back({k, v});
  for (std::size_t s = 0, e; s <= signed_headers.size(); s = e + 1) {
    e = signed_headers.find(';', s);
    if (e == std::string::npos) e = signed_headers.size();
    const std::string name = signed_headers.substr(s, e - s);
    const std::string* v = r.header(name);
    req.headers.push_back({name, v ? *v : ""});
  }
  req.payload_hash = *payload;
  const std::string scope = sigv4::credential_scope(parts[1], parts[2], parts[3]);
  const std::string sts = sigv4::string_to_sign(*date, scope, sigv4::canonical_request(req, sigv4::PathMode::S3));
  const std::string key_id = parts[1] + "/" + parts[2];
  auto it = keys_.find(key_id);
  if (it == keys_.end()) it = keys_.emplace(key_id, sigv4::signing_key(secret_, parts[1], parts[2], parts[3])).first;
  if (sigv4::signature(it->second, sts) != signature) {
    why = "signature mismatch";
    if (stats_.auth_failures < 3)  // the first few, to debug a client's signing
      std::fprintf(stderr, "signature mismatch; canonical request:\n%s\n",
                   sigv4::canonical_request(req, sigv4::PathMode::S3).c_str());
    return false;
  }
  return true;
}

bool Server::admit(const std::string& bucket, std::string_view key, bool write) {
  const auto slash = key.rfind('/');
  std::string prefix = bucket + "/" + std::string(key.substr(0, slash == std::string_view::npos ? 0 : slash + 1));
  auto& tb = (write ? write_buckets_ : read_buckets_)[prefix];
  return tb.take(write ? cfg_.write_rate : cfg_.read_rate, Clock::now());
}

Response Server::list(Bucket& b, const std::string& bucket, const Request& r) {
  const std::string prefix = r.param("prefix") ? *r.param("prefix") : "";
  int max_keys = r.param("max-keys") ? std::stoi(*r.param("max-keys")) : 1000;
  max_keys = std::clamp(max_keys, 0, 1000);
  const bool url = r.param("encoding-type") && *r.param("encoding-type") == "url";
  std::string after;
  if (const auto* token = r.param("continuation-token")) {
    after = *token;
  } else if (const auto* sa = r.param("start-after")) {
    after = *sa;
  }
  auto it = after.empty() ? b.objects.lower_bound(prefix) : b.objects.upper_bound(after);
  if (!after.empty() && after < prefix) it = b.objects.lower_bound(prefix);
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>" + bucket + "</Name>";
  const std::string lm = iso_now();
  int n = 0;
  std::string last;
  std::string contents;
  for (; it != b.objects.end() && n < max_keys; ++it, ++n) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    contents += "<Contents><Key>" + (url ? sigv4::uri_encode(it->first, true) : xml_text(it->first)) +
                "</Key><LastModified>" + lm + "</LastModified><ETag>\"" + it->second.etag + "\"</ETag><Size>" +
                std::to_string(it->second.body->size()) + "</Size><StorageClass>STANDARD</StorageClass></Contents>";
    last = it->first;
  }
  const bool truncated = it != b.objects.end() && it->first.compare(0, prefix.size(), prefix) == 0;
  body += "<Prefix>" + (url ? sigv4::uri_encode(prefix, true) : xml_text(prefix)) + "</Prefix><KeyCount>" +
          std::to_string(n) + "</KeyCount><MaxKeys>" + std::to_string(max_keys) + "</MaxKeys>";
  if (url) body += "<EncodingType>url</EncodingType>";
  body += std::string("<IsTruncated>") + (truncated ? "true" : "false") + "</IsTruncated>";
  if (truncated) body += "<NextContinuationToken>" + xml_text(last) + "</NextContinuationToken>";
  body += contents + "</ListBucketResult>";
  Response resp;
  resp.body = std::move(body);
  resp.headers.emplace_back("Content-Type", "application/xml");
  return resp;
}

Response Server::copy(Bucket& dst, const std::string& key, const Request& r) {
  std::string source;
  sigv4::uri_decode(*r.header("x-amz-copy-source"), source);
  if (!source.empty() && source[0] == '/') source.erase(0, 1);
  const auto slash = source.find('/');
  if (slash == std::string::npos) return error(400, "InvalidArgument", "bad x-amz-copy-source");
  auto sb = buckets_.find(source.substr(0, slash));
  if (sb == buckets_.end()) return error(404, "NoSuchBucket", "source bucket does not exist");
  auto so = sb->second.objects.find(source.substr(slash + 1));
  if (so == sb->second.objects.end()) return error(404, "NoSuchKey", "source key does not exist");
  if (const auto* cond = r.header("x-amz-copy-source-if-match"); cond && unquoted(*cond) != so->second.etag)
    return error(412, "PreconditionFailed", "x-amz-copy-source-if-match failed");
  if (const auto* inm = r.header("if-none-match"); inm && *inm == "*" && dst.objects.count(key) != 0)
    return error(412, "PreconditionFailed", "destination exists");
  Object copy = so->second;  // shares the body
  dst.objects.insert_or_assign(key, copy);
  Response resp;
  resp.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>" + iso_now() +
              "</LastModified><ETag>\"" + copy.etag + "\"</ETag></CopyObjectResult>";
  resp.headers.emplace_back("Content-Type", "application/xml");
  return resp;
}

Response Server::delete_objects(Bucket& b, const Request& r) {
  const std::string* md5 = r.header("content-md5");
  if (!md5 || *md5 != assetmv::base64(std::string_view(reinterpret_cast<const char*>(assetmv::md5(r.body).data()), 16)))
    return error(400, "InvalidDigest", "Content-MD5 missing or wrong");
  pugi::xml_document doc;
  if (!doc.load_buffer(r.body.data(), r.body.size())) return error(400, "MalformedXML", "bad XML");
  auto del = doc.child("Delete");
  const bool quiet = std::string_view(del.child_value("Quiet")) == "true";
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult>";
  int n = 0;
  for (auto o : del.children("Object")) {
    if (++n > 1000) return error(400, "MalformedXML", "more than 1000 keys");
    const std::string key = o.child_value("Key");
    b.objects.erase(key);
    if (!quiet) body += "<Deleted><Key>" + xml_text(key) + "</Key></Deleted>";
  }
  body += "</DeleteResult>";
  Response resp;
  resp.body = std::move(body);
  resp.headers.emplace_back("Content-Type", "application/xml");
  return resp;
}

Response Server::handle(const Request& r) {
  ++stats_.requests;
  if (r.path == "/__stats") {
    Response resp;
    const double cpu = process_cpu_seconds();
    resp.body = "{\"requests\":" + std::to_string(stats_.requests) +
                ",\"slowdowns\":" + std::to_string(stats_.slowdowns) +
                ",\"auth_failures\":" + std::to_string(stats_.auth_failures) +
                ",\"connections\":" + std::to_string(stats_.connections) + ",\"cpu_seconds\":" + std::to_string(cpu) +
                ",\"ops\":{";
    bool first = true;
    for (const auto& [op, n] : stats_.ops) {
      resp.body += (first ? "\"" : ",\"") + op + "\":" + std::to_string(n);
      first = false;
    }
    resp.body += "}}";
    resp.headers.emplace_back("Content-Type", "application/json");
    return resp;
  }
  std::string why;
  if (!authorized(r, why)) {
    ++stats_.auth_failures;
    return error(403, "SignatureDoesNotMatch", why);
  }
  std::string_view path(r.path);
  path.remove_prefix(1);
  const auto slash = path.find('/');
  const std::string bucket(path.substr(0, slash));
  std::string key;
  if (slash != std::string_view::npos) sigv4::uri_decode(path.substr(slash + 1), key);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return error(404, "NoSuchBucket", "the bucket does not exist");
  Bucket& b = bit->second;
  if (auto reg = cfg_.regions.find(bucket); reg != cfg_.regions.end()) {
    // Credential=AK/DAY/REGION/s3/aws4_request, checked by authorized() above.
    const std::string& authz = *r.header("authorization");
    const auto day = authz.find('/', authz.find("Credential="));
    const auto region = authz.find('/', day + 1);
    const std::string signed_for = authz.substr(region + 1, authz.find('/', region + 1) - region - 1);
    if (signed_for != reg->second) {
      ++stats_.ops["WrongRegion"];
      Response resp = error(400, "AuthorizationHeaderMalformed",
                            "the region '" + signed_for + "' is wrong; expecting '" + reg->second + "'");
      resp.body.insert(resp.body.rfind("</Error>"), "<Region>" + reg->second + "</Region>");
      resp.headers.emplace_back("x-amz-bucket-region", reg->second);
      if (r.method == "HEAD") resp.body.clear();  // a HEAD's answer has no body to say it
      return resp;
    }
  }

  const bool write = r.method == "PUT" || r.method == "POST" || r.method == "DELETE";
  std::string op = r.method == "GET" && key.empty() && r.param("versioning") ? "GetBucketVersioning"
                   : r.method == "GET" && key.empty()                        ? "ListObjectsV2"
                   : r.method == "POST"                                      ? "DeleteObjects"
                   : r.method == "PUT" && r.header("x-amz-copy-source")      ? "CopyObject"
                   : r.method == "PUT"                                       ? "PutObject"
                   : r.method == "HEAD" && key.empty()                       ? "HeadBucket"
                   : r.method == "HEAD"                                      ? "HeadObject"
                   : r.method == "DELETE"                                    ? "DeleteObject"
                   : r.param("tagging") != nullptr                           ? "GetObjectTagging"
                                                                             : "GetObject";
  ++stats_.ops[op];
  if (!admit(bucket, op == "ListObjectsV2" || op == "DeleteObjects" ? std::string_view() : std::string_view(key),
             write)) {
    ++stats_.slowdowns;
    return error(503, "SlowDown", "Please reduce your request rate.");
  }
  if (op == "GetBucketVersioning") {  // the preflight asks; versioning was never enabled here
    Response resp;
    resp.body = R"(<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration/>)";
    return resp;
  }
  if (op == "ListObjectsV2") return list(b, bucket, r);
  if (op == "DeleteObjects") return delete_objects(b, r);
  if (op == "CopyObject") return copy(b, key, r);
  if (op == "HeadBucket") return Response{};
  if (op == "PutObject") {
    if (const auto* inm = r.header("if-none-match"); inm && *inm == "*" && b.objects.count(key) != 0)
      return error(412, "PreconditionFailed", "destination exists");
    // As S3 since its conditional writes: a key that is absent is 404, another ETag is 412.
    if (const auto* im = r.header("if-match")) {
      auto cur = b.objects.find(key);
      if (cur == b.objects.end()) return error(404, "NoSuchKey", "If-Match on a key that does not exist");
      if (unquoted(*im) != cur->second.etag) return error(412, "PreconditionFailed", "If-Match failed");
    }
    Object o{std::make_shared<const std::string>(r.body), assetmv::hex(assetmv::md5(r.body)),
             r.header("content-type") ? *r.header("content-type") : "application/octet-stream"};
    Response resp;
    resp.headers.emplace_back("ETag", "\"" + o.etag + "\"");
    b.objects.insert_or_assign(key, std::move(o));
    return resp;
  }
  if (op == "DeleteObject") {
    b.objects.erase(key);
    Response resp;
    resp.status = 204;
    return resp;
  }
  auto it = b.objects.find(key);
  if (it == b.objects.end()) {
    if (op == "HeadObject") {
      Response resp;
      resp.status = 404;
      return resp;
    }
    return error(404, "NoSuchKey", "The specified key does not exist.");
  }
  Response resp;
  if (op == "GetObjectTagging") {  // the preflight reads a source's tags; these objects have none
    resp.body = R"(<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet/></Tagging>)";
    return resp;
  }
  resp.headers.emplace_back("ETag", "\"" + it->second.etag + "\"");
  resp.headers.emplace_back("Content-Type", it->second.content_type);
  resp.headers.emplace_back("Last-Modified", http_date());
  if (op == "HeadObject") {
    resp.head = true;
    resp.head_length = it->second.body->size();
  } else {
    resp.body = *it->second.body;
  }
  return resp;
}

void Server::respond(Conn& c, const Response& resp) {
  std::string out =
      "HTTP/1.1 " + std::to_string(resp.status) + " " + std::string(assetmv::http::reason_phrase(resp.status)) + "\r\n";
  for (const auto& [n, v] : resp.headers) {
    out.append(n).append(": ").append(v).append("\r\n");
  }
  out += "Content-Length: " + std::to_string(resp.head ? resp.head_length : resp.body.size()) +
         "\r\nx-amz-request-id: ceiling\r\n\r\n";
  out += resp.body;
  c.waiting = true;
  pending_.push_back({Clock::now() + std::chrono::milliseconds(cfg_.latency_ms), c.fd, c.gen, std::move(out)});
}

void Server::on_readable(Conn& c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return close_conn(c.fd);
    if (errno == EAGAIN) break;
  }
  serve_buffered(c);
}

// One request at a time per connection: the next is parsed only once the
// previous answer has been released by the latency.
void Server::serve_buffered(Conn& c) {
  while (!c.waiting) {
    Request r;
    std::size_t consumed = 0;
    if (!parse(c, r, consumed)) break;
    c.in.erase(0, consumed);
    respond(c, handle(r));
  }
}

void Server::flush(Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::write(c.fd, c.out.data(), c.out.size());
    if (n > 0) {
      c.out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EAGAIN) {
      epoll_event ev{EPOLLIN | EPOLLOUT, {}};
      ev.data.fd = c.fd;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
      return;
    }
    return close_conn(c.fd);
  }
  epoll_event ev{EPOLLIN, {}};
  ev.data.fd = c.fd;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Server::close_conn(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  conns_.erase(fd);
}

volatile std::sig_atomic_t g_stop = 0;

int Server::run() {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(cfg_.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4096) != 0) {
    std::perror("s3_ceiling: bind/listen");
    return 1;
  }
  epfd_ = epoll_create1(0);
  epoll_event ev{EPOLLIN, {}};
  ev.data.fd = lfd;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, lfd, &ev);
  std::fprintf(stderr, "s3_ceiling listening on http://127.0.0.1:%d latency %d ms, rates %g writes/s %g reads/s\n",
               cfg_.port, cfg_.latency_ms, cfg_.write_rate, cfg_.read_rate);
  std::vector<epoll_event> events(1024);
  while (g_stop == 0) {
    int timeout = -1;
    if (!pending_.empty()) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(pending_.front().due - Clock::now()).count();
      timeout = static_cast<int>(std::max<long>(0, ms));
    }
    const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout);
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (cfd < 0) break;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{EPOLLIN, {}};
          cev.data.fd = cfd;
          epoll_ctl(epfd_, EPOLL_CTL_ADD, cfd, &cev);
          conns_[cfd] = Conn{cfd, next_gen_++, {}, {}, false};
          ++stats_.connections;
        }
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      const auto e = events[static_cast<std::size_t>(i)].events;
      if ((e & (EPOLLERR | EPOLLHUP)) != 0U) {
        close_conn(fd);
        continue;
      }
      if ((e & EPOLLOUT) != 0U) flush(it->second);
      if ((e & EPOLLIN) != 0U && conns_.count(fd) != 0U) on_readable(conns_[fd]);
    }
    const auto now = Clock::now();
    while (!pending_.empty() && pending_.front().due <= now) {
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      auto it = conns_.find(p.fd);
      if (it == conns_.end() || it->second.gen != p.gen) continue;
      Conn& c = it->second;
      c.out += p.bytes;
      c.waiting = false;
      flush(c);
      // A request that arrived while this one was held back.
      if (conns_.count(p.fd) != 0U && !c.in.empty()) serve_buffered(c);
    }
  }
  dump_stats(stderr);
  return 0;
}

void Server::dump_stats(FILE* f) const {
  std::fprintf(f, "s3_ceiling: %lu requests, %lu SlowDown, %lu auth failures, %lu connections, cpu %.2f s\n",
               stats_.requests, stats_.slowdowns, stats_.auth_failures, stats_.connections, process_cpu_seconds());
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--port")
      cfg.port = std::stoi(next());
    else if (a == "--latency-ms")
      cfg.latency_ms = std::stoi(next());
    else if (a == "--write-rate")
      cfg.write_rate = std::stod(next());
    else if (a == "--read-rate")
      cfg.read_rate = std::stod(next());
    else if (a == "--access-key")
      cfg.access_key = next();
    else if (a == "--secret-env") {  // the secret is read from the environment, never from argv
      const std::string var = next();
      // Read while parsing argv, before any thread exists.
      // NOLINTNEXTLINE(concurrency-mt-unsafe)
      const char* v = std::getenv(var.c_str());
      cfg.secret = v ? v : "";
    } else if (a == "--bucket") {
      cfg.buckets.push_back(next());
    } else if (a == "--bucket-region") {  // BUCKET=REGION
      const std::string v = next();
      cfg.regions[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    } else if (a == "--preload") {  // BUCKET/PREFIX:COUNT
      const std::string v = next();
      const auto colon = v.rfind(':');
      const auto slash = v.find('/');
      cfg.preload.push_back(
          {v.substr(0, slash), v.substr(slash + 1, colon - slash - 1), std::stol(v.substr(colon + 1))});
    } else {
      std::fprintf(stderr,
                   "usage: s3_ceiling --port N [--latency-ms 30] [--write-rate 3500] [--read-rate 5500]\n"
                   "                  [--access-key K] [--secret-env VAR] --bucket B... [--preload B/PREFIX:COUNT]...\n"
                   "                  [--bucket-region B=REGION]...\n");
      return 2;
    }
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGPIPE, SIG_IGN);
  Server s(cfg);
  return s.run();
}
