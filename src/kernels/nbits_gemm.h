// INT4 weight-only GEMM, the arithmetic of ONNX Runtime's com.microsoft MatMulNBits (bits = 4):
//   C[M,N] = A[M,K] · W[K,N] + bias[N],   W[k][n] = (q[k][n] - zp[n][g]) * scale[n][g],
// g = k / block_size, q and zp 4-bit unsigned (zp 8 when the model gives none: symmetric).
//
// ORT stores B column by column, [N][k_blocks][block_size / 2] bytes (k even in the low
// nibble), the last K block zero-padded. That suits a GEMV over one column, not a kernel that
// computes a tile of columns at once, so pack_nbits repacks it once at prepare into panels of
// 16 columns (one zmm, two ymm): within a panel, pair i of K (k = 2i, 2i+1) is 16 bytes, byte
// j = q[2i][col j] | q[2i+1][col j] << 4. One 16-byte load, a zero-extension to 16 int32, an
// AND and a shift give the q of two rows of K for the 16 columns; per (K block, column) the
// panel keeps scale and -zp * scale, so one FMA turns q into the weight:
//   w = q * scale + (-zp * scale).
// Weights stay 4-bit in memory (half of int8's bandwidth, an eighth of float's); they are
// dequantized in registers in the inner loop and never written out whole:
//   - a few rows (GEMV, a few tokens: up to 4 x the rows the ISA keeps in registers): each pair
//     of K rows is dequantized into registers and multiplied into those rows' accumulators;
//   - more rows: two panels (2 x K x 16 floats, in L1/L2) are dequantized into a per-thread
//     scratch buffer, then swept by an MR x 32 micro-kernel for every MR rows of A (one
//     broadcast of A feeds two FMAs), so the dequant costs once per panel however many rows
//     there are; an odd last panel goes through an MR x 16 one.
// Rows in registers / of the x32 / of the x16 micro-kernel: AVX-512 8 / 8 / 8 (zmm), AVX2
// 2 / 3 / 6 (two ymm a panel row), NEON 3 / 3 / 6 (four q), portable 4 / 4 / 4 (plain C++). The N
// remainder is a partial last panel (its padding columns have scale 0), stored with masks or a
// copy, so nothing outside A, bias and C is touched. K need not be a multiple of anything: an odd
// last row uses the low nibble only, and the padded rows of the last block are never read.
//
// Threads: panels are split evenly over the pool (one parallel_for per call).
//
// Results differ from "dequantize W, then float GEMM" only by float rounding (q * s - zp * s
// instead of (q - zp) * s, and the order of the sums); tests/kernels/nbits_gemm_test.cc checks
// every variant against the plain reference on awkward shapes.
//
// Usage:
//   PackedNBits w = pack_nbits(b, scales, zero_points, K, N, block_size, best_isa());  // prepare
//   nbits_gemm(M, a, K, w, bias, c, N, pool);                                            // run
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {

inline constexpr int kNBitsPanel = 16;  // columns per packed panel

// B packed for nbits_gemm (see the file comment). Immutable once packed.
struct PackedNBits {
  Isa isa = Isa::kPortable;
  int64_t k = 0, n = 0, block_size = 0, k_blocks = 0, num_panels = 0;
  int64_t pairs = 0;  // ceil(k / 2)
  // Panel p: pairs * 16 bytes from data[p * pairs * 16].
  std::vector<uint8_t> data;
  // Panel p, K block g: 16 floats from scale[(p * k_blocks + g) * 16] (and neg_zs).
  std::vector<float> scale, neg_zs;  // scale, -zero_point * scale

  const uint8_t* panel(int64_t p) const { return data.data() + p * pairs * kNBitsPanel; }
  const float* panel_scale(int64_t p) const { return scale.data() + p * k_blocks * kNBitsPanel; }
  const float* panel_neg_zs(int64_t p) const { return neg_zs.data() + p * k_blocks * kNBitsPanel; }
};

// Packs ORT's MatMulNBits B (bits = 4): b is [n][k_blocks][block_size / 2] uint8, scales is
// [n][k_blocks] float, zero_points is [n][ceil(k_blocks / 2)] uint8 (block g of column c in
// byte c * ceil(k_blocks / 2) + g / 2, low nibble when g is even) or nullptr for 8. A scale
// multiplier `alpha` is folded in (Gemm's alpha). block_size must be even and >= 2.
PackedNBits pack_nbits(const uint8_t* b, const float* scales, const uint8_t* zero_points, int64_t k,
                       int64_t n, int64_t block_size, Isa isa, float alpha = 1.0f);

// C = A · W + bias for A of m x b.k (row stride lda), C of m x b.n (row stride ldc); bias:
// b.n floats or nullptr. Splits the panels over `pool` (nullptr: the calling thread).
void nbits_gemm(int64_t m, const float* a, int64_t lda, const PackedNBits& b, const float* bias,
                float* c, int64_t ldc, ThreadPool* pool);

// The reference: W dequantized to floats, [k][n] row-major, exactly (q - zp) * scale (for the
// op's reference path and the tests). Same inputs as pack_nbits.
std::vector<float> dequantize_nbits(const uint8_t* b, const float* scales,
                                    const uint8_t* zero_points, int64_t k, int64_t n,
                                    int64_t block_size);

namespace nbits_detail {
// Computes panels [p0, p1) of C for all m rows; `scratch` holds 2 * b.k * 16 floats (any
// unaligned is fine), used when m is larger than the in-register path takes.
using PanelsFn = void (*)(const PackedNBits& b, int64_t p0, int64_t p1, int64_t m, const float* a,
                          int64_t lda, const float* bias, float* c, int64_t ldc, float* scratch);
PanelsFn panels_portable();
#if defined(__x86_64__)
PanelsFn panels_avx2();
PanelsFn panels_avx512();
#endif
#if defined(__aarch64__)
PanelsFn panels_neon();
#endif
}  // namespace nbits_detail

}  // namespace brink::kernels
