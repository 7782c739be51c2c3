#include "passes/pass_util.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <set>

#include "ops/evaluate.h"
#include "ops/op.h"

namespace brink::passes {

namespace {

// Folded values kept by the analysis stay below this, unless the node only rearranges
// constants at least as large (a transposed weight, say).
constexpr int64_t kMaxFoldedBytes = int64_t{16} << 20;

bool has_subgraphs(const ir::Node& node) {
  for (const ir::Attribute& a : node.attributes)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

// Names a graph (and the graphs nested in it) reads from enclosing scopes.
void collect_free_names(const ir::Graph& g, std::set<std::string>* names) {
  std::vector<char> bound(g.values.size(), 0);
  for (int v : g.inputs) bound[static_cast<size_t>(v)] = 1;
  for (int v : g.initializers) bound[static_cast<size_t>(v)] = 1;
  for (const ir::Node& n : g.nodes)
    for (int v : n.outputs)
      if (v != ir::kNoValue) bound[static_cast<size_t>(v)] = 1;
  auto note = [&](int v) {
    if (v != ir::kNoValue && !bound[static_cast<size_t>(v)]) names->insert(g.value(v).name);
  };
  for (const ir::Node& n : g.nodes) {
    for (int v : n.inputs) note(v);
    for (const ir::Attribute& a : n.attributes) {
      std::set<std::string> nested;
      if (a.g) collect_free_names(*a.g, &nested);
      for (const auto& sg : a.graphs)
        if (sg) collect_free_names(*sg, &nested);
      for (const std::string& name : nested) {
        const int v = g.find_value(name);
        if (v == ir::kNoValue || !bound[static_cast<size_t>(v)]) names->insert(name);
      }
    }
  }
  for (int v : g.outputs) note(v);
}

bool is_nondeterministic(const ir::Node& node) {
  static const std::set<std::string> kOps = {
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
      "Multinomial",  "Bernoulli",     "Dropout"};
  return node.domain.empty() && kOps.count(node.op_type) > 0;
}

}  // namespace

GraphInfo GraphInfo::analyze(const ir::Model& model,
                             const std::map<std::string, int64_t>& dim_values,
                             int64_t max_folded_bytes) {
  GraphInfo info;
  info.model_ = &model;
  const ir::Graph& g = model.graph;
  const size_t nv = g.values.size();
  info.types_.assign(nv, ir::TensorType());
  info.folded_.assign(nv, Tensor());
  info.uses_.assign(nv, {});
  info.producer_.assign(nv, -1);
  info.graph_output_.assign(nv, 0);
  info.graph_input_.assign(nv, 0);
  info.pinned_.assign(nv, 0);

  for (size_t v = 0; v < nv; ++v)
    if (const auto& c = g.values[v].constant)
      info.types_[v] = ir::TensorType::of(c->dtype(), c->shape());
  for (int v : g.inputs) {
    ir::TensorType t = g.value(v).type;
    if (t.dims)
      for (ir::Dim& d : *t.dims)
        if (!d.known())
          if (auto it = dim_values.find(d.param); it != dim_values.end()) d = ir::Dim(it->second);
    info.types_[static_cast<size_t>(v)] = t;
    info.graph_input_[static_cast<size_t>(v)] = 1;
  }
  for (int v : g.outputs) info.graph_output_[static_cast<size_t>(v)] = 1;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    for (size_t k = 0; k < node.inputs.size(); ++k)
      if (node.inputs[k] != ir::kNoValue)
        info.uses_[static_cast<size_t>(node.inputs[k])].push_back(
            {static_cast<int>(i), static_cast<int>(k)});
    for (int out : node.outputs)
      if (out != ir::kNoValue) info.producer_[static_cast<size_t>(out)] = static_cast<int>(i);
  }
  {
    std::set<std::string> free_names;
    for (const ir::Node& node : g.nodes) {
      if (!has_subgraphs(node)) continue;
      info.has_control_flow_ = true;
      for (const ir::Attribute& a : node.attributes) {
        if (a.g) collect_free_names(*a.g, &free_names);
        for (const auto& sg : a.graphs)
          if (sg) collect_free_names(*sg, &free_names);
      }
    }
    for (const std::string& name : free_names)
      if (int v = g.find_value(name); v != ir::kNoValue) info.pinned_[static_cast<size_t>(v)] = 1;
  }

  const ops::OpRegistry& registry = ops::OpRegistry::global();
  for (const ir::Node& node : g.nodes) {
    if (has_subgraphs(node)) continue;
    const int64_t opset = model.opset(node.domain);
    const ops::OpDef* def = registry.find(node.domain, node.op_type, opset);
    if (!def) continue;
    std::vector<const ir::TensorType*> in_types;
    std::vector<const Tensor*> in_values;
    bool known = true, all_constant = true;
    int64_t input_bytes = 0;
    for (int in : node.inputs) {
      if (in == ir::kNoValue) {
        in_types.push_back(nullptr);
        in_values.push_back(nullptr);
        continue;
      }
      const ir::TensorType& t = info.types_[static_cast<size_t>(in)];
      if (t.dtype == DataType::kUndefined) known = false;
      in_types.push_back(&t);
      const Tensor* c = info.constant(in);
      in_values.push_back(c);
      if (c)
        input_bytes += static_cast<int64_t>(c->nbytes());
      else
        all_constant = false;
    }
    if (!known) continue;
    ops::InferContext ictx(node, opset, in_types, in_values);
    if (!def->infer(ictx).is_ok()) continue;
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (node.outputs[k] != ir::kNoValue)
        info.types_[static_cast<size_t>(node.outputs[k])] = ictx.outputs()[k];

    if (node.domain.empty() && (node.op_type == "Shape" || node.op_type == "Size") &&
        !all_constant && in_types.size() == 1 && in_types[0] && in_types[0]->is_static()) {
      const Tensor folded = ops::shape_or_size_value(node, in_types[0]->static_shape());
      info.folded_[static_cast<size_t>(node.outputs[0])] = folded;
      continue;
    }
    if (!all_constant || is_nondeterministic(node) || node.outputs.empty()) continue;
    bool small = true;
    for (const ir::TensorType& t : ictx.outputs()) {
      if (t.dtype == DataType::kUndefined) continue;  // absent output
      if (!t.is_static()) {
        small = false;
        break;
      }
      const int64_t bytes =
          shape_numel(t.static_shape()) * static_cast<int64_t>(dtype_size(t.dtype));
      if (max_folded_bytes >= 0 ? bytes > max_folded_bytes
                                : bytes > kMaxFoldedBytes && bytes > input_bytes)
        small = false;
    }
    if (!small) continue;
    auto folded = ops::evaluate_node(node, opset, in_values);
    if (!folded.is_ok()) continue;
    for (size_t k = 0; k < node.outputs.size() && k < folded->size(); ++k) {
      const int out = node.outputs[k];
      if (out == ir::kNoValue) continue;
      info.folded_[static_cast<size_t>(out)] = (*folded)[k];
      info.types_[static_cast<size_t>(out)] =
          ir::TensorType::of((*folded)[k].dtype(), (*folded)[k].shape());
    }
  }
  return info;
}

const Tensor* GraphInfo::constant(int v) const {
  if (v < 0) return nullptr;
  if (const auto& c = model_->graph.value(v).constant) return &*c;
  const Tensor& f = folded_[static_cast<size_t>(v)];
  return f.defined() ? &f : nullptr;
}

bool GraphInfo::internal(int v) const {
  return v >= 0 && producer(v) >= 0 && !is_graph_output(v) && !pinned(v) && !is_graph_input(v);
}

int GraphInfo::sole_consumer(int v) const {
  if (!internal(v) || uses(v).size() != 1) return -1;
  return uses(v)[0].node;
}

std::vector<int> GraphInfo::consumer_nodes(int v) const {
  std::vector<int> nodes;
  for (const Use& u : uses(v))
    if (std::find(nodes.begin(), nodes.end(), u.node) == nodes.end()) nodes.push_back(u.node);
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

Rewriter::Rewriter(ir::Graph& graph)
    : graph_(graph),
      claimed_(graph.nodes.size(), 0),
      removed_(graph.nodes.size(), 0),
      replacement_(graph.nodes.size()),
      after_(graph.nodes.size() + 1) {}

bool Rewriter::any_claimed(const std::vector<int>& nodes) const {
  for (int n : nodes)
    if (claimed(n)) return true;
  return false;
}

void Rewriter::remove(int node) {
  claim(node);
  removed_[static_cast<size_t>(node)] = 1;
  replacement_[static_cast<size_t>(node)].reset();
  changed_ = true;
}

void Rewriter::replace(int node, ir::Node replacement) {
  claim(node);
  removed_[static_cast<size_t>(node)] = 0;
  replacement_[static_cast<size_t>(node)] = std::move(replacement);
  changed_ = true;
}

void Rewriter::insert_after(int node, ir::Node inserted) {
  after_[static_cast<size_t>(node + 1)].push_back(std::move(inserted));
  changed_ = true;
}

void Rewriter::commit() {
  if (!changed_) return;
  std::vector<ir::Node> nodes;
  nodes.reserve(graph_.nodes.size());
  for (ir::Node& n : after_[0]) nodes.push_back(std::move(n));
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    if (replacement_[i])
      nodes.push_back(std::move(*replacement_[i]));
    else if (!removed_[i])
      nodes.push_back(std::move(graph_.nodes[i]));
    for (ir::Node& n : after_[i + 1]) nodes.push_back(std::move(n));
  }
  graph_.nodes = std::move(nodes);
  for (ir::Value& v : graph_.values) v.producer = -1;
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (int out : graph_.nodes[i].outputs)
      if (out != ir::kNoValue)
        graph_.values[static_cast<size_t>(out)].producer = static_cast<int>(i);
  const size_t n = graph_.nodes.size();
  claimed_.assign(n, 0);
  removed_.assign(n, 0);
  replacement_.assign(n, std::nullopt);
  after_.assign(n + 1, {});
  changed_ = false;
}

std::string unique_value_name(const ir::Graph& graph, const std::string& base) {
  if (graph.find_value(base) == ir::kNoValue) return base;
  for (int k = 1;; ++k) {
    std::string name = base + "_" + std::to_string(k);
    if (graph.find_value(name) == ir::kNoValue) return name;
  }
}

int add_value(ir::Graph& graph, const std::string& base, ir::TensorType type) {
  return graph.add_value(unique_value_name(graph, base), std::move(type));
}

int add_initializer(ir::Graph& graph, const std::string& base, const Tensor& t) {
  const int v = add_value(graph, base, ir::TensorType::of(t.dtype(), t.shape()));
  graph.value(v).constant = t;
  graph.initializers.push_back(v);
  return v;
}

void import_brink_domain(ir::Model& model) {
  for (const ir::OperatorSetId& o : model.opset_imports)
    if (o.domain == "brink") return;
  model.opset_imports.push_back({"brink", 1});
}

bool brink_op_available(const std::string& op_type) {
  return ops::OpRegistry::global().find("brink", op_type, 1) != nullptr;
}

bool is_op(const ir::Node& node, const char* op_type) {
  return node.domain.empty() && node.op_type == op_type;
}

bool is_brink_op(const ir::Node& node, const char* op_type) {
  return node.domain == "brink" && node.op_type == op_type;
}

std::optional<double> scalar_constant(const GraphInfo& info, int v) {
  const Tensor* c = info.constant(v);
  if (!c || c->numel() != 1) return std::nullopt;
  switch (c->dtype()) {
    case DataType::kFloat32:
    case DataType::kFloat64:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kInt32:
    case DataType::kInt64:
      return c->element_as_double(0);
    default:
      return std::nullopt;
  }
}

bool is_scalar_constant(const GraphInfo& info, int v, double expected, double rel_tol,
                        int64_t max_rank) {
  const auto s = scalar_constant(info, v);
  if (!s || info.constant(v)->rank() > max_rank) return false;
  return std::fabs(*s - expected) <= rel_tol * std::max(1.0, std::fabs(expected));
}

std::optional<std::vector<float>> constant_as_floats(const Tensor& t) {
  switch (t.dtype()) {
    case DataType::kFloat32:
    case DataType::kFloat64:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      break;
    default:
      return std::nullopt;
  }
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    out[static_cast<size_t>(i)] = static_cast<float>(t.element_as_double(i));
  return out;
}

int other_input(const ir::Node& node, int v) {
  if (node.inputs.size() != 2) return ir::kNoValue;
  if (node.inputs[0] == v && node.inputs[1] != v) return node.inputs[1];
  if (node.inputs[1] == v && node.inputs[0] != v) return node.inputs[0];
  return ir::kNoValue;
}

bool same_shape(const ir::TensorType& a, const ir::TensorType& b) {
  if (!a.dims || !b.dims || a.dims->size() != b.dims->size()) return false;
  for (size_t i = 0; i < a.dims->size(); ++i) {
    const ir::Dim &x = (*a.dims)[i], &y = (*b.dims)[i];
    if (x.known() != y.known()) return false;
    if (x.known() ? x.value != y.value : (x.param.empty() || x.param != y.param)) return false;
  }
  return true;
}

namespace {

// The single-output node consuming `v` once (input `slot` when slot >= 0), unclaimed, with
// `v` internal to the pattern.
int only_consumer(const GraphInfo& info, const Rewriter& rw, int v) {
  const int n = info.sole_consumer(v);
  if (n < 0 || rw.claimed(n)) return -1;
  const ir::Node& node = info.graph().nodes[static_cast<size_t>(n)];
  if (node.outputs.size() != 1 || node.outputs[0] == ir::kNoValue) return -1;
  return n;
}

// Clip bounds as the op defines them at the node's opset; nullopt when not constant.
std::optional<std::pair<float, float>> clip_bounds(const GraphInfo& info, const ir::Node& node,
                                                   int64_t max_rank) {
  if (info.opset(node) < 11)
    return std::pair{node.attr_float("min", -FLT_MAX), node.attr_float("max", FLT_MAX)};
  float lo = -INFINITY, hi = INFINITY;
  for (size_t k = 1; k < 3 && k < node.inputs.size(); ++k) {
    if (node.inputs[k] == ir::kNoValue) continue;
    const auto s = scalar_constant(info, node.inputs[k]);
    if (!s || info.constant(node.inputs[k])->rank() > max_rank) return std::nullopt;
    (k == 1 ? lo : hi) = static_cast<float>(*s);
  }
  return std::pair{lo, hi};
}

// y = v * g or g * v, as a Mul node.
bool is_mul_of(const ir::Node& node, int a, int b) {
  return is_op(node, "Mul") && node.inputs.size() == 2 &&
         ((node.inputs[0] == a && node.inputs[1] == b) ||
          (node.inputs[0] == b && node.inputs[1] == a));
}

// x / 6 or x * (1/6).
bool is_div_by_six(const GraphInfo& info, const ir::Node& node, int x, int64_t max_rank) {
  if (is_op(node, "Div") && node.inputs.size() == 2 && node.inputs[0] == x)
    return is_scalar_constant(info, node.inputs[1], 6.0, 1e-6, max_rank);
  if (is_op(node, "Mul") && node.inputs.size() == 2) {
    const int c = other_input(node, x);
    return c != ir::kNoValue && is_scalar_constant(info, c, 1.0 / 6.0, 1e-5, max_rank);
  }
  return false;
}

std::optional<ActivationMatch> match_single(const GraphInfo& info, int n, int v) {
  const ir::Node& node = info.graph().nodes[static_cast<size_t>(n)];
  if (node.inputs.empty() || node.inputs[0] != v) return std::nullopt;
  ActivationMatch m;
  m.nodes = {n};
  m.output = node.outputs[0];
  const int64_t rank = info.rank(v);
  if (node.domain.empty()) {
    const std::string& op = node.op_type;
    if (op == "Relu" || op == "HardSwish" || op == "Sigmoid" || op == "Tanh") {
      if (node.inputs.size() != 1) return std::nullopt;
      m.name = op;
    } else if (op == "Clip") {
      const auto bounds = clip_bounds(info, node, rank);
      if (!bounds) return std::nullopt;
      if (bounds->first == 0.0f && std::isinf(bounds->second) && bounds->second > 0) {
        m.name = "Relu";
      } else {
        m.name = "Clip";
        m.params = {bounds->first, bounds->second};
      }
    } else if (op == "LeakyRelu") {
      m.name = op;
      m.params = {node.attr_float("alpha", 0.01f)};
    } else if (op == "HardSigmoid") {
      m.name = op;
      m.params = {node.attr_float("alpha", 0.2f), node.attr_float("beta", 0.5f)};
    } else if (op == "Gelu") {
      const std::string approx = node.attr_string("approximate", "none");
      if (approx != "none" && approx != "tanh") return std::nullopt;
      m.name = approx == "tanh" ? "GeluTanh" : "Gelu";
    } else {
      return std::nullopt;
    }
  } else if (is_brink_op(node, "Gelu")) {
    const std::string approx = node.attr_string("approximate", "none");
    if (approx != "none" && approx != "tanh") return std::nullopt;
    m.name = approx == "tanh" ? "GeluTanh" : "Gelu";
  } else {
    return std::nullopt;
  }
  if (!info.is_float32(m.output)) return std::nullopt;
  return m;
}

// v * gate(v) patterns: SiLU, x * HardSigmoid(x), x * Relu6(x + 3) / 6.
std::optional<ActivationMatch> match_gated(const GraphInfo& info, const Rewriter& rw, int v,
                                           int a) {
  const ir::Graph& g = info.graph();
  const ir::Node& first = g.nodes[static_cast<size_t>(a)];
  if (first.outputs.size() != 1 || first.outputs[0] == ir::kNoValue) return std::nullopt;
  const int64_t rank = info.rank(v);
  const int ga = first.outputs[0];
  ActivationMatch m;
  // gate = Sigmoid(v) or HardSigmoid(v, 1/6, 1/2); y = v * gate
  const bool sigmoid = is_op(first, "Sigmoid") && first.inputs.size() == 1;
  const bool hard_sigmoid = is_op(first, "HardSigmoid") &&
                            std::fabs(first.attr_float("alpha", 0.2f) - 1.0f / 6.0f) < 1e-6f &&
                            std::fabs(first.attr_float("beta", 0.5f) - 0.5f) < 1e-7f;
  if ((sigmoid || hard_sigmoid) && first.inputs[0] == v) {
    const int b = only_consumer(info, rw, ga);
    if (b < 0 || !is_mul_of(g.nodes[static_cast<size_t>(b)], v, ga)) return std::nullopt;
    m.name = sigmoid ? "SiLU" : "HardSwish";
    m.nodes = {a, b};
    m.output = g.nodes[static_cast<size_t>(b)].outputs[0];
    return m;
  }
  // t = v + 3; c = Clip(t, 0, 6); then v * c / 6 or v * (c / 6)
  if (!is_op(first, "Add") || other_input(first, v) == ir::kNoValue ||
      !is_scalar_constant(info, other_input(first, v), 3.0, 1e-6, rank))
    return std::nullopt;
  const int c = only_consumer(info, rw, ga);
  if (c < 0) return std::nullopt;
  const ir::Node& clip = g.nodes[static_cast<size_t>(c)];
  if (!is_op(clip, "Clip") || clip.inputs[0] != ga) return std::nullopt;
  const auto bounds = clip_bounds(info, clip, rank);
  if (!bounds || bounds->first != 0.0f || bounds->second != 6.0f) return std::nullopt;
  const int cv = clip.outputs[0];
  const int d = only_consumer(info, rw, cv);
  if (d < 0) return std::nullopt;
  const ir::Node& dn = g.nodes[static_cast<size_t>(d)];
  if (is_mul_of(dn, v, cv)) {
    const int e = only_consumer(info, rw, dn.outputs[0]);
    if (e < 0 || !is_div_by_six(info, g.nodes[static_cast<size_t>(e)], dn.outputs[0], rank))
      return std::nullopt;
    m.nodes = {a, c, d, e};
    m.output = g.nodes[static_cast<size_t>(e)].outputs[0];
  } else if (is_div_by_six(info, dn, cv, rank)) {
    const int e = only_consumer(info, rw, dn.outputs[0]);
    if (e < 0 || !is_mul_of(g.nodes[static_cast<size_t>(e)], v, dn.outputs[0])) return std::nullopt;
    m.nodes = {a, c, d, e};
    m.output = g.nodes[static_cast<size_t>(e)].outputs[0];
  } else {
    return std::nullopt;
  }
  m.name = "HardSwish";
  return m;
}

}  // namespace

std::optional<ActivationMatch> match_activation(const GraphInfo& info, const Rewriter& rw, int v) {
  if (!info.internal(v) || !info.is_float32(v)) return std::nullopt;
  const std::vector<int> nodes = info.consumer_nodes(v);
  for (int n : nodes)
    if (rw.claimed(n)) return std::nullopt;
  std::optional<ActivationMatch> m;
  if (nodes.size() == 1 && info.uses(v).size() == 1) {
    const ir::Node& node = info.graph().nodes[static_cast<size_t>(nodes[0])];
    if (node.outputs.size() == 1 && node.outputs[0] != ir::kNoValue)
      m = match_single(info, nodes[0], v);
  } else if (nodes.size() == 2 && info.uses(v).size() == 2) {
    m = match_gated(info, rw, v, nodes[0]);
    if (!m) m = match_gated(info, rw, v, nodes[1]);
    // Both uses of v must be inside the pattern.
    if (m && (std::find(m->nodes.begin(), m->nodes.end(), nodes[0]) == m->nodes.end() ||
              std::find(m->nodes.begin(), m->nodes.end(), nodes[1]) == m->nodes.end()))
      m.reset();
  }
  // Scalars of rank <= rank(v) were checked above, so the pattern cannot broadcast v.
  if (m && (!info.is_float32(m->output) || info.rank(m->output) != info.rank(v))) m.reset();
  return m;
}

void set_activation(ir::Node& node, const ActivationMatch& act) {
  node.attributes.push_back(ops::make_attr("activation", act.name));
  if (!act.params.empty())
    node.attributes.push_back(ops::make_attr("activation_params", act.params));
}

void replace_uses(ir::Graph& graph, int from, int to) {
  for (ir::Node& n : graph.nodes)
    for (int& in : n.inputs)
      if (in == from) in = to;
}

Status check_graph(const ir::Model& model, const std::string& pass_name) {
  Status s = ir::verify(model);
  if (!s.is_ok())
    return internal_error("pass " + pass_name + " left an invalid graph: " + s.message());
  return Status::ok();
}

}  // namespace brink::passes
