// The AVX-512 VNNI variant of the quantized depthwise kernel (qdepthwise_conv.h): blocks of
// 64 channels, four taps per vpdpbusd (u8 inputs x s8 weights, exact int32 sums),
// requantization in registers as the pair variant does it.
//
// Per group of four taps, the four 64-byte input vectors are interleaved in two steps, both
// within 128-bit lanes: bytes (t0, t1) and (t2, t3) into words, then those words into dwords.
// Register r of the result holds, in dword lane 4 L + j, the four taps of channel
// 16 L + 4 r + j: the slot order the weights, bias and scales were packed in.
#include <immintrin.h>

#include "kernels/qdepthwise_conv.h"

namespace brink::kernels::qdepthwise_internal {

namespace {

template <bool kTail>
inline __attribute__((always_inline)) __m512i load_tap(const uint8_t* p, __mmask64 m) {
  if constexpr (kTail) return _mm512_maskz_loadu_epi8(m, p);
  return _mm512_loadu_si512(p);
}

// One block of 64 channels of one pixel. kTail: fewer than 64 channels remain (masked loads
// and store: nothing past a pixel's channels is read or written).
template <bool kTail>
inline __attribute__((always_inline)) void block(const RowArgs& a, const uint8_t* const* taps,
                                                 int64_t off, const int8_t* w, uint8_t* y,
                                                 __mmask64 m) {
  const int32_t* bias = a.bias + off;
  __m512i acc0 = _mm512_loadu_si512(bias);
  __m512i acc1 = _mm512_loadu_si512(bias + 16);
  __m512i acc2 = _mm512_loadu_si512(bias + 32);
  __m512i acc3 = _mm512_loadu_si512(bias + 48);
  for (int64_t q = 0; q < a.pairs; ++q) {
    const __m512i t0 = load_tap<kTail>(taps[4 * q] + off, m);
    const __m512i t1 = load_tap<kTail>(taps[4 * q + 1] + off, m);
    const __m512i t2 = load_tap<kTail>(taps[4 * q + 2] + off, m);
    const __m512i t3 = load_tap<kTail>(taps[4 * q + 3] + off, m);
    const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
    const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
    const int8_t* wq = w + q * 256;
    acc0 = _mm512_dpbusd_epi32(acc0, _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512(wq));
    acc1 =
        _mm512_dpbusd_epi32(acc1, _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512(wq + 64));
    acc2 =
        _mm512_dpbusd_epi32(acc2, _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512(wq + 128));
    acc3 =
        _mm512_dpbusd_epi32(acc3, _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512(wq + 192));
  }
  const float* scale = a.scale + off;
  const __m512 lim_lo = _mm512_set1_ps(-65536.0f), lim_hi = _mm512_set1_ps(65536.0f);
  auto requant = [&](__m512i acc, const float* s) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(s));
    f = _mm512_max_ps(_mm512_min_ps(f, lim_hi), lim_lo);
    return _mm512_cvtps_epi32(f);  // round to nearest even (the default MXCSR mode)
  };
  // dword -> word packs give, per 128-bit lane, channels 16 L + 0..7 and 16 L + 8..15.
  __m512i v01 = _mm512_packs_epi32(requant(acc0, scale), requant(acc1, scale + 16));
  __m512i v23 = _mm512_packs_epi32(requant(acc2, scale + 32), requant(acc3, scale + 48));
  const __m512i zp = _mm512_set1_epi16(static_cast<int16_t>(a.zero_point));
  const __m512i lo = _mm512_set1_epi16(a.min), hi = _mm512_set1_epi16(a.max);
  v01 = _mm512_min_epi16(_mm512_max_epi16(_mm512_adds_epi16(v01, zp), lo), hi);
  v23 = _mm512_min_epi16(_mm512_max_epi16(_mm512_adds_epi16(v23, zp), lo), hi);
  // word -> byte: per lane channels 16 L + 0..15, so the 64 bytes are in channel order.
  const __m512i out = _mm512_packus_epi16(v01, v23);
  if constexpr (kTail)
    _mm512_mask_storeu_epi8(y + off, m, out);
  else
    _mm512_storeu_si512(y + off, out);
}

}  // namespace

void qdepthwise_row_avx512vnni(const RowArgs& a) {
  constexpr int64_t kB = 64;
  const int64_t full = a.channels / kB, rem = a.channels % kB;
  const __mmask64 m = _cvtu64_mask64(rem == 0 ? 0u : (uint64_t{1} << rem) - 1u);
  for (int64_t i = 0; i < a.count; ++i) {
    const uint8_t* const* taps = a.taps + i * a.pairs * 4;
    uint8_t* y = a.y + i * a.channels;
    for (int64_t b = 0; b < full; ++b)
      block<false>(a, taps, b * kB, a.w8 + b * a.pairs * kB * 4, y, m);
    if (rem != 0) block<true>(a, taps, full * kB, a.w8 + full * a.pairs * kB * 4, y, m);
  }
}

}  // namespace brink::kernels::qdepthwise_internal
