// Request builders and addressing: pure values in, pure values out.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "core/digest.hpp"
#include "s3/location.hpp"
#include "s3/requests.hpp"

using namespace assetmv;
using namespace assetmv::s3;

namespace {

const sigv4::Header* find(const std::vector<sigv4::Header>& hs, const std::string& name) {
  for (const auto& h : hs)
    if (h.name == name) return &h;
  return nullptr;
}
const http::Header* find(const std::vector<http::Header>& hs, const std::string& name) {
  for (const auto& h : hs)
    if (h.name == name) return &h;
  return nullptr;
}

Endpoint local() { return *Endpoint::parse("http://127.0.0.1:57480"); }

}  // namespace

TEST(Builders, ListObjectsV2AsksForUrlEncodingAndUsesStartAfterOnlyWithoutToken) {
  ListParams p;
  p.prefix = "image/";
  p.start_after = "image/b";
  auto r = list_objects_v2("legacy", p);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(address(r, local()).url,
            "http://127.0.0.1:57480/"
            "legacy?encoding-type=url&list-type=2&max-keys=1000&prefix=image%2F&start-after=image%2Fb");
  p.continuation_token = "tok+/=";
  auto r2 = list_objects_v2("legacy", p);
  EXPECT_EQ(address(r2, local()).url,
            "http://127.0.0.1:57480/"
            "legacy?continuation-token=tok%2B%2F%3D&encoding-type=url&list-type=2&max-keys=1000&prefix=image%2F");
}

TEST(Builders, CopyObjectCarriesEncodedSourceAndBothConditions) {
  CopyParams p{"legacy", "image/a b+c%.png", "avatar/a b+c%.png", "abc123", true};
  auto r = copy_object("prod", p);
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.key, "avatar/a b+c%.png");
  ASSERT_TRUE(find(r.headers, "x-amz-copy-source"));
  EXPECT_EQ(find(r.headers, "x-amz-copy-source")->value, "/legacy/image/a%20b%2Bc%25.png");
  EXPECT_EQ(find(r.headers, "x-amz-copy-source-if-match")->value, "\"abc123\"");
  EXPECT_EQ(find(r.headers, "if-none-match")->value, "*");
  EXPECT_EQ(address(r, local()).path, "/prod/avatar/a%20b%2Bc%25.png");
  EXPECT_EQ(r.source, "s3://legacy/image/a b+c%.png");  // raw, for messages
  EXPECT_EQ(upload_part_copy("prod", p, "u", 1, 0, 9).source, r.source);

  EXPECT_FALSE(find(r.headers, "x-amz-copy-if-match"));
  p.legacy_if_match_header = true;
  EXPECT_EQ(find(copy_object("prod", p).headers, "x-amz-copy-if-match")->value, "\"abc123\"");

  CopyParams plain{"legacy", "k", "k2", "", false};
  auto r2 = copy_object("prod", plain);
  EXPECT_FALSE(find(r2.headers, "x-amz-copy-source-if-match"));
  EXPECT_FALSE(find(r2.headers, "if-none-match"));
}

TEST(Builders, ARestampCopiesOntoItselfWithItsOwnHeadersReplayed) {
  const std::vector<assetmv::http::Header> head = {{"content-type", "image/png"},
                                                   {"content-length", "42"},
                                                   {"etag", "\"e\""},
                                                   {"x-amz-meta-owner", "u1"},
                                                   {"cache-control", "max-age=60"},
                                                   {"last-modified", "x"},
                                                   {"x-amz-storage-class", "STANDARD_IA"},
                                                   {"x-amz-request-id", "r"}};
  const auto kept = replayable_headers(head);
  std::vector<std::string> names;
  for (const auto& h : kept) names.push_back(h.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"content-type", "x-amz-meta-owner", "cache-control", "x-amz-storage-class"}));
  CopyParams p{"prod", "avatar/a.png", "avatar/a.png", "e", false};
  p.replace_metadata = true;
  p.replace_headers = kept;
  auto r = copy_object("prod", p);
  EXPECT_EQ(find(r.headers, "x-amz-metadata-directive")->value, "REPLACE");
  EXPECT_EQ(find(r.headers, "x-amz-meta-owner")->value, "u1");
  EXPECT_EQ(find(r.headers, "content-type")->value, "image/png");
  EXPECT_EQ(find(r.headers, "x-amz-copy-source")->value, "/prod/avatar/a.png");
  // A plain copy leaves the directive to S3's default, COPY.
  EXPECT_FALSE(
      find(copy_object("prod", CopyParams{"legacy", "k", "k2", "", false}).headers, "x-amz-metadata-directive"));
}

TEST(Builders, DestinationHeadersGoWithEitherDirectiveAndWinOverTheSources) {
  CopyParams p{"legacy", "image/a.png", "avatar/a.png", "e", false};
  p.dest_headers =
      with_overrides({{"x-amz-storage-class", "STANDARD_IA"}}, write_headers({"public-read", "aws:kms", "key-1"}));
  auto r = copy_object("prod", p);
  EXPECT_FALSE(find(r.headers, "x-amz-metadata-directive"));  // COPY, S3's default
  EXPECT_EQ(find(r.headers, "x-amz-storage-class")->value, "STANDARD_IA");
  EXPECT_EQ(find(r.headers, "x-amz-acl")->value, "public-read");
  EXPECT_EQ(find(r.headers, "x-amz-server-side-encryption")->value, "aws:kms");
  EXPECT_EQ(find(r.headers, "x-amz-server-side-encryption-aws-kms-key-id")->value, "key-1");
  // REPLACE: the HEAD's class gives way to the one asked for, sent once.
  p.replace_metadata = true;
  p.replace_headers = {{"content-type", "image/png"}, {"x-amz-storage-class", "STANDARD"}};
  r = copy_object("prod", p);
  EXPECT_EQ(
      std::count_if(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.name == "x-amz-storage-class"; }),
      1);
  EXPECT_EQ(find(r.headers, "x-amz-storage-class")->value, "STANDARD_IA");
  EXPECT_EQ(find(r.headers, "content-type")->value, "image/png");
  EXPECT_TRUE(write_headers({}).empty());
}

TEST(Builders, APartCopyOfAnEmptySourceHasNoRange) {
  const CopyParams p{"legacy", "image/e.png", "avatar/e.png", "", false};
  EXPECT_FALSE(find(upload_part_copy("prod", p, "u", 1, 1, 0).headers, "x-amz-copy-source-range"));
  EXPECT_EQ(find(upload_part_copy("prod", p, "u", 1, 0, 9).headers, "x-amz-copy-source-range")->value, "bytes=0-9");
}

TEST(Builders, EncryptionHeadersOfAHeadAndTheCannedAcls) {
  const std::vector<http::Header> head = {{"x-amz-server-side-encryption", "aws:kms"},
                                          {"x-amz-server-side-encryption-aws-kms-key-id", "k"},
                                          {"x-amz-request-id", "r"}};
  EXPECT_EQ(encryption_headers(head).size(), 2U);
  EXPECT_TRUE(is_canned_acl("public-read"));
  EXPECT_TRUE(is_canned_acl("bucket-owner-full-control"));
  EXPECT_FALSE(is_canned_acl("public"));
  EXPECT_FALSE(is_canned_acl(""));
}

TEST(Builders, ArchivedClassesAndTheRestoreHeader) {
  EXPECT_TRUE(is_archived_class("GLACIER"));
  EXPECT_TRUE(is_archived_class("DEEP_ARCHIVE"));
  EXPECT_FALSE(is_archived_class("GLACIER_IR"));  // instant retrieval: readable
  EXPECT_FALSE(is_archived_class("STANDARD_IA"));
  EXPECT_TRUE(restore_completed(R"(ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT")"));
  EXPECT_FALSE(restore_completed(R"(ongoing-request="true")"));
  EXPECT_FALSE(restore_completed(""));
  const auto r = get_bucket_ownership_controls("prod");
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.query.at(0).name, "ownershipControls");
}

TEST(Builders, DeleteObjectsBodyEscapesKeysAndCarriesContentMd5) {
  auto r = delete_objects("b", {{"a&b"}, {"c<d>\"'"}, {"plain"}}, true);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(address(r, local()).url, "http://127.0.0.1:57480/b?delete=");
  EXPECT_NE(r.body.find("<Quiet>true</Quiet>"), std::string::npos);
  EXPECT_NE(r.body.find("<Key>a&amp;b</Key>"), std::string::npos);
  EXPECT_NE(r.body.find("<Key>c&lt;d&gt;&quot;&apos;</Key>"), std::string::npos);
  ASSERT_TRUE(find(r.headers, "content-md5"));
  EXPECT_EQ(find(r.headers, "content-md5")->value, base64(as_view(md5(r.body))));
}

TEST(Builders, DeletesNameTheVersionWhenGivenOne) {
  auto batch =
      delete_objects("b", {{"k1", "3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"}, {"k2"}}, true);
  EXPECT_NE(
      batch.body.find("<Object><Key>k1</Key><VersionId>3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
                      "</VersionId></Object><Object><Key>k2</Key></Object>"),
      std::string::npos)
      << batch.body;
  EXPECT_EQ(address(delete_object("b", {"k", "v 1"}), local()).url, "http://127.0.0.1:57480/b/k?versionId=v%201");
  EXPECT_EQ(address(delete_object("b", {"k"}), local()).url, "http://127.0.0.1:57480/b/k");
}

TEST(Builders, XmlEscapeRefusesWhatXmlCannotCarry) {
  EXPECT_EQ(xml_escape("a\tb"), "a&#x9;b");
  EXPECT_FALSE(xml_escape(std::string("a\x01", 2)));
  EXPECT_FALSE(xml_escape(std::string("\x00", 1)));
  EXPECT_EQ(xml_escape("ü"), "ü");
  EXPECT_EQ(xml_escape("a\nb\rc&<>\"'"), "a&#xA;b&#xD;c&amp;&lt;&gt;&quot;&apos;");
  EXPECT_FALSE(xml_escape("\x7f"));
  // The check the deleter makes without escaping agrees with the escaper on every byte.
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(xml_representable("k" + one), xml_escape("k" + one).has_value()) << c;
  }
}

TEST(Builders, RangedConditionalGetAndUploadPart) {
  auto g = get_object("b", "k", {5, 9, "abc"});
  EXPECT_EQ(find(g.headers, "range")->value, "bytes=5-9");
  EXPECT_EQ(find(g.headers, "if-match")->value, "\"abc\"");
  EXPECT_FALSE(find(get_object("b", "k").headers, "range"));
  auto u = upload_part("b", "k", "up/1", 3, "body");
  EXPECT_EQ(u.method, "PUT");
  EXPECT_EQ(address(u, local()).url, "http://127.0.0.1:57480/b/k?partNumber=3&uploadId=up%2F1");
  EXPECT_EQ(find(u.headers, "content-md5")->value, base64(as_view(md5("body"))));
  EXPECT_EQ(u.body, "body");
}

TEST(Builders, PutObjectHasContentMd5TypeAndOptionalIfNoneMatch) {
  auto r = put_object("b", "k", "body", {"image/png", true, {}});
  EXPECT_EQ(find(r.headers, "content-type")->value, "image/png");
  EXPECT_EQ(find(r.headers, "content-md5")->value, base64(as_view(md5("body"))));
  EXPECT_EQ(find(r.headers, "if-none-match")->value, "*");
  EXPECT_EQ(find(r.headers, "if-match"), nullptr);
  auto probe = put_object("b", "k", "", {"image/png", false, "0123"});
  EXPECT_EQ(find(probe.headers, "if-match")->value, "\"0123\"");
  EXPECT_EQ(find(probe.headers, "if-none-match"), nullptr);
}

TEST(Builders, MultipartRequests) {
  CopyParams p{"src", "big key", "dst key", "etag1", true};
  // The source's own headers and tags ride on the create: the parts carry none.
  const std::vector<assetmv::http::Header> head = {{"content-type", "image/png"},
                                                   {"cache-control", "max-age=60"},
                                                   {"x-amz-meta-owner", "u1"},
                                                   {"x-amz-meta-assetmv-source-etag", "stale"}};
  auto create = create_multipart_upload("dst", "dst key", head, "abc123", {{"team", "a b"}, {"k&=", "v/1"}});
  EXPECT_EQ(find(create.headers, "x-amz-meta-assetmv-source-etag")->value, "abc123");  // ours, once
  EXPECT_EQ(std::count_if(create.headers.begin(), create.headers.end(),
                          [](const auto& h) { return h.name == "x-amz-meta-assetmv-source-etag"; }),
            1);
  EXPECT_EQ(find(create.headers, "content-type")->value, "image/png");
  EXPECT_EQ(find(create.headers, "cache-control")->value, "max-age=60");
  EXPECT_EQ(find(create.headers, "x-amz-meta-owner")->value, "u1");
  EXPECT_EQ(find(create.headers, "x-amz-tagging")->value, "team=a%20b&k%26%3D=v%2F1");
  EXPECT_EQ(find(create_multipart_upload("dst", "k", {}).headers, "x-amz-tagging"), nullptr);
  auto put_tags = put_object_tagging("dst", "k", {{"a<b", "c&d"}});
  EXPECT_EQ(put_tags.method, "PUT");
  EXPECT_NE(put_tags.body.find("<Tag><Key>a&lt;b</Key><Value>c&amp;d</Value></Tag>"), std::string::npos);
  EXPECT_TRUE(find(put_tags.headers, "content-md5"));
  auto tagging = get_object_tagging("src", "big key");
  EXPECT_EQ(address(tagging, local()).url, "http://127.0.0.1:57480/src/big%20key?tagging=");
  EXPECT_EQ(address(create, local()).url, "http://127.0.0.1:57480/dst/dst%20key?uploads=");
  auto part = upload_part_copy("dst", p, "up/id", 3, 10, 19);
  EXPECT_EQ(address(part, local()).url, "http://127.0.0.1:57480/dst/dst%20key?partNumber=3&uploadId=up%2Fid");
  EXPECT_EQ(find(part.headers, "x-amz-copy-source-range")->value, "bytes=10-19");
  EXPECT_EQ(find(part.headers, "x-amz-copy-source-if-match")->value, "\"etag1\"");
  auto done = complete_multipart_upload("dst", "dst key", "up/id", {{1, "a"}, {2, "b"}}, true);
  EXPECT_NE(done.body.find("<Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part>"), std::string::npos);
  EXPECT_EQ(find(done.headers, "if-none-match")->value, "*");
  auto abort = abort_multipart_upload("dst", "dst key", "up/id");
  EXPECT_EQ(abort.method, "DELETE");
}

TEST(Addressing, PathStyleAndVirtualHost) {
  auto r = head_object("legacy-s3", "image/x y.png");
  Endpoint ep = *Endpoint::parse("https://s3.eu-west-1.amazonaws.com");
  EXPECT_FALSE(ep.path_style);
  auto vh = address(r, ep);
  EXPECT_EQ(vh.host, "legacy-s3.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(vh.url, "https://legacy-s3.s3.eu-west-1.amazonaws.com/image/x%20y.png");
  ep.path_style = true;
  auto ps = address(r, ep);
  EXPECT_EQ(ps.host, "s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(ps.url, "https://s3.eu-west-1.amazonaws.com/legacy-s3/image/x%20y.png");
  auto lh = *Endpoint::parse("http://localhost:57480");
  EXPECT_TRUE(lh.path_style);  // automatic for literal hosts
  lh.path_style = false;
  EXPECT_EQ(address(r, lh).host, "legacy-s3.localhost:57480");
}

TEST(Signing, ToHttpSignsWhatItSendsAndPutsHostFirstClass) {
  const sigv4::Credentials keys{"AK", Secret("SECRET"), {}};
  Bucket b{local(), credentials::Source::fixed(keys), "legacy-s3", false};
  auto r =
      to_http(put_object("legacy-s3", "image/a b.png", "data", {}), b, keys, std::chrono::system_clock::from_time_t(0));
  EXPECT_EQ(r.url, "http://127.0.0.1:57480/legacy-s3/image/a%20b.png");
  ASSERT_TRUE(find(r.headers, "host"));
  EXPECT_EQ(find(r.headers, "host")->value, "127.0.0.1:57480");
  EXPECT_EQ(find(r.headers, "x-amz-content-sha256")->value, hex(sha256("data")));
  EXPECT_EQ(find(r.headers, "x-amz-date")->value, "19700101T000000Z");
  const auto authz = find(r.headers, "authorization")->value;
  EXPECT_NE(authz.find("Credential=AK/19700101/us-east-1/s3/aws4_request"), std::string::npos);
  EXPECT_NE(authz.find("SignedHeaders=content-md5;content-type;host;x-amz-content-sha256;x-amz-date,"),
            std::string::npos);
  EXPECT_EQ(authz.find("SECRET"), std::string::npos);

  b.unsigned_payload = true;
  auto u = to_http(put_object("legacy-s3", "k", "data", {}), b, keys, std::chrono::system_clock::from_time_t(0));
  EXPECT_EQ(find(u.headers, "x-amz-content-sha256")->value, "UNSIGNED-PAYLOAD");
}

TEST(Locations, ParseS3Uris) {
  auto l = Location::parse("s3://legacy-s3/image/");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->bucket, "legacy-s3");
  EXPECT_EQ(l->prefix, "image/");
  EXPECT_EQ(Location::parse("s3://legacy-s3")->prefix, "");
  EXPECT_EQ(Location::parse("s3://legacy-s3/")->prefix, "");
  EXPECT_EQ(Location::parse("s3://b12/a b/c")->prefix, "a b/c");
  EXPECT_FALSE(Location::parse("s3://b12/a\x01/"));  // no XML answer could carry it
  EXPECT_FALSE(Location::parse("s3://b12/a\tb/"));
  for (const char* bad :
       {"legacy-s3/image/", "s3:/x/y", "s3://", "s3:///image/", "s3://UPPER/x", "s3://ab/x", "s3://bad_name/x",
        "s3://-lead/x", "s3://trail-/x", "s3://a..b/x", "s3://192.168.1.1/x", "http://b/x"}) {
    auto r = Location::parse(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, "BadLocation") << bad;
    }
  }
}

TEST(Locations, ParseEndpoints) {
  auto e = Endpoint::parse("http://127.0.0.1:57480/");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->scheme, "http");
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 57480);
  EXPECT_EQ(e->authority(), "127.0.0.1:57480");
  EXPECT_TRUE(e->path_style);
  auto https = Endpoint::parse("HTTPS://s3.amazonaws.com:443");
  ASSERT_TRUE(https);
  EXPECT_EQ(https->authority(), "s3.amazonaws.com");
  auto v6 = Endpoint::parse("http://[::1]:9000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->authority(), "[::1]:9000");
  for (const char* bad : {"127.0.0.1:9000", "ftp://x", "http://", "http://h:0", "http://h:99999", "http://h:x",
                          "http://h/path", "http://u:p@h", "http://[::1"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
  EXPECT_EQ(Endpoint::aws("eu-west-1").host, "s3.eu-west-1.amazonaws.com");
  EXPECT_TRUE(Endpoint::aws("eu-west-1").is_aws());
  EXPECT_FALSE(e->is_aws());
}

TEST(Locations, VirtualHostCompatibility) {
  EXPECT_TRUE(virtual_host_compatible("legacy-s3", true));
  EXPECT_FALSE(virtual_host_compatible("my.bucket", true));
  EXPECT_TRUE(virtual_host_compatible("my.bucket", false));
  const auto aws = Endpoint::aws("eu-west-1");
  EXPECT_FALSE(bucket_on(aws, {}, "legacy-s3").endpoint.path_style);
  EXPECT_TRUE(bucket_on(aws, {}, "my.bucket").endpoint.path_style);  // a dotted name is no TLS host name
  EXPECT_EQ(bucket_on(aws, {}, "my.bucket").name, "my.bucket");
}
