#include "quant/quantize.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "passes/pass_util.h"
#include "passes/passes.h"
#include "quant/equalize.h"
#include "quant/graph_util.h"
#include "quant/quantize_int4.h"
#include "quant/smooth_quant.h"

namespace brink::quant {

Result<QuantMode> parse_quant_mode(const std::string& name) {
  if (name == "int8") return QuantMode::kInt8;
  if (name == "int8-dynamic") return QuantMode::kInt8Dynamic;
  if (name == "fp16") return QuantMode::kFp16;
  if (name == "int4") return QuantMode::kInt4;
  return invalid_argument("unknown quantization mode '" + name +
                          "' (expected int8, int8-dynamic, fp16 or int4)");
}

const char* quant_mode_name(QuantMode mode) {
  switch (mode) {
    case QuantMode::kInt8:
      return "int8";
    case QuantMode::kInt8Dynamic:
      return "int8-dynamic";
    case QuantMode::kFp16:
      return "fp16";
    case QuantMode::kInt4:
      return "int4";
  }
  return "?";
}

namespace {

using passes::GraphInfo;

// ---- quantization parameters ------------------------------------------------------------

struct QParams {
  std::vector<float> scale;  // one per channel, or one
  std::vector<int32_t> zero_point;
  int axis = -1;  // -1: per tensor
};

// Activation parameters from a clip range (which contains 0). ORT's compute_scale_zp.
QParams activation_params(Range r, bool is_signed) {
  QParams p;
  double lo = std::min(0.0f, r.lo), hi = std::max(0.0f, r.hi);
  double scale;
  int32_t zp;
  if (is_signed) {
    const double a = std::max(-lo, hi);
    scale = a / 127.0;
    zp = 0;
  } else {
    scale = (hi - lo) / 255.0;
    zp = scale > 0 ? static_cast<int32_t>(std::clamp(std::rint(-lo / scale), 0.0, 255.0)) : 0;
  }
  if (!(static_cast<float>(scale) >= std::numeric_limits<float>::min())) {
    scale = 1.0;
    zp = 0;
  }
  p.scale = {static_cast<float>(scale)};
  p.zero_point = {zp};
  return p;
}

// Symmetric int8 weight parameters per channel along `axis` (-1: per tensor), [-127, 127].
QParams weight_params(const Tensor& w, int axis) {
  QParams p;
  p.axis = axis;
  const int64_t channels = axis < 0 ? 1 : w.dim(axis);
  int64_t inner = 1;
  if (axis >= 0)
    for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  std::vector<float> absmax(static_cast<size_t>(channels), 0.0f);
  const float* x = w.data<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i) {
    const int64_t c = axis < 0 ? 0 : (i / inner) % channels;
    absmax[static_cast<size_t>(c)] = std::max(absmax[static_cast<size_t>(c)], std::fabs(x[i]));
  }
  for (float a : absmax) {
    const float s = a / 127.0f;
    p.scale.push_back(s >= std::numeric_limits<float>::min() ? s : 1.0f);
    p.zero_point.push_back(0);
  }
  return p;
}

// Quantizes a float tensor with `p` to `dtype` (int8 / uint8 / int32).
Tensor quantize_tensor(const Tensor& w, const QParams& p, DataType dtype) {
  Tensor q = Tensor::empty(dtype, w.shape());
  const int axis = p.axis;
  const int64_t channels = axis < 0 ? 1 : w.dim(axis);
  int64_t inner = 1;
  if (axis >= 0)
    for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  double qmin, qmax;
  if (dtype == DataType::kInt8) {
    qmin = -128, qmax = 127;
  } else if (dtype == DataType::kUInt8) {
    qmin = 0, qmax = 255;
  } else {
    qmin = std::numeric_limits<int32_t>::min(), qmax = std::numeric_limits<int32_t>::max();
  }
  const float* x = w.data<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i) {
    const size_t c = static_cast<size_t>(axis < 0 ? 0 : (i / inner) % channels);
    const double v =
        std::clamp(std::rint(static_cast<double>(x[i]) / p.scale[c]) + p.zero_point[c], qmin, qmax);
    if (dtype == DataType::kInt8) {
      q.data<int8_t>()[i] = static_cast<int8_t>(v);
    } else if (dtype == DataType::kUInt8) {
      q.data<uint8_t>()[i] = static_cast<uint8_t>(v);
    } else {
      q.data<int32_t>()[i] = static_cast<int32_t>(v);
    }
  }
  return q;
}

Tensor scale_tensor(const QParams& p) {
  if (p.axis < 0) return Tensor::scalar<float>(p.scale[0]);
  return Tensor::from_vector<float>({static_cast<int64_t>(p.scale.size())}, p.scale);
}

Tensor zero_point_tensor(const QParams& p, DataType dtype) {
  const Shape shape = p.axis < 0 ? Shape{} : Shape{static_cast<int64_t>(p.zero_point.size())};
  Tensor t = Tensor::empty(dtype, shape);
  for (size_t i = 0; i < p.zero_point.size(); ++i) {
    if (dtype == DataType::kInt8) {
      t.data<int8_t>()[i] = static_cast<int8_t>(p.zero_point[i]);
    } else if (dtype == DataType::kUInt8) {
      t.data<uint8_t>()[i] = static_cast<uint8_t>(p.zero_point[i]);
    } else {
      t.data<int32_t>()[i] = p.zero_point[i];
    }
  }
  return t;
}

Tensor transpose_2d(const Tensor& w) {
  const int64_t r = w.dim(0), c = w.dim(1);
  Tensor t = Tensor::empty(DataType::kFloat32, {c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t.data<float>()[j * r + i] = w.data<float>()[i * c + j];
  return t;
}

// ---- preparation ------------------------------------------------------------------------

Result<ir::Model> prepare(const ir::Model& model) {
  ir::Model m = model;
  passes::OptimizeReport r;
  passes::OptimizeOptions o;
  o.level = 1;
  BRINK_RETURN_IF_ERROR(passes::fold_constants(m, r, o));
  BRINK_RETURN_IF_ERROR(passes::remove_identities(m, r, o));
  BRINK_RETURN_IF_ERROR(passes::fold_batchnorms(m, r, o));
  BRINK_RETURN_IF_ERROR(passes::eliminate_dead_code(m, r, o));
  return m;
}

// ---- int8 static (QDQ) ------------------------------------------------------------------

enum class Kind { kActivation, kWeight, kShared };

// A calibrated magnitude past this is a sentinel, not a signal (see the file comment).
constexpr double kMaxActivationMagnitude = 1e6;

struct Entry {
  int value = -1;
  Kind kind = Kind::kActivation;
  int axis = -1;      // weights: the channel axis (-1 per tensor)
  int provider = -1;  // shared: the tensor whose parameters it takes
};

struct BiasUse {
  int node = -1, bias = -1, input = -1, weight = -1;
};

class StaticQuantizer {
 public:
  StaticQuantizer(ir::Model& model, const QuantizeOptions& options)
      : model_(model),
        g_(model.graph),
        options_(options),
        info_(GraphInfo::analyze(model)),
        node_name_(model.graph) {}

  // Decides what to quantize (ORT's QDQ rules); may remove Relu / Clip nodes.
  Status plan(QuantizeReport* report);
  // The activations that need a calibrated range.
  std::vector<std::string> tensors_to_calibrate() const;
  // Rewrites the graph with the ranges.
  Status rewrite(const std::map<std::string, Range>& ranges, QuantizeReport* report);

 private:
  bool is_float(int v) const {
    if (v < 0) return false;
    if (g_.value(v).constant) return g_.value(v).constant->dtype() == DataType::kFloat32;
    return info_.dtype(v) == DataType::kFloat32;
  }
  bool marked(int v) const { return index_.count(v) != 0; }
  void mark(int v, Kind kind, int axis = -1, int provider = -1) {
    if (!is_float(v)) return;
    owners_[v].insert(current_node_);
    auto it = index_.find(v);
    if (it != index_.end()) {
      if (kind == Kind::kActivation) return;  // never downgrades a weight or a shared entry
      entries_[it->second] = {v, kind, axis, provider};
      return;
    }
    index_[v] = entries_.size();
    entries_.push_back({v, kind, axis, provider});
  }
  void unmark(int v) {
    auto it = index_.find(v);
    if (it == index_.end()) return;
    entries_[it->second].value = -1;
    index_.erase(it);
  }
  int consumers(int v) const {
    int n = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (removed_.count(static_cast<int>(i))) continue;
      for (int in : g_.nodes[i].inputs)
        if (in == v) {
          ++n;
          break;
        }
    }
    return n;
  }
  bool is_graph_output(int v) const {
    return std::find(g_.outputs.begin(), g_.outputs.end(), v) != g_.outputs.end();
  }
  bool is_graph_input(int v) const {
    return std::find(g_.inputs.begin(), g_.inputs.end(), v) != g_.inputs.end();
  }
  const QParams& params_of(int v);
  int scale_value(int v);
  int zero_point_value(int v);
  // The Adds that feed LayerNormalization (directly or through other such Adds): float.
  void keep_layer_norm_inputs_float(QuantizeReport* report);
  // The range of a marked activation (calibrated, or an initializer's data); false if unknown.
  bool range_of(int v, Range* r) const;
  // Leaves `v` float because its range cannot be carried in 8 bits: its producer and readers
  // become float nodes. Returns false (and warns) where that is impossible.
  bool drop(int v, const std::string& why, QuantizeReport* report);
  // Unmarks the tensors that no quantized node needs any more (after float nodes were added).
  void prune();
  // Leaves float the tensors whose calibrated range 8 bits cannot carry (see the file comment).
  void check_ranges(QuantizeReport* report);

  ir::Model& model_;
  ir::Graph& g_;
  const QuantizeOptions& options_;
  GraphInfo info_;
  NodeNames node_name_;
  std::vector<Entry> entries_;
  std::map<int, size_t> index_;
  std::vector<BiasUse> biases_;
  std::set<int> removed_;
  std::map<int, LayerReport> layers_;  // by node index
  // Parameters and their initializers, by tensor.
  std::map<int, QParams> params_;
  std::map<int, int> scale_init_, zp_init_;
  std::map<std::string, Range> ranges_;
  // Which nodes marked each tensor (plan), and the node being planned.
  std::map<int, std::set<int>> owners_;
  int current_node_ = -1;
  // Nodes that run in float and read the float tensors themselves (never a DequantizeLinear):
  // the Adds feeding LayerNormalization, and the nodes next to a tensor left float for its
  // range. (keep_float layers are different: they read their neighbours' DequantizeLinear.)
  std::set<int> float_nodes_;
  // Outputs of a removed Relu / Clip: their Q/DQ pair does the clamping, so they stay.
  std::set<int> clamping_;
};

void StaticQuantizer::keep_layer_norm_inputs_float(QuantizeReport* report) {
  // Readers of each value (Value::consumers may be stale in hand-built graphs).
  std::map<int, std::vector<std::pair<int, size_t>>> readers;
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    for (size_t k = 0; k < g_.nodes[i].inputs.size(); ++k)
      if (g_.nodes[i].inputs[k] >= 0)
        readers[g_.nodes[i].inputs[k]].push_back({static_cast<int>(i), k});
  std::map<int, int> producer;
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    for (int o : g_.nodes[i].outputs)
      if (o >= 0) producer[o] = static_cast<int>(i);
  auto op_of = [&](int v, const char* op) {
    auto it = producer.find(v);
    if (it == producer.end()) return false;
    const ir::Node& p = g_.nodes[static_cast<size_t>(it->second)];
    return p.domain.empty() && p.op_type == op;
  };
  // `reader` reads x (input `slot`) as the input of a layer normalization: LayerNormalization's
  // X, or in the decomposed form of opset < 17 exports, (x - ReduceMean(x)) / ...: the
  // ReduceMean of x whose output a Sub(x, mean) reads, and that Sub.
  auto normalizes = [&](int reader, size_t slot, int x) {
    const ir::Node& r = g_.nodes[static_cast<size_t>(reader)];
    if (!r.domain.empty() || slot != 0) return false;
    if (r.op_type == "LayerNormalization") return true;
    if (r.op_type == "Sub")
      return r.inputs.size() == 2 && op_of(r.inputs[1], "ReduceMean") &&
             g_.nodes[static_cast<size_t>(producer.at(r.inputs[1]))].inputs[0] == x;
    if (r.op_type == "ReduceMean" && r.outputs.size() == 1) {
      for (const auto& [sub, k] : readers[r.outputs[0]]) {
        const ir::Node& sn = g_.nodes[static_cast<size_t>(sub)];
        if (sn.domain.empty() && sn.op_type == "Sub" && k == 1 && sn.inputs[0] == x) return true;
      }
    }
    return false;
  };
  // Backwards to a fixed point: an Add is float when everything reading its output is a
  // layer normalization's input or an Add already float (post-LN blocks, and the bias Adds of
  // the projections into the residual), or when a layer normalization and Adds read it (the
  // residual stream of pre-LN blocks, which the next block's residual Add reads too).
  int adds = 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = g_.nodes.size(); i-- > 0;) {
      const ir::Node& n = g_.nodes[i];
      if (!n.domain.empty() || n.op_type != "Add" || float_nodes_.count(static_cast<int>(i)) ||
          n.outputs.size() != 1 || n.outputs[0] < 0 || is_graph_output(n.outputs[0]) ||
          !is_float(n.outputs[0]) || options_.keep_float.count(node_label(g_, n)))
        continue;
      auto it = readers.find(n.outputs[0]);
      if (it == readers.end()) continue;
      bool only = true, any_norm = false, other_adds = false;
      for (const auto& [reader, slot] : it->second) {
        const ir::Node& r = g_.nodes[static_cast<size_t>(reader)];
        const bool norm = normalizes(reader, slot, n.outputs[0]);
        const bool add = r.domain.empty() && r.op_type == "Add";
        any_norm = any_norm || norm;
        other_adds = other_adds || (add && !float_nodes_.count(reader));
        only = only && (norm || float_nodes_.count(reader) || add);
      }
      only = only && (!other_adds || any_norm);
      if (!only) continue;
      float_nodes_.insert(static_cast<int>(i));
      ++adds;
      changed = true;
    }
  }
  if (adds > 0)
    report->float_kept.push_back(std::to_string(adds) +
                                 " Adds feeding LayerNormalization (residual stream) kept float");
}

bool StaticQuantizer::range_of(int v, Range* r) const {
  if (is_initializer(g_, v)) {
    const Tensor& t = *g_.value(v).constant;
    Range out;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float x = t.data<float>()[i];
      if (std::isnan(x)) {
        out.lo = out.hi = x;  // a NaN makes the range unusable
        break;
      }
      out.lo = std::min(out.lo, x);
      out.hi = std::max(out.hi, x);
    }
    *r = out;
    return true;
  }
  auto it = ranges_.find(g_.value(v).name);
  if (it == ranges_.end()) return false;
  *r = it->second;
  return true;
}

bool StaticQuantizer::drop(int v, const std::string& why, QuantizeReport* report) {
  const std::string& name = g_.value(v).name;
  if (clamping_.count(v)) {
    report->warnings.push_back("tensor '" + name + "' " + why +
                               ", but its Relu/Clip was folded into its Q/DQ pair: kept quantized");
    return false;
  }
  unmark(v);
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (removed_.count(static_cast<int>(i))) continue;
    const ir::Node& n = g_.nodes[i];
    const bool touches = std::find(n.inputs.begin(), n.inputs.end(), v) != n.inputs.end() ||
                         std::find(n.outputs.begin(), n.outputs.end(), v) != n.outputs.end();
    if (touches) float_nodes_.insert(static_cast<int>(i));
  }
  report->warnings.push_back("tensor '" + name + "' left float: " + why +
                             "; the ops reading and writing it run in float");
  return true;
}

void StaticQuantizer::check_ranges(QuantizeReport* report) {
  char why[256];
  bool dropped = false;
  // (1) Sentinels: a non-finite range, or a magnitude past kMaxActivationMagnitude.
  for (size_t k = 0; k < entries_.size(); ++k) {
    const Entry e = entries_[k];
    Range r;
    if (e.value < 0 || e.kind != Kind::kActivation || !range_of(e.value, &r)) continue;
    const bool finite = std::isfinite(r.lo) && std::isfinite(r.hi);
    if (finite && std::max(std::fabs(r.lo), std::fabs(r.hi)) <= kMaxActivationMagnitude) continue;
    std::snprintf(why, sizeof why, "its range [%g, %g] is %s", static_cast<double>(r.lo),
                  static_cast<double>(r.hi),
                  finite ? "beyond +-1e6 (a mask or sentinel value)" : "not finite");
    dropped = drop(e.value, why, report) || dropped;
  }
  // (2) Swamped Adds: when one input's whole range fits in one step of the 8-bit output, the
  // quantized sum cannot represent that input at all (an attention mask of -1e4 added to
  // scores of a few units); the dominant input and the output are left float.
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    const ir::Node& n = g_.nodes[i];
    if (n.op_type != "Add" || !layers_.count(static_cast<int>(i)) ||
        float_nodes_.count(static_cast<int>(i)) || n.inputs.size() != 2 || n.outputs.size() != 1)
      continue;
    const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
    Range ra, rb, ry;
    if (!marked(a) || !marked(b) || !marked(y) || is_initializer(g_, a) || is_initializer(g_, b) ||
        !range_of(a, &ra) || !range_of(b, &rb) || !range_of(y, &ry))
      continue;
    auto width = [](Range r) {
      return static_cast<double>(std::max(0.0f, r.hi)) - std::min(0.0f, r.lo);
    };
    const double step = activation_params(ry, options_.signed_activations).scale[0];
    const double wa = width(ra), wb = width(rb);
    if (std::min(wa, wb) >= step || std::min(wa, wb) <= 0) continue;
    const int big = wa >= wb ? a : b;
    std::snprintf(why, sizeof why,
                  "it swamps Add '%s': the other input's range (width %g) is below one 8-bit step "
                  "(%g) of the sum",
                  node_label(g_, n).c_str(), std::min(wa, wb), step);
    dropped = drop(big, why, report) || dropped;
    std::snprintf(why, sizeof why, "the output of swamped Add '%s'", node_label(g_, n).c_str());
    if (marked(y)) dropped = drop(y, why, report) || dropped;
  }
  if (dropped) prune();
}

void StaticQuantizer::prune() {
  std::map<int, std::vector<int>> readers;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (removed_.count(static_cast<int>(i))) continue;
    for (int in : g_.nodes[i].inputs)
      if (in >= 0) readers[in].push_back(static_cast<int>(i));
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const Entry& e : entries_) {
      const int v = e.value;
      if (v < 0 || clamping_.count(v)) continue;
      bool keep = e.kind != Kind::kShared || marked(e.provider);
      // Needed when a quantized node marked it and a quantized (or non-float-node) reader or
      // the graph's output reads its DequantizeLinear.
      bool owned = false;
      for (int n : owners_[v]) owned = owned || !float_nodes_.count(n);
      bool read = is_graph_output(v);
      for (int n : readers[v]) read = read || !float_nodes_.count(n);
      keep = keep && owned && read;
      if (!keep) {
        unmark(v);
        changed = true;
      }
    }
  }
  for (auto it = layers_.begin(); it != layers_.end();)
    it = float_nodes_.count(it->first) ? layers_.erase(it) : std::next(it);
}

Status StaticQuantizer::plan(QuantizeReport* report) {
  const int64_t opset = model_.opset("");
  int weighted = 0;
  // Producers from the node list (Value::producer may be stale in hand-built graphs).
  std::vector<int> producer_of(g_.values.size(), -1);
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    for (int o : g_.nodes[i].outputs)
      if (o >= 0) producer_of[static_cast<size_t>(o)] = static_cast<int>(i);
  keep_layer_norm_inputs_float(report);
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    ir::Node& n = g_.nodes[i];
    current_node_ = static_cast<int>(i);
    if (!n.domain.empty() || options_.keep_float.count(node_label(g_, n)) ||
        float_nodes_.count(current_node_))
      continue;
    const std::string& op = n.op_type;
    auto in = [&](size_t k) { return k < n.inputs.size() ? n.inputs[k] : ir::kNoValue; };
    auto out0 = n.outputs.empty() ? ir::kNoValue : n.outputs[0];
    LayerReport layer;
    layer.name = node_label(g_, n);
    layer.op = op;
    if (op == "Conv" || op == "Gemm" || op == "MatMul") {
      const int x = in(0), w = in(1);
      const Tensor* wt = f32_initializer(g_, w);
      if (!wt || !is_float(x) || is_initializer(g_, x)) continue;
      int axis = 0;
      if (op == "Conv") {
        if (wt->rank() < 3) continue;
        axis = 0;
      } else {
        if (wt->rank() != 2) continue;
        axis = op == "Gemm" && n.attr_int("transB", 0) != 0 ? 0 : 1;
      }
      mark(x, Kind::kActivation);
      mark(out0, Kind::kActivation);
      mark(w, Kind::kWeight, options_.per_channel ? axis : -1);
      layer.weight_bytes_before = tensor_bytes(g_, w);
      const int b = in(2);
      if (op != "MatMul" && b >= 0 && f32_initializer(g_, b)) {
        const Tensor& bt = *g_.value(b).constant;
        const int64_t channels = wt->dim(axis);
        const bool gemm_ok = op != "Gemm" || (n.attr_float("alpha", 1.0f) == 1.0f &&
                                              n.attr_float("beta", 1.0f) == 1.0f);
        if (gemm_ok && bt.rank() == 1 && bt.dim(0) == channels) {
          biases_.push_back({static_cast<int>(i), b, x, w});
          layer.weight_bytes_before += tensor_bytes(g_, b);
        }
      }
      layer.precision = "w8a8";
      layers_[static_cast<int>(i)] = layer;
      ++weighted;
    } else if (op == "Add" || op == "Mul" || op == "Concat" || op == "GlobalAveragePool") {
      bool all_float = !n.inputs.empty();
      for (int v : n.inputs) all_float = all_float && is_float(v);
      if (!all_float || !is_float(out0)) continue;
      for (int v : n.inputs) mark(v, Kind::kActivation);
      mark(out0, Kind::kActivation);
      layer.precision = "a8";
      layers_[static_cast<int>(i)] = layer;
    } else if (op == "Relu" || op == "Clip") {
      const int x = in(0), y = out0;
      if (!marked(x) || !is_float(y)) continue;
      const int producer = producer_of[static_cast<size_t>(x)];
      if (!options_.signed_activations && producer >= 0 && !removed_.count(producer) &&
          consumers(x) == 1 && !is_graph_output(x) && !is_graph_input(x) && !info_.pinned(x)) {
        // ORT's removable activation: the producer writes y; the Q/DQ on y clamps.
        for (int& o : g_.nodes[static_cast<size_t>(producer)].outputs)
          if (o == x) o = y;
        producer_of[static_cast<size_t>(y)] = producer;
        unmark(x);
        removed_.insert(static_cast<int>(i));
        g_.value_infos.erase(std::remove(g_.value_infos.begin(), g_.value_infos.end(), x),
                             g_.value_infos.end());
        clamping_.insert(y);
        auto it = layers_.find(producer);
        if (it != layers_.end()) it->second.op += "+" + op;
      } else {
        mark(x, Kind::kActivation);
      }
      mark(y, Kind::kActivation);
    } else if (op == "Reshape" || op == "Flatten" || op == "Transpose" || op == "Squeeze" ||
               op == "Unsqueeze" || op == "Slice" || op == "MaxPool" || op == "AveragePool") {
      if (op == "MaxPool" && (opset < 12 || n.outputs.size() > 1)) continue;
      const int x = in(0);
      if (!marked(x) || !is_float(out0)) continue;
      mark(out0, Kind::kShared, -1, x);
    }
  }
  current_node_ = -1;
  if (!float_nodes_.empty()) prune();
  if (weighted == 0 && options_.keep_float.empty())
    return invalid_argument(
        "no Conv/MatMul/Gemm with constant weights to quantize; the model is unchanged and no "
        "output was written");
  if (opset < 10)
    return unsupported("the model imports opset " + std::to_string(opset) +
                       "; QuantizeLinear needs opset >= 10 (convert the model first)");
  if (options_.per_channel && opset < 13)
    return unsupported("the model imports opset " + std::to_string(opset) +
                       "; per-channel DequantizeLinear needs opset >= 13 (use --per-tensor or "
                       "convert the model)");
  report->weights = options_.per_channel ? "per-channel" : "per-tensor";
  report->activations = options_.signed_activations ? "s8" : "u8";
  return Status::ok();
}

std::vector<std::string> StaticQuantizer::tensors_to_calibrate() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_)
    if (e.value >= 0 && e.kind == Kind::kActivation && !is_initializer(g_, e.value))
      names.push_back(g_.value(e.value).name);
  return names;
}

const QParams& StaticQuantizer::params_of(int v) {
  auto it = params_.find(v);
  if (it != params_.end()) return it->second;
  const Entry& e = entries_[index_.at(v)];
  QParams p;
  if (e.kind == Kind::kShared) {
    p = params_of(e.provider);
  } else if (e.kind == Kind::kWeight) {
    p = weight_params(*g_.value(v).constant, e.axis);
  } else if (is_initializer(g_, v)) {
    const Tensor& t = *g_.value(v).constant;
    Range r;
    for (int64_t i = 0; i < t.numel(); ++i) {
      r.lo = std::min(r.lo, t.data<float>()[i]);
      r.hi = std::max(r.hi, t.data<float>()[i]);
    }
    p = activation_params(r, options_.signed_activations);
  } else {
    auto r = ranges_.find(g_.value(v).name);
    p = activation_params(r != ranges_.end() ? r->second : Range{}, options_.signed_activations);
  }
  return params_[v] = p;
}

int StaticQuantizer::scale_value(int v) {
  const Entry& e = entries_[index_.at(v)];
  if (e.kind == Kind::kShared) return scale_value(e.provider);
  auto it = scale_init_.find(v);
  if (it != scale_init_.end()) return it->second;
  const int s =
      passes::add_initializer(g_, g_.value(v).name + "_scale", scale_tensor(params_of(v)));
  return scale_init_[v] = s;
}

int StaticQuantizer::zero_point_value(int v) {
  const Entry& e = entries_[index_.at(v)];
  if (e.kind == Kind::kShared) return zero_point_value(e.provider);
  auto it = zp_init_.find(v);
  if (it != zp_init_.end()) return it->second;
  const DataType dt =
      e.kind == Kind::kWeight || options_.signed_activations ? DataType::kInt8 : DataType::kUInt8;
  const int z = passes::add_initializer(g_, g_.value(v).name + "_zero_point",
                                        zero_point_tensor(params_of(v), dt));
  return zp_init_[v] = z;
}

Status StaticQuantizer::rewrite(const std::map<std::string, Range>& ranges,
                                QuantizeReport* report) {
  ranges_ = ranges;
  check_ranges(report);
  // Like ORT, raise a weight channel's scale where its int32 bias would not fit: a channel
  // with tiny weights and a large bias (x_scale * w_scale * 2^31 must exceed |bias|).
  for (const BiasUse& b : biases_) {
    if (!marked(b.input) || !marked(b.weight)) continue;
    const float x_scale = params_of(b.input).scale[0];
    params_of(b.weight);
    QParams& wp = params_.at(b.weight);
    const Tensor& bias = *g_.value(b.bias).constant;
    for (size_t c = 0; c < wp.scale.size(); ++c) {
      float absmax = 0;
      for (int64_t i = 0; i < bias.numel(); ++i)
        if (wp.scale.size() == 1 || static_cast<size_t>(i) == c)
          absmax = std::max(absmax, std::fabs(bias.data<float>()[i]));
      const double needed = absmax / (static_cast<double>(x_scale) * (1u << 30));
      if (wp.scale[c] < needed) wp.scale[c] = static_cast<float>(needed);
    }
  }
  const DataType act = options_.signed_activations ? DataType::kInt8 : DataType::kUInt8;
  const size_t original_nodes = g_.nodes.size();
  std::vector<ir::Node> prefix;                              // weight / bias DQs, graph-input Q/DQs
  std::vector<std::vector<ir::Node>> after(original_nodes);  // Q/DQ after each node
  std::map<int, int> replace;  // tensor -> its DequantizeLinear output
  // Each layer's output before any renaming (a graph output moves to the DequantizeLinear).
  std::map<int, int> layer_output;
  for (const auto& [node, layer] : layers_)
    layer_output[node] = g_.nodes[static_cast<size_t>(node)].outputs[0];
  // Producers as the plan left them (a removed Relu's output is now written by its producer).
  std::map<int, int> producer_of;
  for (size_t i = 0; i < original_nodes; ++i)
    if (!removed_.count(static_cast<int>(i)))
      for (int o : g_.nodes[i].outputs)
        if (o >= 0) producer_of[o] = static_cast<int>(i);
  auto add_dq = [&](int q_input, int v, const std::string& base, int out_value,
                    std::vector<ir::Node>* where, int axis) {
    ir::Node dq = make_node("DequantizeLinear", node_name_(base + "_DequantizeLinear"),
                            {q_input, scale_value(v), zero_point_value(v)}, {out_value});
    if (axis >= 0) dq.attributes.push_back(int_attr("axis", axis));
    where->push_back(std::move(dq));
    ++report->dequantize_nodes;
  };
  for (const Entry& e : entries_) {
    const int v = e.value;
    if (v < 0) continue;
    const std::string name = g_.value(v).name;
    const ir::TensorType type =
        g_.value(v).constant ? ir::TensorType::of(DataType::kFloat32, g_.value(v).constant->shape())
                             : info_.type(v);
    if (is_initializer(g_, v)) {
      // A constant: stored quantized, read through a DequantizeLinear.
      const bool weight = e.kind == Kind::kWeight;
      const QParams& p = params_of(v);
      const Tensor q = quantize_tensor(*g_.value(v).constant, p, weight ? DataType::kInt8 : act);
      const int qv = passes::add_initializer(g_, name + "_quantized", q);
      const int out = passes::add_value(g_, name + "_DequantizeLinear_Output", type);
      add_dq(qv, v, name, out, &prefix, weight ? e.axis : -1);
      replace[v] = out;
      continue;
    }
    const auto found = producer_of.find(v);
    const int producer = found != producer_of.end() ? found->second : -1;
    std::vector<ir::Node>* where = producer >= 0 ? &after[static_cast<size_t>(producer)] : &prefix;
    const int q_out =
        passes::add_value(g_, name + "_QuantizeLinear_Output", ir::TensorType(act, type.dims));
    int q_in = v;
    int dq_out;
    if (is_graph_output(v) && producer >= 0) {
      // The graph output keeps its name on the DequantizeLinear's output.
      q_in = passes::add_value(g_, name + "_QuantizeLinear_Input", type);
      for (int& o : g_.nodes[static_cast<size_t>(producer)].outputs)
        if (o == v) o = q_in;
      dq_out = v;
    } else {
      dq_out = passes::add_value(g_, name + "_DequantizeLinear_Output", type);
      replace[v] = dq_out;
    }
    where->push_back(make_node("QuantizeLinear", node_name_(name + "_QuantizeLinear"),
                               {q_in, scale_value(v), zero_point_value(v)}, {q_out}));
    ++report->quantize_nodes;
    add_dq(q_out, v, name, dq_out, where, -1);
  }
  // Biases: int32 with scale x_scale * w_scale[c], zero point 0.
  for (const BiasUse& b : biases_) {
    if (!marked(b.input) || !marked(b.weight)) continue;
    const QParams& xp = params_of(b.input);
    const QParams& wp = params_of(b.weight);
    QParams bp;
    bp.axis = wp.axis < 0 ? -1 : 0;
    for (float ws : wp.scale) {
      float s = xp.scale[0] * ws;
      if (!(s >= std::numeric_limits<float>::min())) s = 1.0f;
      bp.scale.push_back(s);
      bp.zero_point.push_back(0);
    }
    const std::string name = g_.value(b.bias).name;
    const Tensor q = quantize_tensor(*g_.value(b.bias).constant, bp, DataType::kInt32);
    const int qv = passes::add_initializer(g_, name + "_quantized", q);
    const int sv = passes::add_initializer(g_, name + "_quantized_scale", scale_tensor(bp));
    const int zv = passes::add_initializer(g_, name + "_quantized_zero_point",
                                           zero_point_tensor(bp, DataType::kInt32));
    const int out = passes::add_value(
        g_, name + "_DequantizeLinear_Output",
        ir::TensorType::of(DataType::kFloat32, g_.value(b.bias).constant->shape()));
    ir::Node dq =
        make_node("DequantizeLinear", node_name_(name + "_DequantizeLinear"), {qv, sv, zv}, {out});
    if (bp.axis >= 0) dq.attributes.push_back(int_attr("axis", 0));
    prefix.push_back(std::move(dq));
    ++report->dequantize_nodes;
    g_.nodes[static_cast<size_t>(b.node)].inputs[2] = out;
    auto it = layers_.find(b.node);
    if (it != layers_.end())
      it->second.weight_bytes_after +=
          static_cast<int64_t>(q.nbytes()) + tensor_bytes(g_, sv) + tensor_bytes(g_, zv);
  }
  // Weight sizes after, and the tensors the report compares.
  for (auto& [node, layer] : layers_) {
    const ir::Node& n = g_.nodes[static_cast<size_t>(node)];
    if (layer.precision == "w8a8") {
      const int w = n.inputs[1];
      layer.weight_bytes_after += static_cast<int64_t>(g_.value(w).constant->numel()) +
                                  tensor_bytes(g_, scale_value(w)) +
                                  tensor_bytes(g_, zero_point_value(w));
    }
    const int y = layer_output.at(node);
    layer.fp32_tensor = g_.value(y).name;
    auto r = replace.find(y);
    layer.quant_tensor = r != replace.end() ? g_.value(r->second).name : layer.fp32_tensor;
  }
  // Float bias kept (not quantized) counts the same before and after.
  for (auto& [node, layer] : layers_) {
    bool has_qbias = false;
    for (const BiasUse& b : biases_) has_qbias = has_qbias || b.node == node;
    const ir::Node& n = g_.nodes[static_cast<size_t>(node)];
    if (layer.precision == "w8a8" && !has_qbias && n.inputs.size() > 2 && n.inputs[2] >= 0 &&
        is_initializer(g_, n.inputs[2])) {
      layer.weight_bytes_before += tensor_bytes(g_, n.inputs[2]);
      layer.weight_bytes_after += tensor_bytes(g_, n.inputs[2]);
    }
  }
  // Rebuild the node list: prefix, then each kept node (inputs redirected) and its Q/DQs.
  std::vector<ir::Node> nodes = std::move(prefix);
  for (size_t i = 0; i < original_nodes; ++i) {
    if (removed_.count(static_cast<int>(i))) continue;
    ir::Node n = g_.nodes[i];
    const bool reads_float = float_nodes_.count(static_cast<int>(i)) != 0;
    for (int& in : n.inputs) {
      auto r = replace.find(in);
      if (in >= 0 && r != replace.end() && !reads_float) in = r->second;
    }
    nodes.push_back(std::move(n));
    for (ir::Node& extra : after[i]) nodes.push_back(std::move(extra));
  }
  // DequantizeLinear nodes read their own Q output, never a replaced tensor; fix the rest.
  g_.nodes = std::move(nodes);
  recompute_producers(g_);
  for (auto& [node, layer] : layers_) report->layers.push_back(layer);
  return Status::ok();
}

// ---- int8 dynamic -----------------------------------------------------------------------

Status quantize_dynamic(ir::Model& model, const QuantizeOptions& options, QuantizeReport* report) {
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model);
  NodeNames node_name(g);
  std::vector<ir::Node> nodes;
  std::map<int, std::array<int, 3>> dynamic_q;  // A -> (A_quantized, A_scale, A_zero_point)
  int converted = 0;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    const ir::Node n = g.nodes[i];
    if (options.keep_float.count(node_label(g, n))) {
      nodes.push_back(n);
      continue;
    }
    // An embedding table (Gather of a large constant float matrix along axis 0): int8 rows,
    // per tensor, dequantized after the lookup (as ORT's quantize_dynamic does): a quarter of
    // the file and of the memory, exact lookups.
    if (n.domain.empty() && n.op_type == "Gather" && n.inputs.size() == 2 &&
        n.outputs.size() == 1 && n.attr_int("axis", 0) == 0) {
      const Tensor* table = f32_initializer(g, n.inputs[0]);
      if (table != nullptr && table->rank() == 2 && table->nbytes() >= (size_t{1} << 20)) {
        LayerReport layer;
        layer.name = node_label(g, n);
        layer.op = n.op_type;
        layer.precision = "w8";
        layer.weight_bytes_before = static_cast<int64_t>(table->nbytes());
        const std::string tname = g.value(n.inputs[0]).name;
        const QParams tp = weight_params(*table, -1);
        const Tensor tq = quantize_tensor(*table, tp, DataType::kInt8);
        const int tq_v = passes::add_initializer(g, tname + "_quantized", tq);
        const int ts_v = passes::add_initializer(g, tname + "_scale", scale_tensor(tp));
        const int tz_v = passes::add_initializer(g, tname + "_zero_point",
                                                 zero_point_tensor(tp, DataType::kInt8));
        layer.weight_bytes_after =
            static_cast<int64_t>(tq.nbytes()) + tensor_bytes(g, ts_v) + tensor_bytes(g, tz_v);
        const int y = n.outputs[0];
        const std::string yn = g.value(y).name;
        const int gq = passes::add_value(g, yn + "_quantized",
                                         ir::TensorType(DataType::kInt8, info.type(y).dims));
        ir::Node gather = n;
        gather.inputs[0] = tq_v;
        gather.outputs = {gq};
        nodes.push_back(std::move(gather));
        nodes.push_back(make_node("DequantizeLinear", node_name(yn + "_DequantizeLinear"),
                                  {gq, ts_v, tz_v}, {y}));
        layer.fp32_tensor = layer.quant_tensor = yn;
        report->layers.push_back(layer);
        continue;
      }
    }
    const bool gemm = n.op_type == "Gemm";
    const bool candidate =
        n.domain.empty() && (n.op_type == "MatMul" || gemm) && n.inputs.size() >= 2;
    const Tensor* wt = candidate ? f32_initializer(g, n.inputs[1]) : nullptr;
    const int a = candidate ? n.inputs[0] : -1;
    if (!wt || wt->rank() != 2 || info.dtype(a) != DataType::kFloat32 || is_initializer(g, a) ||
        (gemm && n.attr_int("transA", 0) != 0)) {
      nodes.push_back(n);
      continue;
    }
    const float alpha = gemm ? n.attr_float("alpha", 1.0f) : 1.0f;
    const float beta = gemm ? n.attr_float("beta", 1.0f) : 1.0f;
    const int c = gemm && n.inputs.size() > 2 ? n.inputs[2] : ir::kNoValue;
    if (c >= 0 && beta != 1.0f && !f32_initializer(g, c)) {
      nodes.push_back(n);
      continue;
    }
    LayerReport layer;
    layer.name = node_label(g, n);
    layer.op = n.op_type;
    layer.precision = "w8-dynamic";
    layer.weight_bytes_before = static_cast<int64_t>(wt->nbytes());
    const std::string wname = g.value(n.inputs[1]).name;
    const Tensor w = gemm && n.attr_int("transB", 0) != 0 ? transpose_2d(*wt) : *wt;  // [K, N]
    const QParams wp = weight_params(w, options.per_channel ? 1 : -1);
    const Tensor wq = quantize_tensor(w, wp, DataType::kInt8);
    const int wq_v = passes::add_initializer(g, wname + "_quantized", wq);
    QParams scaled = wp;
    for (float& s : scaled.scale) s *= alpha;
    const int ws_v = passes::add_initializer(g, wname + "_scale", scale_tensor(scaled));
    const int wz_v =
        passes::add_initializer(g, wname + "_zero_point", zero_point_tensor(wp, DataType::kInt8));
    layer.weight_bytes_after =
        static_cast<int64_t>(wq.nbytes()) + tensor_bytes(g, ws_v) + tensor_bytes(g, wz_v);
    auto dq = dynamic_q.find(a);
    if (dq == dynamic_q.end()) {
      const std::string an = g.value(a).name;
      const ir::TensorType at = info.type(a);
      const int aq =
          passes::add_value(g, an + "_quantized", ir::TensorType(DataType::kUInt8, at.dims));
      const int as =
          passes::add_value(g, an + "_scale", ir::TensorType::of(DataType::kFloat32, {}));
      const int az =
          passes::add_value(g, an + "_zero_point", ir::TensorType::of(DataType::kUInt8, {}));
      nodes.push_back(
          make_node("DynamicQuantizeLinear", node_name(an + "_QuantizeLinear"), {a}, {aq, as, az}));
      dq = dynamic_q.emplace(a, std::array<int, 3>{aq, as, az}).first;
    }
    const auto [aq, as, az] = dq->second;
    const int y = n.outputs[0];
    const std::string yn = g.value(y).name;
    const ir::TensorType yt = info.type(y);
    const std::string base = n.name.empty() ? yn : n.name;
    const int mm =
        passes::add_value(g, yn + "_output_quantized", ir::TensorType(DataType::kInt32, yt.dims));
    nodes.push_back(
        make_node("MatMulInteger", node_name(base + "_quant"), {aq, wq_v, az, wz_v}, {mm}));
    const int cast = passes::add_value(g, yn + "_output_quantized_cast_output", yt);
    ir::Node cn = make_node("Cast", node_name(base + "_output_quantized_cast"), {mm}, {cast});
    cn.attributes.push_back(int_attr("to", static_cast<int64_t>(DataType::kFloat32)));
    nodes.push_back(std::move(cn));
    const Shape scales_shape = options.per_channel ? Shape{w.dim(1)} : Shape{};
    const int scales = passes::add_value(g, base + "_scales_mul_output",
                                         ir::TensorType::of(DataType::kFloat32, scales_shape));
    nodes.push_back(make_node("Mul", node_name(base + "_scales_mul"), {as, ws_v}, {scales}));
    if (c < 0) {
      nodes.push_back(make_node("Mul", node_name(base + "_output_scale_mul"), {cast, scales}, {y}));
    } else {
      const int prod = passes::add_value(g, yn + "_output_scale_mul_output", yt);
      nodes.push_back(
          make_node("Mul", node_name(base + "_output_scale_mul"), {cast, scales}, {prod}));
      int cv = c;
      if (beta != 1.0f) {
        Tensor cb = g.value(c).constant->clone();
        for (int64_t k = 0; k < cb.numel(); ++k) cb.data<float>()[k] *= beta;
        cv = passes::add_initializer(g, g.value(c).name + "_beta", cb);
      }
      nodes.push_back(make_node("Add", node_name(base + "_bias_add"), {prod, cv}, {y}));
    }
    layer.fp32_tensor = layer.quant_tensor = yn;
    report->layers.push_back(layer);
    ++converted;
  }
  if (converted == 0 && options.keep_float.empty())
    return invalid_argument(
        "no MatMul/Gemm with constant weights to quantize dynamically (int8-dynamic leaves Conv "
        "float); no output was written");
  if (model.opset("") < 11)
    return unsupported("the model imports opset " + std::to_string(model.opset("")) +
                       "; DynamicQuantizeLinear needs opset >= 11 (convert the model first)");
  g.nodes = std::move(nodes);
  recompute_producers(g);
  report->weights = options.per_channel ? "per-channel" : "per-tensor";
  report->activations = "u8 (dynamic)";
  return Status::ok();
}

// ---- fp16 -------------------------------------------------------------------------------

// `only_layers` (when not null): convert only the initializers those nodes read (by
// node_label), and leave the report's mode-wide fields alone (mixed precision).
Status quantize_fp16(ir::Model& model, QuantizeReport* report,
                     const std::set<std::string>* only_layers = nullptr) {
  ir::Graph& g = model.graph;
  std::set<int> keep(g.initializer_inputs.begin(), g.initializer_inputs.end());
  std::set<int> allowed;
  if (only_layers)
    for (const ir::Node& n : g.nodes)
      if (only_layers->count(node_label(g, n))) allowed.insert(n.inputs.begin(), n.inputs.end());
  NodeNames node_name(g);
  std::vector<ir::Node> casts;
  std::map<int, int64_t> converted;  // value -> bytes after
  std::vector<int> initializers;
  for (int v : g.initializers) {
    const Tensor* t = f32_initializer(g, v);
    bool ok = t && t->numel() >= 16 && !keep.count(v) && (!only_layers || allowed.count(v));
    if (ok)
      for (int64_t i = 0; i < t->numel() && ok; ++i)
        ok = std::fabs(t->data<float>()[i]) <= 65504.0f;
    if (!ok) {
      initializers.push_back(v);
      continue;
    }
    Tensor h = Tensor::empty(DataType::kFloat16, t->shape());
    for (int64_t i = 0; i < t->numel(); ++i) h.data<Float16>()[i] = Float16(t->data<float>()[i]);
    const std::string name = g.value(v).name;
    const int hv = g.add_value(passes::unique_value_name(g, name + "_fp16"),
                               ir::TensorType::of(DataType::kFloat16, t->shape()));
    g.value(hv).constant = h;
    initializers.push_back(hv);
    g.value(v).constant.reset();
    ir::Node cast = make_node("Cast", node_name(name + "_cast"), {hv}, {v});
    cast.attributes.push_back(int_attr("to", static_cast<int64_t>(DataType::kFloat32)));
    casts.push_back(std::move(cast));
    converted[v] = static_cast<int64_t>(h.nbytes());
  }
  if (only_layers && converted.empty()) return Status::ok();
  if (converted.empty())
    return invalid_argument(
        "no float32 initializers (16+ elements, within float16 range) to store "
        "as float16; no output was written");
  g.initializers = std::move(initializers);
  for (const ir::Node& n : g.nodes) {
    LayerReport layer;
    for (int in : n.inputs) {
      auto it = converted.find(in);
      if (it == converted.end()) continue;
      layer.weight_bytes_before += it->second * 2;
      layer.weight_bytes_after += it->second;
    }
    if (layer.weight_bytes_before == 0 || n.outputs.empty() || n.outputs[0] < 0) continue;
    layer.name = node_label(g, n);
    layer.op = n.op_type;
    layer.precision = "fp16";
    layer.fp32_tensor = layer.quant_tensor = g.value(n.outputs[0]).name;
    report->layers.push_back(layer);
  }
  casts.insert(casts.end(), g.nodes.begin(), g.nodes.end());
  g.nodes = std::move(casts);
  recompute_producers(g);
  if (only_layers) return Status::ok();
  report->weights = "fp16";
  report->activations = "fp32";
  return Status::ok();
}

// Sum of the bytes of all initializers.
int64_t initializer_bytes(const ir::Graph& g) {
  int64_t total = 0;
  for (int v : g.initializers) total += tensor_bytes(g, v);
  return total;
}

struct Agreement {
  double signal = 0, noise = 0, dot = 0, ref_sq = 0, q_sq = 0;
  void add(const Tensor& ref, const Tensor& q) {
    if (ref.dtype() != DataType::kFloat32 || q.dtype() != DataType::kFloat32 ||
        ref.numel() != q.numel())
      return;
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const double r = ref.data<float>()[i], x = q.data<float>()[i];
      signal += r * r;
      noise += (r - x) * (r - x);
      dot += r * x;
      ref_sq += r * r;
      q_sq += x * x;
    }
  }
  double sqnr_db() const {
    if (noise <= 0) return 200.0;
    if (signal <= 0) return 0.0;
    return std::min(200.0, 10.0 * std::log10(signal / noise));
  }
  double cosine() const {
    if (ref_sq <= 0 && q_sq <= 0) return 1.0;
    if (ref_sq <= 0 || q_sq <= 0) return 0.0;
    return dot / std::sqrt(ref_sq * q_sq);
  }
};

// --equalize, --smooth-quant (exact float rewrites: applied to the FP32 reference too) and
// --bias-correction (applied to the model to quantize only); sets result.quantized.
Status apply_accuracy_tools(QuantizeResult& result, const Dataset* calibration,
                            const QuantizeOptions& options) {
  const bool any = options.equalize || options.bias_correction || options.smooth_quant;
  if (any && options.mode != QuantMode::kInt8)
    return invalid_argument(std::string("--equalize, --bias-correction and --smooth-quant apply "
                                        "to --mode int8 (static) only, not ") +
                            quant_mode_name(options.mode));
  if (options.smooth_quant && !(options.smooth_quant_alpha >= 0 && options.smooth_quant_alpha <= 1))
    return invalid_argument("--smooth-quant alpha must be in [0, 1], got " +
                            std::to_string(options.smooth_quant_alpha));
  if (any && (!calibration || calibration->samples.empty()))
    return invalid_argument("--mode int8 needs calibration data (--calib DATA)");
  auto& tools = result.report.tools;
  const int threads = options.calibration.num_threads;
  if (options.equalize) {
    BRINK_ASSIGN_OR_RETURN(EqualizeStats st, equalize_cross_layer(result.prepared));
    tools.push_back("equalize: " + std::to_string(st.pairs) + " Conv pairs, " +
                    std::to_string(st.sweeps) + " sweeps");
  }
  if (options.smooth_quant) {
    BRINK_ASSIGN_OR_RETURN(
        SmoothQuantStats st,
        smooth_quant(result.prepared, *calibration, options.smooth_quant_alpha, -1, threads));
    char line[160];
    std::snprintf(line, sizeof line,
                  "smooth-quant (alpha %.2f): %d MatMul/Gemm weights, %d LayerNormalizations "
                  "(%d copied)",
                  options.smooth_quant_alpha, st.matmuls, st.layer_norms, st.duplicated);
    tools.push_back(line);
  }
  result.quantized = result.prepared;
  if (options.bias_correction) {
    BRINK_ASSIGN_OR_RETURN(
        int n, correct_bias(result.quantized, *calibration, options.per_channel, -1, threads));
    tools.push_back("bias correction: " + std::to_string(n) + " layers");
  }
  return Status::ok();
}

}  // namespace

Result<QuantizeResult> quantize_model(const ir::Model& model, const Dataset* calibration,
                                      const QuantizeOptions& options) {
  QuantizeResult result;
  BRINK_ASSIGN_OR_RETURN(result.prepared, prepare(model));
  QuantizeReport& report = result.report;
  BRINK_RETURN_IF_ERROR(apply_accuracy_tools(result, calibration, options));
  report.mode = quant_mode_name(options.mode);
  report.method = options.mode == QuantMode::kInt8
                      ? calibration_method_name(options.calibration.method)
                      : "none";
  // Mixed precision: the chosen float layers' weights become float16 + Cast first; the int8
  // modes then leave those layers (listed in keep_float too) alone.
  if (!options.fp16_weights.empty() && options.mode != QuantMode::kFp16)
    BRINK_RETURN_IF_ERROR(quantize_fp16(result.quantized, &report, &options.fp16_weights));
  switch (options.mode) {
    case QuantMode::kInt8: {
      if (!calibration || calibration->samples.empty())
        return invalid_argument("--mode int8 needs calibration data (--calib DATA)");
      const ir::Model float_model = result.quantized;
      StaticQuantizer q(result.quantized, options);
      BRINK_RETURN_IF_ERROR(q.plan(&report));
      CalibrationOptions co = options.calibration;
      co.symmetric = options.signed_activations;
      // Calibrated on the float model as it is quantized (with its corrected biases); ranges
      // an earlier call measured (the accuracy search) are reused.
      std::vector<std::string> missing;
      for (const std::string& t : q.tensors_to_calibrate())
        if (!options.ranges || !options.ranges->count(t)) missing.push_back(t);
      if (options.ranges) result.ranges = *options.ranges;
      if (!missing.empty()) {
        BRINK_ASSIGN_OR_RETURN(auto ranges, calibrate(float_model, missing, *calibration, co));
        result.ranges.insert(ranges.begin(), ranges.end());
      }
      report.calibration_samples = static_cast<int64_t>(calibration->samples.size());
      BRINK_RETURN_IF_ERROR(q.rewrite(result.ranges, &report));
      break;
    }
    case QuantMode::kInt8Dynamic:
      BRINK_RETURN_IF_ERROR(quantize_dynamic(result.quantized, options, &report));
      break;
    case QuantMode::kFp16:
      BRINK_RETURN_IF_ERROR(quantize_fp16(result.quantized, &report));
      break;
    case QuantMode::kInt4:
      BRINK_RETURN_IF_ERROR(quantize_int4(result.quantized, options, &report));
      break;
  }
  // Drop the float weights nothing reads any more.
  passes::OptimizeReport r;
  BRINK_RETURN_IF_ERROR(passes::eliminate_dead_code(result.quantized, r, {}));
  BRINK_RETURN_IF_ERROR(ir::verify(result.quantized));
  report.weight_bytes_before = initializer_bytes(result.prepared.graph);
  report.weight_bytes_after = initializer_bytes(result.quantized.graph);
  return result;
}

Status compare_models(QuantizeResult& result, const Dataset& data, int64_t num_samples,
                      int num_threads) {
  QuantizeReport& report = result.report;
  const size_t n =
      std::min<size_t>(data.samples.size(), static_cast<size_t>(std::max<int64_t>(0, num_samples)));
  if (n == 0) return Status::ok();
  const auto& samples = data.samples;
  std::vector<std::string> ref_names, q_names;
  for (const LayerReport& l : report.layers) {
    ref_names.push_back(l.fp32_tensor);
    q_names.push_back(l.quant_tensor);
  }
  for (int v : result.prepared.graph.outputs) {
    ref_names.push_back(result.prepared.graph.value(v).name);
    q_names.push_back(result.prepared.graph.value(v).name);
  }
  // Both models run side by side, one sample at a time, so only one sample's tensors are held.
  BRINK_ASSIGN_OR_RETURN(auto reference, Observer::create(result.prepared, ref_names, num_threads));
  auto quantized = Observer::create(result.quantized, q_names, num_threads);
  if (!quantized.is_ok()) return quantized.status().with_context("loading the quantized model");
  std::vector<Agreement> agree(ref_names.size());
  for (size_t s = 0; s < n; ++s) {
    BRINK_ASSIGN_OR_RETURN(auto refs, reference->observe(samples[s]));
    auto obs = (*quantized)->observe(samples[s]);
    if (!obs.is_ok()) return obs.status().with_context("running the quantized model");
    for (size_t k = 0; k < obs->size(); ++k) agree[k].add(refs[k], (*obs)[k]);
  }
  for (size_t k = 0; k < report.layers.size(); ++k) {
    report.layers[k].compared = true;
    report.layers[k].sqnr_db = agree[k].sqnr_db();
    report.layers[k].cosine = agree[k].cosine();
  }
  report.outputs.clear();
  for (size_t k = report.layers.size(); k < ref_names.size(); ++k)
    report.outputs.push_back({ref_names[k], agree[k].sqnr_db(), agree[k].cosine()});
  report.compared_samples = static_cast<int64_t>(n);
  return Status::ok();
}

std::string format_report_table(const QuantizeReport& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "mode %s, calibration %s, weights %s, activations %s\n",
                r.mode.c_str(), r.method.c_str(), r.weights.c_str(), r.activations.c_str());
  out += line;
  for (const std::string& t : r.tools) out += t + "\n";
  for (const std::string& t : r.float_kept) out += t + "\n";
  for (const std::string& t : r.warnings) out += t + "\n";
  bool sensitivity = false;
  for (const LayerReport& l : r.layers) sensitivity = sensitivity || l.sensitivity_measured;
  std::snprintf(line, sizeof line, "%-32s %-18s %-15s %9s %8s %12s %12s%s\n", "layer", "op",
                "precision", "SQNR dB", "cosine", "weights", "quantized",
                sensitivity ? "  sensitivity dB" : "");
  out += line;
  for (const LayerReport& l : r.layers) {
    std::string name = l.name.size() > 32 ? l.name.substr(0, 29) + "..." : l.name;
    char sq[32] = "-", cs[32] = "-";
    if (l.compared) {
      std::snprintf(sq, sizeof sq, "%.1f", l.sqnr_db);
      std::snprintf(cs, sizeof cs, "%.5f", l.cosine);
    }
    char sens[32] = "";
    if (sensitivity && l.sensitivity_measured)
      std::snprintf(sens, sizeof sens, "  %14.2f", l.sensitivity_db);
    else if (sensitivity)
      std::snprintf(sens, sizeof sens, "  %14s", "-");
    std::snprintf(line, sizeof line, "%-32s %-18s %-15s %9s %8s %12lld %12lld%s\n", name.c_str(),
                  l.op.c_str(), l.precision.c_str(), sq, cs,
                  static_cast<long long>(l.weight_bytes_before),
                  static_cast<long long>(l.weight_bytes_after), sens);
    out += line;
  }
  for (const OutputReport& o : r.outputs) {
    std::snprintf(line, sizeof line, "model output %s: SQNR %.1f dB, cosine %.5f (%lld samples)\n",
                  o.name.c_str(), o.sqnr_db, o.cosine, static_cast<long long>(r.compared_samples));
    out += line;
  }
  size_t quantized = 0;  // layers the accuracy search left in float are listed, not counted
  for (const LayerReport& l : r.layers)
    quantized += l.precision.find("(fallback)") == std::string::npos;
  std::snprintf(line, sizeof line,
                "%zu layers quantized, %lld QuantizeLinear, %lld DequantizeLinear; weights %lld -> "
                "%lld bytes",
                quantized, static_cast<long long>(r.quantize_nodes),
                static_cast<long long>(r.dequantize_nodes),
                static_cast<long long>(r.weight_bytes_before),
                static_cast<long long>(r.weight_bytes_after));
  out += line;
  if (r.file_bytes_before > 0) {
    std::snprintf(line, sizeof line, "; file %lld -> %lld bytes",
                  static_cast<long long>(r.file_bytes_before),
                  static_cast<long long>(r.file_bytes_after));
    out += line;
  }
  out += "\n";
  const AccuracySummary& a = r.accuracy;
  if (a.searched) {
    std::snprintf(line, sizeof line,
                  "accuracy target: %s %s %g on %lld eval samples: %.6g with every layer "
                  "quantized -> %.6g as written (%s); %lld of %lld layers fell back (%lld fp32, "
                  "%lld fp16); weights %lld -> %lld bytes by the fallback; %lld evaluations in "
                  "%.2f s\n",
                  a.metric.c_str(), a.direction.c_str(), a.target,
                  static_cast<long long>(a.eval_samples), a.before, a.after,
                  a.met ? "met" : "NOT met", static_cast<long long>(a.layers_fp32 + a.layers_fp16),
                  static_cast<long long>(a.layers), static_cast<long long>(a.layers_fp32),
                  static_cast<long long>(a.layers_fp16),
                  static_cast<long long>(a.weight_bytes_before_fallback),
                  static_cast<long long>(r.weight_bytes_after),
                  static_cast<long long>(a.evaluations), a.seconds);
    out += line;
  }
  return out;
}

std::string report_json(const QuantizeReport& r) {
  // How the runtime ran one side of a layer (layer_timing.h); ms null when it has no time.
  auto time_json = [](const LayerTime& t) {
    return nlohmann::json{{"op", t.op.empty() ? nlohmann::json() : nlohmann::json(t.op)},
                          {"node", t.node.empty() ? nlohmann::json() : nlohmann::json(t.node)},
                          {"ms", t.measured ? nlohmann::json(t.ms) : nlohmann::json()},
                          {"kernel", t.kernel},
                          {"note", t.note}};
  };
  nlohmann::json j;
  j["mode"] = r.mode;
  j["method"] = r.method;
  j["weights"] = r.weights;
  j["activations"] = r.activations;
  j["tools"] = r.tools;
  j["float_kept"] = r.float_kept;
  j["warnings"] = r.warnings;
  j["calibration_samples"] = r.calibration_samples;
  j["compared_samples"] = r.compared_samples;
  j["quantize_nodes"] = r.quantize_nodes;
  j["dequantize_nodes"] = r.dequantize_nodes;
  j["layers"] = nlohmann::json::array();
  for (const LayerReport& l : r.layers) {
    nlohmann::json e;
    e["name"] = l.name;
    e["op"] = l.op;
    e["precision"] = l.precision;
    e["tensor"] = l.fp32_tensor;
    e["sqnr_db"] = l.compared ? nlohmann::json(l.sqnr_db) : nlohmann::json();
    e["cosine"] = l.compared ? nlohmann::json(l.cosine) : nlohmann::json();
    e["weight_bytes_before"] = l.weight_bytes_before;
    e["weight_bytes_after"] = l.weight_bytes_after;
    if (l.sensitivity_measured) e["sensitivity_db"] = l.sensitivity_db;
    if (r.timing.measured)
      e["time"] = {{"fp32", time_json(l.fp32_time)}, {"quantized", time_json(l.quant_time)}};
    j["layers"].push_back(e);
  }
  j["outputs"] = nlohmann::json::array();
  for (const OutputReport& o : r.outputs)
    j["outputs"].push_back({{"name", o.name}, {"sqnr_db", o.sqnr_db}, {"cosine", o.cosine}});
  j["totals"] = {{"weight_bytes_before", r.weight_bytes_before},
                 {"weight_bytes_after", r.weight_bytes_after},
                 {"file_bytes_before", r.file_bytes_before},
                 {"file_bytes_after", r.file_bytes_after}};
  const AccuracySummary& a = r.accuracy;
  if (a.searched)
    j["accuracy"] = {{"metric", a.metric},
                     {"direction", a.direction},
                     {"target", a.target},
                     {"before_fallback", a.before},
                     {"after_fallback", a.after},
                     {"met", a.met},
                     {"layers", a.layers},
                     {"layers_fp32", a.layers_fp32},
                     {"layers_fp16", a.layers_fp16},
                     {"evaluations", a.evaluations},
                     {"eval_samples", a.eval_samples},
                     {"weight_bytes_before_fallback", a.weight_bytes_before_fallback},
                     {"weight_bytes_after_fallback", r.weight_bytes_after},
                     {"seconds", a.seconds}};
  if (r.timing.measured) {
    j["totals"]["latency_ms_p50_fp32"] = r.timing.fp32_p50_ms;
    j["totals"]["latency_ms_p50_quantized"] = r.timing.quant_p50_ms;
    j["totals"]["other_steps_ms_fp32"] = r.timing.fp32_other_ms;
    j["totals"]["other_steps_ms_quantized"] = r.timing.quant_other_ms;
    j["totals"]["timing_runs"] = r.timing.runs;
    j["totals"]["timing_threads"] = r.timing.threads;
  }
  if (!r.outputs.empty()) {  // the worst model output against FP32 (FP32 itself: 1, identical)
    double cos = 1, sqnr = 200;
    for (const OutputReport& o : r.outputs) {
      cos = std::min(cos, o.cosine);
      sqnr = std::min(sqnr, o.sqnr_db);
    }
    j["totals"]["output_cosine_min"] = cos;
    j["totals"]["output_sqnr_db_min"] = sqnr;
  }
  return j.dump(2) + "\n";
}

}  // namespace brink::quant
