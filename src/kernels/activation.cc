// Activation parsing, the unary dispatcher, and the portable variant of the unary kernel
// (activation_math.h); activation_avx512.cc, _avx2.cc and _neon.cc hold the others.
#define BRINK_SIMD_PORTABLE
#include "kernels/activation.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/activation_math.h"
#include "kernels/elementwise.h"

namespace brink::kernels {
namespace {

struct ActivationSpec {
  ActivationKind kind;
  const char* name;
  int num_params;
};

constexpr ActivationSpec kSpecs[] = {
    {ActivationKind::kNone, "", 0},
    {ActivationKind::kRelu, "Relu", 0},
    {ActivationKind::kClip, "Clip", 2},
    {ActivationKind::kLeakyRelu, "LeakyRelu", 1},
    {ActivationKind::kHardSigmoid, "HardSigmoid", 2},
    {ActivationKind::kHardSwish, "HardSwish", 0},
    {ActivationKind::kSigmoid, "Sigmoid", 0},
    {ActivationKind::kSilu, "SiLU", 0},
    {ActivationKind::kTanh, "Tanh", 0},
    {ActivationKind::kGelu, "Gelu", 0},
    {ActivationKind::kGeluTanh, "GeluTanh", 0},
};

const ActivationSpec* find_spec(ActivationKind kind) {
  for (const auto& s : kSpecs)
    if (s.kind == kind) return &s;
  return nullptr;
}

}  // namespace

const char* activation_name(ActivationKind kind) {
  const ActivationSpec* s = find_spec(kind);
  return s == nullptr ? "" : s->name;
}

bool activation_from_name(const std::string& name, ActivationKind* kind) {
  for (const auto& s : kSpecs) {
    if (name == s.name) {
      *kind = s.kind;
      return true;
    }
  }
  return false;
}

Result<Activation> parse_activation(const ir::Node& node) {
  Activation a;
  const ir::Attribute* name_attr = node.attr("activation");
  if (name_attr == nullptr) return a;
  if (!activation_from_name(name_attr->s, &a.kind))
    return invalid_model(node.describe() + ": activation '" + name_attr->s +
                         "' is not one of Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, "
                         "Sigmoid, SiLU, Tanh, Gelu, GeluTanh");
  const ir::Attribute* params = node.attr("activation_params");
  size_t count = params == nullptr ? 0 : params->floats.size();
  size_t expected = static_cast<size_t>(find_spec(a.kind)->num_params);
  if (count != expected)
    return invalid_model(node.describe() + ": activation " + name_attr->s + " takes " +
                         std::to_string(expected) + " activation_params, found " +
                         std::to_string(count));
  if (count > 0) a.alpha = params->floats[0];
  if (count > 1) a.beta = params->floats[1];
  return a;
}

Unary unary_of(const Activation& a) {
  Unary u;
  u.alpha = a.alpha;
  u.beta = a.beta;
  switch (a.kind) {
    case ActivationKind::kNone:
      u.op = UnaryOp::kIdentity;
      break;
    case ActivationKind::kRelu:
      u.op = UnaryOp::kRelu;
      break;
    case ActivationKind::kClip:
      u.op = UnaryOp::kClip;
      break;
    case ActivationKind::kLeakyRelu:
      u.op = UnaryOp::kLeakyRelu;
      break;
    case ActivationKind::kHardSigmoid:
      u.op = UnaryOp::kHardSigmoid;
      break;
    case ActivationKind::kHardSwish:
      u.op = UnaryOp::kHardSwish;
      break;
    case ActivationKind::kSigmoid:
      u.op = UnaryOp::kSigmoid;
      break;
    case ActivationKind::kSilu:
      u.op = UnaryOp::kSilu;
      break;
    case ActivationKind::kTanh:
      u.op = UnaryOp::kTanh;
      break;
    case ActivationKind::kGelu:
      u.op = UnaryOp::kGelu;
      break;
    case ActivationKind::kGeluTanh:
      u.op = UnaryOp::kGeluTanh;
      break;
  }
  return u;
}

void unary_f32(const Unary& u, const float* x, float* y, size_t n, Isa isa) {
  if (n == 0) return;
  BRINK_ISA_DISPATCH(usable_isa(isa), unary_f32, u, x, y, n)
}

void apply_activation(const Activation& a, float* data, size_t n, Isa isa) {
  if (a.none()) return;
  unary_f32(unary_of(a), data, data, n, isa);
}

void unary_not_built(UnaryOp op) {
  std::fprintf(stderr, "error: internal: unary function %d is not in this selective build\n",
               static_cast<int>(op));
  std::abort();
}

namespace portable {
void unary_f32(const Unary& u, const float* x, float* y, size_t n) {
  unary_f32_impl(u, x, y, n);
}
}  // namespace portable

}  // namespace brink::kernels
