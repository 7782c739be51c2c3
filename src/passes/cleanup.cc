// Constant folding, Identity / Dropout removal, merging of consecutive reshapes and dead-code
// elimination.
#include <algorithm>
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

namespace {
// Reshape and Flatten: views whose output is the input's bytes in a new shape.
bool is_reshape_view(const ir::Node& n) {
  return (is_op(n, "Reshape") || is_op(n, "Flatten")) && !n.inputs.empty() &&
         n.inputs[0] != ir::kNoValue && n.outputs.size() == 1 && n.outputs[0] != ir::kNoValue;
}
}  // namespace

Status merge_reshapes(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  // A merge can expose another (three views in a row): go until nothing changes.
  for (bool changed = true; changed;) {
    changed = false;
    const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
    Rewriter rw(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (rw.claimed(static_cast<int>(i)) || !is_reshape_view(g.nodes[i])) continue;
      const ir::Node second = g.nodes[i];
      const int first = info.producer(second.inputs[0]);
      if (first < 0 || rw.claimed(first) || !is_reshape_view(g.nodes[static_cast<size_t>(first)]) ||
          info.sole_consumer(second.inputs[0]) != static_cast<int>(i))
        continue;
      // The merged Reshape names the final shape outright: it must be static, without zeros
      // (Reshape would read a 0 as "copy this dim").
      const ir::TensorType& out = info.type(second.outputs[0]);
      if (!out.is_static()) continue;
      const Shape shape = out.static_shape();
      if (std::find(shape.begin(), shape.end(), 0) != shape.end()) continue;
      ir::Node merged;
      merged.name = second.name;
      merged.op_type = "Reshape";
      merged.inputs = {g.nodes[static_cast<size_t>(first)].inputs[0],
                       add_initializer(g, second.name + "_shape",
                                       Tensor::from_vector<int64_t>(
                                           {static_cast<int64_t>(shape.size())}, shape))};
      merged.outputs = second.outputs;
      rw.claim(first);
      rw.claim(static_cast<int>(i));
      rw.remove(first);
      rw.replace(static_cast<int>(i), std::move(merged));
      ++report.removed_nodes;
      changed = true;
    }
    rw.commit();
  }
  OptimizeReport scratch;  // the first reshapes' shape constants, now unread
  BRINK_RETURN_IF_ERROR(eliminate_dead_code(model, scratch, options));
  return check_graph(model, "merge_reshapes");
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
