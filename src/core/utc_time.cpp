#include "core/utc_time.hpp"

#include <charconv>
#include <ctime>

namespace assetmv {

namespace {

// The digits at text[at, at + n) as a number, or -1.
int digits_at(std::string_view text, std::size_t at, std::size_t n) {
  if (at + n > text.size()) return -1;
  int v = 0;
  const char* b = text.data() + at;
  auto [ptr, ec] = std::from_chars(b, b + n, v);
  return ec == std::errc() && ptr == b + n ? v : -1;
}

bool char_at(std::string_view text, std::size_t at, char c) { return at < text.size() && text[at] == c; }

// What follows ISO 8601's seconds: an optional fraction, then Z, an offset
// (+HH:MM, -HH:MM, +HHMM) or nothing. Seconds east of UTC, or nullopt.
std::optional<int> offset_after(std::string_view rest) {
  std::size_t i = 0;
  if (char_at(rest, 0, '.')) {
    i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
  }
  rest.remove_prefix(i);
  if (rest.empty() || rest == "Z") return 0;
  if (rest.front() != '+' && rest.front() != '-') return std::nullopt;
  const int sign = rest.front() == '-' ? -1 : 1;
  const int hours = digits_at(rest, 1, 2);
  const int minutes = rest.size() == 6 && rest[3] == ':' ? digits_at(rest, 4, 2) : digits_at(rest, 3, 2);
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59 || (rest.size() != 6 && rest.size() != 5))
    return std::nullopt;
  return sign * (hours * 3600 + minutes * 60);
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_utc_time(std::string_view text) {
  std::tm tm{};
  int offset = 0;
  if (char_at(text, 4, '-') && char_at(text, 7, '-') && char_at(text, 10, 'T')) {
    tm.tm_sec = digits_at(text, 17, 2);
    tm.tm_min = digits_at(text, 14, 2);
    tm.tm_hour = digits_at(text, 11, 2);
    tm.tm_mday = digits_at(text, 8, 2);
    tm.tm_mon = digits_at(text, 5, 2) - 1;
    tm.tm_year = digits_at(text, 0, 4) - 1900;
    if (!char_at(text, 13, ':') || !char_at(text, 16, ':') || text.size() < 19) return std::nullopt;
    const auto off = offset_after(text.substr(19));
    if (!off) return std::nullopt;
    offset = *off;
  } else if (text.size() == 29 && text.substr(25) == " GMT" && char_at(text, 3, ',')) {
    static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const auto month = kMonths.find(text.substr(8, 3));
    if (month == std::string_view::npos || month % 3 != 0) return std::nullopt;
    tm.tm_sec = digits_at(text, 23, 2);
    tm.tm_min = digits_at(text, 20, 2);
    tm.tm_hour = digits_at(text, 17, 2);
    tm.tm_mday = digits_at(text, 5, 2);
    tm.tm_mon = static_cast<int>(month / 3);
    tm.tm_year = digits_at(text, 12, 4) - 1900;
  } else {
    return std::nullopt;
  }
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
    return std::nullopt;
  // timegm: UTC, whatever the process's time zone.
  return std::chrono::system_clock::from_time_t(timegm(&tm)) - std::chrono::seconds(offset);
}

std::string format_utc_time(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace assetmv
