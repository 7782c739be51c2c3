// AVX-512 GEMM micro-kernel: MR x 32 (two zmm per row of C), A broadcast from memory.
// N remainders use masked loads/stores, so partial tiles cost no copies.
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <utility>

#include "kernels/gemm_ukernel.h"

namespace brink::kernels::gemm_detail {
namespace {

constexpr int kMr = 8;
constexpr int kNr = 32;

template <int MR>
void tile_avx512(const TileArgs& p) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
  }
  const float* a = p.a;
  const float* b = p.b;
  const int64_t lda = p.lda;
  int64_t k = 0;
  if constexpr (MR <= 2) {
    // Few rows mean few accumulators, too few to hide FMA latency (batch-1 MatMul, GEMV):
    // a second set takes the odd steps of k.
    __m512 d0[MR], d1[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      d0[r] = _mm512_setzero_ps();
      d1[r] = _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (; k + 2 <= p.kc; k += 2, b += 2 * kNr) {
      const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
      const __m512 b2 = _mm512_load_ps(b + kNr), b3 = _mm512_load_ps(b + kNr + 16);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512 av = _mm512_set1_ps(a[r * lda + k]);
        const __m512 aw = _mm512_set1_ps(a[r * lda + k + 1]);
        c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        d0[r] = _mm512_fmadd_ps(aw, b2, d0[r]);
        d1[r] = _mm512_fmadd_ps(aw, b3, d1[r]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm512_add_ps(c0[r], d0[r]);
      c1[r] = _mm512_add_ps(c1[r], d1[r]);
    }
  }
#pragma GCC unroll 4
  for (; k < p.kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    b += kNr;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }

  const __mmask16 m0 = p.n >= 16 ? __mmask16(0xffff) : __mmask16((1u << p.n) - 1);
  const __mmask16 m1 = p.n >= 32   ? __mmask16(0xffff)
                       : p.n <= 16 ? __mmask16(0)
                                   : __mmask16((1u << (p.n - 16)) - 1);
  if (p.bias != nullptr) {
    const __m512 bias0 = _mm512_maskz_loadu_ps(m0, p.bias);
    const __m512 bias1 = _mm512_maskz_loadu_ps(m1, p.bias + 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm512_add_ps(c0[r], bias0);
      c1[r] = _mm512_add_ps(c1[r], bias1);
    }
  }
  float* c = p.c;
  const int64_t ldc = p.ldc;
  if (p.load_c) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, c + r * ldc));
      c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));
    }
  }
  if (p.clamp) {
    const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm512_min_ps(_mm512_max_ps(c0[r], lo), hi);
      c1[r] = _mm512_min_ps(_mm512_max_ps(c1[r], lo), hi);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
  }
}

template <int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {tile_avx512<R + 1>...};
}
constexpr auto kTiles = tile_table(std::make_integer_sequence<int, kMr>{});

void tile(const TileArgs& p) {
  kTiles[static_cast<size_t>(p.rows - 1)](p);
}

}  // namespace

Ukernel ukernel_avx512() {
  return {kMr, kNr, tile};
}

}  // namespace brink::kernels::gemm_detail
