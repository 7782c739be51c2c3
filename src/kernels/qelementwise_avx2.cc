// The AVX2 variants of the quantized elementwise kernels (qelementwise.h): 8 lanes at a
// time; the tail goes through a stack buffer so that nothing past the arrays is touched.
#include <immintrin.h>

#include <cstring>

#include "kernels/qelementwise.h"

namespace brink::kernels::avx2 {

using qelementwise_internal::QAddParams;

namespace {

// nearbyint(t) + zero clamped to [lo, hi] per lane; NaN gives the zero point (clamped).
inline __m256i round_add_clamp(__m256 t, __m256i zero, __m256i lo, __m256i hi) {
  t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
  t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-65536.0f)), _mm256_set1_ps(65536.0f));
  const __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(t), zero);  // nearest even
  return _mm256_min_epi32(_mm256_max_epi32(i, lo), hi);
}

// 8 int32 lanes already in the byte type's range, narrowed to 8 bytes (the low half).
template <bool kSigned>
inline __m128i narrow(__m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  if constexpr (kSigned)
    return _mm_packs_epi16(w, w);
  else
    return _mm_packus_epi16(w, w);
}

template <bool kSigned>
inline __m256i widen(const void* p) {
  const __m128i v = _mm_loadl_epi64(static_cast<const __m128i*>(p));
  if constexpr (kSigned)
    return _mm256_cvtepi8_epi32(v);
  else
    return _mm256_cvtepu8_epi32(v);
}

template <bool kSigned, class T>
inline void quantize(const float* x, size_t n, float scale, int32_t zero, T* y) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zero), l = _mm256_set1_epi32(kSigned ? -128 : 0),
                h = _mm256_set1_epi32(kSigned ? 127 : 255);
  for (size_t i = 0; i < n; i += 8) {
    const size_t len = n - i < 8 ? n - i : 8;
    alignas(32) float in[8] = {};
    const float* src = x + i;
    if (len < 8) src = static_cast<const float*>(std::memcpy(in, src, len * sizeof(float)));
    const __m256i v = round_add_clamp(_mm256_div_ps(_mm256_loadu_ps(src), s), z, l, h);
    const __m128i out = narrow<kSigned>(v);
    if (len == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), out);
    } else {
      alignas(16) uint8_t buf[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), out);
      std::memcpy(y + i, buf, len);
    }
  }
}

template <bool kSigned, class T>
inline void dequantize(const T* x, size_t n, float scale, int32_t zero, float* y) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zero);
  for (size_t i = 0; i < n; i += 8) {
    const size_t len = n - i < 8 ? n - i : 8;
    alignas(8) T in[8] = {};
    const T* src = x + i;
    if (len < 8) src = static_cast<const T*>(std::memcpy(in, src, len));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen<kSigned>(src), z)), s);
    if (len == 8) {
      _mm256_storeu_ps(y + i, v);
    } else {
      alignas(32) float out[8];
      _mm256_store_ps(out, v);
      std::memcpy(y + i, out, len * sizeof(float));
    }
  }
}

}  // namespace

void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const QAddParams& p) {
  const __m256i z = _mm256_set1_epi32(p.y_zero), l = _mm256_set1_epi32(p.min),
                h = _mm256_set1_epi32(p.max), az = _mm256_set1_epi32(p.a_zero),
                bz = _mm256_set1_epi32(p.b_zero);
  const __m256 fa = _mm256_set1_ps(p.fa), fb = _mm256_set1_ps(p.fb);
  for (size_t i = 0; i < n; i += 8) {
    const size_t len = n - i < 8 ? n - i : 8;
    alignas(8) uint8_t ina[8] = {}, inb[8] = {};
    const uint8_t* sa = a + i;
    const uint8_t* sb = b + i;
    if (len < 8) {
      sa = static_cast<const uint8_t*>(std::memcpy(ina, sa, len));
      sb = static_cast<const uint8_t*>(std::memcpy(inb, sb, len));
    }
    __m256 ta = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen<false>(sa), az)), fa);
    __m256 tb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen<false>(sb), bz)), fb);
    __asm__("" : "+x"(ta), "+x"(tb));  // no FMA contraction: the formula rounds the product
    const __m128i out = narrow<false>(round_add_clamp(_mm256_add_ps(ta, tb), z, l, h));
    if (len == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), out);
    } else {
      alignas(16) uint8_t buf[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), out);
      std::memcpy(y + i, buf, len);
    }
  }
}

void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero, uint8_t* y) {
  quantize<false>(x, n, scale, zero, y);
}
void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero, int8_t* y) {
  quantize<true>(x, n, scale, zero, y);
}
void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero, float* y) {
  dequantize<false>(x, n, scale, zero, y);
}
void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero, float* y) {
  dequantize<true>(x, n, scale, zero, y);
}

void minmax_run(const float* x, size_t n, float* lo, float* hi) {
  // min_ps(x, acc) returns acc when x is NaN: NaNs are skipped. Accumulators start at 0 (the
  // range includes 0); the tail is padded with 0.
  __m256 l = _mm256_setzero_ps(), h = l;
  for (size_t i = 0; i < n; i += 8) {
    const size_t len = n - i < 8 ? n - i : 8;
    alignas(32) float in[8] = {};
    const float* src = x + i;
    if (len < 8) src = static_cast<const float*>(std::memcpy(in, src, len * sizeof(float)));
    const __m256 v = _mm256_loadu_ps(src);
    l = _mm256_min_ps(v, l);
    h = _mm256_max_ps(v, h);
  }
  alignas(32) float ls[8], hs[8];
  _mm256_store_ps(ls, l);
  _mm256_store_ps(hs, h);
  float rl = 0.0f, rh = 0.0f;
  for (int k = 0; k < 8; ++k) {
    rl = ls[k] < rl ? ls[k] : rl;
    rh = hs[k] > rh ? hs[k] : rh;
  }
  *lo = rl;
  *hi = rh;
}

}  // namespace brink::kernels::avx2
