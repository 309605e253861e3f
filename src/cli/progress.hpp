// Progress for long runs: on a terminal, one line redrawn in place with rate
// and ETA (log lines are written above it); otherwise a structured log line
// every ten seconds, for log shippers.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "engine/migration.hpp"

namespace assetmv::cli {

class ProgressDisplay {
 public:
  ProgressDisplay(std::string label, bool terminal);
  ~ProgressDisplay();
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void update(const engine::Progress& p);
  void finish();  // leaves the last line on the terminal
  // Time to the end at the smoothed rate; none while paused or unknown.
  std::optional<double> eta_seconds(const engine::Progress& p) const;

 private:
  std::string render(const engine::Progress& p, double rate) const;
  static void clear_line();
  static void redraw_line();

  std::string label_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_log_;
  std::chrono::steady_clock::time_point rate_time_;
  std::uint64_t rate_units_ = 0;
  double rate_ = 0;  // units per second, smoothed
  std::string line_;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace assetmv::cli
