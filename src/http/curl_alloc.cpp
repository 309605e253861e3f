#include "http/curl_alloc.hpp"

#include <curl/curl.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace assetmv::http {

// This file is an allocator: curl's malloc, free and realloc, over the C
// heap, handing out raw blocks by contract (curl_global_init_mem). The
// owning-memory checks do not apply to it.
// NOLINTBEGIN(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
namespace {

constexpr std::size_t kClassBytes = 16;  // 32 cost 0.6 MB of peak RSS in rounding, for no fewer instructions
constexpr std::size_t kClasses = kMaxCachedBytes / kClassBytes + 1;  // class 0 unused; n bytes -> ceil(n / 32)
constexpr std::size_t kLarge = kClasses;                             // the header's class for an uncached block

// Before each block: its class and its size, or, while the block waits in
// a free list, the next one there (the list costs no memory of its own); 16
// bytes, so that the block keeps malloc's 16-byte alignment.
struct alignas(16) Header {
  std::size_t cls;
  union {
    std::size_t size;
    Header* next;
  };
};
static_assert(sizeof(Header) == 16);

Header* header_of(void* p) { return static_cast<Header*>(p) - 1; }

struct Caches {
  std::array<Header*, kClasses> head{};
  std::array<std::size_t, kClasses> count{};
  ~Caches();
};
thread_local Caches t_caches;
// Set when this thread's caches are gone (its exit): frees go to free().
thread_local bool t_closed = false;

Caches::~Caches() {
  t_closed = true;
  for (Header* h : head) {
    while (h != nullptr) {
      Header* next = h->next;
      std::free(h);
      h = next;
    }
  }
}

void* take(std::size_t n) {
  if (n == 0) n = 1;
  const std::size_t cls = (n + kClassBytes - 1) / kClassBytes;
  if (cls >= kClasses || t_closed) {
    auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + n));
    if (h == nullptr) return nullptr;
    h->cls = kLarge;
    h->size = n;
    return h + 1;
  }
  Header* h = t_caches.head[cls];
  if (h != nullptr) {
    t_caches.head[cls] = h->next;
    --t_caches.count[cls];
  } else {
    h = static_cast<Header*>(std::malloc(sizeof(Header) + cls * kClassBytes));
    if (h == nullptr) return nullptr;
    h->cls = cls;
  }
  h->size = cls * kClassBytes;
  return h + 1;
}

void give(void* p) {
  if (p == nullptr) return;
  Header* h = header_of(p);
  if (h->cls < kClasses && !t_closed && t_caches.count[h->cls] < kKeepPerClass) {
    h->next = t_caches.head[h->cls];
    t_caches.head[h->cls] = h;
    ++t_caches.count[h->cls];
    return;
  }
  std::free(h);
}

void* resize(void* p, std::size_t n) {
  if (p == nullptr) return take(n);
  Header* h = header_of(p);
  if (h->cls < kClasses && n <= h->size) return p;  // still fits its class
  if (h->cls == kLarge && (n + kClassBytes - 1) / kClassBytes >= kClasses) {
    auto* grown = static_cast<Header*>(std::realloc(h, sizeof(Header) + n));
    if (grown == nullptr) return nullptr;
    grown->size = n;
    return grown + 1;
  }
  void* q = take(n);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, std::min(h->size, n));
  give(p);
  return q;
}

char* duplicate(const char* s) {
  const std::size_t n = std::strlen(s) + 1;
  auto* q = static_cast<char*>(take(n));
  if (q != nullptr) std::memcpy(q, s, n);
  return q;
}

void* take_zeroed(std::size_t count, std::size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return nullptr;
  void* q = take(count * size);
  if (q != nullptr) std::memset(q, 0, count * size);
  return q;
}

}  // namespace
// NOLINTEND(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)

bool init_curl_with_caches() {
  return curl_global_init_mem(CURL_GLOBAL_DEFAULT, take, give, resize, duplicate, take_zeroed) == CURLE_OK;
}

}  // namespace assetmv::http
