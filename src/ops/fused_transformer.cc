// The transformer operators of the brink domain (docs/INTERNAL_OPS.md), which the graph
// passes fuse out of decomposed ONNX patterns:
//   brink.LayerNormalization  ONNX LayerNormalization-17 (only output Y) at every opset;
//   brink.Gelu                ONNX Gelu-20 at every opset;
//   brink.Attention           softmax(scale * Q·Kᵀ + mask) · V.
// The first two are the ONNX operators themselves (their infer and create, found in the
// registry when a node is prepared), so they share the ONNX kernels' fast float32 paths.
// brink.Attention's reference kernel is the chain of ONNX reference operators it replaces
// (Transpose, MatMul, Mul, Add, Softmax, MatMul); float32 runs kernels::attention_f32, which is
// tested against a naive implementation and that chain (tests/unit/transformer_ops_test.cc).
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "ops/evaluate.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

// An op defined as the ONNX op `onnx_type` at `onnx_opset`.
OpDef same_as_onnx(const std::string& brink_type, const std::string& onnx_type, int onnx_opset) {
  auto target = [onnx_type, onnx_opset]() {
    return OpRegistry::global().find("", onnx_type, onnx_opset);
  };
  OpDef d;
  d.op_type = brink_type;
  d.domain = "brink";
  d.since_version = 1;
  d.infer = [target, onnx_type](InferContext& ctx) -> Status {
    const OpDef* def = target();
    if (def == nullptr) return internal_error("brink op needs ONNX " + onnx_type);
    return def->infer(ctx);
  };
  d.create = [target, onnx_type](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const OpDef* def = target();
    if (def == nullptr) return internal_error("brink op needs ONNX " + onnx_type);
    return def->create(c);
  };
  return d;
}

// ---- brink.Attention ------------------------------------------------------------------------

bool attention_dtype_ok(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kFloat64 ||
         t == DataType::kBFloat16;
}

// Dims [0, rank - 2) of a ranked type, as a type of their own (for broadcasting batch dims).
TensorType leading(const TensorType& t, int64_t keep_last) {
  std::vector<Dim> dims(t.dims->begin(), t.dims->end() - keep_last);
  return TensorType(t.dtype, std::move(dims));
}

// Known dims must agree; an unknown dim agrees with anything.
bool dims_agree(const Dim& a, const Dim& b) {
  return !a.known() || !b.known() || a.value == b.value;
}

Status attention_infer(InferContext& ctx) {
  static const char* names[] = {"Q", "K", "V", "mask"};
  for (size_t i = 0; i < 4; ++i) {
    if (i == 3 && !ctx.has_input(3)) continue;
    if (!ctx.has_input(i)) return ctx.invalid(std::string("input ") + names[i] + " is required");
    if (!attention_dtype_ok(ctx.input_dtype(i)))
      return ctx.invalid(std::string("input ") + names[i] + " has dtype " +
                         dtype_name(ctx.input_dtype(i)) + ", expected a float type");
    if (ctx.input_dtype(i) != ctx.input_dtype(0))
      return ctx.invalid(std::string("input ") + names[i] + " has dtype " +
                         dtype_name(ctx.input_dtype(i)) + ", expected " +
                         dtype_name(ctx.input_dtype(0)) + " like Q");
  }
  const DataType dt = ctx.input_dtype(0);
  const TensorType& q = ctx.input_type(0);
  const TensorType& k = ctx.input_type(1);
  const TensorType& v = ctx.input_type(2);
  const TensorType* mask = ctx.has_input(3) ? &ctx.input_type(3) : nullptr;
  if (!q.has_rank() || !k.has_rank() || !v.has_rank() || (mask && !mask->has_rank())) {
    ctx.set_output(0, TensorType(dt, std::nullopt));
    return Status::ok();
  }
  for (size_t i = 0; i < 3; ++i)
    if (ctx.input_type(i).rank() < 2)
      return ctx.invalid(std::string("input ") + names[i] + " has rank " +
                         std::to_string(ctx.input_type(i).rank()) + ", expected at least 2");
  const bool kt = ctx.node().attr_int("k_transposed", 0) != 0;
  auto dim = [](const TensorType& t, int64_t from_end) {
    return (*t.dims)[static_cast<size_t>(t.rank() - from_end)];
  };
  const Dim sq = dim(q, 2), d = dim(q, 1), dv = dim(v, 1), sk = dim(v, 2);
  const Dim kd = kt ? dim(k, 2) : dim(k, 1), ksk = kt ? dim(k, 1) : dim(k, 2);
  if (!dims_agree(d, kd))
    return ctx.invalid("Q has " + d.to_string() + " features per head but K has " + kd.to_string() +
                       (kt ? " (k_transposed=1: K is [..., D, Sk])" : ""));
  if (!dims_agree(sk, ksk))
    return ctx.invalid("K has " + ksk.to_string() + " keys but V has " + sk.to_string());
  std::vector<TensorType> lead = {leading(q, 2), leading(k, 2), leading(v, 2)};
  if (mask != nullptr) {
    const int64_t r = mask->rank();
    const Dim mk = r >= 1 ? dim(*mask, 1) : Dim(1), mq = r >= 2 ? dim(*mask, 2) : Dim(1);
    const bool ok = (!mq.known() || mq.value == 1 || dims_agree(mq, sq)) &&
                    (!mk.known() || mk.value == 1 || dims_agree(mk, ksk));
    if (!ok)
      return ctx.invalid("mask of type " + mask->to_string() + " does not broadcast to the " +
                         sq.to_string() + " x " + ksk.to_string() + " scores");
    if (r > 2) lead.push_back(leading(*mask, 2));
  }
  std::vector<const TensorType*> ptrs;
  for (const TensorType& t : lead) ptrs.push_back(&t);
  BRINK_ASSIGN_OR_RETURN(auto batch, broadcast_dims(ctx, ptrs));
  if (!batch) {
    ctx.set_output(0, TensorType(dt, std::nullopt));
    return Status::ok();
  }
  std::vector<Dim> out = *batch;
  out.push_back(sq);
  out.push_back(dv);
  ctx.set_output(0, dt, out);
  return Status::ok();
}

// Runs one ONNX reference operator on `inputs` and returns its only output.
Result<Tensor> run_onnx(const std::string& op, int64_t opset,
                        const std::vector<const Tensor*>& inputs,
                        std::vector<ir::Attribute> attrs = {}) {
  BRINK_ASSIGN_OR_RETURN(
      std::vector<Tensor> out,
      evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs, false));
  return std::move(out[0]);
}

// The reference: the ONNX operators brink.Attention replaces, one after the other.
Status attention_reference(KernelContext& ctx, bool k_transposed, std::optional<float> scale_attr) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  Tensor kt = k;
  if (!k_transposed) {
    std::vector<int64_t> perm(static_cast<size_t>(k.rank()));
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    BRINK_ASSIGN_OR_RETURN(kt, run_onnx("Transpose", 13, {&k}, {make_attr("perm", perm)}));
  }
  // In double, so that an f64 model's default scale is the exact 1/sqrt(D).
  const double scale = scale_attr ? static_cast<double>(*scale_attr)
                                  : 1.0 / std::sqrt(static_cast<double>(q.dim(q.rank() - 1)));
  Tensor scale_t;
  visit_dtype(q.dtype(), [&]<typename T>() {
    if constexpr (is_float_v<T>) scale_t = Tensor::scalar<T>(static_cast<T>(scale));
  });
  BRINK_ASSIGN_OR_RETURN(Tensor scores, run_onnx("MatMul", 13, {&q, &kt}));
  BRINK_ASSIGN_OR_RETURN(scores, run_onnx("Mul", 14, {&scores, &scale_t}));
  if (ctx.has_input(3)) {
    BRINK_ASSIGN_OR_RETURN(scores, run_onnx("Add", 14, {&scores, &ctx.input(3)}));
  }
  BRINK_ASSIGN_OR_RETURN(scores,
                         run_onnx("Softmax", 13, {&scores}, {make_attr("axis", int64_t{-1})}));
  BRINK_ASSIGN_OR_RETURN(Tensor y, run_onnx("MatMul", 13, {&scores, &v}));
  Tensor& out = ctx.output(0);
  if (y.shape() != out.shape())
    return internal_error("brink.Attention: reference result has shape " +
                          shape_to_string(y.shape()) + ", expected " +
                          shape_to_string(out.shape()));
  if (y.nbytes() > 0) std::memcpy(out.raw_data(), y.raw_data(), y.nbytes());
  return Status::ok();
}

// Element strides of `t` along the output's batch dims (right-aligned; 0 where t broadcasts),
// counting t's last `inner` dims as one item. False when t has more batch dims than the output.
bool batch_strides(const Tensor& t, int64_t inner, const Tensor& y,
                   std::array<int64_t, kernels::kMaxAttentionBatchDims>* strides) {
  const int64_t out_rank = y.rank() - 2;
  const int64_t t_rank = std::max<int64_t>(0, t.rank() - inner);
  if (t_rank > out_rank) return false;
  int64_t stride = 1;
  for (int64_t i = t_rank; i < t.rank(); ++i) stride *= t.dim(i);
  strides->fill(0);
  for (int64_t i = t_rank - 1; i >= 0; --i) {
    const int64_t od = out_rank - t_rank + i;
    const int64_t size = t.dim(i);
    if (size != 1 && size != y.dim(od)) return false;
    (*strides)[static_cast<size_t>(od)] = size == 1 ? 0 : stride;
    stride *= size;
  }
  return true;
}

// The float32 fast path; false when the shapes need the reference (too many batch dims).
bool attention_fast(KernelContext& ctx, bool k_transposed, std::optional<float> scale_attr,
                    Isa isa) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  Tensor& y = ctx.output(0);
  for (const Tensor* t : {&q, &k, &v, mask, static_cast<const Tensor*>(&y)})
    if (t != nullptr && t->dtype() != DataType::kFloat32) return false;
  if (y.rank() < 2 || y.rank() - 2 > kernels::kMaxAttentionBatchDims) return false;
  kernels::AttentionArgs a;
  a.sq = q.dim(q.rank() - 2);
  a.d = q.dim(q.rank() - 1);
  a.sk = v.dim(v.rank() - 2);
  a.dv = v.dim(v.rank() - 1);
  a.k_transposed = k_transposed;
  const int64_t kd = k.dim(k.rank() - (k_transposed ? 2 : 1));
  const int64_t ksk = k.dim(k.rank() - (k_transposed ? 1 : 2));
  if (kd != a.d || ksk != a.sk || y.dim(y.rank() - 2) != a.sq || y.dim(y.rank() - 1) != a.dv)
    return false;
  a.scale = scale_attr ? *scale_attr : 1.0f / std::sqrt(static_cast<float>(a.d));
  a.q = q.data<float>();
  a.k = k.data<float>();
  a.v = v.data<float>();
  a.y = y.data<float>();
  a.batch_rank = static_cast<int>(y.rank() - 2);
  for (int i = 0; i < a.batch_rank; ++i) a.batch_dims[static_cast<size_t>(i)] = y.dim(i);
  if (!batch_strides(q, 2, y, &a.q_stride) || !batch_strides(k, 2, y, &a.k_stride) ||
      !batch_strides(v, 2, y, &a.v_stride))
    return false;
  if (mask != nullptr) {
    const int64_t r = mask->rank();
    const int64_t mk = r >= 1 ? mask->dim(r - 1) : 1, mq = r >= 2 ? mask->dim(r - 2) : 1;
    if ((mk != 1 && mk != a.sk) || (mq != 1 && mq != a.sq)) return false;
    if (!batch_strides(*mask, std::min<int64_t>(r, 2), y, &a.mask_stride)) return false;
    a.mask = mask->data<float>();
    a.mask_row_stride = mq == 1 ? 0 : mk;
    a.mask_scalar_rows = mk == 1;
  }
  kernels::attention_f32(a, isa, ctx.thread_pool());
  return true;
}

OpDef attention_op() {
  OpDef d;
  d.op_type = "Attention";
  d.domain = "brink";
  d.since_version = 1;
  d.infer = attention_infer;
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t kt_attr = c.node.attr_int("k_transposed", 0);
    if (kt_attr != 0 && kt_attr != 1)
      return c.invalid("k_transposed is " + std::to_string(kt_attr) + ", expected 0 or 1");
    const bool kt = kt_attr == 1;
    std::optional<float> scale;
    if (c.node.attr("scale") != nullptr) scale = c.node.attr_float("scale", 1.0f);
    const bool fast =
        kernels::fast_kernels_enabled() && c.has_input(0) && c.input_dtype(0) == DataType::kFloat32;
    const Isa isa = kernels::usable_isa(c.isa);
    return make_kernel([kt, scale, fast, isa](KernelContext& ctx) -> Status {
      if (fast && attention_fast(ctx, kt, scale, isa)) return Status::ok();
      return attention_reference(ctx, kt, scale);
    });
  };
  return d;
}

}  // namespace

void register_fused_transformer_ops(OpRegistry& r) {
  if constexpr (op_selected("brink", "LayerNormalization"))
    r.add(same_as_onnx("LayerNormalization", "LayerNormalization", 17));
  if constexpr (op_selected("brink", "Gelu")) r.add(same_as_onnx("Gelu", "Gelu", 20));
  if constexpr (op_selected("brink", "Attention")) r.add(attention_op());
}

}  // namespace brink::ops
