// Serves /metrics over HTTP for a Prometheus server to scrape, from its own
// thread (libmicrohttpd's), so that a slow or stuck scraper never delays the
// event loop and the loop never delays a scrape. The run publishes a rendered
// page a few times per second; a scrape answers the latest one.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/error.hpp"

namespace assetmv::metrics {

struct ListenAddress {
  std::string host;  // a name or a literal; IPv6 in [brackets] on the command line
  std::string port;
  std::string display() const;
};

// "[HOST:]PORT": loopback when no host is given (the metrics of a run against
// production are not for the world unless asked). Pure.
tl::expected<ListenAddress, std::string> parse_listen_address(const std::string& text);

class Server {
 public:
  // Binds and listens, or says why not (the address cannot be resolved or
  // bound, the port is in use) before anything else starts.
  static tl::expected<std::unique_ptr<Server>, std::string> start(const ListenAddress& address);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void publish(std::string page);
  int port() const { return port_; }  // the one bound (useful with port 0)
  const std::string& bound() const { return bound_; }

 private:
  struct Daemon;
  Server() = default;
  std::string page() const;

  mutable std::mutex mu_;
  std::string page_;
  int port_ = 0;
  std::string bound_;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace assetmv::metrics
