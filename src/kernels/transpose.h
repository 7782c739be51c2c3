// Transposes of 32-bit (and 8-bit) elements: batched 2-D (the NCHW <-> NHWC layout changes) with
// tasks split so that no two threads write the same cache line.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace brink::kernels {

// dst[p][c][r] = src[p][r][c] for p < n, r < rows, c < cols. Any 32-bit data (bits are
// copied, not converted). src and dst must not overlap.
void transpose_planes_f32(const float* src, float* dst, int64_t n, int64_t rows, int64_t cols,
                          ThreadPool* pool);
// The same for bytes (u8/s8 tensors: quantized NCHW <-> NHWC).
void transpose_planes_u8(const uint8_t* src, uint8_t* dst, int64_t n, int64_t rows, int64_t cols,
                         ThreadPool* pool);

}  // namespace brink::kernels
