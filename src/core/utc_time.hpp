// Instants as the services write them, parsed to UTC time points: S3
// listings' LastModified and STS's Expiration (ISO 8601), HEAD's
// Last-Modified (an HTTP date), and the credential files' Expiration (ISO
// 8601 with an offset). Pure; the process's time zone plays no part.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace assetmv {

// "2026-12-02T06:00:00Z", "2026-12-02T06:00:00.000Z", "2026-12-02T07:00:00+01:00"
// (an offset is applied; none, or Z, is UTC), or "Wed, 02 Dec 2026 06:00:00 GMT".
// nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> parse_utc_time(std::string_view text);

// "2026-12-02T06:00:00Z", for logs and reports.
std::string format_utc_time(std::chrono::system_clock::time_point t);

}  // namespace assetmv
