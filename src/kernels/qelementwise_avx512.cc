// The AVX-512 (F + BW + VL) variants of the quantized elementwise kernels (qelementwise.h):
// 16 lanes at a time, the tail through masked loads and stores.
#include <immintrin.h>

#include "kernels/qelementwise.h"

namespace brink::kernels::avx512 {

using qelementwise_internal::QAddParams;

namespace {

inline __mmask16 tail_mask(size_t n) {
  return _cvtu32_mask16((1u << n) - 1u);
}

// nearbyint(t) + zero clamped to [lo, hi] per lane; NaN gives the zero point (clamped).
inline __m512i round_add_clamp(__m512 t, __m512i zero, __m512i lo, __m512i hi) {
  t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);
  t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-65536.0f)), _mm512_set1_ps(65536.0f));
  const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(t), zero);  // nearest even
  return _mm512_min_epi32(_mm512_max_epi32(i, lo), hi);
}

template <class T>
inline void quantize(const float* x, size_t n, float scale, int32_t zero, T* y, int32_t lo,
                     int32_t hi) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i z = _mm512_set1_epi32(zero), l = _mm512_set1_epi32(lo), h = _mm512_set1_epi32(hi);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = round_add_clamp(_mm512_div_ps(_mm512_loadu_ps(x + i), s), z, l, h);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(v));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i v = round_add_clamp(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), s), z, l, h);
    _mm512_mask_cvtepi32_storeu_epi8(y + i, m, v);
  }
}

// 16 u8 (kSigned: s8) widened to int32.
template <bool kSigned>
inline __m512i widen(__m128i v) {
  if constexpr (kSigned)
    return _mm512_cvtepi8_epi32(v);
  else
    return _mm512_cvtepu8_epi32(v);
}

template <bool kSigned, class T>
inline void dequantize(const T* x, size_t n, float scale, int32_t zero, float* y) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i z = _mm512_set1_epi32(zero);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = widen<kSigned>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, z)), s));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i v = widen<kSigned>(_mm_maskz_loadu_epi8(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, z)), s));
  }
}

inline __m512 qadd_lanes(__m128i a, __m128i b, const QAddParams& p) {
  __m512 ta = _mm512_mul_ps(
      _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(a), _mm512_set1_epi32(p.a_zero))),
      _mm512_set1_ps(p.fa));
  __m512 tb = _mm512_mul_ps(
      _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), _mm512_set1_epi32(p.b_zero))),
      _mm512_set1_ps(p.fb));
  __asm__("" : "+v"(ta), "+v"(tb));  // no FMA contraction: the formula rounds the product
  return _mm512_add_ps(ta, tb);
}

}  // namespace

void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const QAddParams& p) {
  const __m512i z = _mm512_set1_epi32(p.y_zero), l = _mm512_set1_epi32(p.min),
                h = _mm512_set1_epi32(p.max);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 t = qadd_lanes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)), p);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm512_cvtepi32_epi8(round_add_clamp(t, z, l, h)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 t = qadd_lanes(_mm_maskz_loadu_epi8(m, a + i), _mm_maskz_loadu_epi8(m, b + i), p);
    _mm512_mask_cvtepi32_storeu_epi8(y + i, m, round_add_clamp(t, z, l, h));
  }
}

void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero, uint8_t* y) {
  quantize(x, n, scale, zero, y, 0, 255);
}
void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero, int8_t* y) {
  quantize(x, n, scale, zero, y, -128, 127);
}
void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero, float* y) {
  dequantize<false>(x, n, scale, zero, y);
}
void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero, float* y) {
  dequantize<true>(x, n, scale, zero, y);
}

void minmax_run(const float* x, size_t n, float* lo, float* hi) {
  // min_ps(x, acc) returns acc when x is NaN: NaNs are skipped. Accumulators start at 0 (the
  // range includes 0), and masked-off tail lanes load as 0.
  __m512 l0 = _mm512_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    l0 = _mm512_min_ps(a, l0);
    h0 = _mm512_max_ps(a, h0);
    l1 = _mm512_min_ps(b, l1);
    h1 = _mm512_max_ps(b, h1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? _cvtu32_mask16(0xFFFFu) : tail_mask(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(m, x + i);
    l0 = _mm512_min_ps(a, l0);
    h0 = _mm512_max_ps(a, h0);
  }
  *lo = _mm512_reduce_min_ps(_mm512_min_ps(l0, l1));
  *hi = _mm512_reduce_max_ps(_mm512_max_ps(h0, h1));
}

}  // namespace brink::kernels::avx512
