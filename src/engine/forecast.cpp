#include "engine/forecast.hpp"

#include <algorithm>
#include <string_view>

namespace assetmv::engine {

namespace {

enum class Class { A, B, Free };

Class class_of(std::string_view op) {
  if (op == "HeadObject" || op == "GetObject") return Class::B;
  if (op == "DeleteObjects" || op == "DeleteObject") return Class::Free;
  return Class::A;
}

bool writes_dest(std::string_view op) {
  return op == "CopyObject" || op == "UploadPartCopy" || op == "UploadPart" || op == "CreateMultipartUpload" ||
         op == "CompleteMultipartUpload" || op == "PutObject";
}

}  // namespace

nlohmann::json price_forecast(const Forecast& f, const Prices& prices, const Rates& rates) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::uint64_t free = 0;
  std::uint64_t dest_writes = 0;
  std::uint64_t total = 0;
  nlohmann::json by_op = nlohmann::json::object();
  for (const auto& [op, n] : f.requests) {
    by_op[op] = n;
    total += n;
    switch (class_of(op)) {
      case Class::A:
        a += n;
        break;
      case Class::B:
        b += n;
        break;
      case Class::Free:
        free += n;
        break;
    }
    if (writes_dest(op)) dest_writes += n;
  }
  const std::uint64_t deleted_keys = f.deleted_keys;
  const double usd =
      static_cast<double>(a) * prices.class_a_per_1000 / 1000 + static_cast<double>(b) * prices.class_b_per_1000 / 1000;
  const double w = rates.prefix_writes_per_s;
  const double by_dest = w > 0 ? static_cast<double>(dest_writes) / w : 0;
  const double by_legacy = w > 0 ? static_cast<double>(deleted_keys) / w : 0;
  const double by_cap = rates.max_rate > 0 ? static_cast<double>(total) / rates.max_rate : 0;
  const double seconds = std::max({by_dest, by_legacy, by_cap});
  const char* bound = seconds == by_cap && by_cap > 0               ? "max_rate"
                      : seconds == by_legacy && by_legacy > by_dest ? "legacy_prefix_deletes"
                                                                    : "destination_prefix_writes";
  return {{"requests", by_op},
          {"class_a_requests", a},
          {"class_b_requests", b},
          {"free_requests", free},
          {"cost_usd", usd},
          {"prices_usd_per_1000", {{"class_a", prices.class_a_per_1000}, {"class_b", prices.class_b_per_1000}}},
          {"estimated_seconds", seconds},
          {"bound_by", bound},
          {"prefix_writes_per_second", w}};
}

}  // namespace assetmv::engine
