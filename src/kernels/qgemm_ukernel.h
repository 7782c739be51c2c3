// The INT8 micro-kernels' common interface, internal to qgemm*.cc and qconv.cc. Each ISA file
// defines one getter; qgemm.cc and qconv.cc pick one by QIsa and drive it (qgemm.h has the
// design).
//
// One call computes a tile of `rows` (<= MR) rows x n (<= NR) columns, an indirect GEMM:
//
//   acc[i][j] = offset[j] + sum over taps t < ks, k < kc of
//               (a[t * rows + i][k] - a_bias) * w[t][k][j]
//   y[i][j]   = f32 ? float(acc) * scale[j] [+ fbias[j]]
//                   : clamp(nearbyint(float(acc) * scale[j]) + zp, min, max)
//
// a_bias is the kernel's own (0, or 128 for kernels that flip A to s8 with a ^ 0x80); the
// driver folds bias, a_zero and a_bias into `offset` (offset = bias - (a_zero - a_bias) *
// colsum). `w` is the block's panel: [ks][kc4 / 4][NR][4] s8 (kc4 = kc rounded up to 4, zero
// past kc and past the valid columns), so kernels may compute all NR columns; `offset` and
// `scale` (and `fbias`, when given) hold NR values (zero past n). The float bias is added to
// the rounded product (add_float_bias keeps the compiler from fusing the two into an FMA), so
// a reference computing float(acc) * scale, then + bias, agrees bit for bit. Only y's rows x n
// elements are written, and only the kc bytes of each A row are read.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qgemm.h"

namespace brink::kernels::qgemm_detail {

constexpr int kMaxMr = 8;

struct QTileArgs {
  const uint8_t* const* a = nullptr;  // ks * rows row pointers, tap-major
  size_t ks = 1;                      // taps
  size_t kc = 0;                      // bytes of A per tap
  const int8_t* w = nullptr;          // packed panel
  const int32_t* offset = nullptr;    // NR
  const float* scale = nullptr;       // NR
  const float* fbias = nullptr;       // NR, f32 only: added after the scale; nullptr: none
  void* y = nullptr;                  // uint8_t or float, tile origin
  size_t y_stride = 0;                // elements between two rows of y
  int n = 0;                          // valid columns, 1..NR
  bool f32 = false;
  int32_t zp = 0, min = 0, max = 255;
};

using QTileFn = void (*)(const QTileArgs&);

struct QUkernel {
  int mr = 0;
  int nr = 0;
  int32_t a_bias = 0;
  QTileFn tile[kMaxMr + 1] = {};   // tile[rows], rows = 1..mr
  QTileFn exact[kMaxMr + 1] = {};  // for a PackedQB that could saturate (x86 maddubs kernels)
};

const QUkernel* qukernel_portable();
#if defined(__x86_64__)
const QUkernel* qukernel_avx2();
const QUkernel* qukernel_avx512();
const QUkernel* qukernel_avx512vnni();
#endif
#if defined(__aarch64__)
const QUkernel* qukernel_neon();
const QUkernel* qukernel_neondot();
#endif

// The kernels for `isa`, or the portable ones when this CPU (or build) cannot run it.
const QUkernel* qukernel_for(QIsa isa);
// `isa` when supported here, else kPortable.
QIsa effective_qisa(QIsa isa);

// vpmaddubsw could saturate on the pair (b0, b1) of one column: |b0| + |b1| > 128.
bool pair_could_saturate(int32_t b0, int32_t b1);
// Packs columns j0..j0+nr of B (k x n, or n x k when b_transposed) into one panel `dst`
// ([k4 / 4][nr][4], zero-filled past k and n), writes their sums into colsum[0..nr) (0 past
// n) and sets *exact when a pair could saturate vpmaddubsw.
void pack_panel(const int8_t* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed, int64_t j0,
                int nr, int64_t k4, int8_t* dst, int32_t* colsum, bool* exact);

// The last 1..3 bytes of a row (a K tail) as the low bytes of a 32-bit word, read one by one.
inline uint32_t load_tail(const uint8_t* p, size_t rem) {
  uint32_t v = p[0];
  if (rem > 1) v |= static_cast<uint32_t>(p[1]) << 8;
  if (rem > 2) v |= static_cast<uint32_t>(p[2]) << 16;
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// v + bias, with v already rounded: the empty asm keeps v in a register the compiler cannot see
// through, so it cannot contract the product that made v and this sum into one FMA (which
// rounds once and would differ from a reference in the last bit). V: float or a SIMD vector.
template <typename V, typename Add>
inline V add_float_bias(V v, V bias, Add add) {
#if defined(__x86_64__)
  __asm__("" : "+v"(v));
#elif defined(__aarch64__)
  __asm__("" : "+w"(v));
#endif
  return add(v, bias);
}
inline float add_float_bias(float v, float bias) {
  return add_float_bias(v, bias, [](float x, float y) { return x + y; });
}

// The output stage for one value, exactly as the vector epilogues compute it.
inline uint8_t requantize(int32_t acc, float scale, int32_t zp, int32_t lo, int32_t hi) {
  const float v = static_cast<float>(acc) * scale;
  int32_t q = static_cast<int32_t>(std::nearbyint(v)) + zp;
  q = q < lo ? lo : q;
  q = q > hi ? hi : q;
  return static_cast<uint8_t>(q);
}

}  // namespace brink::kernels::qgemm_detail
