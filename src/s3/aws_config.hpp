// Resolves a side's AWS settings the way the AWS CLI and SDKs do, so an
// SRE's existing setup works unchanged:
//   credentials: the SDKs' default chain (credentials/chain.hpp): the
//                environment's keys, a profile's role, a web identity, a
//                profile's keys or credential_process, container
//                credentials, EC2 instance metadata;
//   region:      AWS_REGION, AWS_DEFAULT_REGION, the profile's region,
//                us-east-1 (a command line's --region goes first: region_for);
//   endpoint:    AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
//                services section (s3 = endpoint_url), s3.endpoint_url or
//                endpoint_url (all ignored when
//                AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else AWS's own
//                for the region, FIPS (AWS_USE_FIPS_ENDPOINT,
//                use_fips_endpoint) and dual-stack (AWS_USE_DUALSTACK_ENDPOINT,
//                use_dualstack_endpoint) as asked;
//   CA bundle:   AWS_CA_BUNDLE, the profile's ca_bundle.
// Environment access is injected, so this is testable without touching the
// process environment.
#pragma once

#include <optional>
#include <string>

#include "core/error.hpp"
#include "credentials/chain.hpp"
#include "credentials/config.hpp"
#include "s3/location.hpp"

namespace assetmv::s3 {

using credentials::EnvLookup;
using credentials::process_env;

struct AwsSettings {
  credentials::Spec credentials;  // the chain's choice, not fetched yet
  std::string region;
  std::optional<std::string> endpoint_url;
  std::optional<std::string> addressing_style;  // "path" or "virtual" from the profile's s3 section
  bool fips = false;
  bool dualstack = false;
  std::optional<std::string> ca_bundle;
  std::string profile;
};

// Reads the files named by the environment (or the defaults under $HOME).
// A missing file is not an error; unresolvable credentials are.
//
// `profile` is one named on the command line (--source-profile,
// --dest-profile: two buckets on two providers need two sets of keys). As
// the AWS CLI's --profile does, it replaces AWS_PROFILE and its keys win
// over the environment's; region and endpoint keep their order above.
Result<AwsSettings> resolve_aws_settings(const EnvLookup& env, const std::optional<std::string>& profile = {});

// What the command line says of one side's endpoint and region.
struct EndpointFlags {
  std::string side_endpoint = {};  // --source-endpoint / --dest-endpoint
  std::string endpoint = {};       // --endpoint (both sides)
  std::string side_region = {};    // --source-region / --dest-region
  std::string region = {};         // --region (both sides)
  bool side_profile = false;       // --source-profile / --dest-profile: its endpoint_url is this side's
  bool path_style = false;         // --path-style
};

// The endpoint a side's requests go to: the side's own --X-endpoint, else
// --endpoint unless the side has a profile of its own, else the settings'
// endpoint_url, else AWS's host for the region — the same region that
// signs (the side's --X-region, else --region, else the settings'), so
// --region alone reaches the right host. Path-style when asked
// (--path-style, the profile's addressing_style = path), for IP and
// localhost endpoints, and (bucket_on) for dotted bucket names over TLS.
Result<Endpoint> resolve_endpoint(const EndpointFlags& flags, const AwsSettings& aws);

}  // namespace assetmv::s3
