#include "cli/progress.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "core/log.hpp"

namespace assetmv::cli {

namespace {

ProgressDisplay* g_active = nullptr;  // the one display that owns the terminal line
// Units of progress: rows when the table has legacy rows, else names.
std::uint64_t units(const engine::Progress& p) { return p.legacy_rows > 0 ? p.rows_done : p.names_done; }

}  // namespace

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  const auto s = std::llround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressDisplay::ProgressDisplay(std::string label, bool terminal)
    : label_(std::move(label)),
      terminal_(terminal),
      start_(std::chrono::steady_clock::now()),
      last_log_(start_),
      rate_time_(start_) {
  if (terminal_) {
    g_active = this;
    logging::set_line_guard(&ProgressDisplay::clear_line, &ProgressDisplay::redraw_line);
  }
}

ProgressDisplay::~ProgressDisplay() {
  if (g_active == this) {
    logging::set_line_guard(nullptr, nullptr);
    g_active = nullptr;
  }
}

void ProgressDisplay::clear_line() {
  if (g_active && !g_active->line_.empty()) std::fputs("\r\033[K", stderr);
}

void ProgressDisplay::redraw_line() {
  if (g_active && !g_active->line_.empty()) {
    std::fputs(g_active->line_.c_str(), stderr);
    std::fflush(stderr);
  }
}

std::string ProgressDisplay::render(const engine::Progress& p, double rate) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string s = fmt::format("{} {}", label_, format_duration(elapsed));
  if (p.legacy_rows > 0) {
    s += fmt::format("  rows {}/{} ({:.0f}%)", p.rows_done, p.legacy_rows,
                     100.0 * static_cast<double>(p.rows_done) / static_cast<double>(p.legacy_rows));
  } else {
    s += fmt::format("  names {}", p.names_done);
  }
  s += fmt::format("  listed {}  copied {}  deleted {}  {:.0f}/s", p.objects_listed, p.objects_copied,
                   p.objects_deleted, rate);
  if (p.paused) {
    s += "  PAUSED";  // an ETA means nothing while the operator holds the run
  } else if (const auto eta = eta_seconds(p)) {
    s += "  ETA " + format_duration(*eta);
  }
  if (p.needs_human > 0) s += fmt::format("  needs-human {}", p.needs_human);
  return s;
}

std::optional<double> ProgressDisplay::eta_seconds(const engine::Progress& p) const {
  if (p.paused || p.legacy_rows == 0 || rate_ <= 0 || p.rows_done >= p.legacy_rows) return std::nullopt;
  return static_cast<double>(p.legacy_rows - p.rows_done) / rate_;
}

void ProgressDisplay::update(const engine::Progress& p) {
  const auto now = std::chrono::steady_clock::now();
  const double dt = std::chrono::duration<double>(now - rate_time_).count();
  if (dt >= 1.0) {
    const double instant = static_cast<double>(units(p) - rate_units_) / dt;
    rate_ = rate_ == 0 ? instant : 0.7 * rate_ + 0.3 * instant;  // smoothed so the ETA does not jump
    rate_units_ = units(p);
    rate_time_ = now;
  }
  if (terminal_) {
    line_ = "\r\033[K" + render(p, rate_);
    std::fputs(line_.c_str(), stderr);
    std::fflush(stderr);
    return;
  }
  if (now - last_log_ >= std::chrono::seconds(10)) {
    last_log_ = now;
    logging::info("progress", render(p, rate_),
                  {{"rows_done", p.rows_done},
                   {"legacy_rows", p.legacy_rows},
                   {"objects_listed", p.objects_listed},
                   {"objects_copied", p.objects_copied},
                   {"objects_deleted", p.objects_deleted},
                   {"paused", p.paused},
                   {"rate_per_s", rate_}});
  }
}

void ProgressDisplay::finish() {
  if (terminal_ && !line_.empty()) std::fputs("\n", stderr);
  line_.clear();
}

}  // namespace assetmv::cli
