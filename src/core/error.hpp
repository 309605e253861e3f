// Errors as values across every layer, and the one place that decides what a
// failure means for the caller: retry it, slow down, skip it, or stop.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace assetmv {

// What a caller should do about a failure. Every HTTP, S3 and libpq failure
// maps to exactly one kind, in classify_http() or classify_pg(); Interrupted
// is the engine's own, for work given up because a stop was asked for.
enum class ErrorKind {
  Retryable,           // transient: network, 5xx, serialization failure; retry with backoff
  Throttled,           // the server asks us to slow down (503 SlowDown, 429); retry and slow everyone
  NotFound,            // the object, bucket or relation does not exist
  PreconditionFailed,  // a conditional request's condition did not hold (412)
  AccessDenied,        // credentials or permissions: retrying will not help
  Fatal,               // malformed request, misconfiguration, protocol violation
  Interrupted,         // not a failure: stopped on request (a signal); run again to resume
};

std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::Fatal;
  std::string code;     // S3 error code, curl error name or SQLSTATE; empty if none
  std::string message;  // one human-readable line; never contains a secret
  int http_status = 0;  // 0 when no HTTP response was received
  // The store's ids for the exchange (S3's RequestId / x-amz-request-id and
  // HostId / x-amz-id-2): what AWS support asks for. Empty when none came.
  std::string request_id = {};
  std::string host_id = {};

  bool retryable() const { return kind == ErrorKind::Retryable || kind == ErrorKind::Throttled; }
  // "code: message (HTTP 503, request id R, host id H)" for logs and reports.
  std::string describe() const;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ErrorKind kind, std::string code, std::string message, int http_status = 0) {
  return tl::unexpected<Error>(Error{kind, std::move(code), std::move(message), http_status});
}

// Classifies one HTTP exchange. curl_code is 0 when a response arrived;
// s3_code is the <Code> of an S3 error body, empty if there was none. A 200
// that carries an error body is classified by its code, as S3 asks.
ErrorKind classify_http(int curl_code, int http_status, std::string_view s3_code);

// Classifies a libpq failure by SQLSTATE (empty when the connection itself failed).
ErrorKind classify_pg(std::string_view sqlstate, bool connection_bad);

// errno's words ("No such file or directory"); thread-safe, unlike strerror.
std::string errno_text(int e);

}  // namespace assetmv
