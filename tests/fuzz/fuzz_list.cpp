// libFuzzer target: the ListObjectsV2 result parser never crashes, hangs or
// leaks on any input, and keeps the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "s3/parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = assetmv::s3::parse_list_objects_v2(body);
  // The lister relies on this: a truncated page always says where to go on.
  if (r && r->truncated && r->next_continuation_token.empty()) __builtin_trap();
  return 0;
}
