// A tiny threaded HTTP/1.1 server on loopback for unit tests of the http and
// s3 layers: scripted answers, keep-alive, and misbehaviour on demand (close
// without answering, truncate a body, never answer). Never the proof that the
// product works: integration tests run against the real gateway.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace assetmv::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path?query as sent
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
};

struct FakeResponse {
  // AnswerThenClose: a whole keep-alive answer, then the connection closed,
  // as a server closes an idle connection. Trickle: the body a byte at a
  // time, one every trickle_ms (a slow link, not a dead one).
  enum class Mode { Normal, CloseWithoutAnswer, TruncateBody, Hang, AnswerThenClose, Trickle };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Mode mode = Mode::Normal;
  int trickle_ms = 0;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections_accepted() const { return accepted_.load(); }
  int requests_seen() const { return requests_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> client_fds_;
};

}  // namespace assetmv::testing
