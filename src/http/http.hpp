// Asynchronous HTTP/1.1 over libcurl's multi interface, driven by EventLoop:
// one thread, hundreds of transfers in flight, connections kept alive and
// reused. Knows nothing of S3: a request goes out, a response (or a transport
// error) comes back to a callback on the loop's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/loop.hpp"

namespace assetmv::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // fully encoded
  std::vector<Header> headers;
  std::string body;
  std::chrono::milliseconds timeout{0};  // whole exchange; 0 uses the client's default
};

struct Response {
  int curl_code = 0;       // 0 when an HTTP response arrived
  std::string curl_error;  // curl's message when curl_code != 0
  int status = 0;
  std::vector<Header> headers;  // names lower-cased, in arrival order
  std::string body;
  double seconds = 0;  // wall time of the exchange

  bool transport_ok() const { return curl_code == 0; }
  std::optional<std::string_view> header(std::string_view lower_name) const;
};

struct ClientOptions {
  int max_connections = 512;  // pool size; kept alive between requests
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{60'000};
  // A transfer below this many bytes per second for low_speed_time fails:
  // catches a peer that accepted the connection and then went silent.
  long low_speed_limit = 1;
  std::chrono::seconds low_speed_time{30};
  bool verify_tls = true;
  std::string ca_file;                           // empty: the system store
  std::size_t max_response_bytes = 64ULL << 20;  // a larger body is an error, not an OOM
  std::string user_agent = "assetmv/0.1";
};

struct ClientStats {
  std::uint64_t requests = 0;
  std::uint64_t transport_errors = 0;
  std::uint64_t connections_opened = 0;  // fewer than requests means keep-alive worked
  std::uint64_t bytes_received = 0;
};

class Client {
 public:
  using Callback = std::function<void(Response)>;

  Client(EventLoop& loop, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the exchange; cb runs on the loop's thread when it ends, never
  // from inside send() itself.
  void send(Request request, Callback cb);
  std::size_t in_flight() const;
  const ClientStats& stats() const;
  const ClientOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The proxies curl would take from the environment (http_proxy,
// https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY, no_proxy/NO_PROXY), found
// with curl 7.88's own precedence: lower case first, never HTTP_PROXY (a
// CGI program's request header would set it), an empty variable as unset.
// curl reads them with five getenv calls per request unless told; the
// client reads them once, through getenv, and tells every handle.
struct ProxySettings {
  std::string http;      // for http:// URLs; empty: none
  std::string https;     // for https:// URLs; empty: none
  std::string no_proxy;  // hosts reached directly, in curl's no_proxy syntax
};
ProxySettings proxy_settings(const std::function<const char*(const char*)>& getenv);

// The standard reason phrase of the statuses S3 uses ("Slow Down" for 503,
// as S3 sends it); "Status" for others. For servers written for tests and benches.
std::string_view reason_phrase(int status);

}  // namespace assetmv::http
