#include "core/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <memory>

namespace assetmv::logging {

namespace {

struct State {
  Format format = Format::Text;
  Level level = Level::Info;
  std::shared_ptr<spdlog::logger> logger;
  void (*before)() = nullptr;
  void (*after)() = nullptr;
};

State& state() {
  static State s;
  return s;
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("assetmv", sink);
  logger->set_pattern("%v");  // we format the whole line ourselves
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);  // a kill -9 must not lose the last lines
  return logger;
}

std::string_view level_name(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
}

std::string text_value(const nlohmann::json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    const bool plain = !s.empty() && s.find_first_of(" \"=\t\n") == std::string::npos;
    return plain ? s : nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Format auto_format() { return isatty(STDERR_FILENO) != 0 ? Format::Text : Format::Json; }

void init(Format format, Level level) {
  auto& s = state();
  s.format = format;
  s.level = level;
  if (!s.logger) s.logger = make_logger();
}

void set_line_guard(void (*before)(), void (*after)()) {
  state().before = before;
  state().after = after;
}

void log(Level level, std::string_view event, std::string_view message, const nlohmann::json& fields) {
  auto& s = state();
  if (level < s.level) return;
  if (!s.logger) s.logger = make_logger();
  std::string line;
  if (s.format == Format::Json) {
    nlohmann::json j = {{"ts", timestamp()}, {"level", level_name(level)}, {"event", event}, {"msg", message}};
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) j[k] = v;
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = fmt::format("{} {:<5} {:<18} {}", timestamp(), level_name(level), event, message);
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) line += fmt::format(" {}={}", k, text_value(v));
    }
  }
  if (s.before != nullptr) s.before();
  s.logger->info(line);
  if (s.after != nullptr) s.after();
}

}  // namespace assetmv::logging
