#include "ops/op_groups.h"

#include <algorithm>

namespace brink::ops {

namespace {
OpRegistry build_registry() {
  OpRegistry r;
  register_elementwise_ops(r);
  register_conv_ops(r);
  register_pool_ops(r);
  register_normalization_ops(r);
  register_linalg_ops(r);
  register_reduce_ops(r);
  register_shape_ops(r);
  register_resize_ops(r);
  register_rnn_ops(r);
  register_quantized_ops(r);
  register_matmul_nbits_ops(r);
  register_loss_ops(r);
  register_signal_ops(r);
  register_detection_ops(r);
  register_control_flow_ops(r);
  register_fused_conv_ops(r);
  register_fused_matmul_ops(r);
  register_fused_transformer_ops(r);
  register_fused_pool_ops(r);
  register_fused_quantized_ops(r);
  return r;
}
std::string normalise_domain(const std::string& d) {
  return d == "ai.onnx" ? std::string() : d;
}
}  // namespace

const OpRegistry& OpRegistry::global() {
  static const OpRegistry registry = build_registry();
  return registry;
}

void OpRegistry::add(OpDef def) {
  auto& v = defs_[{def.domain, def.op_type}];
  v.push_back(std::move(def));
  std::sort(v.begin(), v.end(),
            [](const OpDef& a, const OpDef& b) { return a.since_version < b.since_version; });
}

const OpDef* OpRegistry::find(const std::string& domain, const std::string& op_type,
                              int64_t opset) const {
  auto it = defs_.find({normalise_domain(domain), op_type});
  if (it == defs_.end()) return nullptr;
  const OpDef* best = nullptr;
  for (const OpDef& d : it->second)
    if (d.since_version <= opset && opset <= d.max_version) best = &d;
  return best;
}

bool OpRegistry::knows(const std::string& domain, const std::string& op_type) const {
  return defs_.count({normalise_domain(domain), op_type}) > 0;
}

}  // namespace brink::ops
