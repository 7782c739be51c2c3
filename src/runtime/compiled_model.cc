#include "runtime/compiled_model.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "ops/evaluate.h"

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
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    const size_t w_index = op == "QLinearConv" ? 3 : 1;
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

Result<std::unique_ptr<CompiledModel>> CompiledModel::compile(ir::Model model,
                                                              const SessionOptions& options,
                                                              bool keep_problems) {
  auto cm = std::unique_ptr<CompiledModel>(new CompiledModel());
  cm->model_ = std::move(model);
  cm->num_threads_ = options.num_threads > 0
                         ? options.num_threads
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (Status s = cm->check_opsets(); !s.is_ok()) cm->problems_.push_back(s);
  cm->infer_and_prepare(options);
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

void CompiledModel::infer_and_prepare(const SessionOptions& options) {
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
  for (int i : g.inputs) {
    ir::TensorType t = g.value(i).type;
    if (t.dims)
      for (ir::Dim& d : *t.dims)
        if (!d.known() && dim_values.count(d.param)) d = ir::Dim(dim_values[d.param]);
    if (!dtype_is_supported(t.dtype))
      problems_.push_back(unsupported("graph input '" + g.value(i).name + "' has element type " +
                                      dtype_name(t.dtype) + ", which is not supported"));
    value_types_[static_cast<size_t>(i)] = t;
    inputs_.push_back(tensor_info_of(g.value(i).name, t));
  }

  std::vector<int> last_use(nv, -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    ir::Node& node = g.nodes[ni];
    const int64_t opset = model_.opset(node.domain);
    bool poisoned = false;
    for (int in : node.inputs)
      if (in != ir::kNoValue && value_poisoned_[static_cast<size_t>(in)]) poisoned = true;
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
    ops::InferContext ictx(node, opset, in_types, in_values);
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
      const Shape dims = in_types[0]->static_shape();
      Tensor folded;
      if (node.op_type == "Size") {
        folded = Tensor::scalar<int64_t>(shape_numel(dims));
      } else {
        const int64_t rank = static_cast<int64_t>(dims.size());
        auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
        const int64_t start = clamp(node.attr_int("start", 0)),
                      end = clamp(node.attr_int("end", rank));
        std::vector<int64_t> sliced;
        for (int64_t k = start; k < end; ++k) sliced.push_back(dims[static_cast<size_t>(k)]);
        folded = Tensor::from_vector<int64_t>({static_cast<int64_t>(sliced.size())}, sliced);
      }
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

    ops::KernelCreateContext cctx{node, opset, in_types, {}, ictx.outputs()};
    for (size_t k = 0; k < node.inputs.size(); ++k) cctx.constant_inputs.push_back(in_values[k]);
    auto kernel = def->create(cctx);
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
    for (int in : node.inputs)
      if (in != ir::kNoValue && !g.value(in).constant)
        last_use[static_cast<size_t>(in)] = static_cast<int>(steps_.size());
    steps_.push_back(std::move(step));

    LayerInfo layer;
    layer.node_index = static_cast<int>(ni);
    layer.name = node.name;
    layer.op_type = node.op_type;
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
  }
  for (size_t v = 0; v < nv; ++v) {
    const int s = last_use[v];
    if (s >= 0 && s < static_cast<int>(steps_.size()))
      steps_[static_cast<size_t>(s)].release_after.push_back(static_cast<int>(v));
  }
}

// Greedy by size (largest first), each tensor placed at the lowest offset that does not
// overlap a tensor alive at the same time. Simple and within a few percent of optimal on
// CNNs; see TFLite Micro's greedy_memory_planner for the same idea.
void CompiledModel::plan_memory() {
  if (!problems_.empty()) return;
  const ir::Graph& g = model_.graph;
  struct Buffer {
    int64_t bytes, first, last, offset = -1;
  };
  std::vector<Buffer> buffers;
  std::map<int, size_t> buffer_of_value;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ir::Node& node = g.nodes[static_cast<size_t>(steps_[s].node_index)];
    for (int out : node.outputs) {
      if (out == ir::kNoValue) continue;
      const ir::TensorType& t = value_types_[static_cast<size_t>(out)];
      if (!t.is_static()) return;  // arena size depends on input dims
      const int64_t bytes =
          (shape_numel(t.static_shape()) * static_cast<int64_t>(dtype_size(t.dtype)) + 63) / 64 *
          64;
      buffer_of_value[out] = buffers.size();
      buffers.push_back({bytes, static_cast<int64_t>(s), static_cast<int64_t>(steps_.size())});
    }
  }
  for (size_t s = 0; s < steps_.size(); ++s)
    for (int v : steps_[s].release_after)
      if (auto it = buffer_of_value.find(v); it != buffer_of_value.end())
        buffers[it->second].last = static_cast<int64_t>(s);
  for (int v : g.outputs)
    if (auto it = buffer_of_value.find(v); it != buffer_of_value.end())
      buffers[it->second].last = static_cast<int64_t>(steps_.size());

  std::vector<size_t> order(buffers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  int64_t arena = 0, unplanned = 0;
  std::vector<size_t> placed;
  for (size_t i : order) {
    Buffer& b = buffers[i];
    unplanned += b.bytes;
    std::vector<std::pair<int64_t, int64_t>>
        busy;  // [offset, end) of buffers alive at the same time
    for (size_t j : placed) {
      const Buffer& o = buffers[j];
      if (o.first <= b.last && b.first <= o.last) busy.push_back({o.offset, o.offset + o.bytes});
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [start, end] : busy) {
      if (offset + b.bytes <= start) break;
      offset = std::max(offset, end);
    }
    b.offset = offset;
    arena = std::max(arena, offset + b.bytes);
    placed.push_back(i);
  }
  arena_bytes_ = arena;
  unplanned_bytes_ = unplanned;
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

Result<std::vector<Tensor>> CompiledModel::run(const std::vector<NamedTensor>& feeds) const {
  if (!runnable()) return unsupported("the model cannot run: " + join_problems(problems_));
  std::vector<const Tensor*> fed;
  BRINK_RETURN_IF_ERROR(validate_feeds(feeds, &fed));
  const ir::Graph& g = model_.graph;
  std::vector<Tensor> values(g.values.size());
  for (size_t k = 0; k < g.inputs.size(); ++k) values[static_cast<size_t>(g.inputs[k])] = *fed[k];
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;
  for (const Step& step : steps_) {
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
    Status s =
        ops::run_kernel(*step.def, *step.kernel, node, step.opset, inputs, &outputs, num_threads_);
    if (!s.is_ok()) return s;
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
