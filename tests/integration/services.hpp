// Access to the real local services for integration tests. scripts/test.sh
// starts them and exports their coordinates; ASSETMV_REQUIRE_SERVICES=1 turns a
// missing service into a failure instead of a skip, so CI can never pass by
// skipping.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/loop.hpp"
#include "db/pg.hpp"
#include "http/http.hpp"
#include "s3/client.hpp"

namespace assetmv::itest {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline bool services_required() { return env_or("ASSETMV_REQUIRE_SERVICES", "0") == "1"; }

#define ASSETMV_NEED(cond, what)                                                          \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      if (::assetmv::itest::services_required()) FAIL() << (what) << " is not available"; \
      GTEST_SKIP() << (what) << " is not available (run scripts/test.sh)";                \
    }                                                                                     \
  } while (0)

inline std::string s3_endpoint() { return env_or("AWS_ENDPOINT_URL", ""); }
inline std::string legacy_bucket() { return env_or("ASSETMV_LEGACY_BUCKET", "legacy-s3"); }
inline std::string prod_bucket() { return env_or("ASSETMV_PROD_BUCKET", "production-s3"); }

inline s3::Bucket bucket(const std::string& name, bool path_style = true) {
  auto ep = s3::Endpoint::parse(s3_endpoint());
  s3::Bucket b;
  // Without AWS_ENDPOINT_URL a fixture still builds, and its SetUp skips the
  // test (or fails it under ASSETMV_REQUIRE_SERVICES) before the bucket is used.
  if (ep) b.endpoint = *ep;
  b.endpoint.path_style = path_style;
  b.credentials =
      credentials::Source::fixed({env_or("AWS_ACCESS_KEY_ID", ""), Secret(env_or("AWS_SECRET_ACCESS_KEY", "")), {}});
  b.name = name;
  return b;
}

// A prefix no other test (or earlier run) uses.
inline std::string unique_prefix(const std::string& test) {
  static int counter = 0;
  return fmt::format("it-{}-{}-{}-{}/", test, ::getpid(), std::time(nullptr), ++counter);
}

struct S3Fixture {
  EventLoop loop;
  http::Client http{loop, {}};
  s3::Client client;
  explicit S3Fixture(s3::ClientOptions opt = {}) : client(loop, http, opt) {}

  template <class T, class Start>
  Result<T> call(Start&& start) {
    return s3::wait<T>(loop, std::forward<Start>(start));
  }
};

inline Result<db::Connection> connect_db() { return db::Connection::open(env_or("ASSETMV_TEST_DB", "")); }

}  // namespace assetmv::itest
