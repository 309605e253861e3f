#include "credentials/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace assetmv::credentials {

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

std::optional<std::string> lookup(const IniFile& ini, const std::string& section, const std::string& key) {
  auto s = ini.find(section);
  if (s == ini.end()) return std::nullopt;
  auto it = s->second.find(key);
  if (it == s->second.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string config_section(const std::string& profile) {
  return profile == "default" ? "default" : "profile " + profile;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read at startup only
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::string> env_value(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

bool is_true(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s == "true";
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

SharedFiles SharedFiles::load(const EnvLookup& env) {
  SharedFiles f;
  const auto home = env_value(env, "HOME").value_or("");
  f.credentials_path = env_value(env, "AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  f.config_path = env_value(env, "AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  f.credentials = parse_ini(read_file(f.credentials_path).value_or(""));
  f.config = parse_ini(read_file(f.config_path).value_or(""));
  return f;
}

bool SharedFiles::has_profile(const std::string& name) const {
  return credentials.count(name) != 0 || config.count(config_section(name)) != 0;
}

std::optional<std::string> SharedFiles::get(const std::string& profile, const std::string& key) const {
  if (auto v = from_credentials_file(profile, key)) return v;
  return from_config_file(profile, key);
}

std::optional<std::string> SharedFiles::from_credentials_file(const std::string& profile,
                                                              const std::string& key) const {
  return lookup(credentials, profile, key);
}

std::optional<std::string> SharedFiles::from_config_file(const std::string& profile, const std::string& key) const {
  return lookup(config, config_section(profile), key);
}

std::optional<std::string> SharedFiles::service_setting(const std::string& profile, const std::string& key) const {
  auto services = get(profile, "services");
  if (!services) return std::nullopt;
  return lookup(config, "services " + *services, key);
}

std::optional<std::string> SharedFiles::sso_session(const std::string& name, const std::string& key) const {
  return lookup(config, "sso-session " + name, key);
}

ProfileChoice choose_profile(const EnvLookup& env, const std::optional<std::string>& command_line) {
  if (command_line) return {*command_line, true, true};
  if (auto p = env_value(env, "AWS_PROFILE")) return {*p, true, false};
  if (auto p = env_value(env, "AWS_DEFAULT_PROFILE")) return {*p, true, false};
  return {"default", false, false};
}

}  // namespace assetmv::credentials
