// Resolves credentials, region and endpoint the way the AWS CLI and SDKs do,
// so an SRE's existing setup works unchanged:
//   credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN),
//                else the profile (AWS_PROFILE, default "default") in
//                AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then in
//                AWS_CONFIG_FILE (~/.aws/config);
//   region:      AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1;
//   endpoint:    AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
//                s3.endpoint_url or endpoint_url (all ignored when
//                AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else AWS's own.
// Environment access is injected, so this is testable without touching the
// process environment.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::s3 {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

struct AwsSettings {
  sigv4::Credentials credentials;
  std::string credentials_source;  // "environment", "profile 'x' in /root/.aws/credentials": safe to print
  std::string region;
  std::optional<std::string> endpoint_url;
  std::optional<std::string> addressing_style;  // "path" or "virtual" from the profile's s3 section
  std::string profile;
};

// An INI file as the AWS tools write it: [section] headers, key = value lines,
// and one level of nested "s3 =" sub-keys, flattened to "s3.key".
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parse_ini(std::string_view text);

// Reads the files named by the environment (or the defaults under $HOME).
// A missing file is not an error; unresolvable credentials are.
//
// `profile` is one named on the command line (--source-profile,
// --dest-profile: two buckets on two providers need two sets of keys). As
// the AWS CLI's --profile does, it replaces AWS_PROFILE and its keys win
// over the environment's; region and endpoint keep their order above.
Result<AwsSettings> resolve_aws_settings(const EnvLookup& env, const std::optional<std::string>& profile = {});

}  // namespace assetmv::s3
