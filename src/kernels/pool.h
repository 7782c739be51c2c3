// Fast float32 pooling: MaxPool and AveragePool over NHWC images, vectorized over channels,
// and global pools over NHWC (a reduction over pixels per channel) and NCHW (one reduction
// per contiguous plane).
//
// Semantics are those of the reference kernels in src/ops/pool.cc, which the unit tests
// compare against (tests/unit/pool_fast_test.cc):
//   - MaxPool takes the first maximum among the window's taps inside the image (a NaN tap
//     after the first is skipped; a NaN first tap stays), and a window with no tap inside
//     the image gives the lowest float.
//   - AveragePool sums the taps inside the image in the reference's order and divides by
//     their count or, with count_include_pad, by the taps inside the image or its explicit
//     padding (never the extra positions ceil_mode adds); an empty window gives 0.
//   - GlobalMaxPool ignores NaNs (as std::max from -inf does); GlobalAveragePool sums in
//     float in blocks of pixels (the reference sums in double: agreement to ~1e-6 relative).
// Shapes come resolved: output sizes and pads after auto_pad and ceil_mode (ops/pool.h).
//
// Every function splits its work over `pool` (nullptr: the calling thread) and allocates
// nothing. `isa` picks the variant; one this machine lacks runs the portable variant.
#pragma once

#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {

struct Pool2dShape {  // NHWC
  int64_t batch, in_h, in_w, channels, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
      dilation_h, dilation_w, pad_top, pad_left, pad_bottom, pad_right;
};

enum class PoolOp { kMax, kAverage };

// x: [N, in_h, in_w, C], y: [N, out_h, out_w, C]. count_include_pad matters for kAverage only.
void pool2d_nhwc_f32(PoolOp op, const Pool2dShape& s, bool count_include_pad, const float* x,
                     float* y, Isa isa, ThreadPool* pool);

// x: [N, pixels, C], y: [N, C].
void global_pool_nhwc_f32(PoolOp op, int64_t batch, int64_t pixels, int64_t channels,
                          const float* x, float* y, Isa isa, ThreadPool* pool);

// x: [planes, pixels], y: [planes] (NCHW with planes = N*C).
void global_pool_nchw_f32(PoolOp op, int64_t planes, int64_t pixels, const float* x, float* y,
                          Isa isa, ThreadPool* pool);

}  // namespace brink::kernels
