// Every S3 operation the tool uses, against the real Ceph RADOS Gateway.
#include <gtest/gtest.h>

#include <set>

#include "core/digest.hpp"
#include "services.hpp"

using namespace assetmv;
using namespace assetmv::s3;
using namespace assetmv::itest;

namespace {

class Gateway : public ::testing::Test {
 protected:
  void SetUp() override { ASSETMV_NEED(!s3_endpoint().empty(), "the S3 gateway (AWS_ENDPOINT_URL)"); }
  S3Fixture fx;
  Bucket legacy = bucket(legacy_bucket());
  Bucket prod = bucket(prod_bucket());

  std::string put(const Bucket& b, const std::string& key, const std::string& body) {
    auto r = fx.call<std::string>([&](auto cb) { fx.client.put_object(b, key, body, {"image/png", false, {}}, cb); });
    EXPECT_TRUE(r) << (r ? "" : r.error().describe());
    return r ? *r : "";
  }
  std::vector<ObjectEntry> list_all(const Bucket& b, const std::string& prefix, int max_keys = 1000) {
    std::vector<ObjectEntry> all;
    ListParams p;
    p.prefix = prefix;
    p.max_keys = max_keys;
    for (;;) {
      auto page = fx.call<ListPage>([&](auto cb) { fx.client.list_objects_v2(b, p, cb); });
      EXPECT_TRUE(page) << (page ? "" : page.error().describe());
      if (!page) return all;
      for (auto& o : page->objects) all.push_back(o);
      if (!page->truncated) return all;
      p.continuation_token = page->next_continuation_token;
    }
  }
};

// Keys with every class of character that needs encoding somewhere.
const std::vector<std::string> kOddNames = {
    "plain.png",       "with space.png",           "plus+sign.png",      "percent%41.png",       "tilde~eq=.png",
    "amp&q?hash#.png", "quote\"apos'.png",         "unicodé-漢字-😀.png", "semi;colon,comma.png", "brackets[]{}()<>.png",
    "back\\slash.png", "dollar$at@bang!star*.png", "tab\there.png",
};

}  // namespace

TEST_F(Gateway, PutHeadGetRoundTripWithOddKeys) {
  const auto prefix = unique_prefix("roundtrip");
  for (const auto& name : kOddNames) {
    SCOPED_TRACE(name);
    const std::string key = prefix + name;
    const std::string body = "content of " + name;
    const auto etag = put(legacy, key, body);
    EXPECT_EQ(etag, hex(md5(body)));
    auto head = fx.call<ObjectInfo>([&](auto cb) { fx.client.head_object(legacy, key, cb); });
    ASSERT_TRUE(head) << head.error().describe();
    EXPECT_EQ(head->size, body.size());
    EXPECT_EQ(head->etag, etag);
    EXPECT_EQ(head->content_type, "image/png");
    auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(legacy, key, cb); });
    ASSERT_TRUE(get) << get.error().describe();
    EXPECT_EQ(get->body, body);
  }
  auto listed = list_all(legacy, prefix);
  std::set<std::string> keys;
  for (const auto& o : listed) keys.insert(o.key.substr(prefix.size()));
  EXPECT_EQ(keys, std::set<std::string>(kOddNames.begin(), kOddNames.end()));
}

TEST_F(Gateway, KeyAtTheLengthLimit) {
  const auto prefix = unique_prefix("long");
  const std::string key = prefix + std::string(1024 - prefix.size(), 'k');
  ASSERT_EQ(key.size(), 1024U);
  put(legacy, key, "x");
  auto head = fx.call<ObjectInfo>([&](auto cb) { fx.client.head_object(legacy, key, cb); });
  ASSERT_TRUE(head) << head.error().describe();
}

TEST_F(Gateway, ListingPagesWithMaxKeysContinuationAndStartAfter) {
  const auto prefix = unique_prefix("list");
  for (int i = 0; i < 25; ++i) put(legacy, fmt::format("{}k{:03}", prefix, i), "x");
  auto all = list_all(legacy, prefix, 7);  // 4 pages
  ASSERT_EQ(all.size(), 25U);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)].key, fmt::format("{}k{:03}", prefix, i));
  ListParams p;
  p.prefix = prefix;
  p.start_after = prefix + "k019";
  auto tail = fx.call<ListPage>([&](auto cb) { fx.client.list_objects_v2(legacy, p, cb); });
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->objects.size(), 5U);
  EXPECT_EQ(tail->objects.front().key, prefix + "k020");
  EXPECT_FALSE(tail->truncated);
}

TEST_F(Gateway, CopyWithMatchingConditionKeepsEtagAndContent) {
  const auto prefix = unique_prefix("copy");
  const auto etag = put(legacy, prefix + "a b+c.png", "avatar bytes");
  auto copied = fx.call<std::string>([&](auto cb) {
    fx.client.copy_object(prod, {legacy.name, prefix + "a b+c.png", prefix + "a b+c.png", etag, true}, cb);
  });
  ASSERT_TRUE(copied) << copied.error().describe();
  EXPECT_EQ(*copied, etag);
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(prod, prefix + "a b+c.png", cb); });
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, "avatar bytes");
  EXPECT_EQ(get->info.content_type, "image/png");
}

TEST_F(Gateway, CopyWithMismatchingSourceConditionIs412AndWritesNothing) {
  const auto prefix = unique_prefix("copy412");
  put(legacy, prefix + "src.png", "version 2");
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.copy_object(prod, {legacy.name, prefix + "src.png", prefix + "dst.png", hex(md5("version 1")), false},
                          cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::PreconditionFailed);
  EXPECT_EQ(r.error().http_status, 412);
  auto head = fx.call<ObjectInfo>([&](auto cb) { fx.client.head_object(prod, prefix + "dst.png", cb); });
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().kind, ErrorKind::NotFound);
}

TEST_F(Gateway, PutWithIfNoneMatchRefusesToOverwrite) {
  const auto prefix = unique_prefix("inm");
  put(prod, prefix + "taken.png", "theirs");
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.put_object(prod, prefix + "taken.png", "ours", {"image/png", true, {}}, cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::PreconditionFailed);
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(prod, prefix + "taken.png", cb); });
  EXPECT_EQ(get->body, "theirs");
}

TEST_F(Gateway, CopyIfNoneMatchIsSentButThisGatewayIgnoresIt) {
  // AWS S3 answers 412 here; Ceph RGW 16 overwrites. The engine probes the
  // destination for this (see docs/design.md); this test pins the behaviour
  // the probe must detect, so a gateway upgrade that fixes it is noticed.
  const auto prefix = unique_prefix("copyinm");
  const auto etag = put(legacy, prefix + "a.png", "legacy");
  put(prod, prefix + "a.png", "production");
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.copy_object(prod, {legacy.name, prefix + "a.png", prefix + "a.png", etag, true}, cb);
  });
  ASSERT_TRUE(r) << "RGW started honouring If-None-Match on CopyObject: " << r.error().describe();
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(prod, prefix + "a.png", cb); });
  EXPECT_EQ(get->body, "legacy");
}

TEST_F(Gateway, DeleteObjectsInBatchesOfAThousand) {
  const auto prefix = unique_prefix("del");
  std::vector<std::string> keys;
  int outstanding = 0;
  for (int i = 0; i < 1000; ++i) {
    keys.push_back(fmt::format("{}obj {}+.png", prefix, i));
    ++outstanding;
    fx.client.put_object(legacy, keys.back(), "x", {}, [&](Result<std::string> r) {
      EXPECT_TRUE(r);
      --outstanding;
    });
  }
  ASSERT_TRUE(fx.loop.run_until("the test", [&] { return outstanding == 0; }));
  ASSERT_EQ(list_all(legacy, prefix).size(), 1000U);
  keys.push_back(prefix + "never-existed.png");
  std::vector<ObjectVersion> objects;
  for (const auto& k : keys) objects.push_back({k});
  auto too_many = fx.call<DeleteResult>([&](auto cb) { fx.client.delete_objects(legacy, objects, cb); });
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, "InvalidBatch");
  objects.erase(objects.begin());
  auto r = fx.call<DeleteResult>([&](auto cb) { fx.client.delete_objects(legacy, objects, cb); });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->failed.empty());
  auto left = list_all(legacy, prefix);
  ASSERT_EQ(left.size(), 1U);
  EXPECT_EQ(left[0].key, prefix + "obj 0+.png");
  EXPECT_EQ(fx.client.stats().by_operation.at("DeleteObjects").requests, 1U);
}

TEST_F(Gateway, SingleDeleteForKeysXmlCannotCarry) {
  const auto prefix = unique_prefix("ctl");
  const std::string key = prefix + std::string("ctl\x01char.png");
  put(legacy, key, "x");
  auto batch = fx.call<DeleteResult>([&](auto cb) { fx.client.delete_objects(legacy, {{key}}, cb); });
  ASSERT_FALSE(batch);
  auto one = fx.call<bool>([&](auto cb) { fx.client.delete_object(legacy, {key}, cb); });
  ASSERT_TRUE(one) << one.error().describe();
  EXPECT_TRUE(list_all(legacy, prefix).empty());
}

TEST_F(Gateway, MultipartUploadPartCopyForLargeObjects) {
  const auto prefix = unique_prefix("mpc");
  std::string big(12 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) % 251);
  const auto etag = put(legacy, prefix + "big.bin", big);
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.multipart_copy(prod, {legacy.name, prefix + "big.bin", prefix + "big.bin", etag, false}, big.size(),
                             kMinPartBytes, cb);
  });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->ends_with("-3")) << *r;
  // Pinned: Ceph RGW 16 answers the first CompleteMultipartUpload with an
  // empty <ETag/> (AWS names the ETag); the client's retry gets it.
  const auto& complete = fx.client.stats().by_operation.at("CompleteMultipartUpload");
  EXPECT_EQ(std::pair(complete.requests, complete.retries), std::pair(std::uint64_t{2}, std::uint64_t{1}));
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(prod, prefix + "big.bin", cb); });
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body.size(), big.size());
  EXPECT_TRUE(get->body == big);
}

TEST_F(Gateway, MultipartCopyOfAChangedSourceIsRefusedBeforeAnyPart) {
  // RGW 16 honours neither name of the source condition on UploadPartCopy,
  // so the client reads the source's ETag before it starts the upload (and
  // the engine re-checks it after the copy, for a change during the parts).
  const auto prefix = unique_prefix("mpc412");
  put(legacy, prefix + "big.bin", std::string(6 * 1024 * 1024, 'a'));
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.multipart_copy(prod, {legacy.name, prefix + "big.bin", prefix + "big.bin", hex(md5("stale")), false},
                             6 * 1024 * 1024, kMinPartBytes, cb);
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::PreconditionFailed);
  auto h = fx.call<ObjectInfo>([&](auto cb) { fx.client.head_object(prod, prefix + "big.bin", cb); });
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind, ErrorKind::NotFound);
}

TEST_F(Gateway, StreamCopyReadsInRangesAndUploadsPartsWithinTheBudget) {
  // Both buckets on the one gateway here; the client streams all the same
  // (the e2e suite runs it between Swift and the gateway).
  const auto prefix = unique_prefix("stream");
  std::string big(12 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) % 251);
  const auto etag = put(legacy, prefix + "big.bin", big);
  const auto small_etag = put(legacy, prefix + "small.png", "tiny");
  ByteBudget budget(2 * kMinPartBytes);  // one part at a time, held twice
  auto r = fx.call<std::string>([&](auto cb) {
    fx.client.stream_copy(legacy, prod, {legacy.name, prefix + "big.bin", prefix + "big.bin", etag, true}, big.size(),
                          kMinPartBytes, budget, cb);
  });
  ASSERT_TRUE(r) << r.error().describe();
  std::vector<Md5> parts;
  for (std::size_t at = 0; at < big.size(); at += kMinPartBytes)
    parts.push_back(md5(std::string_view(big).substr(at, kMinPartBytes)));
  EXPECT_TRUE(etag_equal(*r, multipart_etag(parts))) << *r;
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(prod, prefix + "big.bin", cb); });
  ASSERT_TRUE(get);
  EXPECT_TRUE(get->body == big);
  EXPECT_EQ(budget.held(), 0U);
  EXPECT_EQ(budget.peak(), 2 * kMinPartBytes);
  EXPECT_EQ(fx.client.stats().by_operation.at("UploadPart").requests, 3U);

  auto one = fx.call<std::string>([&](auto cb) {
    fx.client.stream_copy(legacy, prod, {legacy.name, prefix + "small.png", prefix + "small.png", small_etag, true}, 4,
                          kMinPartBytes, budget, cb);
  });
  ASSERT_TRUE(one) << one.error().describe();
  EXPECT_TRUE(etag_equal(*one, small_etag));
  // Only the listed version is read: a stale ETag is a 412, nothing written.
  auto stale = fx.call<std::string>([&](auto cb) {
    fx.client.stream_copy(legacy, prod, {legacy.name, prefix + "big.bin", prefix + "stale.bin", hex(md5("x")), true},
                          big.size(), kMinPartBytes, budget, cb);
  });
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().kind, ErrorKind::PreconditionFailed);
  auto stale_one = fx.call<std::string>([&](auto cb) {
    fx.client.stream_copy(legacy, prod, {legacy.name, prefix + "small.png", prefix + "stale.png", hex(md5("x")), true},
                          4, kMinPartBytes, budget, cb);
  });
  ASSERT_FALSE(stale_one);
  EXPECT_EQ(stale_one.error().kind, ErrorKind::PreconditionFailed);
  EXPECT_EQ(budget.held(), 0U);
}

TEST_F(Gateway, WrongSecretIsAClearAccessErrorThatNeverShowsTheSecret) {
  Bucket bad = legacy;
  bad.credentials = credentials::Source::fixed(
      {legacy.credentials->stats().access_key_id, Secret("definitely-not-the-secret-4711"), {}});
  auto r = fx.call<ListPage>([&](auto cb) { fx.client.list_objects_v2(bad, {}, cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::AccessDenied);
  EXPECT_EQ(r.error().code, "SignatureDoesNotMatch");
  EXPECT_NE(r.error().message.find("secret key does not match"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().describe().find("4711"), std::string::npos);
  EXPECT_EQ(fx.client.stats().total.retries, 0U);

  Bucket unknown = legacy;
  unknown.credentials = credentials::Source::fixed({"NOSUCHKEY", Secret("whatever"), {}});
  auto u = fx.call<ListPage>([&](auto cb) { fx.client.list_objects_v2(unknown, {}, cb); });
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::AccessDenied);
  EXPECT_EQ(u.error().code, "InvalidAccessKeyId");
}

TEST_F(Gateway, MissingBucketIsNotFound) {
  Bucket missing = legacy;
  missing.name = "no-such-bucket-assetmv";
  auto r = fx.call<ListPage>([&](auto cb) { fx.client.list_objects_v2(missing, {}, cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::NotFound);
  EXPECT_EQ(r.error().code, "NoSuchBucket");
  auto hb = fx.call<bool>([&](auto cb) { fx.client.head_bucket(missing, cb); });
  ASSERT_FALSE(hb);
  EXPECT_EQ(hb.error().kind, ErrorKind::NotFound);
  EXPECT_TRUE(fx.call<bool>([&](auto cb) { fx.client.head_bucket(legacy, cb); }));
}

TEST_F(Gateway, VirtualHostAddressingAndAnEndpointPerBucket) {
  // localhost names resolve to loopback without DNS; RGW serves buckets as
  // subdomains of its rgw_dns_name (localhost).
  Bucket vh = legacy;
  vh.endpoint.host = "localhost";
  vh.endpoint.path_style = false;
  const auto prefix = unique_prefix("vhost");
  auto r = fx.call<std::string>([&](auto cb) { fx.client.put_object(vh, prefix + "v h.png", "vh", {}, cb); });
  ASSERT_TRUE(r) << r.error().describe();
  // Read back through the path-style bucket: same service, other endpoint form.
  auto get = fx.call<GetResult>([&](auto cb) { fx.client.get_object(legacy, prefix + "v h.png", cb); });
  ASSERT_TRUE(get) << get.error().describe();
  EXPECT_EQ(get->body, "vh");
}

TEST_F(Gateway, HundredsInFlightOnKeptAliveConnections) {
  s3::ClientOptions opt;
  opt.pacer.initial_window = 200;
  opt.pacer.max_window = 200;
  http::ClientOptions hopt;
  hopt.max_connections = 200;
  EventLoop loop;
  http::Client http(loop, hopt);
  s3::Client client(loop, http, opt);
  const auto prefix = unique_prefix("inflight");
  int done = 0, ok = 0;
  std::size_t peak = 0;
  for (int i = 0; i < 2000; ++i) {
    client.put_object(legacy, fmt::format("{}{}", prefix, i), "x", {}, [&](Result<std::string> r) {
      ++done;
      ok += r ? 1 : 0;
    });
  }
  ASSERT_TRUE(loop.run_until("the test", [&] {
    peak = std::max(peak, client.in_flight());
    return done == 2000;
  }));
  EXPECT_EQ(ok, 2000);
  EXPECT_GE(peak, 150U);
  EXPECT_LE(http.stats().connections_opened, 200U);  // 2,000 requests, at most one connection per slot
}
