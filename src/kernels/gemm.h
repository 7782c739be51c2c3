// FP32 GEMM: C[M,N] = act(A[M,K] · B[K,N] + bias[N]) (+ C when accumulating), BLIS/XNNPACK
// style, with runtime ISA dispatch (AVX-512, AVX2+FMA, NEON, portable).
//
// B is usually constant (weights), so it is packed once (pack_b, at prepare) into panels of
// NR columns, K-major within a panel (row k of a panel is NR consecutive floats, the last panel
// zero-padded), and in blocks of at most ~512 rows of K so a panel stays in L1/L2 while the
// micro-kernel sweeps the rows of A. A is read in place (row-major with stride lda): the
// micro-kernel broadcasts one element of each of its MR rows per step of k.
//
// Micro-kernels (MR x NR, C tile held in registers across all of K):
//   AVX-512  8x32  (16 zmm accumulators)     AVX2   6x16 (12 ymm accumulators)
//   NEON     8x8   (16 q accumulators)       portable 4x8 (plain C++, auto-vectorized)
// M remainders use the same kernel with fewer rows; N remainders use AVX-512 masks or a
// small stack tile elsewhere: nothing outside A, B, bias or C is ever read or written.
// The epilogue adds the bias and C (accumulate), applies Relu/Clip in registers, and other
// activations with apply_activation on each finished block of C while it is in cache.
//
// Threads: the M x N tile grid is split into tasks (by N for small M, by M for tall-skinny
// shapes, both when needed) so that every thread of the pool gets the same amount of work;
// one gemm() call is one parallel_for.
//
// Usage:
//   PackedB w = pack_b(weights, K, N, /*ldb=*/N, /*b_transposed=*/false, best_isa());  // prepare
//   gemm(M, a, K, w, bias, c, N, act, pool);                                           // run
// or, when both operands are activations (attention's Q·Kᵀ, batched MatMul):
//   gemm_unpacked(M, N, K, q, ldq, k, ldk, /*b_transposed=*/true, nullptr, s, lds, {}, pool);
// which packs B into a thread_local buffer (no heap allocation once it has grown).
//
// Limits: float32 only; alpha/beta beyond "scale B at packing" and "accumulate into C" are
// the caller's business; C must not overlap A or B.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/cpu_features.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace brink::kernels {

// The micro-kernel tile of an ISA: MR rows of A by NR columns of B (= the panel width).
struct GemmTile {
  int mr;
  int nr;
};
GemmTile gemm_tile(Isa isa);

// B packed for one ISA's micro-kernel. Owns its storage (pack_b) or views a caller's buffer
// (pack_b_into). Movable, not copyable; immutable once packed, so any number of threads may
// read it at once.
class PackedB {
 public:
  PackedB() = default;
  PackedB(PackedB&&) noexcept = default;
  PackedB& operator=(PackedB&&) noexcept = default;

  // True for a default-constructed PackedB (nothing packed yet).
  bool empty() const { return !packed_; }
  Isa isa() const { return isa_; }
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int nr() const { return nr_; }
  int64_t num_panels() const { return num_panels_; }
  // K is cut into blocks of kc() rows (the last may be shorter).
  int64_t kc() const { return kc_; }
  int64_t num_k_blocks() const { return kc_ == 0 ? 0 : (k_ + kc_ - 1) / kc_; }
  // Panel `p` of K block `kb`: rows of NR floats, one per k of the block.
  const float* panel(int64_t kb, int64_t p) const {
    const int64_t k0 = kb * kc_;
    const int64_t rows = (k_ - k0 < kc_) ? k_ - k0 : kc_;
    return data_ + k0 * num_panels_ * nr_ + p * rows * nr_;
  }
  size_t size_floats() const { return static_cast<size_t>(k_ * num_panels_ * nr_); }

 private:
  friend PackedB packed_b_view(const float* data, int64_t k, int64_t n, Isa isa);
  friend PackedB pack_b_into(float* buffer, const float* b, int64_t k, int64_t n, int64_t ldb,
                             bool b_transposed, Isa isa, float alpha);
  friend PackedB pack_b(const float* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed,
                        Isa isa, float alpha);
  struct Free {
    Free() : bytes(0) {}
    explicit Free(size_t n) : bytes(n) {}
    size_t bytes;
    void operator()(float* p) const { free_aligned(p, bytes); }
  };
  Isa isa_ = Isa::kPortable;
  int64_t k_ = 0, n_ = 0, kc_ = 0, num_panels_ = 0;
  int nr_ = 1;
  bool packed_ = false;
  const float* data_ = nullptr;
  std::unique_ptr<float, Free> owned_;
};

// Floats a packed B of k x n takes for `isa` (what pack_b_into needs).
size_t packed_b_floats(int64_t k, int64_t n, Isa isa);

// B already packed for (k, n, isa) at `data` (what pack_b_into would have written there, e.g.
// stored in a .brink package), used in place; `data` must outlive the result.
PackedB packed_b_view(const float* data, int64_t k, int64_t n, Isa isa);
// Names the packing exactly (ISA, panel width, K block), for packages to check against.
std::string packed_b_layout(int64_t k, Isa isa);

// Packs B (k x n, row stride ldb; with b_transposed, B is given as n x k with row stride ldb,
// e.g. a Linear layer's [out, in] weight), scaled by alpha, for `isa`'s micro-kernel.
PackedB pack_b(const float* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed, Isa isa,
               float alpha = 1.0f);
// The same into `buffer` (packed_b_floats(k, n, isa) floats, 64-byte aligned), which must
// outlive the result.
PackedB pack_b_into(float* buffer, const float* b, int64_t k, int64_t n, int64_t ldb,
                    bool b_transposed, Isa isa, float alpha = 1.0f);

// C = act(A · B + bias) for A of m x b.k() (row stride lda) and C of m x b.n() (row stride
// ldc), with `b.isa()`'s micro-kernel. bias: b.n() floats or nullptr. With `accumulate`,
// C = act(C + A · B + bias). Splits the work over `pool` (nullptr: the calling thread).
void gemm(int64_t m, const float* a, int64_t lda, const PackedB& b, const float* bias, float* c,
          int64_t ldc, const Activation& act, ThreadPool* pool, bool accumulate = false);

// The same for a B that changes on every call (B as for pack_b, scaled by alpha): packs it on
// the calling thread into a thread_local buffer first (which grows and is then reused: no heap
// allocation in steady state; do not call it from inside another gemm_unpacked on the same
// thread). Costs one pass over B, small next to the product unless m is tiny.
void gemm_unpacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, bool b_transposed, const float* bias, float* c, int64_t ldc,
                   const Activation& act, ThreadPool* pool, Isa isa = best_isa(),
                   bool accumulate = false, float alpha = 1.0f);

}  // namespace brink::kernels
