// XML parsers on recorded bodies (tests/data/s3): RGW's and AWS's documented responses.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "s3/parsers.hpp"

using namespace assetmv;
using namespace assetmv::s3;

namespace {
std::string body(const std::string& name) {
  std::ifstream in(std::string(ASSETMV_TEST_DATA) + "/s3/" + name);
  if (!in) throw std::runtime_error("missing test body " + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(ListParser, UrlEncodedKeysAreDecodedAndTruncationCarriesToken) {
  auto page = parse_list_objects_v2(body("rgw_list_truncated_urlencoded.xml"));
  ASSERT_TRUE(page) << page.error().describe();
  ASSERT_EQ(page->objects.size(), 3U);
  EXPECT_EQ(page->objects[0].key, "rec/a b.png");
  EXPECT_EQ(page->objects[1].key, "rec/amp&lt.png");
  EXPECT_EQ(page->objects[2].key, "rec/plus+.png");
  EXPECT_EQ(page->objects[0].etag, "b68c30096d3a789ef5fc0d6e23d42042");
  EXPECT_EQ(page->objects[0].size, 14U);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "rec/plus+.png");
}

TEST(ListParser, PlainKeysAreTakenAsIs) {
  auto page = parse_list_objects_v2(body("rgw_list_plain.xml"));
  ASSERT_TRUE(page);
  ASSERT_EQ(page->objects.size(), 4U);
  EXPECT_EQ(page->objects[1].key, "rec/amp&lt.png");  // XML entity decoded, no percent-decoding
  EXPECT_EQ(page->objects[2].key, "rec/plus+.png");
  EXPECT_EQ(page->objects[3].key, "rec/unié.png");
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->objects[0].storage_class, "STANDARD");
}

TEST(ListParser, StorageClassAsListedAndEmptyWhenAbsent) {
  auto page = parse_list_objects_v2(
      "<ListBucketResult><Contents><Key>a</Key><ETag>e</ETag><Size>1</Size><StorageClass>GLACIER</StorageClass>"
      "</Contents><Contents><Key>b</Key><ETag>e</ETag><Size>1</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page) << page.error().describe();
  EXPECT_EQ(page->objects[0].storage_class, "GLACIER");
  EXPECT_EQ(page->objects[1].storage_class, "");
}

TEST(VersioningParser, EnabledSuspendedAndNeverVersioned) {
  const std::string ns = R"(<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
  EXPECT_EQ(parse_versioning(ns + "<Status>Enabled</Status></VersioningConfiguration>").value_or("?"), "Enabled");
  EXPECT_EQ(parse_versioning(ns + "<Status>Suspended</Status></VersioningConfiguration>").value_or("?"), "Suspended");
  EXPECT_EQ(parse_versioning(ns + "</VersioningConfiguration>").value_or("?"), "");
  EXPECT_FALSE(parse_versioning("<Other/>"));
}

TEST(OwnershipParser, TheRulesObjectOwnershipAndWhatIsNotOne) {
  auto own = parse_ownership_controls(
      R"(<?xml version="1.0" encoding="UTF-8"?><OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>");
  ASSERT_TRUE(own) << own.error().describe();
  EXPECT_EQ(*own, "BucketOwnerEnforced");
  EXPECT_FALSE(parse_ownership_controls(""));  // Ceph RGW 16 answers an empty 200
  EXPECT_FALSE(parse_ownership_controls("<OwnershipControls></OwnershipControls>"));
  auto err = parse_ownership_controls("<Error><Code>OwnershipControlsNotFoundError</Code></Error>");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code, "OwnershipControlsNotFoundError");
}

TEST(ListParser, EmptyListingAndCommonPrefixes) {
  auto empty = parse_list_objects_v2(body("rgw_list_empty.xml"));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->objects.empty());
  auto cp = parse_list_objects_v2(body("aws_list_v2_common_prefixes.xml"));
  ASSERT_TRUE(cp);
  ASSERT_EQ(cp->objects.size(), 1U);
  EXPECT_EQ(cp->objects[0].size, 434234U);
  EXPECT_EQ(cp->objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(cp->common_prefixes, (std::vector<std::string>{"photos/2006/February/", "photos/2006/January/"}));
}

TEST(ListParser, TruncatedBodyIsARetryableMalformedResponse) {
  auto page = parse_list_objects_v2(body("truncated_body.xml"));
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, "MalformedResponse");
  EXPECT_EQ(page.error().kind, ErrorKind::Retryable);
}

TEST(ListParser, ErrorDocumentComesBackAsItsError) {
  auto page = parse_list_objects_v2(body("rgw_error_nosuchbucket.xml"));
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, "NoSuchBucket");
  EXPECT_EQ(page.error().kind, ErrorKind::NotFound);
}

TEST(ListParser, RejectsBadSizeAndTruncationWithoutToken) {
  EXPECT_FALSE(
      parse_list_objects_v2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>"));
  EXPECT_FALSE(parse_list_objects_v2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"));
  EXPECT_FALSE(parse_list_objects_v2("<Other/>"));
  EXPECT_FALSE(parse_list_objects_v2(""));
}

TEST(CopyParser, RgwResultWithoutQuotesAndAwsPartResultWithQuotes) {
  auto rgw = parse_copy_result(body("rgw_copy_result.xml"));
  ASSERT_TRUE(rgw);
  EXPECT_EQ(*rgw, "b68c30096d3a789ef5fc0d6e23d42042");
  auto part = parse_copy_result(body("aws_copy_part_result.xml"));
  ASSERT_TRUE(part);
  EXPECT_EQ(*part, "9b2cf535f27731c974343645a3985328");
}

TEST(CopyParser, TheUsualResultsAreReadByTheScanAndAgreeWithTheDom) {
  for (const char* file : {"rgw_copy_result.xml", "aws_copy_part_result.xml", "aws_copy_result.xml"}) {
    SCOPED_TRACE(file);
    const auto b = body(file);
    const auto scanned = scan_copy_result(b);
    ASSERT_TRUE(scanned);
    const auto dom = parse_copy_result_dom(b);
    ASSERT_TRUE(dom);
    EXPECT_EQ(*scanned, *dom);
  }
  EXPECT_EQ(scan_copy_result(body("aws_copy_result.xml")), "9b2cf535f27731c974343645a3985328");
}

TEST(CopyParser, AnythingButThePlainShapeIsLeftToTheDom) {
  for (const std::string& b : {
           body("aws_copy_200_error_internal.xml"),
           std::string(R"(<s3:CopyObjectResult xmlns:s3="x"><s3:ETag>"e"</s3:ETag></s3:CopyObjectResult>)"),
           std::string(R"(<CopyObjectResult><ETag><![CDATA["e"]]></ETag></CopyObjectResult>)"),
           std::string(R"(<CopyObjectResult><ETag>&#34;e&#34;</ETag></CopyObjectResult>)"),
           std::string(R"(<CopyObjectResult><!-- c --><ETag>"e"</ETag></CopyObjectResult>)"),
           std::string(R"(<CopyObjectResult><ETag>"e"</ETag></CopyObjectResult><x/>)"),
           std::string(R"(<CopyObjectResult><ETag>"e"</ETag>)"),  // truncated
           std::string(R"(<CopyObjectResult><ETag>"e"</ETag></CopyObjectResult)"),
           std::string(R"(<CopyObjectResult><ETag>   </ETag></CopyObjectResult>)"),
           std::string(R"(<CopyObjectResult a><ETag>"e"</ETag></CopyObjectResult>)"),
           std::string("<CopyObjectResult><ETag>\"e\"\r\n</ETag></CopyObjectResult>"),
       }) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(scan_copy_result(b));
  }
}

TEST(CopyParser, A200CarryingAnErrorIsThatErrorAndRetryable) {
  auto r = parse_copy_result(body("aws_copy_200_error_internal.xml"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "InternalError");
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  EXPECT_EQ(r.error().http_status, 200);
  auto slow = parse_copy_result(body("aws_error_slowdown.xml"));
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().kind, ErrorKind::Throttled);
}

TEST(CopyParser, ResultWithoutETagIsMalformed) {
  auto r = parse_copy_result("<CopyObjectResult><LastModified>x</LastModified></CopyObjectResult>");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "MalformedResponse");
}

TEST(ErrorParser, RecordedErrorBodies) {
  const std::pair<const char*, const char*> cases[] = {
      {"rgw_error_nosuchkey.xml", "NoSuchKey"},
      {"rgw_error_signature.xml", "SignatureDoesNotMatch"},
      {"rgw_error_precondition.xml", "PreconditionFailed"},
      {"aws_error_slowdown.xml", "SlowDown"},
  };
  for (const auto& [file, code] : cases) {
    auto e = parse_error_body(body(file));
    ASSERT_TRUE(e) << file;
    EXPECT_EQ(e->code, code) << file;
  }
  auto aws = parse_error_body(body("aws_copy_200_error_internal.xml"));
  ASSERT_TRUE(aws);
  EXPECT_EQ(aws->message, "We encountered an internal error. Please try again.");
  EXPECT_EQ(aws->request_id, "656c76696e6727732072657175657374");
  EXPECT_EQ(aws->host_id, "Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==");
  auto copy = parse_copy_result(body("aws_copy_200_error_internal.xml"));  // a 200 carrying an error
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().request_id, "656c76696e6727732072657175657374");
  EXPECT_FALSE(parse_error_body(body("rgw_copy_result.xml")));
  EXPECT_FALSE(parse_error_body("not xml"));
}

// One rule for every ETag comparison: quotes stripped, case ignored.
TEST(Etags, EqualIgnoresQuotesAndCase) {
  EXPECT_TRUE(etag_equal("0123456789abcdef0123456789abcdef", "\"0123456789ABCDEF0123456789abcdef\""));
  EXPECT_TRUE(etag_equal("\"d41d8cd98f00b204e9800998ecf8427e-2\"", "D41D8CD98F00B204E9800998ECF8427E-2"));
  EXPECT_FALSE(etag_equal("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdee"));
  EXPECT_FALSE(etag_equal("abc", "abc-1"));
  EXPECT_TRUE(etag_equal("", ""));
}

TEST(DeleteParser, DeletedKeysAndPerKeyErrors) {
  auto rgw = parse_delete_result(body("rgw_delete_result.xml"));
  ASSERT_TRUE(rgw);
  EXPECT_EQ(rgw->deleted, (std::vector<std::string>{"rec/never-existed.png", "rec/plus+.png"}));
  EXPECT_TRUE(rgw->failed.empty());
  auto aws = parse_delete_result(body("aws_delete_result_with_errors.xml"));
  ASSERT_TRUE(aws);
  EXPECT_EQ(aws->deleted, (std::vector<std::string>{"sample1.txt"}));
  ASSERT_EQ(aws->failed.size(), 1U);
  EXPECT_EQ(aws->failed[0].key, "sample2.txt");
  EXPECT_EQ(aws->failed[0].code, "AccessDenied");
  EXPECT_EQ(aws->failed[0].message, "Access Denied");
}

TEST(MultipartParsers, InitiateAndComplete) {
  auto id = parse_initiate_multipart(body("rgw_initiate_multipart.xml"));
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "2~BYy-nBOX-CI5X3kkT_6j7ZugfQubc-l");
  auto etag = parse_complete_multipart(body("aws_complete_multipart.xml"));
  ASSERT_TRUE(etag);
  EXPECT_EQ(*etag, "3858f62230ac3c915f300c664312c11f-9");
  EXPECT_FALSE(etag_is_md5(*etag));
  auto err = parse_complete_multipart(body("aws_copy_200_error_internal.xml"));
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code, "InternalError");
}

TEST(TaggingParser, TagSetEmptySetAndErrors) {
  auto tags = parse_tagging(body("aws_get_object_tagging.xml"));
  ASSERT_TRUE(tags);
  EXPECT_EQ(*tags, (std::vector<Tag>{{"tag1", "val1"}, {"tag2", "val2"}}));
  auto empty = parse_tagging("");  // Ceph RGW 16: an object without tags
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto none = parse_tagging("<Tagging><TagSet/></Tagging>");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(parse_tagging("<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>"));
  EXPECT_FALSE(parse_tagging(body("truncated_body.xml")));
  auto err = parse_tagging(body("rgw_error_nosuchkey.xml"));
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().kind, assetmv::ErrorKind::NotFound);
}

TEST(Parsers, MultipartEtagIsTheMd5OfThePartsMd5s) {
  // As S3 names a completed upload (checked against Python's hashlib).
  EXPECT_EQ(multipart_etag({md5("a"), md5("b")}), "96e024ba2074fe77e8e965ba43a704be-2");
}

TEST(ETags, UnquoteAndMd5Shape) {
  EXPECT_EQ(unquote_etag("\"abc\""), "abc");
  EXPECT_EQ(unquote_etag("abc"), "abc");
  EXPECT_EQ(unquote_etag("\""), "\"");
  EXPECT_TRUE(etag_is_md5("b68c30096d3a789ef5fc0d6e23d42042"));
  EXPECT_FALSE(etag_is_md5("b68c30096d3a789ef5fc0d6e23d4204"));
  EXPECT_FALSE(etag_is_md5("3858f62230ac3c915f300c664312c11f-9"));
}

TEST(ParsersNamespace, PrefixedElementNamesAreAccepted) {
  auto r = parse_copy_result(R"(<s3:CopyObjectResult xmlns:s3="x"><s3:ETag>"e"</s3:ETag></s3:CopyObjectResult>)");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "e");
}
