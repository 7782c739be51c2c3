// Allocation of large, long-lived buffers: weights, packed weights, tensors.
//
// Buffers of kDirectMapBytes or more are mapped straight from the OS (mmap) and unmapped
// when freed, so a model's memory goes back to the OS as soon as it is released. Through
// malloc it often does not: glibc raises its mmap threshold to the size of the last large
// block freed, after which blocks of that size come from the heap and freeing one leaves a
// hole the OS still counts. Loading a model frees its file-layout weights while it packs
// them, so with malloc alone the peak RSS held both copies. Smaller buffers use
// aligned_alloc.
#pragma once

#include <cstddef>
#include <memory>

namespace brink {

inline constexpr size_t kDirectMapBytes = size_t{256} << 10;

// 64-byte aligned, uninitialised (mapped buffers read as zero). Throws std::bad_alloc.
void* allocate_aligned(size_t bytes);
// Frees what allocate_aligned(bytes) returned; `bytes` must be the size asked for.
void free_aligned(void* p, size_t bytes);
// allocate_aligned wrapped with its matching free.
std::shared_ptr<void> shared_aligned(size_t bytes);

}  // namespace brink
