#include "credentials/chain.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

#include "core/child.hpp"

namespace assetmv::credentials {

namespace {

constexpr int kMaxRoleChain = 5;  // source_profile hops; botocore has no limit but cycles are errors

// ECS's fixed address for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
constexpr std::string_view kEcsHost = "http://169.254.170.2";
constexpr std::string_view kImdsIpv4 = "http://169.254.169.254";
constexpr std::string_view kImdsIpv6 = "http://[fd00:ec2::254]";

// Regions whose "legacy" STS endpoint is the global one (botocore's list).
constexpr std::array<std::string_view, 16> kLegacyGlobalStsRegions = {
    "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "aws-global", "ca-central-1",
    "eu-central-1",   "eu-north-1", "eu-west-1",      "eu-west-2",      "eu-west-3",  "sa-east-1",
    "us-east-1",      "us-east-2",  "us-west-1",      "us-west-2"};

tl::unexpected<Error> config_error(std::string code, std::string message) {
  return fail(ErrorKind::Fatal, std::move(code), std::move(message));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string where(const SharedFiles& files, const std::string& profile, const std::string& key) {
  const bool in_credentials = files.from_credentials_file(profile, key).has_value();
  return fmt::format("profile '{}' in {}", profile, in_credentials ? files.credentials_path : files.config_path);
}

// The container endpoints AWS documents for plain HTTP: the loopback, ECS's
// and EKS Pod Identity's link-local addresses. Anything else must be HTTPS.
bool container_host_allowed(std::string_view url) {
  if (url.starts_with("https://")) return true;
  if (!url.starts_with("http://")) return false;
  auto rest = url.substr(7);
  std::string_view host;
  if (rest.starts_with("[")) {
    host = rest.substr(0, rest.find(']') + 1);
  } else {
    host = rest.substr(0, rest.find_first_of(":/"));
  }
  return host.starts_with("127.") || host == "localhost" || host == "[::1]" || host == "169.254.170.2" ||
         host == "169.254.170.23" || host == "[fd00:ec2::23]";
}

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// Static keys from one file's section, both halves or neither.
Result<std::optional<Spec>> static_keys(const std::optional<std::string>& id, const std::optional<std::string>& secret,
                                        const std::optional<std::string>& token, std::string origin) {
  if (!id && !secret) return std::optional<Spec>{};
  if (!id || !secret)
    return config_error("PartialCredentials",
                        fmt::format("{} has {} but not {}", origin, id ? "an access key id" : "a secret access key",
                                    id ? "its secret access key" : "its access key id"));
  Spec s;
  s.kind = Kind::Static;
  s.origin = std::move(origin);
  s.keys.access_key_id = *id;
  s.keys.secret_access_key = Secret(*secret);
  if (token) s.keys.session_token = Secret(*token);
  return std::optional<Spec>{std::move(s)};
}

// A profile's static keys in one of the two files: the chain reads the
// credentials file's before a credential_process, the config file's after.
enum class File { Credentials, Config };
Result<std::optional<Spec>> file_keys(const SharedFiles& files, const std::string& profile, File which) {
  const auto get = [&](const char* key) {
    return which == File::Credentials ? files.from_credentials_file(profile, key)
                                      : files.from_config_file(profile, key);
  };
  return static_keys(get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token"),
                     fmt::format("profile '{}' in {}", profile,
                                 which == File::Credentials ? files.credentials_path : files.config_path));
}

Result<std::optional<Spec>> environment_keys(const EnvLookup& env) {
  return static_keys(env_value(env, "AWS_ACCESS_KEY_ID"), env_value(env, "AWS_SECRET_ACCESS_KEY"),
                     env_value(env, "AWS_SESSION_TOKEN"), "environment");
}

Result<std::optional<Spec>> container(const EnvLookup& env) {
  Spec s;
  s.kind = Kind::Container;
  if (auto rel = env_value(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    s.url = std::string(kEcsHost) + (rel->starts_with("/") ? "" : "/") + *rel;
    s.origin = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
  } else if (auto full = env_value(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    if (!container_host_allowed(*full))
      return config_error("BadContainerCredentialsUri",
                          fmt::format("AWS_CONTAINER_CREDENTIALS_FULL_URI {} is neither HTTPS nor a loopback, ECS or "
                                      "EKS Pod Identity address (169.254.170.2, 169.254.170.23): refused, as the AWS "
                                      "SDKs refuse it",
                                      *full));
    s.url = *full;
    s.origin = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
  } else {
    return std::optional<Spec>{};
  }
  if (auto f = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    s.auth_token_file = *f;
  } else if (auto t = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
    s.auth_token = *t;
  }
  return std::optional<Spec>{std::move(s)};
}

Result<std::optional<Spec>> instance_metadata(const EnvLookup& env, const SharedFiles& files,
                                              const std::string& profile) {
  auto setting = [&](const char* var, const char* key) {
    auto v = env_value(env, var);
    return v ? v : files.get(profile, key);
  };
  if (is_true(env_value(env, "AWS_EC2_METADATA_DISABLED"))) return std::optional<Spec>{};
  Spec s;
  s.kind = Kind::Imds;
  s.origin = "EC2 instance metadata";
  if (auto ep = setting("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint")) {
    s.imds_endpoint = *ep;
    while (s.imds_endpoint.ends_with("/")) s.imds_endpoint.pop_back();
  } else {
    auto mode = setting("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ec2_metadata_service_endpoint_mode");
    s.imds_endpoint = std::string(mode && lower(*mode) == "ipv6" ? kImdsIpv6 : kImdsIpv4);
  }
  if (auto t = setting("AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout")) {
    auto secs = parse_int(*t);
    if (!secs || *secs <= 0)
      return config_error("BadMetadataTimeout", fmt::format("metadata service timeout '{}' is not seconds", *t));
    s.imds_timeout = std::chrono::seconds(*secs);
  }
  if (auto n = setting("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts")) {
    auto attempts = parse_int(*n);
    if (!attempts || *attempts <= 0)
      return config_error("BadMetadataAttempts", fmt::format("metadata service attempts '{}' is not a count", *n));
    s.imds_attempts = *attempts;
  }
  return std::optional<Spec>{std::move(s)};
}

tl::unexpected<Error> sso_error(const std::string& profile, const SharedFiles& files) {
  return config_error(
      "SsoProfile",
      fmt::format("profile '{}' ({}) signs in through AWS IAM Identity Center (SSO), which needs a browser: for an "
                  "unattended run give it `credential_process = aws configure export-credentials --profile {} "
                  "--format process` in another profile and name that one (the CLI refreshes the SSO session)",
                  profile, files.config_path, profile));
}

bool is_sso(const SharedFiles& files, const std::string& profile) {
  return files.get(profile, "sso_session").has_value() || files.get(profile, "sso_start_url").has_value();
}

struct Resolver {
  const EnvLookup& env;
  const SharedFiles& files;
  std::set<std::string> visited;

  Spec web_identity(const std::string& profile, std::string token_file, std::string role_arn,
                    const std::optional<std::string>& session, std::string origin) {
    Spec s;
    s.kind = Kind::WebIdentity;
    s.origin = std::move(origin);
    s.token_file = std::move(token_file);
    s.role_arn = std::move(role_arn);
    s.session_name = session.value_or("");
    s.sts = sts_target(env, files, profile, region_of(env, files, profile));
    if (auto d = files.get(profile, "duration_seconds")) s.duration_seconds = parse_int(*d);
    return s;
  }

  // The credentials a role's source_profile gives: another role, a web
  // identity, a process or static keys (botocore's order for a source).
  Result<Spec> source_profile(const std::string& name, int depth) {
    if (!files.has_profile(name))
      return config_error("NoSuchProfile", fmt::format("source_profile '{}' is in neither {} nor {}", name,
                                                       files.credentials_path, files.config_path));
    const auto role = files.get(name, "role_arn");
    const auto token = files.get(name, "web_identity_token_file");
    if (role && token)
      return web_identity(name, *token, *role, files.get(name, "role_session_name"), fmt::format("profile '{}'", name));
    if (role) return assume_role(name, depth + 1);
    if (is_sso(files, name)) return sso_error(name, files);
    auto keys = profile_keys(name);
    if (!keys) return tl::unexpected(keys.error());
    if (*keys) return std::move(**keys);
    return config_error("NoCredentials", fmt::format("source_profile '{}' holds no credentials (keys, a role, a "
                                                     "web identity or a credential_process)",
                                                     name));
  }

  // Steps 5 to 7 of the chain for one profile: the credentials file's keys,
  // its credential_process, the config file's keys; none found: nullopt.
  Result<std::optional<Spec>> profile_keys(const std::string& name) {
    auto keys = file_keys(files, name, File::Credentials);
    if (!keys || *keys) return keys;
    if (auto cmd = files.get(name, "credential_process")) return std::optional<Spec>{process(name, *cmd)};
    return file_keys(files, name, File::Config);
  }

  Spec process(const std::string& profile, const std::string& command) {
    Spec s;
    s.kind = Kind::Process;
    s.origin = where(files, profile, "credential_process");
    s.command = command;
    return s;
  }

  Result<Spec> assume_role(const std::string& profile, int depth) {
    if (depth > kMaxRoleChain || !visited.insert(profile).second)
      return config_error("RoleChainLoop", fmt::format("profile '{}': its source_profile chain loops", profile));
    const auto source = files.get(profile, "source_profile");
    const auto credential_source = files.get(profile, "credential_source");
    if (source && credential_source)
      return config_error("RoleSourceConflict", fmt::format("profile '{}' has both source_profile and "
                                                            "credential_source: give one",
                                                            profile));
    if (!source && !credential_source)
      return config_error("RoleWithoutSource", fmt::format("profile '{}' has role_arn but neither source_profile "
                                                           "nor credential_source",
                                                           profile));
    if (files.get(profile, "mfa_serial"))
      return config_error("MfaRequired",
                          fmt::format("profile '{}' needs an MFA code (mfa_serial), which an unattended run cannot "
                                      "give: use a role that does not require MFA, or export temporary keys",
                                      profile));
    Spec s;
    s.kind = Kind::AssumeRole;
    s.origin = where(files, profile, "role_arn");
    s.role_arn = *files.get(profile, "role_arn");
    s.session_name = files.get(profile, "role_session_name").value_or("");
    s.external_id = files.get(profile, "external_id").value_or("");
    if (auto d = files.get(profile, "duration_seconds")) {
      s.duration_seconds = parse_int(*d);
      if (!s.duration_seconds || *s.duration_seconds < 900 || *s.duration_seconds > 43'200)
        return config_error("BadDuration",
                            fmt::format("profile '{}': duration_seconds '{}' is not 900 to 43200", profile, *d));
    }
    s.sts = sts_target(env, files, profile, region_of(env, files, profile));
    Result<Spec> src = config_error("", "");
    if (credential_source) {
      src = named_source(*credential_source, profile);
    } else if (*source == profile) {
      // A profile may be its own source when it holds the keys itself.
      auto keys = static_keys(files.get(profile, "aws_access_key_id"), files.get(profile, "aws_secret_access_key"),
                              files.get(profile, "aws_session_token"), fmt::format("profile '{}'", profile));
      if (!keys) return tl::unexpected(keys.error());
      if (!*keys)
        return config_error("RoleChainLoop", fmt::format("profile '{}' is its own source_profile but holds no "
                                                         "keys",
                                                         profile));
      src = std::move(**keys);
    } else {
      src = source_profile(*source, depth);
    }
    if (!src) return tl::unexpected(src.error());
    s.source = std::make_shared<const Spec>(std::move(*src));
    return s;
  }

  // credential_source: where the role's source credentials come from.
  Result<Spec> named_source(const std::string& name, const std::string& profile) {
    // The spec a provider found, or a clear error when it found none.
    const auto found = [&profile, &name](Result<std::optional<Spec>> r, std::string_view unset) -> Result<Spec> {
      if (!r) return tl::unexpected(r.error());
      if (*r) return std::move(**r);
      return config_error("NoCredentials",
                          fmt::format("profile '{}': credential_source {}, but {}", profile, name, unset));
    };
    if (name == "Environment")
      return found(environment_keys(env), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
    if (name == "EcsContainer")
      return found(container(env), "no AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set");
    if (name == "Ec2InstanceMetadata")
      return found(instance_metadata(env, files, profile), "AWS_EC2_METADATA_DISABLED is true");
    return config_error("BadCredentialSource",
                        fmt::format("profile '{}': credential_source '{}' is not Environment, Ec2InstanceMetadata or "
                                    "EcsContainer",
                                    profile, name));
  }
};

}  // namespace

std::string region_of(const EnvLookup& env, const SharedFiles& files, const std::string& profile) {
  if (auto r = env_value(env, "AWS_REGION")) return *r;
  if (auto r = env_value(env, "AWS_DEFAULT_REGION")) return *r;
  return files.get(profile, "region").value_or("us-east-1");
}

StsTarget sts_target(const EnvLookup& env, const SharedFiles& files, const std::string& profile,
                     const std::string& region) {
  StsTarget t;
  t.region = region;
  if (!is_true(env_value(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) &&
      !is_true(files.get(profile, "ignore_configured_endpoint_urls"))) {
    for (auto url : {env_value(env, "AWS_ENDPOINT_URL_STS"), env_value(env, "AWS_ENDPOINT_URL"),
                     files.service_setting(profile, "sts.endpoint_url"), files.get(profile, "endpoint_url")}) {
      if (!url) continue;
      t.url = *url;
      while (t.url.ends_with("/")) t.url.pop_back();
      return t;
    }
  }
  const std::string suffix = region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  auto fips = env_value(env, "AWS_USE_FIPS_ENDPOINT");
  if (!fips) fips = files.get(profile, "use_fips_endpoint");
  auto mode = env_value(env, "AWS_STS_REGIONAL_ENDPOINTS");
  if (!mode) mode = files.get(profile, "sts_regional_endpoints");
  if (is_true(fips)) {
    t.url = fmt::format("https://sts-fips.{}.{}", region, suffix);
  } else if (mode && lower(*mode) == "legacy" &&
             std::find(kLegacyGlobalStsRegions.begin(), kLegacyGlobalStsRegions.end(), region) !=
                 kLegacyGlobalStsRegions.end()) {
    t.url = "https://sts.amazonaws.com";
    t.region = "us-east-1";
  } else {
    t.url = fmt::format("https://sts.{}.{}", region, suffix);
  }
  return t;
}

Result<Spec> resolve_chain(const EnvLookup& env, const SharedFiles& files, const std::optional<std::string>& profile) {
  const ProfileChoice choice = choose_profile(env, profile);
  if (!choice.explicit_) {
    auto keys = environment_keys(env);
    if (!keys) return tl::unexpected(keys.error());
    if (*keys) return std::move(**keys);
  }
  const std::string& name = choice.name;
  if (choice.named && !files.has_profile(name))
    return config_error("NoSuchProfile", fmt::format("AWS profile '{}' is in neither {} nor {}", name,
                                                     files.credentials_path, files.config_path));
  Resolver r{env, files, {}};
  const auto role = files.get(name, "role_arn");
  const auto profile_token = files.get(name, "web_identity_token_file");
  if (role && !profile_token) return r.assume_role(name, 0);

  // Web identity: each setting from the environment first, then the profile.
  const auto token =
      env_value(env, "AWS_WEB_IDENTITY_TOKEN_FILE") ? env_value(env, "AWS_WEB_IDENTITY_TOKEN_FILE") : profile_token;
  const auto arn = env_value(env, "AWS_ROLE_ARN") ? env_value(env, "AWS_ROLE_ARN") : role;
  if (token && !arn)
    return config_error("WebIdentityWithoutRole",
                        fmt::format("a web identity token file is set ({}) but no role: set AWS_ROLE_ARN or the "
                                    "profile's role_arn",
                                    *token));
  if (token) {
    auto session = env_value(env, "AWS_ROLE_SESSION_NAME");
    if (!session) session = files.get(name, "role_session_name");
    const bool from_env = env_value(env, "AWS_WEB_IDENTITY_TOKEN_FILE").has_value();
    return r.web_identity(name, *token, *arn, session,
                          from_env ? std::string("AWS_WEB_IDENTITY_TOKEN_FILE") : fmt::format("profile '{}'", name));
  }
  if (is_sso(files, name)) return sso_error(name, files);

  auto keys = r.profile_keys(name);
  if (!keys) return tl::unexpected(keys.error());
  if (*keys) return std::move(**keys);

  auto c = container(env);
  if (!c) return tl::unexpected(c.error());
  if (*c) return std::move(**c);
  auto m = instance_metadata(env, files, name);
  if (!m) return tl::unexpected(m.error());
  if (*m) {
    (*m)->fallback_note = fmt::format(
        "none in the environment or in profile '{}' ({}, {}), no web identity or "
        "container credentials",
        name, files.credentials_path, files.config_path);
    return std::move(**m);
  }
  return fail(ErrorKind::AccessDenied, "NoCredentials",
              fmt::format("no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), profile '{}' ({}, {}) "
                          "holds none, no web identity, container or instance metadata is configured "
                          "(AWS_EC2_METADATA_DISABLED is true)",
                          name, files.credentials_path, files.config_path));
}

std::string Spec::describe() const {
  switch (kind) {
    case Kind::Static:
      return origin;
    case Kind::AssumeRole:
      return fmt::format("role {} of {}, assumed with {} (STS {})", role_arn, origin, source ? source->describe() : "?",
                         sts.url);
    case Kind::WebIdentity:
      return fmt::format("web identity from {} (role {}, token file {}, STS {})", origin, role_arn, token_file,
                         sts.url);
    case Kind::Process: {
      // The program only: its arguments may carry a secret.
      const auto words = split_command(command).value_or(std::vector<std::string>{});
      return fmt::format("credential_process of {} ({})", origin, words.empty() ? std::string("?") : words.front());
    }
    case Kind::Container:
      return fmt::format("container credentials from {} ({}{})", origin, url,
                         !auth_token_file.empty() ? ", authorization token file " + auth_token_file
                         : !auth_token.empty()    ? ", authorization token"
                                                  : "");
    case Kind::Imds:
      return fmt::format("EC2 instance metadata (IMDSv2 at {})", imds_endpoint);
  }
  return origin;
}

}  // namespace assetmv::credentials
