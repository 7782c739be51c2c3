// Constant folding, Identity / Dropout removal and dead-code elimination.
#include <set>

#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

Status fold_constants(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    bool foldable = false;
    for (int out : node.outputs) {
      if (out == ir::kNoValue) continue;
      // A graph output stays a node output: tools expect outputs to be computed.
      if (!info.is_folded(out) || info.is_graph_output(out)) {
        foldable = false;
        break;
      }
      foldable = true;
    }
    if (!foldable) continue;
    for (int out : node.outputs) {
      if (out == ir::kNoValue) continue;
      const Tensor t = *info.constant(out);
      ir::Value& v = g.value(out);
      v.constant = t;
      v.type = ir::TensorType::of(t.dtype(), t.shape());
      g.initializers.push_back(out);
    }
    rw.remove(static_cast<int>(i));
    ++report.removed_nodes;
  }
  rw.commit();
  return check_graph(model, "fold_constants");
}

Status remove_identities(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  // A removal can expose another (Identity of an Identity), so go until nothing changes.
  for (bool changed = true; changed;) {
    changed = false;
    const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
    Rewriter rw(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (rw.claimed(static_cast<int>(i))) continue;
      const ir::Node& node = g.nodes[i];
      if (node.inputs.empty() || node.outputs.empty() || node.inputs[0] == ir::kNoValue ||
          node.outputs[0] == ir::kNoValue)
        continue;
      if (is_op(node, "Dropout")) {
        // Inference mode unless training_mode is given and not a constant false.
        if (node.inputs.size() > 2 && node.inputs[2] != ir::kNoValue) {
          const auto training = scalar_constant(info, node.inputs[2]);
          if (!training || *training != 0.0) continue;
        }
        if (node.outputs.size() > 1 && node.outputs[1] != ir::kNoValue) {
          const int mask = node.outputs[1];
          if (!info.uses(mask).empty() || info.is_graph_output(mask) || info.pinned(mask)) continue;
        }
      } else if (!is_op(node, "Identity") || node.inputs.size() != 1) {
        continue;
      }
      const int x = node.inputs[0], y = node.outputs[0];
      if (info.dtype(x) != DataType::kUndefined && info.dtype(y) != DataType::kUndefined &&
          info.dtype(x) != info.dtype(y))
        continue;
      if (!info.is_graph_output(y) && !info.pinned(y)) {
        replace_uses(g, y, x);
      } else {
        // y must keep its name: let x's producer write y instead, when x is only read here.
        const int p = info.producer(x);
        if (p < 0 || !info.internal(x) || info.uses(x).size() != 1 || rw.claimed(p)) continue;
        for (int& out : g.nodes[static_cast<size_t>(p)].outputs)
          if (out == x) out = y;
        rw.claim(p);
      }
      rw.remove(static_cast<int>(i));
      ++report.removed_nodes;
      changed = true;
    }
    rw.commit();
  }
  return check_graph(model, "remove_identities");
}

Status eliminate_dead_code(ir::Model& model, OptimizeReport& report,
                           const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  std::vector<char> live(g.values.size(), 0);
  for (int v : g.outputs) live[static_cast<size_t>(v)] = 1;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (info.pinned(static_cast<int>(v))) live[v] = 1;
  Rewriter rw(g);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const ir::Node& node = g.nodes[i];
    bool alive = false;
    for (int out : node.outputs)
      if (out != ir::kNoValue && live[static_cast<size_t>(out)]) alive = true;
    if (!alive) {
      rw.remove(static_cast<int>(i));
      ++report.removed_nodes;
      continue;
    }
    for (int in : node.inputs)
      if (in != ir::kNoValue) live[static_cast<size_t>(in)] = 1;
  }
  rw.commit();

  // Initializers nothing reads go, except those the file also lists as graph inputs (a
  // caller may feed them).
  std::set<int> keep(g.initializer_inputs.begin(), g.initializer_inputs.end());
  std::vector<int> initializers;
  for (int v : g.initializers) {
    if (live[static_cast<size_t>(v)] || keep.count(v)) {
      initializers.push_back(v);
    } else {
      g.value(v).constant.reset();
    }
  }
  g.initializers = std::move(initializers);
  std::vector<char> defined(g.values.size(), 0);
  for (int v : g.inputs) defined[static_cast<size_t>(v)] = 1;
  for (int v : g.initializers) defined[static_cast<size_t>(v)] = 1;
  for (int v : g.initializer_inputs) defined[static_cast<size_t>(v)] = 1;
  for (const ir::Node& n : g.nodes)
    for (int v : n.outputs)
      if (v != ir::kNoValue) defined[static_cast<size_t>(v)] = 1;
  std::vector<int> value_infos;
  for (int v : g.value_infos)
    if (defined[static_cast<size_t>(v)]) value_infos.push_back(v);
  g.value_infos = std::move(value_infos);
  return check_graph(model, "eliminate_dead_code");
}

}  // namespace brink::passes
