// The credential chain (its order, each provider's settings), the providers'
// requests and parsers, their fetches against scripted endpoints, and the
// refreshing Source. The proof against a real STS and a real gateway is in
// tests/e2e/test_credentials.py.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "../support/fake_http_server.hpp"
#include "../support/scripted_credentials.hpp"
#include "core/child.hpp"
#include "core/utc_time.hpp"
#include "credentials/chain.hpp"
#include "credentials/providers.hpp"
#include "credentials/source.hpp"

using namespace assetmv;
using namespace assetmv::credentials;
using assetmv::testing::FakeHttpServer;
using assetmv::testing::FakeRequest;
using assetmv::testing::FakeResponse;
using assetmv::testing::ScriptedProvider;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct World {
  fs::path dir = fs::temp_directory_path() / fmt::format("assetmv-creds-{}-{}", ::getpid(), counter()++);
  std::map<std::string, std::string> vars;
  World() {
    fs::create_directories(dir / ".aws");
    vars["HOME"] = dir.string();
  }
  ~World() { fs::remove_all(dir); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string write(const std::string& name, const std::string& text) const {
    fs::create_directories((dir / name).parent_path());
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
  EnvLookup env() const {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  Result<Spec> chain(std::optional<std::string> profile = {}) const {
    return resolve_chain(env(), SharedFiles::load(env()), profile);
  }
};

const char* kStsAnswer = R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn><AssumedRoleId>ARO:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>FwoGZXIvYXdzEXAMPLE</SessionToken>
      <Expiration>2026-12-04T20:16:04Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>)";

const char* kStsError = R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider</Message></Error>
  <RequestId>1a2b</RequestId>
</ErrorResponse>)";

}  // namespace

// ---- the chain's order ----------------------------------------------------------

TEST(CredentialChain, EnvironmentKeysComeFirstUnlessAProfileIsNamedOnTheCommandLine) {
  World w;
  w.write(".aws/credentials", "[p]\naws_access_key_id = AKP\naws_secret_access_key = SP\n");
  w.write(".aws/config", "[profile r]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = p\n");
  w.vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  w.vars["AWS_SECRET_ACCESS_KEY"] = "SENV";
  w.vars["AWS_PROFILE"] = "r";
  w.vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/var/run/token";
  w.vars["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/web";
  auto s = w.chain();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kind, Kind::Static);
  EXPECT_EQ(s->keys.access_key_id, "AKENV");
  EXPECT_EQ(s->describe(), "environment");
  // Named on the command line, a profile sets the environment's keys aside
  // (not its web identity, which botocore reads whatever the profile).
  s = w.chain("p");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, Kind::WebIdentity);
  w.vars.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
  s = w.chain("p");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->keys.access_key_id, "AKP");
  EXPECT_NE(s->describe().find("profile 'p'"), std::string::npos);
}

TEST(CredentialChain, AProfilesRoleComesBeforeAWebIdentityFromTheEnvironment) {
  World w;
  w.write(".aws/credentials", "[p]\naws_access_key_id = AKP\naws_secret_access_key = SP\n");
  w.write(".aws/config",
          "[profile r]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = p\nexternal_id = ext-1\n"
          "duration_seconds = 7200\nrole_session_name = mover\nregion = eu-west-1\n");
  w.vars["AWS_PROFILE"] = "r";
  w.vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/var/run/token";
  w.vars["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/web";
  auto s = w.chain();
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(s->kind, Kind::AssumeRole);
  EXPECT_EQ(s->role_arn, "arn:aws:iam::1:role/r");
  EXPECT_EQ(s->external_id, "ext-1");
  EXPECT_EQ(s->duration_seconds, 7200);
  EXPECT_EQ(s->session_name, "mover");
  EXPECT_EQ(s->sts.url, "https://sts.eu-west-1.amazonaws.com");  // regional, the SDKs' default
  EXPECT_EQ(s->sts.region, "eu-west-1");
  ASSERT_TRUE(s->source);
  EXPECT_EQ(s->source->keys.access_key_id, "AKP");
  EXPECT_NE(s->describe().find("assumed with profile 'p'"), std::string::npos) << s->describe();
  EXPECT_EQ(s->describe().find("SP"), std::string::npos);
}

TEST(CredentialChain, AWebIdentityFromTheEnvironmentComesBeforeAProfilesKeys) {
  World w;
  w.write(".aws/credentials", "[default]\naws_access_key_id = AKD\naws_secret_access_key = SD\n");
  w.vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
  w.vars["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/irsa";
  w.vars["AWS_ROLE_SESSION_NAME"] = "pod-1";
  w.vars["AWS_REGION"] = "ap-south-1";
  auto s = w.chain();
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(s->kind, Kind::WebIdentity);
  EXPECT_EQ(s->token_file, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
  EXPECT_EQ(s->role_arn, "arn:aws:iam::1:role/irsa");
  EXPECT_EQ(s->session_name, "pod-1");
  EXPECT_EQ(s->sts.url, "https://sts.ap-south-1.amazonaws.com");
  // A token file without a role is a mistake, said as one.
  w.vars.erase("AWS_ROLE_ARN");
  auto bad = w.chain();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "WebIdentityWithoutRole");
}

TEST(CredentialChain, AProfileCanNameAWebIdentityOfItsOwn) {
  World w;
  w.write(".aws/config",
          "[profile web]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t/token\n"
          "role_session_name = s1\n");
  auto s = w.chain("web");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kind, Kind::WebIdentity);
  EXPECT_EQ(s->token_file, "/t/token");
  EXPECT_EQ(s->session_name, "s1");
}

TEST(CredentialChain, SsoProfilesAreRefusedWithTheWayThatWorksUnattended) {
  World w;
  w.write(".aws/config",
          "[profile dev]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = Admin\n"
          "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n");
  auto s = w.chain("dev");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "SsoProfile");
  EXPECT_NE(s.error().message.find("credential_process = aws configure export-credentials --profile dev"),
            std::string::npos)
      << s.error().message;
}

TEST(CredentialChain, CredentialsFileKeysThenCredentialProcessThenConfigFileKeys) {
  World w;
  w.write(".aws/config",
          "[profile p]\ncredential_process = /usr/bin/get-keys --secret s3kr1t\naws_access_key_id = AKC\n"
          "aws_secret_access_key = SC\n");
  auto s = w.chain("p");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kind, Kind::Process);
  EXPECT_EQ(s->command, "/usr/bin/get-keys --secret s3kr1t");
  EXPECT_NE(s->describe().find("(/usr/bin/get-keys)"), std::string::npos) << s->describe();
  EXPECT_EQ(s->describe().find("s3kr1t"), std::string::npos);  // arguments may carry secrets
  w.write(".aws/credentials", "[p]\naws_access_key_id = AKF\naws_secret_access_key = SF\n");
  s = w.chain("p");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, Kind::Static);
  EXPECT_EQ(s->keys.access_key_id, "AKF");
  w.write(".aws/config", "[profile p]\naws_access_key_id = AKC\naws_secret_access_key = SC\n");
  w.write(".aws/credentials", "");
  EXPECT_EQ(w.chain("p")->keys.access_key_id, "AKC");
  w.write(".aws/credentials", "[p]\naws_access_key_id = AKF\n");  // half a key pair
  auto half = w.chain("p");
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().code, "PartialCredentials");
}

TEST(CredentialChain, ContainerCredentialsThenInstanceMetadataLast) {
  World w;
  auto s = w.chain();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kind, Kind::Imds);
  EXPECT_EQ(s->imds_endpoint, "http://169.254.169.254");
  EXPECT_EQ(s->imds_timeout, 1000ms);
  EXPECT_EQ(s->imds_attempts, 1);
  EXPECT_FALSE(s->fallback_note.empty());
  w.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9911/";
  w.vars["AWS_METADATA_SERVICE_TIMEOUT"] = "3";
  w.vars["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] = "2";
  s = w.chain();
  EXPECT_EQ(s->imds_endpoint, "http://127.0.0.1:9911");
  EXPECT_EQ(s->imds_timeout, 3000ms);
  EXPECT_EQ(s->imds_attempts, 2);
  w.vars.erase("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  w.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] = "IPv6";
  EXPECT_EQ(w.chain()->imds_endpoint, "http://[fd00:ec2::254]");

  w.vars["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/abc";
  s = w.chain();
  ASSERT_EQ(s->kind, Kind::Container);
  EXPECT_EQ(s->url, "http://169.254.170.2/v2/credentials/abc");
  w.vars.erase("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  w.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://169.254.170.23/v1/credentials";
  w.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = "/var/run/secrets/pods.eks.amazonaws.com/token";
  s = w.chain();
  ASSERT_EQ(s->kind, Kind::Container);
  EXPECT_EQ(s->auth_token_file, "/var/run/secrets/pods.eks.amazonaws.com/token");
  EXPECT_NE(s->describe().find("authorization token file"), std::string::npos);
  // Plain HTTP elsewhere than the loopback and AWS's link-local hosts is refused, as the SDKs refuse it.
  w.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://evil.example.com/creds";
  auto bad = w.chain();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "BadContainerCredentialsUri");

  w.vars.erase("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  w.vars["AWS_EC2_METADATA_DISABLED"] = "true";
  auto none = w.chain();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "NoCredentials");
}

TEST(CredentialChain, RolesChainThroughSourceProfilesAndCredentialSources) {
  World w;
  w.write(".aws/credentials", "[base]\naws_access_key_id = AKB\naws_secret_access_key = SB\n");
  w.write(".aws/config",
          "[profile hop1]\nrole_arn = arn:aws:iam::1:role/one\nsource_profile = base\n"
          "[profile hop2]\nrole_arn = arn:aws:iam::2:role/two\nsource_profile = hop1\n"
          "[profile loop1]\nrole_arn = arn:aws:iam::1:role/l1\nsource_profile = loop2\n"
          "[profile loop2]\nrole_arn = arn:aws:iam::1:role/l2\nsource_profile = loop1\n"
          "[profile envsrc]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n"
          "[profile ecs]\nrole_arn = arn:aws:iam::1:role/c\ncredential_source = EcsContainer\n"
          "[profile ec2]\nrole_arn = arn:aws:iam::1:role/i\ncredential_source = Ec2InstanceMetadata\n"
          "[profile both]\nrole_arn = arn:aws:iam::1:role/b\ncredential_source = Environment\nsource_profile = base\n"
          "[profile mfa]\nrole_arn = arn:aws:iam::1:role/m\nsource_profile = base\nmfa_serial = arn:mfa\n"
          "[profile self]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = self\n"
          "aws_access_key_id = AKS\naws_secret_access_key = SS\n");
  auto two = w.chain("hop2");
  ASSERT_TRUE(two) << two.error().describe();
  ASSERT_EQ(two->kind, Kind::AssumeRole);
  ASSERT_EQ(two->source->kind, Kind::AssumeRole);
  EXPECT_EQ(two->source->role_arn, "arn:aws:iam::1:role/one");
  EXPECT_EQ(two->source->source->keys.access_key_id, "AKB");
  EXPECT_EQ(w.chain("loop1").error().code, "RoleChainLoop");
  EXPECT_EQ(w.chain("both").error().code, "RoleSourceConflict");
  EXPECT_EQ(w.chain("mfa").error().code, "MfaRequired");
  EXPECT_EQ(w.chain("self")->source->keys.access_key_id, "AKS");
  EXPECT_EQ(w.chain("envsrc").error().code, "NoCredentials");
  w.vars["AWS_ACCESS_KEY_ID"] = "AKE";
  w.vars["AWS_SECRET_ACCESS_KEY"] = "SE";
  EXPECT_EQ(w.chain("envsrc")->source->keys.access_key_id, "AKE");
  EXPECT_EQ(w.chain("ec2")->source->kind, Kind::Imds);
  EXPECT_EQ(w.chain("ecs").error().code, "NoCredentials");
  w.vars["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/creds";
  EXPECT_EQ(w.chain("ecs")->source->kind, Kind::Container);
}

TEST(CredentialChain, StsEndpointsAreRegionalUnlessTold) {
  World w;
  SharedFiles none;
  EXPECT_EQ(sts_target(w.env(), none, "default", "eu-central-1").url, "https://sts.eu-central-1.amazonaws.com");
  EXPECT_EQ(sts_target(w.env(), none, "default", "cn-north-1").url, "https://sts.cn-north-1.amazonaws.com.cn");
  w.vars["AWS_STS_REGIONAL_ENDPOINTS"] = "legacy";
  auto legacy = sts_target(w.env(), none, "default", "eu-west-1");
  EXPECT_EQ(legacy.url, "https://sts.amazonaws.com");
  EXPECT_EQ(legacy.region, "us-east-1");
  EXPECT_EQ(sts_target(w.env(), none, "default", "af-south-1").url, "https://sts.af-south-1.amazonaws.com");
  w.vars["AWS_USE_FIPS_ENDPOINT"] = "true";
  EXPECT_EQ(sts_target(w.env(), none, "default", "us-gov-west-1").url, "https://sts-fips.us-gov-west-1.amazonaws.com");
  w.vars["AWS_ENDPOINT_URL"] = "http://127.0.0.1:57480/";
  EXPECT_EQ(sts_target(w.env(), none, "default", "us-east-1").url, "http://127.0.0.1:57480");
  w.vars["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9000";
  auto local = sts_target(w.env(), none, "default", "eu-west-2");
  EXPECT_EQ(local.url, "http://127.0.0.1:9000");
  EXPECT_EQ(local.region, "eu-west-2");
}

// ---- requests and answers ---------------------------------------------------------

TEST(CredentialProviders, AssumeRoleIsASignedStsPostAndWebIdentityAnUnsignedOne) {
  Spec s;
  s.kind = Kind::AssumeRole;
  s.role_arn = "arn:aws:iam::123456789012:role/demo";
  s.external_id = "ext/1";
  s.duration_seconds = 900;
  s.sts = {"https://sts.eu-west-1.amazonaws.com", "eu-west-1"};
  const sigv4::Credentials src{"AKSRC", Secret("SSRC"), Secret("TOKSRC")};
  auto r = assume_role_request(s, src, "sess", *parse_utc_time("2026-12-04T12:00:00Z"));
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_EQ(r.body,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&"
            "RoleSessionName=sess&DurationSeconds=900&ExternalId=ext%2F1");
  std::map<std::string, std::string> h;
  for (const auto& x : r.headers) h[x.name] = x.value;
  EXPECT_EQ(h["host"], "sts.eu-west-1.amazonaws.com");
  EXPECT_EQ(h["x-amz-date"], "20261204T120000Z");
  EXPECT_EQ(h["x-amz-security-token"], "TOKSRC");
  EXPECT_NE(h["authorization"].find("Credential=AKSRC/20261204/eu-west-1/sts/aws4_request"), std::string::npos)
      << h["authorization"];
  EXPECT_EQ(h["authorization"].find("SSRC"), std::string::npos);

  s.kind = Kind::WebIdentity;
  s.duration_seconds.reset();
  auto w = web_identity_request(s, "eyJ.a-b_c.d", "pod");
  EXPECT_EQ(w.body,
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole"
            "%2Fdemo&RoleSessionName=pod&WebIdentityToken=eyJ.a-b_c.d");
  for (const auto& x : w.headers) EXPECT_NE(x.name, "authorization");
}

TEST(CredentialProviders, StsAnswersAndErrorsParse) {
  http::Response ok;
  ok.status = 200;
  ok.body = kStsAnswer;
  auto f = parse_sts_answer(ok, "AssumeRole");
  ASSERT_TRUE(f) << f.error().describe();
  EXPECT_EQ(f->keys.access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(f->keys.secret_access_key.reveal(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
  EXPECT_EQ(f->keys.session_token.reveal(), "FwoGZXIvYXdzEXAMPLE");
  EXPECT_EQ(f->expires, parse_utc_time("2026-12-04T20:16:04Z"));

  http::Response bad;
  bad.status = 400;
  bad.body = kStsError;
  auto e = parse_sts_answer(bad, "AssumeRoleWithWebIdentity");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "InvalidIdentityToken");
  EXPECT_EQ(e.error().request_id, "1a2b");
  EXPECT_NE(e.error().message.find("Couldn't retrieve verification key"), std::string::npos);

  http::Response throttled;
  throttled.status = 400;
  throttled.body =
      "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
  EXPECT_EQ(parse_sts_answer(throttled, "AssumeRole").error().kind, ErrorKind::Throttled);
  http::Response garbage;
  garbage.status = 200;
  garbage.body = "<html>captive portal</html>";
  EXPECT_FALSE(parse_sts_answer(garbage, "AssumeRole"));
}

TEST(CredentialProviders, ContainerImdsAndProcessDocumentsParse) {
  auto c = parse_credentials_json(
      R"({"AccessKeyId":"ASIAC","SecretAccessKey":"SC","Token":"TC","Expiration":"2026-12-04T20:00:00Z","RoleArn":"r"})");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->keys.session_token.reveal(), "TC");
  EXPECT_EQ(c->expires, parse_utc_time("2026-12-04T20:00:00Z"));
  auto imds = parse_credentials_json(
      R"({"Code":"Success","LastUpdated":"2026-12-04T19:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAI",)"
      R"("SecretAccessKey":"SI","Token":"TI","Expiration":"2026-12-04T21:00:00Z"})");
  ASSERT_TRUE(imds);
  EXPECT_EQ(imds->keys.access_key_id, "ASIAI");
  EXPECT_EQ(parse_credentials_json(R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"no"})").error().code,
            "AssumeRoleUnauthorizedAccess");
  EXPECT_FALSE(parse_credentials_json(R"({"AccessKeyId":"A"})"));
  EXPECT_FALSE(parse_credentials_json("not json"));

  auto p = parse_process_output(
      R"({"Version":1,"AccessKeyId":"ASIAP","SecretAccessKey":"SP","SessionToken":"TP","Expiration":"2026-12-04T21:00:00+01:00"})");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->keys.session_token.reveal(), "TP");
  EXPECT_EQ(p->expires, parse_utc_time("2026-12-04T20:00:00Z"));
  auto forever = parse_process_output(R"({"Version":1,"AccessKeyId":"AKP","SecretAccessKey":"SP"})");
  ASSERT_TRUE(forever);
  EXPECT_FALSE(forever->expires);
  EXPECT_FALSE(parse_process_output(R"({"Version":2,"AccessKeyId":"A","SecretAccessKey":"S"})"));
  EXPECT_FALSE(parse_process_output(R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"soon"})"));
}

TEST(ChildProcess, CommandLinesSplitAsAShellWouldWithoutExpanding) {
  EXPECT_EQ(*split_command("aws configure export-credentials --profile 'my prof' --format process"),
            (std::vector<std::string>{"aws", "configure", "export-credentials", "--profile", "my prof", "--format",
                                      "process"}));
  EXPECT_EQ(*split_command(R"(a "b \"c\" $HOME" d\ e '')"),
            (std::vector<std::string>{"a", R"(b "c" $HOME)", "d e", ""}));
  EXPECT_FALSE(split_command("a 'unclosed"));
  EXPECT_TRUE(split_command("  ")->empty());
}

TEST(ChildProcess, OutputExitCodeAndTimeoutComeBackOnTheLoop) {
  EventLoop loop;
  std::optional<Result<ChildOutput>> got;
  run_child(loop, {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 5s, [&](Result<ChildOutput> r) { got = r; });
  ASSERT_TRUE(loop.run_until("the child", [&] { return got.has_value(); }));
  ASSERT_TRUE(*got);
  EXPECT_EQ((*got)->exit_code, 3);
  EXPECT_EQ((*got)->out, "out\n");
  EXPECT_EQ((*got)->err, "err\n");

  got.reset();
  const auto t0 = std::chrono::steady_clock::now();
  run_child(loop, {"/bin/sleep", "30"}, 200ms, [&](Result<ChildOutput> r) { got = r; });
  ASSERT_TRUE(loop.run_until("the killed child", [&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, "Timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

  got.reset();
  run_child(loop, {"/no/such/program"}, 1s, [&](Result<ChildOutput> r) { got = r; });
  ASSERT_TRUE(loop.run_until("a child that cannot start", [&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, "CannotStart");
}

// ---- fetches against scripted endpoints ----------------------------------------------

namespace {

struct Fetcher {
  EventLoop loop;
  http::Client http{loop, {}};
  Result<Fresh> fetch(const Spec& spec) {
    auto p = make_provider(std::make_shared<const Spec>(spec), loop, http);
    std::optional<Result<Fresh>> out;
    p->fetch([&](Result<Fresh> r) { out = std::move(r); });
    auto w = loop.run_until("a fetch", [&] { return out.has_value(); });
    if (!w) return tl::unexpected(w.error());
    return std::move(*out);
  }
};

std::string sts_answer_for(const std::string& key) {
  std::string body = kStsAnswer;
  body.replace(body.find("ASIAEXAMPLE"), 11, key);
  return body;
}

}  // namespace

TEST(CredentialFetch, WebIdentityRereadsItsTokenAtEveryFetchAndNamesAnUnreadableOne) {
  World w;
  std::mutex mu;
  std::vector<std::string> bodies;
  FakeHttpServer sts([&](const FakeRequest& r) {
    std::lock_guard lock(mu);
    bodies.push_back(r.body);
    return FakeResponse{200, {}, sts_answer_for("ASIAWEB")};
  });
  Spec s;
  s.kind = Kind::WebIdentity;
  s.origin = "AWS_WEB_IDENTITY_TOKEN_FILE";
  s.role_arn = "arn:aws:iam::1:role/irsa";
  s.token_file = w.write("token", "token-one\n");
  s.sts = {sts.url(), "us-east-1"};
  Fetcher f;
  auto a = f.fetch(s);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->keys.access_key_id, "ASIAWEB");
  w.write("token", "token-two");  // the kubelet rotated it
  ASSERT_TRUE(f.fetch(s));
  ASSERT_EQ(bodies.size(), 2U);
  EXPECT_TRUE(bodies[0].ends_with("&WebIdentityToken=token-one")) << bodies[0];
  EXPECT_NE(bodies[0].find("RoleSessionName=assetmv-"), std::string::npos);
  EXPECT_EQ(bodies[1].find("token-one"), std::string::npos);
  EXPECT_NE(bodies[1].find("WebIdentityToken=token-two"), std::string::npos);

  s.token_file = (w.dir / "no-such-token").string();
  auto e = f.fetch(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "TokenFileUnreadable");
  EXPECT_EQ(e.error().message.find('\n'), std::string::npos);
  EXPECT_NE(e.error().message.find("web identity from AWS_WEB_IDENTITY_TOKEN_FILE"), std::string::npos);
  EXPECT_NE(e.error().message.find("cannot read the web identity token file " + s.token_file + ": No such file"),
            std::string::npos)
      << e.error().message;
}

TEST(CredentialFetch, AssumeRoleSignsWithItsSourceAndSaysTheStsRefusal) {
  std::atomic<int> calls{0};
  std::string authz;
  FakeHttpServer sts([&](const FakeRequest& r) {
    authz = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    return ++calls == 1 ? FakeResponse{200, {}, sts_answer_for("ASIAROLE")}
                        : FakeResponse{403,
                                       {},
                                       "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not "
                                       "authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>"};
  });
  Spec src;
  src.kind = Kind::Static;
  src.origin = "profile 'base'";
  src.keys = {"AKBASE", Secret("SBASE"), {}};
  Spec s;
  s.kind = Kind::AssumeRole;
  s.origin = "profile 'r'";
  s.role_arn = "arn:aws:iam::1:role/r";
  s.source = std::make_shared<const Spec>(src);
  s.sts = {sts.url(), "eu-west-1"};
  Fetcher f;
  auto a = f.fetch(s);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->keys.access_key_id, "ASIAROLE");
  EXPECT_NE(authz.find("Credential=AKBASE/"), std::string::npos);
  auto e = f.fetch(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::AccessDenied);
  EXPECT_NE(e.error().message.find("role arn:aws:iam::1:role/r of profile 'r'"), std::string::npos)
      << e.error().message;
  EXPECT_NE(e.error().message.find("not authorized to perform sts:AssumeRole"), std::string::npos);
}

TEST(CredentialFetch, ContainerEndpointGetsItsRotatedTokenAndIsTriedThreeTimes) {
  World w;
  std::atomic<int> calls{0};
  std::mutex mu;
  std::vector<std::string> tokens;
  FakeHttpServer ep([&](const FakeRequest& r) {
    {
      std::lock_guard lock(mu);
      tokens.push_back(r.headers.count("authorization") ? r.headers.at("authorization") : "");
    }
    if (++calls <= 2) return FakeResponse{500, {}, "busy"};
    return FakeResponse{200,
                        {},
                        R"({"AccessKeyId":"ASIAPOD","SecretAccessKey":"S","Token":"T",)"
                        R"("Expiration":"2030-01-01T00:00:00Z"})"};
  });
  Spec s;
  s.kind = Kind::Container;
  s.origin = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
  s.url = ep.url() + "/v1/credentials";
  s.auth_token_file = w.write("pod-token", "pod-token-1\n");
  Fetcher f;
  auto a = f.fetch(s);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->keys.access_key_id, "ASIAPOD");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(tokens, (std::vector<std::string>{"pod-token-1", "pod-token-1", "pod-token-1"}));
  w.write("pod-token", "line\nbreak");
  auto e = f.fetch(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "BadAuthorizationToken");
}

TEST(CredentialFetch, ImdsV2AsksForASessionTokenThenTheRoleAndATimeoutIsOneLine) {
  std::mutex mu;
  std::vector<std::string> seen;
  std::atomic<bool> hang{false};
  FakeHttpServer imds([&](const FakeRequest& r) {
    {
      std::lock_guard lock(mu);
      seen.push_back(
          r.method + " " + r.target + " " +
          (r.headers.count("x-aws-ec2-metadata-token-ttl-seconds")
               ? "ttl=" + r.headers.at("x-aws-ec2-metadata-token-ttl-seconds")
               : "token=" + (r.headers.count("x-aws-ec2-metadata-token") ? r.headers.at("x-aws-ec2-metadata-token")
                                                                         : std::string("-"))));
    }
    if (hang) return FakeResponse{200, {}, "", FakeResponse::Mode::Hang};
    if (r.method == "PUT") return FakeResponse{200, {}, "imds-session"};
    if (r.target == "/latest/meta-data/iam/security-credentials/") return FakeResponse{200, {}, "mover-role\n"};
    return FakeResponse{200,
                        {},
                        R"({"Code":"Success","AccessKeyId":"ASIAEC2","SecretAccessKey":"S","Token":"T",)"
                        R"("Expiration":"2030-01-01T00:00:00Z"})"};
  });
  Spec s;
  s.kind = Kind::Imds;
  s.imds_endpoint = imds.url();
  s.imds_timeout = 300ms;
  Fetcher f;
  auto a = f.fetch(s);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->keys.access_key_id, "ASIAEC2");
  EXPECT_EQ(seen, (std::vector<std::string>{"PUT /latest/api/token ttl=21600",
                                            "GET /latest/meta-data/iam/security-credentials/ token=imds-session",
                                            "GET /latest/meta-data/iam/security-credentials/mover-role "
                                            "token=imds-session"}));
  hang = true;
  s.fallback_note = "none in the environment or in profile 'default'";
  const auto t0 = std::chrono::steady_clock::now();
  auto e = f.fetch(s);
  ASSERT_FALSE(e);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(e.error().message.find('\n'), std::string::npos);
  EXPECT_NE(e.error().message.find("no AWS credentials: none in the environment"), std::string::npos)
      << e.error().message;
  EXPECT_NE(e.error().message.find("EC2 instance metadata (IMDSv2 at " + imds.url() + ")"), std::string::npos);
  EXPECT_NE(e.error().message.find("no answer within 300 ms"), std::string::npos) << e.error().message;
}

TEST(CredentialFetch, ACredentialProcessThatFailsSaysItsStatusAndFirstLine) {
  World w;
  const auto ok =
      w.write("ok.sh",
              "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", \"SecretAccessKey\": \"S\", "
              "\"SessionToken\": \"T\", \"Expiration\": \"2030-01-01T00:00:00Z\"}'\n");
  const auto bad = w.write("bad.sh", "#!/bin/sh\necho 'Error: the SSO session has expired' >&2\nexit 1\n");
  fs::permissions(ok, fs::perms::owner_all);
  fs::permissions(bad, fs::perms::owner_all);
  Spec s;
  s.kind = Kind::Process;
  s.origin = "profile 'p' in /x/config";
  s.command = ok + " --profile p";
  Fetcher f;
  auto a = f.fetch(s);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->keys.access_key_id, "ASIAPROC");
  s.command = bad;
  auto e = f.fetch(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "CredentialProcessFailed");
  EXPECT_EQ(e.error().message, "credential_process of profile 'p' in /x/config (" + bad +
                                   "): exited with status 1: Error: the SSO session has expired");
}

// ---- the refreshing source -----------------------------------------------------------

namespace {

RefreshOptions quick() {
  RefreshOptions o;
  o.retry.base = 20ms;
  o.retry.throttled_base = 20ms;
  o.retry.cap = 50ms;
  o.give_up_after = 3;
  return o;
}

void run_for(EventLoop& loop, std::chrono::milliseconds d) {
  bool done = false;
  loop.call_after(d, [&] { done = true; });
  ASSERT_TRUE(loop.run_until("a while", [&] { return done; }));
}

}  // namespace

TEST(CredentialSource, KeysAreRefreshedAheadOfExpiryAndNeverMissingMeanwhile) {
  EventLoop loop;
  int fetches = 0;
  Source src(loop,
             std::make_unique<ScriptedProvider>(
                 loop, std::deque<ScriptedProvider::Answer>{{"K1", 1200ms}, {"K2", 1200ms}, {"K3", 1200ms}}, &fetches),
             "scripted", quick());
  ASSERT_TRUE(src.start());
  // Nothing but the refresh timer is pending: it cannot end a wait alone.
  EXPECT_TRUE(loop.nothing_pending());
  std::set<std::string> seen;
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < until) {
    const auto* k = src.keys(Source::Clock::now());
    ASSERT_NE(k, nullptr) << "no keys to sign with at some instant";
    seen.insert(k->access_key_id);
    loop.run_once(10ms);
  }
  // Refreshed half-way through each 1.2 s life: three keys in 2.5 s.
  EXPECT_EQ(seen, (std::set<std::string>{"K1", "K2", "K3"}));
  EXPECT_GE(src.stats().refreshes, 2U);
  EXPECT_EQ(src.stats().failures, 0U);
}

TEST(CredentialSource, AFailedRefreshKeepsTheOldKeysSigningAndIsTriedAgain) {
  EventLoop loop;
  int fetches = 0;
  Source src(
      loop,
      std::make_unique<ScriptedProvider>(
          loop, std::deque<ScriptedProvider::Answer>{{"K1", 1000ms}, {"", 0ms}, {"", 0ms}, {"K2", 60'000ms}}, &fetches),
      "scripted", quick());
  ASSERT_TRUE(src.start());
  run_for(loop, 800ms);  // the refresh began at 0.5 s and failed twice
  ASSERT_NE(src.keys(Source::Clock::now()), nullptr);
  EXPECT_EQ(src.keys(Source::Clock::now())->access_key_id, "K2");
  EXPECT_EQ(src.stats().failures, 2U);
  EXPECT_EQ(fetches, 4);
}

TEST(CredentialSource, RefusedKeysAreReplacedAndWaitersGoOnWithTheNewOnes) {
  EventLoop loop;
  int fetches = 0;
  Source src(loop,
             std::make_unique<ScriptedProvider>(
                 loop, std::deque<ScriptedProvider::Answer>{{"K1", 600'000ms}, {"K2", 600'000ms}}, &fetches),
             "scripted", quick());
  ASSERT_TRUE(src.start());
  src.refused("OLD");  // a request signed before the current keys: nothing to do
  EXPECT_EQ(fetches, 1);
  src.refused("K1");
  EXPECT_EQ(src.keys(Source::Clock::now()), nullptr);
  std::optional<std::optional<Error>> ready;
  src.when_ready([&](const std::optional<Error>& e) { ready = e; });
  ASSERT_TRUE(loop.run_until("new keys", [&] { return ready.has_value(); }));
  EXPECT_FALSE(*ready);
  EXPECT_EQ(src.keys(Source::Clock::now())->access_key_id, "K2");
  EXPECT_EQ(fetches, 2);
}

TEST(CredentialSource, OnlyKeysThatReallyExpiredAndCouldNotBeRenewedGiveUp) {
  EventLoop loop;
  int fetches = 0;
  Source src(loop,
             std::make_unique<ScriptedProvider>(loop, std::deque<ScriptedProvider::Answer>{{"K1", 600ms}, {"", 0ms}},
                                                &fetches),
             "scripted source", quick());
  ASSERT_TRUE(src.start());
  std::optional<std::optional<Error>> ready;
  const auto expires = *src.stats().expires;
  while (src.keys(Source::Clock::now()) != nullptr) loop.run_once(5ms);
  src.when_ready([&](const std::optional<Error>& e) { ready = e; });
  ASSERT_TRUE(loop.run_until("the source to give up", [&] { return ready.has_value(); }));
  ASSERT_TRUE(*ready);
  EXPECT_GE(Source::Clock::now(), expires);  // not before they really expired
  EXPECT_EQ((*ready)->kind, ErrorKind::AccessDenied);
  EXPECT_EQ((*ready)->code, "CredentialsExpired");
  EXPECT_NE((*ready)->message.find("the keys from scripted source expired at"), std::string::npos) << (*ready)->message;
  EXPECT_NE((*ready)->message.find("scripted outage"), std::string::npos);
  EXPECT_TRUE(src.failure());
  EXPECT_EQ(src.keys(Source::Clock::now()), nullptr);
  // A later waiter hears it at once.
  std::optional<std::optional<Error>> late;
  src.when_ready([&](const std::optional<Error>& e) { late = e; });
  ASSERT_TRUE(loop.run_until("the late waiter", [&] { return late.has_value(); }));
  EXPECT_TRUE(*late);
}

TEST(CredentialSource, AFirstFetchThatFailsIsAConfigurationErrorTriedOnlyWhenTransient) {
  EventLoop loop;
  int fetches = 0;
  Source src(loop, std::make_unique<ScriptedProvider>(loop, std::deque<ScriptedProvider::Answer>{{"", 0ms}}, &fetches),
             "scripted", quick());
  auto r = src.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(fetches, Source::kStartAttempts);
  EXPECT_EQ(r.error().message, "scripted outage");

  auto fixed = Source::fixed({"AKFIX", Secret("S"), {}}, "environment");
  EXPECT_FALSE(fixed->refreshable());
  EXPECT_EQ(fixed->keys(Source::Clock::now())->access_key_id, "AKFIX");
  fixed->refused("AKFIX");  // nothing to fetch: the keys stay
  EXPECT_EQ(fixed->keys(Source::Clock::now())->access_key_id, "AKFIX");
  EXPECT_EQ(fixed->identity(), "keys:AKFIX");
}
