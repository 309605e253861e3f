// libFuzzer target: the error bodies parser and the small bucket/object
// documents (tagging, ownership controls) never crash, hang or leak on any
// input, and keep the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "s3/parsers.hpp"
#include "s3/requests.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto e = assetmv::s3::parse_error_body(body);
  (void)e;
  (void)assetmv::s3::unquote_etag(body);
  (void)assetmv::s3::etag_is_md5(body);
  if (auto tags = assetmv::s3::parse_tagging(body)) {
    for (const auto& t : *tags)
      if (t.key.empty()) __builtin_trap();  // a Tag always has its Key
  }
  if (auto own = assetmv::s3::parse_ownership_controls(body); own && own->size() > body.size()) __builtin_trap();
  (void)assetmv::s3::restore_completed(body);
  (void)assetmv::s3::parse_versioning(body);
  return 0;
}
