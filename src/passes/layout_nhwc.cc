// NHWC layout for 2-D convolutions, carried through layout-agnostic consumers.
//
// One forward sweep decides: every float32 2-D convolution runs NHWC; an elementwise op,
// channel Concat / Split, pool (as a brink pool op), Slice, Reduce or Resize (axes and
// per-axis constants remapped), or a channel shuffle (Reshape-Transpose-Reshape) runs NHWC
// when its image input is already NHWC (other inputs are converted, constants permuted).
// A converted node writes a new "_nhwc" twin of each output; the original value, with its
// name and NCHW type, is produced from the twin only where something still reads it as
// NCHW (an unconverted consumer, a graph output, a subgraph). So graph inputs and outputs
// keep their layout, and a value read both ways is converted once. A model's own
// Transpose to NCHW gives its output a free twin (its input), and the model's Transposes
// to NHWC cancel against the inserted conversions afterwards (cancel_transposes), so
// ConvNeXt-style permutes disappear.
//
// Limits: 2-D only; Pad, Upsample, Resize with `axes`, Reshape/Flatten other than a
// channel shuffle (and the H = W = 1 squeeze) stay NCHW behind a conversion. The choice is
// greedy, not cost-based: a lone convolution between NCHW ops still gets two conversions,
// about what the NCHW brink.Conv path spends internally anyway.
#include <algorithm>
#include <array>
#include <numeric>
#include <optional>
#include <set>

#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

enum class Kind {
  kNone,
  kConv,
  kQConv,        // brink.QConv: uint8 x at slot 0
  kQGlobalPool,  // com.microsoft QLinearGlobalAveragePool (channels_last)
  kUnary,
  kElementwise,
  kConcat,
  kSplit,
  kPool,
  kSlice,
  kReduce,
  kResize,
  // Channel shuffle Reshape [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape back,
  // rewritten as a unit: Reshape [N, H, W, g, C/g] -> Transpose [0, 1, 2, 4, 3] -> Reshape.
  kShuffleSplit,
  kShuffleTranspose,
  kShuffleMerge,
};

const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};

Kind classify(const ir::Node& node) {
  static const std::set<std::string> kUnary = {"Relu",
                                               "LeakyRelu",
                                               "Sigmoid",
                                               "Tanh",
                                               "Clip",
                                               "HardSigmoid",
                                               "HardSwish",
                                               "Elu",
                                               "Selu",
                                               "Celu",
                                               "Softplus",
                                               "Softsign",
                                               "Exp",
                                               "Log",
                                               "Neg",
                                               "Abs",
                                               "Sqrt",
                                               "Reciprocal",
                                               "Erf",
                                               "Gelu",
                                               "Mish",
                                               "ThresholdedRelu",
                                               "Floor",
                                               "Ceil",
                                               "Round",
                                               "Sign",
                                               "Identity",
                                               "QuantizeLinear",
                                               "DequantizeLinear"};
  static const std::set<std::string> kElementwise = {"Add", "Sub", "Mul", "Div",  "Pow",
                                                     "Max", "Min", "Sum", "Mean", "PRelu"};
  static const std::set<std::string> kPools = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                               "GlobalMaxPool"};
  static const std::set<std::string> kReduce = {"ReduceMean", "ReduceMax", "ReduceMin",
                                                "ReduceSum"};
  if (node.domain == "brink") {
    if (node.op_type == "Conv") return Kind::kConv;
    if (node.op_type == "QConv") return Kind::kQConv;
    if (node.op_type == "QAdd") return Kind::kElementwise;
    if (node.op_type == "Gelu") return Kind::kUnary;
    return Kind::kNone;
  }
  if (node.domain == "com.microsoft" && node.op_type == "QLinearGlobalAveragePool")
    return Kind::kQGlobalPool;
  if (!node.domain.empty()) return Kind::kNone;
  if (node.op_type == "Conv") return Kind::kConv;
  if (kUnary.count(node.op_type)) return Kind::kUnary;
  if (kElementwise.count(node.op_type)) return Kind::kElementwise;
  if (node.op_type == "Concat") return Kind::kConcat;
  if (node.op_type == "Split") return Kind::kSplit;
  if (kPools.count(node.op_type)) return Kind::kPool;
  if (node.op_type == "Slice") return Kind::kSlice;
  if (kReduce.count(node.op_type)) return Kind::kReduce;
  if (node.op_type == "Resize") return Kind::kResize;
  if (node.op_type == "Reshape") return Kind::kShuffleSplit;  // only as a shuffle's start
  return Kind::kNone;
}

// A rank-4 float32 or uint8 (quantized) value.
bool image(const GraphInfo& info, int v) {
  return v != ir::kNoValue && (info.is_float32(v) || info.dtype(v) == DataType::kUInt8) &&
         info.rank(v) == 4;
}

// A non-constant input that broadcasts the same in both layouts: a single element.
bool single_element(const GraphInfo& info, int v) {
  const ir::TensorType& t = info.type(v);
  if (!t.dims || t.rank() > 4) return false;
  for (const ir::Dim& d : *t.dims)
    if (!d.known() || d.value != 1) return false;
  return true;
}

int64_t axis_of(const ir::Node& node, int64_t fallback) {
  int64_t axis = node.attr_int("axis", fallback);
  return axis < 0 ? axis + 4 : axis;
}

// Where NCHW axis `a` (0..3) is in NHWC.
int64_t nhwc_axis(int64_t a) {
  static constexpr int64_t kPos[4] = {0, 3, 1, 2};
  return kPos[a];
}

// Normalized axes 0..3 from a constant or attribute list; nullopt when out of range.
std::optional<std::vector<int64_t>> normalized_axes(const std::vector<int64_t>& axes) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    if (a < 0) a += 4;
    if (a < 0 || a >= 4) return std::nullopt;
    out.push_back(a);
  }
  return out;
}

std::vector<int64_t> int_values(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.element_as_int64(i));
  return v;
}

bool static_dims(const GraphInfo& info, int v, Shape* dims) {
  if (v == ir::kNoValue || !info.type(v).is_static()) return false;
  *dims = info.type(v).static_shape();
  return true;
}

ir::TensorType nhwc_type(const ir::TensorType& t) {
  const auto& d = *t.dims;
  return ir::TensorType(t.dtype, std::vector<ir::Dim>{d[0], d[2], d[3], d[1]});
}

// The NHWC form of a value: [N, C, H, W] -> [N, H, W, C]; a channel shuffle's
// [N, a, b, H, W] -> [N, H, W, a, b].
ir::TensorType twin_type(const ir::TensorType& t) {
  if (t.rank() != 5) return nhwc_type(t);
  const auto& d = *t.dims;
  return ir::TensorType(t.dtype, std::vector<ir::Dim>{d[0], d[3], d[4], d[1], d[2]});
}

// A constant broadcast against an NCHW tensor, rewritten for NHWC: rank 4 permuted, lower
// ranks padded to 4 first ([C, 1, 1] -> [1, 1, 1, C]).
Tensor permute_constant(const Tensor& c) {
  Shape dims(static_cast<size_t>(4 - c.rank()), 1);
  dims.insert(dims.end(), c.shape().begin(), c.shape().end());
  const Shape out_dims = {dims[0], dims[2], dims[3], dims[1]};
  Tensor out = Tensor::empty(c.dtype(), out_dims);
  const size_t es = dtype_size(c.dtype());
  const auto* src = static_cast<const char*>(c.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  const int64_t n = dims[0], ch = dims[1], h = dims[2], w = dims[3];
  size_t o = 0;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < ch; ++k, ++o) {
          const int64_t i = ((a * ch + k) * h + y) * w + x;
          std::copy_n(src + static_cast<size_t>(i) * es, es, dst + o * es);
        }
  return out;
}

// Whether input `slot` of a node converted as `kind` is read in NHWC.
bool layout_slot(const GraphInfo& info, Kind kind, const ir::Node& node, size_t slot) {
  const int v = node.inputs[slot];
  switch (kind) {
    case Kind::kConv:
      return slot == 0 || slot == 3;
    case Kind::kQConv:
    case Kind::kQGlobalPool:
    case Kind::kUnary:
    case Kind::kSplit:
    case Kind::kPool:
    case Kind::kSlice:
    case Kind::kReduce:
    case Kind::kResize:
    case Kind::kShuffleSplit:
    case Kind::kShuffleTranspose:
    case Kind::kShuffleMerge:
      return slot == 0;
    case Kind::kElementwise:
      return !info.constant(v) && info.rank(v) == 4;
    case Kind::kConcat:
      return !info.constant(v);
    case Kind::kNone:
      break;
  }
  return false;
}

class LayoutPass {
 public:
  LayoutPass(ir::Model& model, const GraphInfo& info, OptimizeReport& report)
      : model_(model), g_(model.graph), info_(info), report_(report), rw_(model.graph) {}

  Status run() {
    const size_t n = g_.nodes.size();
    kind_.assign(n, Kind::kNone);
    convert_.assign(n, 0);
    nhwc_.assign(g_.values.size(), 0);
    twin_.assign(g_.values.size(), ir::kNoValue);
    for (size_t i = 0; i < n; ++i) {
      if (convert_[i]) continue;  // taken by a channel shuffle
      const ir::Node& node = g_.nodes[i];
      // The model's own Transpose to NCHW (ConvNeXt's permutes): its input is its output's
      // NHWC twin, for free.
      if (is_op(node, "Transpose") && node.inputs.size() == 1 && node.outputs.size() == 1 &&
          node.attr_ints("perm") == kToNchw && image(info_, node.inputs[0]) &&
          image(info_, node.outputs[0])) {
        nhwc_[static_cast<size_t>(node.outputs[0])] = 1;
        twin_[static_cast<size_t>(node.outputs[0])] = node.inputs[0];
        continue;
      }
      const Kind kind = classify(node);
      if (kind == Kind::kShuffleSplit) {
        if (auto shuffle = match_shuffle(static_cast<int>(i))) {
          const Kind roles[3] = {Kind::kShuffleSplit, Kind::kShuffleTranspose, Kind::kShuffleMerge};
          for (int k = 0; k < 3; ++k) {
            const size_t at = static_cast<size_t>((*shuffle)[static_cast<size_t>(k)]);
            kind_[at] = roles[k];
            convert_[at] = 1;
          }
          nhwc_[static_cast<size_t>(g_.nodes[static_cast<size_t>((*shuffle)[2])].outputs[0])] = 1;
        }
        continue;
      }
      if (kind != Kind::kNone && decide(node, kind)) {
        kind_[i] = kind;
        convert_[i] = 1;
        if (writes_nhwc(node, kind))
          for (int out : node.outputs)
            if (out != ir::kNoValue) nhwc_[static_cast<size_t>(out)] = 1;
      }
    }
    bool any = false;
    for (size_t i = 0; i < n; ++i)
      if (convert_[i]) {
        rewrite(static_cast<int>(i));
        any = true;
      }
    if (!any) return Status::ok();
    import_brink_domain(model_);
    rw_.commit();
    return Status::ok();
  }

  // Values written by the layout conversions this pass added.
  const std::set<int>& conversion_outputs() const { return conversion_outputs_; }

 private:
  bool decide(const ir::Node& node, Kind kind) const {
    if (node.outputs.empty() || node.outputs[0] == ir::kNoValue) return false;
    // Every output is an image, except a Reduce that drops its axes (checked below).
    if (writes_nhwc(node, kind) ? !image(info_, node.outputs[0])
                                : !info_.is_float32(node.outputs[0]))
      return false;
    // Only the integer ops (and those that only move values) take uint8 images.
    const bool integer = info_.dtype(node.outputs[0]) == DataType::kUInt8;
    if (integer && kind != Kind::kQConv && !is_op(node, "QuantizeLinear") &&
        kind != Kind::kQGlobalPool && !(kind == Kind::kElementwise && node.domain == "brink") &&
        !(kind == Kind::kPool && node.op_type == "MaxPool") && kind != Kind::kConcat &&
        kind != Kind::kSplit && kind != Kind::kSlice)
      return false;
    auto nhwc_input = [&](int v) { return v != ir::kNoValue && nhwc_[static_cast<size_t>(v)]; };
    switch (kind) {
      case Kind::kConv: {
        if (node.domain == "brink" && node.attr_string("layout", "NCHW") != "NCHW") return false;
        if (node.domain.empty() && !brink_op_available("Conv")) return false;
        if (node.inputs.size() < 2 || !image(info_, node.inputs[0]) ||
            !info_.is_float32(node.inputs[1]) || info_.rank(node.inputs[1]) != 4 ||
            node.outputs.size() != 1)
          return false;
        if (node.inputs.size() > 3 && node.inputs[3] != ir::kNoValue &&
            !image(info_, node.inputs[3]))
          return false;
        return true;
      }
      case Kind::kQConv:
        return node.attr_string("layout", "NCHW") == "NCHW" && image(info_, node.inputs[0]) &&
               node.outputs.size() == 1;
      case Kind::kQGlobalPool:
        return node.attr_int("channels_last", 0) == 0 && nhwc_input(node.inputs[0]) &&
               image(info_, node.inputs[0]) && node.outputs.size() == 1;
      case Kind::kUnary: {
        if (node.inputs.empty() || !image(info_, node.inputs[0]) || !nhwc_input(node.inputs[0]) ||
            node.outputs.size() != 1)
          return false;
        for (size_t k = 1; k < node.inputs.size(); ++k)
          if (node.inputs[k] != ir::kNoValue && !single_element(info_, node.inputs[k]))
            return false;
        return true;
      }
      case Kind::kElementwise: {
        if (node.outputs.size() != 1) return false;
        bool any_nhwc = false;
        for (int in : node.inputs) {
          if (in == ir::kNoValue) return false;
          if (info_.constant(in)) {
            if (info_.rank(in) > 4) return false;
          } else if (info_.rank(in) == 4) {
            if (!image(info_, in)) return false;
            any_nhwc |= nhwc_input(in);
          } else if (!single_element(info_, in)) {
            return false;
          }
        }
        return any_nhwc;
      }
      case Kind::kConcat: {
        if (axis_of(node, 1) != 1 || node.outputs.size() != 1) return false;
        bool any_nhwc = false;
        for (int in : node.inputs) {
          if (!image(info_, in)) return false;
          any_nhwc |= nhwc_input(in);
        }
        return any_nhwc;
      }
      case Kind::kSplit: {
        if (axis_of(node, 0) != 1 || node.inputs.empty() || !nhwc_input(node.inputs[0]))
          return false;
        for (int out : node.outputs)
          if (out == ir::kNoValue || !image(info_, out)) return false;
        return true;
      }
      case Kind::kPool: {
        if (!brink_op_available(node.op_type) || node.inputs.size() != 1 ||
            !nhwc_input(node.inputs[0]) || !image(info_, node.inputs[0]))
          return false;
        if (node.op_type == "MaxPool" || node.op_type == "AveragePool") {
          if (node.attr_ints("kernel_shape").size() != 2) return false;
        }
        for (size_t k = 1; k < node.outputs.size(); ++k) {
          const int v = node.outputs[k];
          if (v != ir::kNoValue &&
              (!info_.uses(v).empty() || info_.is_graph_output(v) || info_.pinned(v)))
            return false;
        }
        return true;
      }
      case Kind::kSlice:
        return nhwc_input(node.inputs[0]) && node.outputs.size() == 1 &&
               slice_axes(node).has_value();
      case Kind::kReduce: {
        if (!nhwc_input(node.inputs[0]) || !image(info_, node.inputs[0]) ||
            node.outputs.size() != 1)
          return false;
        const auto axes = reduce_axes(node);
        if (!axes) return false;
        if (node.attr_int("keepdims", 1) != 0) return true;
        // Without kept dims the result is the same in both layouts when the remaining axes
        // keep their order: C is reduced, or H and W are.
        auto has = [&](int64_t a) {
          return std::find(axes->begin(), axes->end(), a) != axes->end();
        };
        return axes->empty() || has(1) || (has(2) && has(3));
      }
      case Kind::kResize: {
        if (!nhwc_input(node.inputs[0]) || info_.opset(node) < 11 || node.attr("axes") ||
            node.outputs.size() != 1)
          return false;
        for (size_t k = 1; k < node.inputs.size(); ++k) {
          const int v = node.inputs[k];
          if (v == ir::kNoValue) continue;
          const Tensor* c = info_.constant(v);
          const int64_t want = k == 1 ? 8 : 4;  // roi: starts and ends
          if (!c || (c->numel() != 0 && c->numel() != want)) return false;
        }
        return true;
      }
      case Kind::kShuffleSplit:
      case Kind::kShuffleTranspose:
      case Kind::kShuffleMerge:
        return false;
      case Kind::kNone:
        break;
    }
    return false;
  }

  // Slice's axes (normalized), from the axes input or attribute or their default.
  std::optional<std::vector<int64_t>> slice_axes(const ir::Node& node) const {
    if (info_.opset(node) < 10) {
      if (!node.attr("axes")) {
        std::vector<int64_t> axes(node.attr_ints("starts").size());
        std::iota(axes.begin(), axes.end(), 0);
        return axes;
      }
      return normalized_axes(node.attr_ints("axes"));
    }
    if (node.inputs.size() > 3 && node.inputs[3] != ir::kNoValue) {
      const Tensor* c = info_.constant(node.inputs[3]);
      if (!c) return std::nullopt;
      return normalized_axes(int_values(*c));
    }
    const ir::TensorType& starts = info_.type(node.inputs[1]);
    if (starts.rank() != 1 || !(*starts.dims)[0].known()) return std::nullopt;
    std::vector<int64_t> axes(static_cast<size_t>((*starts.dims)[0].value));
    std::iota(axes.begin(), axes.end(), 0);
    return axes;
  }

  // A Reduce op's axes (normalized; empty = all), from its axes input or attribute.
  std::optional<std::vector<int64_t>> reduce_axes(const ir::Node& node) const {
    if (node.inputs.size() > 1 && node.inputs[1] != ir::kNoValue) {
      const Tensor* c = info_.constant(node.inputs[1]);
      if (!c) return std::nullopt;
      if (c->numel() == 0 && node.attr_int("noop_with_empty_axes", 0) != 0) return std::nullopt;
      return normalized_axes(int_values(*c));
    }
    if (node.attr_int("noop_with_empty_axes", 0) != 0) return std::nullopt;
    return normalized_axes(node.attr_ints("axes"));
  }

  bool writes_nhwc(const ir::Node& node, Kind kind) const {
    return kind != Kind::kReduce || node.attr_int("keepdims", 1) != 0;
  }

  // Reshape [N, C, H, W] -> [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape to
  // [N, C, H, W], on an NHWC value with static dims; the three node indices.
  std::optional<std::array<int, 3>> match_shuffle(int r1) const {
    const ir::Node& split = g_.nodes[static_cast<size_t>(r1)];
    if (split.inputs.size() != 2 || split.outputs.size() != 1) return std::nullopt;
    const int x = split.inputs[0];
    Shape xd, sd, yd;
    if (!image(info_, x) || !nhwc_[static_cast<size_t>(x)] || !static_dims(info_, x, &xd) ||
        !static_dims(info_, split.outputs[0], &sd) || sd.size() != 5 || sd[0] != xd[0] ||
        sd[1] * sd[2] != xd[1] || sd[3] != xd[2] || sd[4] != xd[3])
      return std::nullopt;
    const int t = info_.sole_consumer(split.outputs[0]);
    if (t < 0 || convert_[static_cast<size_t>(t)]) return std::nullopt;
    const ir::Node& tr = g_.nodes[static_cast<size_t>(t)];
    if (!is_op(tr, "Transpose") || tr.attr_ints("perm") != std::vector<int64_t>{0, 2, 1, 3, 4} ||
        tr.outputs.size() != 1)
      return std::nullopt;
    const int r2 = info_.sole_consumer(tr.outputs[0]);
    if (r2 < 0 || convert_[static_cast<size_t>(r2)]) return std::nullopt;
    const ir::Node& merge = g_.nodes[static_cast<size_t>(r2)];
    if (!is_op(merge, "Reshape") || merge.inputs[0] != tr.outputs[0] || merge.outputs.size() != 1 ||
        !image(info_, merge.outputs[0]) || !static_dims(info_, merge.outputs[0], &yd) || yd != xd)
      return std::nullopt;
    return std::array<int, 3>{r1, t, r2};
  }

  ir::Node transpose_node(const std::string& name, int in, int out,
                          const std::vector<int64_t>& perm) {
    ir::Node t;
    t.name = name;
    t.op_type = "Transpose";
    t.inputs = {in};
    t.outputs = {out};
    t.attributes = {ops::make_attr("perm", perm)};
    conversion_outputs_.insert(out);
    return t;
  }

  // The NHWC form of NCHW value `v`: a Transpose after its producer, made once.
  int to_nhwc(int v) {
    if (twin_[static_cast<size_t>(v)] != ir::kNoValue) return twin_[static_cast<size_t>(v)];
    const std::string name = g_.value(v).name;  // a copy: add_value may move it
    const int t = add_value(g_, name + "_nhwc", nhwc_type(info_.type(v)));
    rw_.insert_after(info_.producer(v), transpose_node(name + "/to_nhwc", v, t, kToNhwc));
    twin_[static_cast<size_t>(v)] = t;
    return t;
  }

  // A broadcast operand in NHWC: constants permuted (once), single elements as they are.
  int operand(int v) {
    const Tensor* c = info_.constant(v);
    if (!c) return info_.rank(v) == 4 ? to_nhwc(v) : v;
    if (c->numel() == 1) return v;
    if (auto it = permuted_.find(v); it != permuted_.end()) return it->second;
    const int p = add_initializer(g_, g_.value(v).name + "_nhwc", permute_constant(*c));
    permuted_[v] = p;
    return p;
  }

  bool needs_nchw(int v) const {
    if (info_.is_graph_output(v) || info_.pinned(v)) return true;
    for (const Use& u : info_.uses(v)) {
      const size_t n = static_cast<size_t>(u.node);
      if (!convert_[n] || !layout_slot(info_, kind_[n], g_.nodes[n], static_cast<size_t>(u.slot)))
        return true;
    }
    return false;
  }

  void rewrite(int i) {
    const ir::Node& node = g_.nodes[static_cast<size_t>(i)];
    const Kind kind = kind_[static_cast<size_t>(i)];
    ir::Node out = node;
    for (size_t k = 0; k < out.inputs.size(); ++k) {
      const int v = out.inputs[k];
      if (v == ir::kNoValue) continue;
      if (kind == Kind::kElementwise || kind == Kind::kConcat)
        out.inputs[k] = operand(v);
      else if (layout_slot(info_, kind, node, k))
        out.inputs[k] = to_nhwc(v);
    }
    auto set_attr = [&](ir::Attribute a) {
      std::erase_if(out.attributes, [&](const ir::Attribute& x) { return x.name == a.name; });
      out.attributes.push_back(std::move(a));
    };
    if (kind == Kind::kConv || kind == Kind::kPool || kind == Kind::kQConv) {
      out.domain = "brink";
      set_attr(ops::make_attr("layout", std::string("NHWC")));
    }
    if (kind == Kind::kQGlobalPool) set_attr(ops::make_attr("channels_last", int64_t{1}));
    if (kind == Kind::kConcat || kind == Kind::kSplit) set_attr(ops::make_attr("axis", int64_t{3}));
    if (kind == Kind::kPool) out.outputs.resize(1);
    const std::string base = node.name.empty() ? std::string("layout") : node.name;
    auto ints = [&](const std::string& suffix, const std::vector<int64_t>& v) {
      return add_initializer(g_, base + suffix,
                             Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
    };
    if (kind == Kind::kSlice) {
      std::vector<int64_t> axes = *slice_axes(node);
      for (int64_t& a : axes) a = nhwc_axis(a);
      if (info_.opset(node) < 10) {
        set_attr(ops::make_attr("axes", axes));
      } else {
        if (out.inputs.size() < 4) out.inputs.resize(4, ir::kNoValue);
        out.inputs[3] = ints("_axes_nhwc", axes);
      }
    } else if (kind == Kind::kReduce) {
      std::vector<int64_t> axes = *reduce_axes(node);
      for (int64_t& a : axes) a = nhwc_axis(a);
      if (node.inputs.size() > 1 && node.inputs[1] != ir::kNoValue)
        out.inputs[1] = ints("_axes_nhwc", axes);
      else if (!axes.empty())
        set_attr(ops::make_attr("axes", axes));
    } else if (kind == Kind::kResize) {
      for (size_t k = 1; k < out.inputs.size(); ++k) {
        const Tensor* c = out.inputs[k] != ir::kNoValue ? info_.constant(out.inputs[k]) : nullptr;
        if (!c || c->numel() == 0) continue;
        // Per-axis values (roi: starts then ends) in NHWC order.
        Tensor t = Tensor::empty(c->dtype(), c->shape());
        const size_t es = dtype_size(c->dtype());
        for (int64_t j = 0; j < c->numel(); ++j) {
          const int64_t half = j / 4, a = j % 4;
          std::copy_n(
              static_cast<const char*>(c->raw_data()) + static_cast<size_t>(j) * es, es,
              static_cast<char*>(t.raw_data()) + static_cast<size_t>(half * 4 + nhwc_axis(a)) * es);
        }
        out.inputs[k] = add_initializer(g_, g_.value(out.inputs[k]).name + "_nhwc", t);
      }
    } else if (kind == Kind::kShuffleSplit || kind == Kind::kShuffleMerge) {
      const Shape d = info_.type(node.outputs[0]).static_shape();
      out.inputs[1] = d.size() == 5 ? ints("_shape_nhwc", {d[0], d[3], d[4], d[1], d[2]})
                                    : ints("_shape_nhwc", {d[0], d[2], d[3], d[1]});
    } else if (kind == Kind::kShuffleTranspose) {
      set_attr(ops::make_attr("perm", std::vector<int64_t>{0, 1, 2, 4, 3}));
    }

    std::vector<std::pair<int, int>> back;  // (nhwc twin, original)
    for (int& o : out.outputs) {
      if (o == ir::kNoValue || !writes_nhwc(node, kind)) continue;
      const int original = o;
      o = add_value(g_, g_.value(original).name + "_nhwc", twin_type(info_.type(original)));
      twin_[static_cast<size_t>(original)] = o;
      if (needs_nchw(original)) back.push_back({o, original});
    }
    rw_.replace(i, std::move(out));
    ++report_.layout_converted_nodes;
    for (const auto& [twin, original] : back) rw_.insert_after(i, to_nchw(twin, original));
  }

  // NHWC twin -> original NCHW value. With H = W = 1 both layouts hold the same bytes, and
  // a Reshape (a view) replaces the Transpose.
  ir::Node to_nchw(int twin, int original) {
    const std::string name = g_.value(original).name;
    const auto& d = *info_.type(original).dims;
    if (d[2].known() && d[2].value == 1 && d[3].known() && d[3].value == 1) {
      if (reshape_shape_ == ir::kNoValue)
        reshape_shape_ = add_initializer(g_, "nhwc_to_nchw_1x1_shape",
                                         Tensor::from_vector<int64_t>({4}, {0, -1, 1, 1}));
      ir::Node r;
      r.name = name + "/to_nchw";
      r.op_type = "Reshape";
      r.inputs = {twin, reshape_shape_};
      r.outputs = {original};
      conversion_outputs_.insert(original);
      return r;
    }
    return transpose_node(name + "/to_nchw", twin, original, kToNchw);
  }

  ir::Model& model_;
  ir::Graph& g_;
  const GraphInfo& info_;
  OptimizeReport& report_;
  Rewriter rw_;
  std::vector<Kind> kind_;
  std::vector<char> convert_, nhwc_;
  std::vector<int> twin_;
  std::map<int, int> permuted_;
  std::set<int> conversion_outputs_;
  int reshape_shape_ = ir::kNoValue;
};

std::vector<int64_t> transpose_perm(const GraphInfo& info, const ir::Node& node) {
  std::vector<int64_t> perm = node.attr_ints("perm");
  const int64_t rank = info.rank(node.inputs[0]);
  if (perm.empty() && rank >= 0)
    for (int64_t d = rank - 1; d >= 0; --d) perm.push_back(d);
  if (rank >= 0 && static_cast<int64_t>(perm.size()) != rank) return {};
  return perm;
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

}  // namespace

Status cancel_transposes(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  for (int round = 0; round < 8; ++round) {
    const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
    Rewriter rw(g);
    std::vector<std::pair<int, int>> renames;  // uses of .first read .second instead
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const ir::Node& t2 = g.nodes[i];
      if (!is_op(t2, "Transpose") || t2.inputs.size() != 1 || t2.outputs.size() != 1 ||
          rw.claimed(static_cast<int>(i)))
        continue;
      const int x1 = t2.inputs[0], y = t2.outputs[0];
      const std::vector<int64_t> p2 = transpose_perm(info, t2);
      if (p2.empty()) continue;
      const bool y_renamable = !info.is_graph_output(y) && !info.pinned(y);
      const int p = info.producer(x1);
      if (p >= 0 && rw.claimed(p)) continue;
      if (is_identity(p2)) {
        if (!y_renamable) continue;
        renames.push_back({y, x1});
        rw.remove(static_cast<int>(i));
        continue;
      }
      if (p < 0 || !is_op(g.nodes[static_cast<size_t>(p)], "Transpose")) continue;
      const ir::Node& t1 = g.nodes[static_cast<size_t>(p)];
      const std::vector<int64_t> p1 = transpose_perm(info, t1);
      if (p1.size() != p2.size() || t1.inputs.empty()) continue;
      const int x0 = t1.inputs[0];
      if (const int q = info.producer(x0); q >= 0 && rw.claimed(q)) continue;
      std::vector<int64_t> composed(p2.size());
      for (size_t k = 0; k < p2.size(); ++k) composed[k] = p1[static_cast<size_t>(p2[k])];
      rw.claim(p);  // read, not changed: no other match of this round may remove it
      if (is_identity(composed)) {
        if (!y_renamable) continue;
        renames.push_back({y, x0});
        rw.remove(static_cast<int>(i));
      } else {
        ir::Node merged = t2;
        merged.inputs = {x0};
        std::erase_if(merged.attributes, [](const ir::Attribute& a) { return a.name == "perm"; });
        merged.attributes.push_back(ops::make_attr("perm", composed));
        rw.replace(static_cast<int>(i), std::move(merged));
      }
    }
    if (rw.empty()) break;
    rw.commit();
    for (const auto& [from, to] : renames) replace_uses(g, from, to);
  }
  OptimizeReport scratch;
  BRINK_RETURN_IF_ERROR(eliminate_dead_code(model, scratch, options));
  (void)report;
  return check_graph(model, "cancel_transposes");
}

Status convert_to_nhwc(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  ir::Graph& g = model.graph;
  // A graph already holding NHWC nodes was converted before; its values' layouts are not
  // recorded anywhere, so leave it.
  for (const ir::Node& n : g.nodes)
    if (n.domain == "brink" && n.attr_string("layout", "NCHW") != "NCHW") return Status::ok();
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  LayoutPass pass(model, info, report);
  BRINK_RETURN_IF_ERROR(pass.run());
  BRINK_RETURN_IF_ERROR(check_graph(model, "convert_to_nhwc"));
  BRINK_RETURN_IF_ERROR(cancel_transposes(model, report, options));
  // Count the conversions that survived cancellation.
  for (const ir::Node& n : g.nodes)
    if ((is_op(n, "Transpose") || is_op(n, "Reshape")) && n.outputs.size() == 1 &&
        pass.conversion_outputs().count(n.outputs[0]))
      ++report.transposes_inserted;
  return Status::ok();
}

}  // namespace brink::passes
