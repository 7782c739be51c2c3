// AVX2 + FMA indirect-GEMM micro-kernels for ConvNhwcF32: up to 6 pixels x 16 channels (two
// ymm columns): 12 accumulators, 2 weight vectors and the broadcast A value fill 15 of the 16
// ymm registers.
#include <immintrin.h>

#include <utility>

#include "kernels/conv_ukernel.h"

namespace brink::kernels::conv_internal {
namespace {

// Lanes [0, n) of a ymm as an all-ones mask, for maskload / maskstore.
__m256i lane_mask(size_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

template <int MR, int NV>
void igemm(size_t nc, const float* const* ap, const float* w, float* c, const float* z,
           const IgemmArgs& args) {
  __m256 acc[MR][NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const __m256 bias = _mm256_load_ps(w + 8 * j);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) acc[i][j] = bias;
  }
  w += 8 * NV;
  const size_t kc = args.kc;
  for (size_t t = 0; t < args.ks; ++t) {
    const float* a[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) a[i] = ap[i];
    ap += MR;
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; ++k) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) b[j] = _mm256_load_ps(w + 8 * j);
      w += 8 * NV;
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256 av = _mm256_broadcast_ss(a[i] + k);
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(av, b[j], acc[i][j]);
      }
    }
  }

  __m256i mask[NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const size_t lo = 8 * static_cast<size_t>(j);
    mask[j] = lane_mask(nc > lo ? (nc - lo < 8 ? nc - lo : 8) : 0);
  }
  const bool full = nc >= 8 * static_cast<size_t>(NV);
  const __m256 vmin = _mm256_set1_ps(args.min);
  const __m256 vmax = _mm256_set1_ps(args.max);
  const size_t cs = args.c_stride;
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      __m256 v = acc[i][j];
      float* ci = c + i * cs + 8 * j;
      if (z != nullptr) {
        const float* zi = z + i * cs + 8 * j;
        v = _mm256_add_ps(v, full ? _mm256_loadu_ps(zi) : _mm256_maskload_ps(zi, mask[j]));
      }
      // Bounds first: a NaN in v then passes through, as without an activation.
      v = _mm256_min_ps(vmax, _mm256_max_ps(vmin, v));
      if (full)
        _mm256_storeu_ps(ci, v);
      else
        _mm256_maskstore_ps(ci, mask[j], v);
    }
  }
}

template <int NV, size_t... M>
constexpr void fill(IgemmFn* table, std::index_sequence<M...>) {
  ((table[M + 1] = &igemm<static_cast<int>(M) + 1, NV>), ...);
}

IgemmConfig make_config() {
  IgemmConfig cfg;
  cfg.mr = 6;
  cfg.nr = 16;
  cfg.nr_half = 8;
  fill<2>(cfg.full, std::make_index_sequence<6>());
  fill<1>(cfg.half, std::make_index_sequence<6>());
  return cfg;
}

}  // namespace

const IgemmConfig* igemm_config_avx2() {
  static const IgemmConfig cfg = make_config();
  return &cfg;
}

}  // namespace brink::kernels::conv_internal
