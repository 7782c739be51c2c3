// NEON INT4 weight-only GEMM (nbits_gemm_impl.h): four q registers per 16-column row, 4 rows
// in registers (even/odd accumulators: 32 q registers would not fit 8 rows), 6 rows over a
// dequantized panel (24 accumulators). The nibbles of 16 bytes are split with AND / shift on
// bytes, then widened u8 -> u16 -> u32 -> f32.
#include <arm_neon.h>

#include <cstring>

#include "kernels/nbits_gemm_impl.h"

namespace brink::kernels::nbits_detail {
namespace {

struct NeonTraits {
  struct Vec {
    float32x4_t v[4];
  };
  static constexpr int kDirectMax = 3;
  static constexpr int kMr = 6;
  static constexpr int kMr2 = 3;
  static Vec zero() {
    const float32x4_t z = vdupq_n_f32(0.0f);
    return {{z, z, z, z}};
  }
  static Vec load(const float* p) {
    return {{vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)}};
  }
  static Vec load_n(const float* p, int n) {
    float t[16] = {};
    std::memcpy(t, p, sizeof(float) * static_cast<size_t>(n));
    return load(t);
  }
  static void store(float* p, const Vec& v) {
    for (int i = 0; i < 4; ++i) vst1q_f32(p + 4 * i, v.v[i]);
  }
  static void store_n(float* p, const Vec& v, int n) {
    float t[16];
    store(t, v);
    std::memcpy(p, t, sizeof(float) * static_cast<size_t>(n));
  }
  static Vec add(const Vec& x, const Vec& y) {
    Vec r;
    for (int i = 0; i < 4; ++i) r.v[i] = vaddq_f32(x.v[i], y.v[i]);
    return r;
  }
  static Vec fma(float a, const Vec& w, const Vec& acc) {
    Vec r;
    for (int i = 0; i < 4; ++i) r.v[i] = vfmaq_n_f32(acc.v[i], w.v[i], a);
    return r;
  }
  // 16 u8 -> 16 floats q * s + nz.
  static Vec widen(uint8x16_t q, const Vec& s, const Vec& nz) {
    const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_u8(vget_high_u8(q));
    const uint32x4_t u[4] = {vmovl_u16(vget_low_u16(lo)), vmovl_u16(vget_high_u16(lo)),
                             vmovl_u16(vget_low_u16(hi)), vmovl_u16(vget_high_u16(hi))};
    Vec r;
    for (int i = 0; i < 4; ++i) r.v[i] = vfmaq_f32(nz.v[i], vcvtq_f32_u32(u[i]), s.v[i]);
    return r;
  }
  static void dequant(const uint8_t* q, const Vec& s, const Vec& nz, Vec* lo, Vec* hi) {
    const uint8x16_t b = vld1q_u8(q);
    *lo = widen(vandq_u8(b, vdupq_n_u8(15)), s, nz);
    *hi = widen(vshrq_n_u8(b, 4), s, nz);
  }
};

}  // namespace

PanelsFn panels_neon() {
  return &panels<NeonTraits>;
}

}  // namespace brink::kernels::nbits_detail
