// AVX2+FMA GEMM micro-kernel: MR x 16 (two ymm per row of C; 6 x 16 keeps 12 accumulators,
// enough to cover FMA latency x 2 ports). N remainders go through a stack tile.
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <utility>

#include "kernels/gemm_ukernel.h"

namespace brink::kernels::gemm_detail {
namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;

// Full-width tile (n == 16), rows 1..MR.
template <int MR>
void full_avx2(const TileArgs& p) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    c0[r] = _mm256_setzero_ps();
    c1[r] = _mm256_setzero_ps();
  }
  const float* a = p.a;
  const float* b = p.b;
  const int64_t lda = p.lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < p.kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    b += kNr;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  if (p.bias != nullptr) {
    const __m256 bias0 = _mm256_loadu_ps(p.bias);
    const __m256 bias1 = _mm256_loadu_ps(p.bias + 8);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm256_add_ps(c0[r], bias0);
      c1[r] = _mm256_add_ps(c1[r], bias1);
    }
  }
  float* c = p.c;
  const int64_t ldc = p.ldc;
  if (p.load_c) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(c + r * ldc));
      c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(c + r * ldc + 8));
    }
  }
  if (p.clamp) {
    const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm256_min_ps(_mm256_max_ps(c0[r], lo), hi);
      c1[r] = _mm256_min_ps(_mm256_max_ps(c1[r], lo), hi);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    _mm256_storeu_ps(c + r * ldc, c0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
  }
}

template <int MR>
void tile_avx2(const TileArgs& p) {
  if (p.n == kNr)
    full_avx2<MR>(p);
  else
    tile_through_buffer<MR, kNr>(p, full_avx2<MR>);
}

template <int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {tile_avx2<R + 1>...};
}
constexpr auto kTiles = tile_table(std::make_integer_sequence<int, kMr>{});

void tile(const TileArgs& p) {
  kTiles[static_cast<size_t>(p.rows - 1)](p);
}

}  // namespace

Ukernel ukernel_avx2() {
  return {kMr, kNr, tile};
}

}  // namespace brink::kernels::gemm_detail
