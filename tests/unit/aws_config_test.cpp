// AWS configuration resolution: environment, profiles, files, precedence.
#include "s3/aws_config.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

using namespace assetmv;
using namespace assetmv::s3;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  fs::path dir = fs::temp_directory_path() / fmt::format("assetmv-awscfg-{}", ::getpid());
  std::map<std::string, std::string> vars;
  Fixture() {
    fs::create_directories(dir);
    vars["HOME"] = dir.string();
  }
  ~Fixture() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir / name).parent_path());
    std::ofstream(dir / name) << text;
  }
  EnvLookup env() const {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

}  // namespace

TEST(AwsConfig, EnvironmentKeysRegionAndEndpoint) {
  Fixture f;
  f.vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  f.vars["AWS_SECRET_ACCESS_KEY"] = "secretenv";
  f.vars["AWS_SESSION_TOKEN"] = "tok";
  f.vars["AWS_DEFAULT_REGION"] = "eu-west-3";
  f.vars["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000";
  auto s = resolve_aws_settings(f.env());
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->credentials.keys.access_key_id, "AKENV");
  EXPECT_EQ(s->credentials.keys.secret_access_key.reveal(), "secretenv");
  EXPECT_EQ(s->credentials.keys.session_token.reveal(), "tok");
  EXPECT_EQ(s->credentials.describe(), "environment");
  EXPECT_EQ(s->region, "eu-west-3");
  EXPECT_EQ(s->endpoint_url, "http://127.0.0.1:9000");
  f.vars["AWS_REGION"] = "ap-south-1";
  f.vars["AWS_ENDPOINT_URL_S3"] = "http://s3only:1";
  s = resolve_aws_settings(f.env());
  EXPECT_EQ(s->region, "ap-south-1");
  EXPECT_EQ(s->endpoint_url, "http://s3only:1");
  f.vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  EXPECT_FALSE(resolve_aws_settings(f.env())->endpoint_url);
}

TEST(AwsConfig, DefaultProfileFromSharedFiles) {
  Fixture f;
  f.write(".aws/credentials",
          "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = "
          "secretfile\n\n[other]\naws_access_key_id=AKO\naws_secret_access_key=SO\n");
  f.write(".aws/config",
          "[default]\nregion = us-west-2\ns3 =\n  addressing_style = path\n  endpoint_url = http://nested:1\n"
          "[profile other]\nregion=eu-central-1\nendpoint_url = http://other:2\n");
  auto s = resolve_aws_settings(f.env());
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->credentials.keys.access_key_id, "AKFILE");
  EXPECT_EQ(s->region, "us-west-2");
  EXPECT_EQ(s->addressing_style, "path");
  EXPECT_EQ(s->endpoint_url, "http://nested:1");
  EXPECT_NE(s->credentials.describe().find("profile 'default'"), std::string::npos);
  EXPECT_EQ(s->credentials.describe().find("secretfile"), std::string::npos);

  f.vars["AWS_PROFILE"] = "other";
  s = resolve_aws_settings(f.env());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->credentials.keys.access_key_id, "AKO");
  EXPECT_EQ(s->region, "eu-central-1");
  EXPECT_EQ(s->endpoint_url, "http://other:2");
}

TEST(AwsConfig, EnvironmentKeysWinOverProfileAndFileLocationsComeFromEnv) {
  Fixture f;
  f.write("elsewhere/creds", "[p]\naws_access_key_id = AKP\naws_secret_access_key = SP\n");
  f.vars["AWS_SHARED_CREDENTIALS_FILE"] = (f.dir / "elsewhere/creds").string();
  f.vars["AWS_PROFILE"] = "p";
  auto s = resolve_aws_settings(f.env());
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->credentials.keys.access_key_id, "AKP");
  f.vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  f.vars["AWS_SECRET_ACCESS_KEY"] = "SENV";
  EXPECT_EQ(resolve_aws_settings(f.env())->credentials.keys.access_key_id, "AKENV");
}

TEST(AwsConfig, AProfileNamedOnTheCommandLineWinsOverEnvironmentKeysAndAwsProfile) {
  Fixture f;
  f.write(".aws/credentials",
          "[gcs]\naws_access_key_id = GOOG1\naws_secret_access_key = SG\n"
          "[p]\naws_access_key_id = AKP\naws_secret_access_key = SP\n");
  f.write(".aws/config", "[profile gcs]\nendpoint_url = https://storage.googleapis.com\nregion = auto\n");
  f.vars["AWS_PROFILE"] = "p";
  f.vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  f.vars["AWS_SECRET_ACCESS_KEY"] = "SENV";
  auto s = resolve_aws_settings(f.env(), std::string("gcs"));
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->credentials.keys.access_key_id, "GOOG1");
  EXPECT_EQ(s->profile, "gcs");
  EXPECT_NE(s->credentials.describe().find("profile 'gcs'"), std::string::npos);
  EXPECT_EQ(s->endpoint_url, "https://storage.googleapis.com");
  EXPECT_EQ(s->region, "auto");
  // Region and endpoint keep the AWS order: the environment's come first.
  f.vars["AWS_REGION"] = "eu-west-1";
  EXPECT_EQ(resolve_aws_settings(f.env(), std::string("gcs"))->region, "eu-west-1");
  auto ghost = resolve_aws_settings(f.env(), std::string("ghost"));
  ASSERT_FALSE(ghost);
  EXPECT_EQ(ghost.error().code, "NoSuchProfile");
  EXPECT_EQ(resolve_aws_settings(f.env())->credentials.keys.access_key_id, "AKENV");
}

TEST(AwsConfig, MissingCredentialsAndUnknownProfileAreClearErrors) {
  Fixture f;
  f.vars["AWS_EC2_METADATA_DISABLED"] = "true";  // else the chain ends at instance metadata
  auto none = resolve_aws_settings(f.env());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "NoCredentials");
  EXPECT_NE(none.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
  f.vars["AWS_PROFILE"] = "ghost";
  auto ghost = resolve_aws_settings(f.env());
  ASSERT_FALSE(ghost);
  EXPECT_EQ(ghost.error().code, "NoSuchProfile");
  f.vars["AWS_ACCESS_KEY_ID"] = "AK";  // half a key pair is no key pair
  EXPECT_FALSE(resolve_aws_settings(f.env()));
}

TEST(AwsConfig, IniParserHandlesCommentsSpacingAndNesting) {
  auto ini =
      credentials::parse_ini("# c\n; c\n[ default ]\n  key =  v  \nempty=\ns3 =\n    a = 1\nnext = 2\n[x]\r\nk=v\r\n");
  EXPECT_EQ(ini["default"]["key"], "v");
  EXPECT_EQ(ini["default"]["s3.a"], "1");
  EXPECT_EQ(ini["default"]["next"], "2");
  EXPECT_EQ(ini["x"]["k"], "v");
}

// One region decides a side's host and its signature, whichever of the
// flags, the environment or the profile names it.
TEST(AwsConfig, EndpointsComeFromTheRegionThatSignsOverFlagsEnvironmentAndProfile) {
  Fixture f;
  f.vars["AWS_ACCESS_KEY_ID"] = "AK";
  f.vars["AWS_SECRET_ACCESS_KEY"] = "SK";
  f.write(".aws/config",
          "[default]\nregion = ap-southeast-2\n[profile fips]\nregion = us-gov-west-1\nuse_fips_endpoint = true\n"
          "[profile local]\nendpoint_url = http://127.0.0.1:9000\nregion = eu-west-3\n"
          "[profile vhost]\nregion = eu-west-1\ns3 =\n  addressing_style = virtual\n");
  struct Case {
    const char* what;
    std::map<std::string, std::string> env;
    std::optional<std::string> profile;
    EndpointFlags flags;
    const char* host;
    const char* region;
    bool path_style;
  };
  const std::vector<Case> cases = {
      {"the profile's region", {}, {}, {}, "s3.ap-southeast-2.amazonaws.com", "ap-southeast-2", false},
      {"AWS_REGION over the profile",
       {{"AWS_REGION", "eu-north-1"}},
       {},
       {},
       "s3.eu-north-1.amazonaws.com",
       "eu-north-1",
       false},
      {"AWS_DEFAULT_REGION",
       {{"AWS_DEFAULT_REGION", "ca-central-1"}},
       {},
       {},
       "s3.ca-central-1.amazonaws.com",
       "ca-central-1",
       false},
      // The case: --region alone must move the host too.
      {"--region alone", {}, {}, {.region = "eu-west-1"}, "s3.eu-west-1.amazonaws.com", "eu-west-1", false},
      {"--region over AWS_REGION",
       {{"AWS_REGION", "us-east-1"}},
       {},
       {.region = "eu-west-1"},
       "s3.eu-west-1.amazonaws.com",
       "eu-west-1",
       false},
      {"--source-region over --region",
       {},
       {},
       {.side_region = "sa-east-1", .region = "eu-west-1"},
       "s3.sa-east-1.amazonaws.com",
       "sa-east-1",
       false},
      {"a China region",
       {},
       {},
       {.region = "cn-northwest-1"},
       "s3.cn-northwest-1.amazonaws.com.cn",
       "cn-northwest-1",
       false},
      {"FIPS from the environment",
       {{"AWS_USE_FIPS_ENDPOINT", "true"}},
       {},
       {.region = "us-east-2"},
       "s3-fips.us-east-2.amazonaws.com",
       "us-east-2",
       false},
      {"dual-stack from the environment",
       {{"AWS_USE_DUALSTACK_ENDPOINT", "true"}},
       {},
       {.region = "us-west-2"},
       "s3.dualstack.us-west-2.amazonaws.com",
       "us-west-2",
       false},
      {"FIPS from the profile",
       {},
       std::string("fips"),
       {},
       "s3-fips.us-gov-west-1.amazonaws.com",
       "us-gov-west-1",
       false},
      {"AWS_ENDPOINT_URL keeps its host, signs for the region",
       {{"AWS_ENDPOINT_URL", "http://127.0.0.1:57480"}},
       {},
       {.region = "eu-west-1"},
       "127.0.0.1",
       "eu-west-1",
       true},
      {"--endpoint",
       {},
       {},
       {.endpoint = "https://minio.example.net:9000"},
       "minio.example.net",
       "ap-southeast-2",
       false},
      {"--path-style",
       {},
       {},
       {.endpoint = "https://minio.example.net", .path_style = true},
       "minio.example.net",
       "ap-southeast-2",
       true},
      {"a side's profile keeps its endpoint over --endpoint",
       {},
       std::string("local"),
       {.endpoint = "https://elsewhere.example.net", .side_profile = true},
       "127.0.0.1",
       "eu-west-3",
       true},
      {"--source-endpoint over a side's profile",
       {},
       std::string("local"),
       {.side_endpoint = "https://side.example.net", .side_profile = true},
       "side.example.net",
       "eu-west-3",
       false},
      {"the profile's addressing_style = virtual",
       {},
       std::string("vhost"),
       {},
       "s3.eu-west-1.amazonaws.com",
       "eu-west-1",
       false},
  };
  for (const auto& c : cases) {
    auto vars = f.vars;
    for (const auto& [k, v] : c.env) vars[k] = v;
    const EnvLookup env = [&vars](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
    auto aws = resolve_aws_settings(env, c.profile);
    ASSERT_TRUE(aws) << c.what << ": " << aws.error().describe();
    auto ep = resolve_endpoint(c.flags, *aws);
    ASSERT_TRUE(ep) << c.what << ": " << ep.error().describe();
    EXPECT_EQ(ep->host, c.host) << c.what;
    EXPECT_EQ(ep->region, c.region) << c.what;
    EXPECT_EQ(ep->path_style, c.path_style) << c.what;
  }
  // A dotted bucket cannot be a TLS host name: path-style on AWS whatever asked.
  auto aws = resolve_aws_settings(f.env());
  auto ep = resolve_endpoint({.region = "eu-west-1"}, *aws);
  EXPECT_TRUE(bucket_on(*ep, nullptr, "assets.example.com").endpoint.path_style);
  EXPECT_FALSE(bucket_on(*ep, nullptr, "legacy-s3").endpoint.path_style);
  // AWS_CA_BUNDLE, then the profile's ca_bundle.
  f.write(".aws/config", "[default]\nca_bundle = /etc/ssl/profile.pem\n");
  EXPECT_EQ(resolve_aws_settings(f.env())->ca_bundle, "/etc/ssl/profile.pem");
  f.vars["AWS_CA_BUNDLE"] = "/etc/ssl/env.pem";
  EXPECT_EQ(resolve_aws_settings(f.env())->ca_bundle, "/etc/ssl/env.pem");
}
