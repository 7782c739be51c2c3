// The graph passes one by one (optimize() in passes/optimize.h runs them in order). Each
// rewrites `model` in place, adds what it did to `report`, and leaves a valid graph in node
// order; each is usable alone. They only fire on float32 tensors, and only emit a brink-
// domain operator when the runtime registers it.
#pragma once

#include "passes/optimize.h"

namespace brink::passes {

// DequantizeLinear -> Conv / Add / pools / data movement -> QuantizeLinear patterns of QDQ
// models (uint8 activations, symmetric int8 weights) become brink.QConv, brink.QAdd,
// QLinearGlobalAveragePool and the ops on uint8 values, so activations stay uint8.
Status fuse_qdq(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options = {});

// Replaces nodes whose inputs are all constant (Constant nodes, weight transposes, the
// Shape -> Gather -> Concat chains of exported models once shapes are static) by
// initializers. Skips random ops, control flow, graph outputs and very large results.
Status fold_constants(ir::Model& model, OptimizeReport& report,
                      const OptimizeOptions& options = {});

// Removes Identity and inference-mode Dropout nodes (their consumers read the input).
Status remove_identities(ir::Model& model, OptimizeReport& report,
                         const OptimizeOptions& options = {});

// Reshape / Flatten -> Reshape / Flatten, the first read by nothing else, becomes one
// Reshape to the second's (static) shape: one view, not two.
Status merge_reshapes(ir::Model& model, OptimizeReport& report,
                      const OptimizeOptions& options = {});

// Removes nodes no graph output depends on, and initializers nothing reads.
Status eliminate_dead_code(ir::Model& model, OptimizeReport& report,
                           const OptimizeOptions& options = {});

// Conv (constant W, B) -> BatchNormalization (constant params, inference): W and B absorb
// the normalization and the BN node goes.
Status fold_batchnorms(ir::Model& model, OptimizeReport& report,
                       const OptimizeOptions& options = {});

// 2-D Conv -> [Add per-channel constant] -> [Add residual of the same shape] -> [activation]
// becomes one brink.Conv (B, Z, activation); every float32 2-D Conv becomes brink.Conv.
Status fuse_conv(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options = {});

// MatMul -> [Add bias over the last axis] -> [activation], and Gemm (transA = 0, constant
// or 1-row C) -> [activation], become brink.MatMul.
Status fuse_matmul(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options = {});

// Decomposed LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, [Mul scale],
// [Add bias]) and ONNX LayerNormalization become brink.LayerNormalization.
Status fuse_layernorm(ir::Model& model, OptimizeReport& report,
                      const OptimizeOptions& options = {});

// Decomposed GELU (erf form in torch's export orders, tanh form) and ONNX Gelu become
// brink.Gelu.
Status fuse_gelu(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options = {});

// MatMul(Q, Kt) -> [scale] -> [Add mask] -> Softmax(last axis) -> MatMul(., V), with the
// scale also found on Q or Kt, becomes brink.Attention.
Status fuse_attention(ir::Model& model, OptimizeReport& report,
                      const OptimizeOptions& options = {});

// Runs 2-D float32 convolutions in NHWC and carries NHWC through layout-agnostic consumers
// (elementwise ops, Concat / Split, pools as brink pool ops, Slice, Reduce, Resize, channel
// shuffles), converting at the boundaries with Transpose (or a Reshape where H = W = 1).
Status convert_to_nhwc(ir::Model& model, OptimizeReport& report,
                       const OptimizeOptions& options = {});

// Transpose(Transpose(x, p), q): removed when the two cancel, merged otherwise; identity
// Transposes removed.
Status cancel_transposes(ir::Model& model, OptimizeReport& report,
                         const OptimizeOptions& options = {});

}  // namespace brink::passes
