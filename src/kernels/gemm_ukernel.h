// The GEMM micro-kernels' common interface, internal to gemm*.cc. Each ISA file defines one
// getter; gemm.cc picks one by Isa and drives it (see gemm.h for the design).
#pragma once

#include <cstdint>

namespace brink::kernels::gemm_detail {

// One call computes a tile of at most MR x NR of C over one K block:
//   tile = A[rows, kc] · Bpanel[kc, NR]      (A read in place with stride lda)
//   if load_c: tile += C                     (accumulating, or a later K block)
//   if bias:   tile += bias[0..n)            (first K block only)
//   if clamp:  tile = min(max(tile, lo), hi) (last K block, Relu/Clip)
//   C[rows, n] = tile
// `b` is a packed panel: kc rows of NR floats, zero past the matrix's last column, so the
// kernel may load whole rows of it; A, bias and C are only touched within rows x n.
struct TileArgs {
  int64_t kc;
  const float* a;
  int64_t lda;
  const float* b;
  float* c;
  int64_t ldc;
  int rows;  // 1..MR
  int n;     // 1..NR
  const float* bias;
  bool load_c;
  bool clamp;
  float lo, hi;
};

using TileFn = void (*)(const TileArgs&);

struct Ukernel {
  int mr = 0;
  int nr = 0;
  TileFn tile = nullptr;
};

Ukernel ukernel_portable();
#if defined(__x86_64__)
Ukernel ukernel_avx2();
Ukernel ukernel_avx512();
#endif
#if defined(__aarch64__)
Ukernel ukernel_neon();
#endif

// For kernels without masked loads/stores: runs the full-width `full` (NR columns, rows
// 1..MR) on a stack copy of the partial tile, so no column past `n` is touched.
template <int MR, int NR, typename Full>
inline void tile_through_buffer(const TileArgs& p, Full full) {
  alignas(64) float cbuf[MR * NR];
  alignas(64) float bias_buf[NR];
  TileArgs q = p;
  q.c = cbuf;
  q.ldc = NR;
  if (p.load_c)
    for (int r = 0; r < p.rows; ++r)
      for (int j = 0; j < NR; ++j) cbuf[r * NR + j] = j < p.n ? p.c[r * p.ldc + j] : 0.0f;
  if (p.bias != nullptr) {
    for (int j = 0; j < NR; ++j) bias_buf[j] = j < p.n ? p.bias[j] : 0.0f;
    q.bias = bias_buf;
  }
  full(q);
  for (int r = 0; r < p.rows; ++r)
    for (int j = 0; j < p.n; ++j) p.c[r * p.ldc + j] = cbuf[r * NR + j];
}

}  // namespace brink::kernels::gemm_detail
