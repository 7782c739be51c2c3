#include <arm_neon.h>

#include "kernels/peak.h"

namespace brink::kernels::peak_detail {

double fma_loop_neon(long iters) {
  constexpr int kChains = 16;
  volatile float seed = 0.5f;
  const float32x4_t x = vdupq_n_f32(0.999999f * seed * 2.0f);
  const float32x4_t y = vdupq_n_f32(1e-6f * seed);
  float32x4_t acc[kChains];
  for (auto& v : acc) v = vdupq_n_f32(seed);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = vfmaq_f32(y, acc[c], x);
  }
  float32x4_t sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = vaddq_f32(sum, acc[c]);
  volatile float sink = vaddvq_f32(sum);
  (void)sink;
  return static_cast<double>(iters) * kChains * 4 * 2;
}

}  // namespace brink::kernels::peak_detail
