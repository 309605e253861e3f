#include "cli/control.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace assetmv::cli {

namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

std::optional<double> parse_rate(std::string_view v) {
  double rate = 0;
  const char* end = v.data() + v.size();
  auto [ptr, ec] = std::from_chars(v.data(), end, rate);
  if (ec != std::errc() || ptr != end || rate < 0) return std::nullopt;
  return rate;
}

}  // namespace

Control parse_control(std::string_view text, std::string_view path) {
  Control c;
  int number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++number;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto space = line.find_first_of(" \t=");
    const std::string_view word = line.substr(0, space);
    // "max-rate 500", "max-rate=500" and "max-rate = 500" all say the same.
    std::string_view v = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space));
    if (!v.empty() && v.front() == '=') v = trim(v.substr(1));
    const auto rate = word == "max-rate" ? parse_rate(v) : std::nullopt;
    if (word == "pause" && v.empty()) {
      c.paused = true;
      c.pause_reason = fmt::format("{} line {}: pause", path, number);
    } else if (rate) {
      c.max_rate = rate;
    } else {
      c.problems.push_back(fmt::format("{} line {}: cannot understand {:?} (known: pause, max-rate N)", path, number,
                                       std::string(line)));
    }
  }
  return c;
}

Control ControlFiles::poll() {
  bool changed = false;
  if (!control_path_.empty()) {
    struct stat st {};
    if (::stat(control_path_.c_str(), &st) != 0) {
      seen_.reset();
      parsed_ = {};
    } else {
      const std::pair<std::int64_t, std::int64_t> id{
          st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
      if (seen_ != id) {
        seen_ = id;
        std::ifstream in(control_path_);
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad() || !in.is_open()) {
          parsed_ = {};
          if (!unreadable_reported_)
            parsed_.problems.push_back(fmt::format("cannot read the control file {}", control_path_));
          unreadable_reported_ = true;
        } else {
          parsed_ = parse_control(text.str(), control_path_);
        }
        changed = true;
      }
    }
  }
  Control now = parsed_;
  if (!changed) now.problems.clear();  // reported once per change
  if (!pause_path_.empty() && !now.paused) {
    struct stat st {};
    if (::stat(pause_path_.c_str(), &st) == 0) {
      now.paused = true;
      now.pause_reason = fmt::format("{} exists", pause_path_);
    }
  }
  return now;
}

}  // namespace assetmv::cli
