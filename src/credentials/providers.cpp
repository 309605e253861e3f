#include "credentials/providers.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>

#include "core/child.hpp"
#include "core/digest.hpp"
#include "core/utc_time.hpp"

namespace assetmv::credentials {

namespace {

constexpr std::string_view kStsVersion = "2011-06-15";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

// The first line of a text, cut to a length a log line can carry.
std::string first_line(std::string_view s) {
  s = trim(s);
  s = s.substr(0, s.find('\n'));
  constexpr std::size_t kMax = 200;
  return std::string(s.substr(0, kMax));
}

Result<std::string> read_token_file(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in)
    return fail(ErrorKind::Fatal, "TokenFileUnreadable",
                fmt::format("cannot read the {} {}: {}", what, path, errno_text(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string token(trim(ss.str()));
  if (token.empty()) return fail(ErrorKind::Fatal, "TokenFileEmpty", fmt::format("the {} {} is empty", what, path));
  return token;
}

std::string default_session_name() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return fmt::format("assetmv-{}", std::chrono::duration_cast<std::chrono::seconds>(now).count());
}

// An error of a source, named: "<source>: <what went wrong>".
Error named(const Spec& spec, Error e) {
  e.message = fmt::format("{}: {}", spec.describe(), e.message);
  return e;
}

// A non-2xx answer from an endpoint that is not STS (a container endpoint, IMDS).
Error http_error(const http::Response& r, std::string_view what) {
  if (!r.transport_ok()) {
    Error e{classify_http(r.curl_code, 0, ""), fmt::format("curl{}", r.curl_code),
            fmt::format("{}: {}", what, r.curl_error), 0};
    return e;
  }
  return Error{classify_http(0, r.status, ""), fmt::format("HTTP{}", r.status),
               fmt::format("{} answered HTTP {}{}{}", what, r.status, r.body.empty() ? "" : ": ", first_line(r.body)),
               r.status};
}

Result<std::optional<std::chrono::system_clock::time_point>> expiry_of(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::optional<std::chrono::system_clock::time_point>{};
  auto t = parse_utc_time(*text);
  if (!t) return fail(ErrorKind::Fatal, "BadExpiration", fmt::format("Expiration '{}' is not a time", *text));
  return std::optional<std::chrono::system_clock::time_point>{*t};
}

// ---- STS ----------------------------------------------------------------------

class StsProvider : public Provider {
 public:
  StsProvider(std::shared_ptr<const Spec> spec, EventLoop& loop, http::Client& http)
      : spec_(std::move(spec)), loop_(loop), http_(http) {
    if (spec_->kind == Kind::AssumeRole) source_ = make_provider(spec_->source, loop, http);
  }

  void fetch(Done done) override {
    const std::string session = spec_->session_name.empty() ? default_session_name() : spec_->session_name;
    if (spec_->kind == Kind::WebIdentity) {
      // Read at every fetch: the kubelet rotates a projected token.
      auto token = read_token_file(spec_->token_file, "web identity token file");
      if (!token) return post(std::move(done), tl::unexpected(named(*spec_, token.error())));
      return send(web_identity_request(*spec_, *token, session), "AssumeRoleWithWebIdentity", std::move(done));
    }
    source_->fetch([this, session, done = std::move(done)](Result<Fresh> src) mutable {
      if (!src) {
        Error e = src.error();
        e.message = fmt::format("role {}: its source credentials: {}", spec_->role_arn, e.message);
        return done(tl::unexpected(std::move(e)));
      }
      send(assume_role_request(*spec_, src->keys, session, std::chrono::system_clock::now()), "AssumeRole",
           std::move(done));
    });
  }

 private:
  void post(Done done, Result<Fresh> r) {
    loop_.post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  }
  void send(http::Request req, std::string_view action, Done done) {
    http_.send(std::move(req), [this, action, done = std::move(done)](const http::Response& resp) {
      auto r = parse_sts_answer(resp, action);
      if (!r) return done(tl::unexpected(named(*spec_, r.error())));
      done(std::move(r));
    });
  }

  std::shared_ptr<const Spec> spec_;
  EventLoop& loop_;
  http::Client& http_;
  std::unique_ptr<Provider> source_;
};

// ---- credential_process -------------------------------------------------------

class ProcessProvider : public Provider {
 public:
  ProcessProvider(std::shared_ptr<const Spec> spec, EventLoop& loop) : spec_(std::move(spec)), loop_(loop) {}

  void fetch(Done done) override {
    auto argv = split_command(spec_->command);
    if (!argv || argv->empty()) {
      loop_.post([this, done = std::move(done)] {
        done(fail(ErrorKind::Fatal, "BadCredentialProcess",
                  fmt::format("{}: the command line is empty or has an unclosed quote", spec_->describe())));
      });
      return;
    }
    run_child(loop_, std::move(*argv), kProcessTimeout, [this, done = std::move(done)](Result<ChildOutput> out) {
      if (!out) return done(tl::unexpected(named(*spec_, out.error())));
      if (out->exit_code != 0) {
        const std::string how = out->signal != 0 ? fmt::format("was killed by signal {}", out->signal)
                                                 : fmt::format("exited with status {}", out->exit_code);
        const std::string said = first_line(out->err);
        return done(fail(ErrorKind::Fatal, "CredentialProcessFailed",
                         fmt::format("{}: {}{}{}", spec_->describe(), how, said.empty() ? "" : ": ", said)));
      }
      auto r = parse_process_output(out->out);
      if (!r) return done(tl::unexpected(named(*spec_, r.error())));
      done(std::move(r));
    });
  }

 private:
  std::shared_ptr<const Spec> spec_;
  EventLoop& loop_;
};

// ---- container credentials (ECS, EKS Pod Identity) ---------------------------

class ContainerProvider : public Provider {
 public:
  ContainerProvider(std::shared_ptr<const Spec> spec, EventLoop& loop, http::Client& http)
      : spec_(std::move(spec)), loop_(loop), http_(http) {}

  void fetch(Done done) override { attempt(1, std::move(done)); }

 private:
  void attempt(int n, Done done) {
    http::Request req;
    req.method = "GET";
    req.url = spec_->url;
    req.timeout = kContainerTimeout;
    req.headers.push_back({"accept", "application/json"});
    std::string token = spec_->auth_token;
    if (!spec_->auth_token_file.empty()) {  // read at every fetch: it is rotated
      auto t = read_token_file(spec_->auth_token_file, "authorization token file");
      if (!t) {
        loop_.post([this, done = std::move(done), e = t.error()]() mutable { done(tl::unexpected(named(*spec_, e))); });
        return;
      }
      token = std::move(*t);
    }
    if (token.find_first_of("\r\n") != std::string::npos) {
      loop_.post([this, done = std::move(done)] {
        done(fail(ErrorKind::Fatal, "BadAuthorizationToken",
                  fmt::format("{}: the authorization token holds a line break", spec_->describe())));
      });
      return;
    }
    if (!token.empty()) req.headers.push_back({"authorization", std::move(token)});
    http_.send(std::move(req), [this, n, done = std::move(done)](const http::Response& resp) mutable {
      const bool ok = resp.transport_ok() && resp.status == 200;
      if (!ok) {
        Error e = http_error(resp, "the endpoint");
        if (e.retryable() && n < kContainerAttempts) {
          loop_.call_after(std::chrono::seconds(1),
                           [this, n, done = std::move(done)]() mutable { attempt(n + 1, std::move(done)); });
          return;
        }
        if (n > 1) e.message += fmt::format(" (after {} attempts)", n);
        return done(tl::unexpected(named(*spec_, std::move(e))));
      }
      auto r = parse_credentials_json(resp.body);
      if (!r) return done(tl::unexpected(named(*spec_, r.error())));
      done(std::move(r));
    });
  }

  std::shared_ptr<const Spec> spec_;
  EventLoop& loop_;
  http::Client& http_;
};

// ---- EC2 instance metadata, IMDSv2 --------------------------------------------

class ImdsProvider : public Provider {
 public:
  ImdsProvider(std::shared_ptr<const Spec> spec, http::Client& http) : spec_(std::move(spec)), http_(http) {}

  void fetch(Done done) override {
    http::Request token;
    token.method = "PUT";
    token.url = spec_->imds_endpoint + "/latest/api/token";
    token.headers.push_back({"x-aws-ec2-metadata-token-ttl-seconds", std::to_string(kImdsTokenTtlSeconds)});
    ask(std::move(token), "the session token (PUT /latest/api/token)", 1,
        [this, done = std::move(done)](Result<std::string> tok) mutable {
          if (!tok) return finish(done, tl::unexpected(tok.error()));
          const std::string base = spec_->imds_endpoint + "/latest/meta-data/iam/security-credentials/";
          ask(get(base, *tok), "the instance's role", 1,
              [this, base, tok = *tok, done = std::move(done)](Result<std::string> role) mutable {
                if (!role) return finish(done, tl::unexpected(role.error()));
                const std::string name(trim(std::string_view(*role).substr(0, role->find('\n'))));
                if (name.empty())
                  return finish(done,
                                fail(ErrorKind::Fatal, "NoInstanceRole", "the instance has no IAM role attached"));
                ask(get(base + name, tok), "role " + name + "'s credentials", 1,
                    [this, done = std::move(done)](Result<std::string> body) mutable {
                      if (!body) return finish(done, tl::unexpected(body.error()));
                      finish(done, parse_credentials_json(*body));
                    });
              });
        });
  }

 private:
  http::Request get(std::string url, const std::string& token) const {
    http::Request r;
    r.method = "GET";
    r.url = std::move(url);
    r.headers.push_back({"x-aws-ec2-metadata-token", token});
    return r;
  }

  void ask(http::Request req, std::string what, int n, std::function<void(Result<std::string>)> done) {
    req.timeout = spec_->imds_timeout;
    auto copy = req;
    http_.send(std::move(req), [this, copy = std::move(copy), what = std::move(what), n,
                                done = std::move(done)](http::Response resp) mutable {
      if (resp.transport_ok() && resp.status == 200) return done(std::move(resp.body));
      Error e = http_error(resp, what);
      if (resp.curl_code == 28)  // CURLE_OPERATION_TIMEDOUT
        e.message = fmt::format("{}: no answer within {} ms", what, spec_->imds_timeout.count());
      if (n < spec_->imds_attempts && (e.retryable() || !resp.transport_ok()))
        return ask(std::move(copy), std::move(what), n + 1, std::move(done));
      if (n > 1) e.message += fmt::format(" (after {} attempts)", n);
      done(tl::unexpected(std::move(e)));
    });
  }

  void finish(const Done& done, Result<Fresh> r) {
    if (r) return done(std::move(r));
    Error e = named(*spec_, r.error());
    if (!spec_->fallback_note.empty())
      e.message = fmt::format("no AWS credentials: {}; and {}", spec_->fallback_note, e.message);
    done(tl::unexpected(std::move(e)));
  }

  std::shared_ptr<const Spec> spec_;
  http::Client& http_;
};

class StaticProvider : public Provider {
 public:
  StaticProvider(std::shared_ptr<const Spec> spec, EventLoop& loop) : spec_(std::move(spec)), loop_(loop) {}
  void fetch(Done done) override {
    loop_.post([this, done = std::move(done)] { done(Fresh{spec_->keys, std::nullopt}); });
  }

 private:
  std::shared_ptr<const Spec> spec_;
  EventLoop& loop_;
};

}  // namespace

std::unique_ptr<Provider> make_provider(std::shared_ptr<const Spec> spec, EventLoop& loop, http::Client& http) {
  switch (spec->kind) {
    case Kind::Static:
      return std::make_unique<StaticProvider>(std::move(spec), loop);
    case Kind::AssumeRole:
    case Kind::WebIdentity:
      return std::make_unique<StsProvider>(std::move(spec), loop, http);
    case Kind::Process:
      return std::make_unique<ProcessProvider>(std::move(spec), loop);
    case Kind::Container:
      return std::make_unique<ContainerProvider>(std::move(spec), loop, http);
    case Kind::Imds:
      return std::make_unique<ImdsProvider>(std::move(spec), http);
  }
  return std::make_unique<StaticProvider>(std::move(spec), loop);
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += sigv4::uri_encode(k, false);
    out += '=';
    out += sigv4::uri_encode(v, false);
  }
  return out;
}

namespace {

http::Request sts_post(const Spec& spec, std::string body) {
  http::Request r;
  r.method = "POST";
  r.url = spec.sts.url + "/";
  r.body = std::move(body);
  r.timeout = kStsTimeout;
  r.headers.push_back({"content-type", "application/x-www-form-urlencoded; charset=utf-8"});
  return r;
}

std::string host_of(std::string_view url) {
  auto rest = url.substr(url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3);
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

http::Request assume_role_request(const Spec& spec, const sigv4::Credentials& source, std::string_view session_name,
                                  std::chrono::system_clock::time_point now) {
  std::vector<std::pair<std::string, std::string>> f = {{"Action", "AssumeRole"},
                                                        {"Version", std::string(kStsVersion)},
                                                        {"RoleArn", spec.role_arn},
                                                        {"RoleSessionName", std::string(session_name)}};
  if (spec.duration_seconds) f.emplace_back("DurationSeconds", std::to_string(*spec.duration_seconds));
  if (!spec.external_id.empty()) f.emplace_back("ExternalId", spec.external_id);
  auto r = sts_post(spec, form_encode(f));
  sigv4::RequestToSign ts;
  ts.method = r.method;
  ts.path = "/";
  ts.headers = {{"host", host_of(spec.sts.url)}, {"content-type", r.headers.front().value}};
  ts.payload_hash = hex(sha256(r.body));
  const auto authz = sigv4::sign(ts, source, {spec.sts.region, "sts", sigv4::PathMode::Generic, now});
  r.headers.clear();
  for (auto& h : ts.headers) r.headers.push_back({std::move(h.name), std::move(h.value)});
  r.headers.push_back({"authorization", authz});
  return r;
}

http::Request web_identity_request(const Spec& spec, std::string_view token, std::string_view session_name) {
  std::vector<std::pair<std::string, std::string>> f = {{"Action", "AssumeRoleWithWebIdentity"},
                                                        {"Version", std::string(kStsVersion)},
                                                        {"RoleArn", spec.role_arn},
                                                        {"RoleSessionName", std::string(session_name)},
                                                        {"WebIdentityToken", std::string(token)}};
  if (spec.duration_seconds) f.emplace_back("DurationSeconds", std::to_string(*spec.duration_seconds));
  return sts_post(spec, form_encode(f));
}

Result<Fresh> parse_sts_answer(const http::Response& resp, std::string_view action) {
  if (!resp.transport_ok()) return tl::unexpected(http_error(resp, fmt::format("{} request", action)));
  pugi::xml_document doc;
  const bool parsed = doc.load_buffer(resp.body.data(), resp.body.size());
  const bool success = resp.status >= 200 && resp.status < 300;
  pugi::xml_node err = doc.select_node("//Error").node();
  if (!success || err) {
    Error e;
    e.http_status = resp.status;
    e.code = err ? err.child_value("Code") : "";
    if (e.code.empty()) e.code = fmt::format("HTTP{}", resp.status);
    e.kind = classify_http(0, resp.status, e.code);
    const std::string message = err ? err.child_value("Message") : first_line(resp.body);
    e.message = fmt::format("{} refused{}{}", action, message.empty() ? "" : ": ", message);
    e.request_id = doc.select_node("//RequestId").node().child_value();
    if (e.request_id.empty()) e.request_id = resp.header("x-amzn-requestid").value_or("");
    return tl::unexpected(std::move(e));
  }
  const auto creds = doc.select_node("//Credentials").node();
  if (!parsed || !creds)
    return fail(ErrorKind::Retryable, "MalformedAnswer", fmt::format("{} answer holds no Credentials", action));
  Fresh f;
  f.keys.access_key_id = trim(creds.child_value("AccessKeyId"));
  f.keys.secret_access_key = Secret(std::string(trim(creds.child_value("SecretAccessKey"))));
  f.keys.session_token = Secret(std::string(trim(creds.child_value("SessionToken"))));
  if (f.keys.access_key_id.empty() || f.keys.secret_access_key.empty())
    return fail(ErrorKind::Retryable, "MalformedAnswer", fmt::format("{} answer holds no keys", action));
  auto exp = expiry_of(std::string(trim(creds.child_value("Expiration"))));
  if (!exp) return tl::unexpected(exp.error());
  f.expires = *exp;
  return f;
}

namespace {

Result<Fresh> keys_from_json(std::string_view body, const char* token_field, bool needs_version) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(ErrorKind::Fatal, "MalformedAnswer", "the answer is not a JSON object");
  auto str = [&j](const char* k) -> std::optional<std::string> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (needs_version) {
    auto v = j.find("Version");
    if (v == j.end() || !v->is_number_integer() || v->get<int>() != 1)
      return fail(ErrorKind::Fatal, "MalformedAnswer", "its output has no \"Version\": 1");
  }
  if (auto code = str("Code"); code && *code != "Success")
    return fail(ErrorKind::Retryable, *code, fmt::format("the answer says {}: {}", *code, str("Message").value_or("")));
  auto id = str("AccessKeyId");
  auto secret = str("SecretAccessKey");
  if (!id || id->empty() || !secret || secret->empty())
    return fail(ErrorKind::Fatal, "MalformedAnswer", "the answer has no AccessKeyId and SecretAccessKey");
  Fresh f;
  f.keys.access_key_id = *id;
  f.keys.secret_access_key = Secret(*secret);
  if (auto t = str(token_field)) f.keys.session_token = Secret(*t);
  auto exp = expiry_of(str("Expiration"));
  if (!exp) return tl::unexpected(exp.error());
  f.expires = *exp;
  return f;
}

}  // namespace

Result<Fresh> parse_credentials_json(std::string_view body) { return keys_from_json(body, "Token", false); }

Result<Fresh> parse_process_output(std::string_view body) { return keys_from_json(body, "SessionToken", true); }

}  // namespace assetmv::credentials
