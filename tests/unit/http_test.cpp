// The http layer on its own: pooled easy handles keep their options across
// requests of every verb, so nothing of one exchange (verb, body, NOBODY,
// headers) may leak into the next one on the same handle.
#include "http/http.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/fake_http_server.hpp"

using namespace assetmv;
using assetmv::testing::FakeHttpServer;
using assetmv::testing::FakeRequest;
using assetmv::testing::FakeResponse;

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One request, the loop run until its answer.
http::Response exchange(EventLoop& loop, http::Client& client, http::Request rq) {
  bool done = false;
  http::Response got;
  client.send(std::move(rq), [&](http::Response r) {
    got = std::move(r);
    done = true;
  });
  EXPECT_TRUE(loop.run_until("one request", [&] { return done; }));
  return got;
}
}  // namespace

TEST(HttpClient, AReusedHandleCarriesNothingOfTheLastExchange) {
  std::mutex mu;
  std::vector<FakeRequest> seen;
  FakeHttpServer server([&](const FakeRequest& r) {
    std::lock_guard lock(mu);
    seen.push_back(r);
    return FakeResponse{200, {{"X-Seen", r.method}}, r.method == "HEAD" ? "" : "answer to " + r.method};
  });
  EventLoop loop;
  http::ClientOptions opt;
  opt.max_connections = 1;
  http::Client client(loop, opt);

  struct Step {
    std::string method;
    std::vector<http::Header> headers;
    std::string body;
    std::string target = "/k";  // path and query, sent exactly so: signed as they are
  };
  // One at a time, so each request takes the handle the previous one left.
  const std::vector<Step> steps = {
      {"PUT", {{"x-amz-meta-a", "1"}, {"Content-Type", "image/png"}}, "png bytes", "/b/a/./b/../c%20d//e"},
      {"HEAD", {{"x-amz-meta-b", "2"}}, ""},
      {"GET", {}, "", "/b?list-type=2&prefix=image%2F&start-after=x"},
      {"POST", {{"content-type", "application/xml"}, {"Accept", "application/xml"}}, "<Delete/>", "/b?delete"},
      {"DELETE", {}, ""},
      {"PUT", {}, "", "/b/k%3Fnot-a-query"},
      {"GET", {{"Range", "bytes=0-1"}}, "", "/"},
  };
  for (const auto& s : steps) {
    http::Request rq;
    rq.method = s.method;
    rq.url = server.url() + s.target;
    rq.headers = s.headers;
    rq.body = s.body;
    const auto got = exchange(loop, client, std::move(rq));
    ASSERT_TRUE(got.transport_ok()) << s.method << ": " << got.curl_error;
    EXPECT_EQ(got.status, 200);
    EXPECT_EQ(got.header("x-seen"), s.method);
    EXPECT_EQ(got.body, s.method == "HEAD" ? "" : "answer to " + s.method);
  }
  ASSERT_EQ(seen.size(), steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& r = seen[i];
    const auto& s = steps[i];
    SCOPED_TRACE(std::to_string(i) + " " + s.method);
    EXPECT_EQ(r.method, s.method);
    EXPECT_EQ(r.target, s.target);
    EXPECT_EQ(r.body, s.body);
    EXPECT_EQ(r.headers.count("expect"), 0U);
    ASSERT_EQ(r.headers.count("user-agent"), 1U);
    EXPECT_EQ(r.headers.at("user-agent"), client.options().user_agent);
    // PUT and POST always say their length (S3 wants it on an empty PUT); the others send no body.
    const bool has_body_verb = s.method == "PUT" || s.method == "POST";
    EXPECT_EQ(r.headers.count("content-length"), has_body_verb ? 1U : 0U);
    if (has_body_verb) {
      EXPECT_EQ(r.headers.at("content-length"), std::to_string(s.body.size()));
    }
    std::set<std::string> sent;
    for (const auto& h : s.headers) {
      sent.insert(lower(h.name));
      ASSERT_EQ(r.headers.count(lower(h.name)), 1U) << h.name;
      EXPECT_EQ(r.headers.at(lower(h.name)), h.value);
    }
    // No header of an earlier step, and never curl's form Content-Type or Accept unasked.
    for (const char* other : {"x-amz-meta-a", "x-amz-meta-b", "range", "content-type", "accept"}) {
      if (sent.count(other) == 0) {
        EXPECT_EQ(r.headers.count(other), 0U) << other;
      }
    }
  }
  EXPECT_EQ(client.stats().connections_opened, 1U);
}

// An idle connection stays registered with the loop under a passive watch (no
// epoll_ctl per request), keeps no wait alive, and its closing by the server
// is noticed: the registration goes, and the next request connects anew.
TEST(HttpClient, AnIdleConnectionIsWatchedPassivelyUntilTheServerClosesIt) {
  std::atomic<int> n{0};
  FakeHttpServer server([&](const FakeRequest&) {
    FakeResponse r{200, {}, "ok"};
    if (++n == 2) r.mode = FakeResponse::Mode::AnswerThenClose;
    return r;
  });
  EventLoop loop;
  http::ClientOptions opt;
  opt.max_connections = 1;
  http::Client client(loop, opt);
  auto get = [&] {
    http::Request rq;
    rq.method = "GET";
    rq.url = server.url() + "/k";
    return exchange(loop, client, std::move(rq));
  };
  auto r1 = get();
  ASSERT_TRUE(r1.transport_ok()) << r1.curl_error;
  EXPECT_EQ(loop.passive_watches(), 1U);
  EXPECT_TRUE(loop.nothing_pending());
  EXPECT_FALSE(loop.run_until("nothing, with only an idle connection", [] { return false; }));

  auto r2 = get();  // the same connection, which the server then closes
  ASSERT_TRUE(r2.transport_ok()) << r2.curl_error;
  EXPECT_EQ(server.connections_accepted(), 1);
  for (int i = 0; i < 40 && loop.passive_watches() > 0; ++i) loop.run_once(std::chrono::milliseconds(50));
  EXPECT_EQ(loop.passive_watches(), 0U) << "the closing of the idle connection went unnoticed";

  auto r3 = get();
  ASSERT_TRUE(r3.transport_ok()) << r3.curl_error;
  EXPECT_EQ(r3.status, 200);
  EXPECT_EQ(server.connections_accepted(), 2);
  EXPECT_EQ(client.stats().connections_opened, 2U);
  EXPECT_EQ(loop.passive_watches(), 1U);
}

// The connections are split over several curl multi handles (a shorter pool
// for curl to walk per request): the cap stays the client's, not each
// handle's, and requests beyond it wait for a connection instead of failing.
TEST(HttpClient, TheConnectionCapIsTheClientsAcrossItsMultiHandles) {
  FakeHttpServer server([](const FakeRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // keeps every connection busy a while
    return FakeResponse{200, {}, "ok"};
  });
  for (const int cap : {1, 3, 20}) {
    SCOPED_TRACE("max_connections " + std::to_string(cap));
    const int before = server.connections_accepted();
    EventLoop loop;
    http::ClientOptions opt;
    opt.max_connections = cap;
    http::Client client(loop, opt);
    constexpr int kRequests = 60;
    int done = 0;
    int ok = 0;
    for (int i = 0; i < kRequests; ++i) {
      http::Request rq;
      rq.method = "GET";
      rq.url = server.url() + "/k" + std::to_string(i);
      client.send(std::move(rq), [&](const http::Response& r) {
        ++done;
        if (r.transport_ok() && r.status == 200) ++ok;
      });
    }
    EXPECT_EQ(client.in_flight(), static_cast<std::size_t>(kRequests));
    ASSERT_TRUE(loop.run_until("all requests", [&] { return done == kRequests; }));
    EXPECT_EQ(ok, kRequests);
    const int opened = server.connections_accepted() - before;
    EXPECT_LE(opened, cap) << "more connections than the client's cap";
    EXPECT_GE(opened, std::min(cap, 3)) << "the requests did not spread over the connections";
    EXPECT_EQ(client.stats().connections_opened, static_cast<std::uint64_t>(opened));
  }
}

namespace {
// The proxy variables set as given for the scope, and put back after it.
// The unit tests run on one thread, so changing the environment is safe.
// NOLINTBEGIN(concurrency-mt-unsafe)
class ProxyEnv {
 public:
  explicit ProxyEnv(std::initializer_list<std::pair<const char*, const char*>> set) {
    for (const char* n : kNames) {
      const char* v = std::getenv(n);
      saved_.emplace_back(n, v != nullptr ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
    for (const auto& [n, v] : set) ::setenv(n, v, 1);
  }
  ~ProxyEnv() {
    for (const auto& [n, v] : saved_) v ? ::setenv(n.c_str(), v->c_str(), 1) : ::unsetenv(n.c_str());
  }
  ProxyEnv(const ProxyEnv&) = delete;
  ProxyEnv& operator=(const ProxyEnv&) = delete;

 private:
  static constexpr std::array kNames = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};
// NOLINTEND(concurrency-mt-unsafe)

http::ProxySettings proxies_with(std::map<std::string, std::string> env) {
  return http::proxy_settings([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

// curl 7.88's precedence, which the client now applies once instead of
// letting curl read the environment on every request.
TEST(ProxySettings, FollowCurlsPrecedence) {
  auto p = proxies_with({});
  EXPECT_EQ(p.http, "");
  EXPECT_EQ(p.https, "");
  EXPECT_EQ(p.no_proxy, "");

  p = proxies_with({{"http_proxy", "h:1"}});
  EXPECT_EQ(p.http, "h:1");
  EXPECT_EQ(p.https, "");
  EXPECT_EQ(proxies_with({{"HTTP_PROXY", "h:1"}}).http, "") << "curl never reads HTTP_PROXY (CGI)";

  EXPECT_EQ(proxies_with({{"HTTPS_PROXY", "s:1"}}).https, "s:1");
  EXPECT_EQ(proxies_with({{"https_proxy", "s:2"}, {"HTTPS_PROXY", "s:1"}}).https, "s:2");
  EXPECT_EQ(proxies_with({{"https_proxy", ""}, {"HTTPS_PROXY", "s:1"}}).https, "s:1") << "empty is unset";

  p = proxies_with({{"ALL_PROXY", "a:1"}});
  EXPECT_EQ(p.http, "a:1");
  EXPECT_EQ(p.https, "a:1");
  p = proxies_with({{"all_proxy", "a:2"}, {"ALL_PROXY", "a:1"}, {"http_proxy", "h:1"}});
  EXPECT_EQ(p.http, "h:1");
  EXPECT_EQ(p.https, "a:2");

  EXPECT_EQ(proxies_with({{"NO_PROXY", "x"}}).no_proxy, "x");
  EXPECT_EQ(proxies_with({{"no_proxy", "y"}, {"NO_PROXY", "x"}}).no_proxy, "y");
  EXPECT_EQ(proxies_with({{"no_proxy", ""}, {"NO_PROXY", "x"}}).no_proxy, "x");
}

// Through real curl: the fake server as a forward proxy. 127.0.0.2:9 is a
// loopback address where nothing listens, so a request that bypasses the
// proxy fails at once with a refused connection.
TEST(HttpClient, ProxiesFromTheEnvironmentAreUsedAsCurlWould) {
  FakeHttpServer proxy([](const FakeRequest& r) { return FakeResponse{200, {}, "via proxy " + r.target}; });
  // Through a plain-HTTP proxy the request target is the absolute URL, as
  // given: dot segments kept, query included.
  const std::string target = "http://127.0.0.2:9/b/./k/../k?list-type=2&prefix=a%2Fb";
  auto get = [&] {
    EventLoop loop;
    http::Client client(loop, {});
    http::Request rq;
    rq.url = target;
    return exchange(loop, client, std::move(rq));
  };
  {
    ProxyEnv env({{"http_proxy", proxy.url().c_str()}});
    auto r = get();
    ASSERT_TRUE(r.transport_ok()) << r.curl_error;
    EXPECT_EQ(r.body, "via proxy " + target);
  }
  {
    ProxyEnv env({{"ALL_PROXY", proxy.url().c_str()}});
    EXPECT_TRUE(get().transport_ok());
  }
  const int seen = proxy.requests_seen();
  {
    ProxyEnv env({{"http_proxy", proxy.url().c_str()}, {"NO_PROXY", "127.0.0.2"}});
    EXPECT_FALSE(get().transport_ok()) << "no_proxy names the host: reached directly";
  }
  {
    ProxyEnv env({{"HTTP_PROXY", proxy.url().c_str()}});
    EXPECT_FALSE(get().transport_ok()) << "HTTP_PROXY is not curl's";
  }
  {
    ProxyEnv env({{"https_proxy", proxy.url().c_str()}});
    EXPECT_FALSE(get().transport_ok()) << "https_proxy is for https:// URLs only";
  }
  EXPECT_EQ(proxy.requests_seen(), seen);
}

// A peer that goes silent is abandoned after low_speed_time (curl's
// low-speed check, at 1 byte/s); one that is slow but moving is not,
// however long it takes within the request's timeout.
TEST(HttpClient, ASilentPeerIsAbandonedAfterTheStallTimeoutAndASlowOneIsNot) {
  FakeHttpServer server([](const FakeRequest& r) {
    if (r.target == "/silent") return FakeResponse{200, {}, "", FakeResponse::Mode::Hang};
    FakeResponse slow{200, {}, "0123456789", FakeResponse::Mode::Trickle};
    slow.trickle_ms = 300;  // 3 s in all, a byte every 0.3 s
    return slow;
  });
  EventLoop loop;
  http::ClientOptions o;
  o.low_speed_time = std::chrono::seconds(1);
  o.request_timeout = std::chrono::seconds(60);
  http::Client client(loop, o);
  const auto t0 = std::chrono::steady_clock::now();
  auto silent = exchange(loop, client, {"GET", server.url() + "/silent", {}, {}, {}});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(silent.curl_code, 28);  // CURLE_OPERATION_TIMEDOUT: retried as a timeout is
  EXPECT_NE(silent.curl_error.find("too slow"), std::string::npos) << silent.curl_error;
  EXPECT_GE(took, std::chrono::seconds(1));
  EXPECT_LT(took, std::chrono::seconds(4));
  auto slow = exchange(loop, client, {"GET", server.url() + "/slow", {}, {}, {}});
  EXPECT_EQ(slow.curl_code, 0) << slow.curl_error;
  EXPECT_EQ(slow.body, "0123456789");
}
