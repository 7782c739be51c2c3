// AVX2 INT4 weight-only GEMM (nbits_gemm_impl.h): two ymm per 16-column row, 2 rows in
// registers (even/odd accumulators), 6 rows over a dequantized panel. Partial panels go
// through a small stack copy.
#include <immintrin.h>

#include <cstring>

#include "kernels/nbits_gemm_impl.h"

namespace brink::kernels::nbits_detail {
namespace {

struct Avx2Traits {
  struct Vec {
    __m256 a, b;  // columns 0..7, 8..15
  };
  static constexpr int kDirectMax = 2;
  static constexpr int kMr = 6;
  static constexpr int kMr2 = 3;
  static Vec zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static Vec load_n(const float* p, int n) {
    alignas(32) float t[16] = {};
    std::memcpy(t, p, sizeof(float) * static_cast<size_t>(n));
    return load(t);
  }
  static void store(float* p, Vec v) {
    _mm256_storeu_ps(p, v.a);
    _mm256_storeu_ps(p + 8, v.b);
  }
  static void store_n(float* p, Vec v, int n) {
    alignas(32) float t[16];
    store(t, v);
    std::memcpy(p, t, sizeof(float) * static_cast<size_t>(n));
  }
  static Vec add(Vec x, Vec y) { return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)}; }
  static Vec fma(float a, Vec w, Vec acc) {
    const __m256 av = _mm256_set1_ps(a);
    return {_mm256_fmadd_ps(av, w.a, acc.a), _mm256_fmadd_ps(av, w.b, acc.b)};
  }
  static void dequant(const uint8_t* q, Vec s, Vec nz, Vec* lo, Vec* hi) {
    const __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)));
    const __m256i v1 =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8)));
    const __m256i m = _mm256_set1_epi32(15);
    lo->a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, m)), s.a, nz.a);
    lo->b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, m)), s.b, nz.b);
    hi->a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), s.a, nz.a);
    hi->b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), s.b, nz.b);
  }
};

}  // namespace

PanelsFn panels_avx2() {
  return &panels<Avx2Traits>;
}

}  // namespace brink::kernels::nbits_detail
