// Fetching the keys a chain's Spec names (chain.hpp), on the event loop:
// STS AssumeRole and AssumeRoleWithWebIdentity, a credential_process run as
// a child process, the container credentials endpoint, IMDSv2. Nothing here
// blocks: every fetch is an HTTP exchange or a child watched by the loop, so
// a refresh in the middle of a run never stops the copies. Each failure is
// one line that names the source it came from and never carries a secret.
//
// The request builders and answer parsers are pure and exposed for tests.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "credentials/chain.hpp"
#include "http/http.hpp"
#include "sigv4/sigv4.hpp"

namespace assetmv::credentials {

// Keys as a provider hands them out, with their expiry when they have one.
struct Fresh {
  sigv4::Credentials keys;
  std::optional<std::chrono::system_clock::time_point> expires;
};

class Provider {
 public:
  using Done = std::function<void(Result<Fresh>)>;
  virtual ~Provider() = default;
  // One fetch; `done` runs once, on the loop's thread, never inside fetch().
  virtual void fetch(Done done) = 0;
};

// Builds the provider for spec. The loop and the HTTP client outlive it.
std::unique_ptr<Provider> make_provider(std::shared_ptr<const Spec> spec, EventLoop& loop, http::Client& http);

// How long one answer may take: STS, a container endpoint, a credential_process.
inline constexpr std::chrono::seconds kStsTimeout{10};
inline constexpr std::chrono::seconds kContainerTimeout{2};  // botocore's; it tries three times
inline constexpr int kContainerAttempts = 3;
inline constexpr std::chrono::seconds kProcessTimeout{60};  // an SSO refresh behind it can take a while
inline constexpr int kImdsTokenTtlSeconds = 21'600;         // the SDKs ask for six hours

// ---- pure parts -------------------------------------------------------------

// application/x-www-form-urlencoded, every byte outside A-Z a-z 0-9 - . _ ~ escaped.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
// STS AssumeRole, signed with the source keys for the target's region.
http::Request assume_role_request(const Spec& spec, const sigv4::Credentials& source, std::string_view session_name,
                                  std::chrono::system_clock::time_point now);
// STS AssumeRoleWithWebIdentity: unsigned, the token is the proof.
http::Request web_identity_request(const Spec& spec, std::string_view token, std::string_view session_name);
// An STS answer (`action` names the response element): its credentials, or
// its error (Code, Message, RequestId) classified as S3's are.
Result<Fresh> parse_sts_answer(const http::Response& resp, std::string_view action);
// The JSON a container endpoint or IMDS answers (AccessKeyId,
// SecretAccessKey, Token, Expiration; IMDS adds Code).
Result<Fresh> parse_credentials_json(std::string_view body);
// A credential_process's stdout: Version 1, AccessKeyId, SecretAccessKey,
// SessionToken, Expiration (absent: the keys do not expire).
Result<Fresh> parse_process_output(std::string_view body);

}  // namespace assetmv::credentials
