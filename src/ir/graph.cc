#include "ir/graph.h"

#include <algorithm>
#include <set>

namespace brink::ir {

std::string Dim::to_string() const {
  if (known()) return std::to_string(value);
  return param.empty() ? "?" : param;
}

TensorType TensorType::of(DataType t, const Shape& shape) {
  std::vector<Dim> d(shape.begin(), shape.end());
  return TensorType(t, std::move(d));
}

bool TensorType::is_static() const {
  if (!dims) return false;
  return std::all_of(dims->begin(), dims->end(), [](const Dim& d) { return d.known(); });
}

Shape TensorType::static_shape() const {
  Shape s;
  if (dims)
    for (const Dim& d : *dims) s.push_back(d.value);
  return s;
}

std::string TensorType::to_string() const {
  std::string s = dtype_name(dtype);
  if (!dims) return s + "[?...]";
  s += "[";
  for (size_t i = 0; i < dims->size(); ++i) {
    if (i) s += ", ";
    s += (*dims)[i].to_string();
  }
  return s + "]";
}

const Attribute* Node::attr(const std::string& attr_name) const {
  for (const Attribute& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

int64_t Node::attr_int(const std::string& attr_name, int64_t fallback) const {
  const Attribute* a = attr(attr_name);
  return a ? a->i : fallback;
}

float Node::attr_float(const std::string& attr_name, float fallback) const {
  const Attribute* a = attr(attr_name);
  if (!a) return fallback;
  return a->type == AttrType::kInt ? static_cast<float>(a->i) : a->f;
}

std::string Node::attr_string(const std::string& attr_name, const std::string& fallback) const {
  const Attribute* a = attr(attr_name);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& attr_name) const {
  const Attribute* a = attr(attr_name);
  return a ? a->ints : std::vector<int64_t>{};
}

std::vector<float> Node::attr_floats(const std::string& attr_name) const {
  const Attribute* a = attr(attr_name);
  return a ? a->floats : std::vector<float>{};
}

std::string Node::describe() const {
  std::string d = name.empty() ? std::string("unnamed node (") : "node '" + name + "' (";
  if (!domain.empty()) d.append(domain).append(".");
  d.append(op_type).append(")");
  return d;
}

int Graph::find_value(const std::string& value_name) const {
  auto it = index_.find(value_name);
  return it == index_.end() ? kNoValue : it->second;
}

int Graph::add_value(const std::string& value_name, TensorType type) {
  Value v;
  v.name = value_name;
  v.type = std::move(type);
  values.push_back(std::move(v));
  const int idx = static_cast<int>(values.size()) - 1;
  if (!value_name.empty()) index_[value_name] = idx;
  return idx;
}

int64_t Model::opset(const std::string& op_domain) const {
  const bool is_default = op_domain.empty() || op_domain == "ai.onnx";
  for (const OperatorSetId& o : opset_imports) {
    const bool match =
        is_default ? (o.domain.empty() || o.domain == "ai.onnx") : o.domain == op_domain;
    if (match) return o.version;
  }
  return 0;
}

Status topological_sort(Graph& graph) {
  const size_t n = graph.nodes.size();
  std::vector<int> producer(graph.values.size(), -1);
  for (size_t i = 0; i < n; ++i)
    for (int out : graph.nodes[i].outputs)
      if (out != kNoValue) producer[static_cast<size_t>(out)] = static_cast<int>(i);
  // Kahn's algorithm, stable: among ready nodes the earliest in file order goes first.
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (size_t i = 0; i < n; ++i) {
    std::set<int> deps;
    for (int in : graph.nodes[i].inputs)
      if (in != kNoValue && producer[static_cast<size_t>(in)] >= 0)
        deps.insert(producer[static_cast<size_t>(in)]);
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) users[static_cast<size_t>(d)].push_back(static_cast<int>(i));
  }
  std::set<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(static_cast<int>(i));
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int u : users[static_cast<size_t>(i)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.insert(u);
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        return invalid_model("graph has a cycle through " + graph.nodes[i].describe());
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(graph.nodes[static_cast<size_t>(i)]));
  graph.nodes = std::move(sorted);
  for (auto& v : graph.values) v.producer = -1;
  for (size_t i = 0; i < n; ++i)
    for (int out : graph.nodes[i].outputs)
      if (out != kNoValue) graph.values[static_cast<size_t>(out)].producer = static_cast<int>(i);
  return Status::ok();
}

Status verify(const Model& model) {
  const Graph& g = model.graph;
  std::vector<std::string> problems;
  std::vector<bool> defined(g.values.size(), false);
  for (int i : g.inputs) defined[static_cast<size_t>(i)] = true;
  for (int i : g.initializers) defined[static_cast<size_t>(i)] = true;
  for (const Node& node : g.nodes) {
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int in = node.inputs[k];
      if (in == kNoValue) continue;
      if (in < 0 || static_cast<size_t>(in) >= g.values.size()) {
        problems.push_back(node.describe() + ": input " + std::to_string(k) + " is out of range");
      } else if (!defined[static_cast<size_t>(in)]) {
        problems.push_back(node.describe() + ": input '" + g.values[static_cast<size_t>(in)].name +
                           "' is not a graph input, an initializer, or an earlier node's output");
      }
    }
    for (int out : node.outputs) {
      if (out == kNoValue) continue;
      if (defined[static_cast<size_t>(out)])
        problems.push_back(node.describe() + ": output '" +
                           g.values[static_cast<size_t>(out)].name + "' is defined more than once");
      defined[static_cast<size_t>(out)] = true;
    }
  }
  for (int out : g.outputs)
    if (!defined[static_cast<size_t>(out)])
      problems.push_back("graph output '" + g.values[static_cast<size_t>(out)].name +
                         "' is never produced");
  if (problems.empty()) return Status::ok();
  std::string msg = problems.front();
  if (problems.size() > 1)
    msg += " (and " + std::to_string(problems.size() - 1) + " more problems)";
  return invalid_model(msg);
}

}  // namespace brink::ir
