// Per-ISA body of the LayerNorm row (layernorm.h), written once against elementwise_simd.h.
// Included by exactly one file per ISA (layernorm.cc for portable, layernorm_avx512.cc, ...).
#pragma once

#include <cmath>

#include "kernels/activation_math.h"
#include "kernels/layernorm.h"

namespace brink::kernels::BRINK_SIMD_NS {

void layernorm_row_f32(const float* x, float* y, size_t n, const float* scale, const float* bias,
                       float eps, float* mean_out, float* inv_std_out) {
  const float mean = row_sum(x, n) / static_cast<float>(n);
  const Vf m = set1(mean);
  Vf q0 = set1(0.0f), q1 = q0;
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const Vf d0 = load(x + i) - m, d1 = load(x + i + kLanes) - m;
    q0 = fma(d0, d0, q0);
    q1 = fma(d1, d1, q1);
  }
  for (; i + kLanes <= n; i += kLanes) {
    const Vf d = load(x + i) - m;
    q0 = fma(d, d, q0);
  }
  if (i < n) {
    const Vf d = load_partial_fill(x + i, n - i, mean) - m;
    q1 = fma(d, d, q1);
  }
  const float var = reduce_add(q0 + q1) / static_cast<float>(n);
  const float inv_std = 1.0f / std::sqrt(var + eps);
  if (mean_out != nullptr) *mean_out = mean;
  if (inv_std_out != nullptr) *inv_std_out = inv_std;
  const Vf is = set1(inv_std);
  i = 0;
  if (bias != nullptr) {
    for (; i + kLanes <= n; i += kLanes)
      store(y + i, fma((load(x + i) - m) * is, load(scale + i), load(bias + i)));
    if (i < n) {
      const size_t r = n - i;
      store_partial(y + i,
                    fma((load_partial(x + i, r) - m) * is, load_partial(scale + i, r),
                        load_partial(bias + i, r)),
                    r);
    }
  } else {
    for (; i + kLanes <= n; i += kLanes) store(y + i, (load(x + i) - m) * is * load(scale + i));
    if (i < n) {
      const size_t r = n - i;
      store_partial(y + i, (load_partial(x + i, r) - m) * is * load_partial(scale + i, r), r);
    }
  }
}

}  // namespace brink::kernels::BRINK_SIMD_NS
