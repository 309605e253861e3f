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

// "shard 3:" before a directive: the shard it names, and the rest of the
// line. nullopt when the line names no shard; a shard of -1 when it names
// one badly.
std::optional<std::pair<long, std::string_view>> shard_prefix(std::string_view line) {
  if (!line.starts_with("shard") || line.size() < 6 || (line[5] != ' ' && line[5] != '\t')) return std::nullopt;
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return std::pair{-1L, line};
  const std::string_view k = trim(line.substr(5, colon - 5));
  long shard = -1;
  auto [ptr, ec] = std::from_chars(k.data(), k.data() + k.size(), shard);
  if (ec != std::errc() || ptr != k.data() + k.size() || k.empty()) shard = -1;
  return std::pair{shard, trim(line.substr(colon + 1))};
}

}  // namespace

Control parse_control(std::string_view text, std::string_view path, std::uint32_t shard, std::uint32_t shards) {
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
    const std::string_view whole = line;
    bool mine = true;
    bool scoped = false;
    if (auto named = shard_prefix(line)) {
      if (named->first < 0 || named->first >= static_cast<long>(shards)) {
        c.problems.push_back(fmt::format("{} line {}: {:?} names no shard of this run (shard K: with K from 0 to {})",
                                         path, number, std::string(whole), shards - 1));
        continue;
      }
      scoped = true;
      mine = named->first == static_cast<long>(shard);
      line = named->second;
    }
    const auto space = line.find_first_of(" \t=");
    const std::string_view word = line.substr(0, space);
    // "max-rate 500", "max-rate=500" and "max-rate = 500" all say the same.
    std::string_view v = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space));
    if (!v.empty() && v.front() == '=') v = trim(v.substr(1));
    const auto rate = word == "max-rate" ? parse_rate(v) : std::nullopt;
    if (word == "pause" && v.empty()) {
      if (!mine) continue;
      c.paused = true;
      c.pause_reason = fmt::format("{} line {}: {}", path, number, std::string(whole));
    } else if (rate) {
      if (!mine) continue;
      (scoped ? c.shard_max_rate : c.max_rate) = rate;
    } else {
      c.problems.push_back(
          fmt::format("{} line {}: cannot understand {:?} (known: pause, max-rate N, each "
                      "optionally after shard K:)",
                      path, number, std::string(whole)));
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
          parsed_ = parse_control(text.str(), control_path_, shard_, shards_);
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
