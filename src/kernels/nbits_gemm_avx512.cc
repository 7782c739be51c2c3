// AVX-512 INT4 weight-only GEMM (nbits_gemm_impl.h): one zmm per 16-column row, 8 rows in
// registers (even/odd accumulators: 16 zmm), 8 rows over a dequantized panel. Partial panels use
// masks.
#include <immintrin.h>

#include "kernels/nbits_gemm_impl.h"

namespace brink::kernels::nbits_detail {
namespace {

struct Avx512Traits {
  using Vec = __m512;
  static constexpr int kDirectMax = 8;
  static constexpr int kMr = 8;
  static constexpr int kMr2 = 8;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_n(const float* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, Vec v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
  static Vec add(Vec x, Vec y) { return _mm512_add_ps(x, y); }
  static Vec fma(float a, Vec w, Vec acc) { return _mm512_fmadd_ps(_mm512_set1_ps(a), w, acc); }
  static void dequant(const uint8_t* q, Vec s, Vec nz, Vec* lo, Vec* hi) {
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    const __m512i l = _mm512_and_si512(v, _mm512_set1_epi32(15));
    const __m512i h = _mm512_srli_epi32(v, 4);
    *lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l), s, nz);
    *hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(h), s, nz);
  }
};

}  // namespace

PanelsFn panels_avx512() {
  return &panels<Avx512Traits>;
}

}  // namespace brink::kernels::nbits_detail
