// The per-ISA bodies of the binary and reduction kernels of elementwise.h, written once
// against elementwise_simd.h. Included by exactly one file per ISA (elementwise.cc for
// portable, elementwise_avx512.cc, elementwise_avx2.cc, elementwise_neon.cc), which defines
// the BRINK_SIMD_* target first.
#pragma once

#include "kernels/activation_math.h"
#include "kernels/elementwise.h"

namespace brink::kernels::BRINK_SIMD_NS {

template <BinaryOp Op>
BRINK_SIMD_INLINE Vf binary_apply(Vf a, Vf b) {
  switch (Op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
    case BinaryOp::kMax:
      // max(b, a) keeps a NaN in a; the select keeps one in b.
      return select(is_nan(b), b, max(b, a));
    case BinaryOp::kMin:
      return select(is_nan(b), b, min(b, a));
    case BinaryOp::kPRelu:
      return select(lt(a, set1(0.0f)), a * b, a);
  }
  return a;
}

template <BinaryOp Op, BinaryMode Mode>
void binary_run(const float* a, const float* b, float* y, size_t n) {
  const Vf as = Mode == BinaryMode::kScalarVec ? set1(*a) : set1(0.0f);
  const Vf bs = Mode == BinaryMode::kVecScalar ? set1(*b) : set1(0.0f);
  auto get_a = [&](size_t i) BRINK_SIMD_INLINE_LAMBDA {
    return Mode == BinaryMode::kScalarVec ? as : load(a + i);
  };
  auto get_b = [&](size_t i) BRINK_SIMD_INLINE_LAMBDA {
    return Mode == BinaryMode::kVecScalar ? bs : load(b + i);
  };
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const Vf r0 = binary_apply<Op>(get_a(i), get_b(i));
    const Vf r1 = binary_apply<Op>(get_a(i + kLanes), get_b(i + kLanes));
    store(y + i, r0);
    store(y + i + kLanes, r1);
  }
  for (; i + kLanes <= n; i += kLanes) store(y + i, binary_apply<Op>(get_a(i), get_b(i)));
  if (i < n) {
    const size_t m = n - i;
    const Vf va = Mode == BinaryMode::kScalarVec ? as : load_partial(a + i, m);
    const Vf vb = Mode == BinaryMode::kVecScalar ? bs : load_partial(b + i, m);
    store_partial(y + i, binary_apply<Op>(va, vb), m);
  }
}

template <BinaryOp Op>
BinaryRunFn binary_run_for_mode(BinaryMode mode) {
  switch (mode) {
    case BinaryMode::kVecVec:
      return &binary_run<Op, BinaryMode::kVecVec>;
    case BinaryMode::kVecScalar:
      return &binary_run<Op, BinaryMode::kVecScalar>;
    case BinaryMode::kScalarVec:
      return &binary_run<Op, BinaryMode::kScalarVec>;
  }
  return nullptr;
}

BinaryRunFn binary_run_fn(BinaryOp op, BinaryMode mode) {
  switch (op) {
    case BinaryOp::kAdd:
      return binary_run_for_mode<BinaryOp::kAdd>(mode);
    case BinaryOp::kSub:
      return binary_run_for_mode<BinaryOp::kSub>(mode);
    case BinaryOp::kMul:
      return binary_run_for_mode<BinaryOp::kMul>(mode);
    case BinaryOp::kDiv:
      return binary_run_for_mode<BinaryOp::kDiv>(mode);
    case BinaryOp::kMax:
      return binary_run_for_mode<BinaryOp::kMax>(mode);
    case BinaryOp::kMin:
      return binary_run_for_mode<BinaryOp::kMin>(mode);
    case BinaryOp::kPRelu:
      return binary_run_for_mode<BinaryOp::kPRelu>(mode);
  }
  return nullptr;
}

float sum_f32(const float* x, size_t n) {
  return row_sum(x, n);
}

void add_to_f32(const float* x, float* acc, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(acc + i, load(acc + i) + load(x + i));
  if (i < n)
    store_partial(acc + i, load_partial(acc + i, n - i) + load_partial(x + i, n - i), n - i);
}

}  // namespace brink::kernels::BRINK_SIMD_NS
