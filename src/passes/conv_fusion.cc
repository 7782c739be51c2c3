// Conv + bias + residual Add + activation -> brink.Conv.
//
// brink.Conv computes act(conv(X, W) + B + Z), so a chain fuses in that order only:
// Conv -> [Add per-channel constant]* -> [Add residual] -> [activation]. An activation
// before the residual Add ends the chain there (act(c) + z is not act(c + z)).
#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

// A constant that only varies along the channel axis of a rank-4 [N, M, H, W] tensor:
// [M, 1, 1], [1, M, 1, 1], [1], a scalar... Returns its M values.
std::optional<std::vector<float>> channel_bias(const GraphInfo& info, int v, int64_t m) {
  const Tensor* c = info.constant(v);
  if (!c || c->rank() > 4) return std::nullopt;
  const auto values = constant_as_floats(*c);
  if (!values) return std::nullopt;
  Shape dims(static_cast<size_t>(4 - c->rank()), 1);
  dims.insert(dims.end(), c->shape().begin(), c->shape().end());
  if (dims[0] != 1 || dims[2] != 1 || dims[3] != 1) return std::nullopt;
  if (dims[1] == m) return values;
  if (dims[1] == 1) return std::vector<float>(static_cast<size_t>(m), (*values)[0]);
  return std::nullopt;
}

}  // namespace

Status fuse_conv(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("Conv")) return Status::ok();
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  bool emitted = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& conv = g.nodes[i];
    if (!is_op(conv, "Conv") || rw.claimed(static_cast<int>(i)) || conv.inputs.size() < 2 ||
        conv.outputs.size() != 1)
      continue;
    const int x = conv.inputs[0], w = conv.inputs[1];
    const int b = conv.inputs.size() > 2 ? conv.inputs[2] : ir::kNoValue;
    if (!info.is_float32(x) || info.rank(x) != 4 || !info.is_float32(w) || info.rank(w) != 4 ||
        !info.is_float32(conv.outputs[0]) || info.rank(conv.outputs[0]) != 4)
      continue;
    if (b != ir::kNoValue && !info.is_float32(b)) continue;
    const ir::Dim& m_dim = (*info.type(w).dims)[0];
    const int64_t m = m_dim.known() ? m_dim.value : -1;

    std::vector<int> chain = {static_cast<int>(i)};
    int y = conv.outputs[0];
    // Per-channel constant Adds fold into B (when B is constant or absent).
    std::optional<std::vector<float>> bias;
    const Tensor* b_const = b != ir::kNoValue ? info.constant(b) : nullptr;
    const bool bias_foldable = m > 0 && (b == ir::kNoValue || b_const);
    for (;;) {
      const int n = info.sole_consumer(y);
      if (!bias_foldable || n < 0 || rw.claimed(n)) break;
      const ir::Node& add = g.nodes[static_cast<size_t>(n)];
      if (!is_op(add, "Add") || add.outputs.size() != 1) break;
      const int c = other_input(add, y);
      if (c == ir::kNoValue) break;
      const auto extra = channel_bias(info, c, m);
      if (!extra || !info.is_float32(add.outputs[0]) || info.rank(add.outputs[0]) != 4) break;
      if (!bias) {
        bias = b_const ? constant_as_floats(*b_const)
                       : std::vector<float>(static_cast<size_t>(m), 0.0f);
        if (!bias || static_cast<int64_t>(bias->size()) != m) break;
      }
      for (size_t k = 0; k < bias->size(); ++k) (*bias)[k] += (*extra)[k];
      chain.push_back(n);
      y = add.outputs[0];
    }
    // Residual Add of a tensor of the same shape.
    int z = ir::kNoValue;
    if (const int n = info.sole_consumer(y); n >= 0 && !rw.claimed(n)) {
      const ir::Node& add = g.nodes[static_cast<size_t>(n)];
      const int other =
          is_op(add, "Add") && add.outputs.size() == 1 ? other_input(add, y) : ir::kNoValue;
      if (other != ir::kNoValue && info.is_float32(other) &&
          same_shape(info.type(other), info.type(y)) &&
          same_shape(info.type(add.outputs[0]), info.type(y))) {
        z = other;
        chain.push_back(n);
        y = add.outputs[0];
      }
    }
    std::optional<ActivationMatch> act = match_activation(info, rw, y);
    if (act) {
      chain.insert(chain.end(), act->nodes.begin(), act->nodes.end());
      y = act->output;
    }

    ir::Node fused = conv;
    fused.domain = "brink";
    fused.inputs = {x, w, b, z};
    if (bias)
      fused.inputs[2] = add_initializer(g, g.value(w).name + "_fused_bias",
                                        Tensor::from_vector<float>({m}, *bias));
    while (fused.inputs.size() > 2 && fused.inputs.back() == ir::kNoValue) fused.inputs.pop_back();
    fused.outputs = {y};
    if (act) set_activation(fused, *act);
    int last = chain[0];
    for (int n : chain) last = std::max(last, n);
    for (int n : chain)
      if (n != last) rw.remove(n);
    rw.replace(last, std::move(fused));
    emitted = true;
    if (act) ++report.fused_activations;
    if (z != ir::kNoValue) ++report.fused_residual_adds;
  }
  if (emitted) import_brink_domain(model);
  rw.commit();
  return check_graph(model, "fuse_conv");
}

}  // namespace brink::passes
