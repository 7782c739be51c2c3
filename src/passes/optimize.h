// The compile step's graph optimizations, run on the IR before the runtime compiles it.
//
// optimize() rewrites a model into an equivalent one that runs faster: constants folded,
// dead and no-op nodes removed, BatchNorm folded into convolutions, Conv / MatMul / Gemm
// fused with their bias, activation and residual Add into brink-domain operators
// (docs/INTERNAL_OPS.md), QDQ patterns of quantized models turned into integer ops, decomposed
// LayerNorm / GELU / attention recognised, and at level 2 convolutions moved to NHWC with as few
// layout conversions as possible. Results stay the same up to float rounding; graph inputs and
// outputs keep their names and types. What a pass does not understand (unknown ops, non-float32
// tensors, shapes it cannot reason about, values read by If / Loop / Scan bodies) it leaves as it
// is. The passes one by one are in passes/passes.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "brink/status.h"
#include "ir/graph.h"

namespace brink::passes {

struct OptimizeOptions {
  int level = 2;            // 0: none; 1: folding, BN folding, fusions, DCE; 2: also NHWC layout
  bool nhwc_layout = true;  // allow the NHWC layout pass (level 2)
  std::map<std::string, int64_t>
      dim_values;  // same as SessionOptions::dim_values (symbolic dim -> value)
};

// What the passes did (counts of rewrites), for `brink info`.
struct OptimizeReport {
  int folded_batchnorms = 0, fused_activations = 0, fused_residual_adds = 0, fused_layernorms = 0,
      fused_gelus = 0, fused_attentions = 0, fused_matmul_bias = 0, layout_converted_nodes = 0,
      transposes_inserted = 0, removed_nodes = 0,
      fused_qdq = 0;  // QDQ patterns made integer ops (brink.QConv, ...)
};

Result<OptimizeReport> optimize(ir::Model& model, const OptimizeOptions& options);

}  // namespace brink::passes
