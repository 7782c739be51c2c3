// INT4 weight-only GEMM: packing, the reference dequantization, the portable kernel, and the
// dispatch over ISAs and threads (nbits_gemm.h has the design).
#include "kernels/nbits_gemm.h"

#include <algorithm>
#include <cstring>

#include "kernels/nbits_gemm_impl.h"

namespace brink::kernels {

namespace {

// 4-bit value k of column c in ORT's MatMulNBits layout.
inline uint8_t ort_nibble(const uint8_t* b, int64_t c, int64_t k, int64_t k_blocks,
                          int64_t block_size) {
  const int64_t blob = block_size / 2;
  const uint8_t byte = b[(c * k_blocks + k / block_size) * blob + (k % block_size) / 2];
  return (k % 2 == 0) ? (byte & 15) : (byte >> 4);
}

inline uint8_t ort_zero_point(const uint8_t* zp, int64_t c, int64_t g, int64_t k_blocks) {
  if (zp == nullptr) return 8;
  const uint8_t byte = zp[c * ((k_blocks + 1) / 2) + g / 2];
  return (g % 2 == 0) ? (byte & 15) : (byte >> 4);
}

// 16 floats as a plain array: the compiler vectorizes the loops with the baseline ISA.
struct PortableTraits {
  struct Vec {
    float v[kNBitsPanel];
  };
  static constexpr int kDirectMax = 4;
  static constexpr int kMr = 4;
  static constexpr int kMr2 = 4;
  static Vec zero() { return Vec{}; }
  static Vec load(const float* p) {
    Vec r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static Vec load_n(const float* p, int n) {
    Vec r{};
    std::memcpy(r.v, p, sizeof(float) * static_cast<size_t>(n));
    return r;
  }
  static void store(float* p, const Vec& v) { std::memcpy(p, v.v, sizeof v.v); }
  static void store_n(float* p, const Vec& v, int n) {
    std::memcpy(p, v.v, sizeof(float) * static_cast<size_t>(n));
  }
  static Vec add(const Vec& x, const Vec& y) {
    Vec r;
    for (int j = 0; j < kNBitsPanel; ++j) r.v[j] = x.v[j] + y.v[j];
    return r;
  }
  static Vec fma(float a, const Vec& w, const Vec& acc) {
    Vec r;
    for (int j = 0; j < kNBitsPanel; ++j) r.v[j] = acc.v[j] + a * w.v[j];
    return r;
  }
  static void dequant(const uint8_t* q, const Vec& s, const Vec& nz, Vec* lo, Vec* hi) {
    for (int j = 0; j < kNBitsPanel; ++j) {
      lo->v[j] = static_cast<float>(q[j] & 15) * s.v[j] + nz.v[j];
      hi->v[j] = static_cast<float>(q[j] >> 4) * s.v[j] + nz.v[j];
    }
  }
};

nbits_detail::PanelsFn panels_for(Isa isa) {
  switch (isa) {
#if BRINK_BUILD_AVX512
    case Isa::kAvx512:
      return nbits_detail::panels_avx512();
#endif
#if BRINK_BUILD_AVX2
    case Isa::kAvx2:
      return nbits_detail::panels_avx2();
#endif
#if BRINK_BUILD_NEON
    case Isa::kNeon:
      return nbits_detail::panels_neon();
#endif
    default:
      BRINK_RETURN_PORTABLE(nbits_detail::panels_portable());
  }
}

}  // namespace

namespace nbits_detail {
PanelsFn panels_portable() {
  return &panels<PortableTraits>;
}
}  // namespace nbits_detail

PackedNBits pack_nbits(const uint8_t* b, const float* scales, const uint8_t* zero_points, int64_t k,
                       int64_t n, int64_t block_size, Isa isa, float alpha) {
  PackedNBits p;
  p.isa = isa;
  p.k = k;
  p.n = n;
  p.block_size = block_size;
  p.k_blocks = (k + block_size - 1) / block_size;
  p.num_panels = (n + kNBitsPanel - 1) / kNBitsPanel;
  p.pairs = (k + 1) / 2;
  p.data.assign(static_cast<size_t>(p.num_panels * p.pairs * kNBitsPanel), 0);
  p.scale.assign(static_cast<size_t>(p.num_panels * p.k_blocks * kNBitsPanel), 0.0f);
  p.neg_zs.assign(p.scale.size(), 0.0f);
  for (int64_t c = 0; c < n; ++c) {
    const int64_t panel = c / kNBitsPanel, j = c % kNBitsPanel;
    uint8_t* dst = p.data.data() + panel * p.pairs * kNBitsPanel + j;
    for (int64_t kk = 0; kk < k; ++kk) {
      const uint8_t q = ort_nibble(b, c, kk, p.k_blocks, block_size);
      dst[(kk / 2) * kNBitsPanel] |= static_cast<uint8_t>(kk % 2 == 0 ? q : q << 4);
    }
    for (int64_t g = 0; g < p.k_blocks; ++g) {
      const float s = scales[c * p.k_blocks + g] * alpha;
      const size_t at = static_cast<size_t>((panel * p.k_blocks + g) * kNBitsPanel + j);
      p.scale[at] = s;
      p.neg_zs[at] = -static_cast<float>(ort_zero_point(zero_points, c, g, p.k_blocks)) * s;
    }
  }
  return p;
}

std::vector<float> dequantize_nbits(const uint8_t* b, const float* scales,
                                    const uint8_t* zero_points, int64_t k, int64_t n,
                                    int64_t block_size) {
  const int64_t k_blocks = (k + block_size - 1) / block_size;
  std::vector<float> w(static_cast<size_t>(k * n));
  for (int64_t c = 0; c < n; ++c)
    for (int64_t kk = 0; kk < k; ++kk) {
      const int64_t g = kk / block_size;
      const int q = ort_nibble(b, c, kk, k_blocks, block_size);
      const int z = ort_zero_point(zero_points, c, g, k_blocks);
      w[static_cast<size_t>(kk * n + c)] = static_cast<float>(q - z) * scales[c * k_blocks + g];
    }
  return w;
}

void nbits_gemm(int64_t m, const float* a, int64_t lda, const PackedNBits& b, const float* bias,
                float* c, int64_t ldc, ThreadPool* pool) {
  if (m <= 0 || b.n <= 0) return;
  if (b.k == 0) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < b.n; ++j) c[r * ldc + j] = bias != nullptr ? bias[j] : 0.0f;
    return;
  }
  const nbits_detail::PanelsFn fn = panels_for(b.isa);
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  const int64_t tasks = std::min<int64_t>(b.num_panels, threads);
  parallel_for(pool, tasks, [&](int64_t t) {
    const int64_t p0 = b.num_panels * t / tasks, p1 = b.num_panels * (t + 1) / tasks;
    thread_local std::vector<float> scratch;
    const size_t need = static_cast<size_t>(2 * b.k * kNBitsPanel);
    if (scratch.size() < need) scratch.resize(need);
    fn(b, p0, p1, m, a, lda, bias, c, ldc, scratch.data());
  });
}

}  // namespace brink::kernels
