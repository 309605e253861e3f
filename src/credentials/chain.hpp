// Which credentials a side signs with: the AWS SDKs' default credential
// chain, decided from the environment and the shared files alone (pure; the
// fetching is providers.hpp's). In botocore's order:
//
//   1. environment keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//      (+ AWS_SESSION_TOKEN); set aside when a profile is named on the
//      command line, as the CLI's --profile sets them aside;
//   2. the profile's role_arn with source_profile or credential_source
//      (Environment, Ec2InstanceMetadata, EcsContainer): STS AssumeRole,
//      with its external_id, duration_seconds and role_session_name;
//   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
//      (+ AWS_ROLE_SESSION_NAME), or the profile's web_identity_token_file
//      and role_arn (IRSA on EKS): STS AssumeRoleWithWebIdentity;
//   4. an SSO profile (sso_session, sso_start_url): refused with the way
//      that works unattended, credential_process with
//      `aws configure export-credentials`;
//   5. the profile's static keys in the credentials file;
//   6. the profile's credential_process;
//   7. the profile's static keys in the config file;
//   8. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS)
//      or AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity), with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN;
//   9. EC2 instance metadata, IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT,
//      _ENDPOINT_MODE, AWS_METADATA_SERVICE_TIMEOUT, _NUM_ATTEMPTS), unless
//      AWS_EC2_METADATA_DISABLED=true.
//
// STS is reached at its regional endpoint (https://sts.REGION.amazonaws.com,
// the SDKs' default) unless AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the
// profile's services section or endpoint_url says otherwise;
// sts_regional_endpoints = legacy (AWS_STS_REGIONAL_ENDPOINTS) asks for the
// global one; AWS_USE_FIPS_ENDPOINT for the FIPS one.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "credentials/config.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::credentials {

enum class Kind { Static, AssumeRole, WebIdentity, Process, Container, Imds };

// Where STS is and which region its requests are signed for.
struct StsTarget {
  std::string url;  // scheme://host[:port]
  std::string region;
};

struct Spec {
  Kind kind = Kind::Static;
  std::string origin;  // where the chain found it, for messages: "environment", "profile 'p' (/root/.aws/config)"

  sigv4::Credentials keys;  // Static

  // AssumeRole and WebIdentity
  std::string role_arn;
  std::string session_name;
  std::string external_id;
  std::optional<int> duration_seconds;
  std::string token_file;              // WebIdentity: read at every fetch (the kubelet rotates it)
  std::shared_ptr<const Spec> source;  // AssumeRole: the credentials that assume the role
  StsTarget sts;

  std::string command;  // Process: the credential_process line

  // Container
  std::string url;
  std::string auth_token;       // AWS_CONTAINER_AUTHORIZATION_TOKEN
  std::string auth_token_file;  // AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read at every fetch

  // Imds
  std::string imds_endpoint;  // http://169.254.169.254
  std::chrono::milliseconds imds_timeout{1000};
  int imds_attempts = 1;
  // Set when the chain reached instance metadata because nothing else was
  // configured: what was looked for, so a failure there says all of it.
  std::string fallback_note;

  // One line naming the source and what it uses, never a secret:
  // "web identity (role arn:aws:iam::1:role/r, token file /var/run/t, STS https://sts.eu-west-1.amazonaws.com)".
  std::string describe() const;
  // Whether the keys can change (everything but static keys can be fetched again).
  bool refreshable() const { return kind != Kind::Static; }
};

// The chain's choice for one side, or a one-line configuration error (exit 2).
// `profile` is the profile named on the command line for this side, if any.
Result<Spec> resolve_chain(const EnvLookup& env, const SharedFiles& files, const std::optional<std::string>& profile);

// The regional STS endpoint for `region` (and FIPS when asked), or the
// global one for the legacy setting. Pure; exposed for tests.
StsTarget sts_target(const EnvLookup& env, const SharedFiles& files, const std::string& profile,
                     const std::string& region);

// The region a profile's requests go to: AWS_REGION, AWS_DEFAULT_REGION, the
// profile's region, else us-east-1.
std::string region_of(const EnvLookup& env, const SharedFiles& files, const std::string& profile);

}  // namespace assetmv::credentials
