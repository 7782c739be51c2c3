// Dispatch, broadcasting and threading for the elementwise kernels; the portable variant of
// the per-ISA loops is instantiated here too.
#define BRINK_SIMD_PORTABLE
#include "kernels/elementwise.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/elementwise_impl.h"

namespace brink::kernels {

namespace {

bool fast_default() {
  const char* env = std::getenv("BRINK_REFERENCE_KERNELS");
  return env == nullptr || std::strcmp(env, "1") != 0;
}
std::atomic<bool>& fast_flag() {
  static std::atomic<bool> flag{fast_default()};
  return flag;
}

// Splits [0, n) into tasks of at least `min_chunk` elements (a multiple of 64, so no two
// threads write one cache line): one task when the pool would not pay off, else a few per
// thread so that a thread held up elsewhere does not stall the whole loop.
int64_t num_chunks(int64_t n, int64_t min_chunk, ThreadPool* pool) {
  if (pool == nullptr || pool->num_threads() <= 1 || n < kParallelMinElements) return 1;
  const int64_t by_size = std::max<int64_t>(1, n / std::max<int64_t>(min_chunk, 64));
  return std::min<int64_t>(by_size, 4 * static_cast<int64_t>(pool->num_threads()));
}
int64_t chunk_begin(int64_t n, int64_t chunks, int64_t c) {
  if (c >= chunks) return n;
  const int64_t per = (n / chunks + 63) / 64 * 64;
  return std::min(n, c * per);
}

}  // namespace

void set_fast_kernels_enabled(bool enabled) {
  fast_flag().store(enabled);
}
bool fast_kernels_enabled() {
  return fast_flag().load();
}

void unary_f32_parallel(const Unary& u, const float* x, float* y, int64_t n, Isa isa,
                        ThreadPool* pool) {
  if (n <= 0) return;
  isa = usable_isa(isa);
  const int64_t chunks = num_chunks(n, 16384, pool);
  parallel_for(pool, chunks, [&](int64_t c) {
    const int64_t begin = chunk_begin(n, chunks, c), end = chunk_begin(n, chunks, c + 1);
    if (end > begin) unary_f32(u, x + begin, y + begin, static_cast<size_t>(end - begin), isa);
  });
}

BinaryRunFn binary_run_fn(BinaryOp op, BinaryMode mode, Isa isa) {
  BRINK_ISA_DISPATCH(usable_isa(isa), binary_run_fn, op, mode)
}

bool plan_binary_broadcast(const Shape& a, const Shape& b, const Shape& out,
                           BinaryBroadcast* plan) {
  const size_t rank = out.size();
  if (a.size() > rank || b.size() > rank) return false;
  *plan = BinaryBroadcast();
  plan->numel = shape_numel(out);
  // Merged dims, innermost last; strides in elements per operand (0 = broadcast).
  std::array<int64_t, kMaxBroadcastDims + 1> dims{}, sa{}, sb{};
  int m = 0;
  int64_t stride_a = 1, stride_b = 1;
  // Walk from the innermost dim outwards so each operand's stride is known on the way.
  std::array<int64_t, 64> fa{}, fb{};  // full strides per output dim
  if (rank > fa.size()) return false;
  for (size_t k = rank; k-- > 0;) {
    const size_t off_a = rank - a.size(), off_b = rank - b.size();
    const int64_t da = k >= off_a ? a[k - off_a] : 1;
    const int64_t db = k >= off_b ? b[k - off_b] : 1;
    if ((da != out[k] && da != 1) || (db != out[k] && db != 1)) return false;
    fa[k] = da == 1 ? 0 : stride_a;
    fb[k] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  for (size_t k = 0; k < rank; ++k) {
    if (out[k] == 1) continue;
    // Merge into the previous (outer) dim when both operands are contiguous across them.
    if (m > 0 && sa[m - 1] == fa[k] * out[k] && sb[m - 1] == fb[k] * out[k]) {
      dims[m - 1] *= out[k];
      sa[m - 1] = fa[k];
      sb[m - 1] = fb[k];
      continue;
    }
    if (m == kMaxBroadcastDims + 1) return false;
    dims[m] = out[k];
    sa[m] = fa[k];
    sb[m] = fb[k];
    ++m;
  }
  if (m > 0) {
    plan->inner = dims[m - 1];
    plan->a_steps = sa[m - 1] != 0;
    plan->b_steps = sb[m - 1] != 0;
    --m;
  }
  plan->outer_rank = m;
  for (int k = 0; k < m; ++k) {
    plan->outer[k] = dims[k];
    plan->a_stride[k] = sa[k];
    plan->b_stride[k] = sb[k];
  }
  return true;
}

void binary_broadcast_f32(BinaryOp op, const BinaryBroadcast& plan, const float* a, const float* b,
                          float* y, Isa isa, ThreadPool* pool) {
  if (plan.numel == 0) return;
  BinaryMode mode = BinaryMode::kVecVec;
  if (!plan.a_steps && !plan.b_steps) {
    mode = BinaryMode::kVecScalar;  // one value against one value: a run of length 1
  } else if (!plan.b_steps) {
    mode = BinaryMode::kVecScalar;
  } else if (!plan.a_steps) {
    mode = BinaryMode::kScalarVec;
  }
  const BinaryRunFn run = binary_run_fn(op, mode, isa);
  const int64_t inner = plan.inner;
  const bool both_fixed = !plan.a_steps && !plan.b_steps;

  // Output range [begin, end): its first run is found by unravelling begin / inner over the
  // outer dims, later runs by an odometer step.
  auto do_range = [&](int64_t begin, int64_t end) {
    std::array<int64_t, kMaxBroadcastDims> idx{};
    int64_t run_index = begin / inner, within = begin % inner;
    int64_t off_a = 0, off_b = 0;
    for (int k = plan.outer_rank; k-- > 0;) {
      idx[k] = run_index % plan.outer[k];
      run_index /= plan.outer[k];
      off_a += idx[k] * plan.a_stride[k];
      off_b += idx[k] * plan.b_stride[k];
    }
    while (begin < end) {
      const int64_t len = std::min(inner - within, end - begin);
      const float* pa = a + off_a + (plan.a_steps ? within : 0);
      const float* pb = b + off_b + (plan.b_steps ? within : 0);
      if (both_fixed) {
        float v;
        run(pa, pb, &v, 1);
        std::fill(y + begin, y + begin + len, v);
      } else {
        run(pa, pb, y + begin, static_cast<size_t>(len));
      }
      begin += len;
      within = 0;
      for (int k = plan.outer_rank; k-- > 0;) {
        off_a += plan.a_stride[k];
        off_b += plan.b_stride[k];
        if (++idx[k] < plan.outer[k]) break;
        off_a -= idx[k] * plan.a_stride[k];
        off_b -= idx[k] * plan.b_stride[k];
        idx[k] = 0;
      }
    }
  };
  const int64_t chunks = num_chunks(plan.numel, 16384, pool);
  parallel_for(pool, chunks, [&](int64_t c) {
    const int64_t begin = chunk_begin(plan.numel, chunks, c);
    const int64_t end = chunk_begin(plan.numel, chunks, c + 1);
    if (end > begin) do_range(begin, end);
  });
}

namespace {
float sum_dispatch(const float* x, size_t n, Isa isa) {
  BRINK_ISA_DISPATCH(isa, sum_f32, x, n)
}
void add_to_dispatch(const float* x, float* acc, size_t n, Isa isa) {
  BRINK_ISA_DISPATCH(isa, add_to_f32, x, acc, n)
}
}  // namespace

void reduce_rows_f32(const float* x, float* y, int64_t rows, int64_t n, float divisor, Isa isa,
                     ThreadPool* pool) {
  isa = usable_isa(isa);
  const int64_t tasks = std::min(rows, num_chunks(rows * n, 16384, pool));
  parallel_for(pool, tasks, [&](int64_t t) {
    const int64_t r0 = rows * t / tasks, r1 = rows * (t + 1) / tasks;
    for (int64_t r = r0; r < r1; ++r)
      y[r] = sum_dispatch(x + r * n, static_cast<size_t>(n), isa) / divisor;
  });
}

void reduce_cols_f32(const float* x, float* y, int64_t outer, int64_t n, int64_t inner,
                     float divisor, Isa isa, ThreadPool* pool) {
  isa = usable_isa(isa);
  // Tasks own whole output rows (o) or, with a single o, column blocks of 256.
  const int64_t col_blocks = outer == 1 ? (inner + 255) / 256 : 1;
  const int64_t units = outer * col_blocks;
  const int64_t tasks = std::min(units, num_chunks(outer * n * inner, 16384, pool));
  parallel_for(pool, tasks, [&](int64_t t) {
    for (int64_t u = units * t / tasks; u < units * (t + 1) / tasks; ++u) {
      const int64_t o = u / col_blocks, cb = u % col_blocks;
      const int64_t k0 = col_blocks == 1 ? 0 : cb * 256;
      const int64_t k1 = col_blocks == 1 ? inner : std::min(inner, k0 + 256);
      float* acc = y + o * inner + k0;
      const float* base = x + o * n * inner + k0;
      const size_t w = static_cast<size_t>(k1 - k0);
      std::fill(acc, acc + w, 0.0f);
      for (int64_t j = 0; j < n; ++j) add_to_dispatch(base + j * inner, acc, w, isa);
      for (size_t k = 0; k < w; ++k) acc[k] /= divisor;
    }
  });
}

}  // namespace brink::kernels
