// Running one node outside a graph: infer output shapes from the actual inputs, allocate
// outputs, run the kernel. The executor, constant folding and the unit tests all go
// through run_kernel so that a node behaves the same everywhere.
#pragma once

#include <vector>

#include "ops/op.h"

namespace brink::ops {

// Infers concrete output shapes from `inputs` (nullptr = absent), allocates the outputs
// whose shapes are known, and runs `kernel` (with `outer` as the values its subgraphs may
// read from enclosing graphs). Checks afterwards that every present output
// was produced.
Status run_kernel(const OpDef& def, Kernel& kernel, const ir::Node& node, int64_t opset,
                  const std::vector<const Tensor*>& inputs, std::vector<Tensor>* outputs,
                  int num_threads, const OuterScope* outer = nullptr, ThreadPool* pool = nullptr);

// Looks up, prepares and runs `node` once. Inputs are also given to the prepare step as
// constants when `inputs_are_constant` (as for constant folding).
Result<std::vector<Tensor>> evaluate_node(const ir::Node& node, int64_t opset,
                                          const std::vector<const Tensor*>& inputs,
                                          bool inputs_are_constant = true, int num_threads = 1);

// The value of a Shape or Size node (ai.onnx) whose input has the static shape `dims`: what
// constant folding puts in place of such nodes (they read only their input's type).
Tensor shape_or_size_value(const ir::Node& node, const Shape& dims);

// How evaluate_node prepares and runs a node; tests use it to check every kernel variant.
struct EvaluateOptions {
  bool inputs_are_constant = true;  // give inputs to the prepare step as constants
  int num_threads = 1;              // > 1 runs the kernel with a pool of that many threads
  Isa isa = best_isa();             // the kernel variant to prepare
  Int8Kernels int8_kernels = Int8Kernels::kInteger;  // quantized layers with a float path
};
Result<std::vector<Tensor>> evaluate_node(const ir::Node& node, int64_t opset,
                                          const std::vector<const Tensor*>& inputs,
                                          const EvaluateOptions& options);

// Attribute builders, for tests and for graph rewrites.
ir::Attribute make_attr(const std::string& name, int64_t v);
ir::Attribute make_attr(const std::string& name, float v);
ir::Attribute make_attr(const std::string& name, const std::string& v);
ir::Attribute make_attr(const std::string& name, const std::vector<int64_t>& v);
ir::Attribute make_attr(const std::string& name, const std::vector<float>& v);
ir::Attribute make_attr(const std::string& name, const Tensor& v);

// A node with `num_inputs` inputs and `num_outputs` outputs (value indices 0.. are
// placeholders), as evaluate_node needs. Absent inputs are passed as nullptr there.
ir::Node make_node(const std::string& op_type, size_t num_inputs, size_t num_outputs,
                   std::vector<ir::Attribute> attrs = {}, const std::string& domain = "");

}  // namespace brink::ops
