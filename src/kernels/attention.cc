#include "kernels/attention.h"

#include <algorithm>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/softmax.h"

namespace brink::kernels {

namespace {

// Scores per block: 16K floats (64 KB) stay in L2 between the two GEMMs and the softmax.
constexpr int64_t kBlockFloats = 16384;

float* scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

}  // namespace

void attention_f32(const AttentionArgs& a, Isa isa, ThreadPool* pool) {
  isa = usable_isa(isa);
  int64_t batch = 1;
  for (int i = 0; i < a.batch_rank; ++i) batch *= a.batch_dims[static_cast<size_t>(i)];
  if (batch == 0 || a.sq == 0 || a.dv == 0) return;
  if (a.sk == 0) {  // an empty sum of values
    std::fill(a.y, a.y + batch * a.sq * a.dv, 0.0f);
    return;
  }
  // Rows per block: what fits kBlockFloats, then fewer if that leaves threads idle.
  const int64_t threads = pool != nullptr ? pool->num_threads() : 1;
  int64_t blocks = (a.sq + std::max<int64_t>(1, kBlockFloats / a.sk) - 1) /
                   std::max<int64_t>(1, kBlockFloats / a.sk);
  if (threads > 1) blocks = std::max(blocks, std::min(a.sq, (2 * threads + batch - 1) / batch));
  const int64_t rows = (a.sq + blocks - 1) / blocks;
  blocks = (a.sq + rows - 1) / rows;
  const Activation none;
  const BinaryRunFn scale_row = binary_run_fn(BinaryOp::kMul, BinaryMode::kVecScalar, isa);

  parallel_for(pool, batch * blocks, [&](int64_t task) {
    const int64_t b = task / blocks, r0 = (task % blocks) * rows;
    const int64_t m = std::min(rows, a.sq - r0);
    // Offsets of item b in each input: unravel b over the batch dims.
    int64_t qo = 0, ko = 0, vo = 0, mo = 0;
    for (int64_t i = a.batch_rank - 1, rest = b; i >= 0; --i) {
      const size_t u = static_cast<size_t>(i);
      const int64_t idx = rest % a.batch_dims[u];
      rest /= a.batch_dims[u];
      qo += idx * a.q_stride[u];
      ko += idx * a.k_stride[u];
      vo += idx * a.v_stride[u];
      mo += idx * a.mask_stride[u];
    }
    float* s = scratch(static_cast<size_t>(m * a.sk + m));
    float* inv = s + m * a.sk;
    if (a.d == 0) {
      std::fill(s, s + m * a.sk, 0.0f);
    } else {
      gemm_unpacked(m, a.sk, a.d, a.q + qo + r0 * a.d, a.d, a.k + ko, a.k_transposed ? a.sk : a.d,
                    !a.k_transposed, nullptr, s, a.sk, none, nullptr, isa);
    }
    for (int64_t i = 0; i < m; ++i) {
      const float* mask_row =
          a.mask != nullptr ? a.mask + mo + (r0 + i) * a.mask_row_stride : nullptr;
      inv[i] = 1.0f / softmax_row_unnormalized(s + i * a.sk, static_cast<size_t>(a.sk), a.scale,
                                               mask_row, a.mask_scalar_rows, isa);
    }
    float* y = a.y + (b * a.sq + r0) * a.dv;
    gemm_unpacked(m, a.dv, a.sk, s, a.sk, a.v + vo, a.dv, false, nullptr, y, a.dv, none, nullptr,
                  isa);
    for (int64_t i = 0; i < m; ++i)
      scale_row(y + i * a.dv, inv + i, y + i * a.dv, static_cast<size_t>(a.dv));
  });
}

}  // namespace brink::kernels
