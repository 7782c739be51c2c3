// The pooling kernels of pool.h, written once against elementwise_simd.h and compiled per
// ISA (pool.cc for portable, plus pool_avx512.cc, pool_avx2.cc, pool_neon.cc), each copy in
// its target's namespace.
//
// NHWC pools vectorize over channels: per output pixel, the valid window (taps inside the
// image) is computed once, and then for each group of channels (4 vectors, then 1, then the
// partial last one) the taps are reduced in registers in the reference's order (kernel row,
// then column), so sums and maxima match the reference bit for bit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/elementwise.h"
#include "kernels/elementwise_simd.h"  // needs one BRINK_SIMD_* target defined
#include "kernels/pool.h"

namespace brink::kernels {
namespace pool_internal {

inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

// The taps [lo, hi) of one window along one dim that land inside the input, the first
// input coordinate of the window, and the taps inside the input or its explicit padding
// (count_include_pad's divisor), as src/ops/pool.cc computes them.
struct Window {
  int64_t start, lo, hi, padded;
};
inline Window window(int64_t o, int64_t stride, int64_t pad_begin, int64_t pad_end, int64_t kernel,
                     int64_t dilation, int64_t in) {
  Window w;
  w.start = o * stride - pad_begin;
  w.lo = std::max<int64_t>(0, ceil_div(-w.start, dilation));
  w.hi = std::min(kernel, floor_div(in - 1 - w.start, dilation) + 1);
  w.padded =
      std::max<int64_t>(0, std::min(kernel, floor_div(in + pad_end - 1 - w.start, dilation) + 1));
  return w;
}

}  // namespace pool_internal

BRINK_DECLARE_PER_ISA(void pool2d_nhwc_rows(PoolOp op, const Pool2dShape& s, bool count_include_pad,
                                            const float* x, float* y, int64_t row_begin,
                                            int64_t row_end))
BRINK_DECLARE_PER_ISA(void global_pool_nhwc_chunk(PoolOp op, int64_t pixels, int64_t channels,
                                                  const float* x, float* y, int64_t c_begin,
                                                  int64_t c_end))
BRINK_DECLARE_PER_ISA(void global_pool_nchw_planes(PoolOp op, int64_t pixels, const float* x,
                                                   float* y, int64_t plane_begin,
                                                   int64_t plane_end))

namespace BRINK_SIMD_NS {
namespace pool {

constexpr int64_t W = static_cast<int64_t>(kLanes);

// The valid taps of one output pixel: the address of the first at channel 0, the steps to
// the next kernel row and column, and how many rows and columns there are.
struct Taps {
  const float* base;
  int64_t row_step, col_step, rows, cols;
};

// Vector j of a group of J: partial when it is the last one of a tail group.
template <bool kTail, int J>
BRINK_SIMD_INLINE Vf ld(const float* p, int j, size_t tail) {
  if constexpr (kTail)
    if (j == J - 1) return load_partial(p, tail);
  return load(p);
}
template <bool kTail, int J>
BRINK_SIMD_INLINE void st(float* p, int j, Vf v, size_t tail) {
  if constexpr (kTail)
    if (j == J - 1) return store_partial(p, v, tail);
  store(p, v);
}

// J vectors of channels starting at c0 (the last one partial when kTail).
template <PoolOp Op, int J, bool kTail>
BRINK_SIMD_INLINE void pixel_channels(const Taps& t, int64_t c0, size_t tail, float divisor,
                                      float* y) {
  Vf acc[J];
  if (t.rows <= 0 || t.cols <= 0) {
    const Vf fill = set1(Op == PoolOp::kMax ? std::numeric_limits<float>::lowest() : 0.0f);
    for (int j = 0; j < J; ++j) st<kTail, J>(y + c0 + j * W, j, fill, tail);
    return;
  }
  const float* p0 = t.base + c0;
  for (int j = 0; j < J; ++j)
    acc[j] = Op == PoolOp::kMax ? ld<kTail, J>(p0 + j * W, j, tail) : set1(0.0f);
  for (int64_t kh = 0; kh < t.rows; ++kh) {
    const float* pr = p0 + kh * t.row_step;
    for (int64_t kw = 0; kw < t.cols; ++kw) {
      const float* p = pr + kw * t.col_step;
      for (int j = 0; j < J; ++j) {
        const Vf v = ld<kTail, J>(p + j * W, j, tail);
        // max(v, acc): a NaN tap leaves acc as it is, as the reference's `v > best` does.
        acc[j] = Op == PoolOp::kMax ? max(v, acc[j]) : acc[j] + v;
      }
    }
  }
  const Vf d = set1(divisor);
  for (int j = 0; j < J; ++j)
    st<kTail, J>(y + c0 + j * W, j, Op == PoolOp::kMax ? acc[j] : acc[j] / d, tail);
}

template <PoolOp Op>
void rows_impl(const Pool2dShape& s, bool count_include_pad, const float* x, float* y,
               int64_t row_begin, int64_t row_end) {
  using pool_internal::window;
  const int64_t c = s.channels;
  const int64_t full = c / W * W;
  const size_t tail = static_cast<size_t>(c - full);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.out_h, oh = row % s.out_h;
    const auto wh =
        window(oh, s.stride_h, s.pad_top, s.pad_bottom, s.kernel_h, s.dilation_h, s.in_h);
    const float* x_img = x + n * s.in_h * s.in_w * c;
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      const auto ww =
          window(ow, s.stride_w, s.pad_left, s.pad_right, s.kernel_w, s.dilation_w, s.in_w);
      Taps t;
      t.rows = wh.hi - wh.lo;
      t.cols = ww.hi - ww.lo;
      t.row_step = s.dilation_h * s.in_w * c;
      t.col_step = s.dilation_w * c;
      t.base = x_img +
               ((wh.start + wh.lo * s.dilation_h) * s.in_w + (ww.start + ww.lo * s.dilation_w)) * c;
      const int64_t count = count_include_pad
                                ? wh.padded * ww.padded
                                : std::max<int64_t>(0, t.rows) * std::max<int64_t>(0, t.cols);
      const float divisor = count > 0 ? static_cast<float>(count) : 1.0f;
      float* yp = y + (row * s.out_w + ow) * c;
      int64_t c0 = 0;
      for (; c0 + 4 * W <= full; c0 += 4 * W) pixel_channels<Op, 4, false>(t, c0, 0, divisor, yp);
      for (; c0 < full; c0 += W) pixel_channels<Op, 1, false>(t, c0, 0, divisor, yp);
      if (tail != 0) pixel_channels<Op, 1, true>(t, c0, tail, divisor, yp);
    }
  }
}

// Channels [c0, c0 + J*W) of one image (the last vector partial when kTail).
template <PoolOp Op, int J, bool kTail>
BRINK_SIMD_INLINE void global_channels(int64_t pixels, int64_t c, const float* x, float* y,
                                       int64_t c0, size_t tail) {
  // Sums go in blocks of kBlock pixels added to a running total: the rounding error grows
  // with kBlock + pixels / kBlock rather than with pixels.
  constexpr int64_t kBlock = 64;
  Vf acc[J];
  for (int j = 0; j < J; ++j)
    acc[j] = set1(Op == PoolOp::kMax ? -std::numeric_limits<float>::infinity() : 0.0f);
  const float* p0 = x + c0;
  for (int64_t b = 0; b < pixels; b += kBlock) {
    const int64_t e = std::min(pixels, b + kBlock);
    Vf part[J];
    for (int j = 0; j < J; ++j) part[j] = Op == PoolOp::kMax ? acc[j] : set1(0.0f);
    for (int64_t p = b; p < e; ++p)
      for (int j = 0; j < J; ++j) {
        const Vf v = ld<kTail, J>(p0 + p * c + j * W, j, tail);
        part[j] = Op == PoolOp::kMax ? max(v, part[j]) : part[j] + v;
      }
    for (int j = 0; j < J; ++j) acc[j] = Op == PoolOp::kMax ? part[j] : acc[j] + part[j];
  }
  const Vf d = set1(static_cast<float>(pixels));
  for (int j = 0; j < J; ++j)
    st<kTail, J>(y + c0 + j * W, j, Op == PoolOp::kMax ? acc[j] : acc[j] / d, tail);
}

template <PoolOp Op>
void global_nhwc_impl(int64_t pixels, int64_t c, const float* x, float* y, int64_t c_begin,
                      int64_t c_end) {
  const int64_t full = c_begin + (c_end - c_begin) / W * W;
  const size_t tail = static_cast<size_t>(c_end - full);
  int64_t c0 = c_begin;
  for (; c0 + 4 * W <= full; c0 += 4 * W) global_channels<Op, 4, false>(pixels, c, x, y, c0, 0);
  for (; c0 < full; c0 += W) global_channels<Op, 1, false>(pixels, c, x, y, c0, 0);
  if (tail != 0) global_channels<Op, 1, true>(pixels, c, x, y, c0, tail);
}

// Largest of x[0, n), NaNs skipped (max(v, m) keeps m when v is NaN); -inf when n == 0.
BRINK_SIMD_INLINE float row_max_skip_nan(const float* x, size_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  Vf m0 = set1(ninf), m1 = m0;
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    m0 = max(load(x + i), m0);
    m1 = max(load(x + i + kLanes), m1);
  }
  for (; i + kLanes <= n; i += kLanes) m0 = max(load(x + i), m0);
  if (i < n) m1 = max(load_partial_fill(x + i, n - i, ninf), m1);
  return reduce_max(max(m0, m1));
}

// Sum of x[0, n) with four vector accumulators.
BRINK_SIMD_INLINE float row_sum4(const float* x, size_t n) {
  Vf s0 = set1(0.0f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    s0 = s0 + load(x + i);
    s1 = s1 + load(x + i + kLanes);
    s2 = s2 + load(x + i + 2 * kLanes);
    s3 = s3 + load(x + i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) s0 = s0 + load(x + i);
  if (i < n) s1 = s1 + load_partial(x + i, n - i);
  return reduce_add((s0 + s1) + (s2 + s3));
}

}  // namespace pool

inline void pool2d_nhwc_rows_impl(PoolOp op, const Pool2dShape& s, bool count_include_pad,
                                  const float* x, float* y, int64_t row_begin, int64_t row_end) {
  if (op == PoolOp::kMax)
    pool::rows_impl<PoolOp::kMax>(s, false, x, y, row_begin, row_end);
  else
    pool::rows_impl<PoolOp::kAverage>(s, count_include_pad, x, y, row_begin, row_end);
}

inline void global_pool_nhwc_chunk_impl(PoolOp op, int64_t pixels, int64_t channels, const float* x,
                                        float* y, int64_t c_begin, int64_t c_end) {
  if (op == PoolOp::kMax)
    pool::global_nhwc_impl<PoolOp::kMax>(pixels, channels, x, y, c_begin, c_end);
  else
    pool::global_nhwc_impl<PoolOp::kAverage>(pixels, channels, x, y, c_begin, c_end);
}

inline void global_pool_nchw_planes_impl(PoolOp op, int64_t pixels, const float* x, float* y,
                                         int64_t plane_begin, int64_t plane_end) {
  const size_t n = static_cast<size_t>(pixels);
  for (int64_t pl = plane_begin; pl < plane_end; ++pl) {
    const float* xp = x + pl * pixels;
    y[pl] = op == PoolOp::kMax ? pool::row_max_skip_nan(xp, n)
                               : pool::row_sum4(xp, n) / static_cast<float>(pixels);
  }
}

}  // namespace BRINK_SIMD_NS
}  // namespace brink::kernels
