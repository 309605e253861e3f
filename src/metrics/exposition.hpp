// The Prometheus text exposition format (version 0.0.4), written family by
// family: a `# HELP` and `# TYPE` line, then one sample per label set. Pure:
// values in, text out; the caller decides names, units and labels (never a
// key or an id: one label value per object would be unbounded).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "core/histogram.hpp"

namespace assetmv::metrics {

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::initializer_list<Label>;

class Exposition {
 public:
  // Starts a family; the samples that follow belong to it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, double value);
  // A histogram's _bucket (cumulative, le in seconds, +Inf last), _sum and
  // _count samples, with `labels` on each.
  void histogram(std::string_view name, Labels labels, const Histogram& h);

  const std::string& text() const { return out_; }

 private:
  void labels(Labels labels, std::string_view extra_name = {}, std::string_view extra_value = {});
  std::string out_;
};

// A label value with \, " and newline escaped, as the format asks.
std::string escape_label_value(std::string_view v);
// A sample value: integers without a fraction, +Inf/-Inf/NaN spelled as
// Prometheus reads them.
std::string format_value(double v);

}  // namespace assetmv::metrics
