// The AWS tools' shared configuration, read as they read it: the process
// environment and the two INI files (AWS_CONFIG_FILE, default ~/.aws/config;
// AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials). A profile is its
// section of the config file ([profile NAME], or [default]) with the
// credentials file's [NAME] merged over it, as botocore merges them.
// Environment access is injected, so everything built on it is testable
// without touching the process environment.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace assetmv::credentials {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();
// A variable's value, or nullopt when it is unset or empty (the AWS tools
// treat an empty variable as unset).
std::optional<std::string> env_value(const EnvLookup& env, const std::string& name);
// "true"/"false" (any case) as the AWS tools read their boolean settings.
bool is_true(const std::optional<std::string>& v);

// An INI file as the AWS tools write it: [section] headers, key = value
// lines, and one level of nested "s3 =" / "sts =" sub-keys, flattened to
// "s3.key".
using IniSection = std::map<std::string, std::string>;
using IniFile = std::map<std::string, IniSection>;
IniFile parse_ini(std::string_view text);

struct SharedFiles {
  std::string config_path;
  std::string credentials_path;
  IniFile config;
  IniFile credentials;

  // Reads the files the environment names (or the defaults under $HOME); a
  // missing file is an empty one.
  static SharedFiles load(const EnvLookup& env);

  bool has_profile(const std::string& name) const;
  // One setting of a profile: the credentials file's, else the config file's.
  std::optional<std::string> get(const std::string& profile, const std::string& key) const;
  // Only the credentials file's, or only the config file's: the chain takes
  // static keys from the first before a credential_process, and from the
  // second after it.
  std::optional<std::string> from_credentials_file(const std::string& profile, const std::string& key) const;
  std::optional<std::string> from_config_file(const std::string& profile, const std::string& key) const;
  // A key of a [services NAME] section the profile names with `services =`
  // ("sts.endpoint_url").
  std::optional<std::string> service_setting(const std::string& profile, const std::string& key) const;
  // A key of an [sso-session NAME] section.
  std::optional<std::string> sso_session(const std::string& name, const std::string& key) const;
};

// The profile a side uses: the one named on the command line, else
// AWS_PROFILE, AWS_DEFAULT_PROFILE, "default". `explicit_` is whether it was
// named on the command line (which, as the CLI's --profile, sets aside the
// environment's keys).
struct ProfileChoice {
  std::string name;
  bool named = false;      // on the command line or in AWS_PROFILE: a missing one is an error
  bool explicit_ = false;  // on the command line
};
ProfileChoice choose_profile(const EnvLookup& env, const std::optional<std::string>& command_line);

}  // namespace assetmv::credentials
