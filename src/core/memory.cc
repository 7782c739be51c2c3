#include "core/memory.h"

#include <cstdio>
#include <cstdlib>
#include <new>

#if defined(__linux__) || defined(__APPLE__)
#include <sys/mman.h>
#define BRINK_HAVE_MMAP 1
#endif

namespace brink {
namespace {

size_t rounded(size_t bytes) {
  return (bytes == 0 ? 64 : (bytes + 63) / 64 * 64);  // aligned_alloc's size rule; never 0
}

// Out of memory. Built without exceptions (the device runtime, -fno-exceptions), there is
// nothing to unwind to: say so in one line and stop.
[[noreturn]] void out_of_memory(size_t bytes) {
#if defined(__cpp_exceptions)
  (void)bytes;
  throw std::bad_alloc();
#else
  std::fprintf(stderr, "error: out of memory allocating %zu bytes\n", bytes);
  std::abort();
#endif
}

}  // namespace

void* allocate_aligned(size_t bytes) {
#ifdef BRINK_HAVE_MMAP
  if (bytes >= kDirectMapBytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) out_of_memory(bytes);
    return p;  // page aligned
  }
#endif
  void* p = std::aligned_alloc(64, rounded(bytes));
  if (p == nullptr) out_of_memory(bytes);
  return p;
}

void free_aligned(void* p, size_t bytes) {
  if (p == nullptr) return;
#ifdef BRINK_HAVE_MMAP
  if (bytes >= kDirectMapBytes) {
    ::munmap(p, bytes);
    return;
  }
#endif
  std::free(p);
}

std::shared_ptr<void> shared_aligned(size_t bytes) {
  return std::shared_ptr<void>(allocate_aligned(bytes),
                               [bytes](void* p) { free_aligned(p, bytes); });
}

}  // namespace brink
