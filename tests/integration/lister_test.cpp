// The engine's ranged lister against the real gateway: whatever the split
// points (inside the keys, between them, before and after all of them,
// several in a row), the stream it hands out is exactly the plain listing.
#include "engine/lister.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "engine/s3_store.hpp"
#include "services.hpp"

using namespace assetmv;
using namespace assetmv::itest;

namespace {

std::vector<std::string> drain(EventLoop& loop, engine::Lister& l) {
  std::vector<std::string> names;
  for (;;) {
    // No fill() to call: the lister keeps its own window full.
    if (auto w = loop.run_until("a listing page", [&] { return l.ready(); }); !w) {
      ADD_FAILURE() << w.error().describe();
      break;
    }
    EXPECT_FALSE(l.error().has_value()) << l.error()->describe();
    if (l.error() || l.exhausted()) break;
    names.push_back(l.front()->name);
    l.pop();
  }
  EXPECT_TRUE(loop.run_until("the last pages", [&] { return !l.in_flight(); }));
  return names;
}

}  // namespace

TEST(RangedLister, SplitsNeverChangeTheStream) {
  ASSETMV_NEED(!s3_endpoint().empty(), "the S3 gateway (AWS_ENDPOINT_URL)");
  S3Fixture fx;
  const auto b = bucket(legacy_bucket());
  const auto prefix = unique_prefix("ranged");
  std::vector<std::string> names;
  for (int i = 0; i < 2'300; ++i) names.push_back(fmt::format("n-{:05}.png", i * 3));
  names.push_back("with space.png");
  names.push_back("\xc3\xa9t\xc3\xa9.png");
  int pending = 0;
  for (const auto& n : names) {
    ++pending;
    fx.client.put_object(b, prefix + n, "x", {}, [&](Result<std::string> r) {
      EXPECT_TRUE(r.has_value());
      --pending;
    });
  }
  ASSERT_TRUE(fx.loop.run_until("the test", [&] { return pending == 0; }));
  std::sort(names.begin(), names.end());

  const std::vector<std::vector<std::string>> cases = {
      {},                                             // one range
      {"n-00300.png", "n-03000.png"},                 // on existing keys
      {"n-00301.png", "n-00302.png", "n-00303.png"},  // between keys, one empty range
      {"a", "n-01000.png", "n-05000.png", "zzz"},     // before, inside, after all keys
      engine::split_points(names, 63),                // as the engine chooses them
  };
  for (const auto& splits : cases) {
    engine::S3Store store(fx.client, b, b);
    engine::Lister l(store, engine::Side::Legacy, prefix, nullptr, splits);
    EXPECT_EQ(drain(fx.loop, l), names) << "with " << splits.size() << " split points";
    EXPECT_EQ(l.listed(), names.size());
  }
}
