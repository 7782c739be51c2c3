// Selective builds: which operators this runtime registers.
//
// A device that runs known packages needs only their operators. Configure with
// -DBRINK_SELECTED_OPS=ops.txt (the list `brink info MODEL.brink --ops` prints, one
// "domain:OpType" per line, "OpType" alone for ai.onnx) and every register_*_ops function
// keeps only those: each registration is written as
//
//   if constexpr (op_selected("", "Identity")) r.add(identity_op());
//
// so an unselected operator's kernels are never referenced, never emitted, and never linked.
// Without a list every operator is selected. An operator whose kernel builds on another
// operator's definition at load (a fused brink op reusing the ONNX reference, say) selects
// that one too: kOpDependencies below. Running a package that needs an operator this build
// left out fails at load with the usual "unsupported operator" error, naming it.
//
// Activations fused into other operators (brink:Conv's `activation`) are listed as
// "brink.activation:HardSwish" and so on. They select nothing to register; kernels with a
// specialized epilogue per activation keep only the selected ones (activation_selected), and
// run any other one as a separate pass over their output -- slower, never wrong. Likewise the
// float depthwise convolutions' rows per kernel width and stride, listed as
// "brink.depthwise:k3s1" (k3s2, k5s1, k5s2, general; "partial" for channel counts that leave
// a partial vector block): a fast row left out runs on the general row (same results), and a
// layer needing a row the build cannot replace is refused at load, naming the line to add.
// brink:Conv's reference fallback, for convolutions its fast kernels do not take, is kept
// only when listed as "brink.conv:reference".
#pragma once

#include <string_view>

namespace brink::ops {
struct OpName {
  std::string_view domain;  // "" for ai.onnx
  std::string_view op_type;
};
}  // namespace brink::ops

// selection::kAllOps and selection::kSelectedOps, written by CMake into the build tree
// (cmake/selected_ops.cmake).
#include "ops/selected_ops.inc"

namespace brink::ops {

// (needed by, needs): operators whose kernels look another operator up in the registry.
inline constexpr OpName kOpDependencies[][2] = {
    {{"brink", "QConv"}, {"", "QLinearConv"}},
    {{"brink", "QAdd"}, {"com.microsoft", "QLinearAdd"}},
    {{"brink", "LayerNormalization"}, {"", "LayerNormalization"}},
    {{"brink", "Gelu"}, {"", "Gelu"}},
};

constexpr bool op_listed(std::string_view domain, std::string_view op_type) {
  for (const OpName& o : selection::kSelectedOps)
    if (o.domain == domain && o.op_type == op_type) return true;
  return false;
}

// True when this build registers `op_type` of `domain`.
constexpr bool op_selected(std::string_view domain, std::string_view op_type) {
  if (selection::kAllOps || op_listed(domain, op_type)) return true;
  for (const auto& [user, needed] : kOpDependencies)
    if (needed.domain == domain && needed.op_type == op_type &&
        op_listed(user.domain, user.op_type))
      return true;
  return false;
}

// True when this build specializes kernels for the fused activation `name` (its
// activation attribute, e.g. "HardSwish"): always without a list.
constexpr bool activation_selected(std::string_view name) {
  return selection::kAllOps || op_listed("brink.activation", name);
}

// True when this build registers an operator with subgraphs (If, Loop, Scan): the runtime
// compiles subgraphs only for those.
constexpr bool subgraph_ops_selected() {
  return op_selected("", "If") || op_selected("", "Loop") || op_selected("", "Scan");
}

// True when this build keeps brink:Conv's reference fallback ("brink.conv:reference"), for
// the convolutions its fast kernels do not take (ops::fast_conv_applies).
constexpr bool conv_reference_selected() {
  return selection::kAllOps || op_listed("brink.conv", "reference");
}

// True when this build keeps the float depthwise fast path `name` ("k3s1", ...).
constexpr bool depthwise_path_selected(std::string_view name) {
  return selection::kAllOps || op_listed("brink.depthwise", name);
}

}  // namespace brink::ops
