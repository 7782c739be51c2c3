#include "runtime/compiled_model.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "ops/evaluate.h"
#include "ops/op_selection.h"

namespace brink {

namespace {

// Folding stops at outputs this large: a folded constant lives as long as the session.
constexpr int64_t kMaxFoldedBytes = int64_t{256} << 20;

TensorInfo tensor_info_of(const std::string& name, const ir::TensorType& type) {
  TensorInfo info;
  info.name = name;
  info.dtype = type.dtype;
  info.rank_known = type.has_rank();
  if (type.dims) {
    for (const ir::Dim& d : *type.dims) {
      info.shape.push_back(d.known() ? d.value : -1);
      info.dim_names.push_back(d.known() ? std::string() : d.param);
    }
  }
  return info;
}

std::string join_problems(const std::vector<std::string>& problems) {
  if (problems.size() == 1) return problems.front();
  std::string msg = std::to_string(problems.size()) + " problems: ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
  return msg;
}

std::string join_problems(const std::vector<Status>& problems) {
  std::vector<std::string> messages;
  for (const Status& s : problems) messages.push_back(s.message());
  return join_problems(messages);
}

// Values a graph reads from enclosing graphs: used by a node or as a graph output, with no
// producer, and neither a graph input nor an initializer (see onnx_io.h).
std::vector<int> free_values(const ir::Graph& g) {
  std::vector<char> bound(g.values.size(), 0), used(g.values.size(), 0);
  for (int v : g.inputs) bound[static_cast<size_t>(v)] = 1;
  for (int v : g.initializers) bound[static_cast<size_t>(v)] = 1;
  for (const ir::Node& n : g.nodes) {
    for (int v : n.inputs)
      if (v != ir::kNoValue) used[static_cast<size_t>(v)] = 1;
    for (int v : n.outputs)
      if (v != ir::kNoValue) bound[static_cast<size_t>(v)] = 1;
  }
  for (int v : g.outputs) used[static_cast<size_t>(v)] = 1;
  std::vector<int> result;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (used[v] && !bound[v]) result.push_back(static_cast<int>(v));
  return result;
}

bool has_subgraphs(const ir::Node& node) {
  for (const ir::Attribute& a : node.attributes)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

// Names `g` and the subgraphs nested in it read from graphs enclosing `g`.
void collect_free_names(const ir::Graph& g, std::set<std::string>* names) {
  for (int v : free_values(g)) names->insert(g.value(v).name);
  for (const ir::Node& n : g.nodes) {
    if (!has_subgraphs(n)) continue;
    std::set<std::string> nested;
    for (const ir::Attribute& a : n.attributes) {
      if (a.g) collect_free_names(*a.g, &nested);
      for (const auto& sg : a.graphs)
        if (sg) collect_free_names(*sg, &nested);
    }
    for (const std::string& name : nested)
      if (g.find_value(name) == ir::kNoValue) names->insert(name);
  }
}

// Values of `g` that the subgraphs of `node` read: the node depends on them as on inputs.
std::vector<int> implicit_inputs(const ir::Graph& g, const ir::Node& node) {
  std::set<std::string> names;
  for (const ir::Attribute& a : node.attributes) {
    if (a.g) collect_free_names(*a.g, &names);
    for (const auto& sg : a.graphs)
      if (sg) collect_free_names(*sg, &names);
  }
  std::vector<int> result;
  for (const std::string& name : names)
    if (int v = g.find_value(name); v != ir::kNoValue) result.push_back(v);
  return result;
}

// The values a running graph holds, looked up by name for its nodes' subgraphs, and
// beyond them those of the graphs enclosing it.
class LiveScope final : public ops::OuterScope {
 public:
  LiveScope(const ir::Graph& g, const std::vector<Tensor>& values, const ops::OuterScope* parent)
      : g_(g), values_(values), parent_(parent) {}
  const Tensor* find(const std::string& name) const override {
    if (int v = g_.find_value(name); v != ir::kNoValue) {
      if (const auto& c = g_.value(v).constant) return &*c;
      if (values_[static_cast<size_t>(v)].defined()) return &values_[static_cast<size_t>(v)];
    }
    return parent_ ? parent_->find(name) : nullptr;
  }

 private:
  const ir::Graph& g_;
  const std::vector<Tensor>& values_;
  const ops::OuterScope* parent_;
};

// A compiled subgraph as the kernels of control-flow ops hold it.
class CompiledSubgraph final : public ops::SubgraphProgram {
 public:
  explicit CompiledSubgraph(std::unique_ptr<CompiledModel> cm) : cm_(std::move(cm)) {}
  const std::vector<ir::TensorType>& output_types() const override { return cm_->output_types(); }
  Result<std::vector<Tensor>> run(const std::vector<const Tensor*>& inputs,
                                  const ops::OuterScope* outer) const override {
    return cm_->run_graph(inputs, outer);
  }

 private:
  std::unique_ptr<CompiledModel> cm_;
};

int64_t product(const std::vector<ir::Dim>& dims, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < dims.size(); ++i) p *= dims[i].value;
  return p;
}

}  // namespace

std::string TensorInfo::shape_string() const {
  if (!rank_known) return "[?...]";
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] >= 0 ? std::to_string(shape[i]) : (dim_names[i].empty() ? "?" : dim_names[i]);
  }
  return s + "]";
}

int64_t estimate_macs(const ir::Node& node, const std::vector<const ir::TensorType*>& in,
                      const std::vector<ir::TensorType>& out) {
  auto static_type = [](const ir::TensorType* t) { return t && t->is_static(); };
  const std::string& op = node.op_type;
  if (out.empty() || !out[0].is_static()) return 0;
  const auto& y = *out[0].dims;
  const int64_t y_numel = product(y, 0, y.size());
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv" || op == "QConv") {
    const size_t w_index = op == "QLinearConv" || op == "QConv" ? 3 : 1;
    if (in.size() <= w_index || !static_type(in[w_index])) return 0;
    const auto& w = *in[w_index]->dims;  // [M, C/group, k...]
    return y_numel * product(w, 1, w.size());
  }
  if (op == "ConvTranspose") {
    if (in.size() < 2 || !static_type(in[0]) || !static_type(in[1])) return 0;
    const auto& x = *in[0]->dims;
    const auto& w = *in[1]->dims;  // [C, M/group, k...]
    return product(x, 0, x.size()) * product(w, 1, w.size());
  }
  if (op == "Gemm" || op == "QGemm") {
    if (!static_type(in[0])) return 0;
    const auto& a = *in[0]->dims;
    const int64_t k = node.attr_int("transA", 0) ? a[0].value : a[a.size() - 1].value;
    return y_numel * k;
  }
  if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul" ||
      op == "MatMulIntegerToFloat" || op == "DynamicQuantizeMatMul") {
    if (!static_type(in[0])) return 0;
    const auto& a = *in[0]->dims;
    return a.empty() ? 0 : y_numel * a.back().value;
  }
  if (op == "Attention" && node.domain == kBrinkDomain) {
    // Q·Kᵀ then weights·V: Sq·Sk·D + Sq·Sk·Dv per leading index, with y = [..., Sq, Dv].
    if (in.size() < 3 || !static_type(in[0]) || !static_type(in[2])) return 0;
    const auto& q = *in[0]->dims;
    const auto& v = *in[2]->dims;
    if (q.size() < 2 || v.size() < 2) return 0;
    const int64_t sk = v[v.size() - 2].value, d = q.back().value, dv = v.back().value;
    return y_numel / dv * sk * (d + dv);
  }
  if (op == "LSTM" || op == "GRU" || op == "RNN") {
    if (in.size() < 3 || !static_type(in[0]) || !static_type(in[2])) return 0;
    const auto& x = *in[0]->dims;  // [seq, batch, input] (layout 0)
    const auto& r = *in[2]->dims;  // [dirs, gates*hidden, hidden]
    if (x.size() != 3 || r.size() != 3) return 0;
    const int64_t hidden = r[2].value;
    const int64_t gates_hidden = r[1].value;
    return x[0].value * x[1].value * r[0].value * gates_hidden * (x[2].value + hidden);
  }
  return 0;
}

std::vector<CompiledModel::NodePackedWeights> CompiledModel::packed_weights() const {
  std::vector<NodePackedWeights> out;
  for (const Step& step : steps_)
    if (auto w = step.kernel->packed_weights()) {
      NodePackedWeights n;
      n.node_index = step.node_index;
      n.weights = std::move(*w);
      const ir::Node& node = model_.graph.nodes[static_cast<size_t>(step.node_index)];
      for (size_t i = 0; i < node.inputs.size(); ++i)
        if (node.inputs[i] != ir::kNoValue && !step.kernel->reads_input_data(i))
          n.unread_inputs.push_back(static_cast<int>(i));
      out.push_back(std::move(n));
    }
  return out;
}

Result<std::unique_ptr<CompiledModel>> CompiledModel::compile(ir::Model model,
                                                              const SessionOptions& options,
                                                              bool keep_problems,
                                                              const CompileExtras* extras) {
  auto cm = std::unique_ptr<CompiledModel>(new CompiledModel());
  cm->model_ = std::move(model);
  cm->extras_ = extras;
  // Parameters are counted in the model as given: passes may add repacked copies.
  int64_t given_parameters = 0, given_parameter_bytes = 0;
  for (int i : cm->model_.graph.initializers) {
    given_parameters += cm->model_.graph.value(i).constant->numel();
    given_parameter_bytes += static_cast<int64_t>(cm->model_.graph.value(i).constant->nbytes());
  }
#ifndef BRINK_NO_GRAPH_PASSES
  if (options.optimization_level > 0 && cm->check_opsets().is_ok()) {
    passes::OptimizeOptions po;
    po.level = options.optimization_level;
    for (const auto& [name, value] : options.dim_values) po.dim_values[name] = value;
    // Tensors share their storage, so the copy kept in case a pass fails is cheap. A pass
    // that fails is a bug in Brink, not in the model: the model then runs unoptimized.
    ir::Model original = cm->model_;
    auto report = passes::optimize(cm->model_, po);
    if (report.is_ok()) {
      cm->optimize_report_ = *report;
      cm->optimization_level_ = options.optimization_level;
    } else {
      cm->model_ = std::move(original);
    }
  }
#endif  // a device-only runtime (BRINK_DEVICE_ONLY) runs the graph as given: a package's
        // graph is the one the passes produced when it was packed
  cm->num_threads_ =
      options.num_threads > 0 ? options.num_threads : ThreadPool::default_num_threads();
  if (cm->num_threads_ > 1) cm->pool_ = std::make_unique<ThreadPool>(cm->num_threads_);
  if (Status s = cm->check_opsets(); !s.is_ok()) cm->problems_.push_back(s);
  cm->infer_and_prepare(options);
  cm->parameter_count_ = given_parameters;
  cm->parameter_bytes_ = given_parameter_bytes;
  cm->subgraph_cache_.clear();  // the kernels hold what they use
  cm->extras_ = nullptr;        // the caller's, valid only during compile
  cm->plan_memory();
  if (!cm->problems_.empty() && !keep_problems) {
    // An unsupported feature and a malformed model are different failures; report the
    // former when any problem is one, since it is what a user can act on with Brink.
    bool any_invalid = false;
    for (const Status& p : cm->problems_) any_invalid |= p.code() != StatusCode::kUnsupported;
    return Status(any_invalid ? StatusCode::kInvalidModel : StatusCode::kUnsupported,
                  join_problems(cm->problems_));
  }
  return cm;
}

Result<std::unique_ptr<CompiledModel>> CompiledModel::compile_subgraph(
    const ir::Model& parent, const ir::Graph& graph, const std::vector<ir::TensorType>& input_types,
    const SessionOptions& options, OuterTypes outer) {
  if (input_types.size() != graph.inputs.size())
    return invalid_model("subgraph '" + graph.name + "' has " +
                         std::to_string(graph.inputs.size()) + " inputs, expected " +
                         std::to_string(input_types.size()));
  auto cm = std::unique_ptr<CompiledModel>(new CompiledModel());
  cm->model_.opset_imports = parent.opset_imports;
  cm->model_.ir_version = parent.ir_version;
  cm->model_.graph = graph;  // a copy: folding writes constants into it
  // Subgraph kernels run on the calling thread: the If/Loop/Scan kernel that runs them may
  // itself be running inside a parallel loop.
  cm->num_threads_ = 1;
  cm->outer_types_ = std::move(outer);
  cm->infer_and_prepare(options, &input_types);
  cm->outer_types_ = nullptr;  // it refers to the enclosing graph's compile state
  cm->subgraph_cache_.clear();
  if (!cm->problems_.empty()) {
    bool any_invalid = false;
    for (const Status& p : cm->problems_) any_invalid |= p.code() != StatusCode::kUnsupported;
    return Status(any_invalid ? StatusCode::kInvalidModel : StatusCode::kUnsupported,
                  join_problems(cm->problems_));
  }
  return cm;
}

ops::SubgraphCompileFn CompiledModel::subgraph_compiler(const ir::Node& node,
                                                        const SessionOptions& options) {
  return [this, &node, &options](const ir::Graph& sg, const std::vector<ir::TensorType>& types)
             -> Result<std::shared_ptr<const ops::SubgraphProgram>> {
    std::string key;
    for (const ir::TensorType& t : types) key += t.to_string() + ";";
    if (auto it = subgraph_cache_.find({&sg, key}); it != subgraph_cache_.end()) return it->second;
    OuterTypes lookup = [this](const std::string& name) -> std::optional<OuterValue> {
      const ir::Graph& g = model_.graph;
      if (int v = g.find_value(name); v != ir::kNoValue) {
        if (value_poisoned_[static_cast<size_t>(v)]) return std::nullopt;
        const auto& c = g.value(v).constant;
        return OuterValue{&value_types_[static_cast<size_t>(v)], c ? &*c : nullptr};
      }
      return outer_types_ ? outer_types_(name) : std::nullopt;
    };
    auto cm = compile_subgraph(model_, sg, types, options, std::move(lookup));
    if (!cm.is_ok())
      return cm.status().with_context(node.describe() + ": subgraph '" + sg.name + "'");
    std::shared_ptr<const ops::SubgraphProgram> program =
        std::make_shared<CompiledSubgraph>(std::move(cm).value());
    subgraph_cache_[{&sg, key}] = program;
    return program;
  };
}

Status CompiledModel::check_opsets() {
  bool uses_default = false;
  for (const ir::Node& n : model_.graph.nodes) uses_default |= n.domain.empty();
  const int64_t v = model_.opset("");
  if (uses_default && v == 0)
    return invalid_model("the model imports no opset for the default ONNX domain");
  if (v > kMaxSupportedOpset)
    return unsupported("opset " + std::to_string(v) + " is not supported (newest supported: " +
                       std::to_string(kMaxSupportedOpset) + ")");
  return Status::ok();
}

void CompiledModel::infer_and_prepare(const SessionOptions& options,
                                      const std::vector<ir::TensorType>* subgraph_input_types) {
  ir::Graph& g = model_.graph;
  const size_t nv = g.values.size();
  value_types_.assign(nv, ir::TensorType());
  value_poisoned_.assign(nv, false);
  std::map<std::string, int64_t> dim_values(options.dim_values.begin(), options.dim_values.end());

  for (int i : g.initializers) {
    const Tensor& t = *g.value(i).constant;
    value_types_[static_cast<size_t>(i)] = ir::TensorType::of(t.dtype(), t.shape());
    parameter_count_ += t.numel();
    parameter_bytes_ += static_cast<int64_t>(t.nbytes());
  }
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const int i = g.inputs[k];
    ir::TensorType t = g.value(i).type;
    if (subgraph_input_types && (*subgraph_input_types)[k].dtype != DataType::kUndefined)
      t = (*subgraph_input_types)[k];
    if (t.dims)
      for (ir::Dim& d : *t.dims)
        if (!d.known() && dim_values.count(d.param)) d = ir::Dim(dim_values[d.param]);
    if (!dtype_is_supported(t.dtype))
      problems_.push_back(unsupported("graph input '" + g.value(i).name + "' has element type " +
                                      dtype_name(t.dtype) + ", which is not supported"));
    value_types_[static_cast<size_t>(i)] = t;
    inputs_.push_back(tensor_info_of(g.value(i).name, t));
  }
  if (subgraph_input_types) {
    for (int v : free_values(g)) {
      std::optional<OuterValue> outer = outer_types_ ? outer_types_(g.value(v).name) : std::nullopt;
      if (!outer) {
        problems_.push_back(
            invalid_model("value '" + g.value(v).name + "' is not defined in an enclosing graph"));
        value_poisoned_[static_cast<size_t>(v)] = true;
        continue;
      }
      value_types_[static_cast<size_t>(v)] = *outer->type;
      if (outer->constant)
        g.value(v).constant = *outer->constant;
      else
        outer_values_.push_back(v);
    }
  }

  // Weights a kernel packs at prepare are freed as soon as no later node needs them, so
  // that a model's parameters are not held twice (file layout and packed) even while
  // loading. Not in graphs with subgraphs, which read outer values by name when they run.
  bool release_constants = subgraph_input_types == nullptr;
  for (const ir::Node& n : g.nodes) release_constants &= !has_subgraphs(n);
  std::vector<int> uses_left(nv, 0);
  std::vector<uint8_t> keep_constant(nv, 0);
  for (const ir::Node& n : g.nodes)
    for (int in : n.inputs)
      if (in != ir::kNoValue) ++uses_left[static_cast<size_t>(in)];
  for (int v : g.outputs) keep_constant[static_cast<size_t>(v)] = 1;
  for (int v : g.inputs) keep_constant[static_cast<size_t>(v)] = 1;  // an initializer's default

  std::vector<int> last_use(nv, -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    ir::Node& node = g.nodes[ni];
    // However this node is handled (a kernel, folded, or a problem), its inputs have one use
    // fewer afterwards; a constant that its kernel reads at run time is kept for good.
    const ops::Kernel* created = nullptr;
    struct AfterNode {
      std::function<void()> f;
      ~AfterNode() { f(); }
    } after_node{[&] {
      if (!release_constants) return;
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        const int in = node.inputs[k];
        if (in == ir::kNoValue) continue;
        const size_t v = static_cast<size_t>(in);
        if (created != nullptr && created->reads_input_data(k)) keep_constant[v] = 1;
        std::optional<Tensor>& c = g.value(in).constant;
        if (--uses_left[v] == 0 && !keep_constant[v] && c && c->data<void>() != nullptr) {
          released_constant_bytes_ += static_cast<int64_t>(c->nbytes());
          *c = Tensor::view(c->dtype(), c->shape(), nullptr);
        }
      }
    }};
    // Brink's own operators (docs/INTERNAL_OPS.md) are at version 1 unless imported.
    int64_t opset = model_.opset(node.domain);
    if (opset == 0 && node.domain == kBrinkDomain) opset = 1;
    const std::vector<int> implicit = implicit_inputs(g, node);
    bool poisoned = false;
    for (int in : node.inputs)
      if (in != ir::kNoValue && value_poisoned_[static_cast<size_t>(in)]) poisoned = true;
    for (int in : implicit)
      if (value_poisoned_[static_cast<size_t>(in)]) poisoned = true;
    auto poison_outputs = [&] {
      for (int out : node.outputs)
        if (out != ir::kNoValue) value_poisoned_[static_cast<size_t>(out)] = true;
    };
    // Operator support is checked for every node; type problems only where the inputs'
    // types are known, so one earlier failure does not cascade into many.
    const ops::OpDef* def = ops::OpRegistry::global().find(node.domain, node.op_type, opset);
    if (!def) {
      const bool known = ops::OpRegistry::global().knows(node.domain, node.op_type);
      problems_.push_back(
          unsupported(node.describe() + ": " +
                      (known ? "operator is not supported at opset " + std::to_string(opset)
                             : std::string("operator is not supported"))));
      poison_outputs();
      continue;
    }
    if (poisoned) {
      poison_outputs();
      continue;
    }
    std::vector<const ir::TensorType*> in_types;
    std::vector<const Tensor*> in_values;
    bool all_constant = true;
    for (int in : node.inputs) {
      if (in == ir::kNoValue) {
        in_types.push_back(nullptr);
        in_values.push_back(nullptr);
        continue;
      }
      in_types.push_back(&value_types_[static_cast<size_t>(in)]);
      const auto& c = g.value(in).constant;
      in_values.push_back(c ? &*c : nullptr);
      if (!c) all_constant = false;
    }
    // Nodes with subgraphs are not folded: evaluate_node cannot compile subgraphs.
    // (A selective build without If, Loop or Scan has no subgraph compiler to link.)
    ops::SubgraphCompileFn compile_fn;
    if constexpr (ops::subgraph_ops_selected())
      if (has_subgraphs(node)) compile_fn = subgraph_compiler(node, options);
    if (compile_fn) all_constant = false;
    // A node with packed weights from a package is never folded: its packed inputs hold no
    // data, only its kernel can compute it.
    const ops::PackedWeights* prepacked = nullptr;
    if (extras_ != nullptr) {
      auto it = extras_->prepacked.find(static_cast<int>(ni));
      if (it != extras_->prepacked.end()) prepacked = &it->second, all_constant = false;
    }
    ops::InferContext ictx(node, opset, in_types, in_values);
    if (compile_fn) ictx.set_compile_subgraph(&compile_fn);
    if (Status s = def->infer(ictx); !s.is_ok()) {
      problems_.push_back(s);
      poison_outputs();
      continue;
    }
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (node.outputs[k] != ir::kNoValue)
        value_types_[static_cast<size_t>(node.outputs[k])] = ictx.outputs()[k];

    // Shape and Size only read their input's type: with a static shape they are constants,
    // which lets the Shape -> Gather -> Concat -> Reshape chains of exported models fold.
    if (options.fold_constants && !all_constant && node.inputs.size() == 1 && in_types[0] &&
        in_types[0]->is_static() && (node.op_type == "Shape" || node.op_type == "Size") &&
        node.domain.empty()) {
      const Tensor folded = ops::shape_or_size_value(node, in_types[0]->static_shape());
      g.value(node.outputs[0]).constant = folded;
      value_types_[static_cast<size_t>(node.outputs[0])] =
          ir::TensorType::of(DataType::kInt64, folded.shape());
      ++folded_nodes_;
      continue;
    }

    if (options.fold_constants && all_constant) {
      bool small = true;
      for (const auto& t : ictx.outputs())
        if (!t.is_static() ||
            shape_numel(t.static_shape()) * static_cast<int64_t>(dtype_size(t.dtype)) >
                kMaxFoldedBytes)
          small = false;
      if (small) {
        auto folded = ops::evaluate_node(node, opset, in_values);
        if (folded.is_ok()) {
          for (size_t k = 0; k < node.outputs.size(); ++k) {
            const int out = node.outputs[k];
            if (out == ir::kNoValue) continue;
            g.value(out).constant = (*folded)[k];
            value_types_[static_cast<size_t>(out)] =
                ir::TensorType::of((*folded)[k].dtype(), (*folded)[k].shape());
          }
          ++folded_nodes_;
          continue;
        }
        problems_.push_back(folded.status());
        poison_outputs();
        continue;
      }
    }

    ops::KernelCreateContext cctx{node, opset, in_types, {}, ictx.outputs(), compile_fn};
    cctx.num_threads = num_threads_;
    if (extras_ != nullptr && extras_->isa) cctx.isa = *extras_->isa;
    cctx.prepacked = prepacked;
    cctx.int8_kernels = options.int8_kernels;
    for (size_t k = 0; k < node.inputs.size(); ++k) cctx.constant_inputs.push_back(in_values[k]);
    auto kernel = def->create(cctx);
    if (kernel.is_ok() && prepacked != nullptr) {
      const auto used = (*kernel)->packed_weights();
      if (!used || used->data != prepacked->data)
        kernel = Status(StatusCode::kInvalidModel,
                        node.describe() + ": the package holds packed weights (" +
                            prepacked->layout + ") that its kernel does not take");
    }
    if (!kernel.is_ok()) {
      problems_.push_back(kernel.status());
      poison_outputs();
      continue;
    }
    Step step;
    step.node_index = static_cast<int>(ni);
    step.opset = opset;
    step.def = def;
    step.kernel = std::move(kernel).value();
    created = step.kernel.get();
    for (int in : node.inputs)
      if (in != ir::kNoValue && !g.value(in).constant)
        last_use[static_cast<size_t>(in)] = static_cast<int>(steps_.size());
    // What the subgraphs read must stay alive while the node runs.
    for (int in : implicit)
      if (!g.value(in).constant)
        last_use[static_cast<size_t>(in)] = static_cast<int>(steps_.size());
    steps_.push_back(std::move(step));

    LayerInfo layer;
    layer.node_index = static_cast<int>(ni);
    layer.name = node.name;
    layer.op_type = node.op_type;
    layer.kernel = steps_.back().kernel->kernel_note();
    layer.output_types = ictx.outputs();
    layer.macs = estimate_macs(node, in_types, ictx.outputs());
    int64_t out_elems = 0;
    for (const auto& t : ictx.outputs())
      if (t.is_static()) out_elems += shape_numel(t.static_shape());
    layer.flops = layer.macs > 0 ? 2 * layer.macs : out_elems;
    layers_.push_back(std::move(layer));
  }

  for (int out : g.outputs) {
    if (value_poisoned_[static_cast<size_t>(out)]) continue;
    last_use[static_cast<size_t>(out)] = static_cast<int>(steps_.size());  // never released
    outputs_.push_back(tensor_info_of(g.value(out).name, value_types_[static_cast<size_t>(out)]));
    output_types_.push_back(value_types_[static_cast<size_t>(out)]);
  }
  for (size_t v = 0; v < nv; ++v) {
    const int s = last_use[v];
    if (s >= 0 && s < static_cast<int>(steps_.size()))
      steps_[static_cast<size_t>(s)].release_after.push_back(static_cast<int>(v));
  }
}

Status CompiledModel::validate_feeds(const std::vector<NamedTensor>& feeds,
                                     std::vector<const Tensor*>* by_input) const {
  const ir::Graph& g = model_.graph;
  std::vector<std::string> problems;
  by_input->assign(inputs_.size(), nullptr);
  auto expected_names = [&] {
    std::string s;
    for (size_t i = 0; i < inputs_.size(); ++i) s += (i ? ", '" : "'") + inputs_[i].name + "'";
    return s.empty() ? std::string("none") : s;
  };
  for (const auto& [name, tensor] : feeds) {
    size_t k = 0;
    while (k < inputs_.size() && inputs_[k].name != name) ++k;
    if (k == inputs_.size()) {
      problems.push_back("unknown input '" + name + "' (the model's inputs are " +
                         expected_names() + ")");
      continue;
    }
    if ((*by_input)[k]) {
      problems.push_back("input '" + name + "' is given more than once");
      continue;
    }
    (*by_input)[k] = &tensor;
  }
  std::map<std::string, std::pair<int64_t, std::string>>
      symbols;  // dim name -> size, first input using it
  for (size_t k = 0; k < inputs_.size(); ++k) {
    const TensorInfo& info = inputs_[k];
    const Tensor* t = (*by_input)[k];
    if (!t) {
      problems.push_back("missing input '" + info.name + "' (" + dtype_long_name(info.dtype) + " " +
                         info.shape_string() + ")");
      continue;
    }
    if (t->dtype() != info.dtype) {
      problems.push_back("input '" + info.name + "' has element type " +
                         dtype_long_name(t->dtype()) + ", expected " + dtype_long_name(info.dtype));
      continue;
    }
    if (!info.rank_known) continue;
    if (t->rank() != static_cast<int64_t>(info.shape.size())) {
      problems.push_back("input '" + info.name + "' has shape " + shape_to_string(t->shape()) +
                         ", expected " + info.shape_string());
      continue;
    }
    for (size_t d = 0; d < info.shape.size(); ++d) {
      const int64_t got = t->shape()[d];
      if (info.shape[d] >= 0 && got != info.shape[d]) {
        problems.push_back("input '" + info.name + "' has shape " + shape_to_string(t->shape()) +
                           ", expected " + info.shape_string());
        break;
      }
      if (info.shape[d] < 0 && !info.dim_names[d].empty()) {
        auto [it, inserted] = symbols.insert({info.dim_names[d], {got, info.name}});
        if (!inserted && it->second.first != got)
          problems.push_back("dimension '" + info.dim_names[d] + "' is " + std::to_string(got) +
                             " in input '" + info.name + "' but " +
                             std::to_string(it->second.first) + " in input '" + it->second.second +
                             "'");
      }
    }
  }
  (void)g;
  if (problems.empty()) return Status::ok();
  return invalid_argument(join_problems(problems));
}

Result<std::vector<Tensor>> CompiledModel::run(const std::vector<NamedTensor>& feeds,
                                               std::vector<double>* step_seconds) const {
  if (!runnable()) return unsupported("the model cannot run: " + join_problems(problems_));
  std::vector<const Tensor*> fed;
  BRINK_RETURN_IF_ERROR(validate_feeds(feeds, &fed));
  if (step_seconds) step_seconds->assign(steps_.size(), 0.0);
  if (static_plan_) return run_static(fed, step_seconds);
  return run_dynamic(fed, nullptr, step_seconds);
}

Result<std::vector<Tensor>> CompiledModel::run_graph(const std::vector<const Tensor*>& fed,
                                                     const ops::OuterScope* outer) const {
  return run_dynamic(fed, outer, nullptr);
}

// Shapes come from running each node's inference on the actual inputs and every
// intermediate is allocated on its own: the path for models whose shapes depend on
// their inputs, and for subgraphs.
Result<std::vector<Tensor>> CompiledModel::run_dynamic(const std::vector<const Tensor*>& fed,
                                                       const ops::OuterScope* outer,
                                                       std::vector<double>* step_seconds) const {
  if (!runnable()) return unsupported("the graph cannot run: " + join_problems(problems_));
  const ir::Graph& g = model_.graph;
  if (fed.size() != g.inputs.size())
    return invalid_argument("graph '" + g.name + "' got " + std::to_string(fed.size()) +
                            " inputs, expected " + std::to_string(g.inputs.size()));
  std::vector<Tensor> values(g.values.size());
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const int v = g.inputs[k];
    if (!fed[k])
      return invalid_argument("graph '" + g.name + "': input " + std::to_string(k) + " is missing");
    // Kernels were prepared for these types: a subgraph input (a loop-carried value, say)
    // that changes element type or rank between iterations cannot run.
    const ir::TensorType& t = value_types_[static_cast<size_t>(v)];
    bool fits = fed[k]->dtype() == t.dtype && (!t.dims || fed[k]->rank() == t.rank());
    if (fits && t.dims)
      for (size_t d = 0; d < t.dims->size(); ++d)
        if ((*t.dims)[d].known() && (*t.dims)[d].value != fed[k]->shape()[d]) fits = false;
    if (!fits)
      return invalid_argument("graph '" + g.name + "': input '" + g.value(v).name + "' is " +
                              dtype_name(fed[k]->dtype()) + shape_to_string(fed[k]->shape()) +
                              ", expected " + t.to_string());
    values[static_cast<size_t>(v)] = *fed[k];
  }
  for (int v : outer_values_) {
    const Tensor* t = outer ? outer->find(g.value(v).name) : nullptr;
    if (!t)
      return internal_error("graph '" + g.name + "': value '" + g.value(v).name +
                            "' of an enclosing graph is not available");
    values[static_cast<size_t>(v)] = *t;
  }
  const LiveScope scope(g, values, outer);
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& step = steps_[si];
    const ir::Node& node = g.nodes[static_cast<size_t>(step.node_index)];
    inputs.clear();
    for (int in : node.inputs) {
      if (in == ir::kNoValue) {
        inputs.push_back(nullptr);
      } else if (const auto& c = g.value(in).constant) {
        inputs.push_back(&*c);
      } else {
        inputs.push_back(&values[static_cast<size_t>(in)]);
      }
    }
    if (step_gate_) BRINK_RETURN_IF_ERROR(step_gate_(step.node_index));
    const auto start = std::chrono::steady_clock::now();
    if (!step_pages_.empty() && si + 1 < steps_.size()) page_in_weights(si + 1);
    Status s = ops::run_kernel(*step.def, *step.kernel, node, step.opset, inputs, &outputs,
                               num_threads_, &scope, pool_.get());
    if (!step_pages_.empty()) page_out_weights(si);
    if (!s.is_ok()) return s;
    if (step_seconds)
      (*step_seconds)[si] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (node.outputs[k] != ir::kNoValue)
        values[static_cast<size_t>(node.outputs[k])] = std::move(outputs[k]);
    for (int v : step.release_after) values[static_cast<size_t>(v)] = Tensor();
  }
  std::vector<Tensor> result;
  for (int out : g.outputs) {
    const auto& c = g.value(out).constant;
    result.push_back(c ? *c : values[static_cast<size_t>(out)]);
  }
  return result;
}

}  // namespace brink
