#include "ops/evaluate.h"

#include <algorithm>
#include <memory>

namespace brink::ops {

Status run_kernel(const OpDef& def, Kernel& kernel, const ir::Node& node, int64_t opset,
                  const std::vector<const Tensor*>& inputs, std::vector<Tensor>* outputs,
                  int num_threads, const OuterScope* outer, ThreadPool* pool) {
  std::vector<TensorType> types(inputs.size());
  std::vector<const TensorType*> type_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    types[i] = TensorType::of(inputs[i]->dtype(), inputs[i]->shape());
    type_ptrs[i] = &types[i];
  }
  InferContext ictx(node, opset, type_ptrs, inputs);
  BRINK_RETURN_IF_ERROR(def.infer(ictx));
  outputs->assign(node.outputs.size(), Tensor());
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const TensorType& t = ictx.outputs()[i];
    if (t.is_static() && t.dtype != DataType::kUndefined)
      (*outputs)[i] = Tensor::empty(t.dtype, t.static_shape());
  }
  KernelContext kctx(inputs, outputs, num_threads);
  kctx.set_outer_scope(outer);
  kctx.set_thread_pool(pool);
  BRINK_RETURN_IF_ERROR(kernel.run(kctx));
  for (size_t i = 0; i < node.outputs.size(); ++i)
    if (node.outputs[i] != ir::kNoValue && !(*outputs)[i].defined())
      return internal_error(node.describe() + ": output " + std::to_string(i) +
                            " was not produced");
  return Status::ok();
}

Result<std::vector<Tensor>> evaluate_node(const ir::Node& node, int64_t opset,
                                          const std::vector<const Tensor*>& inputs,
                                          bool inputs_are_constant, int num_threads) {
  EvaluateOptions options;
  options.inputs_are_constant = inputs_are_constant;
  options.num_threads = num_threads;
  return evaluate_node(node, opset, inputs, options);
}

Result<std::vector<Tensor>> evaluate_node(const ir::Node& node, int64_t opset,
                                          const std::vector<const Tensor*>& inputs,
                                          const EvaluateOptions& options) {
  const bool inputs_are_constant = options.inputs_are_constant;
  const int num_threads = std::max(1, options.num_threads);
  const OpDef* def = OpRegistry::global().find(node.domain, node.op_type, opset);
  if (!def)
    return unsupported(node.describe() + ": operator is not supported at opset " +
                       std::to_string(opset));
  std::vector<TensorType> types(inputs.size());
  KernelCreateContext cctx{node, opset, {}, {}, {}, {}};
  cctx.isa = options.isa;
  cctx.int8_kernels = options.int8_kernels;
  cctx.num_threads = num_threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) types[i] = TensorType::of(inputs[i]->dtype(), inputs[i]->shape());
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    cctx.input_types.push_back(inputs[i] ? &types[i] : nullptr);
    cctx.constant_inputs.push_back(inputs_are_constant ? inputs[i] : nullptr);
  }
  {
    InferContext ictx(node, opset, cctx.input_types, inputs);
    BRINK_RETURN_IF_ERROR(def->infer(ictx));
    cctx.output_types = ictx.outputs();
  }
  BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, def->create(cctx));
  std::vector<Tensor> outputs;
  std::unique_ptr<ThreadPool> pool;
  if (num_threads > 1) pool = std::make_unique<ThreadPool>(num_threads);
  BRINK_RETURN_IF_ERROR(
      run_kernel(*def, *kernel, node, opset, inputs, &outputs, num_threads, nullptr, pool.get()));
  return outputs;
}

ir::Attribute make_attr(const std::string& name, int64_t v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInt;
  a.i = v;
  return a;
}
ir::Attribute make_attr(const std::string& name, float v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kFloat;
  a.f = v;
  return a;
}
ir::Attribute make_attr(const std::string& name, const std::string& v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kString;
  a.s = v;
  return a;
}
ir::Attribute make_attr(const std::string& name, const std::vector<int64_t>& v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInts;
  a.ints = v;
  return a;
}
ir::Attribute make_attr(const std::string& name, const std::vector<float>& v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kFloats;
  a.floats = v;
  return a;
}
ir::Attribute make_attr(const std::string& name, const Tensor& v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kTensor;
  a.t = v;
  return a;
}

ir::Node make_node(const std::string& op_type, size_t num_inputs, size_t num_outputs,
                   std::vector<ir::Attribute> attrs, const std::string& domain) {
  ir::Node n;
  n.name = op_type + "_test";
  n.op_type = op_type;
  n.domain = domain;
  for (size_t i = 0; i < num_inputs; ++i) n.inputs.push_back(static_cast<int>(i));
  for (size_t i = 0; i < num_outputs; ++i) n.outputs.push_back(static_cast<int>(num_inputs + i));
  n.attributes = std::move(attrs);
  return n;
}

Tensor shape_or_size_value(const ir::Node& node, const Shape& dims) {
  if (node.op_type == "Size") return Tensor::scalar<int64_t>(shape_numel(dims));
  const int64_t rank = static_cast<int64_t>(dims.size());
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(node.attr_int("start", 0)), end = clamp(node.attr_int("end", rank));
  std::vector<int64_t> sliced;
  for (int64_t k = start; k < end; ++k) sliced.push_back(dims[static_cast<size_t>(k)]);
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(sliced.size())}, sliced);
}

}  // namespace brink::ops
