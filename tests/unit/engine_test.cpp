// Engine pieces that need no services: the external-sort spool and the
// object comparison that decides "already in place" versus "conflict".
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>

#include "engine/forecast.hpp"
#include "engine/lag_watch.hpp"
#include "engine/lister.hpp"
#include "engine/migration.hpp"
#include "engine/plan.hpp"
#include "engine/rows.hpp"
#include "engine/spool.hpp"

using namespace assetmv;
using engine::Spool;
using engine::SpoolRecord;

namespace {

std::vector<SpoolRecord> drain(Spool& s) {
  std::vector<SpoolRecord> out;
  SpoolRecord r;
  for (;;) {
    auto got = s.next(r);
    EXPECT_TRUE(got.has_value());
    if (!got || !*got) break;
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST(Spool, EmptyYieldsNothing) {
  Spool s(4);
  ASSERT_TRUE(s.finish());
  EXPECT_TRUE(drain(s).empty());
}

TEST(Spool, OrdersBytewiseLikeS3Listings) {
  Spool s(2);  // forces several spilled runs
  for (const char* n : {"b", "a", "\xc3\xa9", "A", "a b", "a+b", "a%b", "~", "", "a"}) ASSERT_TRUE(s.add({n, 1, 0}));
  ASSERT_TRUE(s.finish());
  EXPECT_GT(s.runs(), 1U);
  std::vector<std::string> names;
  for (auto& r : drain(s)) names.push_back(r.name);
  // UTF-8 binary order: 'A' < 'a' < '~' < 0xC3 (é), and a prefix before its extensions.
  EXPECT_EQ(names, (std::vector<std::string>{"", "A", "a", "a", "a b", "a%b", "a+b", "b", "~", "\xc3\xa9"}));
}

TEST(Spool, PeekDoesNotConsume) {
  Spool s;
  ASSERT_TRUE(s.add({"x", 7, 1}));
  ASSERT_TRUE(s.finish());
  auto p = s.peek();
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->id, 7);
  auto all = drain(s);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].tag, 1);
}

RC_GTEST_PROP(Spool, OutputIsTheSortedInputWhateverTheRunSize, (std::vector<std::pair<std::string, std::int64_t>> in)) {
  const auto run = *rc::gen::inRange<std::size_t>(1, 50);
  Spool s(run);
  std::vector<SpoolRecord> want;
  for (auto& [n, id] : in) {
    want.push_back({n, id, static_cast<std::uint8_t>(id & 1)});
    RC_ASSERT(s.add(want.back()).has_value());
  }
  RC_ASSERT(s.finish().has_value());
  std::sort(want.begin(), want.end(), engine::spool_less);
  auto got = drain(s);
  RC_ASSERT(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    RC_ASSERT(got[i].name == want[i].name);
    RC_ASSERT(got[i].id == want[i].id);
  }
}

TEST(CompareObjects, SizeThenEtag) {
  using engine::Sameness;
  s3::ObjectEntry a{"k", "9b2cf535f27731c974343645a3985328", 10, ""};
  auto b = a;
  EXPECT_EQ(engine::compare_objects(a, b), Sameness::Same);
  b.etag = "9B2CF535F27731C974343645A3985328";  // ETags compare case-insensitively
  EXPECT_EQ(engine::compare_objects(a, b), Sameness::Same);
  b.etag = "00000000000000000000000000000000";
  EXPECT_EQ(engine::compare_objects(a, b), Sameness::Different);
  b = a;
  b.size = 11;
  EXPECT_EQ(engine::compare_objects(a, b), Sameness::Different);
  b = a;
  b.etag = "d41d8cd98f00b204e9800998ecf8427e-2";  // multipart: not an MD5 of the content
  EXPECT_EQ(engine::compare_objects(a, b), Sameness::Unknown);
}

TEST(SplitPoints, EvenlySpreadSortedAndUnique) {
  std::vector<std::string> sample;
  for (int i = 99; i >= 0; --i) sample.push_back(std::to_string(1000 + i));
  sample.push_back("1050");  // duplicates do not make two split points
  const auto s = engine::split_points(sample, 3);
  EXPECT_EQ(s, (std::vector<std::string>{"1025", "1050", "1075"}));
  EXPECT_TRUE(engine::split_points({}, 5).empty());
  EXPECT_TRUE(engine::split_points(sample, 0).empty());
  EXPECT_LE(engine::split_points({"a", "b"}, 10).size(), 2U);
}

TEST(NameSample, BoundedAndUniformEnoughForSplits) {
  engine::NameSample sample;
  for (int i = 0; i < 100'000; ++i) sample.offer(fmt::format("{:06}", i));
  EXPECT_EQ(sample.names().size(), engine::NameSample::kSize);
  EXPECT_EQ(sample.seen(), 100'000U);
  const auto splits = engine::listing_splits(sample);
  ASSERT_EQ(splits.size(), 50U);  // one range per 2,000 rows
  // The middle split lands near the middle of the names.
  const int mid = std::stoi(splits[splits.size() / 2]);
  EXPECT_GT(mid, 40'000);
  EXPECT_LT(mid, 60'000);
}

TEST(LagGate, ClosesAboveTheLimitOpensUnderHalfAndTreatsUnreadableAsTooMuch) {
  assetmv::engine::LagGate g(10);
  EXPECT_FALSE(g.update(0.0));
  EXPECT_FALSE(g.update(10.0));  // at the limit: still open
  EXPECT_TRUE(g.update(10.5));
  EXPECT_TRUE(g.update(7.0));  // between half and the limit: stays closed (no flapping)
  EXPECT_TRUE(g.update(5.01));
  EXPECT_FALSE(g.update(5.0));
  EXPECT_FALSE(g.update(8.0));  // open again until the limit
  EXPECT_TRUE(g.update(std::nullopt));
  EXPECT_TRUE(g.closed());
}

TEST(Forecast, PricesByClassAndTimesByTheSlowerPrefix) {
  // As a dry run records them (the copy paths' counts: migration_test's DryRun tests).
  assetmv::engine::Forecast f;
  f.add("CopyObject");
  f.add("HeadObject");
  f.add("CreateMultipartUpload");
  f.add("UploadPartCopy", 3);
  f.add("CompleteMultipartUpload");
  f.add("GetObject");
  f.add("PutObject");
  f.add("DeleteObjects", 3);
  f.deleted_keys = 2500;
  auto j = assetmv::engine::price_forecast(f, {2.0, 1.0}, {10, 0});
  EXPECT_EQ(j["class_a_requests"], 7U);
  EXPECT_EQ(j["class_b_requests"], 2U);
  EXPECT_EQ(j["free_requests"], 3U);
  EXPECT_DOUBLE_EQ(j["cost_usd"].get<double>(), (7 * 2.0 + 2 * 1.0) / 1000);
  EXPECT_DOUBLE_EQ(j["estimated_seconds"].get<double>(), 250.0);  // 2,500 deletes at 10/s
  EXPECT_EQ(j["bound_by"], "legacy_prefix_deletes");
  auto capped = assetmv::engine::price_forecast(f, {}, {3500, 1});
  EXPECT_DOUBLE_EQ(capped["estimated_seconds"].get<double>(), 12.0);  // 12 requests at 1/s
  EXPECT_EQ(capped["bound_by"], "max_rate");
}

// docs/design.md's state machine as allowed() encodes it: the invariant's
// order is in its arrows (rows move only from a verified copy; a delete is
// reached only through the rewrite's commit, or with no rows at all).
TEST(ItemState, RowsMoveOnlyAfterVerificationAndTerminalStatesHaveNoWayOut) {
  using assetmv::engine::allowed;
  using assetmv::engine::State;
  const std::vector<State> all = {State::Listed,     State::Copying,   State::Verified,  State::Restamping,
                                  State::Rewriting,  State::Rewritten, State::Resolving, State::Done,
                                  State::NeedsHuman, State::Failed,    State::Deferred};
  for (const State from : all) {
    EXPECT_EQ(allowed(from, State::Rewriting), from == State::Verified || from == State::Restamping) << to_string(from);
    EXPECT_EQ(allowed(from, State::Rewritten), from == State::Rewriting) << to_string(from);
    EXPECT_EQ(allowed(from, State::Resolving), from == State::Verified || from == State::Rewritten) << to_string(from);
    EXPECT_FALSE(allowed(from, State::Listed)) << to_string(from);
    if (assetmv::engine::terminal(from)) {
      for (const State to : all) EXPECT_FALSE(allowed(from, to)) << to_string(from) << " -> " << to_string(to);
    }
  }
  EXPECT_FALSE(allowed(State::Copying, State::Done)) << "a copy ends verified, reported or failed, never done";
  EXPECT_TRUE(allowed(State::Listed, State::Verified)) << "rows onto a destination already there";
}
