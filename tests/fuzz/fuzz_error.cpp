// libFuzzer target: the error bodies parser never crashes, hangs or
// leaks on any input, and keeps the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "s3/parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto e = assetmv::s3::parse_error_body(body);
  (void)e;
  (void)assetmv::s3::unquote_etag(body);
  (void)assetmv::s3::etag_is_md5(body);
  return 0;
}
