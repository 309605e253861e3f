// The core pieces: error classification, retry policy, pacer, event loop, secrets, digests.
#include <curl/curl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <map>

#include "core/backoff.hpp"
#include "core/byte_budget.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/pacer.hpp"
#include "core/retry.hpp"
#include "core/secret.hpp"
#include "core/shard.hpp"
#include "core/utc_time.hpp"

using namespace assetmv;
using namespace std::chrono_literals;

TEST(Classify, HttpStatusesAndS3Codes) {
  EXPECT_EQ(classify_http(0, 503, "SlowDown"), ErrorKind::Throttled);
  EXPECT_EQ(classify_http(0, 503, ""), ErrorKind::Throttled);
  EXPECT_EQ(classify_http(0, 429, ""), ErrorKind::Throttled);
  EXPECT_EQ(classify_http(0, 500, "InternalError"), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(0, 200, "InternalError"), ErrorKind::Retryable);  // 200 with an error body
  EXPECT_EQ(classify_http(0, 200, "SlowDown"), ErrorKind::Throttled);
  EXPECT_EQ(classify_http(0, 502, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(0, 409, "ConditionalRequestConflict"), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(0, 400, "RequestTimeout"), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(0, 404, "NoSuchKey"), ErrorKind::NotFound);
  EXPECT_EQ(classify_http(0, 404, ""), ErrorKind::NotFound);
  EXPECT_EQ(classify_http(0, 412, "PreconditionFailed"), ErrorKind::PreconditionFailed);
  EXPECT_EQ(classify_http(0, 412, ""), ErrorKind::PreconditionFailed);
  EXPECT_EQ(classify_http(0, 403, "AccessDenied"), ErrorKind::AccessDenied);
  EXPECT_EQ(classify_http(0, 403, "SignatureDoesNotMatch"), ErrorKind::AccessDenied);
  EXPECT_EQ(classify_http(0, 403, "RequestTimeTooSkewed"), ErrorKind::AccessDenied);
  EXPECT_EQ(classify_http(0, 400, "InvalidArgument"), ErrorKind::Fatal);
  EXPECT_EQ(classify_http(0, 400, "MalformedXML"), ErrorKind::Fatal);
}

TEST(Classify, TransportErrors) {
  EXPECT_EQ(classify_http(CURLE_COULDNT_CONNECT, 0, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(CURLE_OPERATION_TIMEDOUT, 0, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(CURLE_RECV_ERROR, 0, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(CURLE_PARTIAL_FILE, 0, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(CURLE_GOT_NOTHING, 0, ""), ErrorKind::Retryable);
  EXPECT_EQ(classify_http(CURLE_PEER_FAILED_VERIFICATION, 0, ""), ErrorKind::Fatal);
  EXPECT_EQ(classify_http(CURLE_SSL_CONNECT_ERROR, 0, ""), ErrorKind::Fatal);
  EXPECT_EQ(classify_http(CURLE_URL_MALFORMAT, 0, ""), ErrorKind::Fatal);
}

TEST(Classify, PostgresSqlStates) {
  EXPECT_EQ(classify_pg("", true), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("40001", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("40P01", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("55P03", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("57014", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("57P01", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("08006", false), ErrorKind::Retryable);
  EXPECT_EQ(classify_pg("53300", false), ErrorKind::Throttled);
  EXPECT_EQ(classify_pg("42501", false), ErrorKind::AccessDenied);
  EXPECT_EQ(classify_pg("28P01", false), ErrorKind::AccessDenied);
  EXPECT_EQ(classify_pg("42P01", false), ErrorKind::NotFound);
  EXPECT_EQ(classify_pg("42703", false), ErrorKind::NotFound);
  EXPECT_EQ(classify_pg("23505", false), ErrorKind::Fatal);
  EXPECT_EQ(classify_pg("42601", false), ErrorKind::Fatal);
}

TEST(Errors, DescribeIsOneLine) {
  Error e{ErrorKind::Throttled, "SlowDown", "CopyObject s3://b/k", 503};
  EXPECT_EQ(e.describe(), "SlowDown: CopyObject s3://b/k (HTTP 503)");
  EXPECT_TRUE(e.retryable());
  // The store's ids go with it: what a user quotes to AWS support.
  e.request_id = "R1";
  e.host_id = "H1";
  EXPECT_EQ(e.describe(), "SlowDown: CopyObject s3://b/k (HTTP 503, request id R1, host id H1)");
  e.http_status = 0;
  EXPECT_EQ(e.describe(), "SlowDown: CopyObject s3://b/k (request id R1, host id H1)");
}

TEST(Retry, FullJitterWithinExponentialCeilingAndCap) {
  RetryPolicy p;
  p.base = 100ms;
  p.throttled_base = 400ms;
  p.cap = 2000ms;
  p.max_attempts = 6;
  EXPECT_EQ(p.next_delay(1, ErrorKind::Retryable, 1.0), 100ms);
  EXPECT_EQ(p.next_delay(2, ErrorKind::Retryable, 1.0), 200ms);
  EXPECT_EQ(p.next_delay(3, ErrorKind::Retryable, 0.5), 200ms);
  EXPECT_EQ(p.next_delay(5, ErrorKind::Retryable, 1.0), 1600ms);
  EXPECT_EQ(p.next_delay(2, ErrorKind::Throttled, 1.0), 800ms);
  EXPECT_EQ(p.next_delay(4, ErrorKind::Throttled, 1.0), 2000ms);  // capped
  EXPECT_EQ(p.next_delay(1, ErrorKind::Retryable, 0.0), 1ms);     // never a zero wait
  EXPECT_FALSE(p.next_delay(6, ErrorKind::Retryable, 0.5));       // attempts used up
  EXPECT_FALSE(p.next_delay(1, ErrorKind::NotFound, 0.5));
  EXPECT_FALSE(p.next_delay(1, ErrorKind::AccessDenied, 0.5));
  EXPECT_FALSE(p.next_delay(1, ErrorKind::PreconditionFailed, 0.5));
  EXPECT_FALSE(p.next_delay(1, ErrorKind::Fatal, 0.5));
}

RC_GTEST_PROP(RetryProperty, DelayNeverExceedsCapAndIsPositive, (int failures, double u)) {
  RetryPolicy p;
  p.max_attempts = 1000;
  const int f = 1 + std::abs(failures % 999);
  const double uu = std::abs(std::fmod(u, 1.0));
  for (auto kind : {ErrorKind::Retryable, ErrorKind::Throttled}) {
    auto d = p.next_delay(f, kind, uu);
    RC_ASSERT(d.has_value());
    RC_ASSERT(d->count() >= 1);
    RC_ASSERT(*d <= p.cap);
  }
}

TEST(OutageBreaker, TripsOnlyOnTransientFailuresInARow) {
  OutageBreaker b(3);
  const Error transient{ErrorKind::Retryable, "InternalError", "down", 500};
  const Error per_item{ErrorKind::NotFound, "NoSuchKey", "gone", 404};
  EXPECT_FALSE(b.failed(transient));
  EXPECT_FALSE(b.failed(per_item));  // not counted: says nothing about the store
  EXPECT_FALSE(b.failed(transient));
  b.succeeded();  // the store answered: the count starts over
  EXPECT_FALSE(b.failed(transient));
  EXPECT_FALSE(b.failed(Error{ErrorKind::Throttled, "SlowDown", "slow", 503}));
  EXPECT_TRUE(b.failed(transient));
  EXPECT_EQ(b.in_a_row(), 3);
}

TEST(Retry, JitterDrawsAreUniformInUnitInterval) {
  Jitter j(42);
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = j();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_LT(lo, 0.01);
  EXPECT_GT(hi, 0.99);
}

TEST(Pacer, WindowBoundsInFlightAndGrowsAdditively) {
  Pacer::Options o;
  o.initial_window = 4;
  o.min_window = 2;
  o.max_window = 8;
  Pacer p(o);
  const auto t = Pacer::Clock::now();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.try_acquire(t).go);
  auto full = p.try_acquire(t);
  EXPECT_FALSE(full.go);
  EXPECT_TRUE(full.wait_for_completion);
  for (int i = 0; i < 4; ++i) p.release(t, Pacer::Outcome::Ok);
  EXPECT_NEAR(p.window(), 5.0, 0.1);  // about +1 per window of successes
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(p.try_acquire(t).go);
    p.release(t, Pacer::Outcome::Ok);
  }
  EXPECT_DOUBLE_EQ(p.window(), 8.0);  // capped
}

TEST(Pacer, ThrottleShrinksOncePerCooldownAndPausesEveryone) {
  Pacer::Options o;
  o.initial_window = 100;
  o.min_window = 4;
  o.decrease_factor = 0.5;
  o.decrease_cooldown = 500ms;
  o.throttle_pause = 100ms;
  Pacer p(o);
  auto t = Pacer::Clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.try_acquire(t).go);
  // A burst of SlowDowns from requests that were in flight together counts once.
  for (int i = 0; i < 10; ++i) p.release(t, Pacer::Outcome::Throttled);
  EXPECT_DOUBLE_EQ(p.window(), 50.0);
  EXPECT_EQ(p.throttle_events(), 10U);
  auto paused = p.try_acquire(t + 50ms);
  EXPECT_FALSE(paused.go);
  EXPECT_FALSE(paused.wait_for_completion);
  EXPECT_EQ(paused.retry_at, t + 100ms);
  ASSERT_TRUE(p.try_acquire(t + 100ms).go);
  p.release(t + 600ms, Pacer::Outcome::Throttled);
  EXPECT_DOUBLE_EQ(p.window(), 25.0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(p.try_acquire(t + 2s * (i + 1)).go);
    p.release(t + 2s * (i + 1), Pacer::Outcome::Throttled);
  }
  EXPECT_DOUBLE_EQ(p.window(), 4.0);  // floor
}

TEST(Pacer, AThrottleInsideAnAnswerSlowsEveryoneWithoutReleasing) {
  Pacer::Options o;
  o.initial_window = 100;
  o.decrease_factor = 0.5;
  o.throttle_pause = 100ms;
  Pacer p(o);
  auto t = Pacer::Clock::now();
  ASSERT_TRUE(p.try_acquire(t).go);
  p.throttled(t);
  EXPECT_DOUBLE_EQ(p.window(), 50.0);
  EXPECT_EQ(p.in_flight(), 1);  // the request that is in flight still counts
  EXPECT_FALSE(p.try_acquire(t + 50ms).go);
  EXPECT_TRUE(p.try_acquire(t + 100ms).go);
}

TEST(Pacer, TheRateCapCanChangeDuringTheRun) {
  Pacer::Options o;
  o.initial_window = 1000;
  o.max_rate = 10;  // a burst of 1, then one per 100 ms
  Pacer p(o);
  auto t = Pacer::Clock::now();
  ASSERT_TRUE(p.try_acquire(t).go);
  EXPECT_FALSE(p.try_acquire(t).go);
  p.set_max_rate(1000);  // a burst of 100 at the new rate
  int went = 0;
  while (p.try_acquire(t).go) ++went;
  EXPECT_EQ(went, 100);
  p.set_max_rate(0);  // no cap
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(p.try_acquire(t).go);
  EXPECT_DOUBLE_EQ(p.max_rate(), 0.0);
}

TEST(Pacer, RateCapSpacesRequests) {
  Pacer::Options o;
  o.initial_window = 1000;
  o.max_rate = 100;  // burst of 10
  Pacer p(o);
  auto t = Pacer::Clock::now();
  int started = 0;
  for (int i = 0; i < 50; ++i) {
    if (p.try_acquire(t).go) ++started;
  }
  EXPECT_EQ(started, 10);
  auto wait = p.try_acquire(t);
  EXPECT_FALSE(wait.go);
  EXPECT_GT(wait.retry_at, t);
  // One second later: 100 more tokens, capped at the burst of 10.
  started = 0;
  for (int i = 0; i < 50; ++i) {
    if (p.try_acquire(t + 1s).go) ++started;
  }
  EXPECT_EQ(started, 10);
}

RC_GTEST_PROP(PacerProperty, InFlightNeverExceedsWindow, (std::vector<bool> ops)) {
  Pacer::Options o;
  o.initial_window = 8;
  o.min_window = 1;
  o.max_window = 16;
  Pacer p(o);
  auto t = Pacer::Clock::now();
  int in_flight = 0;
  for (bool acquire : ops) {
    t += 1ms;
    if (acquire) {
      if (p.try_acquire(t).go) ++in_flight;
    } else if (in_flight > 0) {
      p.release(t, (in_flight % 3 == 0) ? Pacer::Outcome::Throttled : Pacer::Outcome::Ok);
      --in_flight;
    }
    RC_ASSERT(p.in_flight() == in_flight);
    RC_ASSERT(p.window() >= 1.0);
    RC_ASSERT(p.window() <= 16.0);
  }
}

TEST(Loop, TimersRunInOrderAndCancelWorks) {
  EventLoop loop;
  std::vector<int> order;
  loop.call_after(30ms, [&] { order.push_back(3); });
  loop.call_after(10ms, [&] { order.push_back(1); });
  auto id = loop.call_after(20ms, [&] { order.push_back(2); });
  loop.cancel(id);
  loop.post([&] { order.push_back(0); });
  ASSERT_TRUE(loop.run_until("the test", [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(loop.timers(), 0U);
}

TEST(Loop, WatchesFileDescriptorsAndCrossThreadPosts) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string got;
  loop.watch(fds[0], true, false, [&](bool readable, bool, bool) {
    char buf[16];
    if (readable) {
      auto n = read(fds[0], buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
  });
  loop.call_after(5ms, [&] { ASSERT_EQ(write(fds[1], "hi", 2), 2); });
  bool posted = false;
  std::thread th([&] { loop.post_from_any_thread([&] { posted = true; }); });
  EXPECT_TRUE(loop.run_until("the test", [&] { return got == "hi" && posted; }));
  th.join();
  loop.unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(got, "hi");
}

// The guard against hangs (issue 10): a wait that nothing could end fails at
// once, naming what it waited for, instead of sleeping forever.
TEST(LoopGuard, AWaitWithNothingPendingFailsAtOnceNamingTheWait) {
  EventLoop loop;
  const auto start = std::chrono::steady_clock::now();
  auto r = loop.run_until("both listings to have a page", [] { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Fatal);
  EXPECT_EQ(r.error().code, "WaitWithNothingPending");
  EXPECT_NE(r.error().message.find("both listings to have a page"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
}

TEST(LoopGuard, TripsWhenTheLastPendingThingIsGoneWithoutEndingTheWait) {
  EventLoop loop;
  int ran = 0;
  loop.post([&] { ++ran; });
  loop.call_after(10ms, [&] { ++ran; });
  auto r = loop.run_until("a flag nobody sets", [] { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(ran, 2);  // both ran first: the guard waits while anything is pending
  // A cancelled timer ends nothing either.
  loop.cancel(loop.call_after(10s, [] {}));
  EXPECT_FALSE(loop.run_until("a cancelled timer", [] { return false; }));
}

TEST(LoopGuard, AnyPendingTimerTaskOrWatchKeepsTheWaitAlive) {
  EventLoop loop;
  bool fired = false;
  loop.call_after(20ms, [&] { fired = true; });
  EXPECT_TRUE(loop.run_until("a timer", [&] { return fired; }));

  int steps = 0;  // a chain of posted tasks, each posting the next
  std::function<void()> step = [&] {
    if (++steps < 5) loop.post(step);
  };
  loop.post(step);
  EXPECT_TRUE(loop.run_until("posted tasks", [&] { return steps == 5; }));

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  bool readable = false;
  loop.watch(fds[0], true, false, [&](bool r, bool, bool) { readable = readable || r; });
  std::thread writer([&] {
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(write(fds[1], "x", 1), 1);
  });
  EXPECT_TRUE(loop.run_until("a watched descriptor", [&] { return readable; }));
  writer.join();
  loop.unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
  EXPECT_FALSE(loop.run_until("nothing any more", [] { return false; }));
}

// An idle kept-alive connection stays registered under a passive watch: it
// still delivers readiness, but cannot keep a wait alive on its own.
TEST(LoopGuard, APassiveWatchDeliversButKeepsNoWaitAlive) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(loop.rebind(
      fds[0], [](bool, bool, bool) {}, true));  // not watched: nothing to rebind
  int active = 0;
  int passive = 0;
  loop.watch(fds[0], true, false, [&](bool, bool, bool) { ++active; });
  EXPECT_FALSE(loop.nothing_pending());
  ASSERT_TRUE(loop.rebind(
      fds[0], [&](bool, bool, bool) { ++passive; }, true));
  EXPECT_EQ(loop.passive_watches(), 1U);
  EXPECT_TRUE(loop.nothing_pending());
  auto r = loop.run_until("an idle connection", [] { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "WaitWithNothingPending");
  // Still registered: readiness reaches the passive callback, with no new epoll_ctl.
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  loop.run_once(100ms);
  EXPECT_EQ(passive, 1);
  EXPECT_EQ(active, 0);
  // Back to an active watch, then a plain watch over a passive one: the count follows.
  ASSERT_TRUE(loop.rebind(
      fds[0], [&](bool, bool, bool) { ++active; }, false));
  EXPECT_EQ(loop.passive_watches(), 0U);
  EXPECT_FALSE(loop.nothing_pending());
  ASSERT_TRUE(loop.rebind(
      fds[0], [](bool, bool, bool) {}, true));
  loop.watch(fds[0], true, false, [&](bool, bool, bool) { ++active; });
  EXPECT_EQ(loop.passive_watches(), 0U);
  ASSERT_TRUE(loop.rebind(
      fds[0], [](bool, bool, bool) {}, true));
  loop.unwatch(fds[0]);
  EXPECT_EQ(loop.passive_watches(), 0U);
  EXPECT_TRUE(loop.nothing_pending());
  close(fds[0]);
  close(fds[1]);
}

TEST(Loop, CoalescingBatchesTricklingEventsButNeverDelaysATimer) {
  EventLoop loop;
  loop.set_coalescing(200ms);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int wakeups = 0;
  std::string got;
  loop.watch(fds[0], true, false, [&](bool readable, bool, bool) {
    char buf[16];
    ++wakeups;
    if (readable) {
      auto n = read(fds[0], buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
  });
  // One event arms coalescing; the next bytes trickle in while the loop pauses.
  ASSERT_EQ(write(fds[1], "a", 1), 1);
  loop.run_once(1s);
  std::thread writer([&] {
    for (char c : std::string("bcde")) {
      std::this_thread::sleep_for(10ms);
      ASSERT_EQ(write(fds[1], &c, 1), 1);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  bool fired = false;
  loop.call_after(20ms, [&] { fired = true; });
  ASSERT_TRUE(loop.run_until("the test", [&] { return fired; }));
  // The pause stopped at the timer's due time, not at the 200 ms window.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 150ms);
  writer.join();
  ASSERT_TRUE(loop.run_until("the test", [&] { return got == "abcde"; }));
  EXPECT_LE(wakeups, 3);  // "a", then the rest in one or two batches, not four wakeups
  loop.unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST(Secrets, NeverFormattedAndWipedOnDestruction) {
  Secret s("hunter2");
  EXPECT_EQ(fmt::format("{}", s), "***");
  EXPECT_EQ(fmt::format("{}", Secret()), "(none)");
  EXPECT_EQ(s.reveal(), "hunter2");
}

TEST(Digests, KnownValues) {
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(base64(as_view(md5(""))), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(hex(md5("The quick brown fox jumps over the lazy dog")), "9e107d9d372bb6826bd81d3542a419d6");
}

// RFC 4231's vectors (1, 2, 6), and keys at and past the block size and
// empty, against Python's hmac: hmac_sha256 is written out from RFC 2104.
TEST(Digests, HmacSha256MatchesRfc4231AndTheBlockBoundaries) {
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hex(hmac_sha256(std::string(64, 'k'), "exactly one block of key")),
            "baa93ea4ccc7062ed6870c5e7937dbd35ad7791df4e29df9addeb429ff491acf");
  EXPECT_EQ(hex(hmac_sha256(std::string(65, 'k'), "one byte over")),
            "c78ea6bbaae214df9544b7aa49b4291b604e38d68a2d0d822359b1c974d7bd0f");
  EXPECT_EQ(hex(hmac_sha256("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  // A digest between two HMACs leaves the shared context fit for the next.
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ByteBudget, GrantsInOrderWithinTheCapacityAndALargeAskWhenAloneHeld) {
  ByteBudget b(100);
  std::vector<std::string> order;
  b.acquire(60, [&] { order.push_back("a60"); });
  b.acquire(50, [&] { order.push_back("b50"); });  // does not fit beside a
  b.acquire(10, [&] { order.push_back("c10"); });  // fits, but waits its turn behind b
  EXPECT_EQ(order, std::vector<std::string>{"a60"});
  EXPECT_EQ(b.held(), 60U);
  EXPECT_EQ(b.waiting(), 2U);
  b.release(60);
  EXPECT_EQ(order, (std::vector<std::string>{"a60", "b50", "c10"}));
  EXPECT_EQ(b.held(), 60U);
  b.acquire(500, [&] { order.push_back("d500"); });  // over the whole budget: only when nothing is held
  b.release(50);
  EXPECT_EQ(order.size(), 3U);
  b.release(10);
  EXPECT_EQ(order.back(), "d500");
  EXPECT_EQ(b.held(), 500U);
  EXPECT_EQ(b.peak(), 500U);
  b.release(500);
  EXPECT_EQ(b.held(), 0U);
}

TEST(ByteBudget, AGrantThatAsksAgainFromInsideItsCallbackIsServedInOrder) {
  ByteBudget b(10);
  int granted = 0;
  b.acquire(10, [&] { ++granted; });
  std::function<void()> chain = [&] {
    ++granted;
    if (granted < 4) {
      b.release(10);
      b.acquire(10, chain);
    }
  };
  b.acquire(10, chain);
  b.release(10);
  EXPECT_EQ(granted, 4);
  EXPECT_EQ(b.held(), 10U);
  EXPECT_EQ(b.peak(), 10U);
}

// ---- shards ------------------------------------------------------------------

TEST(Shard, AHashThatNeverChangesTheFirst32BitsOfTheNamesMD5) {
  // Values from Python's hashlib: int.from_bytes(md5(name.encode()).digest()[:4], "big") % N.
  EXPECT_EQ(Shard::of("a.png", 4), 2U);
  EXPECT_EQ(Shard::of("avatar-32425.png", 4), 3U);
  EXPECT_EQ(Shard::of("avatar-32425.png", 7), 5U);
  EXPECT_EQ(Shard::of("\xc3\xa9/\xc3\xbc.png", 7), 4U);  // UTF-8 bytes, as S3 and the table hold them
  EXPECT_EQ(Shard::of("", 4), 1U);
  EXPECT_EQ(Shard::of("anything", 1), 0U);
}

TEST(Shard, EveryNameBelongsToExactlyOneShardAndTheSharesAreEven) {
  constexpr std::uint32_t kN = 8;
  std::vector<int> per(kN);
  for (int i = 0; i < 80'000; ++i) {
    const auto name = fmt::format("avatar-{}.png", i);
    int owners = 0;
    for (std::uint32_t k = 0; k < kN; ++k) owners += Shard{k, kN}.owns(name) ? 1 : 0;
    ASSERT_EQ(owners, 1) << name;
    ++per[Shard::of(name, kN)];
  }
  for (int n : per) EXPECT_NEAR(n, 10'000, 400);  // 4 standard deviations
  EXPECT_TRUE(Shard{}.owns("x"));
  EXPECT_TRUE(Shard{}.whole());
}

TEST(Shard, ParsesKOfNAndRefusesTheRest) {
  auto s = Shard::parse("3/8");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->index, 3U);
  EXPECT_EQ(s->count, 8U);
  EXPECT_EQ(s->to_string(), "3/8");
  for (const char* bad : {"8/8", "1/0", "-1/4", "1", "1/", "/4", "a/4", "1/4x", "0/5000", ""})
    EXPECT_FALSE(Shard::parse(bad)) << bad;
}

TEST(Shard, TheIndexComesFromKubernetesThenAwsBatch) {
  std::map<std::string, std::string> env;
  auto get = [&](const char* v) -> const char* {
    auto it = env.find(v);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto none = Shard::from_env(4, get);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("JOB_COMPLETION_INDEX"), std::string::npos);
  env["AWS_BATCH_JOB_ARRAY_INDEX"] = "1";
  EXPECT_EQ(Shard::from_env(4, get)->index, 1U);
  env["JOB_COMPLETION_INDEX"] = "2";
  EXPECT_EQ(Shard::from_env(4, get)->index, 2U);
  env["JOB_COMPLETION_INDEX"] = "4";
  EXPECT_FALSE(Shard::from_env(4, get));  // out of range: refused, never wrapped
  env["JOB_COMPLETION_INDEX"] = "two";
  EXPECT_FALSE(Shard::from_env(4, get));
}

TEST(UtcTime, ListingHttpAndOffsetDatesParse) {
  EXPECT_EQ(parse_utc_time("2026-12-02T06:00:00.000Z"), parse_utc_time("Wed, 02 Dec 2026 06:00:00 GMT"));
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*parse_utc_time("1970-01-02T00:00:00Z")), 86'400);
  // STS and credential files: fractions, offsets, or no zone at all (UTC).
  EXPECT_EQ(parse_utc_time("2026-12-02T07:30:00+01:30"), parse_utc_time("2026-12-02T06:00:00Z"));
  EXPECT_EQ(parse_utc_time("2026-12-02T05:00:00.123456-0100"), parse_utc_time("2026-12-02T06:00:00Z"));
  EXPECT_EQ(parse_utc_time("2026-12-02T06:00:00"), parse_utc_time("2026-12-02T06:00:00Z"));
  EXPECT_EQ(format_utc_time(*parse_utc_time("2026-12-02T07:30:00+01:30")), "2026-12-02T06:00:00Z");
  EXPECT_FALSE(parse_utc_time(""));
  EXPECT_FALSE(parse_utc_time("yesterday"));
  EXPECT_FALSE(parse_utc_time("Wed, 02 Foo 2026 06:00:00 GMT"));
  EXPECT_FALSE(parse_utc_time("2026-13-02T06:00:00Z"));
  EXPECT_FALSE(parse_utc_time("2026-12-02T06:00:00 tomorrow"));
  EXPECT_FALSE(parse_utc_time("2026-12-02T06:00:00+25:00"));
}

// ---- the one backoff ------------------------------------------------------------

namespace {

RetryPolicy quick_policy() {
  RetryPolicy p;
  p.base = std::chrono::milliseconds(20);
  p.throttled_base = std::chrono::milliseconds(40);
  p.cap = std::chrono::milliseconds(80);
  p.max_attempts = 4;
  return p;
}

void run_loop_for(EventLoop& loop, std::chrono::milliseconds d) {
  bool done = false;
  loop.call_after(d, [&] { done = true; });
  ASSERT_TRUE(loop.run_until("a while", [&] { return done; }));
}

}  // namespace

TEST(Backoff, AWaitCallsAgainAfterItsDelayAndNotBefore) {
  EventLoop loop;
  Backoff b(loop, quick_policy());
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::duration> fired;
  b.wait(
      std::chrono::milliseconds(60), [&] { fired = std::chrono::steady_clock::now() - start; },
      [](const Error&) { FAIL() << "given up"; });
  EXPECT_EQ(b.waiting(), 1U);
  ASSERT_TRUE(loop.run_until("the retry", [&] { return fired.has_value(); }));
  EXPECT_GE(*fired, std::chrono::milliseconds(60));
  EXPECT_EQ(b.waiting(), 0U);
}

TEST(Backoff, AStopGivesUpEveryWaitAtOnceAndEveryLaterOneTheSameWay) {
  EventLoop loop;
  Backoff b(loop, quick_policy());
  std::vector<Error> given_up;
  int again = 0;
  for (int i = 0; i < 3; ++i)
    b.wait(
        std::chrono::seconds(60), [&] { ++again; }, [&](Error e) { given_up.push_back(std::move(e)); });
  b.stop("a stop was requested");
  ASSERT_EQ(given_up.size(), 3U);  // at once, not after 60 s
  for (const auto& e : given_up) {
    EXPECT_EQ(e.kind, ErrorKind::Interrupted);
    EXPECT_EQ(e.message, "not retried: a stop was requested");
  }
  EXPECT_EQ(b.waiting(), 0U);
  EXPECT_TRUE(b.stopped());
  // Later waits are refused the same way, and never from inside the call.
  bool inside = true;
  std::optional<Error> later;
  b.wait(
      std::chrono::milliseconds(1), [&] { ++again; },
      [&](Error e) {
        EXPECT_FALSE(inside);
        later = std::move(e);
      });
  inside = false;
  ASSERT_TRUE(loop.run_until("the refusal", [&] { return later.has_value(); }));
  EXPECT_EQ(later->kind, ErrorKind::Interrupted);
  run_loop_for(loop, std::chrono::milliseconds(20));
  EXPECT_EQ(again, 0);
}

TEST(Backoff, RetryWaitsForTransientFailuresAndHandsBackTheOthers) {
  EventLoop loop;
  Backoff b(loop, quick_policy());
  const Error transient{ErrorKind::Retryable, "InternalError", "try again", 500};
  const Error fatal{ErrorKind::AccessDenied, "AccessDenied", "no", 403};
  int again = 0;
  std::vector<Error> given_up;
  auto d = b.retry(
      transient, 1, [&] { ++again; }, [&](Error e) { given_up.push_back(std::move(e)); });
  ASSERT_TRUE(d);
  EXPECT_LE(*d, std::chrono::milliseconds(20));
  EXPECT_FALSE(b.retry(
      fatal, 1, [&] { ++again; }, [&](Error e) { given_up.push_back(std::move(e)); }));
  EXPECT_FALSE(b.retry(
      transient, 4, [&] { ++again; }, [&](Error e) { given_up.push_back(std::move(e)); }));
  EXPECT_TRUE(given_up.empty());  // posted, not called inside retry()
  ASSERT_TRUE(loop.run_until("the three", [&] { return static_cast<std::size_t>(again) + given_up.size() == 3; }));
  EXPECT_EQ(again, 1);
  ASSERT_EQ(given_up.size(), 2U);
  EXPECT_EQ(given_up[0].code, "AccessDenied");   // the failure itself, not an Interrupted
  EXPECT_EQ(given_up[1].code, "InternalError");  // out of attempts
  // A server's Retry-After is a floor.
  EXPECT_EQ(*b.delay(1, ErrorKind::Throttled, std::chrono::milliseconds(500)), std::chrono::milliseconds(500));
}

TEST(Backoff, ItsDelaysStayWithinThePolicysJitteredCeiling) {
  EventLoop loop;
  rc::check("delay in [1 ms, min(cap, base * 2^(n-1))]", [&loop](int n, bool throttled) {
    const int failures = 1 + std::abs(n % 3);
    Backoff b(loop, quick_policy());
    const auto kind = throttled ? ErrorKind::Throttled : ErrorKind::Retryable;
    const auto d = b.delay(failures, kind);
    RC_ASSERT(d.has_value());
    const auto base = throttled ? quick_policy().throttled_base : quick_policy().base;
    const auto ceiling = std::min(quick_policy().cap, base * (1 << (failures - 1)));
    RC_ASSERT(*d >= std::chrono::milliseconds(1));
    RC_ASSERT(*d <= ceiling);
  });
}

TEST(Backoff, DestroyedItCallsNothingMore) {
  EventLoop loop;
  int calls = 0;
  {
    Backoff b(loop, quick_policy());
    b.wait(
        std::chrono::milliseconds(10), [&] { ++calls; }, [&](const Error&) { ++calls; });
  }
  run_loop_for(loop, std::chrono::milliseconds(40));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(loop.timers(), 0U);
}
