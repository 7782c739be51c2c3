// The INT4 weight-only GEMM of nbits_gemm.h, written once over a 16-float vector type and
// instantiated per ISA (nbits_gemm.cc portable, nbits_gemm_avx2.cc, nbits_gemm_avx512.cc),
// each file compiled with its ISA's flags. A traits class T provides:
//   Vec                          16 floats (one zmm, two ymm, or a plain array)
//   kDirectMax                   most rows the in-register path takes (it keeps 2 x rows Vec
//                                accumulators: even and odd k, so a GEMV has two FMA chains)
//   kMr                          rows of the micro-kernel over one dequantized panel
//   kMr2                         rows of the micro-kernel over two dequantized panels (32
//                                columns: twice the accumulators per broadcast of A)
//   zero(), load(p), load_n(p, n), store(p, v), store_n(p, v, n), add(x, y)
//   fma(a, w, acc)               acc + a * w, a broadcast
//   dequant(bytes, s, nz, &lo, &hi)
//                                the 16 bytes of a pair of K rows -> the two rows of weights,
//                                lo = (byte & 15) * s + nz, hi = (byte >> 4) * s + nz
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/nbits_gemm.h"

namespace brink::kernels::nbits_detail {

// Dequantizes panel p's weights K row by K row, a pair at a time: pair(k, w0, w1) gets rows k
// and k + 1, and an odd last row of a block (the low nibble of its byte only) goes to
// last(k, w0). Both the in-register path (direct_tile) and dequant_panel walk the panel so.
template <class T, class Pair, class Last>
inline void for_each_dequantized(const PackedNBits& b, int64_t p, Pair&& pair, Last&& last) {
  using Vec = typename T::Vec;
  const uint8_t* q = b.panel(p);
  const float* ps = b.panel_scale(p);
  const float* pz = b.panel_neg_zs(p);
  for (int64_t g = 0; g < b.k_blocks; ++g) {
    const int64_t k0 = g * b.block_size, k1 = std::min(b.k, k0 + b.block_size);
    const Vec s = T::load(ps + g * kNBitsPanel), nz = T::load(pz + g * kNBitsPanel);
    int64_t k = k0;
    for (; k + 1 < k1; k += 2) {
      Vec w0, w1;
      T::dequant(q + (k / 2) * kNBitsPanel, s, nz, &w0, &w1);
      pair(k, w0, w1);
    }
    if (k < k1) {
      Vec w0, w1;
      T::dequant(q + (k / 2) * kNBitsPanel, s, nz, &w0, &w1);
      last(k, w0);
    }
  }
}

// C rows [0, MR) of one panel, weights dequantized in registers (few rows).
template <class T, int MR>
void direct_tile(const PackedNBits& b, int64_t p, const float* a, int64_t lda, const float* bias,
                 float* c, int64_t ldc, int cols) {
  using Vec = typename T::Vec;
  Vec even[MR], odd[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) even[r] = odd[r] = T::zero();
  for_each_dequantized<T>(
      b, p,
      [&](int64_t k, Vec w0, Vec w1) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          even[r] = T::fma(a[r * lda + k], w0, even[r]);
          odd[r] = T::fma(a[r * lda + k + 1], w1, odd[r]);
        }
      },
      [&](int64_t k, Vec w0) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) even[r] = T::fma(a[r * lda + k], w0, even[r]);
      });
  const Vec bv = bias == nullptr       ? T::zero()
                 : cols == kNBitsPanel ? T::load(bias)
                                       : T::load_n(bias, cols);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const Vec v = T::add(T::add(even[r], odd[r]), bv);
    if (cols == kNBitsPanel)
      T::store(c + r * ldc, v);
    else
      T::store_n(c + r * ldc, v, cols);
  }
}

// Dequantizes panel p into w (b.k rows of 16 floats).
template <class T>
void dequant_panel(const PackedNBits& b, int64_t p, float* w) {
  using Vec = typename T::Vec;
  for_each_dequantized<T>(
      b, p,
      [&](int64_t k, Vec w0, Vec w1) {
        T::store(w + k * kNBitsPanel, w0);
        T::store(w + (k + 1) * kNBitsPanel, w1);
      },
      [&](int64_t k, Vec w0) { T::store(w + k * kNBitsPanel, w0); });
}

// C rows [0, MR) of one panel from its dequantized weights w (k rows of 16 floats).
template <class T, int MR>
void panel_tile(const float* w, int64_t k, const float* a, int64_t lda, const float* bias, float* c,
                int64_t ldc, int cols) {
  using Vec = typename T::Vec;
  Vec acc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r] = T::zero();
  for (int64_t i = 0; i < k; ++i) {
    const Vec wv = T::load(w + i * kNBitsPanel);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r] = T::fma(a[r * lda + i], wv, acc[r]);
  }
  const Vec bv = bias == nullptr       ? T::zero()
                 : cols == kNBitsPanel ? T::load(bias)
                                       : T::load_n(bias, cols);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const Vec v = T::add(acc[r], bv);
    if (cols == kNBitsPanel)
      T::store(c + r * ldc, v);
    else
      T::store_n(c + r * ldc, v, cols);
  }
}

// C rows [0, MR) of two neighbouring panels (32 columns, the second `cols` wide) from their
// dequantized weights w0, w1: one broadcast of A feeds two FMAs.
template <class T, int MR>
void panel_tile2(const float* w0, const float* w1, int64_t k, const float* a, int64_t lda,
                 const float* bias, float* c, int64_t ldc, int cols) {
  using Vec = typename T::Vec;
  Vec acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = T::zero();
  for (int64_t i = 0; i < k; ++i) {
    const Vec x0 = T::load(w0 + i * kNBitsPanel), x1 = T::load(w1 + i * kNBitsPanel);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * lda + i];
      acc0[r] = T::fma(av, x0, acc0[r]);
      acc1[r] = T::fma(av, x1, acc1[r]);
    }
  }
  const Vec b0 = bias == nullptr ? T::zero() : T::load(bias);
  const Vec b1 = bias == nullptr       ? T::zero()
                 : cols == kNBitsPanel ? T::load(bias + kNBitsPanel)
                                       : T::load_n(bias + kNBitsPanel, cols);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    T::store(c + r * ldc, T::add(acc0[r], b0));
    const Vec v = T::add(acc1[r], b1);
    if (cols == kNBitsPanel)
      T::store(c + r * ldc + kNBitsPanel, v);
    else
      T::store_n(c + r * ldc + kNBitsPanel, v, cols);
  }
}

using DirectFn = void (*)(const PackedNBits&, int64_t, const float*, int64_t, const float*, float*,
                          int64_t, int);
using TileFn = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*, int64_t,
                        int);

template <class T, int... R>
constexpr std::array<DirectFn, sizeof...(R)> direct_table(std::integer_sequence<int, R...>) {
  return {&direct_tile<T, R + 1>...};
}
using Tile2Fn = void (*)(const float*, const float*, int64_t, const float*, int64_t, const float*,
                         float*, int64_t, int);

template <class T, int... R>
constexpr std::array<Tile2Fn, sizeof...(R)> tile2_table(std::integer_sequence<int, R...>) {
  return {&panel_tile2<T, R + 1>...};
}
template <class T, int... R>
constexpr std::array<TileFn, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {&panel_tile<T, R + 1>...};
}

template <class T>
void panels(const PackedNBits& b, int64_t p0, int64_t p1, int64_t m, const float* a, int64_t lda,
            const float* bias, float* c, int64_t ldc, float* scratch) {
  static constexpr auto direct = direct_table<T>(std::make_integer_sequence<int, T::kDirectMax>());
  static constexpr auto tile = tile_table<T>(std::make_integer_sequence<int, T::kMr>());
  static constexpr auto tile2 = tile2_table<T>(std::make_integer_sequence<int, T::kMr2>());
  // Up to 4 x kDirectMax rows, dequantizing in registers once per kDirectMax rows costs less
  // than writing the panel out and reading it back; past that the panel pays off.
  constexpr int64_t kDirectRows = 4 * T::kDirectMax;
  int64_t p = p0;
  if (m > kDirectRows) {
    // Two panels at a time: dequantize both (2 x k x 16 floats of scratch), then sweep A.
    float* second = scratch + b.k * kNBitsPanel;
    for (; p + 1 < p1; p += 2) {
      const int64_t col0 = p * kNBitsPanel;
      const int cols = static_cast<int>(std::min<int64_t>(kNBitsPanel, b.n - col0 - kNBitsPanel));
      const float* bp = bias != nullptr ? bias + col0 : nullptr;
      dequant_panel<T>(b, p, scratch);
      dequant_panel<T>(b, p + 1, second);
      for (int64_t r = 0; r < m; r += T::kMr2) {
        const int rows = static_cast<int>(std::min<int64_t>(T::kMr2, m - r));
        tile2[static_cast<size_t>(rows - 1)](scratch, second, b.k, a + r * lda, lda, bp,
                                             c + r * ldc + col0, ldc, cols);
      }
    }
  }
  for (; p < p1; ++p) {
    const int64_t col0 = p * kNBitsPanel;
    const int cols = static_cast<int>(std::min<int64_t>(kNBitsPanel, b.n - col0));
    const float* bp = bias != nullptr ? bias + col0 : nullptr;
    if (m <= kDirectRows) {  // in registers, kDirectMax rows at a time
      for (int64_t r = 0; r < m; r += T::kDirectMax) {
        const int rows = static_cast<int>(std::min<int64_t>(T::kDirectMax, m - r));
        direct[static_cast<size_t>(rows - 1)](b, p, a + r * lda, lda, bp, c + r * ldc + col0, ldc,
                                              cols);
      }
      continue;
    }
    dequant_panel<T>(b, p, scratch);
    for (int64_t r = 0; r < m; r += T::kMr) {
      const int rows = static_cast<int>(std::min<int64_t>(T::kMr, m - r));
      tile[static_cast<size_t>(rows - 1)](scratch, b.k, a + r * lda, lda, bp, c + r * ldc + col0,
                                          ldc, cols);
    }
  }
}

}  // namespace brink::kernels::nbits_detail
