// The NEON build of the quantized elementwise kernels (qelementwise.h). For now these are the
// portable loops compiled for aarch64 (same formulas, bit-identical results); vectorizing
// them with vcvtnq_s32_f32 / vqmovun is future work.
#include <algorithm>
#include <cmath>

#include "kernels/qelementwise.h"

namespace brink::kernels::neon {

using qelementwise_internal::QAddParams;

namespace {
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
  float l = 0.0f, h = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

}  // namespace brink::kernels::neon
