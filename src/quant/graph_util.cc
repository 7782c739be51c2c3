#include "quant/graph_util.h"

#include <algorithm>
#include <utility>

namespace brink::quant {

bool is_initializer(const ir::Graph& g, int v) {
  return v >= 0 && g.value(v).constant.has_value() && g.value(v).producer < 0 &&
         std::find(g.initializers.begin(), g.initializers.end(), v) != g.initializers.end();
}

const Tensor* f32_initializer(const ir::Graph& g, int v) {
  if (!is_initializer(g, v)) return nullptr;
  const Tensor& t = *g.value(v).constant;
  return t.dtype() == DataType::kFloat32 ? &t : nullptr;
}

int64_t tensor_bytes(const ir::Graph& g, int v) {
  return v >= 0 && g.value(v).constant ? static_cast<int64_t>(g.value(v).constant->nbytes()) : 0;
}

std::string node_label(const ir::Graph& g, const ir::Node& n) {
  if (!n.name.empty()) return n.name;
  return n.outputs.empty() || n.outputs[0] < 0 ? n.op_type : g.value(n.outputs[0]).name;
}

bool has_subgraphs(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes)
    for (const ir::Attribute& a : n.attributes)
      if (a.type == ir::AttrType::kGraph || a.type == ir::AttrType::kGraphs) return true;
  return false;
}

ir::Node make_node(const std::string& op, const std::string& name, std::vector<int> inputs,
                   std::vector<int> outputs) {
  ir::Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

std::vector<std::vector<passes::Use>> value_readers(const ir::Graph& g) {
  std::vector<std::vector<passes::Use>> readers(g.values.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (size_t s = 0; s < g.nodes[i].inputs.size(); ++s) {
      const int in = g.nodes[i].inputs[s];
      if (in >= 0)
        readers[static_cast<size_t>(in)].push_back({static_cast<int>(i), static_cast<int>(s)});
    }
  return readers;
}

void recompute_producers(ir::Graph& g) {
  for (ir::Value& v : g.values) v.producer = -1;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int out : g.nodes[i].outputs)
      if (out >= 0) g.value(out).producer = static_cast<int>(i);
}

NodeNames::NodeNames(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes) used_.insert(n.name);
}

std::string NodeNames::operator()(const std::string& base) {
  std::string name = base;
  for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

}  // namespace brink::quant
