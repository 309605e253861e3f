// Structured logging: every line has an event name, a human message and
// key/value fields. On a terminal lines are text; otherwise (or with
// --log-format json) one JSON object per line, for log shippers.
// Values given here must never be secrets: callers pass Secret only through
// its formatter, which masks it.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace assetmv::logging {

enum class Format { Text, Json };
enum class Level { Debug, Info, Warn, Error };

// Format::Text when stderr is a terminal, else Json.
Format auto_format();
void init(Format format, Level level);

void log(Level level, std::string_view event, std::string_view message, const nlohmann::json& fields = {});
inline void debug(std::string_view e, std::string_view m, const nlohmann::json& f = {}) { log(Level::Debug, e, m, f); }
inline void info(std::string_view e, std::string_view m, const nlohmann::json& f = {}) { log(Level::Info, e, m, f); }
inline void warn(std::string_view e, std::string_view m, const nlohmann::json& f = {}) { log(Level::Warn, e, m, f); }
inline void error(std::string_view e, std::string_view m, const nlohmann::json& f = {}) { log(Level::Error, e, m, f); }

// A hook the progress display uses to clear its line before a log line is
// written and redraw it after; empty when there is no progress line.
void set_line_guard(void (*before)(), void (*after)());

}  // namespace assetmv::logging
