// One small vector vocabulary for float32 kernels, so that each elementwise, activation,
// softmax, LayerNorm and attention kernel is written once (activation_math.h and the
// *_impl.h headers) and compiled once per ISA (the *_avx512.cc, *_avx2.cc, *_neon.cc files
// and the portable *.cc files).
//
// A file selects its target by defining exactly one of BRINK_SIMD_AVX512, BRINK_SIMD_AVX2,
// BRINK_SIMD_NEON, BRINK_SIMD_PORTABLE before including this header. Everything lands in a
// namespace named after the target (brink::kernels::avx512, ::avx2, ::neon, ::portable), so
// the same inline function compiled with different instruction sets never gets merged by the
// linker (an AVX-512 body must never be picked for the portable caller). BRINK_SIMD_NS names
// that namespace for the headers that follow.
//
// Vocabulary (Vf: lanes of float; Vi: lanes of int32; Vm: a lane mask):
//   kLanes, load/store, load_partial/store_partial (n < kLanes lanes, the rest read as 0, or
//   as `fill` with load_partial_fill; nothing past p[n - 1] is touched),
//   set1, +, -, *, /, unary -, fma(a, b, c) = a*b + c, fnma(a, b, c) = c - a*b, sqrt, abs,
//   min/max with x86 semantics (min(a, b) = a < b ? a : b, so a NaN in `b` passes through:
//   write clamps as max(lo, min(hi, x)) to keep NaN), comparisons lt/le/gt/ge/eq giving Vm,
//   is_nan, select(m, if_true, if_false), round_nearest (ties to even), ldexp(p, n) = p * 2^n
//   for integral n in [-252, 254] (overflow gives inf, underflow 0 or a denormal),
//   bit-level as_int/as_float, int add/sub/shift/and/or, reduce_add, reduce_max.
//
// The portable target has one lane of plain C++: it is the fallback for unknown CPUs and
// the reference for what the vector targets must compute, not a fast path.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if (defined(BRINK_SIMD_AVX512) + defined(BRINK_SIMD_AVX2) + defined(BRINK_SIMD_NEON) + \
     defined(BRINK_SIMD_PORTABLE)) != 1
#error "define exactly one of BRINK_SIMD_AVX512, _AVX2, _NEON, _PORTABLE before this header"
#endif

#define BRINK_SIMD_INLINE inline __attribute__((always_inline))
#define BRINK_SIMD_INLINE_LAMBDA __attribute__((always_inline))

// ---- AVX-512 ---------------------------------------------------------------------------
#if defined(BRINK_SIMD_AVX512)
#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__FMA__)
#error "BRINK_SIMD_AVX512 needs -mavx512f -mavx512dq -mfma (files named *_avx512.cc get them)"
#endif
#include <immintrin.h>
#define BRINK_SIMD_NS avx512
namespace brink::kernels::avx512 {

constexpr size_t kLanes = 16;
struct Vf {
  __m512 v;
};
struct Vi {
  __m512i v;
};
struct Vm {
  __mmask16 m;
};

BRINK_SIMD_INLINE __mmask16 tail_mask(size_t n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}
BRINK_SIMD_INLINE Vf load(const float* p) {
  return {_mm512_loadu_ps(p)};
}
BRINK_SIMD_INLINE void store(float* p, Vf a) {
  _mm512_storeu_ps(p, a.v);
}
BRINK_SIMD_INLINE Vf load_partial(const float* p, size_t n) {
  return {_mm512_maskz_loadu_ps(tail_mask(n), p)};
}
BRINK_SIMD_INLINE Vf load_partial_fill(const float* p, size_t n, float fill) {
  return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p)};
}
BRINK_SIMD_INLINE void store_partial(float* p, Vf a, size_t n) {
  _mm512_mask_storeu_ps(p, tail_mask(n), a.v);
}
BRINK_SIMD_INLINE Vf set1(float f) {
  return {_mm512_set1_ps(f)};
}
BRINK_SIMD_INLINE Vf operator+(Vf a, Vf b) {
  return {_mm512_add_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator-(Vf a, Vf b) {
  return {_mm512_sub_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator*(Vf a, Vf b) {
  return {_mm512_mul_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator/(Vf a, Vf b) {
  return {_mm512_div_ps(a.v, b.v)};
}
// 1 / d for finite, normal d: a 14-bit estimate and one Newton step (about 1 ulp; exact for
// powers of two), several times the throughput of a division.
BRINK_SIMD_INLINE Vf recip_finite(Vf d) {
  const __m512 r = _mm512_rcp14_ps(d.v);
  const __m512 e = _mm512_fnmadd_ps(d.v, r, _mm512_set1_ps(1.0f));
  return {_mm512_fmadd_ps(r, e, r)};
}
BRINK_SIMD_INLINE Vf operator-(Vf a) {
  return {_mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)))};
}
BRINK_SIMD_INLINE Vf fma(Vf a, Vf b, Vf c) {
  return {_mm512_fmadd_ps(a.v, b.v, c.v)};
}
BRINK_SIMD_INLINE Vf fnma(Vf a, Vf b, Vf c) {
  return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
}
BRINK_SIMD_INLINE Vf sqrt(Vf a) {
  return {_mm512_sqrt_ps(a.v)};
}
BRINK_SIMD_INLINE Vf abs(Vf a) {
  return {_mm512_abs_ps(a.v)};
}
BRINK_SIMD_INLINE Vf min(Vf a, Vf b) {
  return {_mm512_min_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf max(Vf a, Vf b) {
  return {_mm512_max_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm lt(Vf a, Vf b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)};
}
BRINK_SIMD_INLINE Vm le(Vf a, Vf b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)};
}
BRINK_SIMD_INLINE Vm gt(Vf a, Vf b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)};
}
BRINK_SIMD_INLINE Vm ge(Vf a, Vf b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)};
}
BRINK_SIMD_INLINE Vm eq(Vf a, Vf b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)};
}
BRINK_SIMD_INLINE Vm is_nan(Vf a) {
  return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)};
}
BRINK_SIMD_INLINE Vm operator|(Vm a, Vm b) {
  return {static_cast<__mmask16>(a.m | b.m)};
}
BRINK_SIMD_INLINE Vf select(Vm m, Vf t, Vf f) {
  return {_mm512_mask_blend_ps(m.m, f.v, t.v)};
}
BRINK_SIMD_INLINE Vf round_nearest(Vf a) {
  return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
// scalef does p * 2^floor(n) with IEEE overflow/underflow: one instruction, full range.
BRINK_SIMD_INLINE Vf ldexp(Vf p, Vf n) {
  return {_mm512_scalef_ps(p.v, n.v)};
}
BRINK_SIMD_INLINE Vi as_int(Vf a) {
  return {_mm512_castps_si512(a.v)};
}
BRINK_SIMD_INLINE Vf as_float(Vi a) {
  return {_mm512_castsi512_ps(a.v)};
}
BRINK_SIMD_INLINE Vi set1i(int32_t x) {
  return {_mm512_set1_epi32(x)};
}
BRINK_SIMD_INLINE Vi operator+(Vi a, Vi b) {
  return {_mm512_add_epi32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator-(Vi a, Vi b) {
  return {_mm512_sub_epi32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator&(Vi a, Vi b) {
  return {_mm512_and_si512(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator|(Vi a, Vi b) {
  return {_mm512_or_si512(a.v, b.v)};
}
template <int S>
BRINK_SIMD_INLINE Vi shr_arith(Vi a) {
  return {_mm512_srai_epi32(a.v, S)};
}
template <int S>
BRINK_SIMD_INLINE Vi shl(Vi a) {
  return {_mm512_slli_epi32(a.v, S)};
}
BRINK_SIMD_INLINE Vf to_float(Vi a) {
  return {_mm512_cvtepi32_ps(a.v)};
}
BRINK_SIMD_INLINE float reduce_add(Vf a) {
  return _mm512_reduce_add_ps(a.v);
}
BRINK_SIMD_INLINE float reduce_max(Vf a) {
  return _mm512_reduce_max_ps(a.v);
}

}  // namespace brink::kernels::avx512

// ---- AVX2 + FMA ------------------------------------------------------------------------
#elif defined(BRINK_SIMD_AVX2)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "BRINK_SIMD_AVX2 needs -mavx2 -mfma (files named *_avx2.cc get them)"
#endif
#include <immintrin.h>
#define BRINK_SIMD_NS avx2
namespace brink::kernels::avx2 {

constexpr size_t kLanes = 8;
struct Vf {
  __m256 v;
};
struct Vi {
  __m256i v;
};
struct Vm {
  __m256 m;  // all-ones lanes are true
};

// Lanes [0, n) set: a sliding window over {-1 x 8, 0 x 8}.
BRINK_SIMD_INLINE __m256i tail_mask(size_t n) {
  alignas(32) static const int32_t kWindow[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                  0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kWindow + 8 - n));
}
BRINK_SIMD_INLINE Vf load(const float* p) {
  return {_mm256_loadu_ps(p)};
}
BRINK_SIMD_INLINE void store(float* p, Vf a) {
  _mm256_storeu_ps(p, a.v);
}
BRINK_SIMD_INLINE Vf load_partial(const float* p, size_t n) {
  return {_mm256_maskload_ps(p, tail_mask(n))};
}
BRINK_SIMD_INLINE Vf load_partial_fill(const float* p, size_t n, float fill) {
  const __m256i m = tail_mask(n);
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
}
BRINK_SIMD_INLINE void store_partial(float* p, Vf a, size_t n) {
  _mm256_maskstore_ps(p, tail_mask(n), a.v);
}
BRINK_SIMD_INLINE Vf set1(float f) {
  return {_mm256_set1_ps(f)};
}
BRINK_SIMD_INLINE Vf operator+(Vf a, Vf b) {
  return {_mm256_add_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator-(Vf a, Vf b) {
  return {_mm256_sub_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator*(Vf a, Vf b) {
  return {_mm256_mul_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator/(Vf a, Vf b) {
  return {_mm256_div_ps(a.v, b.v)};
}
// 1 / d for finite, normal d: a 12-bit estimate and two Newton steps (about 1 ulp; exact for
// powers of two).
BRINK_SIMD_INLINE Vf recip_finite(Vf d) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 r = _mm256_rcp_ps(d.v);
  r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d.v, r, one), r);
  return {_mm256_fmadd_ps(r, _mm256_fnmadd_ps(d.v, r, one), r)};
}
BRINK_SIMD_INLINE Vf operator-(Vf a) {
  return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))};
}
BRINK_SIMD_INLINE Vf fma(Vf a, Vf b, Vf c) {
  return {_mm256_fmadd_ps(a.v, b.v, c.v)};
}
BRINK_SIMD_INLINE Vf fnma(Vf a, Vf b, Vf c) {
  return {_mm256_fnmadd_ps(a.v, b.v, c.v)};
}
BRINK_SIMD_INLINE Vf sqrt(Vf a) {
  return {_mm256_sqrt_ps(a.v)};
}
BRINK_SIMD_INLINE Vf abs(Vf a) {
  return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)};
}
BRINK_SIMD_INLINE Vf min(Vf a, Vf b) {
  return {_mm256_min_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf max(Vf a, Vf b) {
  return {_mm256_max_ps(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm lt(Vf a, Vf b) {
  return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)};
}
BRINK_SIMD_INLINE Vm le(Vf a, Vf b) {
  return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)};
}
BRINK_SIMD_INLINE Vm gt(Vf a, Vf b) {
  return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)};
}
BRINK_SIMD_INLINE Vm ge(Vf a, Vf b) {
  return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)};
}
BRINK_SIMD_INLINE Vm eq(Vf a, Vf b) {
  return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)};
}
BRINK_SIMD_INLINE Vm is_nan(Vf a) {
  return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)};
}
BRINK_SIMD_INLINE Vm operator|(Vm a, Vm b) {
  return {_mm256_or_ps(a.m, b.m)};
}
BRINK_SIMD_INLINE Vf select(Vm m, Vf t, Vf f) {
  return {_mm256_blendv_ps(f.v, t.v, m.m)};
}
BRINK_SIMD_INLINE Vf round_nearest(Vf a) {
  return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
BRINK_SIMD_INLINE Vi as_int(Vf a) {
  return {_mm256_castps_si256(a.v)};
}
BRINK_SIMD_INLINE Vf as_float(Vi a) {
  return {_mm256_castsi256_ps(a.v)};
}
BRINK_SIMD_INLINE Vi set1i(int32_t x) {
  return {_mm256_set1_epi32(x)};
}
BRINK_SIMD_INLINE Vi operator+(Vi a, Vi b) {
  return {_mm256_add_epi32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator-(Vi a, Vi b) {
  return {_mm256_sub_epi32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator&(Vi a, Vi b) {
  return {_mm256_and_si256(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator|(Vi a, Vi b) {
  return {_mm256_or_si256(a.v, b.v)};
}
template <int S>
BRINK_SIMD_INLINE Vi shr_arith(Vi a) {
  return {_mm256_srai_epi32(a.v, S)};
}
template <int S>
BRINK_SIMD_INLINE Vi shl(Vi a) {
  return {_mm256_slli_epi32(a.v, S)};
}
BRINK_SIMD_INLINE Vf to_float(Vi a) {
  return {_mm256_cvtepi32_ps(a.v)};
}
// n is integral and in [-252, 254] (callers clamp): split into two in-range powers of two so
// that results near the overflow and denormal edges are still right.
BRINK_SIMD_INLINE Vf ldexp(Vf p, Vf n) {
  const __m256i ni = _mm256_cvtps_epi32(n.v);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return {_mm256_mul_ps(_mm256_mul_ps(p.v, s1), s2)};
}
BRINK_SIMD_INLINE float reduce_add(Vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
BRINK_SIMD_INLINE float reduce_max(Vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace brink::kernels::avx2

// ---- NEON (aarch64) --------------------------------------------------------------------
#elif defined(BRINK_SIMD_NEON)
#if !defined(__aarch64__)
#error "BRINK_SIMD_NEON is for aarch64 (files named *_neon.cc)"
#endif
#include <arm_neon.h>
#define BRINK_SIMD_NS neon
namespace brink::kernels::neon {

constexpr size_t kLanes = 4;
struct Vf {
  float32x4_t v;
};
struct Vi {
  int32x4_t v;
};
struct Vm {
  uint32x4_t m;
};

BRINK_SIMD_INLINE Vf load(const float* p) {
  return {vld1q_f32(p)};
}
BRINK_SIMD_INLINE void store(float* p, Vf a) {
  vst1q_f32(p, a.v);
}
// No masked loads: go through a small buffer, so no byte past p[n - 1] is touched.
BRINK_SIMD_INLINE Vf load_partial(const float* p, size_t n) {
  float buf[4] = {0, 0, 0, 0};
  std::memcpy(buf, p, n * sizeof(float));
  return {vld1q_f32(buf)};
}
BRINK_SIMD_INLINE Vf load_partial_fill(const float* p, size_t n, float fill) {
  float buf[4] = {fill, fill, fill, fill};
  std::memcpy(buf, p, n * sizeof(float));
  return {vld1q_f32(buf)};
}
BRINK_SIMD_INLINE void store_partial(float* p, Vf a, size_t n) {
  float buf[4];
  vst1q_f32(buf, a.v);
  std::memcpy(p, buf, n * sizeof(float));
}
BRINK_SIMD_INLINE Vf set1(float f) {
  return {vdupq_n_f32(f)};
}
BRINK_SIMD_INLINE Vf operator+(Vf a, Vf b) {
  return {vaddq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator-(Vf a, Vf b) {
  return {vsubq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator*(Vf a, Vf b) {
  return {vmulq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vf operator/(Vf a, Vf b) {
  return {vdivq_f32(a.v, b.v)};
}
// 1 / d for finite, normal d: an 8-bit estimate and two Newton steps (about 1-2 ulp).
BRINK_SIMD_INLINE Vf recip_finite(Vf d) {
  float32x4_t r = vrecpeq_f32(d.v);
  r = vmulq_f32(r, vrecpsq_f32(d.v, r));
  r = vmulq_f32(r, vrecpsq_f32(d.v, r));
  return {r};
}
BRINK_SIMD_INLINE Vf operator-(Vf a) {
  return {vnegq_f32(a.v)};
}
BRINK_SIMD_INLINE Vf fma(Vf a, Vf b, Vf c) {
  return {vfmaq_f32(c.v, a.v, b.v)};
}
BRINK_SIMD_INLINE Vf fnma(Vf a, Vf b, Vf c) {
  return {vfmsq_f32(c.v, a.v, b.v)};
}
BRINK_SIMD_INLINE Vf sqrt(Vf a) {
  return {vsqrtq_f32(a.v)};
}
BRINK_SIMD_INLINE Vf abs(Vf a) {
  return {vabsq_f32(a.v)};
}
BRINK_SIMD_INLINE Vm lt(Vf a, Vf b) {
  return {vcltq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm le(Vf a, Vf b) {
  return {vcleq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm gt(Vf a, Vf b) {
  return {vcgtq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm ge(Vf a, Vf b) {
  return {vcgeq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm eq(Vf a, Vf b) {
  return {vceqq_f32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vm is_nan(Vf a) {
  return {vmvnq_u32(vceqq_f32(a.v, a.v))};
}
BRINK_SIMD_INLINE Vm operator|(Vm a, Vm b) {
  return {vorrq_u32(a.m, b.m)};
}
BRINK_SIMD_INLINE Vf select(Vm m, Vf t, Vf f) {
  return {vbslq_f32(m.m, t.v, f.v)};
}
// x86 semantics (a NaN in either operand gives b), which vminq/vmaxq do not have.
BRINK_SIMD_INLINE Vf min(Vf a, Vf b) {
  return select(lt(a, b), a, b);
}
BRINK_SIMD_INLINE Vf max(Vf a, Vf b) {
  return select(gt(a, b), a, b);
}
BRINK_SIMD_INLINE Vf round_nearest(Vf a) {
  return {vrndnq_f32(a.v)};
}
BRINK_SIMD_INLINE Vi as_int(Vf a) {
  return {vreinterpretq_s32_f32(a.v)};
}
BRINK_SIMD_INLINE Vf as_float(Vi a) {
  return {vreinterpretq_f32_s32(a.v)};
}
BRINK_SIMD_INLINE Vi set1i(int32_t x) {
  return {vdupq_n_s32(x)};
}
BRINK_SIMD_INLINE Vi operator+(Vi a, Vi b) {
  return {vaddq_s32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator-(Vi a, Vi b) {
  return {vsubq_s32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator&(Vi a, Vi b) {
  return {vandq_s32(a.v, b.v)};
}
BRINK_SIMD_INLINE Vi operator|(Vi a, Vi b) {
  return {vorrq_s32(a.v, b.v)};
}
template <int S>
BRINK_SIMD_INLINE Vi shr_arith(Vi a) {
  return {vshrq_n_s32(a.v, S)};
}
template <int S>
BRINK_SIMD_INLINE Vi shl(Vi a) {
  return {vshlq_n_s32(a.v, S)};
}
BRINK_SIMD_INLINE Vf to_float(Vi a) {
  return {vcvtq_f32_s32(a.v)};
}
BRINK_SIMD_INLINE Vf ldexp(Vf p, Vf n) {
  const int32x4_t ni = vcvtnq_s32_f32(n.v);
  const int32x4_t n1 = vshrq_n_s32(ni, 1);
  const int32x4_t n2 = vsubq_s32(ni, n1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
  return {vmulq_f32(vmulq_f32(p.v, s1), s2)};
}
BRINK_SIMD_INLINE float reduce_add(Vf a) {
  return vaddvq_f32(a.v);
}
BRINK_SIMD_INLINE float reduce_max(Vf a) {
  return vmaxvq_f32(a.v);
}

}  // namespace brink::kernels::neon

// ---- portable --------------------------------------------------------------------------
#else
#include <bit>
#define BRINK_SIMD_NS portable
namespace brink::kernels::portable {

constexpr size_t kLanes = 1;
struct Vf {
  float v;
};
struct Vi {
  int32_t v;
};
struct Vm {
  bool m;
};

BRINK_SIMD_INLINE Vf load(const float* p) {
  return {*p};
}
BRINK_SIMD_INLINE void store(float* p, Vf a) {
  *p = a.v;
}
BRINK_SIMD_INLINE Vf load_partial(const float* p, size_t n) {
  return {n > 0 ? *p : 0.0f};
}
BRINK_SIMD_INLINE Vf load_partial_fill(const float* p, size_t n, float fill) {
  return {n > 0 ? *p : fill};
}
BRINK_SIMD_INLINE void store_partial(float* p, Vf a, size_t n) {
  if (n > 0) *p = a.v;
}
BRINK_SIMD_INLINE Vf set1(float f) {
  return {f};
}
BRINK_SIMD_INLINE Vf operator+(Vf a, Vf b) {
  return {a.v + b.v};
}
BRINK_SIMD_INLINE Vf operator-(Vf a, Vf b) {
  return {a.v - b.v};
}
BRINK_SIMD_INLINE Vf operator*(Vf a, Vf b) {
  return {a.v * b.v};
}
BRINK_SIMD_INLINE Vf operator/(Vf a, Vf b) {
  return {a.v / b.v};
}
BRINK_SIMD_INLINE Vf recip_finite(Vf d) {
  return {1.0f / d.v};
}
BRINK_SIMD_INLINE Vf operator-(Vf a) {
  return {-a.v};
}
// Plain multiply-add: baseline x86-64 has no FMA instruction (std::fma would be a libm call).
BRINK_SIMD_INLINE Vf fma(Vf a, Vf b, Vf c) {
  return {a.v * b.v + c.v};
}
BRINK_SIMD_INLINE Vf fnma(Vf a, Vf b, Vf c) {
  return {c.v - a.v * b.v};
}
BRINK_SIMD_INLINE Vf sqrt(Vf a) {
  return {std::sqrt(a.v)};
}
BRINK_SIMD_INLINE Vf abs(Vf a) {
  return {std::fabs(a.v)};
}
BRINK_SIMD_INLINE Vf min(Vf a, Vf b) {
  return {a.v < b.v ? a.v : b.v};
}
BRINK_SIMD_INLINE Vf max(Vf a, Vf b) {
  return {a.v > b.v ? a.v : b.v};
}
BRINK_SIMD_INLINE Vm lt(Vf a, Vf b) {
  return {a.v < b.v};
}
BRINK_SIMD_INLINE Vm le(Vf a, Vf b) {
  return {a.v <= b.v};
}
BRINK_SIMD_INLINE Vm gt(Vf a, Vf b) {
  return {a.v > b.v};
}
BRINK_SIMD_INLINE Vm ge(Vf a, Vf b) {
  return {a.v >= b.v};
}
BRINK_SIMD_INLINE Vm eq(Vf a, Vf b) {
  return {a.v == b.v};
}
BRINK_SIMD_INLINE Vm is_nan(Vf a) {
  return {a.v != a.v};
}
BRINK_SIMD_INLINE Vm operator|(Vm a, Vm b) {
  return {a.m || b.m};
}
BRINK_SIMD_INLINE Vf select(Vm m, Vf t, Vf f) {
  return {m.m ? t.v : f.v};
}
BRINK_SIMD_INLINE Vf round_nearest(Vf a) {
  return {std::nearbyint(a.v)};
}
BRINK_SIMD_INLINE Vi as_int(Vf a) {
  return {std::bit_cast<int32_t>(a.v)};
}
BRINK_SIMD_INLINE Vf as_float(Vi a) {
  return {std::bit_cast<float>(a.v)};
}
BRINK_SIMD_INLINE Vi set1i(int32_t x) {
  return {x};
}
// Integer lanes wrap like the vector targets (through unsigned: signed overflow is UB).
BRINK_SIMD_INLINE Vi operator+(Vi a, Vi b) {
  return {static_cast<int32_t>(static_cast<uint32_t>(a.v) + static_cast<uint32_t>(b.v))};
}
BRINK_SIMD_INLINE Vi operator-(Vi a, Vi b) {
  return {static_cast<int32_t>(static_cast<uint32_t>(a.v) - static_cast<uint32_t>(b.v))};
}
BRINK_SIMD_INLINE Vi operator&(Vi a, Vi b) {
  return {a.v & b.v};
}
BRINK_SIMD_INLINE Vi operator|(Vi a, Vi b) {
  return {a.v | b.v};
}
template <int S>
BRINK_SIMD_INLINE Vi shr_arith(Vi a) {
  return {a.v >> S};
}
template <int S>
BRINK_SIMD_INLINE Vi shl(Vi a) {
  return {static_cast<int32_t>(static_cast<uint32_t>(a.v) << S)};
}
BRINK_SIMD_INLINE Vf to_float(Vi a) {
  return {static_cast<float>(a.v)};
}
BRINK_SIMD_INLINE Vf ldexp(Vf p, Vf n) {
  // NaN or out-of-range n only happens for NaN inputs, whose p is NaN already.
  const int32_t ni = n.v >= -252.0f && n.v <= 254.0f ? static_cast<int32_t>(n.v) : 0;
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  return {p.v * s1 * s2};
}
BRINK_SIMD_INLINE float reduce_add(Vf a) {
  return a.v;
}
BRINK_SIMD_INLINE float reduce_max(Vf a) {
  return a.v;
}

}  // namespace brink::kernels::portable
#endif
