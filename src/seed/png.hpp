// Small valid PNG images whose bytes differ for every n, so that a key mapped
// to the wrong object is detectable by content (the exercise's own seeder
// uploads one identical image for every key, which hides such bugs).
#pragma once

#include <cstdint>
#include <string>

namespace assetmv::seed {

inline constexpr int kAvatarSide = 20;  // the exercise's avatars are 20x20

// A 20x20 RGB PNG: pixels derived from n, plus a tEXt chunk naming n.
std::string avatar_png(std::uint64_t n);

}  // namespace assetmv::seed
