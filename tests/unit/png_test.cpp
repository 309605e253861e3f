// Seeded avatars: valid PNGs whose bytes differ per n.
#include "seed/png.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <set>

#include "seed/seeder.hpp"

using namespace assetmv::seed;

namespace {
std::uint32_t be32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}
}  // namespace

TEST(Png, WellFormedChunksWithValidCrcsAndInflatableData) {
  const auto png = avatar_png(32425);
  ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::size_t at = 8;
  std::vector<std::string> types;
  std::string idat;
  while (at < png.size()) {
    const auto len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const std::string data = png.substr(at + 8, len);
    const auto crc = be32(png, at + 8 + len);
    const std::string covered = png.substr(at + 4, 4 + len);
    EXPECT_EQ(crc, crc32(0, reinterpret_cast<const Bytef*>(covered.data()), static_cast<uInt>(covered.size()))) << type;
    types.push_back(type);
    if (type == "IDAT") idat += data;
    if (type == "IHDR") {
      EXPECT_EQ(be32(data, 0), 20U);
      EXPECT_EQ(be32(data, 4), 20U);
    }
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "tEXt", "IDAT", "IEND"}));
  std::string raw(20 * (1 + 20 * 3), '\0');
  uLongf rawlen = raw.size();
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(raw.data()), &rawlen, reinterpret_cast<const Bytef*>(idat.data()),
                       idat.size()),
            Z_OK);
  EXPECT_EQ(rawlen, raw.size());
}

TEST(Png, EveryAvatarDiffers) {
  std::set<std::string> seen;
  for (std::uint64_t n = 0; n < 2000; ++n) ASSERT_TRUE(seen.insert(avatar_png(n)).second) << n;
  EXPECT_EQ(avatar_png(7), avatar_png(7));  // deterministic
}

TEST(Seeding, ModernShareIsSpreadAndExact) {
  int modern = 0;
  for (std::uint64_t n = 0; n < 10000; ++n) modern += is_modern(n, 0.3) ? 1 : 0;
  EXPECT_NEAR(modern, 3000, 30);
  EXPECT_FALSE(is_modern(5, 0.0));
  EXPECT_TRUE(is_modern(5, 1.0));
  EXPECT_EQ(avatar_name(32425), "avatar-32425.png");
}
