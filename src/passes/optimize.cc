// The pass pipeline.
//
// Order matters: QDQ fusion before folding, which would turn DequantizeLinear(constant
// int8 weight) into a float weight; folding next, so later patterns see constants (Clip bounds,
// bias vectors, reshape targets); BatchNorm folding before Conv fusion, since the fused op has no
// BN; the transformer patterns before MatMul fusion, which would otherwise take their MatMuls, and
// GELU before it, so a brink.Gelu after a MatMul becomes its activation; layout last, on the fused
// convolutions.
#include "passes/optimize.h"

#include "passes/passes.h"

namespace brink::passes {

Result<OptimizeReport> optimize(ir::Model& model, const OptimizeOptions& options) {
  OptimizeReport report;
  if (options.level <= 0) return report;
  using PassFn = Status (*)(ir::Model&, OptimizeReport&, const OptimizeOptions&);
  std::vector<PassFn> pipeline = {fuse_qdq,       fold_constants,      remove_identities,
                                  merge_reshapes, eliminate_dead_code, fold_batchnorms,
                                  fuse_layernorm, fuse_gelu,           fuse_attention,
                                  fuse_conv,      fuse_matmul,         eliminate_dead_code};
  if (options.level >= 2 && options.nhwc_layout) {
    pipeline.push_back(convert_to_nhwc);
    pipeline.push_back(merge_reshapes);  // the layout's Reshape back to NCHW, then a Flatten
    pipeline.push_back(eliminate_dead_code);
  }
  BRINK_RETURN_IF_ERROR(ir::verify(model));
  for (PassFn pass : pipeline) {
    // A pass that fails (which would be a bug: passes skip what they do not understand)
    // is undone, so the model stays valid and equivalent; the unit tests run every pass
    // alone and see the error.
    ir::Model before = model;  // cheap: tensors share their storage
    OptimizeReport counts = report;
    if (pass(model, counts, options).is_ok()) {
      report = counts;
    } else {
      model = std::move(before);
    }
  }
  return report;
}

}  // namespace brink::passes
