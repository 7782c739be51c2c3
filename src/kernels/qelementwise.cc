// Quantized elementwise kernels: threading, dispatch, and the portable variants (plain C++,
// the fallback and the statement of what the vector variants compute; see qelementwise.h).
#include "kernels/qelementwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/elementwise.h"  // BRINK_DECLARE_PER_ISA, BRINK_ISA_DISPATCH, usable_isa

namespace brink::kernels {

using qelementwise_internal::QAddParams;

BRINK_DECLARE_PER_ISA(void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n,
                                       const QAddParams& p))
BRINK_DECLARE_PER_ISA(void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero,
                                           uint8_t* y))
BRINK_DECLARE_PER_ISA(void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero,
                                           int8_t* y))
BRINK_DECLARE_PER_ISA(void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero,
                                             float* y))
BRINK_DECLARE_PER_ISA(void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero,
                                             float* y))
BRINK_DECLARE_PER_ISA(void minmax_run(const float* x, size_t n, float* lo, float* hi))

namespace portable {

namespace {
// nearbyint(t) + zero saturated to [lo, hi]; NaN t gives the zero point.
inline int32_t round_add_clamp(float t, int32_t zero, int32_t lo, int32_t hi) {
  if (std::isnan(t)) t = 0.0f;
  t = std::nearbyint(std::clamp(t, -65536.0f, 65536.0f));
  return std::clamp(static_cast<int32_t>(t) + zero, lo, hi);
}
}  // namespace

void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const QAddParams& p) {
  for (size_t i = 0; i < n; ++i) {
    float tb = static_cast<float>(int32_t{b[i]} - p.b_zero) * p.fb;
    float ta = static_cast<float>(int32_t{a[i]} - p.a_zero) * p.fa;
    __asm__("" : "+m"(ta), "+m"(tb));  // no FMA contraction: the formula rounds the products
    const float t = ta + tb;
    y[i] = static_cast<uint8_t>(round_add_clamp(t, p.y_zero, p.min, p.max));
  }
}
void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero, uint8_t* y) {
  for (size_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(round_add_clamp(x[i] / scale, zero, 0, 255));
}
void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero, int8_t* y) {
  for (size_t i = 0; i < n; ++i)
    y[i] = static_cast<int8_t>(round_add_clamp(x[i] / scale, zero, -128, 127));
}
void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(int32_t{x[i]} - zero) * scale;
}
void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(int32_t{x[i]} - zero) * scale;
}
void minmax_run(const float* x, size_t n, float* lo, float* hi) {
  float l = 0.0f, h = 0.0f;  // the range always includes 0; NaNs never compare true
  for (size_t i = 0; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

}  // namespace portable

namespace {

// Splits [0, n) into chunks of at least 16k elements, each a multiple of 64 (no cache line
// written by two threads): one chunk when the pool would not pay off, else a few per thread.
int64_t num_chunks(int64_t n, ThreadPool* pool) {
  if (pool == nullptr || pool->num_threads() <= 1 || n < kParallelMinElements) return 1;
  return std::min<int64_t>(std::max<int64_t>(1, n / 16384), 4 * int64_t{pool->num_threads()});
}
int64_t chunk_begin(int64_t n, int64_t chunks, int64_t c) {
  if (c >= chunks) return n;
  const int64_t per = (n / chunks + 63) / 64 * 64;
  return std::min(n, c * per);
}

// fn(begin, count) over the chunks of [0, n).
template <class Fn>
void for_chunks(int64_t n, ThreadPool* pool, const Fn& fn) {
  if (n <= 0) return;
  const int64_t chunks = num_chunks(n, pool);
  parallel_for(pool, chunks, [&](int64_t c) {
    const int64_t begin = chunk_begin(n, chunks, c), end = chunk_begin(n, chunks, c + 1);
    if (end > begin) fn(begin, static_cast<size_t>(end - begin));
  });
}

void quantize_u8_any(Isa isa, const float* x, size_t n, float scale, int32_t zero, uint8_t* y) {
  BRINK_ISA_DISPATCH(isa, quantize_u8_run, x, n, scale, zero, y)
}
void minmax_any(Isa isa, const float* x, size_t n, float* lo, float* hi) {
  BRINK_ISA_DISPATCH(isa, minmax_run, x, n, lo, hi)
}
void qadd_any(Isa isa, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n,
              const QAddParams& p) {
  BRINK_ISA_DISPATCH(isa, qadd_u8_run, a, b, y, n, p)
}
void quantize_s8_any(Isa isa, const float* x, size_t n, float scale, int32_t zero, int8_t* y) {
  BRINK_ISA_DISPATCH(isa, quantize_s8_run, x, n, scale, zero, y)
}
void dequantize_u8_any(Isa isa, const uint8_t* x, size_t n, float scale, int32_t zero, float* y) {
  BRINK_ISA_DISPATCH(isa, dequantize_u8_run, x, n, scale, zero, y)
}
void dequantize_s8_any(Isa isa, const int8_t* x, size_t n, float scale, int32_t zero, float* y) {
  BRINK_ISA_DISPATCH(isa, dequantize_s8_run, x, n, scale, zero, y)
}

}  // namespace

void qadd_u8(const uint8_t* a, float a_scale, int32_t a_zero, const uint8_t* b, float b_scale,
             int32_t b_zero, uint8_t* y, float y_scale, int32_t y_zero, uint8_t min, uint8_t max,
             int64_t n, ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  const QAddParams p{a_zero, b_zero, y_zero, a_scale / y_scale, b_scale / y_scale, min, max};
  for_chunks(n, pool, [&](int64_t i, size_t len) { qadd_any(isa, a + i, b + i, y + i, len, p); });
}

void quantize_f32_u8(const float* x, int64_t n, float scale, int32_t zero, uint8_t* y,
                     ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  for_chunks(n, pool,
             [&](int64_t i, size_t len) { quantize_u8_any(isa, x + i, len, scale, zero, y + i); });
}

void quantize_f32_s8(const float* x, int64_t n, float scale, int32_t zero, int8_t* y,
                     ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  for_chunks(n, pool,
             [&](int64_t i, size_t len) { quantize_s8_any(isa, x + i, len, scale, zero, y + i); });
}

void dequantize_u8_f32(const uint8_t* x, int64_t n, float scale, int32_t zero, float* y,
                       ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  for_chunks(n, pool, [&](int64_t i, size_t len) {
    dequantize_u8_any(isa, x + i, len, scale, zero, y + i);
  });
}

void dequantize_s8_f32(const int8_t* x, int64_t n, float scale, int32_t zero, float* y,
                       ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  for_chunks(n, pool, [&](int64_t i, size_t len) {
    dequantize_s8_any(isa, x + i, len, scale, zero, y + i);
  });
}

void dynamic_quantize_u8(const float* x, int64_t n, uint8_t* y, float* scale, uint8_t* zero,
                         ThreadPool* pool, Isa isa) {
  isa = usable_isa(isa);
  // Pass 1: the range, per chunk, then combined (min/max are exact: the order is free).
  const int64_t chunks = n > 0 ? num_chunks(n, pool) : 0;
  std::vector<float> lo(static_cast<size_t>(chunks), 0.0f), hi(static_cast<size_t>(chunks), 0.0f);
  parallel_for(pool, chunks, [&](int64_t c) {
    const int64_t begin = chunk_begin(n, chunks, c), end = chunk_begin(n, chunks, c + 1);
    if (end > begin)
      minmax_any(isa, x + begin, static_cast<size_t>(end - begin), &lo[static_cast<size_t>(c)],
                 &hi[static_cast<size_t>(c)]);
  });
  float l = 0.0f, h = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) {
    l = std::min(l, lo[static_cast<size_t>(c)]);
    h = std::max(h, hi[static_cast<size_t>(c)]);
  }
  const float s = (h - l) / 255.0f;
  if (!(s > 0.0f)) {  // no range: all zeros / NaN, or empty
    *scale = 0.0f;
    *zero = 0;
    if (n > 0) std::fill(y, y + n, uint8_t{0});
    return;
  }
  float z = -l / s;
  if (std::isnan(z)) z = 0.0f;
  const int32_t zp = static_cast<int32_t>(std::nearbyint(std::clamp(z, 0.0f, 255.0f)));
  *scale = s;
  *zero = static_cast<uint8_t>(zp);
  // Pass 2: quantize.
  for_chunks(n, pool,
             [&](int64_t i, size_t len) { quantize_u8_any(isa, x + i, len, s, zp, y + i); });
}

}  // namespace brink::kernels
