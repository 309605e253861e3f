// curl's memory, through per-thread size-class caches (curl_global_init_mem).
//
// A curl transfer allocates and frees a few dozen small blocks (its request
// buffer, header lines, URL parts, connection bookkeeping), and our
// hundreds of transfers in flight churn through the same sizes again and
// again. Blocks up to kMaxCachedBytes are kept, once freed, in a free list
// per 16-byte class on the freeing thread (the loop's, or the resolver's),
// and handed out again without glibc's bookkeeping: 2.3% fewer instructions
// per object under callgrind, for 0.2 MB more peak RSS at 100,000 objects
// (16-byte classes; 32-byte ones cost 0.6 MB) (docs/performance.md). A list keeps at most
// kKeepPerClass blocks, and a block comes from malloc only when its list is
// empty, so what the caches hold is bounded by what curl once had live at
// the same time. Larger blocks go to malloc as they are.
#pragma once

#include <cstddef>

namespace assetmv::http {

inline constexpr std::size_t kMaxCachedBytes = 2048;  // curl's request buffer and header blocks fit; bodies do not
inline constexpr std::size_t kKeepPerClass = 1024;    // per thread: four full windows' worth of one class

// Sets curl's global allocator to the caches; calls curl_global_init.
// Returns false when curl refused it.
bool init_curl_with_caches();

}  // namespace assetmv::http
