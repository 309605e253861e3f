// `seed` end to end against both real services.
#include <gtest/gtest.h>

#include <set>

#include "core/digest.hpp"
#include "seed/png.hpp"
#include "seed/seeder.hpp"
#include "services.hpp"

using namespace assetmv;
using namespace assetmv::itest;

TEST(Seed, BuildsTheMixedWorldWithDistinctObjectsAndMatchingRows) {
  ASSETMV_NEED(!s3_endpoint().empty(), "the S3 gateway");
  auto conn = connect_db();
  ASSETMV_NEED(conn.has_value(), "PostgreSQL");
  const std::string schema = fmt::format("it_seed_{}", ::getpid());
  ASSERT_TRUE(conn->exec(fmt::format("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}", schema)));
  auto table = db::TableRef::parse(schema + ".avatars", "id", "path");
  S3Fixture fx;
  auto legacy = bucket(legacy_bucket());
  auto prod = bucket(prod_bucket());
  seed::SeedOptions opt;
  opt.count = 500;
  opt.modern_share = 0.4;
  opt.legacy_prefix = unique_prefix("seed-legacy");
  opt.modern_prefix = unique_prefix("seed-modern");
  auto rep = seed::seed(fx.loop, fx.client, legacy, prod, *conn, *table, opt);
  ASSERT_TRUE(rep) << rep.error().describe();
  EXPECT_EQ(rep->rows, 500U);
  EXPECT_EQ(rep->legacy_objects + rep->modern_objects, 500U);
  EXPECT_NEAR(static_cast<double>(rep->modern_objects), 200.0, 10.0);

  // Rows follow n, and each row's object exists with the PNG for its n.
  auto rows = conn->exec(fmt::format("SELECT id, path FROM {} ORDER BY id", table->sql_table()));
  ASSERT_EQ(rows->count(), 500);
  std::set<std::string> etags;
  for (int i = 0; i < 500; i += 7) {
    const std::string path(rows->get(i, 1));
    const bool modern = seed::is_modern(static_cast<std::uint64_t>(i), 0.4);
    EXPECT_EQ(path,
              (modern ? opt.modern_prefix : opt.legacy_prefix) + seed::avatar_name(static_cast<std::uint64_t>(i)));
    auto head = fx.call<s3::ObjectInfo>([&](auto cb) { fx.client.head_object(modern ? prod : legacy, path, cb); });
    ASSERT_TRUE(head) << path;
    EXPECT_EQ(head->etag, hex(md5(seed::avatar_png(static_cast<std::uint64_t>(i)))));
    EXPECT_EQ(head->content_type, "image/png");
    etags.insert(head->etag);
  }
  EXPECT_EQ(etags.size(), 72U);  // all distinct

  // --reset empties the table and both prefixes before seeding again.
  opt.count = 10;
  opt.reset = true;
  auto again = seed::seed(fx.loop, fx.client, legacy, prod, *conn, *table, opt);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->deleted_on_reset, 500U);
  auto n = conn->exec(fmt::format("SELECT count(*), min(id) FROM {}", table->sql_table()));
  EXPECT_EQ(n->get(0, 0), "10");
  EXPECT_EQ(n->get(0, 1), "1");
  conn->exec(fmt::format("DROP SCHEMA {} CASCADE", schema));
}
