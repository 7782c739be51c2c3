// NEON INT8 micro-kernels (aarch64). Both flip A to s8 (a ^ 0x80 = a - 128), so a_bias = 128
// and the driver's offset adds back 128 * colsum (qgemm_ukernel.h).
//
//   plain NEON  4 x 8:  per row and group of 4 k, A's 4 bytes duplicated into a d register;
//               vmull_s8 with 2 columns x 4 k of B gives 8 int16 products (|p| <= 16384),
//               vpadalq_s16 adds them pairwise into int32 (no saturation anywhere); the pairs
//               of partial sums are combined with vpaddq in the epilogue.
//   dotprod     4 x 16: the 4 rows' 4 bytes in one q register, one sdot by lane per row and
//               vector of 4 columns (16 int32 accumulators). Compiled for armv8.2-a+dotprod
//               (a target pragma); only run where HWCAP_ASIMDDP says so.
#include <arm_neon.h>

#include <utility>

#include "kernels/qgemm_ukernel.h"

namespace brink::kernels::qgemm_detail {
namespace {

// The epilogue of 4 columns of one row (qgemm_ukernel.h); `valid` 1..4.
inline void finish4(int32x4_t acc, const int32_t* offset, const float* scale, const QTileArgs& p,
                    int row, int col, int valid) {
  const int32x4_t v = vaddq_s32(acc, vld1q_s32(offset));
  float32x4_t f = vmulq_f32(vcvtq_f32_s32(v), vld1q_f32(scale));
  const size_t at = static_cast<size_t>(row) * p.y_stride + static_cast<size_t>(col);
  if (p.f32) {
    if (p.fbias != nullptr)
      f = add_float_bias(f, vld1q_f32(p.fbias + col),
                         [](float32x4_t a, float32x4_t b) { return vaddq_f32(a, b); });
    float* y = static_cast<float*>(p.y) + at;
    if (valid == 4) {
      vst1q_f32(y, f);
    } else {
      float tmp[4];
      vst1q_f32(tmp, f);
      std::memcpy(y, tmp, static_cast<size_t>(valid) * sizeof(float));
    }
    return;
  }
  // FCVTNS: round to nearest, ties to even.
  int32x4_t q = vaddq_s32(vcvtnq_s32_f32(f), vdupq_n_s32(p.zp));
  q = vminq_s32(vmaxq_s32(q, vdupq_n_s32(p.min)), vdupq_n_s32(p.max));
  const uint16x4_t h = vmovn_u32(vreinterpretq_u32_s32(q));
  const uint8x8_t b = vmovn_u16(vcombine_u16(h, h));
  uint8_t tmp[8];
  vst1_u8(tmp, b);
  std::memcpy(static_cast<uint8_t*>(p.y) + at, tmp, static_cast<size_t>(valid));
}

inline void finish_row(const int32x4_t* acc, int nvec, const QTileArgs& p, int row) {
  for (int j = 0; j < nvec; ++j) {
    const int valid = p.n - 4 * j;
    if (valid > 0)
      finish4(acc[j], p.offset + 4 * j, p.scale + 4 * j, p, row, 4 * j, valid < 4 ? valid : 4);
  }
}

constexpr uint32_t kFlip = 0x80808080u;

template <int MR>
void neon_tile(const QTileArgs& p) {
  constexpr int NR = 8;
  // acc[i][d]: columns 2d, 2d+1 of row i as [c0 k01, c0 k23, c1 k01, c1 k23].
  int32x4_t acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int d = 0; d < 4; ++d) acc[i][d] = vdupq_n_s32(0);
  const int8_t* w = p.w;
  const size_t groups = p.kc / 4, rem = p.kc % 4;
  const uint8_t* const* ap = p.a;
  for (size_t t = 0; t < p.ks; ++t, ap += MR) {
    for (size_t g = 0; g < groups + (rem != 0 ? 1 : 0); ++g) {
      int8x8_t b[4];
      for (int d = 0; d < 4; ++d) b[d] = vld1_s8(w + 8 * d);
      w += 4 * NR;
      for (int i = 0; i < MR; ++i) {
        const uint32_t raw = g < groups ? load_u32(ap[i] + 4 * g) : load_tail(ap[i] + 4 * g, rem);
        const int8x8_t a = vreinterpret_s8_u32(vdup_n_u32(raw ^ kFlip));
        for (int d = 0; d < 4; ++d) acc[i][d] = vpadalq_s16(acc[i][d], vmull_s8(b[d], a));
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    const int32x4_t sums[2] = {vpaddq_s32(acc[i][0], acc[i][1]), vpaddq_s32(acc[i][2], acc[i][3])};
    finish_row(sums, 2, p, i);
  }
}

QUkernel make_neon() {
  QUkernel uk;
  uk.mr = 4;
  uk.nr = 8;
  uk.a_bias = 128;
  uk.tile[1] = uk.exact[1] = neon_tile<1>;
  uk.tile[2] = uk.exact[2] = neon_tile<2>;
  uk.tile[3] = uk.exact[3] = neon_tile<3>;
  uk.tile[4] = uk.exact[4] = neon_tile<4>;
  return uk;
}

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")

template <int MR>
void dot_tile(const QTileArgs& p) {
  constexpr int NR = 16;
  int32x4_t acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
  const int8_t* w = p.w;
  const size_t groups = p.kc / 4, rem = p.kc % 4;
  const uint8_t* const* ap = p.a;
  for (size_t t = 0; t < p.ks; ++t, ap += MR) {
    for (size_t g = 0; g < groups + (rem != 0 ? 1 : 0); ++g) {
      int8x16_t b[4];
      for (int j = 0; j < 4; ++j) b[j] = vld1q_s8(w + 16 * j);
      w += 4 * NR;
      uint32_t raw[4] = {0, 0, 0, 0};
      for (int i = 0; i < MR; ++i)
        raw[i] = (g < groups ? load_u32(ap[i] + 4 * g) : load_tail(ap[i] + 4 * g, rem)) ^ kFlip;
      const int8x16_t a = vreinterpretq_s8_u32(vld1q_u32(raw));
      [&]<int... I>(std::integer_sequence<int, I...>) {
        for (int j = 0; j < 4; ++j) ((acc[I][j] = vdotq_laneq_s32(acc[I][j], b[j], a, I)), ...);
      }
      (std::make_integer_sequence<int, MR>{});
    }
  }
  for (int i = 0; i < MR; ++i) finish_row(acc[i], 4, p, i);
}

QUkernel make_neondot() {
  QUkernel uk;
  uk.mr = 4;
  uk.nr = 16;
  uk.a_bias = 128;
  uk.tile[1] = uk.exact[1] = dot_tile<1>;
  uk.tile[2] = uk.exact[2] = dot_tile<2>;
  uk.tile[3] = uk.exact[3] = dot_tile<3>;
  uk.tile[4] = uk.exact[4] = dot_tile<4>;
  return uk;
}

#pragma GCC pop_options

}  // namespace

const QUkernel* qukernel_neon() {
  static const QUkernel uk = make_neon();
  return &uk;
}

const QUkernel* qukernel_neondot() {
  static const QUkernel uk = make_neondot();
  return &uk;
}

}  // namespace brink::kernels::qgemm_detail
