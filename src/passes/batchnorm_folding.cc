// BatchNormalization folded into the convolution before it.
//
// y = scale * (conv(x, W) + B - mean) / sqrt(var + eps) + bias
//   = conv(x, W * s) + (B - mean) * s + bias,   s = scale / sqrt(var + eps) per channel,
// computed in double and stored as new initializers (W may be shared with other nodes).
#include <cmath>

#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

// The per-channel parameter as doubles when it is a constant of `channels` elements.
std::optional<std::vector<double>> channel_param(const GraphInfo& info, int v, int64_t channels) {
  const Tensor* c = info.constant(v);
  if (!c || c->numel() != channels) return std::nullopt;
  if (!constant_as_floats(*c)) return std::nullopt;  // real dtypes only
  std::vector<double> out(static_cast<size_t>(channels));
  for (int64_t i = 0; i < channels; ++i) out[static_cast<size_t>(i)] = c->element_as_double(i);
  return out;
}

}  // namespace

Status fold_batchnorms(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& bn = g.nodes[i];
    if (!is_op(bn, "BatchNormalization") || bn.inputs.size() != 5 || bn.outputs.empty()) continue;
    const int64_t opset = info.opset(bn);
    if (opset >= 14 && bn.attr_int("training_mode", 0) != 0) continue;
    if (opset < 9 && bn.attr_int("spatial", 1) != 1) continue;
    bool extra_outputs_used = false;
    for (size_t k = 1; k < bn.outputs.size(); ++k) {
      const int v = bn.outputs[k];
      if (v != ir::kNoValue && (!info.uses(v).empty() || info.is_graph_output(v) || info.pinned(v)))
        extra_outputs_used = true;
    }
    const int x = bn.inputs[0], y = bn.outputs[0];
    if (extra_outputs_used || y == ir::kNoValue || !info.is_float32(x)) continue;
    const int p = info.producer(x);
    if (p < 0 || rw.claimed(p) || info.sole_consumer(x) != static_cast<int>(i)) continue;
    const ir::Node& conv = g.nodes[static_cast<size_t>(p)];
    if (!is_op(conv, "Conv") || conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
    const Tensor* w = info.constant(conv.inputs[1]);
    if (!w || w->dtype() != DataType::kFloat32 || w->rank() < 3) continue;
    const int64_t m = w->dim(0);
    const bool has_bias = conv.inputs.size() > 2 && conv.inputs[2] != ir::kNoValue;
    std::vector<double> b(static_cast<size_t>(m), 0.0);
    if (has_bias) {
      auto bv = channel_param(info, conv.inputs[2], m);
      if (!bv) continue;
      b = *bv;
    }
    const auto scale = channel_param(info, bn.inputs[1], m),
               shift = channel_param(info, bn.inputs[2], m),
               mean = channel_param(info, bn.inputs[3], m),
               var = channel_param(info, bn.inputs[4], m);
    if (!scale || !shift || !mean || !var) continue;
    const double eps = bn.attr_float("epsilon", 1e-5f);

    Tensor new_w = Tensor::empty(DataType::kFloat32, w->shape());
    std::vector<float> new_b(static_cast<size_t>(m));
    const int64_t per_channel = w->numel() / std::max<int64_t>(m, 1);
    for (int64_t c = 0; c < m; ++c) {
      const size_t ci = static_cast<size_t>(c);
      const double s = (*scale)[ci] / std::sqrt((*var)[ci] + eps);
      const float* src = w->data<float>() + c * per_channel;
      float* dst = new_w.data<float>() + c * per_channel;
      for (int64_t k = 0; k < per_channel; ++k) dst[k] = static_cast<float>(src[k] * s);
      new_b[ci] = static_cast<float>((b[ci] - (*mean)[ci]) * s + (*shift)[ci]);
    }
    ir::Node folded = conv;
    folded.inputs.resize(3);
    folded.inputs[1] = add_initializer(g, g.value(conv.inputs[1]).name + "_bn", new_w);
    folded.inputs[2] = add_initializer(g, g.value(conv.inputs[1]).name + "_bn_bias",
                                       Tensor::from_vector<float>({m}, new_b));
    folded.outputs[0] = y;
    rw.replace(p, std::move(folded));
    rw.remove(static_cast<int>(i));
    ++report.folded_batchnorms;
  }
  rw.commit();
  return check_graph(model, "fold_batchnorms");
}

}  // namespace brink::passes
