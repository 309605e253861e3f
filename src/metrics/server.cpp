#include "metrics/server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace assetmv::metrics {

namespace {

constexpr int kListenBacklog = 16;            // scrapers, not users: a handful at most
constexpr unsigned kMaxConnections = 16;      // a scraper storm cannot take the run's descriptors
constexpr unsigned kConnectionTimeoutS = 10;  // a scraper that stalls is dropped, not waited for
constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct AddrInfoFree {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

// The listening socket is ours, so a bind failure comes back with errno's
// words instead of libmicrohttpd's bare NULL.
tl::expected<int, std::string> listen_on(const ListenAddress& a, int& port, std::string& bound) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res); rc != 0)
    return tl::unexpected(fmt::format("--metrics-addr {}: cannot resolve: {}", a.display(), gai_strerror(rc)));
  std::unique_ptr<addrinfo, AddrInfoFree> owned(res);
  std::string why = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = errno_text(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, kListenBacklog) != 0) {
      why = errno_text(errno);
      close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    bound = ss.ss_family == AF_INET6 ? fmt::format("[{}]:{}", host, serv) : fmt::format("{}:{}", host, serv);
    return fd;
  }
  return tl::unexpected(fmt::format("--metrics-addr {}: cannot listen: {}", a.display(), why));
}

}  // namespace

std::string ListenAddress::display() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

tl::expected<ListenAddress, std::string> parse_listen_address(const std::string& text) {
  ListenAddress a;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return tl::unexpected(fmt::format("--metrics-addr {:?}: expected [IPv6]:PORT", text));
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  } else {
    port = text;
  }
  if (a.host.empty()) a.host = "127.0.0.1";
  const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(port) > 65535)
    return tl::unexpected(fmt::format("--metrics-addr {:?}: the port must be a number from 0 to 65535", text));
  a.port = port;
  return a;
}

struct Server::Daemon {
  MHD_Daemon* d = nullptr;
  ~Daemon() {
    if (d != nullptr) MHD_stop_daemon(d);  // joins its thread and closes the socket
  }
};

std::string Server::page() const {
  std::lock_guard lock(mu_);
  return page_;
}

void Server::publish(std::string page) {
  std::lock_guard lock(mu_);
  page_ = std::move(page);
}

namespace {

MHD_Result answer(MHD_Connection* c, unsigned status, std::string_view body, std::string_view type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, std::string(type).c_str());
  const MHD_Result q = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return q;
}

}  // namespace

tl::expected<std::unique_ptr<Server>, std::string> Server::start(const ListenAddress& address) {
  std::unique_ptr<Server> s(new Server());
  auto fd = listen_on(address, s->port_, s->bound_);
  if (!fd) return tl::unexpected(fd.error());
  // Called on libmicrohttpd's thread; reads only the published page.
  MHD_AccessHandlerCallback handler = [](void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                                         const char*, size_t*, void**) -> MHD_Result {
    const auto* self = static_cast<const Server*>(cls);
    if (std::string_view(method) != "GET" && std::string_view(method) != "HEAD")
      return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
    if (std::string_view(url) != "/metrics") return answer(c, MHD_HTTP_NOT_FOUND, "see /metrics\n", "text/plain");
    return answer(c, MHD_HTTP_OK, self->page(), kContentType);
  };
  s->daemon_ = std::make_unique<Daemon>();
  s->daemon_->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, nullptr, nullptr, handler,
                                   s.get(), MHD_OPTION_LISTEN_SOCKET, *fd, MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
                                   MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutS, MHD_OPTION_END);
  if (s->daemon_->d == nullptr) {
    close(*fd);
    return tl::unexpected(fmt::format("--metrics-addr {}: cannot start the HTTP server", address.display()));
  }
  return s;
}

Server::~Server() = default;

}  // namespace assetmv::metrics
