#include "s3/aws_config.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace assetmv::s3 {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> nonempty(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

const std::map<std::string, std::string>* section(const IniFile& ini, const std::string& name) {
  auto it = ini.find(name);
  return it == ini.end() ? nullptr : &it->second;
}

std::optional<std::string> get(const std::map<std::string, std::string>* sec, const std::string& key) {
  if (sec == nullptr) return std::nullopt;
  auto it = sec->find(key);
  if (it == sec->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read at startup only
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

IniFile parse_ini(std::string_view text) {
  IniFile ini;
  std::string current;
  std::string nested;  // "s3" while reading indented sub-keys of "s3 ="
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    auto line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      current = std::string(trim(line.substr(1, line.size() - 2)));
      nested.clear();
      ini[current];
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key(trim(line.substr(0, eq)));
    const std::string value(trim(line.substr(eq + 1)));
    if (indented && !nested.empty()) {
      std::string flat = nested;
      flat += '.';
      flat += key;
      ini[current][flat] = value;
      continue;
    }
    nested = value.empty() ? key : std::string();
    ini[current][key] = value;
  }
  return ini;
}

Result<AwsSettings> resolve_aws_settings(const EnvLookup& env, const std::optional<std::string>& profile) {
  AwsSettings s;
  const auto home = nonempty(env, "HOME").value_or("");
  s.profile =
      profile.value_or(nonempty(env, "AWS_PROFILE").value_or(nonempty(env, "AWS_DEFAULT_PROFILE").value_or("default")));
  const auto cred_path = nonempty(env, "AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  const auto conf_path = nonempty(env, "AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  const IniFile creds_ini = parse_ini(read_file(cred_path).value_or(""));
  const IniFile conf_ini = parse_ini(read_file(conf_path).value_or(""));
  const auto* cred_sec = section(creds_ini, s.profile);
  const auto* conf_sec = section(conf_ini, s.profile == "default" ? "default" : "profile " + s.profile);
  // As in the AWS SDKs' default chain, keys in the environment come first,
  // even when AWS_PROFILE is set; a profile named on the command line wins.
  auto env_key = nonempty(env, "AWS_ACCESS_KEY_ID");
  auto env_secret = nonempty(env, "AWS_SECRET_ACCESS_KEY");
  if (env_key && env_secret && !profile) {
    s.credentials.access_key_id = *env_key;
    s.credentials.secret_access_key = Secret(*env_secret);
    if (auto t = nonempty(env, "AWS_SESSION_TOKEN")) s.credentials.session_token = Secret(*t);
    s.credentials_source = "environment";
  } else {
    if ((profile || env("AWS_PROFILE").has_value()) && cred_sec == nullptr && conf_sec == nullptr)
      return fail(ErrorKind::Fatal, "NoSuchProfile",
                  fmt::format("AWS profile '{}' is in neither {} nor {}", s.profile, cred_path, conf_path));
    for (const auto& [sec, path] : {std::pair{cred_sec, cred_path}, std::pair{conf_sec, conf_path}}) {
      auto id = get(sec, "aws_access_key_id");
      auto secret = get(sec, "aws_secret_access_key");
      if (id && secret) {
        s.credentials.access_key_id = *id;
        s.credentials.secret_access_key = Secret(*secret);
        if (auto t = get(sec, "aws_session_token")) s.credentials.session_token = Secret(*t);
        s.credentials_source = fmt::format("profile '{}' in {}", s.profile, path);
        break;
      }
    }
    if (s.credentials.access_key_id.empty())
      return fail(ErrorKind::AccessDenied, "NoCredentials",
                  fmt::format("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '{}' "
                              "in {}",
                              s.profile, cred_path));
  }

  s.region = nonempty(env, "AWS_REGION")
                 .value_or(nonempty(env, "AWS_DEFAULT_REGION").value_or(get(conf_sec, "region").value_or("us-east-1")));

  const bool ignore_endpoints = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").value_or("") == "true";
  if (!ignore_endpoints) {
    if (auto e = nonempty(env, "AWS_ENDPOINT_URL_S3"))
      s.endpoint_url = e;
    else if (auto e2 = nonempty(env, "AWS_ENDPOINT_URL"))
      s.endpoint_url = e2;
    else if (auto e3 = get(conf_sec, "s3.endpoint_url"))
      s.endpoint_url = e3;
    else if (auto e4 = get(conf_sec, "endpoint_url"))
      s.endpoint_url = e4;
  }
  if (auto style = get(conf_sec, "s3.addressing_style")) s.addressing_style = style;
  return s;
}

}  // namespace assetmv::s3
