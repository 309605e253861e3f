// The ranged lister and the feed that both migrate and verify consume, over
// a scripted ListObjectsV2 server (issue 10): many listing ranges, long runs
// of them empty (first, middle and last), and both ways of consuming the
// join — verify's, which takes every group as it comes, and migrate's, which
// stops when its backlog is full and pumps again when work finishes. A hang
// here is not a stuck test: the loop's guard turns it into a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "../support/fake_http_server.hpp"
#include "engine/join.hpp"
#include "engine/lister.hpp"
#include "engine/s3_store.hpp"
#include "s3/client.hpp"

using namespace assetmv;
using namespace assetmv::engine;
using assetmv::testing::FakeHttpServer;
using assetmv::testing::FakeRequest;
using assetmv::testing::FakeResponse;
using namespace std::chrono_literals;

namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> q;
  const auto at = target.find('?');
  if (at == std::string::npos) return q;
  std::string_view rest(target);
  rest.remove_prefix(at + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto part = rest.substr(0, amp);
    const auto eq = part.find('=');
    q[percent_decode(part.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return q;
}

// A bucket that answers ListObjectsV2 as S3 does (sorted, StartAfter,
// continuation tokens, MaxKeys) for a fixed set of keys, counting requests.
class ScriptedBucket {
 public:
  explicit ScriptedBucket(std::set<std::string> keys, std::size_t page = 1000)
      : keys_(std::move(keys)), page_(page), server_([this](const FakeRequest& r) { return answer(r); }) {}
  std::string url() const { return server_.url(); }
  int lists() const { return server_.requests_seen(); }

 private:
  FakeResponse answer(const FakeRequest& r) {
    auto q = query_of(r.target);
    const std::string prefix = q["prefix"];
    const std::string after = q.count("continuation-token") ? q["continuation-token"] : q["start-after"];
    const std::size_t max = std::min<std::size_t>(page_, std::stoul(q["max-keys"]));
    std::string body = R"(<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>)";
    std::string last;
    std::size_t n = 0;
    bool truncated = false;
    for (auto it = keys_.upper_bound(after); it != keys_.end(); ++it) {
      if (it->compare(0, prefix.size(), prefix) != 0) continue;
      if (n == max) {
        truncated = true;
        break;
      }
      body += "<Contents><Key>" + *it + "</Key><ETag>\"0123456789abcdef0123456789abcdef\"</ETag><Size>1</Size>" +
              "<StorageClass>STANDARD</StorageClass></Contents>";
      last = *it;
      ++n;
    }
    body += std::string("<IsTruncated>") + (truncated ? "true" : "false") + "</IsTruncated>";
    if (truncated) body += "<NextContinuationToken>" + last + "</NextContinuationToken>";
    body += "</ListBucketResult>";
    return FakeResponse{200, {}, body};
  }

  std::set<std::string> keys_;
  std::size_t page_;
  FakeHttpServer server_;
};

struct Harness {
  EventLoop loop;
  http::Client http{loop, {}};
  s3::Client s3{loop, http, {}};
  ScriptedBucket server;
  s3::Bucket bucket;
  std::unique_ptr<S3Store> store;
  explicit Harness(std::set<std::string> keys, std::size_t page = 1000) : server(std::move(keys), page) {
    bucket = {*s3::Endpoint::parse(server.url()), credentials::Source::fixed({"AK", Secret("SK"), {}}), "bkt", false};
    store = std::make_unique<S3Store>(s3, bucket, bucket);
  }
};

constexpr std::size_t kRanges = 16;

// Sixteen ranges, split at r01..r15: range NN holds the names after "rNN"
// up to "rNN+1", so "rNN-x" falls in range NN.
std::vector<std::string> sixteen_splits() {
  std::vector<std::string> s;
  for (std::size_t i = 1; i < kRanges; ++i) s.push_back(fmt::format("r{:02}", i));
  return s;
}

// Keys in ranges 4 and 10 only: ranges 0-3 (first: the whole first window),
// 5-9 (middle) and 11-15 (last) are empty. Range 4 holds 2,500 keys, three
// pages, so it is refilled as it is read.
std::set<std::string> sparse_keys(const std::string& prefix) {
  std::set<std::string> keys;
  for (int i = 0; i < 2'500; ++i) keys.insert(fmt::format("{}r04-{:05}", prefix, i));
  for (int i = 0; i < 30; ++i) keys.insert(fmt::format("{}r10-{:05}", prefix, i));
  return keys;
}

std::vector<std::string> names_under(const std::set<std::string>& keys, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& k : keys)
    if (k.compare(0, prefix.size(), prefix) == 0) out.push_back(k.substr(prefix.size()));
  return out;
}

}  // namespace

TEST(Lister, KeepsItsWindowFullAcrossLongRunsOfEmptyRanges) {
  const auto keys = sparse_keys("L/");
  Harness h(keys);
  Lister l(*h.store, Side::Legacy, "L/", nullptr, sixteen_splits());
  std::vector<std::string> got;
  for (;;) {
    // Never prompted: whenever it is not ready, a page is on its way.
    EXPECT_TRUE(l.ready() || l.in_flight());
    auto w = h.loop.run_until("the lister's next page", [&] { return l.ready(); });
    ASSERT_TRUE(w) << w.error().describe();
    ASSERT_FALSE(l.error()) << l.error()->describe();
    if (l.exhausted()) break;
    got.push_back(l.front()->name);
    l.pop();
  }
  EXPECT_EQ(got, names_under(keys, "L/"));
  EXPECT_EQ(l.listed(), keys.size());
  // One request per range, plus the two refills of the range of 2,500 keys.
  EXPECT_EQ(h.server.lists(), static_cast<int>(kRanges) + 2);
}

TEST(Lister, EveryRangeEmptyEndsWithoutAPrompt) {
  Harness h({});
  Lister l(*h.store, Side::Legacy, "L/", nullptr, sixteen_splits());
  auto w = h.loop.run_until("an empty listing to end", [&] { return l.exhausted(); });
  ASSERT_TRUE(w) << w.error().describe();
  EXPECT_EQ(l.listed(), 0U);
  EXPECT_EQ(h.server.lists(), static_cast<int>(kRanges));
}

namespace {

// The streams of a join: legacy objects, destination objects and rows.
struct JoinWorld {
  std::set<std::string> keys;
  std::vector<std::string> expected;  // every name once, in order
  Spool rows;
  JoinWorld() {
    keys = sparse_keys("S/");
    for (int i = 0; i < 40; ++i) keys.insert(fmt::format("D/r13-{:05}", i));  // destination: range 13 only
    std::set<std::string> names;
    for (const auto& n : names_under(keys, "S/")) names.insert(n);
    for (const auto& n : names_under(keys, "D/")) names.insert(n);
    for (int i = 0; i < 25; ++i) {  // rows in range 7, where neither listing has a key
      const std::string n = fmt::format("r07-{:05}", i);
      EXPECT_TRUE(rows.add({n, i, kRowLegacy}));
      names.insert(n);
    }
    EXPECT_TRUE(rows.finish());
    expected.assign(names.begin(), names.end());
  }
};

}  // namespace

// verify's way: every group is taken as it comes; a page landing wakes it.
TEST(Feed, VerifyConsumerSeesEveryNameOnceAcrossEmptyRanges) {
  JoinWorld world;
  Harness h(world.keys);
  std::vector<std::string> got;
  bool ended = false;
  std::optional<Feed> feed;
  auto pump = [&] {
    auto state = feed->pump([] { return true; }, [&](Group g) { got.push_back(g.name); });
    ASSERT_TRUE(state) << state.error().describe();
    ended = *state == Feed::State::Ended;
    EXPECT_NE(*state, Feed::State::Full);
  };
  feed.emplace(h.loop, *h.store, Feed::Streams{"S/", "D/", sixteen_splits()}, world.rows, pump);
  pump();
  auto w = h.loop.run_until("the feed to end", [&] { return ended; });
  ASSERT_TRUE(w) << w.error().describe();
  EXPECT_EQ(got, world.expected);
  ASSERT_TRUE(h.loop.run_until("the last pages", [&] { return !feed->listing_in_flight(); }));
}

// migrate's way: a small backlog; work "finishes" on a timer, which makes
// room and pumps again, while pages landing wake it too.
TEST(Feed, MigrateConsumerWithABoundedBacklogSeesEveryNameOnce) {
  JoinWorld world;
  Harness h(world.keys);
  constexpr std::size_t kBacklog = 7;
  std::vector<std::string> got;
  std::size_t busy = 0;
  bool ended = false;
  std::optional<Feed> feed;
  std::function<void()> pump = [&] {
    auto state = feed->pump([&] { return busy < kBacklog; },
                            [&](Group g) {
                              got.push_back(g.name);
                              ++busy;
                              h.loop.call_after(1ms, [&] {  // the item's work is done: room for one more
                                --busy;
                                pump();
                              });
                            });
    ASSERT_TRUE(state) << state.error().describe();
    if (*state == Feed::State::Ended) ended = true;
  };
  feed.emplace(h.loop, *h.store, Feed::Streams{"S/", "D/", sixteen_splits()}, world.rows, [&] { pump(); });
  pump();
  auto w = h.loop.run_until("the feed to end", [&] { return ended && busy == 0; });
  ASSERT_TRUE(w) << w.error().describe();
  EXPECT_EQ(got, world.expected);
  ASSERT_TRUE(h.loop.run_until("the last pages", [&] { return !feed->listing_in_flight(); }));
}
