// Hashes and encodings used for signing and for S3's integrity headers.
// Thin, pure wrappers over OpenSSL 3's one-shot functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace assetmv {

using Sha256 = std::array<std::uint8_t, 32>;
using Md5 = std::array<std::uint8_t, 16>;

Sha256 sha256(std::string_view data);
Sha256 hmac_sha256(std::string_view key, std::string_view data);
Md5 md5(std::string_view data);

std::string hex(const std::uint8_t* data, std::size_t size);  // lower case
void append_hex(std::string& out, const std::uint8_t* data, std::size_t size);
template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& a) {
  return hex(a.data(), N);
}
template <std::size_t N>
std::string_view as_view(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};  // NOLINT: byte view of a digest
}

std::string base64(std::string_view data);

}  // namespace assetmv
