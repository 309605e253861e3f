#include "http/http.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "http/curl_alloc.hpp"

namespace assetmv::http {

namespace {

// RAII owners for curl's handles.
struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct MultiDeleter {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;

// Bounds how many idle easy handles we keep for reuse; beyond it they are freed.
constexpr std::size_t kMaxPooledHandles = 1024;
// curl 7.88 picks a connection for each request by walking its multi
// handle's pool (every in-use connection before the first idle one): with
// 256 connections in one pool, splitting them over this many multi handles
// (fewer when the pool is smaller), each request going to the least busy,
// saved 2% of the client's instructions (callgrind).
constexpr int kMaxMultis = 8;
// Room made for a response's headers when the first arrives (S3 sends 6-10).
constexpr std::size_t kExpectedResponseHeaders = 12;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!init_curl_with_caches()) throw std::runtime_error("curl_global_init failed");
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool has_header(const std::vector<Header>& hs, std::string_view lower_name) {
  const auto same = [lower_name](const Header& h) {
    return std::equal(h.name.begin(), h.name.end(), lower_name.begin(), lower_name.end(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  };
  return std::any_of(hs.begin(), hs.end(), same);
}

}  // namespace

std::optional<std::string_view> Response::header(std::string_view lower_name) const {
  for (const auto& h : headers) {
    if (h.name == lower_name) return std::string_view(h.value);
  }
  return std::nullopt;
}

// One exchange in flight: owns what curl points into until it completes, and
// the easy handle that carries it. Handles are pooled with the options that
// never change set once (curl_easy_reset, ~25 setopt calls and a list
// allocation per header line cost 7% of the client's instructions per
// request); a request sets only its own.
struct Transfer {
  EasyPtr easy;
  Request request;
  Response response;
  Client::Callback cb;
  std::size_t max_bytes = 0;
  bool too_large = false;
  // The request's header lines, each ending in '\0', and the list curl reads
  // them through: our nodes, not curl_slist_append's (one malloc per line
  // and a strdup). curl only reads the list (CURLOPT_HTTPHEADER).
  std::string header_text;
  std::vector<curl_slist> header_nodes;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};  // curl's detailed reason ("SSL certificate problem: ...")
  std::size_t multi = 0;                             // the index of the multi handle that carries it
};

namespace {
// Where the path of an absolute URL starts ("http://h:1/k?q" -> 10); npos
// when the URL has no path after its authority.
std::size_t origin_length(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string_view::npos;
  return url.find('/', scheme_end + 3);
}
}  // namespace

ProxySettings proxy_settings(const std::function<const char*(const char*)>& getenv) {
  const auto first = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (const char* v = getenv(n); v != nullptr && *v != '\0') return std::string(v);
    return std::string();
  };
  ProxySettings p;
  const std::string all = first({"all_proxy", "ALL_PROXY"});
  p.http = first({"http_proxy"});
  if (p.http.empty()) p.http = all;
  p.https = first({"https_proxy", "HTTPS_PROXY"});
  if (p.https.empty()) p.https = all;
  p.no_proxy = first({"no_proxy", "NO_PROXY"});
  return p;
}

struct Client::Impl {
  // One curl multi handle with its share of the connections and its own
  // timer. Its address is the userp of curl's callbacks, so it never moves.
  struct Multi {
    Impl* impl = nullptr;
    MultiPtr handle;
    EventLoop::TimerId timer = 0;
    bool timer_armed = false;
    std::size_t in_flight = 0;
  };

  EventLoop& loop;
  ClientOptions opt;
  // Read as the client is made, before its transfers; curl itself reads the same variables unlocked.
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  ProxySettings proxies = proxy_settings([](const char* name) { return std::getenv(name); });
  std::vector<std::unique_ptr<Multi>> multis;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  std::vector<EasyPtr> pool;  // idle handles, their constant options set
  std::string origin;         // configure()'s scratch for a request's origin, its room kept
  ClientStats stats;

  Impl(EventLoop& l, ClientOptions o) : loop(l), opt(std::move(o)) {
    global_init_once();
    // The shares add up to max_connections exactly: the cap is the client's.
    const int total = std::max(opt.max_connections, 1);
    const int n = std::min(kMaxMultis, total);
    for (int i = 0; i < n; ++i) {
      const long share = total / n + (i < total % n ? 1 : 0);
      auto m = std::make_unique<Multi>();
      m->impl = this;
      m->handle.reset(curl_multi_init());
      if (!m->handle) throw std::runtime_error("curl_multi_init failed");
      CURLM* h = m->handle.get();
      curl_multi_setopt(h, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
      curl_multi_setopt(h, CURLMOPT_SOCKETDATA, m.get());
      curl_multi_setopt(h, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
      curl_multi_setopt(h, CURLMOPT_TIMERDATA, m.get());
      curl_multi_setopt(h, CURLMOPT_MAX_TOTAL_CONNECTIONS, share);
      curl_multi_setopt(h, CURLMOPT_MAXCONNECTS, share);
      curl_multi_setopt(h, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_NOTHING));
      multis.push_back(std::move(m));
    }
  }

  ~Impl() {
    for (auto& [easy, t] : active) curl_multi_remove_handle(multis[t->multi]->handle.get(), easy);
    active.clear();
    pool.clear();
    for (auto& m : multis) {
      if (m->timer_armed) loop.cancel(m->timer);
      // The multi handle closes its sockets in cleanup; drop our watches first.
      m->handle.reset();
    }
  }

  // The multi handle with the fewest requests in flight.
  std::size_t least_busy() const {
    std::size_t best = 0;
    for (std::size_t i = 1; i < multis.size(); ++i)
      if (multis[i]->in_flight < multis[best]->in_flight) best = i;
    return best;
  }

  // curl says "watch for reading" when a request goes out on a kept-alive
  // connection and "remove" when its answer is in: an epoll_ctl ADD and DEL
  // per request, 3.6% of the client's CPU (perf). A connection's socket
  // (curl tells us of each through CURLOPT_SOCKOPTFUNCTION and closes each
  // through CURLOPT_CLOSESOCKETFUNCTION) therefore stays registered for
  // reading while idle, under a passive watch: the next request on it costs
  // no system call, and readiness while idle (the server closing it) drops
  // the registration, for curl to find the connection dead before reuse.
  // Other sockets (a resolver's) are watched and unwatched as curl says.
  enum class ConnSocket {
    Other,    // not registered with the loop, or registered for writing too
    Reading,  // registered for reading only, a request on it
    Idle,     // registered for reading only, under the passive watch
  };
  std::unordered_map<curl_socket_t, ConnSocket> conn_sockets;

  EventLoop::IoCallback active_watch(Multi* m, curl_socket_t s) {
    return [this, m, s](bool r, bool w, bool e) {
      int flags = (r ? CURL_CSELECT_IN : 0) | (w ? CURL_CSELECT_OUT : 0) | (e ? CURL_CSELECT_ERR : 0);
      action(*m, s, flags);
    };
  }

  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* m = static_cast<Multi*>(userp);
    Impl* self = m->impl;
    auto conn = self->conn_sockets.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (conn != self->conn_sockets.end() && conn->second != ConnSocket::Other) {
        conn->second = ConnSocket::Idle;
        self->loop.rebind(
            s, [self, s](bool, bool, bool) { self->on_idle_ready(s); }, true);
        return 0;
      }
      self->loop.unwatch(s);
      if (conn != self->conn_sockets.end()) conn->second = ConnSocket::Other;
      return 0;
    }
    const bool rd = what == CURL_POLL_IN || what == CURL_POLL_INOUT;
    const bool wr = what == CURL_POLL_OUT || what == CURL_POLL_INOUT;
    if (conn != self->conn_sockets.end() && conn->second == ConnSocket::Idle && rd && !wr &&
        self->loop.rebind(s, self->active_watch(m, s), false)) {
      conn->second = ConnSocket::Reading;
      return 0;
    }
    self->loop.watch(s, rd, wr, self->active_watch(m, s));
    if (conn != self->conn_sockets.end()) conn->second = rd && !wr ? ConnSocket::Reading : ConnSocket::Other;
    return 0;
  }

  // An idle connection became readable or failed: nothing of ours is on it.
  void on_idle_ready(curl_socket_t s) {
    loop.unwatch(s);
    if (auto conn = conn_sockets.find(s); conn != conn_sockets.end()) conn->second = ConnSocket::Other;
  }

  static int on_sockopt(void* userp, curl_socket_t s, curlsocktype purpose) {
    auto* self = static_cast<Impl*>(userp);
    if (purpose == CURLSOCKTYPE_IPCXN) self->conn_sockets[s] = ConnSocket::Other;
    return CURL_SOCKOPT_OK;
  }

  static int on_close_socket(void* userp, curl_socket_t s) {
    auto* self = static_cast<Impl*>(userp);
    self->loop.unwatch(s);  // before close: the number may be reused at once
    self->conn_sockets.erase(s);
    return ::close(s);
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* m = static_cast<Multi*>(userp);
    Impl* self = m->impl;
    if (m->timer_armed) {
      self->loop.cancel(m->timer);
      m->timer_armed = false;
    }
    if (timeout_ms >= 0) {
      m->timer_armed = true;
      m->timer = self->loop.call_after(std::chrono::milliseconds(timeout_ms), [self, m] {
        m->timer_armed = false;
        self->action(*m, CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t len = size * n;
    if (t->response.body.size() + len > t->max_bytes) {
      t->too_large = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->response.body.append(data, len);
    return len;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t len = size * n;
    std::string_view line(data, len);
    if (line.starts_with("HTTP/")) {
      t->response.headers.clear();  // a new status line: 100 Continue or a redirect came first
      return len;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      // S3 answers with about eight headers: one allocation, not four doublings.
      if (t->response.headers.empty()) t->response.headers.reserve(kExpectedResponseHeaders);
      t->response.headers.push_back({lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
      // A body of known length is read into one allocation, not grown by
      // doubling (which holds up to twice a large object's bytes at once).
      // A HEAD's Content-Length is the object's, with no body to follow.
      const auto& h = t->response.headers.back();
      std::uint64_t length = 0;
      if (h.name == "content-length" && t->request.method != "HEAD" &&
          std::from_chars(h.value.data(), h.value.data() + h.value.size(), length).ec == std::errc() &&
          length <= t->max_bytes)
        t->response.body.reserve(length);
    }
    return len;
  }

  void action(Multi& m, curl_socket_t s, int flags) {
    int running = 0;
    curl_multi_socket_action(m.handle.get(), s, flags, &running);
    drain(m);
  }

  void drain(Multi& m) {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m.handle.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(m.handle.get(), easy);
      --m.in_flight;
      auto it = active.find(easy);
      if (it == active.end()) continue;
      auto t = std::move(it->second);
      active.erase(it);
      finish(*t, code);
      auto cb = std::move(t->cb);
      auto resp = std::move(t->response);
      recycle(std::move(t));
      cb(std::move(resp));
    }
  }

  void finish(Transfer& t, CURLcode code) {
    auto& r = t.response;
    long status = 0;
    curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
    long connects = 0;
    curl_easy_getinfo(t.easy.get(), CURLINFO_NUM_CONNECTS, &connects);
    double total = 0;
    curl_easy_getinfo(t.easy.get(), CURLINFO_TOTAL_TIME, &total);
    stats.connections_opened += static_cast<std::uint64_t>(connects);
    stats.bytes_received += r.body.size();
    r.status = static_cast<int>(status);
    r.seconds = total;
    if (code != CURLE_OK) {
      ++stats.transport_errors;
      r.curl_code = static_cast<int>(code);
      r.curl_error = t.too_large                 ? "response body larger than the configured limit"
                     : t.error_buffer[0] != '\0' ? t.error_buffer.data()
                                                 : curl_easy_strerror(code);
    }
  }

  // A new handle with every option that is the same for all requests.
  static EasyPtr make_handle(const ClientOptions& opt, Impl* self) {
    EasyPtr h(curl_easy_init());
    if (!h) throw std::runtime_error("curl_easy_init failed");
    CURL* e = h.get();
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, opt.low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(opt.low_speed_time.count()));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, opt.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, opt.verify_tls ? 2L : 0L);
    if (!opt.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opt.ca_file.c_str());
    // No CURLOPT_USERAGENT: curl would format "User-Agent: ..." afresh for
    // every request and then copy it into the request; configure() sends it
    // as one of the request's header lines instead.
    // Send the path as signed where curl gets the whole URL (behind a
    // plain-HTTP proxy, see configure()): curl would otherwise squash "/./"
    // and "/../", which are legal in S3 keys, and the signature would no
    // longer match.
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // S3 redirects name another region: an error, not a hop
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    // Only plain HTTP and HTTPS, whatever a URL says.
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    // Every connection's socket, opened and closed (see ConnSocket).
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, &Impl::on_sockopt);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, self);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, self);
    // Set, even empty, so that curl does not read the environment per request.
    curl_easy_setopt(e, CURLOPT_NOPROXY, self->proxies.no_proxy.c_str());
    if (self->proxies.http == self->proxies.https) curl_easy_setopt(e, CURLOPT_PROXY, self->proxies.http.c_str());
    return h;
  }

  // A fresh Transfer on a pooled handle. The Transfer itself is not pooled:
  // kept, its buffers raised the run's peak RSS by 2-6 MB (same live bytes,
  // a more fragmented heap), for less than 1% of the instructions.
  std::unique_ptr<Transfer> take_transfer() {
    auto t = std::make_unique<Transfer>();
    if (pool.empty()) {
      t->easy = make_handle(opt, this);
    } else {
      t->easy = std::move(pool.back());
      pool.pop_back();
    }
    CURL* e = t->easy.get();
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer.data());
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    return t;
  }

  // The handle back to the pool; the Transfer (request body, buffers) is
  // freed, so the handle must not keep pointers into it.
  void recycle(std::unique_ptr<Transfer> t) {
    CURL* e = t->easy.get();
    curl_easy_setopt(e, CURLOPT_PRIVATE, nullptr);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, nullptr);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, nullptr);
    if (pool.size() < kMaxPooledHandles) pool.push_back(std::move(t->easy));
  }

  // Sets what differs between requests. Every such option is set on every
  // request, so nothing of a handle's previous exchange carries over.
  void configure(Transfer& t) {
    CURL* e = t.easy.get();
    set_target(e, t.request);
    const auto timeout = t.request.timeout.count() > 0 ? t.request.timeout : opt.request_timeout;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    const bool posts = set_method(e, t.request);
    set_headers(t, posts);
  }

  // curl parses the URL of every transfer into parts and prints it back
  // whole, every byte through its printf: a long key made that costly. It
  // is given the origin alone ("http://host:port/", the same on every
  // request to a store) and the path and query as the request target,
  // which it copies into the request line verbatim: sent exactly as
  // signed. A plain-HTTP proxy needs the absolute URL as the target: then
  // curl gets the whole URL as before.
  void set_target(CURL* e, const Request& rq) {
    const bool tls = rq.url.starts_with("https:");  // URLs are http: or https: (CURLOPT_PROTOCOLS_STR)
    const std::string& proxy = tls ? proxies.https : proxies.http;
    const std::size_t path_at = origin_length(rq.url);
    const bool proxied_plain_http = !tls && !proxy.empty();
    if (path_at != std::string::npos && !proxied_plain_http) {
      origin.assign(rq.url, 0, path_at + 1);  // curl copies it
      curl_easy_setopt(e, CURLOPT_URL, origin.c_str());
      curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, rq.url.c_str() + path_at);
    } else {
      curl_easy_setopt(e, CURLOPT_URL, rq.url.c_str());
      curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, nullptr);
    }
    if (proxies.http != proxies.https) curl_easy_setopt(e, CURLOPT_PROXY, proxy.c_str());
  }

  // The verb and the body; true when the body goes as POSTFIELDS, to which
  // curl adds its own headers.
  static bool set_method(CURL* e, const Request& rq) {
    // Back to a plain GET first: forgets the last exchange's verb, body and NOBODY.
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr);
    if (rq.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
      return false;
    }
    if (rq.method == "GET") return false;
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq.method.c_str());
    if (rq.method == "DELETE" && rq.body.empty()) return false;
    // POSTFIELDS sends Content-Length even for an empty body, which S3 wants on PUT.
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(rq.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq.body.data());
    return true;
  }

  // No "Expect: 100-continue" round trip (curl asks it only before a body),
  // no form Content-Type that curl would otherwise add to POSTFIELDS we did
  // not label, and no "Accept: */*". Every header byte goes through curl
  // 7.88's printf one byte at a time, and every line here is compared with
  // each header name curl looks for: only the lines that change something.
  void set_headers(Transfer& t, bool posts) {
    const auto& rq = t.request;
    constexpr std::string_view kNoExpect = "Expect:";
    constexpr std::string_view kNoContentType = "Content-Type:";
    constexpr std::string_view kNoAccept = "Accept:";
    constexpr std::string_view kUserAgent = "User-Agent";
    const bool no_expect = !rq.body.empty();
    const bool no_content_type = posts && !has_header(rq.headers, "content-type");
    const bool no_accept = !has_header(rq.headers, "accept");
    const bool user_agent = !opt.user_agent.empty() && !has_header(rq.headers, "user-agent");
    std::size_t bytes = kNoExpect.size() + 1 + kNoContentType.size() + 1 + kNoAccept.size() + 1 + kUserAgent.size() +
                        2 + opt.user_agent.size() + 1;
    for (const auto& h : rq.headers) bytes += h.name.size() + 2 + h.value.size() + 1;
    auto& text = t.header_text;
    text.clear();
    text.reserve(bytes);  // no reallocation below: the nodes point into text as it grows
    auto& nodes = t.header_nodes;
    nodes.clear();
    nodes.reserve(rq.headers.size() + 4);  // ours, and the four lines below at most: one allocation
    auto line = [&](std::string_view name, std::string_view sep, std::string_view value) {
      const std::size_t at = text.size();
      text.append(name).append(sep).append(value).push_back('\0');
      nodes.push_back({text.data() + at, nullptr});
    };
    if (user_agent) line(kUserAgent, ": ", opt.user_agent);
    for (const auto& h : rq.headers) line(h.name, ": ", h.value);
    if (no_expect) line(kNoExpect, "", "");
    if (no_content_type) line(kNoContentType, "", "");
    if (no_accept) line(kNoAccept, "", "");
    for (std::size_t i = 0; i + 1 < nodes.size(); ++i) nodes[i].next = &nodes[i + 1];
    curl_easy_setopt(t.easy.get(), CURLOPT_HTTPHEADER, nodes.data());
  }

  void send(Request request, Callback cb) {
    auto t = take_transfer();
    t->request = std::move(request);
    t->cb = std::move(cb);
    t->max_bytes = opt.max_response_bytes;
    configure(*t);
    ++stats.requests;
    CURL* easy = t->easy.get();
    t->multi = least_busy();
    Multi& m = *multis[t->multi];
    const CURLMcode rc = curl_multi_add_handle(m.handle.get(), easy);
    if (rc != CURLM_OK) {
      Response r;
      r.curl_code = static_cast<int>(CURLE_FAILED_INIT);
      r.curl_error = curl_multi_strerror(rc);
      ++stats.transport_errors;
      loop.post([cb2 = std::move(t->cb), r = std::move(r)]() mutable { cb2(std::move(r)); });
      recycle(std::move(t));
      return;
    }
    ++m.in_flight;
    active.emplace(easy, std::move(t));
  }
};

Client::Client(EventLoop& loop, ClientOptions options) : impl_(std::make_unique<Impl>(loop, std::move(options))) {}
Client::~Client() = default;
void Client::send(Request request, Callback cb) { impl_->send(std::move(request), std::move(cb)); }
std::size_t Client::in_flight() const { return impl_->active.size(); }
const ClientStats& Client::stats() const { return impl_->stats; }
const ClientOptions& Client::options() const { return impl_->opt; }

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Slow Down";
    default:
      return "Status";
  }
}

}  // namespace assetmv::http
