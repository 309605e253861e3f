#include "core/error.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <cstring>

namespace assetmv {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Retryable:
      return "retryable";
    case ErrorKind::Throttled:
      return "throttled";
    case ErrorKind::NotFound:
      return "not-found";
    case ErrorKind::PreconditionFailed:
      return "precondition-failed";
    case ErrorKind::AccessDenied:
      return "access-denied";
    case ErrorKind::Fatal:
      return "fatal";
    case ErrorKind::Interrupted:
      return "interrupted";
  }
  return "fatal";
}

std::string Error::describe() const {
  std::string out = code.empty() ? std::string(to_string(kind)) : code;
  if (!message.empty()) out += ": " + message;
  std::string ids;
  if (!request_id.empty()) ids += ", request id " + request_id;
  if (!host_id.empty()) ids += ", host id " + host_id;
  if (http_status != 0) {
    out += fmt::format(" (HTTP {}{})", http_status, ids);
  } else if (!ids.empty()) {
    out += " (" + ids.substr(2) + ")";
  }
  return out;
}

namespace {

ErrorKind classify_curl(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    // The network or the peer failed us; the same request may well succeed.
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:  // also a truncated or garbled status line
    case CURLE_AGAIN:
      return ErrorKind::Retryable;
    default:
      // TLS verification, bad URL, unsupported protocol: configuration errors.
      return ErrorKind::Fatal;
  }
}

bool is_one_of(std::string_view code, std::initializer_list<std::string_view> codes) {
  for (auto c : codes) {
    if (code == c) return true;
  }
  return false;
}

}  // namespace

ErrorKind classify_http(int curl_code, int http_status, std::string_view s3_code) {
  if (curl_code != 0) return classify_curl(curl_code);

  // The code is more precise than the status, and is all a 200-with-error has.
  if (is_one_of(s3_code, {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                          "TooManyRequestsException", "ServiceUnavailable"}))
    return ErrorKind::Throttled;
  if (is_one_of(s3_code, {"InternalError", "RequestTimeout", "ConditionalRequestConflict", "OperationAborted",
                          "ExpiredRequest"}))
    return ErrorKind::Retryable;
  if (is_one_of(s3_code, {"NoSuchKey", "NoSuchBucket", "NoSuchUpload"})) return ErrorKind::NotFound;
  if (is_one_of(s3_code, {"PreconditionFailed"})) return ErrorKind::PreconditionFailed;
  if (is_one_of(s3_code, {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
                          "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "RequestTimeTooSkewed",
                          "InvalidSecurity"}))
    return ErrorKind::AccessDenied;

  if (http_status == 503 || http_status == 429) return ErrorKind::Throttled;
  if (http_status == 500 || http_status == 502 || http_status == 504 || http_status == 408 || http_status == 409)
    return ErrorKind::Retryable;
  if (http_status == 404) return ErrorKind::NotFound;
  if (http_status == 412) return ErrorKind::PreconditionFailed;
  if (http_status == 401 || http_status == 403) return ErrorKind::AccessDenied;
  return ErrorKind::Fatal;
}

std::string errno_text(int e) {
  char buf[256];
  return strerror_r(e, buf, sizeof buf);  // the GNU form: returns the text, maybe not in buf
}

ErrorKind classify_pg(std::string_view sqlstate, bool connection_bad) {
  if (connection_bad) return ErrorKind::Retryable;  // reconnect and retry
  if (sqlstate.size() != 5) return ErrorKind::Fatal;
  const auto cls = sqlstate.substr(0, 2);
  if (sqlstate == "40001" || sqlstate == "40P01") return ErrorKind::Retryable;  // serialization, deadlock
  if (sqlstate == "55P03") return ErrorKind::Retryable;                         // lock_not_available (lock_timeout)
  if (sqlstate == "57014") return ErrorKind::Retryable;                         // query_canceled (statement_timeout)
  if (cls == "08") return ErrorKind::Retryable;                                 // connection exception
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03")
    return ErrorKind::Retryable;                                           // shutdown, crash, cannot connect now
  if (cls == "53") return ErrorKind::Throttled;                            // insufficient resources
  if (sqlstate == "42501" || cls == "28") return ErrorKind::AccessDenied;  // privilege, authorization
  if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "3F000" || sqlstate == "3D000")
    return ErrorKind::NotFound;  // table, column, schema, database
  return ErrorKind::Fatal;
}

}  // namespace assetmv
