// The NEON variant of the quantized depthwise kernel (qdepthwise_conv.h): blocks of 8
// channels; vld2q_s16 splits a pair of packed taps and widening vmlal_s16 accumulates in
// int32; requantization in registers (fcvtns rounds to nearest even).
#include <arm_neon.h>

#include <cstring>

#include "kernels/qdepthwise_conv.h"

namespace brink::kernels::neon {

namespace {

template <bool kTail>
inline __attribute__((always_inline)) void block(const qdepthwise_internal::RowArgs& a,
                                                 const uint8_t* const* taps, int64_t off,
                                                 const int16_t* w, uint8_t* y, size_t rem) {
  int32x4_t acc_lo = vld1q_s32(a.bias + off), acc_hi = vld1q_s32(a.bias + off + 4);
  uint8_t buf[2][8] = {};
  for (int64_t p = 0; p < a.pairs; ++p) {
    const uint8_t* s0 = taps[2 * p] + off;
    const uint8_t* s1 = taps[2 * p + 1] + off;
    if constexpr (kTail) {
      std::memcpy(buf[0], s0, rem);
      std::memcpy(buf[1], s1, rem);
      s0 = buf[0];
      s1 = buf[1];
    }
    const int16x8_t x0 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(s0)));
    const int16x8_t x1 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(s1)));
    const int16x8x2_t wv = vld2q_s16(w + p * 16);
    acc_lo = vmlal_s16(acc_lo, vget_low_s16(x0), vget_low_s16(wv.val[0]));
    acc_hi = vmlal_high_s16(acc_hi, x0, wv.val[0]);
    acc_lo = vmlal_s16(acc_lo, vget_low_s16(x1), vget_low_s16(wv.val[1]));
    acc_hi = vmlal_high_s16(acc_hi, x1, wv.val[1]);
  }
  const float32x4_t f_lo = vmulq_f32(vcvtq_f32_s32(acc_lo), vld1q_f32(a.scale + off));
  const float32x4_t f_hi = vmulq_f32(vcvtq_f32_s32(acc_hi), vld1q_f32(a.scale + off + 4));
  // fcvtns saturates to int32 and vqmovn to int16: out-of-range values clamp just as the
  // portable variant's float clamp does.
  int16x8_t v = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(f_lo)), vqmovn_s32(vcvtnq_s32_f32(f_hi)));
  v = vqaddq_s16(v, vdupq_n_s16(static_cast<int16_t>(a.zero_point)));
  uint8x8_t out = vqmovun_s16(v);
  out = vmax_u8(vmin_u8(out, vdup_n_u8(a.max)), vdup_n_u8(a.min));
  if constexpr (kTail) {
    vst1_u8(buf[0], out);
    std::memcpy(y + off, buf[0], rem);
  } else {
    vst1_u8(y + off, out);
  }
}

}  // namespace

void qdepthwise_row(const qdepthwise_internal::RowArgs& a) {
  constexpr int64_t kB = 8;
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

}  // namespace brink::kernels::neon
