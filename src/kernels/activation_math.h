// Vectorized float32 exp, log, tanh, erf and sigmoid, and the unary kernel built on them,
// written once against elementwise_simd.h and compiled per ISA (activation.cc for portable,
// activation_avx512.cc, activation_avx2.cc, activation_neon.cc).
//
// The approximations and where their coefficients come from (fitted for Brink with a
// Lawson-weighted least-squares minimax fit in double precision, then rounded to float):
//   exp:  x = n ln2 + r, |r| <= ln2/2 (Cody-Waite: ln2 split in two, the high part with
//         trailing zero bits so that n * ln2_hi is exact without FMA), e^r by a degree-6
//         polynomial with e^r's relative error 2e-9 before float rounding, then r * 2^n with
//         full overflow/denormal handling (ldexp). Inputs are clamped to [-104, 89] first, which
//         keeps NaN and maps +-inf to +inf / 0.
//   log:  x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(1 + f) = f - f^2/2 + f^3 P(f), P of
//         degree 6 (fit error 3e-8); denormal inputs are scaled by 2^23 first.
//   tanh: x P(x^2) / Q(x^2), P and Q of degree 4 (fit relative error 2e-8 on [0, 9]), x
//         clamped to [-9, 9] (tanh(9) rounds to 1 in float) and the result clamped to [-1, 1].
//   erf:  x P(x^2) / Q(x^2), P and Q of degree 5 (fit relative error 2.5e-8 on [0, 4]), x
//         clamped to [-4, 4] (erf(3.92) already rounds to 1), result clamped to [-1, 1].
//   sigmoid: e = exp(-|x|) (never overflows), then 1 / (1 + e) or e / (1 + e): no
//         cancellation in either tail. GeluTanh uses 0.5 (1 + tanh(u)) = sigmoid(2u), which is
//         exact algebra and keeps the negative tail accurate.
// Measured errors are listed at unary_f32 in activation.h and checked by the unit tests.
#pragma once

#include "kernels/activation.h"
#include "kernels/elementwise_simd.h"

namespace brink::kernels::BRINK_SIMD_NS {

BRINK_SIMD_INLINE Vf clamp(Vf x, float lo, float hi) {
  return max(set1(lo), min(set1(hi), x));  // NaN in x passes through (see min/max)
}

BRINK_SIMD_INLINE Vf exp(Vf x) {
  x = clamp(x, -104.0f, 89.0f);
  const Vf n = round_nearest(x * set1(1.44269504088896341f));
  Vf r = fnma(n, set1(0.693359375f), x);
  r = fnma(n, set1(-2.12194440e-4f), r);
  Vf p = set1(0x1.6ae742p-10f);
  p = fma(p, r, set1(0x1.126788p-7f));
  p = fma(p, r, set1(0x1.555822p-5f));
  p = fma(p, r, set1(0x1.55541ap-3f));
  p = fma(p, r, set1(0x1.fffffcp-2f));
  p = fma(p, r, set1(1.0f));
  p = fma(p, r, set1(1.0f));
  return ldexp(p, n);
}

BRINK_SIMD_INLINE Vf log(Vf x) {
  const Vm tiny = lt(x, set1(1.17549435e-38f));  // denormal, zero or negative
  const Vf xs = select(tiny, x * set1(8388608.0f), x);
  const Vi bits = as_int(xs);
  Vf e = to_float(shr_arith<23>(bits) - set1i(127));
  Vf m = as_float((bits & set1i(0x007fffff)) | set1i(0x3f800000));  // [1, 2)
  const Vm big = gt(m, set1(1.41421356f));
  m = select(big, m * set1(0.5f), m);
  e = e + select(big, set1(1.0f), set1(0.0f)) - select(tiny, set1(23.0f), set1(0.0f));
  const Vf f = m - set1(1.0f);
  Vf p = set1(0x1.645f52p-4f);
  p = fma(p, f, set1(-0x1.243350p-3f));
  p = fma(p, f, set1(0x1.31747ep-3f));
  p = fma(p, f, set1(-0x1.53823ap-3f));
  p = fma(p, f, set1(0x1.98d7eep-3f));
  p = fma(p, f, set1(-0x1.000382p-2f));
  p = fma(p, f, set1(0x1.5556d8p-2f));
  const Vf f2 = f * f;
  Vf y = fma(f2 * f, p, f2 * set1(-0.5f));
  y = fma(e, set1(-2.12194440e-4f), y);
  y = fma(e, set1(0.693359375f), y + f);
  const float inf = __builtin_inff();
  y = select(eq(x, set1(0.0f)), set1(-inf), y);
  y = select(eq(x, set1(inf)), set1(inf), y);
  return select(lt(x, set1(0.0f)) | is_nan(x), set1(__builtin_nanf("")), y);
}

BRINK_SIMD_INLINE Vf tanh(Vf x) {
  x = clamp(x, -9.0f, 9.0f);
  const Vf t = x * x;
  Vf p = set1(0x1.cad3b0p-27f);
  p = fma(p, t, set1(0x1.59c082p-16f));
  p = fma(p, t, set1(0x1.ca2b4ep-9f));
  p = fma(p, t, set1(0x1.120af8p-3f));
  p = fma(p, t, set1(1.0f));
  Vf q = set1(0x1.a17ab4p-21f);
  q = fma(q, t, set1(0x1.588474p-12f));
  q = fma(q, t, set1(0x1.a7f766p-6f));
  q = fma(q, t, set1(0x1.de5ac6p-2f));
  q = fma(q, t, set1(1.0f));
  return clamp(x * p * recip_finite(q), -1.0f, 1.0f);  // q >= 1: positive coefficients
}

BRINK_SIMD_INLINE Vf erf(Vf x) {
  x = clamp(x, -4.0f, 4.0f);
  const Vf t = x * x;
  Vf p = set1(0x1.0a9fbap-19f);
  p = fma(p, t, set1(0x1.2a5c90p-12f));
  p = fma(p, t, set1(0x1.fcf9dcp-9f));
  p = fma(p, t, set1(0x1.b3013ep-5f));
  p = fma(p, t, set1(0x1.8c60fep-3f));
  p = fma(p, t, set1(0x1.20dd74p+0f));
  Vf q = set1(0x1.39de02p-15f);
  q = fma(q, t, set1(0x1.36c4ccp-10f));
  q = fma(q, t, set1(0x1.f24d18p-7f));
  q = fma(q, t, set1(0x1.d8787ep-4f));
  q = fma(q, t, set1(0x1.027c98p-1f));
  q = fma(q, t, set1(1.0f));
  return clamp(x * p * recip_finite(q), -1.0f, 1.0f);  // q >= 1: positive coefficients
}

BRINK_SIMD_INLINE Vf sigmoid(Vf x) {
  const Vf e = exp(-abs(x));
  const Vf one = set1(1.0f);
  const Vf r = recip_finite(one + e);  // 1 + e is in [1, 2]
  return select(ge(x, set1(0.0f)), r, e * r);
}

// log(1 + e) for e in [0, 1]: log(u) * e / (u - 1) with u = 1 + e rounded corrects for the
// rounding of u (the classic log1p trick); tiny e, where u rounds to 1, gives e.
BRINK_SIMD_INLINE Vf log1p_unit(Vf e) {
  const Vf u = set1(1.0f) + e;
  const Vf d = u - set1(1.0f);
  const Vm exact = eq(d, set1(0.0f));
  return select(exact, e, log(u) * (e / select(exact, set1(1.0f), d)));
}

BRINK_SIMD_INLINE Vf softplus(Vf x) {
  return max(set1(0.0f), x) + log1p_unit(exp(-abs(x)));
}

// Op is a template argument so that each instantiation's switch folds away.
template <UnaryOp Op>
BRINK_SIMD_INLINE Vf apply_unary(const Unary& u, Vf x) {
  switch (Op) {
    case UnaryOp::kIdentity:
      return x;
    case UnaryOp::kRelu:
      return max(set1(0.0f), x);
    case UnaryOp::kClip:
      return min(set1(u.beta), max(set1(u.alpha), x));
    case UnaryOp::kLeakyRelu:
      return select(lt(x, set1(0.0f)), x * set1(u.alpha), x);
    case UnaryOp::kHardSigmoid:
      return clamp(fma(x, set1(u.alpha), set1(u.beta)), 0.0f, 1.0f);
    case UnaryOp::kHardSwish:
      return x * clamp(fma(x, set1(1.0f / 6.0f), set1(0.5f)), 0.0f, 1.0f);
    case UnaryOp::kSigmoid:
      return sigmoid(x);
    case UnaryOp::kSilu:
      return x * sigmoid(x);
    case UnaryOp::kTanh:
      return tanh(x);
    case UnaryOp::kGelu:
      return x * set1(0.5f) * (set1(1.0f) + erf(x * set1(0.70710678118654752f)));
    case UnaryOp::kGeluTanh: {
      // 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
      const Vf x2 = x * x;
      const Vf two_u = x * fma(x2, set1(2.0f * 0.7978845608028654f * 0.044715f),
                               set1(2.0f * 0.7978845608028654f));
      return x * sigmoid(two_u);
    }
    case UnaryOp::kExp:
      return exp(x);
    case UnaryOp::kLog:
      return log(x);
    case UnaryOp::kErf:
      return erf(x);
    case UnaryOp::kAbs:
      return abs(x);
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kSqrt:
      return sqrt(x);
    case UnaryOp::kPowHalf:
      // + 0 turns -0 into +0; -inf is the one negative input with a real square root here.
      return select(eq(x, set1(-__builtin_inff())), set1(__builtin_inff()), sqrt(x)) + set1(0.0f);
    case UnaryOp::kReciprocal:
      return set1(1.0f) / x;
    case UnaryOp::kSquare:
      return x * x;
    case UnaryOp::kCube:
      return x * x * x;
    case UnaryOp::kSoftplus:
      return softplus(x);
    case UnaryOp::kSoftsign:
      return x / (set1(1.0f) + abs(x));
    case UnaryOp::kMish:
      return x * tanh(softplus(x));
  }
  return x;
}

// ---- row helpers -------------------------------------------------------------------

// Sum of x[0, n) with four independent accumulators: shorter dependency chains, and a partly
// pairwise order that keeps long rows closer to a double-precision sum.
BRINK_SIMD_INLINE float row_sum(const float* x, size_t n) {
  Vf s0 = set1(0.0f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    s0 = s0 + load(x + i);
    s1 = s1 + load(x + i + kLanes);
    s2 = s2 + load(x + i + 2 * kLanes);
    s3 = s3 + load(x + i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) s0 = s0 + load(x + i);
  if (i < n) s1 = s1 + load_partial(x + i, n - i);
  return reduce_add((s0 + s1) + (s2 + s3));
}

// Largest of x[0, n) (n > 0); NaNs may or may not win, which softmax does not care about
// (a NaN input makes every exp(x - max) sum NaN either way).
BRINK_SIMD_INLINE float row_max(const float* x, size_t n) {
  const float ninf = -__builtin_inff();
  Vf m0 = set1(ninf), m1 = m0;
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    m0 = max(m0, load(x + i));
    m1 = max(m1, load(x + i + kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) m0 = max(m0, load(x + i));
  if (i < n) m1 = max(m1, load_partial_fill(x + i, n - i, ninf));
  return reduce_max(max(m0, m1));
}

// y[i] = f(x[i]); y may equal x: every vector is loaded before the same lanes are stored.
template <typename F>
BRINK_SIMD_INLINE void map_f32(const float* x, float* y, size_t n, F f) {
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const Vf a = load(x + i), b = load(x + i + kLanes);
    store(y + i, f(a));
    store(y + i + kLanes, f(b));
  }
  for (; i + kLanes <= n; i += kLanes) store(y + i, f(load(x + i)));
  if (i < n) store_partial(y + i, f(load_partial(x + i, n - i)), n - i);
}

// One instantiation of the vector loop per function, chosen once per call.
inline void unary_f32_impl(const Unary& u, const float* x, float* y, size_t n) {
  switch (u.op) {
#define BRINK_UNARY_CASE(name)                                                                   \
  case UnaryOp::name:                                                                            \
    if constexpr (unary_selected(UnaryOp::name)) {                                               \
      map_f32(x, y, n,                                                                           \
              [&u](Vf v) BRINK_SIMD_INLINE_LAMBDA { return apply_unary<UnaryOp::name>(u, v); }); \
      return;                                                                                    \
    }                                                                                            \
    break;
    BRINK_UNARY_CASE(kIdentity)
    BRINK_UNARY_CASE(kRelu)
    BRINK_UNARY_CASE(kClip)
    BRINK_UNARY_CASE(kLeakyRelu)
    BRINK_UNARY_CASE(kHardSigmoid)
    BRINK_UNARY_CASE(kHardSwish)
    BRINK_UNARY_CASE(kSigmoid)
    BRINK_UNARY_CASE(kSilu)
    BRINK_UNARY_CASE(kTanh)
    BRINK_UNARY_CASE(kGelu)
    BRINK_UNARY_CASE(kGeluTanh)
    BRINK_UNARY_CASE(kExp)
    BRINK_UNARY_CASE(kLog)
    BRINK_UNARY_CASE(kErf)
    BRINK_UNARY_CASE(kAbs)
    BRINK_UNARY_CASE(kNeg)
    BRINK_UNARY_CASE(kSqrt)
    BRINK_UNARY_CASE(kPowHalf)
    BRINK_UNARY_CASE(kReciprocal)
    BRINK_UNARY_CASE(kSquare)
    BRINK_UNARY_CASE(kCube)
    BRINK_UNARY_CASE(kSoftplus)
    BRINK_UNARY_CASE(kSoftsign)
    BRINK_UNARY_CASE(kMish)
#undef BRINK_UNARY_CASE
  }
  unary_not_built(u.op);
}

}  // namespace brink::kernels::BRINK_SIMD_NS
