// The activations that fused operators (brink.Conv, brink.MatMul) apply to their output,
// as docs/INTERNAL_OPS.md defines them, parsed once at prepare time.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "brink/status.h"
#include "core/cpu_features.h"
#include "ir/graph.h"
#include "ops/op_selection.h"  // a selective build keeps the unary functions it uses

namespace brink::kernels {

enum class ActivationKind {
  kNone,
  kRelu,
  kClip,         // alpha = min, beta = max
  kLeakyRelu,    // alpha
  kHardSigmoid,  // alpha, beta
  kHardSwish,
  kSigmoid,
  kSilu,
  kTanh,
  kGelu,      // erf form
  kGeluTanh,  // tanh approximation
};

struct Activation {
  ActivationKind kind = ActivationKind::kNone;
  float alpha = 0.0f;
  float beta = 0.0f;

  bool none() const { return kind == ActivationKind::kNone; }
  // Relu and Clip: cheap enough to apply inside a micro-kernel's store.
  bool is_clamp() const { return kind == ActivationKind::kRelu || kind == ActivationKind::kClip; }
  // Lower and upper bound for is_clamp() activations.
  float clamp_min() const { return kind == ActivationKind::kRelu ? 0.0f : alpha; }
  float clamp_max() const { return kind == ActivationKind::kRelu ? INFINITY : beta; }
};

// The activation named by the node's `activation` / `activation_params` attributes
// (none when absent); an unknown name or a wrong parameter count is an invalid model.
Result<Activation> parse_activation(const ir::Node& node);
// The ONNX name of an activation, as `activation` holds it ("" for none).
const char* activation_name(ActivationKind kind);
// The inverse of activation_name; false for an unknown name.
bool activation_from_name(const std::string& name, ActivationKind* kind);

// The scalar definition: the oracle for vectorized versions.
inline float apply_activation_scalar(const Activation& a, float x) {
  switch (a.kind) {
    case ActivationKind::kNone:
      return x;
    case ActivationKind::kRelu:
      return x > 0.0f ? x : 0.0f;
    case ActivationKind::kClip:
      return x < a.alpha ? a.alpha : (x > a.beta ? a.beta : x);
    case ActivationKind::kLeakyRelu:
      return x >= 0.0f ? x : a.alpha * x;
    case ActivationKind::kHardSigmoid: {
      float y = a.alpha * x + a.beta;
      return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case ActivationKind::kHardSwish: {
      float y = x * (1.0f / 6.0f) + 0.5f;
      return x * (y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y));
    }
    case ActivationKind::kSigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case ActivationKind::kSilu:
      return x / (1.0f + std::exp(-x));
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case ActivationKind::kGeluTanh: {
      float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.0f + std::tanh(inner));
    }
  }
  return x;
}

// Applies `a` in place to n floats with the kernel of `isa` (an ISA this machine lacks runs
// the portable kernel). Cheap to call per tile: one switch, then a vector loop.
void apply_activation(const Activation& a, float* data, size_t n, Isa isa = best_isa());

// ---- float32 unary functions ------------------------------------------------------------
//
// Every unary function the fast float32 kernels compute: the fused activations above plus
// the ONNX unary operators that have a fast path (src/ops/elementwise.cc).
enum class UnaryOp : uint8_t {
  kIdentity,
  kRelu,
  kClip,         // alpha = min, beta = max
  kLeakyRelu,    // alpha
  kHardSigmoid,  // alpha, beta
  kHardSwish,
  kSigmoid,
  kSilu,
  kTanh,
  kGelu,      // erf form
  kGeluTanh,  // tanh approximation
  kExp,
  kLog,
  kErf,
  kAbs,
  kNeg,
  kSqrt,
  kPowHalf,  // pow(x, 0.5): sqrt, except +0 for -0 and +inf for -inf
  kReciprocal,
  kSquare,
  kCube,
  kSoftplus,
  kSoftsign,
  kMish,
};

// Which selections keep each unary function's fast kernel: the ONNX operator computing it
// and the fused activation (brink:Conv's `activation` attribute) applying it, "" for none.
struct UnaryUser {
  UnaryOp op;
  std::string_view onnx_op;
  std::string_view activation;
};
inline constexpr UnaryUser kUnaryUsers[] = {
    {UnaryOp::kRelu, "Relu", "Relu"},
    {UnaryOp::kClip, "Clip", "Clip"},
    {UnaryOp::kLeakyRelu, "LeakyRelu", "LeakyRelu"},
    {UnaryOp::kHardSigmoid, "HardSigmoid", "HardSigmoid"},
    {UnaryOp::kHardSwish, "HardSwish", "HardSwish"},
    {UnaryOp::kSigmoid, "Sigmoid", "Sigmoid"},
    {UnaryOp::kSilu, "", "SiLU"},
    {UnaryOp::kTanh, "Tanh", "Tanh"},
    {UnaryOp::kGelu, "Gelu", "Gelu"},
    {UnaryOp::kGeluTanh, "Gelu", "GeluTanh"},
    {UnaryOp::kExp, "Exp", ""},
    {UnaryOp::kLog, "Log", ""},
    {UnaryOp::kErf, "Erf", ""},
    {UnaryOp::kAbs, "Abs", ""},
    {UnaryOp::kNeg, "Neg", ""},
    {UnaryOp::kSqrt, "Sqrt", ""},
    {UnaryOp::kPowHalf, "Pow", ""},
    {UnaryOp::kSquare, "Pow", ""},
    {UnaryOp::kCube, "Pow", ""},
    {UnaryOp::kReciprocal, "Reciprocal", ""},
    {UnaryOp::kSoftplus, "Softplus", ""},
    {UnaryOp::kSoftsign, "Softsign", ""},
    {UnaryOp::kMish, "Mish", ""},
};

// Every UnaryOp but kIdentity (kept always) has exactly one row.
constexpr bool unary_users_complete() {
  for (int i = static_cast<int>(UnaryOp::kIdentity) + 1; i <= static_cast<int>(UnaryOp::kMish);
       ++i) {
    int rows = 0;
    for (const UnaryUser& u : kUnaryUsers) rows += static_cast<int>(u.op) == i ? 1 : 0;
    if (rows != 1) return false;
  }
  return std::size(kUnaryUsers) == static_cast<size_t>(UnaryOp::kMish);
}
static_assert(unary_users_complete(), "kUnaryUsers needs one row per UnaryOp but kIdentity");

// True when this build keeps the fast kernel of `op`: always, except in a selective build
// (ops/op_selection.h), which keeps those of its operators and fused activations.
constexpr bool unary_selected(UnaryOp op) {
  if (op == UnaryOp::kIdentity) return true;
  for (const UnaryUser& u : kUnaryUsers)
    if (u.op == op)
      return (!u.onnx_op.empty() && ops::op_selected("", u.onnx_op)) ||
             (!u.activation.empty() && ops::activation_selected(u.activation));
  return false;
}

// A unary function this selective build left out was asked for (a gap in kUnaryUsers): says which
// on stderr and aborts.
[[noreturn]] void unary_not_built(UnaryOp op);

struct Unary {
  UnaryOp op = UnaryOp::kIdentity;
  float alpha = 0.0f;
  float beta = 0.0f;
};

// The unary function that applies activation `a`.
Unary unary_of(const Activation& a);

// y[i] = u(x[i]) for i < n. `y` may be `x` (in place); otherwise they must not overlap.
// Single-threaded: callers split large arrays over threads.
//
// Exact (correctly rounded, as IEEE arithmetic gives them): Identity, Relu, Clip, Abs, Neg,
// Sqrt, PowHalf, Reciprocal, Square; LeakyRelu, HardSigmoid, HardSwish, Cube, Softsign round
// once or twice more than the scalar formula, so they agree within 1-2 ulp. The
// transcendental ones use polynomial or rational approximations (activation_math.h).
// tests/kernels/activation_test.cc checks them on every ISA against double precision over a
// dense sweep of [-100, 100] (Exp: [-104, 89], Log: (0, 100]), magnitudes 1e-40..1e38 of both
// signs and the special values; relative error allowed (measured maximum, AVX-512, in
// parentheses), ignoring results below FLT_MIN:
//   Exp      2.4e-7 (8.1e-8); exactly 0 below -103.97 (denormals kept above), +inf from
//            88.73: overflow and underflow where std::exp has them
//   Log      2.4e-7 (9.0e-8), normal and denormal inputs; log(0) = -inf, log(x < 0) = NaN
//   Sigmoid  4e-7 (1.7e-7)        SiLU      5e-7 (1.9e-7)
//   Tanh     4e-7 (2.4e-7), |tanh| <= 1
//   Erf      4e-7 (2.3e-7), |erf| <= 1
//   Softplus 5e-7 (1.8e-7)        Mish      5e-7 (3.0e-7)
//   Gelu     5e-7, or absolute 2.5e-7 * max(1, |x|): 1 + erf(x/sqrt2) cancels for x << 0 in
//            float whatever erf's accuracy, as it does in the scalar formula
//   GeluTanh 5e-7, or absolute 1e-7 * max(1, |x|) where the result is tiny (its exp
//            argument is computed, so relative error grows with it there)
// NaN inputs give NaN, +-inf give the function's limit (SiLU, Gelu, GeluTanh, Mish and
// HardSwish of -inf give NaN, as their scalar formulas x * f(x) do).
void unary_f32(const Unary& u, const float* x, float* y, size_t n, Isa isa = best_isa());

}  // namespace brink::kernels
