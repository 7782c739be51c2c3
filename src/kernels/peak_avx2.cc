#include <immintrin.h>

#include "kernels/peak.h"

namespace brink::kernels::peak_detail {

double fma_loop_avx2(long iters) {
  constexpr int kChains = 12;
  volatile float seed = 0.5f;
  const __m256 x = _mm256_set1_ps(0.999999f * seed * 2.0f);
  const __m256 y = _mm256_set1_ps(1e-6f * seed);
  __m256 acc[kChains];
  for (auto& v : acc) v = _mm256_set1_ps(seed);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return static_cast<double>(iters) * kChains * 8 * 2;
}

}  // namespace brink::kernels::peak_detail
