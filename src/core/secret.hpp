// A credential that must never reach a log line, an error message, a report or
// --help output. It cannot be streamed or formatted; the only way to the bytes
// is reveal(), which is called where a signature or a connection needs them.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>

namespace assetmv {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret&) = default;
  Secret(Secret&&) noexcept = default;
  Secret& operator=(Secret&&) noexcept = default;
  // Overwrites the bytes so that a core dump taken later does not carry them.
  ~Secret() { wipe(); }

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  bool operator==(const Secret& other) const = default;

 private:
  void wipe() noexcept {
    volatile char* p = value_.data();
    for (std::size_t i = 0; i < value_.size(); ++i) p[i] = '\0';
  }
  std::string value_;
};

}  // namespace assetmv

// Formatting a Secret prints a fixed mask, so an accidental {} in a log call is harmless.
template <>
struct fmt::formatter<assetmv::Secret> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const assetmv::Secret& s, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(s.empty() ? "(none)" : "***", ctx);
  }
};
