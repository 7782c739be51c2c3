// AVX-512 indirect-GEMM micro-kernels for ConvNhwcF32: up to 8 pixels x 32 channels (two
// zmm columns), the A element broadcast from memory into the FMA. 16 accumulators hide the
// FMA latency on every AVX-512 core (4 cycles x 2 ports on Intel, 4 x 1 on Zen 4), and 8 row
// pointers + w + k fit the 16 general registers, which caps MR at 8.
#include <immintrin.h>

#include <utility>

#include "kernels/conv_ukernel.h"

namespace brink::kernels::conv_internal {
namespace {

template <int MR, int NV>
void igemm(size_t nc, const float* const* ap, const float* w, float* c, const float* z,
           const IgemmArgs& args) {
  __m512 acc[MR][NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const __m512 bias = _mm512_load_ps(w + 16 * j);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) acc[i][j] = bias;
  }
  w += 16 * NV;
  const size_t kc = args.kc;
  for (size_t t = 0; t < args.ks; ++t) {
    const float* a[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) a[i] = ap[i];
    ap += MR;
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; ++k) {
      __m512 b[NV];
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) b[j] = _mm512_load_ps(w + 16 * j);
      w += 16 * NV;
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512 av = _mm512_set1_ps(a[i][k]);
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(av, b[j], acc[i][j]);
      }
    }
  }

  __mmask16 mask[NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const size_t lo = 16 * static_cast<size_t>(j);
    const size_t n = nc > lo ? (nc - lo < 16 ? nc - lo : 16) : 0;
    mask[j] = static_cast<__mmask16>((1u << n) - 1u);
  }
  const __m512 vmin = _mm512_set1_ps(args.min);
  const __m512 vmax = _mm512_set1_ps(args.max);
  const size_t cs = args.c_stride;
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      __m512 v = acc[i][j];
      if (z != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[j], z + i * cs + 16 * j));
      // Bounds first: a NaN in v then passes through, as without an activation.
      v = _mm512_min_ps(vmax, _mm512_max_ps(vmin, v));
      _mm512_mask_storeu_ps(c + i * cs + 16 * j, mask[j], v);
    }
  }
}

template <int NV, size_t... M>
constexpr void fill(IgemmFn* table, std::index_sequence<M...>) {
  ((table[M + 1] = &igemm<static_cast<int>(M) + 1, NV>), ...);
}

IgemmConfig make_config() {
  IgemmConfig cfg;
  cfg.mr = 8;
  cfg.nr = 32;
  cfg.nr_half = 16;
  fill<2>(cfg.full, std::make_index_sequence<8>());
  fill<1>(cfg.half, std::make_index_sequence<8>());
  return cfg;
}

}  // namespace

const IgemmConfig* igemm_config_avx512() {
  static const IgemmConfig cfg = make_config();
  return &cfg;
}

}  // namespace brink::kernels::conv_internal
