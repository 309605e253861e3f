#include "sigv4/sigv4.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>

namespace assetmv::sigv4 {

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ASCII only, as SigV4 lower-cases header names; independent of the locale.
char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

void append_lower(std::string& out, std::string_view s) {
  const std::size_t at = out.size();
  out.append(s);  // one append, then lower-cased in place: no capacity check per character
  std::transform(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
                 out.begin() + static_cast<std::ptrdiff_t>(at), lower_ascii);
}

// Case-insensitive order of header names: the order of their lower-cased forms.
bool name_less(std::string_view a, std::string_view b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return static_cast<unsigned char>(lower_ascii(x)) < static_cast<unsigned char>(lower_ascii(y));
  });
}

bool name_equal(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return lower_ascii(x) == lower_ascii(y); });
}

// Appends v trimmed, with runs of spaces folded to one, as SigV4 canonical header values require.
void append_folded(std::string& out, std::string_view v) {
  // Nearly every value has nothing to fold: one append.
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  if (!v.empty() && !blank(v.front()) && !blank(v.back()) && v.find('\t') == std::string_view::npos &&
      v.find("  ") == std::string_view::npos) {
    out.append(v);
    return;
  }
  bool space = false;
  bool any = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && any) out.push_back(' ');
    space = false;
    any = true;
    out.push_back(c);
  }
}

// Removes "." and ".." segments and empty segments, keeping a trailing slash.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    auto seg = path.substr(i, j - i);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  const bool trailing = path.size() > 1 && (path.back() == '/' || path.ends_with("/.") || path.ends_with("/.."));
  if (out.empty() || (trailing && !parts.empty())) out += '/';
  return out;
}

std::tm utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

bool uri_decode(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  // Thousands of requests sign within one second: the text is kept per second
  // (gmtime_r and the formatting were ~1.5% of the client's instructions).
  thread_local std::time_t last = 0;
  thread_local std::string text;  // empty: nothing kept yet
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  if (text.empty() || tt != last) {
    const auto tm = utc(t);
    text = fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                       tm.tm_min, tm.tm_sec);
    last = tt;
  }
  return text;
}

std::string amz_day(std::chrono::system_clock::time_point t) { return amz_date(t).substr(0, 8); }

namespace {

// The append forms below build a signature's intermediate texts into
// buffers each thread keeps (signing ran ~8 allocations per request).
void append_canonical_uri(std::string& out, std::string_view path, PathMode mode) {
  if (path.empty()) {
    out += '/';
  } else if (mode == PathMode::S3) {
    out.append(path);
  } else {
    out += uri_encode(normalize_path(path), true);
  }
}

void append_canonical_query(std::string& out, const std::vector<QueryParam>& query) {
  if (query.empty()) return;
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& q : query) enc.emplace_back(uri_encode(q.name, false), uri_encode(q.value, false));
  std::sort(enc.begin(), enc.end());
  bool first = true;
  for (const auto& [k, v] : enc) {
    if (!first) out += '&';
    first = false;
    out += k;
    out += '=';
    out += v;
  }
}

void canonical_headers_into(const std::vector<Header>& headers, CanonicalHeaders& out);

void append_canonical_request(std::string& out, const RequestToSign& req, PathMode mode, const CanonicalHeaders& ch) {
  out.append(req.method).push_back('\n');
  append_canonical_uri(out, req.path, mode);
  out.push_back('\n');
  append_canonical_query(out, req.query);
  out.push_back('\n');
  out.append(ch.block).push_back('\n');
  out.append(ch.signed_headers).push_back('\n');
  out.append(req.payload_hash);
}

void append_credential_scope(std::string& out, std::string_view day, std::string_view region,
                             std::string_view service) {
  out.append(day).append("/").append(region).append("/").append(service).append("/aws4_request");
}

void append_string_to_sign(std::string& out, std::string_view date, std::string_view scope, std::string_view creq) {
  out.append("AWS4-HMAC-SHA256\n").append(date).append("\n").append(scope).append("\n");
  const Sha256 h = sha256(creq);
  append_hex(out, h.data(), h.size());
}

}  // namespace

std::string canonical_uri(std::string_view path, PathMode mode) {
  std::string out;
  append_canonical_uri(out, path, mode);
  return out;
}

std::string canonical_query(const std::vector<QueryParam>& query) {
  std::string out;
  append_canonical_query(out, query);
  return out;
}

CanonicalHeaders canonical_headers(const std::vector<Header>& headers) {
  CanonicalHeaders out;
  canonical_headers_into(headers, out);
  return out;
}

namespace {
void canonical_headers_into(const std::vector<Header>& headers, CanonicalHeaders& out) {
  // Sorted by lower-cased name, built straight into the two strings (no
  // lower-cased copy of each header): this runs for every request. A stable
  // sort keeps the order of repeated headers, whose values join with ','.
  std::array<std::uint8_t, 32> small{};  // a request signs about ten headers
  std::vector<std::size_t> large;
  const std::size_t n = headers.size();
  std::size_t bytes = 0;
  for (const auto& h : headers) bytes += h.name.size() + h.value.size() + 2;
  out.block.clear();
  out.signed_headers.clear();
  out.block.reserve(bytes);
  out.signed_headers.reserve(bytes);
  auto emit = [&](auto begin, auto end) {
    // Insertion sort: stable, and unlike std::stable_sort it allocates no buffer.
    for (auto it = begin; it != end; ++it)
      for (auto j = it; j != begin && name_less(headers[*j].name, headers[*(j - 1)].name); --j)
        std::iter_swap(j, j - 1);
    const Header* prev = nullptr;
    for (auto it = begin; it != end; ++it) {
      const Header& h = headers[*it];
      if (prev != nullptr && name_equal(h.name, prev->name)) {
        out.block.back() = ',';  // was the '\n'
      } else {
        if (!out.signed_headers.empty()) out.signed_headers += ';';
        append_lower(out.signed_headers, h.name);
        append_lower(out.block, h.name);
        out.block += ':';
      }
      append_folded(out.block, h.value);
      out.block += '\n';
      prev = &h;
    }
  };
  if (n <= small.size()) {
    for (std::size_t i = 0; i < n; ++i) small[i] = static_cast<std::uint8_t>(i);
    emit(small.begin(), small.begin() + static_cast<std::ptrdiff_t>(n));
  } else {
    large.resize(n);
    for (std::size_t i = 0; i < n; ++i) large[i] = i;
    emit(large.begin(), large.end());
  }
}
}  // namespace

std::string canonical_request(const RequestToSign& req, PathMode mode) {
  std::string out;
  append_canonical_request(out, req, mode, canonical_headers(req.headers));
  return out;
}

std::string credential_scope(std::string_view day, std::string_view region, std::string_view service) {
  std::string out;
  append_credential_scope(out, day, region, service);
  return out;
}

std::string string_to_sign(std::string_view date, std::string_view scope, std::string_view creq) {
  std::string out;
  append_string_to_sign(out, date, scope, creq);
  return out;
}

Sha256 signing_key(const Secret& secret, std::string_view day, std::string_view region, std::string_view service) {
  const auto k_date = hmac_sha256("AWS4" + secret.reveal(), day);
  const auto k_region = hmac_sha256(as_view(k_date), region);
  const auto k_service = hmac_sha256(as_view(k_region), service);
  return hmac_sha256(as_view(k_service), "aws4_request");
}

std::string signature(const Sha256& key, std::string_view sts) { return hex(hmac_sha256(as_view(key), sts)); }

namespace {
constexpr std::string_view kCredential = "AWS4-HMAC-SHA256 Credential=";
constexpr std::string_view kSignedHeaders = ", SignedHeaders=";
constexpr std::string_view kSignature = ", Signature=";
constexpr std::size_t kSignatureHex = 64;  // a hex HMAC-SHA256

// The Authorization value up to "Signature=", sized for the signature to follow.
std::string authorization_head(std::string_view access_key_id, std::string_view scope,
                               std::string_view signed_headers) {
  std::string out;
  out.reserve(kCredential.size() + access_key_id.size() + 1 + scope.size() + kSignedHeaders.size() +
              signed_headers.size() + kSignature.size() + kSignatureHex);
  out.append(kCredential).append(access_key_id).append("/").append(scope);
  out.append(kSignedHeaders).append(signed_headers).append(kSignature);
  return out;
}
}  // namespace

std::string authorization(std::string_view access_key_id, std::string_view scope, std::string_view signed_headers,
                          std::string_view sig) {
  return authorization_head(access_key_id, scope, signed_headers).append(sig);
}

namespace {

// The signing key depends only on the secret, the day, the region and the
// service, so it is derived once per day and credential rather than with four
// HMACs per request (a fifth of the client's work per object, measured). A
// few entries per thread: a copy between two services signs with two keys.
class SigningKeys {
 public:
  SigningKeys() = default;
  SigningKeys(const SigningKeys&) = delete;
  SigningKeys& operator=(const SigningKeys&) = delete;
  ~SigningKeys() {
    for (auto& e : entries_) {
      volatile std::uint8_t* k = e.key.data();  // derived from the secret: wiped like it
      for (std::size_t i = 0; i < e.key.size(); ++i) k[i] = 0;
    }
  }

  const Sha256& get(const Credentials& c, std::string_view day, std::string_view region, std::string_view service) {
    for (const auto& e : entries_)
      if (e.day == day && e.region == region && e.service == service && e.access_key_id == c.access_key_id &&
          e.secret == c.secret_access_key)
        return e.key;
    Entry& e = entries_[next_++ % entries_.size()];
    e = {c.access_key_id,     c.secret_access_key,  std::string(day),
         std::string(region), std::string(service), signing_key(c.secret_access_key, day, region, service)};
    return e.key;
  }

 private:
  struct Entry {
    std::string access_key_id;
    Secret secret;
    std::string day;  // empty: unused
    std::string region;
    std::string service;
    Sha256 key{};
  };
  std::array<Entry, 4> entries_;
  std::size_t next_ = 0;
};

}  // namespace

std::string sign(RequestToSign& req, const Credentials& creds, const SignParams& p) {
  req.headers.reserve(req.headers.size() + 3);  // the views below stay valid through the push_backs
  req.headers.push_back({"x-amz-date", amz_date(p.now)});
  const std::string_view date = req.headers.back().value;
  const std::string_view day = date.substr(0, 8);
  if (p.service == "s3") req.headers.push_back({"x-amz-content-sha256", req.payload_hash});
  if (!creds.session_token.empty()) req.headers.push_back({"x-amz-security-token", creds.session_token.reveal()});
  // The intermediate texts, in buffers this thread keeps from one signature to the next.
  thread_local std::string scope;
  thread_local CanonicalHeaders ch;
  thread_local std::string creq;
  thread_local std::string sts;
  scope.clear();
  append_credential_scope(scope, day, p.region, p.service);
  canonical_headers_into(req.headers, ch);
  creq.clear();
  append_canonical_request(creq, req, p.path_mode, ch);
  sts.clear();
  append_string_to_sign(sts, date, scope, creq);
  thread_local SigningKeys keys;
  const auto& key = keys.get(creds, day, p.region, p.service);
  std::string out = authorization_head(creds.access_key_id, scope, ch.signed_headers);
  const Sha256 mac = hmac_sha256(as_view(key), sts);
  append_hex(out, mac.data(), mac.size());
  return out;
}

}  // namespace assetmv::sigv4
