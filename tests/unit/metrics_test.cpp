// The metrics layer: the exposition format, the listen address, and the
// server answering a real HTTP GET on loopback; and the run's page.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "cli/metrics_page.hpp"
#include "metrics/exposition.hpp"
#include "metrics/server.hpp"

using namespace assetmv;

namespace {

struct Fetched {
  long status = 0;
  std::string body;
  std::string content_type;
};

Fetched fetch(const std::string& url) {
  Fetched f;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(p, n);
        return n;
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &f.body);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
    char* ct = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != nullptr) f.content_type = ct;
  }
  curl_easy_cleanup(c);
  return f;
}

}  // namespace

TEST(Exposition, FamiliesSamplesAndEscapedLabels) {
  metrics::Exposition e;
  e.family("x_total", "counter", "Things");
  e.sample("x_total", {{"outcome", "ok"}}, 3);
  e.sample("x_total", {{"op", "a\"b\\c\nd"}}, 0.25);
  e.sample("y", {}, 12345678901.0);
  EXPECT_EQ(e.text(),
            "# HELP x_total Things\n# TYPE x_total counter\n"
            "x_total{outcome=\"ok\"} 3\n"
            "x_total{op=\"a\\\"b\\\\c\\nd\"} 0.25\n"
            "y 12345678901\n");
  EXPECT_EQ(metrics::format_value(1.0 / 0.0), "+Inf");
}

TEST(Exposition, HistogramBucketsAreCumulativeEndingInInf) {
  Histogram h;
  h.observe(std::chrono::microseconds(500));  // <= 0.001
  h.observe(std::chrono::milliseconds(30));   // <= 0.05
  h.observe(std::chrono::seconds(20));        // +Inf only
  metrics::Exposition e;
  e.histogram("lat_seconds", {{"operation", "CopyObject"}}, h);
  const auto& t = e.text();
  EXPECT_NE(t.find("lat_seconds_bucket{operation=\"CopyObject\",le=\"0.001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{operation=\"CopyObject\",le=\"0.025\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{operation=\"CopyObject\",le=\"0.05\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{operation=\"CopyObject\",le=\"10\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{operation=\"CopyObject\",le=\"+Inf\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_count{operation=\"CopyObject\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_sum{operation=\"CopyObject\"} 20.03"), std::string::npos) << t;
}

TEST(ListenAddress, PortAloneIsLoopbackAndBadPortsAreRefused) {
  auto a = metrics::parse_listen_address("9464");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "9464");
  auto b = metrics::parse_listen_address("0.0.0.0:80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "0.0.0.0");
  auto c = metrics::parse_listen_address("[::1]:9464");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->display(), "[::1]:9464");
  for (const char* bad : {"", "host:", "70000", "x:abc", "[::1]9464", "-1"})
    EXPECT_FALSE(metrics::parse_listen_address(bad)) << bad;
}

TEST(MetricsServer, ServesTheLatestPageAndRefusesOtherPaths) {
  auto s = metrics::Server::start({"127.0.0.1", "0"});
  ASSERT_TRUE(s) << s.error();
  ASSERT_GT((*s)->port(), 0);
  const std::string base = "http://127.0.0.1:" + std::to_string((*s)->port());
  (*s)->publish("a 1\n");
  (*s)->publish("a 2\n");
  auto f = fetch(base + "/metrics");
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "a 2\n");
  EXPECT_EQ(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(fetch(base + "/").status, 404);
}

TEST(MetricsServer, APortInUseOrAnUnknownHostIsOneClearError) {
  auto first = metrics::Server::start({"127.0.0.1", "0"});
  ASSERT_TRUE(first);
  auto second = metrics::Server::start({"127.0.0.1", std::to_string((*first)->port())});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("Address already in use"), std::string::npos) << second.error();
  auto far = metrics::Server::start({"192.0.2.1", "9464"});  // TEST-NET-1: not this machine's
  ASSERT_FALSE(far);
  EXPECT_NE(far.error().find("cannot listen"), std::string::npos) << far.error();
  auto unknown = metrics::Server::start({"no-such-host.invalid", "9464"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("cannot resolve"), std::string::npos) << unknown.error();
}

TEST(MetricsPage, CountsByOutcomeRequestsPauseAndBuildInfo) {
  engine::Counts counts;
  counts.objects_copied = 7;
  counts.rows_rewritten = 9;
  counts.legacy_objects_deleted = 7;
  s3::ClientStats st;
  st.by_operation["CopyObject"] = {
      .requests = 10, .retries = 2, .throttled = 1, .failed = 0, .answered_ok = 8, .errors = 1};
  st.latency["CopyObject"].observe(std::chrono::milliseconds(3));
  cli::MetricsView v;
  v.command = "migrate";
  v.version = "9.9";
  v.commit = "abc";
  v.shard = "2/4";
  v.counts = &counts;
  v.s3 = &st;
  v.progress.legacy_rows = 10;
  v.progress.rows_done = 5;
  v.progress.objects_listed = 12;  // as the listing goes: the counts have it only at the end
  v.progress.paused = true;
  v.pause_reason = "operator";
  const auto page = cli::render_metrics(v);
  for (const char* line :
       {"assetmv_objects_total{outcome=\"copied\"} 7\n", "assetmv_objects_total{outcome=\"deleted\"} 7\n",
        "assetmv_rows_total{outcome=\"rewritten\"} 9\n", "assetmv_objects_listed_total 12\n",
        "assetmv_s3_requests_total{operation=\"CopyObject\",outcome=\"ok\"} 8\n",
        "assetmv_s3_requests_total{operation=\"CopyObject\",outcome=\"throttled\"} 1\n",
        "assetmv_s3_retries_total{operation=\"CopyObject\"} 2\n",
        "assetmv_s3_request_duration_seconds_count{operation=\"CopyObject\"} 1\n",
        "assetmv_paused{reason=\"operator\"} 1\n", "assetmv_paused{reason=\"replica_lag\"} 0\n",
        "assetmv_progress_ratio 0.5\n",
        "assetmv_build_info{version=\"9.9\",revision=\"abc\",command=\"migrate\",shard=\"2/4\"} 1\n"})
    EXPECT_NE(page.find(line), std::string::npos) << line << "\n" << page;
}
