// NEON GEMM micro-kernel (aarch64): MR x 8 (two q registers per row of C; 8 x 8 keeps 16
// accumulators). A is loaded four k at a time per row and multiplied by lane
// (vfmaq_laneq_f32), so one load of A serves four steps of k. N remainders go through a
// stack tile.
#include <arm_neon.h>

#include <array>
#include <cstddef>
#include <utility>

#include "kernels/gemm_ukernel.h"

namespace brink::kernels::gemm_detail {
namespace {

constexpr int kMr = 8;
constexpr int kNr = 8;

template <int MR>
void full_neon(const TileArgs& p) {
  float32x4_t c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    c0[r] = vdupq_n_f32(0.0f);
    c1[r] = vdupq_n_f32(0.0f);
  }
  const float* b = p.b;
  const int64_t lda = p.lda;
  int64_t k = 0;
  for (; k + 4 <= p.kc; k += 4, b += 4 * kNr) {
    float32x4_t av[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) av[r] = vld1q_f32(p.a + r * lda + k);
#define BRINK_NEON_STEP(L)                                  \
  {                                                         \
    const float32x4_t b0 = vld1q_f32(b + (L)*kNr);          \
    const float32x4_t b1 = vld1q_f32(b + (L)*kNr + 4);      \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) { \
      c0[r] = vfmaq_laneq_f32(c0[r], b0, av[r], L);         \
      c1[r] = vfmaq_laneq_f32(c1[r], b1, av[r], L);         \
    }                                                       \
  }
    BRINK_NEON_STEP(0)
    BRINK_NEON_STEP(1)
    BRINK_NEON_STEP(2)
    BRINK_NEON_STEP(3)
#undef BRINK_NEON_STEP
  }
  for (; k < p.kc; ++k, b += kNr) {
    const float32x4_t b0 = vld1q_f32(b);
    const float32x4_t b1 = vld1q_f32(b + 4);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const float32x4_t av = vdupq_n_f32(p.a[r * lda + k]);
      c0[r] = vfmaq_f32(c0[r], av, b0);
      c1[r] = vfmaq_f32(c1[r], av, b1);
    }
  }
  if (p.bias != nullptr) {
    const float32x4_t bias0 = vld1q_f32(p.bias);
    const float32x4_t bias1 = vld1q_f32(p.bias + 4);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = vaddq_f32(c0[r], bias0);
      c1[r] = vaddq_f32(c1[r], bias1);
    }
  }
  float* c = p.c;
  const int64_t ldc = p.ldc;
  if (p.load_c) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = vaddq_f32(c0[r], vld1q_f32(c + r * ldc));
      c1[r] = vaddq_f32(c1[r], vld1q_f32(c + r * ldc + 4));
    }
  }
  if (p.clamp) {
    const float32x4_t lo = vdupq_n_f32(p.lo), hi = vdupq_n_f32(p.hi);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      c0[r] = vminq_f32(vmaxq_f32(c0[r], lo), hi);
      c1[r] = vminq_f32(vmaxq_f32(c1[r], lo), hi);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    vst1q_f32(c + r * ldc, c0[r]);
    vst1q_f32(c + r * ldc + 4, c1[r]);
  }
}

template <int MR>
void tile_neon(const TileArgs& p) {
  if (p.n == kNr)
    full_neon<MR>(p);
  else
    tile_through_buffer<MR, kNr>(p, full_neon<MR>);
}

template <int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {tile_neon<R + 1>...};
}
constexpr auto kTiles = tile_table(std::make_integer_sequence<int, kMr>{});

void tile(const TileArgs& p) {
  kTiles[static_cast<size_t>(p.rows - 1)](p);
}

}  // namespace

Ukernel ukernel_neon() {
  return {kMr, kNr, tile};
}

}  // namespace brink::kernels::gemm_detail
