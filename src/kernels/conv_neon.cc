// NEON (aarch64) indirect-GEMM micro-kernels for ConvNhwcF32: up to 6 pixels x 16 channels
// (four q columns): 24 accumulators and 4 weight vectors leave room for the broadcast A value
// in the 32 vector registers.
#include <arm_neon.h>

#include <utility>

#include "kernels/conv_ukernel.h"

namespace brink::kernels::conv_internal {
namespace {

template <int MR, int NV>
void igemm(size_t nc, const float* const* ap, const float* w, float* c, const float* z,
           const IgemmArgs& args) {
  float32x4_t acc[MR][NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    const float32x4_t bias = vld1q_f32(w + 4 * j);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) acc[i][j] = bias;
  }
  w += 4 * NV;
  const size_t kc = args.kc;
  for (size_t t = 0; t < args.ks; ++t) {
    const float* a[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) a[i] = ap[i];
    ap += MR;
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; ++k) {
      float32x4_t b[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[j] = vld1q_f32(w + 4 * j);
      w += 4 * NV;
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const float32x4_t av = vld1q_dup_f32(a[i] + k);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = vfmaq_f32(acc[i][j], av, b[j]);
      }
    }
  }

  const float32x4_t vmin = vdupq_n_f32(args.min);
  const float32x4_t vmax = vdupq_n_f32(args.max);
  const size_t cs = args.c_stride;
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * cs;
    const float* zi = z == nullptr ? nullptr : z + i * cs;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const size_t lo = 4 * static_cast<size_t>(j);
      if (lo >= nc) break;
      float32x4_t v = acc[i][j];
      if (nc - lo >= 4) {
        if (zi != nullptr) v = vaddq_f32(v, vld1q_f32(zi + lo));
        // vmaxnmq/vminnmq would drop a NaN; vmaxq/vminq pass it through.
        v = vminq_f32(vmaxq_f32(v, vmin), vmax);
        vst1q_f32(ci + lo, v);
      } else {
        float tmp[4];
        vst1q_f32(tmp, v);
        for (size_t q = 0; q < nc - lo; ++q) {
          float s = tmp[q] + (zi != nullptr ? zi[lo + q] : 0.0f);
          s = s < args.min ? args.min : (s > args.max ? args.max : s);
          ci[lo + q] = s;
        }
      }
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
  fill<4>(cfg.full, std::make_index_sequence<6>());
  fill<2>(cfg.half, std::make_index_sequence<6>());
  return cfg;
}

}  // namespace

const IgemmConfig* igemm_config_neon() {
  static const IgemmConfig cfg = make_config();
  return &cfg;
}

}  // namespace brink::kernels::conv_internal
