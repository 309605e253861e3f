#include "core/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <stdexcept>

namespace assetmv {

namespace {

// OpenSSL 3 looks an algorithm up in its provider tables on every implicit
// use (EVP_sha256(), HMAC()): measured at ~20,000 instructions per HMAC, a
// quarter of the client's work per object. The algorithms are fetched once,
// and each thread keeps one digest context that every hash reuses.
const EVP_MD* fetched(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) throw std::runtime_error(std::string("EVP_MD_fetch failed: ") + name);
  return md;  // kept for the process's life
}
const EVP_MD* sha256_md() {
  static const EVP_MD* md = fetched("SHA256");
  return md;
}
const EVP_MD* md5_md() {
  static const EVP_MD* md = fetched("MD5");
  return md;
}

struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

EVP_MD_CTX* thread_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::runtime_error("EVP_MD_CTX_new failed");
  return ctx.get();
}

// One digest over the concatenation of the parts.
template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  std::array<std::uint8_t, N> out{};
  EVP_MD_CTX* ctx = thread_ctx();
  unsigned int len = 0;
  bool ok = EVP_DigestInit_ex2(ctx, md, nullptr) == 1;
  for (auto p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  if (!ok || EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != N) throw std::runtime_error("digest failed");
  return out;
}

constexpr std::size_t kSha256Block = 64;  // SHA-256's block size, which HMAC pads the key to

}  // namespace

Sha256 sha256(std::string_view data) { return digest<32>(sha256_md(), {data}); }

// HMAC as RFC 2104 defines it: H((K ^ opad) || H((K ^ ipad) || data)), K
// padded to the block size (hashed first when longer).
Sha256 hmac_sha256(std::string_view key, std::string_view data) {
  std::array<std::uint8_t, kSha256Block> k{};
  if (key.size() > kSha256Block) {
    const Sha256 h = sha256(key);
    std::copy(h.begin(), h.end(), k.begin());
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<std::uint8_t, kSha256Block> pad{};
  for (std::size_t i = 0; i < kSha256Block; ++i) pad[i] = k[i] ^ 0x36;
  const Sha256 inner = digest<32>(sha256_md(), {as_view(pad), data});
  for (std::size_t i = 0; i < kSha256Block; ++i) pad[i] = k[i] ^ 0x5c;
  Sha256 out = digest<32>(sha256_md(), {as_view(pad), as_view(inner)});
  OPENSSL_cleanse(k.data(), k.size());  // the key (a secret, or derived from one) does not linger
  OPENSSL_cleanse(pad.data(), pad.size());
  return out;
}

Md5 md5(std::string_view data) { return digest<16>(md5_md(), {data}); }

void append_hex(std::string& out, const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const std::size_t at = out.size();
  out.resize(at + size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out[at + 2 * i] = kDigits[data[i] >> 4];
    out[at + 2 * i + 1] = kDigits[data[i] & 0x0f];
  }
}

std::string hex(const std::uint8_t* data, std::size_t size) {
  std::string out;
  append_hex(out, data, size);
  return out;
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace assetmv
