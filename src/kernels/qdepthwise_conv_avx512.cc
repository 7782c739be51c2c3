// The AVX-512 (F + BW) variant of the quantized depthwise kernel (qdepthwise_conv.h):
// blocks of 32 channels, two taps per vpmaddwd, requantization in registers.
#include <immintrin.h>

#include <algorithm>

#include "kernels/qdepthwise_conv.h"

namespace brink::kernels::avx512 {

namespace {

// One block of 32 channels of one pixel. kTail: fewer than 32 channels remain (masked loads
// and store, nothing past the tensor is touched).
template <bool kTail>
inline __attribute__((always_inline)) void block(const qdepthwise_internal::RowArgs& a,
                                                 const uint8_t* const* taps, int64_t off,
                                                 const int16_t* w, uint8_t* y, __mmask32 m) {
  __m512i acc_lo = _mm512_loadu_si512(a.bias + off);
  __m512i acc_hi = _mm512_loadu_si512(a.bias + off + 16);
  for (int64_t p = 0; p < a.pairs; ++p) {
    __m512i x0, x1;
    if constexpr (kTail) {
      x0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, taps[2 * p] + off));
      x1 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, taps[2 * p + 1] + off));
    } else {
      x0 = _mm512_cvtepu8_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[2 * p] + off)));
      x1 = _mm512_cvtepu8_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[2 * p + 1] + off)));
    }
    // Slots 0..15: channels 0-3, 8-11, 16-19, 24-27 with their two taps side by side.
    const __m512i w_lo = _mm512_loadu_si512(w + p * 64);
    const __m512i w_hi = _mm512_loadu_si512(w + p * 64 + 32);
    acc_lo = _mm512_add_epi32(acc_lo, _mm512_madd_epi16(_mm512_unpacklo_epi16(x0, x1), w_lo));
    acc_hi = _mm512_add_epi32(acc_hi, _mm512_madd_epi16(_mm512_unpackhi_epi16(x0, x1), w_hi));
  }
  const __m512 lim_lo = _mm512_set1_ps(-65536.0f), lim_hi = _mm512_set1_ps(65536.0f);
  __m512 f_lo = _mm512_mul_ps(_mm512_cvtepi32_ps(acc_lo), _mm512_loadu_ps(a.scale + off));
  __m512 f_hi = _mm512_mul_ps(_mm512_cvtepi32_ps(acc_hi), _mm512_loadu_ps(a.scale + off + 16));
  f_lo = _mm512_max_ps(_mm512_min_ps(f_lo, lim_hi), lim_lo);
  f_hi = _mm512_max_ps(_mm512_min_ps(f_hi, lim_hi), lim_lo);
  // cvtps2dq rounds to nearest even (the default MXCSR mode); the per-lane pack restores
  // channel order.
  __m512i v = _mm512_packs_epi32(_mm512_cvtps_epi32(f_lo), _mm512_cvtps_epi32(f_hi));
  v = _mm512_adds_epi16(v, _mm512_set1_epi16(static_cast<int16_t>(a.zero_point)));
  v = _mm512_max_epi16(v, _mm512_set1_epi16(a.min));
  v = _mm512_min_epi16(v, _mm512_set1_epi16(a.max));
  const __m256i out = _mm512_cvtepi16_epi8(v);
  if constexpr (kTail)
    _mm256_mask_storeu_epi8(y + off, m, out);
  else
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + off), out);
}

}  // namespace

void qdepthwise_row(const qdepthwise_internal::RowArgs& a) {
  constexpr int64_t kB = 32;
  const int64_t full = a.channels / kB, rem = a.channels % kB;
  const __mmask32 m = _cvtu32_mask32(rem == 0 ? 0u : (1u << rem) - 1u);
  for (int64_t i = 0; i < a.count; ++i) {
    const uint8_t* const* taps = a.taps + i * a.pairs * 2;
    uint8_t* y = a.y + i * a.channels;
    for (int64_t b = 0; b < full; ++b)
      block<false>(a, taps, b * kB, a.w + b * a.pairs * kB * 2, y, m);
    if (rem != 0) block<true>(a, taps, full * kB, a.w + full * a.pairs * kB * 2, y, m);
  }
}

}  // namespace brink::kernels::avx512
