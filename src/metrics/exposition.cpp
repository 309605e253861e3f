#include "metrics/exposition.hpp"

#include <fmt/format.h>

#include <cmath>

namespace assetmv::metrics {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Counters up to 2^53 print exactly, without an exponent.
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::labels(Labels labels, std::string_view extra_name, std::string_view extra_value) {
  if (labels.size() == 0 && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view n, std::string_view v) {
    if (!first) out_ += ',';
    first = false;
    out_ += fmt::format("{}=\"{}\"", n, escape_label_value(v));
  };
  for (const auto& [n, v] : labels) one(n, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_ += '}';
}

void Exposition::sample(std::string_view name, Labels l, double value) {
  out_ += name;
  labels(l);
  out_ += fmt::format(" {}\n", format_value(value));
}

void Exposition::histogram(std::string_view name, Labels l, const Histogram& h) {
  const std::string bucket = fmt::format("{}_bucket", name);
  for (std::size_t i = 0; i <= Histogram::kBounds.size(); ++i) {
    const std::string le = i < Histogram::kBounds.size() ? format_value(Histogram::kBounds[i]) : "+Inf";
    out_ += bucket;
    labels(l, "le", le);
    out_ += fmt::format(" {}\n", h.cumulative(i));
  }
  out_ += fmt::format("{}_sum", name);
  labels(l);
  out_ += fmt::format(" {}\n", format_value(h.sum()));
  out_ += fmt::format("{}_count", name);
  labels(l);
  out_ += fmt::format(" {}\n", h.count());
}

}  // namespace assetmv::metrics
