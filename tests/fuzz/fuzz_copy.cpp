// libFuzzer target: the CopyObject/UploadPartCopy/multipart results parser never crashes, hangs or
// leaks on any input, and keeps the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "s3/parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = assetmv::s3::parse_copy_result(body);
  if (r && r->empty()) __builtin_trap();  // a success always carries an ETag
  // The scan that reads the usual result agrees with the DOM wherever it answers.
  auto d = assetmv::s3::parse_copy_result_dom(body);
  if (r.has_value() != d.has_value() || (r && *r != *d)) __builtin_trap();
  auto m = assetmv::s3::parse_complete_multipart(body);
  if (m && m->empty()) __builtin_trap();
  (void)assetmv::s3::parse_initiate_multipart(body);
  return 0;
}
