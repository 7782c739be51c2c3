// GEMM driver (packing, task split, K blocking, epilogue) and the portable micro-kernel.
// The ISA micro-kernels live in gemm_avx512.cc, gemm_avx2.cc and gemm_neon.cc.
#include "kernels/gemm.h"

#include <algorithm>
#include <cstring>

#include "core/memory.h"
#include "kernels/gemm_ukernel.h"

namespace brink::kernels {

namespace gemm_detail {
namespace {

// Portable micro-kernel: 4 x 8, written so that g++ vectorizes the j loops (SSE2 on baseline
// x86-64, NEON on aarch64) and keeps the 4 x 8 accumulator in registers.
constexpr int kPortableMr = 4;
constexpr int kPortableNr = 8;

template <int MR>
void portable_full(const TileArgs& p) {
  constexpr int NR = kPortableNr;
  float acc[MR][NR] = {};
  const float* b = p.b;
  for (int64_t k = 0; k < p.kc; ++k, b += NR) {
    for (int r = 0; r < MR; ++r) {
      const float av = p.a[r * p.lda + k];
      for (int j = 0; j < NR; ++j) acc[r][j] += av * b[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* c = p.c + r * p.ldc;
    for (int j = 0; j < NR; ++j) {
      float v = acc[r][j];
      if (p.load_c) v += c[j];
      if (p.bias != nullptr) v += p.bias[j];
      if (p.clamp) v = std::min(std::max(v, p.lo), p.hi);
      c[j] = v;
    }
  }
}

template <int MR>
void portable_tile_rows(const TileArgs& p) {
  if (p.n == kPortableNr)
    portable_full<MR>(p);
  else
    tile_through_buffer<MR, kPortableNr>(p, portable_full<MR>);
}

void portable_tile(const TileArgs& p) {
  switch (p.rows) {
    case 1:
      return portable_tile_rows<1>(p);
    case 2:
      return portable_tile_rows<2>(p);
    case 3:
      return portable_tile_rows<3>(p);
    default:
      return portable_tile_rows<4>(p);
  }
}

}  // namespace

Ukernel ukernel_portable() {
  return {kPortableMr, kPortableNr, portable_tile};
}

}  // namespace gemm_detail

namespace {

using gemm_detail::TileArgs;
using gemm_detail::Ukernel;

// The micro-kernel for `isa`, or the fallback one when this CPU (or build) cannot run it.
Ukernel ukernel_for(Isa isa) {
  isa = usable_isa(isa);
  switch (isa) {
#if BRINK_BUILD_AVX512
    case Isa::kAvx512:
      return gemm_detail::ukernel_avx512();
#endif
#if BRINK_BUILD_AVX2
    case Isa::kAvx2:
      return gemm_detail::ukernel_avx2();
#endif
#if BRINK_BUILD_NEON
    case Isa::kNeon:
      return gemm_detail::ukernel_neon();
#endif
    default:
      break;
  }
  BRINK_RETURN_PORTABLE(gemm_detail::ukernel_portable());
}

// K block length: all of K up to kMaxKc, else equal blocks of at most kMaxKc (a multiple of
// 4). A block's panel (kc x NR floats, 48 KiB for 384 x 32) stays in L1/L2 while every row
// tile of the task streams past it.
constexpr int64_t kMaxKc = 384;
int64_t choose_kc(int64_t k) {
  if (k <= kMaxKc) return k;
  const int64_t blocks = (k + kMaxKc - 1) / kMaxKc;
  const int64_t kc = (k + blocks - 1) / blocks;
  return (kc + 3) / 4 * 4;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// How the M x N tile grid is cut into tasks: row tiles (of MR rows) and panels per task.
struct Split {
  int64_t tiles_per_task;   // row tiles
  int64_t panels_per_task;  // NR-column panels
  int64_t m_tasks, n_tasks;
};

// Rows of A per task are capped so that a task's A block (rows x kc floats) stays in L2
// while the task walks its panels. With several threads, the split minimizes an estimate of
// the slowest thread's time: its multiply-adds, plus the A and B it loads (which grow with
// the number of cuts), plus a fixed cost per task; padding (partial tiles) counts as work.
Split plan_split(int64_t m, int64_t k, int64_t kc, int64_t panels, int mr, int nr, int threads) {
  constexpr int64_t kL2Floats = 256 * 1024 / 4;  // A block budget per task
  const int64_t row_tiles = ceil_div(m, mr);
  const int64_t max_tiles = std::max<int64_t>(1, kL2Floats / std::max<int64_t>(kc, 1) / mr);
  auto make = [&](int64_t tm, int64_t tn) {
    Split s;
    s.tiles_per_task = std::min(ceil_div(row_tiles, tm), max_tiles);
    s.panels_per_task = ceil_div(panels, tn);
    s.m_tasks = ceil_div(row_tiles, s.tiles_per_task);
    s.n_tasks = ceil_div(panels, s.panels_per_task);
    return s;
  };
  if (threads <= 1) return make(1, 1);
  constexpr double kLoadCost = 2.0;      // per float of A or B a task reads, in FMA lanes
  constexpr double kTaskCost = 20000.0;  // claiming a task, filling caches, in FMA lanes
  Split best = make(1, 1);
  double best_cost = -1.0;
  const int64_t max_tm = std::min<int64_t>(row_tiles, 8 * threads);
  const int64_t max_tn = std::min<int64_t>(panels, 8 * threads);
  for (int64_t tm = 1; tm <= max_tm; ++tm) {
    for (int64_t tn = 1; tn <= max_tn; ++tn) {
      const Split s = make(tm, tn);
      const int64_t tasks = s.m_tasks * s.n_tasks;
      const double rows = static_cast<double>(std::min(m, s.tiles_per_task * mr));
      const double cols = static_cast<double>(s.panels_per_task * nr);
      const double task = rows * cols * static_cast<double>(k) +
                          kLoadCost * static_cast<double>(k) * (rows + cols) + kTaskCost;
      const double waves = static_cast<double>(ceil_div(tasks, threads));
      const double cost = waves * task;
      if (best_cost < 0 || cost < best_cost * 0.999) {
        best = s;
        best_cost = cost;
      }
    }
  }
  return best;
}

// C = act(bias (+ C)) when K is 0.
void gemm_k0(int64_t m, int64_t n, const float* bias, float* c, int64_t ldc, const Activation& act,
             bool accumulate, Isa isa) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < n; ++j)
      row[j] = (accumulate ? row[j] : 0.0f) + (bias != nullptr ? bias[j] : 0.0f);
    apply_activation(act, row, static_cast<size_t>(n), isa);
  }
}

// Grows (never shrinks) a 64-byte aligned per-thread buffer: no allocation once warm.
float* thread_scratch(size_t floats) {
  struct Buffer {
    float* data = nullptr;
    size_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (buf.capacity < floats) {
    std::free(buf.data);
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buf.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    buf.capacity = floats;
  }
  return buf.data;
}

}  // namespace

GemmTile gemm_tile(Isa isa) {
  const Ukernel uk = ukernel_for(isa);
  return {uk.mr, uk.nr};
}

size_t packed_b_floats(int64_t k, int64_t n, Isa isa) {
  const int nr = ukernel_for(isa).nr;
  return static_cast<size_t>(k * ceil_div(n, nr) * nr);
}

std::string packed_b_layout(int64_t k, Isa isa) {
  const Isa e = usable_isa(isa);
  return std::string("gemm-b-f32-v1/") + isa_name(e) + "/nr" + std::to_string(ukernel_for(e).nr) +
         "/kc" + std::to_string(choose_kc(k));
}

PackedB packed_b_view(const float* data, int64_t k, int64_t n, Isa isa) {
  PackedB p;
  p.isa_ = usable_isa(isa);
  p.nr_ = ukernel_for(p.isa_).nr;
  p.k_ = k;
  p.n_ = n;
  p.kc_ = choose_kc(k);
  p.num_panels_ = ceil_div(n, p.nr_);
  p.data_ = data;
  p.packed_ = true;
  return p;
}

PackedB pack_b_into(float* buffer, const float* b, int64_t k, int64_t n, int64_t ldb,
                    bool b_transposed, Isa isa, float alpha) {
  PackedB p = packed_b_view(buffer, k, n, isa);
  const int64_t nr = p.nr_;
  for (int64_t kb = 0; kb < p.num_k_blocks(); ++kb) {
    const int64_t k0 = kb * p.kc_;
    const int64_t kl = std::min(p.kc_, k - k0);
    for (int64_t pi = 0; pi < p.num_panels_; ++pi) {
      float* dst = const_cast<float*>(p.panel(kb, pi));
      const int64_t j0 = pi * nr;
      const int64_t cols = std::min(nr, n - j0);
      if (!b_transposed) {
        for (int64_t kk = 0; kk < kl; ++kk) {
          const float* src = b + (k0 + kk) * ldb + j0;
          float* d = dst + kk * nr;
          for (int64_t j = 0; j < cols; ++j) d[j] = alpha * src[j];
          for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
        }
      } else {
        for (int64_t j = 0; j < cols; ++j) {
          const float* src = b + (j0 + j) * ldb + k0;
          for (int64_t kk = 0; kk < kl; ++kk) dst[kk * nr + j] = alpha * src[kk];
        }
        for (int64_t kk = 0; kk < kl; ++kk)
          for (int64_t j = cols; j < nr; ++j) dst[kk * nr + j] = 0.0f;
      }
    }
  }
  return p;
}

PackedB pack_b(const float* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed, Isa isa,
               float alpha) {
  const size_t floats = packed_b_floats(k, n, isa);
  const size_t bytes = std::max<size_t>(64, (floats * sizeof(float) + 63) / 64 * 64);
  std::unique_ptr<float, PackedB::Free> storage(static_cast<float*>(allocate_aligned(bytes)),
                                                PackedB::Free(bytes));
  PackedB p = pack_b_into(storage.get(), b, k, n, ldb, b_transposed, isa, alpha);
  p.owned_ = std::move(storage);
  return p;
}

void gemm(int64_t m, const float* a, int64_t lda, const PackedB& b, const float* bias, float* c,
          int64_t ldc, const Activation& act, ThreadPool* pool, bool accumulate) {
  const int64_t n = b.n(), k = b.k();
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    gemm_k0(m, n, bias, c, ldc, act, accumulate, b.isa());
    return;
  }
  const Ukernel uk = ukernel_for(b.isa());
  const int mr = uk.mr, nr = uk.nr;
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  const Split s = plan_split(m, k, b.kc(), b.num_panels(), mr, nr, threads);
  const int64_t kblocks = b.num_k_blocks();
  const bool clamp = act.is_clamp();
  const bool post_act = !act.none() && !clamp;
  const float lo = clamp ? act.clamp_min() : 0.0f, hi = clamp ? act.clamp_max() : 0.0f;

  parallel_for(pool, s.m_tasks * s.n_tasks, [&](int64_t task) {
    const int64_t ti = task / s.n_tasks, tj = task % s.n_tasks;
    const int64_t i0 = ti * s.tiles_per_task * mr;
    const int64_t i1 = std::min(m, i0 + s.tiles_per_task * mr);
    const int64_t p0 = tj * s.panels_per_task;
    const int64_t p1 = std::min(b.num_panels(), p0 + s.panels_per_task);
    TileArgs t;
    t.lda = lda;
    t.ldc = ldc;
    t.lo = lo;
    t.hi = hi;
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const int64_t k0 = kb * b.kc();
      t.kc = std::min(b.kc(), k - k0);
      const bool first = kb == 0, last = kb == kblocks - 1;
      t.load_c = accumulate || !first;
      t.clamp = clamp && last;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t j0 = p * nr;
        t.b = b.panel(kb, p);
        t.n = static_cast<int>(std::min<int64_t>(nr, n - j0));
        t.bias = (first && bias != nullptr) ? bias + j0 : nullptr;
        for (int64_t i = i0; i < i1; i += mr) {
          t.rows = static_cast<int>(std::min<int64_t>(mr, i1 - i));
          t.a = a + i * lda + k0;
          t.c = c + i * ldc + j0;
          uk.tile(t);
        }
      }
    }
    if (post_act) {
      const int64_t j0 = p0 * nr, cols = std::min(n, p1 * nr) - j0;
      for (int64_t i = i0; i < i1; ++i)
        apply_activation(act, c + i * ldc + j0, static_cast<size_t>(cols), b.isa());
    }
  });
}

void gemm_unpacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, bool b_transposed, const float* bias, float* c, int64_t ldc,
                   const Activation& act, ThreadPool* pool, Isa isa, bool accumulate, float alpha) {
  if (m <= 0 || n <= 0) return;
  float* buffer = thread_scratch(packed_b_floats(k, n, isa));
  const PackedB packed = pack_b_into(buffer, b, k, n, ldb, b_transposed, isa, alpha);
  gemm(m, a, lda, packed, bias, c, ldc, act, pool, accumulate);
}

}  // namespace brink::kernels
