// INT8 GEMM driver (QIsa dispatch, packing, task split, the epilogue's per-panel constants)
// and the portable micro-kernel. The ISA micro-kernels live in qgemm_avx2.cc,
// qgemm_avx512.cc, qgemm_avx512vnni.cc and qgemm_neon.cc (see qgemm.h for the design).
#include "kernels/qgemm.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/cpu_features.h"
#include "core/memory.h"
#include "kernels/qgemm_ukernel.h"

namespace brink::kernels {

namespace qgemm_detail {
namespace {

// Portable micro-kernel: MR x 8, exact int32 in plain C++ (g++ vectorizes the j loops).
constexpr int kPortableMr = 4;
constexpr int kPortableNr = 8;

template <int MR>
void portable_tile(const QTileArgs& p) {
  constexpr int NR = kPortableNr;
  int32_t acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = p.offset[j];
  const int8_t* w = p.w;
  const size_t groups = p.kc / 4, rem = p.kc % 4;
  const uint8_t* const* ap = p.a;
  for (size_t t = 0; t < p.ks; ++t, ap += MR) {
    for (size_t g = 0; g <= groups; ++g) {
      if (g == groups && rem == 0) break;
      uint8_t av[MR][4];
      for (int i = 0; i < MR; ++i) {
        const uint32_t v = g < groups ? load_u32(ap[i] + 4 * g) : load_tail(ap[i] + 4 * g, rem);
        for (int b = 0; b < 4; ++b) av[i][b] = static_cast<uint8_t>(v >> (8 * b));
      }
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j)
          for (int b = 0; b < 4; ++b)
            acc[i][j] += static_cast<int32_t>(av[i][b]) * static_cast<int32_t>(w[j * 4 + b]);
      w += 4 * NR;
    }
  }
  for (int i = 0; i < MR; ++i) {
    if (p.f32) {
      float* y = static_cast<float*>(p.y) + i * p.y_stride;
      for (int j = 0; j < p.n; ++j) {
        const float v = static_cast<float>(acc[i][j]) * p.scale[j];
        y[j] = p.fbias != nullptr ? add_float_bias(v, p.fbias[j]) : v;
      }
    } else {
      uint8_t* y = static_cast<uint8_t*>(p.y) + i * p.y_stride;
      for (int j = 0; j < p.n; ++j) y[j] = requantize(acc[i][j], p.scale[j], p.zp, p.min, p.max);
    }
  }
}

QUkernel make_portable() {
  QUkernel uk;
  uk.mr = kPortableMr;
  uk.nr = kPortableNr;
  uk.a_bias = 0;
  uk.tile[1] = uk.exact[1] = portable_tile<1>;
  uk.tile[2] = uk.exact[2] = portable_tile<2>;
  uk.tile[3] = uk.exact[3] = portable_tile<3>;
  uk.tile[4] = uk.exact[4] = portable_tile<4>;
  return uk;
}

}  // namespace

const QUkernel* qukernel_portable() {
  static const QUkernel uk = make_portable();
  return &uk;
}

}  // namespace qgemm_detail

using qgemm_detail::QTileArgs;
using qgemm_detail::QUkernel;

namespace {

bool qisa_built(QIsa isa) {
  switch (isa) {
    case QIsa::kPortable:
      return BRINK_BUILD_PORTABLE;
    case QIsa::kAvx2:
      return BRINK_BUILD_AVX2;
    case QIsa::kAvx512:
      return BRINK_BUILD_AVX512;
    case QIsa::kAvx512Vnni:
      return BRINK_BUILD_AVX512VNNI;
    case QIsa::kNeon:
    case QIsa::kNeonDot:
      return BRINK_BUILD_NEON;
  }
  return false;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// How the M x N tile grid is cut into tasks (gemm.cc's model, in int8 multiply-adds).
struct Split {
  int64_t tiles_per_task;
  int64_t panels_per_task;
  int64_t m_tasks, n_tasks;
};

Split plan_split(int64_t m, int64_t k, int64_t panels, int mr, int nr, int threads) {
  constexpr int64_t kL2Bytes = 256 * 1024;  // A block budget per task
  const int64_t row_tiles = ceil_div(m, mr);
  const int64_t max_tiles = std::max<int64_t>(1, kL2Bytes / std::max<int64_t>(k, 1) / mr);
  auto make = [&](int64_t tm, int64_t tn) {
    Split s;
    s.tiles_per_task = std::min(ceil_div(row_tiles, tm), max_tiles);
    s.panels_per_task = ceil_div(panels, tn);
    s.m_tasks = ceil_div(row_tiles, s.tiles_per_task);
    s.n_tasks = ceil_div(panels, s.panels_per_task);
    return s;
  };
  if (threads <= 1) return make(1, 1);
  constexpr double kLoadCost = 2.0;      // per byte of A or B a task reads
  constexpr double kTaskCost = 80000.0;  // claiming a task, filling caches
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
      const double cost = static_cast<double>(ceil_div(tasks, threads)) * task;
      if (best_cost < 0 || cost < best_cost * 0.999) {
        best = s;
        best_cost = cost;
      }
    }
  }
  return best;
}

void qgemm_impl(int64_t m, const uint8_t* a, int64_t lda, uint8_t a_zero, const PackedQB& b,
                const int32_t* bias, const QuantOutput& out, void* y, int64_t ldy, bool f32,
                ThreadPool* pool) {
  const int64_t n = b.n(), k = b.k();
  if (m <= 0 || n <= 0 || b.empty()) return;
  const QUkernel* uk = qgemm_detail::qukernel_for(b.isa());
  const int mr = uk->mr, nr = uk->nr;
  const qgemm_detail::QTileFn* fns = b.exact() ? uk->exact : uk->tile;
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  const Split s = plan_split(m, k, b.num_panels(), mr, nr, threads);
  const uint32_t zero_diff = static_cast<uint32_t>(static_cast<int32_t>(a_zero) - uk->a_bias);
  const size_t elem = f32 ? sizeof(float) : sizeof(uint8_t);

  parallel_for(pool, s.m_tasks * s.n_tasks, [&](int64_t task) {
    const int64_t ti = task / s.n_tasks, tj = task % s.n_tasks;
    const int64_t i0 = ti * s.tiles_per_task * mr;
    const int64_t i1 = std::min(m, i0 + s.tiles_per_task * mr);
    const int64_t p0 = tj * s.panels_per_task;
    const int64_t p1 = std::min(b.num_panels(), p0 + s.panels_per_task);
    alignas(64) int32_t offset[64];
    alignas(64) float scale[64];
    alignas(64) float fbias[64];
    const uint8_t* rows[qgemm_detail::kMaxMr];
    QTileArgs t;
    t.ks = 1;
    t.kc = static_cast<size_t>(k);
    t.offset = offset;
    t.scale = scale;
    t.fbias = f32 && out.float_bias != nullptr ? fbias : nullptr;
    t.y_stride = static_cast<size_t>(ldy);
    t.f32 = f32;
    t.zp = out.zero_point;
    t.min = out.min;
    t.max = out.max;
    t.a = rows;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t j0 = p * nr;
      const int cols = static_cast<int>(std::min<int64_t>(nr, n - j0));
      const int32_t* colsum = b.column_sums() + j0;
      for (int j = 0; j < nr; ++j) {
        // offset = bias - (a_zero - a_bias) * colsum, in wrapping int32 arithmetic.
        const uint32_t bj = (j < cols && bias != nullptr) ? static_cast<uint32_t>(bias[j0 + j]) : 0;
        offset[j] = static_cast<int32_t>(bj - zero_diff * static_cast<uint32_t>(colsum[j]));
        scale[j] = j < cols ? out.scale[out.per_channel ? j0 + j : 0] : 0.0f;
        if (t.fbias != nullptr) fbias[j] = j < cols ? out.float_bias[j0 + j] : 0.0f;
      }
      t.w = b.panel(p);
      t.n = cols;
      for (int64_t i = i0; i < i1; i += mr) {
        const int r = static_cast<int>(std::min<int64_t>(mr, i1 - i));
        for (int q = 0; q < r; ++q) rows[q] = a + (i + q) * lda;
        t.y = static_cast<char*>(y) + static_cast<size_t>(i * ldy + j0) * elem;
        fns[r](t);
      }
    }
  });
}

}  // namespace

namespace qgemm_detail {

const QUkernel* qukernel_for(QIsa isa) {
  switch (effective_qisa(isa)) {
#if BRINK_BUILD_AVX2
    case QIsa::kAvx2:
      return qukernel_avx2();
#endif
#if BRINK_BUILD_AVX512
    case QIsa::kAvx512:
      return qukernel_avx512();
#endif
#if BRINK_BUILD_AVX512VNNI
    case QIsa::kAvx512Vnni:
      return qukernel_avx512vnni();
#endif
#if BRINK_BUILD_NEON
    case QIsa::kNeon:
      return qukernel_neon();
    case QIsa::kNeonDot:
      return qukernel_neondot();
#endif
    default:
      break;
  }
  BRINK_RETURN_PORTABLE(qukernel_portable());
}

// `isa` when supported, else portable, or without portable kernels the best supported one.
QIsa effective_qisa(QIsa isa) {
  if (qisa_supported(isa)) return isa;
  return BRINK_BUILD_PORTABLE ? QIsa::kPortable : best_qisa();
}

}  // namespace qgemm_detail

bool qisa_supported(QIsa isa) {
  if (!qisa_built(isa)) return false;
  switch (isa) {
    case QIsa::kPortable:
      return true;
    case QIsa::kAvx2:
      return isa_supported(Isa::kAvx2);
    case QIsa::kAvx512:
      return isa_supported(Isa::kAvx512);
    case QIsa::kAvx512Vnni:
      return isa_supported(Isa::kAvx512) && cpu_features().avx512vnni;
    case QIsa::kNeon:
      return isa_supported(Isa::kNeon);
    case QIsa::kNeonDot:
      return isa_supported(Isa::kNeon) && cpu_features().neon_dotprod;
  }
  return false;
}

QIsa best_qisa() {
  switch (best_isa()) {
    case Isa::kPortable:
      return QIsa::kPortable;
    case Isa::kAvx2:
      return qisa_supported(QIsa::kAvx2) ? QIsa::kAvx2 : QIsa::kPortable;
    case Isa::kAvx512:
      if (qisa_supported(QIsa::kAvx512Vnni)) return QIsa::kAvx512Vnni;
      return qisa_supported(QIsa::kAvx512) ? QIsa::kAvx512 : QIsa::kPortable;
    case Isa::kNeon:
      if (qisa_supported(QIsa::kNeonDot)) return QIsa::kNeonDot;
      return qisa_supported(QIsa::kNeon) ? QIsa::kNeon : QIsa::kPortable;
  }
  return QIsa::kPortable;
}

std::vector<QIsa> supported_qisas() {
  std::vector<QIsa> out;
  for (QIsa isa : {QIsa::kPortable, QIsa::kNeon, QIsa::kNeonDot, QIsa::kAvx2, QIsa::kAvx512,
                   QIsa::kAvx512Vnni})
    if (qisa_supported(isa)) out.push_back(isa);
  return out;
}

QIsa qisa_for(Isa isa) {
  switch (isa) {
    case Isa::kPortable:
      return QIsa::kPortable;
    case Isa::kAvx2:
      return QIsa::kAvx2;
    case Isa::kAvx512:
    case Isa::kNeon:
      break;
  }
  return best_qisa();
}

const char* qisa_name(QIsa isa) {
  switch (isa) {
    case QIsa::kPortable:
      return "portable";
    case QIsa::kAvx2:
      return "avx2";
    case QIsa::kAvx512:
      return "avx512";
    case QIsa::kAvx512Vnni:
      return "avx512vnni";
    case QIsa::kNeon:
      return "neon";
    case QIsa::kNeonDot:
      return "neondot";
  }
  return "unknown";
}

QGemmTile qgemm_tile(QIsa isa) {
  const QUkernel* uk = qgemm_detail::qukernel_for(isa);
  return {uk->mr, uk->nr};
}

// True when some pair of rows (2i, 2i+1) of one column could saturate vpmaddubsw's int16 sum
// (|b0| + |b1| > 128): the kernels must then take the exact path.
bool qgemm_detail::pair_could_saturate(int32_t b0, int32_t b1) {
  return std::abs(b0) + std::abs(b1) > 128;
}

void qgemm_detail::pack_panel(const int8_t* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed,
                              int64_t j0, int nr, int64_t k4, int8_t* dst, int32_t* colsum,
                              bool* exact) {
  const int64_t cols = std::min<int64_t>(nr, n - j0);
  std::memset(dst, 0, static_cast<size_t>(k4 * nr));
  for (int64_t j = 0; j < cols; ++j) {
    int32_t sum = 0;
    int32_t prev = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int8_t v = b_transposed ? b[(j0 + j) * ldb + kk] : b[kk * ldb + j0 + j];
      dst[(kk / 4) * nr * 4 + j * 4 + kk % 4] = v;
      sum += v;
      if (kk % 2 == 1 && pair_could_saturate(prev, v)) *exact = true;
      prev = v;
    }
    colsum[j] = sum;
  }
  for (int64_t j = cols; j < nr; ++j) colsum[j] = 0;
}

namespace {

// The blob's header (its first 64 bytes).
struct QbHeader {
  uint32_t magic;    // kQbMagic
  uint32_t version;  // kQbVersion
  uint32_t exact;    // 1: some pair of B could saturate vpmaddubsw
  uint32_t nr;
  int64_t k, n;
};
static_assert(sizeof(QbHeader) <= 64);
constexpr uint32_t kQbMagic = 0x42515142;  // "BQQB"
constexpr uint32_t kQbVersion = 1;
constexpr size_t kQbHeaderBytes = 64;

size_t round64(size_t n) {
  return (n + 63) / 64 * 64;
}

}  // namespace

PackedQB PackedQB::layout_for(int64_t k, int64_t n, QIsa isa) {
  PackedQB p;
  p.isa_ = qgemm_detail::effective_qisa(isa);
  const QUkernel* uk = qgemm_detail::qukernel_for(p.isa_);
  p.nr_ = uk->nr;
  p.k_ = k;
  p.n_ = n;
  p.num_panels_ = ceil_div(n, p.nr_);
  p.panel_bytes_ =
      std::max<size_t>(64, round64(static_cast<size_t>(p.k4() * p.num_panels_ * p.nr_)));
  p.bytes_ = kQbHeaderBytes + p.panel_bytes_ +
             round64(static_cast<size_t>(p.num_panels_ * p.nr_) * sizeof(int32_t));
  return p;
}

std::string PackedQB::packed_layout() const {
  return "qgemm-b-v" + std::to_string(kQbVersion) + "/" + qisa_name(isa_) + "/nr" +
         std::to_string(nr_) + "/k" + std::to_string(k_) + "n" + std::to_string(n_);
}

PackedQB pack_qb(const int8_t* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed, QIsa isa) {
  if (k < 0 || n < 0) return PackedQB();  // empty: qgemm does nothing with it
  PackedQB p = PackedQB::layout_for(k, n, isa);
  const size_t bytes = p.bytes_;
  auto* blob = static_cast<uint8_t*>(allocate_aligned(bytes));
  std::memset(blob, 0, bytes);
  p.blob_ = std::shared_ptr<const uint8_t>(
      blob, [bytes](const uint8_t* q) { free_aligned(const_cast<uint8_t*>(q), bytes); });
  auto* data = reinterpret_cast<int8_t*>(blob + kQbHeaderBytes);
  auto* colsum = reinterpret_cast<int32_t*>(blob + kQbHeaderBytes + p.panel_bytes_);
  const int64_t k4 = p.k4();
  bool exact = false;
  for (int64_t pi = 0; pi < p.num_panels_; ++pi)
    qgemm_detail::pack_panel(b, k, n, ldb, b_transposed, pi * p.nr_, p.nr_, k4,
                             data + pi * k4 * p.nr_, colsum + pi * p.nr_, &exact);
  const QbHeader h{kQbMagic, kQbVersion, exact ? 1u : 0u, static_cast<uint32_t>(p.nr_), k, n};
  std::memcpy(blob, &h, sizeof h);
  p.data_ = data;
  p.colsum_ = colsum;
  p.exact_ = exact;
  p.packed_ = true;
  return p;
}

Result<PackedQB> adopt_qb(const std::string& layout, const void* blob, size_t bytes,
                          std::shared_ptr<const void> owner, int64_t k, int64_t n, QIsa isa) {
  if (k < 0 || n < 0) return invalid_argument("qgemm: negative K or N");
  PackedQB p = PackedQB::layout_for(k, n, isa);
  if (layout != p.packed_layout() || bytes != p.bytes_)
    return unsupported("qgemm: packed weights in layout " + layout + " (" + std::to_string(bytes) +
                       " bytes), this build packs " + p.packed_layout() + " (" +
                       std::to_string(p.bytes_) + " bytes)");
  if (blob == nullptr || reinterpret_cast<uintptr_t>(blob) % 64 != 0)
    return invalid_argument("qgemm: packed weights are not 64-byte aligned");
  QbHeader h;
  std::memcpy(&h, blob, sizeof h);
  if (h.magic != kQbMagic || h.version != kQbVersion || h.exact > 1 ||
      h.nr != static_cast<uint32_t>(p.nr_) || h.k != k || h.n != n)
    return invalid_argument("qgemm: packed weights have a damaged header");
  p.blob_ = std::shared_ptr<const uint8_t>(std::move(owner), static_cast<const uint8_t*>(blob));
  p.data_ = reinterpret_cast<const int8_t*>(p.blob_.get() + kQbHeaderBytes);
  p.colsum_ = reinterpret_cast<const int32_t*>(p.blob_.get() + kQbHeaderBytes + p.panel_bytes_);
  p.exact_ = h.exact != 0;
  p.packed_ = true;
  return p;
}

void qgemm_u8(int64_t m, const uint8_t* a, int64_t lda, uint8_t a_zero, const PackedQB& b,
              const int32_t* bias, const QuantOutput& out, uint8_t* y, int64_t ldy,
              ThreadPool* pool) {
  qgemm_impl(m, a, lda, a_zero, b, bias, out, y, ldy, /*f32=*/false, pool);
}

void qgemm_f32(int64_t m, const uint8_t* a, int64_t lda, uint8_t a_zero, const PackedQB& b,
               const int32_t* bias, const QuantOutput& out, float* y, int64_t ldy,
               ThreadPool* pool) {
  qgemm_impl(m, a, lda, a_zero, b, bias, out, y, ldy, /*f32=*/true, pool);
}

}  // namespace brink::kernels
