// QDQ models -> integer operators, so that activations stay uint8 between layers.
//
// A quantizer's QDQ model (ONNX Runtime's quantize_static in QDQ format, `brink quantize`)
// keeps every op in float and marks where values are quantized: an activation goes
// QuantizeLinear -> DequantizeLinear before each consumer, a weight is an int8 constant
// behind a DequantizeLinear, a bias an int32 one. Run as written, that is float compute plus
// a quantize/dequantize round trip per tensor. This pass rewrites the patterns it knows into
// ops that read and write the uint8 values directly:
//
//   DQ(x u8) , DQ(W s8 const) [, DQ(B i32 const) | B f32 const] -> Conv -> [Relu|Clip] -> Q
//       => brink.QConv (QLinearConv inputs, the activation fused as a clamp)
//   DQ(a u8) , DQ(b u8) -> Add -> [Relu|Clip] -> Q                 => brink.QAdd
//   DQ(x u8) -> GlobalAveragePool -> Q                            => QLinearGlobalAveragePool
//   DQ(a u8) , DQ(W s8 const) [, bias] -> Gemm | MatMul [-> Q]   => com.microsoft QGemm
//   DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) [-> Add bias]
//                                                                 => MatMulIntegerToFloat
//   DQ(x u8) -> MaxPool | Flatten | Reshape | Squeeze | Unsqueeze | Transpose -> Q with the
//       same scale and zero point                                 => the op on the uint8 x
//
// The DequantizeLinear nodes left without readers go with dead-code elimination; the ones
// still read (a float consumer, a graph output) stay. The bias becomes int32 with scale
// x_scale * w_scale[m] (exactly what the quantizer stored when it used that scale). Each
// pattern's intermediate float values must be internal (read only inside the pattern), and
// weights must be symmetric (zero point 0). The semantics are those of ONNX Runtime's own
// QDQ fusion (it runs the same patterns as QLinearConv etc.): integer accumulation, one
// rounding at the output, instead of the float graph's rounding of each step.
//
// Runs first in the pipeline: constant folding would turn DQ(const weight) into a float
// weight and lose the pattern.
#include <cmath>
#include <set>

#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

// A DequantizeLinear node's operands, when scale and zero point are constant.
struct Dequantized {
  int node = -1;
  int q = ir::kNoValue;  // the integer value
  int scale = ir::kNoValue;
  int zero = ir::kNoValue;  // kNoValue when absent (zero point 0)
};

std::optional<Dequantized> dequantize_of(const GraphInfo& info, int v) {
  if (v == ir::kNoValue) return std::nullopt;
  const int p = info.producer(v);
  if (p < 0) return std::nullopt;
  const ir::Node& n = info.graph().nodes[static_cast<size_t>(p)];
  if (!is_op(n, "DequantizeLinear") || n.inputs.size() < 2 || n.outputs.size() != 1)
    return std::nullopt;
  Dequantized d;
  d.node = p;
  d.q = n.inputs[0];
  d.scale = n.inputs[1];
  d.zero = n.inputs.size() > 2 ? n.inputs[2] : ir::kNoValue;
  const Tensor* s = info.constant(d.scale);
  if (s == nullptr || s->dtype() != DataType::kFloat32) return std::nullopt;
  if (d.zero != ir::kNoValue && info.constant(d.zero) == nullptr) return std::nullopt;
  return d;
}

// A uint8 activation (not a constant) dequantized per tensor.
std::optional<Dequantized> dequantized_activation(const GraphInfo& info, int v) {
  auto d = dequantize_of(info, v);
  if (!d || info.constant(d->q) != nullptr || info.dtype(d->q) != DataType::kUInt8 ||
      info.constant(d->scale)->numel() != 1)
    return std::nullopt;
  if (d->zero != ir::kNoValue && info.constant(d->zero)->numel() != 1) return std::nullopt;
  return d;
}

// A constant int8 weight with zero point 0, dequantized per tensor or along `axis` (which
// has `channels` entries).
std::optional<Dequantized> dequantized_weight(const GraphInfo& info, int v, int64_t axis,
                                              int64_t channels) {
  auto d = dequantize_of(info, v);
  if (!d) return std::nullopt;
  const Tensor* w = info.constant(d->q);
  if (w == nullptr || w->dtype() != DataType::kInt8) return std::nullopt;
  const Tensor* s = info.constant(d->scale);
  if (s->numel() != 1) {
    const ir::Node& n = info.graph().nodes[static_cast<size_t>(d->node)];
    int64_t a = n.attr_int("axis", 1);
    if (a < 0) a += w->rank();
    if (a != axis || s->rank() != 1 || s->numel() != channels) return std::nullopt;
  }
  if (d->zero != ir::kNoValue) {
    const Tensor* z = info.constant(d->zero);
    for (int64_t i = 0; i < z->numel(); ++i)
      if (z->element_as_int64(i) != 0) return std::nullopt;
  }
  return d;
}

// The QuantizeLinear to uint8 (per tensor, constant scale and zero point) that is the sole
// reader of internal value `v`, possibly through a Relu or Clip: its node, the activation,
// and the quantized output.
struct QuantizedOutput {
  std::vector<int> nodes;  // activation nodes and the Q
  std::optional<ActivationMatch> act;
  int q = ir::kNoValue;
  int scale = ir::kNoValue, zero = ir::kNoValue;
};

std::optional<QuantizedOutput> quantized_output(const GraphInfo& info, const Rewriter& rw, int v,
                                                bool allow_activation) {
  if (!info.internal(v)) return std::nullopt;
  QuantizedOutput out;
  if (allow_activation) {
    if (auto act = match_activation(info, rw, v);
        act && (act->name == "Relu" || act->name == "Clip")) {
      out.nodes = act->nodes;
      v = act->output;
      out.act = std::move(act);
      if (!info.internal(v)) return std::nullopt;
    }
  }
  const int n = info.sole_consumer(v);
  if (n < 0 || rw.claimed(n)) return std::nullopt;
  const ir::Node& q = info.graph().nodes[static_cast<size_t>(n)];
  if (!is_op(q, "QuantizeLinear") || q.inputs.size() < 2 || q.inputs[0] != v ||
      q.outputs.size() != 1 || info.dtype(q.outputs[0]) != DataType::kUInt8)
    return std::nullopt;
  const Tensor* s = info.constant(q.inputs[1]);
  if (s == nullptr || s->numel() != 1 || s->dtype() != DataType::kFloat32) return std::nullopt;
  out.scale = q.inputs[1];
  if (q.inputs.size() > 2 && q.inputs[2] != ir::kNoValue) {
    const Tensor* z = info.constant(q.inputs[2]);
    if (z == nullptr || z->numel() != 1) return std::nullopt;
    out.zero = q.inputs[2];
  }
  out.nodes.push_back(n);
  out.q = q.outputs[0];
  return out;
}

double scalar_of(const GraphInfo& info, int v, double absent) {
  if (v == ir::kNoValue) return absent;
  return info.constant(v)->element_as_double(0);
}

bool same_quantization(const GraphInfo& info, const Dequantized& d, const QuantizedOutput& q) {
  return scalar_of(info, d.scale, 1.0) == scalar_of(info, q.scale, 1.0) &&
         scalar_of(info, d.zero, 0.0) == scalar_of(info, q.zero, 0.0);
}

class QdqFusion {
 public:
  QdqFusion(ir::Model& model, const GraphInfo& info) : g_(model.graph), info_(info), rw_(g_) {}

  bool run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (rw_.claimed(static_cast<int>(i))) continue;
      const ir::Node& n = g_.nodes[i];
      if (is_op(n, "Conv"))
        fuse_conv(static_cast<int>(i));
      else if (is_op(n, "Add"))
        fuse_add(static_cast<int>(i));
      else if (is_op(n, "MatMulInteger"))
        fuse_dynamic_matmul(static_cast<int>(i));
      else if (is_op(n, "Gemm") || is_op(n, "MatMul"))
        fuse_gemm(static_cast<int>(i));
      else if (is_op(n, "GlobalAveragePool"))
        fuse_global_average_pool(static_cast<int>(i));
      else if (is_op(n, "MaxPool") || is_op(n, "Flatten") || is_op(n, "Reshape") ||
               is_op(n, "Squeeze") || is_op(n, "Unsqueeze") || is_op(n, "Transpose"))
        fuse_data_movement(static_cast<int>(i));
    }
    if (rw_.empty()) return false;
    rw_.commit();
    return true;
  }

  int fused() const { return fused_; }
  bool used_ms_domain() const { return used_ms_domain_; }

 private:
  // Removes the pattern's nodes but the last, which becomes `node`.
  void emit(std::vector<int> nodes, ir::Node node) {
    int last = nodes[0];
    for (int k : nodes) last = std::max(last, k);
    for (int k : nodes)
      if (k != last) rw_.remove(k);
    rw_.replace(last, std::move(node));
    ++fused_;
  }

  // The bias `b` (DQ of an int32 constant, or a float constant, of m values) as an int32
  // initializer with scale x_scale * w_scale[k] (what the quantizer stored when it used that
  // scale); false when it is neither or int32 cannot hold it.
  bool int32_bias(int b_value, const Dequantized& x, const Dequantized& wq, int64_t m,
                  const std::string& name, int* out) {
    const float sx = static_cast<float>(scalar_of(info_, x.scale, 1.0));
    const Tensor* ws = info_.constant(wq.scale);
    std::vector<float> b;
    if (auto bd = dequantize_of(info_, b_value)) {
      const Tensor* bq = info_.constant(bd->q);
      if (bq == nullptr || bq->numel() != m) return false;
      const Tensor* bs = info_.constant(bd->scale);
      const Tensor* bz = bd->zero == ir::kNoValue ? nullptr : info_.constant(bd->zero);
      for (int64_t k = 0; k < m; ++k) {
        const double s = bs->element_as_double(bs->numel() == 1 ? 0 : k);
        const double z = bz == nullptr ? 0.0 : bz->element_as_double(bz->numel() == 1 ? 0 : k);
        b.push_back(static_cast<float>((bq->element_as_double(k) - z) * s));
      }
    } else if (const Tensor* bc = info_.constant(b_value);
               bc != nullptr && bc->dtype() == DataType::kFloat32 && bc->numel() == m) {
      b.assign(bc->data<float>(), bc->data<float>() + m);
    } else {
      return false;
    }
    std::vector<int32_t> q(static_cast<size_t>(m));
    for (int64_t k = 0; k < m; ++k) {
      const float s = sx * static_cast<float>(ws->element_as_double(ws->numel() == 1 ? 0 : k));
      const double r = s > 0.0f ? std::nearbyint(static_cast<double>(b[static_cast<size_t>(k)]) /
                                                 static_cast<double>(s))
                                : 0.0;
      if (!(std::fabs(r) < 2147483647.0)) return false;  // a bias that int32 cannot hold
      q[static_cast<size_t>(k)] = static_cast<int32_t>(r);
    }
    *out = add_initializer(g_, name + "_bias_i32", Tensor::from_vector<int32_t>({m}, q));
    return true;
  }

  // DQ(a u8, 2-D), DQ(W s8 const) [, bias] -> Gemm | MatMul [-> Q u8] => com.microsoft QGemm
  // (uint8 output with the Q, float output without): a quantized CNN's classifier. Gemm
  // needs alpha = beta = 1 and transA = 0; MatMul a 2-D A and B [K, N] (no bias).
  void fuse_gemm(int i) {
    const ir::Node& op = g_.nodes[static_cast<size_t>(i)];
    const bool gemm = is_op(op, "Gemm");
    if (op.inputs.size() < 2 || op.outputs.size() != 1 || info_.rank(op.inputs[0]) != 2) return;
    if (gemm && (op.attr_int("transA", 0) != 0 || op.attr_float("alpha", 1.0f) != 1.0f ||
                 op.attr_float("beta", 1.0f) != 1.0f))
      return;
    const int64_t trans_b = gemm ? op.attr_int("transB", 0) : 0;
    const int w = op.inputs[1];
    if (!info_.type(w).is_static() || info_.rank(w) != 2) return;
    const int64_t n = info_.type(w).static_shape()[trans_b != 0 ? 0 : 1];
    auto x = dequantized_activation(info_, op.inputs[0]);
    auto wq = dequantized_weight(info_, w, trans_b != 0 ? 0 : 1, n);
    if (!x || !wq) return;
    const std::string name = g_.value(op.outputs[0]).name;
    int bias = ir::kNoValue;
    if (gemm && op.inputs.size() > 2 && op.inputs[2] != ir::kNoValue &&
        (info_.rank(op.inputs[2]) != 1 || !int32_bias(op.inputs[2], *x, *wq, n, name, &bias)))
      return;
    auto out = quantized_output(info_, rw_, op.outputs[0], false);
    ir::Node fused;
    fused.name = op.name;
    fused.domain = "com.microsoft";
    fused.op_type = "QGemm";
    fused.inputs = {x->q, x->scale, x->zero, wq->q, wq->scale, wq->zero, bias};
    if (out) fused.inputs.insert(fused.inputs.end(), {out->scale, out->zero});
    while (fused.inputs.back() == ir::kNoValue) fused.inputs.pop_back();
    fused.outputs = {out ? out->q : op.outputs[0]};
    fused.attributes = {ops::make_attr("transB", trans_b)};
    used_ms_domain_ = true;
    std::vector<int> nodes = {i};
    if (out) nodes.insert(nodes.end(), out->nodes.begin(), out->nodes.end());
    emit(nodes, std::move(fused));
  }

  void fuse_conv(int i) {
    const ir::Node& conv = g_.nodes[static_cast<size_t>(i)];
    if (conv.inputs.size() < 2 || conv.outputs.size() != 1) return;
    const int w = conv.inputs[1];
    if (!info_.type(w).is_static() || info_.rank(w) != 4) return;
    const int64_t m = info_.type(w).static_shape()[0];
    auto x = dequantized_activation(info_, conv.inputs[0]);
    auto wq = dequantized_weight(info_, w, 0, m);
    if (!x || !wq) return;
    auto out = quantized_output(info_, rw_, conv.outputs[0], true);
    if (!out) return;
    int bias = ir::kNoValue;
    if (conv.inputs.size() > 2 && conv.inputs[2] != ir::kNoValue &&
        !int32_bias(conv.inputs[2], *x, *wq, m, g_.value(conv.outputs[0]).name, &bias))
      return;
    ir::Node fused = conv;
    fused.domain = "brink";
    fused.op_type = "QConv";
    fused.inputs = {x->q,     x->scale,   x->zero,   wq->q, wq->scale,
                    wq->zero, out->scale, out->zero, bias};
    while (fused.inputs.back() == ir::kNoValue) fused.inputs.pop_back();
    fused.outputs = {out->q};
    if (out->act) set_activation(fused, *out->act);
    std::vector<int> nodes = {i};
    nodes.insert(nodes.end(), out->nodes.begin(), out->nodes.end());
    emit(nodes, std::move(fused));
  }

  void fuse_add(int i) {
    const ir::Node& add = g_.nodes[static_cast<size_t>(i)];
    if (add.inputs.size() != 2 || add.outputs.size() != 1) return;
    auto a = dequantized_activation(info_, add.inputs[0]);
    auto b = dequantized_activation(info_, add.inputs[1]);
    if (!a || !b) return;
    auto out = quantized_output(info_, rw_, add.outputs[0], true);
    if (!out) return;
    ir::Node fused;
    fused.name = add.name;
    fused.domain = "brink";
    fused.op_type = "QAdd";
    fused.inputs = {a->q, a->scale, a->zero, b->q, b->scale, b->zero, out->scale, out->zero};
    fused.outputs = {out->q};
    if (out->act) set_activation(fused, *out->act);
    std::vector<int> nodes = {i};
    nodes.insert(nodes.end(), out->nodes.begin(), out->nodes.end());
    emit(nodes, std::move(fused));
  }

  void fuse_global_average_pool(int i) {
    const ir::Node& pool = g_.nodes[static_cast<size_t>(i)];
    if (pool.inputs.size() != 1 || pool.outputs.size() != 1 || info_.rank(pool.inputs[0]) != 4)
      return;
    auto x = dequantized_activation(info_, pool.inputs[0]);
    auto out = x ? quantized_output(info_, rw_, pool.outputs[0], false) : std::nullopt;
    if (!out) return;
    ir::Node fused;
    fused.name = pool.name;
    fused.domain = "com.microsoft";
    fused.op_type = "QLinearGlobalAveragePool";
    fused.inputs = {x->q, x->scale, x->zero, out->scale, out->zero};
    fused.outputs = {out->q};
    fused.attributes = {ops::make_attr("channels_last", int64_t{0})};
    used_ms_domain_ = true;
    std::vector<int> nodes = {i};
    nodes.insert(nodes.end(), out->nodes.begin(), out->nodes.end());
    emit(nodes, std::move(fused));
  }

  // ONNX Runtime's dynamic quantization of a MatMul (quantize_dynamic, `brink quantize --mode
  // int8-dynamic`): DynamicQuantizeLinear(x) -> (xq, xs, xz); MatMulInteger(xq, Wq, xz, Wz) ->
  // Cast(float) -> Mul(., Mul(xs, Ws)) [-> Add(bias)] => com.microsoft MatMulIntegerToFloat.
  void fuse_dynamic_matmul(int i) {
    const ir::Node& mm = g_.nodes[static_cast<size_t>(i)];
    if (mm.inputs.size() < 3 || mm.outputs.size() != 1 || !info_.internal(mm.outputs[0])) return;
    const int p = info_.producer(mm.inputs[0]);
    if (p < 0) return;
    const ir::Node& dql = g_.nodes[static_cast<size_t>(p)];
    if (!is_op(dql, "DynamicQuantizeLinear") || dql.outputs.size() != 3 ||
        dql.outputs[0] != mm.inputs[0] || dql.outputs[2] != mm.inputs[2])
      return;
    const Tensor* w = info_.constant(mm.inputs[1]);
    if (w == nullptr || w->rank() != 2) return;
    const int cast_n = info_.sole_consumer(mm.outputs[0]);
    if (cast_n < 0 || rw_.claimed(cast_n)) return;
    const ir::Node& cast = g_.nodes[static_cast<size_t>(cast_n)];
    if (!is_op(cast, "Cast") || cast.attr_int("to", 0) != 1 || !info_.internal(cast.outputs[0]))
      return;
    const int mul_n = info_.sole_consumer(cast.outputs[0]);
    if (mul_n < 0 || rw_.claimed(mul_n)) return;
    const ir::Node& mul = g_.nodes[static_cast<size_t>(mul_n)];
    if (!is_op(mul, "Mul") || mul.inputs.size() != 2 || mul.outputs.size() != 1) return;
    const int s = other_input(mul, cast.outputs[0]);
    const int sp = s == ir::kNoValue ? -1 : info_.producer(s);
    if (sp < 0) return;
    const ir::Node& smul = g_.nodes[static_cast<size_t>(sp)];
    if (!is_op(smul, "Mul") || smul.inputs.size() != 2) return;
    const int w_scale = other_input(smul, dql.outputs[1]);
    const Tensor* ws = w_scale == ir::kNoValue ? nullptr : info_.constant(w_scale);
    if (ws == nullptr || ws->dtype() != DataType::kFloat32 ||
        (ws->numel() != 1 && !(ws->rank() == 1 && ws->numel() == w->dim(1))))
      return;
    std::vector<int> nodes = {i, cast_n, mul_n};
    int y = mul.outputs[0];
    int bias = ir::kNoValue;
    if (const int add_n = info_.internal(y) ? info_.sole_consumer(y) : -1;
        add_n >= 0 && !rw_.claimed(add_n)) {
      const ir::Node& add = g_.nodes[static_cast<size_t>(add_n)];
      const int b =
          is_op(add, "Add") && add.outputs.size() == 1 ? other_input(add, y) : ir::kNoValue;
      const Tensor* bc = b == ir::kNoValue ? nullptr : info_.constant(b);
      if (bc != nullptr && bc->dtype() == DataType::kFloat32 && bc->rank() == 1 &&
          bc->numel() == w->dim(1)) {
        bias = b;
        nodes.push_back(add_n);
        y = add.outputs[0];
      }
    }
    ir::Node fused;
    fused.name = mm.name;
    fused.domain = "com.microsoft";
    fused.op_type = "MatMulIntegerToFloat";
    fused.inputs = {mm.inputs[0], mm.inputs[1], dql.outputs[1],
                    w_scale,      mm.inputs[2], mm.inputs.size() > 3 ? mm.inputs[3] : ir::kNoValue,
                    bias};
    while (fused.inputs.back() == ir::kNoValue) fused.inputs.pop_back();
    fused.outputs = {y};
    used_ms_domain_ = true;
    emit(nodes, std::move(fused));
  }

  // Ops that move or select values without arithmetic give the same result on the integers
  // when input and output share their quantization.
  void fuse_data_movement(int i) {
    const ir::Node& op = g_.nodes[static_cast<size_t>(i)];
    if (op.inputs.empty() || op.outputs.empty() || op.outputs[0] == ir::kNoValue) return;
    for (size_t k = 1; k < op.outputs.size(); ++k)  // MaxPool's Indices, unused
      if (op.outputs[k] != ir::kNoValue && !info_.uses(op.outputs[k]).empty()) return;
    if (is_op(op, "MaxPool") && info_.opset(op) < 12) return;  // uint8 MaxPool: opset 12
    auto x = dequantized_activation(info_, op.inputs[0]);
    auto out = x ? quantized_output(info_, rw_, op.outputs[0], false) : std::nullopt;
    if (!out || !same_quantization(info_, *x, *out)) return;
    ir::Node moved = op;
    moved.inputs[0] = x->q;
    moved.outputs = {out->q};
    std::vector<int> nodes = {i};
    nodes.insert(nodes.end(), out->nodes.begin(), out->nodes.end());
    emit(nodes, std::move(moved));
  }

  ir::Graph& g_;
  const GraphInfo& info_;
  Rewriter rw_;
  int fused_ = 0;
  bool used_ms_domain_ = false;
};

}  // namespace

Status fuse_qdq(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("QConv") || !brink_op_available("QAdd")) return Status::ok();
  bool any_dq = false;
  for (const ir::Node& n : model.graph.nodes)
    any_dq |= is_op(n, "DequantizeLinear") || is_op(n, "MatMulInteger");
  if (!any_dq) return Status::ok();
  // Scales and zero points are small; dequantized weights (4x their int8 bytes) are not
  // materialized just to be thrown away.
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values, int64_t{64} << 10);
  QdqFusion fusion(model, info);
  if (!fusion.run()) return Status::ok();
  report.fused_qdq += fusion.fused();
  import_brink_domain(model);
  if (fusion.used_ms_domain()) {
    bool has = false;
    for (const ir::OperatorSetId& o : model.opset_imports) has |= o.domain == "com.microsoft";
    if (!has) model.opset_imports.push_back({"com.microsoft", 1});
  }
  OptimizeReport scratch;
  BRINK_RETURN_IF_ERROR(eliminate_dead_code(model, scratch, options));
  return check_graph(model, "fuse_qdq");
}

}  // namespace brink::passes
