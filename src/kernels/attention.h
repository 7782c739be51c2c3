// Fast float32 scaled dot-product attention (brink.Attention, docs/INTERNAL_OPS.md):
//   Y[b] = softmax(scale * Q[b] K[b]^T + mask[b]) V[b]
// for every item b of the broadcast batch dims, softmax over the keys.
//
// Work is split into tasks of (batch item, block of query rows); a task computes its block of
// scores with the GEMM (gemm_unpacked, kernels/gemm.h), turns each row into exp(t - max) in
// place with the mask added on the way (softmax_row_unnormalized), multiplies by V with the
// GEMM and divides each output row by its sum. The only [Sq, Sk]-like buffer is one block of
// rows (at most ~64 KB, or one row when Sk is larger), from a thread_local scratch that stops
// growing after the first run. Threads take tasks from the pool; each GEMM runs single-threaded
// inside its task (no nested parallelism).
//
// Output must not overlap the inputs.
#pragma once

#include <array>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {

constexpr int kMaxAttentionBatchDims = 8;

struct AttentionArgs {
  int64_t sq = 0, sk = 0, d = 0, dv = 0;
  // False: K is [Sk, D] per item; true: K is [D, Sk].
  bool k_transposed = false;
  float scale = 1.0f;
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* mask = nullptr;  // optional
  float* y = nullptr;           // [batch..., Sq, Dv], contiguous
  // The output's batch dims, and each input's element stride along them (0 where the input
  // broadcasts).
  int batch_rank = 0;
  std::array<int64_t, kMaxAttentionBatchDims> batch_dims{};
  std::array<int64_t, kMaxAttentionBatchDims> q_stride{}, k_stride{}, v_stride{}, mask_stride{};
  // Within one item the mask is [Sq or 1, Sk or 1]: mask_row_stride is Sk or 0 (one row for
  // every query), mask_scalar_rows says the row is a single value.
  int64_t mask_row_stride = 0;
  bool mask_scalar_rows = false;
};

void attention_f32(const AttentionArgs& args, Isa isa, ThreadPool* pool);

}  // namespace brink::kernels
