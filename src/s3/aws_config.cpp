#include "s3/aws_config.hpp"

#include <fmt/format.h>

namespace assetmv::s3 {

Result<AwsSettings> resolve_aws_settings(const EnvLookup& env, const std::optional<std::string>& profile) {
  using credentials::env_value;
  const auto files = credentials::SharedFiles::load(env);
  AwsSettings s;
  s.profile = credentials::choose_profile(env, profile).name;
  auto spec = credentials::resolve_chain(env, files, profile);
  if (!spec) return tl::unexpected(spec.error());
  s.credentials = std::move(*spec);
  s.region = credentials::region_of(env, files, s.profile);

  const auto setting = [&](const char* var, const char* key) {
    auto v = env_value(env, var);
    return v ? v : files.get(s.profile, key);
  };
  const bool ignore_endpoints = credentials::is_true(env_value(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ||
                                credentials::is_true(files.get(s.profile, "ignore_configured_endpoint_urls"));
  if (!ignore_endpoints) {
    for (const auto& url : {env_value(env, "AWS_ENDPOINT_URL_S3"), env_value(env, "AWS_ENDPOINT_URL"),
                            files.service_setting(s.profile, "s3.endpoint_url"),
                            files.get(s.profile, "s3.endpoint_url"), files.get(s.profile, "endpoint_url")}) {
      if (url) {
        s.endpoint_url = url;
        break;
      }
    }
  }
  if (auto style = files.get(s.profile, "s3.addressing_style")) s.addressing_style = style;
  s.fips = credentials::is_true(setting("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"));
  s.dualstack = credentials::is_true(setting("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint"));
  s.ca_bundle = setting("AWS_CA_BUNDLE", "ca_bundle");
  return s;
}

Result<Endpoint> resolve_endpoint(const EndpointFlags& f, const AwsSettings& aws) {
  const std::string& region = !f.side_region.empty() ? f.side_region : !f.region.empty() ? f.region : aws.region;
  const std::string& url = !f.side_endpoint.empty()                 ? f.side_endpoint
                           : !f.endpoint.empty() && !f.side_profile ? f.endpoint
                                                                    : aws.endpoint_url.value_or("");
  Endpoint ep;
  if (url.empty()) {
    ep = Endpoint::aws(region, aws.fips, aws.dualstack);
  } else {
    auto parsed = Endpoint::parse(url);
    if (!parsed) return tl::unexpected(parsed.error());
    ep = *parsed;
    ep.region = region;
  }
  if (f.path_style || aws.addressing_style == "path") ep.path_style = true;
  if (aws.addressing_style == "virtual" && !f.path_style) ep.path_style = false;
  return ep;
}

}  // namespace assetmv::s3
