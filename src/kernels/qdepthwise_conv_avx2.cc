// The AVX2 variant of the quantized depthwise kernel (qdepthwise_conv.h): blocks of 16
// channels, two taps per vpmaddwd, requantization in registers.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/qdepthwise_conv.h"

namespace brink::kernels::avx2 {

namespace {

// One block of 16 channels of one pixel; a partial block (kTail, `rem` channels) goes
// through small stack buffers so that nothing past the tensor is read or written.
template <bool kTail>
inline __attribute__((always_inline)) void block(const qdepthwise_internal::RowArgs& a,
                                                 const uint8_t* const* taps, int64_t off,
                                                 const int16_t* w, uint8_t* y, size_t rem) {
  __m256i acc_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + off));
  __m256i acc_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + off + 8));
  alignas(16) uint8_t buf[2][16] = {};
  for (int64_t p = 0; p < a.pairs; ++p) {
    const uint8_t* s0 = taps[2 * p] + off;
    const uint8_t* s1 = taps[2 * p + 1] + off;
    if constexpr (kTail) {
      std::memcpy(buf[0], s0, rem);
      std::memcpy(buf[1], s1, rem);
      s0 = buf[0];
      s1 = buf[1];
    }
    const __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0)));
    const __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s1)));
    // Slots 0..7: channels 0-3 and 8-11 with their two taps side by side.
    const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + p * 32));
    const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + p * 32 + 16));
    acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w_lo));
    acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w_hi));
  }
  const __m256 lim_lo = _mm256_set1_ps(-65536.0f), lim_hi = _mm256_set1_ps(65536.0f);
  __m256 f_lo = _mm256_mul_ps(_mm256_cvtepi32_ps(acc_lo), _mm256_loadu_ps(a.scale + off));
  __m256 f_hi = _mm256_mul_ps(_mm256_cvtepi32_ps(acc_hi), _mm256_loadu_ps(a.scale + off + 8));
  f_lo = _mm256_max_ps(_mm256_min_ps(f_lo, lim_hi), lim_lo);
  f_hi = _mm256_max_ps(_mm256_min_ps(f_hi, lim_hi), lim_lo);
  __m256i v = _mm256_packs_epi32(_mm256_cvtps_epi32(f_lo), _mm256_cvtps_epi32(f_hi));
  v = _mm256_adds_epi16(v, _mm256_set1_epi16(static_cast<int16_t>(a.zero_point)));
  v = _mm256_max_epi16(v, _mm256_set1_epi16(a.min));
  v = _mm256_min_epi16(v, _mm256_set1_epi16(a.max));
  const __m128i out = _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  if constexpr (kTail) {
    _mm_store_si128(reinterpret_cast<__m128i*>(buf[0]), out);
    std::memcpy(y + off, buf[0], rem);
  } else {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + off), out);
  }
}

}  // namespace

void qdepthwise_row(const qdepthwise_internal::RowArgs& a) {
  constexpr int64_t kB = 16;
  const int64_t full = a.channels / kB, rem = a.channels % kB;
  for (int64_t i = 0; i < a.count; ++i) {
    const uint8_t* const* taps = a.taps + i * a.pairs * 2;
    uint8_t* y = a.y + i * a.channels;
    for (int64_t b = 0; b < full; ++b)
      block<false>(a, taps, b * kB, a.w + b * a.pairs * kB * 2, y, 0);
    if (rem != 0)
      block<true>(a, taps, full * kB, a.w + full * a.pairs * kB * 2, y, static_cast<size_t>(rem));
  }
}

}  // namespace brink::kernels::avx2
