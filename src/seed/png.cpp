#include "seed/png.hpp"

#include <zlib.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace assetmv::seed {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, static_cast<std::uint32_t>(
                   crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

// splitmix64: a cheap, well-mixed hash so neighbouring n look nothing alike.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string avatar_png(std::uint64_t n) {
  constexpr int side = kAvatarSide;
  std::string raw;
  raw.reserve(std::size_t{side} * (1 + std::size_t{side} * 3));
  const std::uint64_t seed = mix(n);
  for (int y = 0; y < side; ++y) {
    raw.push_back('\0');  // filter type: none
    for (int x = 0; x < side; ++x) {
      const std::uint64_t h = mix(seed ^ static_cast<std::uint64_t>(y * side + x));
      raw.push_back(static_cast<char>(h & 0xff));
      raw.push_back(static_cast<char>((h >> 8) & 0xff));
      raw.push_back(static_cast<char>((h >> 16) & 0xff));
    }
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<Bytef> z(zlen);
  if (compress2(z.data(), &zlen, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw std::runtime_error("zlib compress2 failed");

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, side);
  put_u32(ihdr, side);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit depth, RGB, deflate, no filter, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "tEXt", std::string("Comment\0", 8) + "assetmv seed " + std::to_string(n));
  chunk(png, "IDAT", std::string(reinterpret_cast<const char*>(z.data()), zlen));
  chunk(png, "IEND", "");
  return png;
}

}  // namespace assetmv::seed
