// Shared between linalg.cc (ONNX MatMul, Gemm) and fused_matmul.cc (brink.MatMul): the
// reference kernels, which are the oracle for the fast ones (tests call them directly), the
// MatMul shape rule, and the fast float32 MatMul kernel both MatMul ops use.
#pragma once

#include <memory>

#include "brink/tensor.h"
#include "kernels/activation.h"
#include "ops/op.h"

namespace brink::ops {

// Output type of MatMul(A, B) (numpy broadcasting of batch dims, 1-D promotion), B given as
// [..., N, K] when `trans_b`. Checks only shapes: the caller checks dtypes first.
Status infer_matmul_shape(InferContext& ctx, bool trans_b);

// Reference MatMul for every dtype MatMul supports; `y` allocated with the output shape.
Status matmul_reference(const Tensor& a, const Tensor& b, Tensor& y);

// Reference Gemm: y = alpha * A' * B' + beta * C (C optional, unidirectionally broadcast).
Status gemm_reference(const Tensor& a, const Tensor& b, const Tensor* c, bool trans_a, bool trans_b,
                      float alpha, float beta, Tensor& y);

// Reference brink.MatMul (float32): y = act(A @ B' + bias), B' = B or, with trans_b, B with
// its last two axes swapped; bias [N] or nullptr.
Status fused_matmul_reference(const Tensor& a, const Tensor& b, const Tensor* bias, bool trans_b,
                              const kernels::Activation& act, Tensor& y);

// The fast float32 MatMul (kernels::gemm): packs a constant B once here, a non-constant one
// per call. Input 2, when present, is a bias [N]. Used by ONNX MatMul (float32) and
// brink.MatMul.
Result<std::unique_ptr<Kernel>> create_fast_matmul(const KernelCreateContext& c, bool trans_b,
                                                   const kernels::Activation& act);

}  // namespace brink::ops
