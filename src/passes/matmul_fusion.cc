// MatMul / Gemm + bias + activation -> brink.MatMul (Y = act(A @ B + bias), bias [N]).
#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

// A constant that only varies along the last axis of a rank-`rank` [..., N] result:
// [N], [1, N], [1, 1, N], a scalar... Returns its N values.
std::optional<std::vector<float>> row_bias(const Tensor& c, int64_t n, int64_t rank) {
  if (c.rank() > rank) return std::nullopt;
  const auto values = constant_as_floats(c);
  if (!values) return std::nullopt;
  for (int64_t d = 0; d + 1 < c.rank(); ++d)
    if (c.dim(d) != 1) return std::nullopt;
  const int64_t last = c.rank() == 0 ? 1 : c.dim(c.rank() - 1);
  if (last == n) return values;
  if (last == 1) return std::vector<float>(static_cast<size_t>(n), (*values)[0]);
  return std::nullopt;
}

int64_t last_dim(const GraphInfo& info, int v) {
  const ir::TensorType& t = info.type(v);
  if (!t.dims || t.dims->empty() || !t.dims->back().known()) return -1;
  return t.dims->back().value;
}

}  // namespace

Status fuse_matmul(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("MatMul")) return Status::ok();
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  bool emitted = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    const bool is_gemm = is_op(node, "Gemm");
    if ((!is_gemm && !is_op(node, "MatMul")) || rw.claimed(static_cast<int>(i)) ||
        node.inputs.size() < 2 || node.outputs.size() != 1)
      continue;
    int a = node.inputs[0], b = node.inputs[1];
    int y = node.outputs[0];
    if (!info.is_float32(a) || !info.is_float32(b) || !info.is_float32(y) || info.rank(a) < 1 ||
        info.rank(b) < 1 || info.rank(y) < 0)
      continue;
    const int64_t n = last_dim(info, y);
    int64_t trans_b = 0;
    std::optional<std::vector<float>> bias;
    if (is_gemm) {
      if (node.attr_int("transA", 0) != 0 || info.rank(a) != 2 || info.rank(b) != 2) continue;
      trans_b = node.attr_int("transB", 0);
      const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
      const int c = node.inputs.size() > 2 ? node.inputs[2] : ir::kNoValue;
      if (c != ir::kNoValue && beta != 0.0f) {
        const Tensor* ct = info.constant(c);
        if (!ct || n < 0 || (ct->rank() == 2 && ct->dim(0) != 1)) continue;
        bias = row_bias(*ct, n, 2);
        if (!bias) continue;
        for (float& v : *bias) v *= beta;
      }
      if (alpha != 1.0f) {
        const Tensor* bt = info.constant(b);
        if (!bt || bt->dtype() != DataType::kFloat32) continue;
        Tensor scaled = Tensor::empty(DataType::kFloat32, bt->shape());
        for (int64_t k = 0; k < bt->numel(); ++k)
          scaled.data<float>()[k] = bt->data<float>()[k] * alpha;
        b = add_initializer(g, g.value(b).name + "_alpha", scaled);
      }
    }
    std::vector<int> chain = {static_cast<int>(i)};
    // Bias Adds over the last axis (not for a 1-D B: the result then has no N axis).
    while (n > 0 && info.rank(node.inputs[1]) >= 2) {  // b may be a new value info lacks
      const int c_node = info.sole_consumer(y);
      if (c_node < 0 || rw.claimed(c_node)) break;
      const ir::Node& add = g.nodes[static_cast<size_t>(c_node)];
      if (!is_op(add, "Add") || add.outputs.size() != 1) break;
      const int c = other_input(add, y);
      const Tensor* ct = c != ir::kNoValue ? info.constant(c) : nullptr;
      if (!ct || !info.is_float32(add.outputs[0]) ||
          !same_shape(info.type(add.outputs[0]), info.type(y)))
        break;
      const auto extra = row_bias(*ct, n, info.rank(y));
      if (!extra) break;
      if (!bias) bias = std::vector<float>(static_cast<size_t>(n), 0.0f);
      for (size_t k = 0; k < bias->size(); ++k) (*bias)[k] += (*extra)[k];
      chain.push_back(c_node);
      y = add.outputs[0];
    }
    std::optional<ActivationMatch> act = match_activation(info, rw, y);
    if (act) {
      chain.insert(chain.end(), act->nodes.begin(), act->nodes.end());
      y = act->output;
    }

    ir::Node fused;
    fused.name = node.name;
    fused.op_type = "MatMul";
    fused.domain = "brink";
    fused.doc_string = node.doc_string;
    fused.inputs = {a, b};
    if (bias)
      fused.inputs.push_back(
          add_initializer(g, g.value(b).name + "_bias", Tensor::from_vector<float>({n}, *bias)));
    fused.outputs = {y};
    if (trans_b) fused.attributes.push_back(ops::make_attr("trans_b", int64_t{1}));
    if (act) set_activation(fused, *act);
    int last = chain[0];
    for (int k : chain) last = std::max(last, k);
    for (int k : chain)
      if (k != last) rw.remove(k);
    rw.replace(last, std::move(fused));
    emitted = true;
    if (bias) ++report.fused_matmul_bias;
    if (act) ++report.fused_activations;
  }
  if (emitted) import_brink_domain(model);
  rw.commit();
  return check_graph(model, "fuse_matmul");
}

}  // namespace brink::passes
