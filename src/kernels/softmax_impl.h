// Per-ISA bodies of the softmax rows (softmax.h), written once against elementwise_simd.h.
// Included by exactly one file per ISA (softmax.cc for portable, softmax_avx512.cc, ...).
#pragma once

#include <cmath>

#include "kernels/activation_math.h"
#include "kernels/softmax.h"

namespace brink::kernels::BRINK_SIMD_NS {

void softmax_row_f32(const float* x, float* y, size_t n, bool log) {
  const Vf m = set1(row_max(x, n));
  const float ninf = -__builtin_inff();
  Vf s0 = set1(0.0f), s1 = s0;
  size_t i = 0;
  if (!log) {
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const Vf e0 = exp(load(x + i) - m), e1 = exp(load(x + i + kLanes) - m);
      store(y + i, e0);
      store(y + i + kLanes, e1);
      s0 = s0 + e0;
      s1 = s1 + e1;
    }
    for (; i + kLanes <= n; i += kLanes) {
      const Vf e = exp(load(x + i) - m);
      store(y + i, e);
      s0 = s0 + e;
    }
    if (i < n) {
      const Vf e = exp(load_partial_fill(x + i, n - i, ninf) - m);
      store_partial(y + i, e, n - i);
      s1 = s1 + e;
    }
    const Vf inv = set1(1.0f / reduce_add(s0 + s1));
    map_f32(y, y, n, [inv](Vf v) BRINK_SIMD_INLINE_LAMBDA { return v * inv; });
    return;
  }
  for (; i + kLanes <= n; i += kLanes) s0 = s0 + exp(load(x + i) - m);
  if (i < n) s1 = s1 + exp(load_partial_fill(x + i, n - i, ninf) - m);
  // (x - m) - log(sum), not x - (m + log(sum)): near-zero outputs keep their precision.
  const Vf log_sum = set1(std::log(reduce_add(s0 + s1)));
  map_f32(x, y, n, [m, log_sum](Vf v) BRINK_SIMD_INLINE_LAMBDA { return (v - m) - log_sum; });
}

float softmax_row_unnormalized_f32(float* s, size_t n, float scale, const float* mask,
                                   bool mask_is_scalar) {
  const Vf vs = set1(scale);
  if (mask == nullptr) {
    map_f32(s, s, n, [vs](Vf v) BRINK_SIMD_INLINE_LAMBDA { return v * vs; });
  } else if (mask_is_scalar) {
    const Vf vm = set1(*mask);
    map_f32(s, s, n, [vs, vm](Vf v) BRINK_SIMD_INLINE_LAMBDA { return fma(v, vs, vm); });
  } else {
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) store(s + i, fma(load(s + i), vs, load(mask + i)));
    if (i < n)
      store_partial(s + i, fma(load_partial(s + i, n - i), vs, load_partial(mask + i, n - i)),
                    n - i);
  }
  const Vf m = set1(row_max(s, n));
  const float ninf = -__builtin_inff();
  Vf s0 = set1(0.0f), s1 = s0;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vf e = exp(load(s + i) - m);
    store(s + i, e);
    s0 = s0 + e;
  }
  if (i < n) {
    const Vf e = exp(load_partial_fill(s + i, n - i, ninf) - m);
    store_partial(s + i, e, n - i);
    s1 = s1 + e;
  }
  return reduce_add(s0 + s1);
}

}  // namespace brink::kernels::BRINK_SIMD_NS
