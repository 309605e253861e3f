// The S3 client's own logic (retry, pacing, error mapping, keep-alive) against
// a scripted in-process server. The real-gateway proof is in tests/integration.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "../support/fake_http_server.hpp"
#include "../support/scripted_credentials.hpp"
#include "s3/client.hpp"

using namespace assetmv;
using namespace assetmv::s3;
using assetmv::testing::FakeHttpServer;
using assetmv::testing::FakeRequest;
using assetmv::testing::FakeResponse;
using namespace std::chrono_literals;

namespace {

const char* kCopyOk =
    R"(<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult><ETag>"0123456789abcdef0123456789abcdef"</ETag></CopyObjectResult>)";
const char* kInternal =
    R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>try again</Message></Error>)";
const char* kSlowDown =
    R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>)";

struct Harness {
  EventLoop loop;
  std::unique_ptr<http::Client> http;
  std::unique_ptr<Client> s3;
  Bucket bucket;
  explicit Harness(const FakeHttpServer& server, ClientOptions opt = fast_retries(), http::ClientOptions hopt = {}) {
    http = std::make_unique<http::Client>(loop, hopt);
    s3 = std::make_unique<Client>(loop, *http, opt);
    bucket = {*Endpoint::parse(server.url()), credentials::Source::fixed({"AK", Secret("SK"), {}}), "bkt", false};
  }
  static ClientOptions fast_retries() {
    ClientOptions o;
    o.retry.base = 1ms;
    o.retry.throttled_base = 5ms;
    o.retry.cap = 20ms;
    o.retry.max_attempts = 4;
    return o;
  }
};

}  // namespace

TEST(S3Client, CopyWhose200CarriesAnErrorIsRetriedThenSucceeds) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest& r) {
    EXPECT_EQ(r.method, "PUT");
    EXPECT_EQ(r.headers.at("x-amz-copy-source"), "/src/a%20b");
    return FakeResponse{200, {}, calls++ == 0 ? kInternal : kCopyOk};
  });
  Harness h(server);
  auto r = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->copy_object(h.bucket, {"src", "a b", "dst", "", false}, cb);
  });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(*r, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(h.s3->stats().by_operation.at("CopyObject").requests, 2U);
  EXPECT_EQ(h.s3->stats().by_operation.at("CopyObject").retries, 1U);
}

TEST(S3Client, PersistentServerErrorGivesUpAfterMaxAttemptsWithClearMessage) {
  FakeHttpServer server([](const FakeRequest&) { return FakeResponse{500, {}, kInternal}; });
  Harness h(server);
  auto r = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  EXPECT_EQ(server.requests_seen(), 4);
  EXPECT_NE(r.error().message.find("HeadObject s3://bkt/k"), std::string::npos);
  EXPECT_NE(r.error().message.find("after 4 attempts"), std::string::npos);
}

TEST(S3Client, NotFoundAndPreconditionFailedAreNotRetried) {
  FakeHttpServer server([](const FakeRequest& r) {
    if (r.method == "HEAD") return FakeResponse{404, {}, ""};
    return FakeResponse{412, {}, R"(<Error><Code>PreconditionFailed</Code></Error>)"};
  });
  Harness h(server);
  auto head = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().kind, ErrorKind::NotFound);
  auto copy = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->copy_object(h.bucket, {"s", "k", "d", "etag", true}, cb);
  });
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().kind, ErrorKind::PreconditionFailed);
  EXPECT_EQ(server.requests_seen(), 2);
}

// A copy's NoSuchKey is about its source: the message must name it, or the
// operator goes looking for the destination.
TEST(S3Client, ACopysErrorNamesItsSourceBesideItsDestination) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{404, {}, R"(<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>)"};
  });
  Harness h(server);
  auto copy = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->copy_object(h.bucket, {"legacy", "image/a b.png", "avatar/a b.png", "", false}, cb);
  });
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().kind, ErrorKind::NotFound);
  EXPECT_EQ(copy.error().describe(),
            "NoSuchKey: CopyObject s3://bkt/avatar/a b.png from s3://legacy/image/a b.png: gone (HTTP 404)");
  auto head = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().message.find(" from "), std::string::npos);
}

TEST(S3Client, SlowDownShrinksTheSharedWindowAndIsRetried) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    return calls++ < 20 ? FakeResponse{503, {}, kSlowDown} : FakeResponse{200, {{"ETag", "\"e\""}}, ""};
  });
  ClientOptions opt = Harness::fast_retries();
  opt.retry.max_attempts = 30;
  opt.pacer.initial_window = 64;
  opt.pacer.decrease_cooldown = 1ms;
  opt.pacer.throttle_pause = 1ms;
  Harness h(server, opt);
  int done = 0, ok = 0;
  for (int i = 0; i < 10; ++i) {
    h.s3->put_object(h.bucket, "k" + std::to_string(i), "x", {}, [&](Result<std::string> r) {
      ++done;
      if (r) ++ok;
    });
  }
  ASSERT_TRUE(h.loop.run_until("the test", [&] { return done == 10; }));
  EXPECT_EQ(ok, 10);
  EXPECT_LT(h.s3->pacer().window(), 64.0);
  EXPECT_EQ(h.s3->stats().total.throttled, 20U);
}

TEST(S3Client, ConnectionsAreKeptAliveAndReused) {
  FakeHttpServer server([](const FakeRequest&) { return FakeResponse{200, {{"ETag", "\"e\""}}, ""}; });
  ClientOptions opt = Harness::fast_retries();
  opt.pacer.initial_window = 8;
  opt.pacer.max_window = 8;
  Harness h(server, opt);
  int done = 0;
  for (int i = 0; i < 400; ++i) h.s3->put_object(h.bucket, "k", "x", {}, [&](Result<std::string>) { ++done; });
  ASSERT_TRUE(h.loop.run_until("the test", [&] { return done == 400; }));
  EXPECT_LE(server.connections_accepted(), 8);
  EXPECT_LE(h.http->stats().connections_opened, 8U);
  EXPECT_EQ(h.http->stats().requests, 400U);
}

TEST(S3Client, DroppedConnectionAndTruncatedBodyAreRetried) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    const int n = calls++;
    if (n == 0) return FakeResponse{200, {}, "", FakeResponse::Mode::CloseWithoutAnswer};
    if (n == 1) return FakeResponse{200, {}, kCopyOk, FakeResponse::Mode::TruncateBody};
    return FakeResponse{200, {}, kCopyOk};
  });
  Harness h(server);
  auto r = wait<std::string>(h.loop, [&](auto cb) { h.s3->copy_object(h.bucket, {"s", "k", "d", "", false}, cb); });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(calls.load(), 3);
}

TEST(S3Client, ASilentServerTimesOutInsteadOfHanging) {
  FakeHttpServer server([](const FakeRequest&) { return FakeResponse{200, {}, "", FakeResponse::Mode::Hang}; });
  ClientOptions opt = Harness::fast_retries();
  opt.retry.max_attempts = 2;
  http::ClientOptions hopt;
  hopt.request_timeout = 200ms;
  Harness h(server, opt, hopt);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(S3Client, AccessErrorsNameTheKeyButNeverTheSecret) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{403, {}, R"(<Error><Code>SignatureDoesNotMatch</Code><Message></Message></Error>)"};
  });
  Harness h(server);
  auto r = wait<ListPage>(h.loop, [&](auto cb) { h.s3->list_objects_v2(h.bucket, {}, cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::AccessDenied);
  EXPECT_EQ(r.error().code, "SignatureDoesNotMatch");
  EXPECT_NE(r.error().message.find("access key 'AK'"), std::string::npos);
  EXPECT_EQ(r.error().message.find("SK'"), std::string::npos);
  EXPECT_EQ(server.requests_seen(), 1);
}

TEST(S3Client, MultipartCopySendsRangesAndCompletes) {
  std::mutex mu;
  std::vector<std::string> ranges;
  std::string complete_body;
  std::map<std::string, std::string> create_headers;
  std::string tags_put;
  std::vector<std::string> order;
  FakeHttpServer server([&](const FakeRequest& r) {
    std::lock_guard lock(mu);
    // No x-amz-tagging-count (AWS omits it without tags): the tags are read.
    if (r.method == "HEAD")
      return FakeResponse{
          200,
          {{"ETag", "\"e\""}, {"Content-Type", "image/png"}, {"Cache-Control", "max-age=9"}, {"x-amz-meta-o", "u"}},
          ""};
    if (r.target.find("tagging") != std::string::npos) {
      order.push_back(r.method + " tagging");
      if (r.method == "PUT") tags_put = r.body;
      return FakeResponse{200, {}, "<Tagging><TagSet><Tag><Key>t</Key><Value>v</Value></Tag></TagSet></Tagging>"};
    }
    if (r.method == "POST" && r.target.find("uploads") != std::string::npos) {
      create_headers = r.headers;
      return FakeResponse{
          200, {}, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"};
    }
    if (r.method == "PUT") {
      ranges.push_back(r.headers.at("x-amz-copy-source-range"));
      return FakeResponse{200, {}, "<CopyPartResult><ETag>\"p\"</ETag></CopyPartResult>"};
    }
    complete_body = r.body;
    order.push_back("complete");
    return FakeResponse{
        200, {}, "<CompleteMultipartUploadResult><ETag>\"abc-3\"</ETag></CompleteMultipartUploadResult>"};
  });
  Harness h(server);
  auto r = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->multipart_copy(h.bucket, {"s", "k", "d", "e", true}, 25, 10, cb);
  });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(*r, "abc-3");
  std::sort(ranges.begin(), ranges.end());
  EXPECT_EQ(ranges, (std::vector<std::string>{"bytes=0-9", "bytes=10-19", "bytes=20-24"}));
  EXPECT_NE(complete_body.find("<PartNumber>3</PartNumber>"), std::string::npos);
  // The parts carry no headers: the source's headers, metadata, tags and
  // ETag are set on the upload; off AWS the tags are set again after it.
  EXPECT_EQ(create_headers["content-type"], "image/png");
  EXPECT_EQ(create_headers["cache-control"], "max-age=9");
  EXPECT_EQ(create_headers["x-amz-meta-o"], "u");
  EXPECT_EQ(create_headers["x-amz-tagging"], "t=v");
  EXPECT_EQ(create_headers["x-amz-meta-assetmv-source-etag"], "e");
  EXPECT_EQ(order, (std::vector<std::string>{"GET tagging", "complete", "PUT tagging"}));
  EXPECT_NE(tags_put.find("<Key>t</Key><Value>v</Value>"), std::string::npos);
}

TEST(S3Client, MultipartCopyOfAChangedSourceStartsNoUpload) {
  std::atomic<int> posts{0};
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.method == "HEAD") return FakeResponse{200, {{"ETag", "\"newer\""}}, ""};
    ++posts;
    return FakeResponse{500, {}, ""};
  });
  Harness h(server);
  auto r = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->multipart_copy(h.bucket, {"s", "k", "d", "e", false}, 25, 10, cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::PreconditionFailed);
  EXPECT_EQ(posts.load(), 0);
}

TEST(S3Client, MultipartCopyAbortsWhenAPartFails) {
  std::atomic<bool> aborted{false};
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.method == "HEAD") return FakeResponse{200, {{"ETag", "\"e\""}, {"x-amz-tagging-count", "0"}}, ""};
    if (r.method == "POST")
      return FakeResponse{
          200, {}, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"};
    if (r.method == "DELETE") {
      aborted = true;
      return FakeResponse{204, {}, ""};
    }
    return FakeResponse{412, {}, "<Error><Code>PreconditionFailed</Code></Error>"};
  });
  Harness h(server);
  auto r = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->multipart_copy(h.bucket, {"s", "k", "d", "e", false}, 25, 10, cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::PreconditionFailed);
  ASSERT_TRUE(h.loop.run_until("the test", [&] { return aborted.load() && h.s3->idle(); }));
  EXPECT_TRUE(aborted.load());
}

// The preflight's write proof on stores that refuse conditional PUTs (Swift's
// s3api answers 501 to any PUT carrying If-Match): an upload is started and
// aborted; no PUT of an object is ever sent.
TEST(S3Client, ProbeUploadStartsAndAbortsAnUploadWritingNothing) {
  std::mutex mu;
  std::vector<std::string> seen;
  FakeHttpServer server([&](const FakeRequest& r) {
    {
      std::lock_guard lock(mu);
      seen.push_back(r.method + " " + r.target);
    }
    if (r.method == "POST")
      return FakeResponse{
          200, {}, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"};
    if (r.method == "DELETE") return FakeResponse{204, {}, ""};
    return FakeResponse{501, {}, "<Error><Code>NotImplemented</Code><Message>no</Message></Error>"};
  });
  Harness h(server);
  auto r = wait<bool>(h.loop, [&](auto cb) { h.s3->probe_upload(h.bucket, "p/.probe", {}, cb); });
  ASSERT_TRUE(r) << r.error().describe();
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0], "POST /bkt/p/.probe?uploads=");
  EXPECT_EQ(seen[1], "DELETE /bkt/p/.probe?uploadId=U1");
}

// A failure carries the store's request and host ids, from the error body or
// else from the headers, into the message a user reports.
TEST(S3Client, FailuresCarryTheStoresRequestAndHostIds) {
  FakeHttpServer server([](const FakeRequest& r) {
    if (r.method == "HEAD")  // no body: the ids come in headers
      return FakeResponse{403, {{"x-amz-request-id", "REQ-HEAD"}, {"x-amz-id-2", "HOST-HEAD"}}, ""};
    return FakeResponse{500,
                        {{"x-amz-request-id", "REQ-HEADER"}},
                        "<Error><Code>InternalError</Code><Message>m</Message><RequestId>REQ-BODY</"
                        "RequestId><HostId>HOST-BODY</HostId></Error>"};
  });
  ClientOptions opt = Harness::fast_retries();
  opt.retry.max_attempts = 1;
  Harness h(server, opt);
  auto head = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().request_id, "REQ-HEAD");
  EXPECT_EQ(head.error().host_id, "HOST-HEAD");
  EXPECT_NE(head.error().describe().find("request id REQ-HEAD, host id HOST-HEAD"), std::string::npos);
  auto copy = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->copy_object(h.bucket, {"src", "a", "dst", "", false}, cb);
  });
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().request_id, "REQ-BODY");  // the body's id wins over the header's
  EXPECT_EQ(copy.error().host_id, "HOST-BODY");
}

TEST(S3Client, RetryAfterIsReadInSecondsAndCapped) {
  EXPECT_EQ(retry_after("3"), std::chrono::milliseconds(3000));
  EXPECT_EQ(retry_after("0"), std::chrono::milliseconds(0));
  EXPECT_EQ(retry_after("86400"), std::chrono::milliseconds(kMaxRetryAfter));
  EXPECT_FALSE(retry_after(""));
  EXPECT_FALSE(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));  // the date form: not S3's
  EXPECT_FALSE(retry_after("-1"));
  EXPECT_FALSE(retry_after("2x"));
}

// A throttling server that says when to come back is heeded, even when the
// backoff alone would retry sooner.
TEST(S3Client, ARetryWaitsAtLeastTheServersRetryAfter) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    if (calls++ == 0) return FakeResponse{503, {{"Retry-After", "1"}}, kSlowDown};
    return FakeResponse{200, {{"ETag", "\"e\""}}, ""};
  });
  Harness h(server);  // backoffs of a few milliseconds
  const auto start = std::chrono::steady_clock::now();
  auto r = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 950ms);
  EXPECT_EQ(calls.load(), 2);
}

// A stop never waits out a backoff: what waits for a retry is given up at
// once as Interrupted, what is on the wire and fails later is given up
// instead of retried, and nothing more is sent for either.
TEST(S3Client, StopRetryingGivesUpBackoffsNowAndRetriesLater) {
  FakeHttpServer server([](const FakeRequest& r) {
    if (r.target.find("slow") != std::string::npos) std::this_thread::sleep_for(300ms);  // on the wire at the stop
    return FakeResponse{500, {}, kInternal};
  });
  ClientOptions opt;
  opt.retry.base = 10s;  // a backoff the test would notice
  opt.retry.cap = 10s;
  Harness h(server, opt);
  std::optional<Result<ObjectInfo>> waiting;
  std::optional<Result<ObjectInfo>> on_the_wire;
  h.s3->head_object(h.bucket, "k", [&](Result<ObjectInfo> r) { waiting = std::move(r); });
  h.s3->head_object(h.bucket, "slow", [&](Result<ObjectInfo> r) { on_the_wire = std::move(r); });
  // "k" has failed once and waits out its backoff; "slow" is still on the wire.
  ASSERT_TRUE(h.loop.run_until("the first attempts", [&] { return h.s3->in_flight() == 1 && h.s3->queued() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  h.s3->stop_retrying("a stop was requested");
  ASSERT_TRUE(waiting.has_value());
  ASSERT_FALSE(*waiting);
  EXPECT_EQ(waiting->error().kind, ErrorKind::Interrupted);
  EXPECT_NE(waiting->error().message.find("a stop was requested"), std::string::npos);
  ASSERT_TRUE(h.loop.run_until("the request on the wire", [&] { return on_the_wire.has_value(); }));
  ASSERT_FALSE(*on_the_wire);
  EXPECT_EQ(on_the_wire->error().kind, ErrorKind::Interrupted);
  EXPECT_NE(on_the_wire->error().message.find("not retried"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(h.s3->idle());
  EXPECT_EQ(server.requests_seen(), 2);
}

// The caller's Bucket may go away while its operation waits for a retry:
// the operation holds its own (under ASan the old raw pointer was a
// use-after-scope, as in 2e1dda1).
TEST(S3Client, AnOperationOwnsItsBucketAcrossRetries) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest& r) {
    EXPECT_EQ(r.target.rfind("/scoped/k", 0), 0U) << r.target;
    return calls++ < 2 ? FakeResponse{500, {}, kInternal} : FakeResponse{200, {{"ETag", "\"e\""}}, ""};
  });
  Harness h(server);
  std::optional<Result<ObjectInfo>> out;
  {
    auto scoped = std::make_unique<Bucket>(h.bucket);
    scoped->name = "scoped";
    scoped->endpoint.path_style = true;
    h.s3->head_object(*scoped, "k", [&](Result<ObjectInfo> r) { out = std::move(r); });
    // Overwritten and freed before the first retry is sent.
    scoped->name = "overwritten";
  }
  ASSERT_TRUE(h.loop.run_until("the HEAD", [&] { return out.has_value(); }));
  ASSERT_TRUE(*out) << out->error().describe();
  EXPECT_EQ(calls.load(), 3);
}

// An operator's pause: what is queued stays unsent until released.
TEST(S3Client, AHeldClientSendsNothingQueuedUntilReleased) {
  FakeHttpServer server([](const FakeRequest&) { return FakeResponse{200, {{"ETag", "\"e\""}}, ""}; });
  Harness h(server);
  h.s3->set_held(true);
  std::optional<Result<ObjectInfo>> out;
  h.s3->head_object(h.bucket, "k", [&](Result<ObjectInfo> r) { out = std::move(r); });
  const auto until = std::chrono::steady_clock::now() + 100ms;
  h.loop.call_at(until, [] {});
  ASSERT_TRUE(h.loop.run_until("the hold", [&] { return std::chrono::steady_clock::now() >= until; }));
  EXPECT_EQ(server.requests_seen(), 0);
  EXPECT_EQ(h.s3->queued(), 1U);
  h.s3->set_held(false);
  ASSERT_TRUE(h.loop.run_until("the HEAD", [&] { return out.has_value(); }));
  EXPECT_TRUE(*out);
  EXPECT_EQ(server.requests_seen(), 1);
}

// A stop between an upload's start and its parts ends the stream: the upload
// is aborted and the caller answered, never left waiting for parts that will
// not start.
TEST(S3Client, AStreamStoppedBeforeItsPartsAbortsAndAnswers) {
  std::mutex mu;
  std::vector<std::string> seen;
  FakeHttpServer server([&](const FakeRequest& r) {
    {
      std::lock_guard lock(mu);
      seen.push_back(r.method);
    }
    if (r.method == "HEAD") return FakeResponse{200, {{"etag", "\"E\""}, {"x-amz-tagging-count", "0"}}, ""};
    if (r.method == "POST")
      return FakeResponse{
          200, {}, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>"};
    if (r.method == "DELETE") return FakeResponse{204, {}, ""};
    return FakeResponse{500, {}, "<Error><Code>InternalError</Code><Message>no part expected</Message></Error>"};
  });
  Harness h(server);
  ByteBudget budget(64ULL << 20);
  h.s3->stop_retrying("a stop was requested");
  auto r = wait<std::string>(h.loop, [&](auto cb) {
    h.s3->stream_copy(h.bucket, h.bucket, {"bkt", "k", "k2", "E", false}, 12ULL << 20, kMinPartBytes, budget, cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Interrupted) << r.error().describe();
  EXPECT_EQ(budget.held(), 0U);
  ASSERT_TRUE(h.loop.run_until("the abort", [&] { return h.s3->idle(); }));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"HEAD", "POST", "DELETE"}));
}

// ---- credentials that expire, buckets in other regions, partial stores -------

namespace {

std::string scope_key(const FakeRequest& r) {
  const auto& a = r.headers.at("authorization");
  const auto at = a.find("Credential=") + 11;
  return a.substr(at, a.find('/', at) - at);
}

std::string scope_region(const FakeRequest& r) {
  const auto& a = r.headers.at("authorization");
  auto at = a.find("Credential=") + 11;
  at = a.find('/', a.find('/', at) + 1) + 1;  // past the key id and the day
  return a.substr(at, a.find('/', at) - at);
}

// What a scripted server saw, in order, from its own threads.
struct Seen {
  std::mutex mu;
  std::vector<std::string> items;
  void add(std::string item) {
    std::lock_guard lock(mu);
    items.push_back(std::move(item));
  }
};

const char* kExpiredToken =
    R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>)";

}  // namespace

TEST(S3Client, RequestsRefusedForExpiredKeysAreSignedAgainWithFreshOnesAndNotCountedFailures) {
  Seen keys;
  FakeHttpServer server([&](const FakeRequest& r) {
    const auto k = scope_key(r);
    keys.add(k);
    if (k == "K1") return FakeResponse{400, {}, kExpiredToken};
    return FakeResponse{200, {}, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"};
  });
  Harness h(server);
  int fetches = 0;
  auto src = assetmv::testing::scripted_source(h.loop, {{"K1", 3600s}, {"K2", 3600s}}, &fetches);
  ASSERT_TRUE(src);
  h.bucket.credentials = src;
  constexpr int kLists = 20;
  int ok = 0;
  int answered = 0;
  for (int i = 0; i < kLists; ++i)
    h.s3->list_objects_v2(h.bucket, {}, [&](Result<ListPage> r) {
      ++answered;
      ok += r ? 1 : 0;
    });
  ASSERT_TRUE(h.loop.run_until("the listings", [&] { return answered == kLists; }));
  EXPECT_EQ(ok, kLists);
  EXPECT_EQ(fetches, 2);  // one refresh for all of them
  const auto& st = h.s3->stats();
  EXPECT_EQ(st.total.failed, 0U);
  EXPECT_EQ(st.total.retries, 0U);
  EXPECT_EQ(st.resigned, static_cast<std::uint64_t>(std::count(keys.items.begin(), keys.items.end(), "K1")));
  EXPECT_EQ(std::count(keys.items.begin(), keys.items.end(), "K2"), kLists);

  // Static keys cannot be renewed: the same refusal is the run's end, as before.
  Harness fixed(server);
  fixed.bucket.credentials = credentials::Source::fixed({"K1", Secret("S"), {}});
  auto r = wait<ListPage>(fixed.loop, [&](auto cb) { fixed.s3->list_objects_v2(fixed.bucket, {}, cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::AccessDenied);
  EXPECT_EQ(r.error().code, "ExpiredToken");
  EXPECT_EQ(fixed.s3->stats().resigned, 0U);
}

// A HEAD's refusal has no body: signed with keys replaced while it was on
// the wire (revoked at their expiry), it goes again with the new ones.
TEST(S3Client, AHeadRefusedAfterItsKeysWereReplacedIsSignedAgain) {
  FakeHttpServer server([&](const FakeRequest& r) {
    if (scope_key(r) == "K1") {
      std::this_thread::sleep_for(500ms);  // the source refreshes meanwhile
      return FakeResponse{403, {}, ""};
    }
    return FakeResponse{200, {{"ETag", "\"e\""}}, ""};
  });
  Harness h(server);
  int fetches = 0;
  auto src = assetmv::testing::scripted_source(h.loop, {{"K1", 400ms}, {"K2", 3600s}}, &fetches);
  ASSERT_TRUE(src);
  h.bucket.credentials = src;
  auto r = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(h.s3->stats().resigned, 1U);
}

// A bare refusal signed with the current keys may be a revocation nobody
// announced: the source fetches (at most every ten seconds) and the HEAD goes
// once more; refused again, it is what it says, no permission.
TEST(S3Client, AHeadRefusedWithTheCurrentKeysMakesTheSourceDoubtThemOnce) {
  Seen keys;
  FakeHttpServer server([&](const FakeRequest& r) {
    const auto k = scope_key(r);
    keys.add(k);
    if (k == "K1" || r.target.starts_with("/bkt/forbidden")) return FakeResponse{403, {}, ""};
    return FakeResponse{200, {{"ETag", "\"e\""}}, ""};
  });
  Harness h(server);
  int fetches = 0;
  auto src = assetmv::testing::scripted_source(h.loop, {{"K1", 3600s}, {"K2", 3600s}, {"K3", 3600s}}, &fetches);
  ASSERT_TRUE(src);
  h.bucket.credentials = src;
  h.bucket.endpoint.path_style = true;
  auto r = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "k", cb); });
  ASSERT_TRUE(r) << r.error().describe();  // K1 was revoked: K2 works
  EXPECT_EQ(fetches, 2);
  auto denied = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(h.bucket, "forbidden", cb); });
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, ErrorKind::AccessDenied);
  EXPECT_EQ(fetches, 2);  // doubted again within ten seconds: no second fetch
  EXPECT_EQ(keys.items, (std::vector<std::string>{"K1", "K2", "K2", "K2"}));
}

TEST(S3Client, KeysRefusedAgainAfterARefreshAreADenialNotALoop) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{403, {}, "<Error><Code>InvalidAccessKeyId</Code><Message>unknown</Message></Error>"};
  });
  Harness h(server);
  int fetches = 0;
  auto src = assetmv::testing::scripted_source(h.loop, {{"K1", 3600s}, {"K2", 3600s}, {"K3", 3600s}}, &fetches);
  ASSERT_TRUE(src);
  h.bucket.credentials = src;
  auto r = wait<ListPage>(h.loop, [&](auto cb) { h.s3->list_objects_v2(h.bucket, {}, cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "InvalidAccessKeyId");
  EXPECT_EQ(server.requests_seen(), 3);  // the first answer and two fresh signatures
  EXPECT_EQ(h.s3->stats().resigned, 2U);
}

TEST(S3Client, ABucketInAnotherRegionIsLearnedOnceAndSignedForFromThenOn) {
  Seen regions;
  FakeHttpServer server([&](const FakeRequest& r) {
    const auto region = scope_region(r);
    regions.add(region);
    if (r.method == "HEAD" && r.target.starts_with("/moved/") && region != "ap-south-1")
      return FakeResponse{301, {{"x-amz-bucket-region", "ap-south-1"}}, ""};  // a HEAD's bare redirect
    if (region != "eu-west-1" && r.target.starts_with("/bkt"))
      return FakeResponse{400,
                          {},
                          "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is "
                          "wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>"};
    if (r.method == "HEAD") return FakeResponse{200, {{"ETag", "\"e\""}}, ""};
    return FakeResponse{200, {}, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"};
  });
  Harness h(server);
  h.bucket.endpoint.path_style = true;
  for (int i = 0; i < 2; ++i) {
    auto r = wait<ListPage>(h.loop, [&](auto cb) { h.s3->list_objects_v2(h.bucket, {}, cb); });
    ASSERT_TRUE(r) << r.error().describe();
  }
  EXPECT_EQ(regions.items, (std::vector<std::string>{"us-east-1", "eu-west-1", "eu-west-1"}));
  EXPECT_EQ(h.s3->learned_regions().at("bkt"), "eu-west-1");
  EXPECT_EQ(h.s3->stats().redirected, 1U);
  EXPECT_EQ(h.s3->stats().total.failed, 0U);

  Bucket moved = h.bucket;
  moved.name = "moved";
  auto m = wait<ObjectInfo>(h.loop, [&](auto cb) { h.s3->head_object(moved, "k", cb); });
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(h.s3->learned_regions().at("moved"), "ap-south-1");
}

TEST(S3Client, ARegionalAwsHostMovesWithTheBucketsRegionAndOthersOnlySign) {
  const auto aws = Endpoint::aws("us-east-1", true, true);
  EXPECT_EQ(aws.host, "s3-fips.dualstack.us-east-1.amazonaws.com");
  const auto moved = aws.in_region("us-west-2");
  EXPECT_EQ(moved.host, "s3-fips.dualstack.us-west-2.amazonaws.com");
  EXPECT_EQ(moved.region, "us-west-2");
  const auto local = Endpoint::parse("http://127.0.0.1:9000")->in_region("eu-west-1");
  EXPECT_EQ(local.host, "127.0.0.1");
  EXPECT_EQ(local.region, "eu-west-1");
  EXPECT_EQ(Endpoint::aws("cn-north-1").host, "s3.cn-north-1.amazonaws.com.cn");
}

TEST(S3Client, AStoreWithoutMultiObjectDeleteOrTaggingIsLearnedOnceAndServedKeyByKey) {
  std::atomic<int> posts{0};
  std::atomic<int> tag_reads{0};
  std::mutex mu;
  std::vector<std::string> deleted;
  FakeHttpServer server([&](const FakeRequest& r) {
    const char* kNotImplemented =
        "<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not "
        "implemented</Message></Error>";
    if (r.method == "POST") {
      ++posts;
      return FakeResponse{501, {}, kNotImplemented};
    }
    if (r.target.find("tagging") != std::string::npos) {
      ++tag_reads;
      return FakeResponse{501, {}, kNotImplemented};
    }
    if (r.method == "DELETE") {
      std::lock_guard lock(mu);
      deleted.push_back(r.target);
      return r.target == "/bkt/gone" ? FakeResponse{404, {}, "<Error><Code>NoSuchKey</Code></Error>"}
                                     : FakeResponse{204, {}, ""};
    }
    return FakeResponse{400, {}, ""};
  });
  Harness h(server);
  h.bucket.endpoint.path_style = true;
  for (int round = 0; round < 2; ++round) {
    auto r = wait<DeleteResult>(h.loop, [&](auto cb) { h.s3->delete_objects(h.bucket, {{"a"}, {"b"}, {"gone"}}, cb); });
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->deleted.size(), 3U);  // an absent key is deleted, as DeleteObjects says of it
    EXPECT_TRUE(r->failed.empty());
  }
  EXPECT_EQ(posts.load(), 1);  // learned from the first answer
  EXPECT_EQ(deleted.size(), 6U);
  EXPECT_FALSE(h.s3->capabilities(h.bucket).multi_delete);
  for (int round = 0; round < 2; ++round) {
    auto t = wait<std::vector<Tag>>(h.loop, [&](auto cb) { h.s3->get_object_tagging(h.bucket, "a", cb); });
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, "NotImplemented");
  }
  EXPECT_EQ(tag_reads.load(), 1);
  EXPECT_FALSE(h.s3->capabilities(h.bucket).tagging);
  EXPECT_TRUE(h.s3->capabilities(h.bucket).part_copy);
  EXPECT_EQ(known_capabilities(*Endpoint::parse("https://storage.googleapis.com")),
            (Capabilities{false, false, false}));
  EXPECT_EQ(known_capabilities(Endpoint::aws("eu-west-1")), Capabilities{});
}
