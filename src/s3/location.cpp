#include "s3/location.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace assetmv::s3 {

namespace {

bool is_digits_and_dots(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}
}  // namespace

Result<Endpoint> Endpoint::parse(std::string_view url) {
  Endpoint ep;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos)
    return fail(ErrorKind::Fatal, "BadEndpoint",
                fmt::format("endpoint '{}' has no scheme (want http:// or https://)", url));
  ep.scheme = std::string(url.substr(0, sep));
  std::transform(ep.scheme.begin(), ep.scheme.end(), ep.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ep.scheme != "http" && ep.scheme != "https")
    return fail(ErrorKind::Fatal, "BadEndpoint", fmt::format("endpoint scheme '{}' is not http or https", ep.scheme));
  auto rest = url.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos)
    return fail(ErrorKind::Fatal, "BadEndpoint",
                fmt::format("endpoint '{}' must be scheme://host[:port] with no path, query or user", url));
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos)
      return fail(ErrorKind::Fatal, "BadEndpoint", fmt::format("endpoint '{}' has an unclosed IPv6 bracket", url));
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':')
        return fail(ErrorKind::Fatal, "BadEndpoint", fmt::format("endpoint '{}' is malformed", url));
      port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return fail(ErrorKind::Fatal, "BadEndpoint", fmt::format("endpoint '{}' has no host", url));
  ep.host = std::string(host);
  if (!port.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p <= 0 || p > 65535)
      return fail(ErrorKind::Fatal, "BadEndpoint", fmt::format("endpoint '{}' has a bad port", url));
    ep.port = p;
  }
  ep.path_style = ep.host_is_literal();
  return ep;
}

Endpoint Endpoint::aws(std::string_view region, bool fips, bool dualstack) {
  Endpoint ep;
  ep.scheme = "https";
  const std::string_view suffix = region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  ep.host = fmt::format("{}{}.{}.{}", fips ? "s3-fips" : "s3", dualstack ? ".dualstack" : "", region, suffix);
  ep.region = std::string(region);
  ep.regional = true;
  ep.fips = fips;
  ep.dualstack = dualstack;
  return ep;
}

Endpoint Endpoint::in_region(std::string_view r) const {
  if (!regional) {
    Endpoint ep = *this;
    ep.region = std::string(r);
    return ep;
  }
  Endpoint ep = aws(r, fips, dualstack);
  ep.path_style = path_style;
  return ep;
}

std::string Endpoint::authority() const {
  const bool default_port = port == 0 || (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return default_port ? host : fmt::format("{}:{}", host, port);
}

bool Endpoint::host_is_literal() const {
  return host.starts_with("[") || is_digits_and_dots(host) || host == "localhost";
}

bool Endpoint::is_aws() const { return host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"); }

Result<Location> Location::parse(std::string_view uri) {
  constexpr std::string_view kScheme = "s3://";
  if (!uri.starts_with(kScheme))
    return fail(ErrorKind::Fatal, "BadLocation", fmt::format("'{}' is not an s3://BUCKET/PREFIX location", uri));
  auto rest = uri.substr(kScheme.size());
  const auto slash = rest.find('/');
  Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  loc.prefix = slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash + 1));
  if (auto problem = bucket_name_problem(loc.bucket); !problem.empty())
    return fail(ErrorKind::Fatal, "BadLocation", fmt::format("'{}': {}", uri, problem));
  if (loc.prefix.size() >= kMaxKeyBytes)
    return fail(ErrorKind::Fatal, "BadLocation", fmt::format("'{}': prefix longer than S3's key limit", uri));
  // Legal in a key, but no XML answer (listing, DeleteObjects) can carry it:
  // almost surely a typo or a shell accident.
  for (const char c : loc.prefix) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return fail(ErrorKind::Fatal, "BadLocation",
                  fmt::format("the prefix of s3://{}/ holds a control character (byte 0x{:02x})", loc.bucket,
                              static_cast<unsigned char>(c)));
  }
  return loc;
}

std::string bucket_name_problem(std::string_view name) {
  if (name.empty()) return "the bucket name is empty";
  if (name.size() < 3 || name.size() > 63) return fmt::format("bucket name '{}' must be 3 to 63 characters", name);
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return fmt::format("bucket name '{}' may hold only a-z, 0-9, '.' and '-'", name);
  }
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back()))
    return fmt::format("bucket name '{}' must start and end with a letter or digit", name);
  if (name.find("..") != std::string_view::npos) return fmt::format("bucket name '{}' has two dots in a row", name);
  if (is_digits_and_dots(name)) return fmt::format("bucket name '{}' looks like an IP address", name);
  return {};
}

bool virtual_host_compatible(std::string_view bucket, bool tls) {
  // A dotted name breaks the wildcard certificate of *.s3.amazonaws.com.
  return bucket_name_problem(bucket).empty() && !(tls && bucket.find('.') != std::string_view::npos);
}

Bucket bucket_on(Endpoint endpoint, std::shared_ptr<credentials::Source> credentials, std::string name) {
  if (!virtual_host_compatible(name, endpoint.scheme == "https")) endpoint.path_style = true;
  return {std::move(endpoint), std::move(credentials), std::move(name), false};
}

}  // namespace assetmv::s3
