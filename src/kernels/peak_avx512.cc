#include <immintrin.h>

#include "kernels/peak.h"

namespace brink::kernels::peak_detail {

double fma_loop_avx512(long iters) {
  constexpr int kChains = 12;
  volatile float seed = 0.5f;
  const __m512 x = _mm512_set1_ps(0.999999f * seed * 2.0f);
  const __m512 y = _mm512_set1_ps(1e-6f * seed);
  __m512 acc[kChains];
  for (auto& v : acc) v = _mm512_set1_ps(seed);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
  }
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  volatile float sink = _mm512_reduce_add_ps(sum);
  (void)sink;
  return static_cast<double>(iters) * kChains * 16 * 2;
}

}  // namespace brink::kernels::peak_detail
