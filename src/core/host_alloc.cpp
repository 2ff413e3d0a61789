#include "core/host_alloc.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/sanitizer.h"

namespace mae {

namespace {

constexpr size_t kHuge = size_t(2) << 20;  // the x86-64 / arm64 huge page

// Under AddressSanitizer every block comes from calloc, so that its red zones catch overruns of model buffers.
constexpr bool kMapBigBlocks = !kAddressSanitizer;

// Every block starts with this header just before the pointer handed out: what free needs to give it back.
struct Header {
  void* base;      // calloc's pointer, or the mapping's start
  size_t mapped;   // the mapping's length; 0: from calloc
};

}  // namespace

void* host_alloc_zeroed(size_t bytes) {
  if (bytes > kHostAllocMaxBytes) throw std::bad_alloc();
  if (kMapBigBlocks && bytes >= kHuge) {
    // Room for the header before a 2 MiB boundary, and the tail rounded to whole huge pages.
    const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
    void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base != MAP_FAILED) {
      const uintptr_t p = (reinterpret_cast<uintptr_t>(base) + sizeof(Header) + kHuge - 1) & ~uintptr_t(kHuge - 1);
#ifdef MADV_HUGEPAGE
      madvise(reinterpret_cast<void*>(p), len - (p - reinterpret_cast<uintptr_t>(base)), MADV_HUGEPAGE);  // a hint
#endif
      reinterpret_cast<Header*>(p)[-1] = {base, len};
      return reinterpret_cast<void*>(p);
    }
    // mmap refused (a map count limit): calloc may still find the memory
  }
  void* base = std::calloc(bytes + 64 + sizeof(Header), 1);
  if (!base) throw std::bad_alloc();
  const uintptr_t p = (reinterpret_cast<uintptr_t>(base) + sizeof(Header) + 63) & ~uintptr_t(63);
  reinterpret_cast<Header*>(p)[-1] = {base, 0};
  return reinterpret_cast<void*>(p);
}

void host_free(void* p) {
  if (!p) return;
  const Header h = static_cast<Header*>(p)[-1];
  if (h.mapped)
    munmap(h.base, h.mapped);
  else
    std::free(h.base);
}

void host_zero(void* p, size_t bytes) {
  constexpr size_t kSplit = size_t(4) << 20, kChunk = size_t(1) << 20;  // below 4 MiB one thread is as quick
  if (bytes < kSplit) {
    if (bytes) std::memset(p, 0, bytes);
    return;
  }
  auto* c = static_cast<unsigned char*>(p);
  const long chunks = long((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (long i = 0; i < chunks; ++i) {
    const size_t off = size_t(i) * kChunk;
    std::memset(c + off, 0, std::min(kChunk, bytes - off));
  }
}

}  // namespace mae
