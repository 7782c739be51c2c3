// Quantization operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, the
// integer-accumulating ops (MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv), and the
// com.microsoft ops that ONNX Runtime's quantizer emits in QOperator format (QLinearAdd,
// QLinearMul, QLinearGlobalAveragePool, QLinearAveragePool, QLinearSigmoid, QLinearLeakyRelu,
// QLinearConcat, QGemm, MatMulIntegerToFloat, DynamicQuantizeMatMul).
//
// Arithmetic follows ONNX Runtime's CPU kernels, which are the de-facto reference for these
// ops: integer products accumulate exactly in 32 bits (wrapping like a 32-bit hardware
// accumulator, never undefined behaviour), then requantize through a float multiplier with
// round-half-to-even and saturation. Where ORT rounds after adding the zero point (pools, the
// binary ops) so do we, because with an odd zero point that changes which way a tie goes.
// Checked bit for bit against ONNX Runtime 1.32 on random data for every op here; ORT's
// fixed-point SIMD path for QLinearAdd could still differ by one unit on a rare tie.
//
// float8 and int4 element types are not Brink dtypes: they are rejected with a clear error.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "kernels/elementwise.h"
#include "kernels/qelementwise.h"
#include "kernels/qgemm.h"
#include "kernels/qpool.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

constexpr const char* kMsDomain = "com.microsoft";

// ---- element types ------------------------------------------------------------------------

bool is_8bit(DataType t) {
  return t == DataType::kUInt8 || t == DataType::kInt8;
}
bool is_quant_int(DataType t) {
  return is_8bit(t) || t == DataType::kUInt16 || t == DataType::kInt16;
}
bool is_f32(DataType t) {
  return t == DataType::kFloat32;
}

// Name of an ONNX element type that Brink cannot hold but that quantization ops allow, so the
// error names it instead of printing a bare code; nullptr for anything else.
const char* exotic_quant_type(int64_t code) {
  switch (code) {
    case 17:
      return "float8e4m3fn";
    case 18:
      return "float8e4m3fnuz";
    case 19:
      return "float8e5m2";
    case 20:
      return "float8e5m2fnuz";
    case 21:
      return "uint4";
    case 22:
      return "int4";
    default:
      return nullptr;
  }
}

template <typename Ctx>
Status check_not_exotic(const Ctx& ctx, size_t input, const char* what) {
  const int64_t code = static_cast<int64_t>(ctx.input_dtype(input));
  if (const char* name = exotic_quant_type(code))
    return ctx.unsupported_here(std::string(what) + " has element type " + name +
                                ", which Brink does not support (float8 and int4 types are "
                                "not Brink dtypes)");
  return Status::ok();
}

std::string dt(DataType t) {
  return dtype_name(t);
}

// ---- rounding and saturation ------------------------------------------------------------

template <typename Q>
constexpr float q_lo() {
  return static_cast<float>(std::numeric_limits<Q>::lowest());
}
template <typename Q>
constexpr float q_hi() {
  return static_cast<float>(std::numeric_limits<Q>::max());
}

// Saturates an already-rounded value into Q. NaN maps to Q's lowest value, as in ORT.
template <typename Q, typename F>
Q saturate(F r) {
  if (std::isnan(r)) return std::numeric_limits<Q>::lowest();
  if (r <= static_cast<F>(std::numeric_limits<Q>::lowest()))
    return std::numeric_limits<Q>::lowest();
  if (r >= static_cast<F>(std::numeric_limits<Q>::max())) return std::numeric_limits<Q>::max();
  return static_cast<Q>(r);
}

// ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point). std::nearbyint
// rounds to nearest-even in the default floating-point environment.
template <typename Q, typename F>
Q quantize_value(F x, F scale, int32_t zp) {
  return saturate<Q>(std::nearbyint(x / scale) + static_cast<F>(zp));
}

// ORT's pool and binary-op formula: the zero point is added before rounding.
template <typename Q>
Q quantize_value_zp_first(float x, float scale, int32_t zp) {
  return saturate<Q>(std::nearbyint(x / scale + static_cast<float>(zp)));
}

// Integer accumulator to Q through a float multiplier (MLAS's requantize output stage).
template <typename Q>
Q requantize(int32_t acc, float multiplier, int32_t zp) {
  return saturate<Q>(std::nearbyint(static_cast<float>(acc) * multiplier) + static_cast<float>(zp));
}

// ---- reading scale / zero-point tensors ---------------------------------------------------

float scalar_f(const Tensor& t) {
  return static_cast<float>(t.element_as_double(0));
}
int32_t scalar_zp(const KernelContext& ctx, size_t i) {
  return ctx.has_input(i) && ctx.input(i).numel() > 0
             ? static_cast<int32_t>(ctx.input(i).element_as_int64(0))
             : 0;
}
std::vector<float> floats_of(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    v[static_cast<size_t>(i)] = static_cast<float>(t.element_as_double(i));
  return v;
}
std::vector<int32_t> ints_of(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    v[static_cast<size_t>(i)] = static_cast<int32_t>(t.element_as_int64(i));
  return v;
}

// Known element count of a type, or -1.
int64_t known_numel(const TensorType& t) {
  if (!t.is_static()) return -1;
  return shape_numel(t.static_shape());
}

// Checks that input i is a scalar or a 1-element tensor when its shape is known.
Status check_scalar(const InferContext& ctx, size_t i, const char* name) {
  if (!ctx.has_input(i)) return Status::ok();
  const int64_t n = known_numel(ctx.input_type(i));
  if (n >= 0 && n != 1)
    return ctx.invalid(std::string(name) + " must be a scalar (per-tensor), found shape " +
                       ctx.input_type(i).to_string());
  return Status::ok();
}

Status require_float_input(const InferContext& ctx, size_t i, const char* name) {
  if (!ctx.has_input(i))
    return ctx.invalid(std::string(name) + " (input " + std::to_string(i) + ") is required");
  if (!is_f32(ctx.input_dtype(i)))
    return ctx.invalid(std::string(name) + " must be f32, found " + dt(ctx.input_dtype(i)));
  return Status::ok();
}

Status require_dtype_in(const InferContext& ctx, size_t i, const char* name,
                        std::initializer_list<DataType> allowed) {
  if (!ctx.has_input(i))
    return ctx.invalid(std::string(name) + " (input " + std::to_string(i) + ") is required");
  BRINK_RETURN_IF_ERROR(check_not_exotic(ctx, i, name));
  for (DataType t : allowed)
    if (ctx.input_dtype(i) == t) return Status::ok();
  std::string list;
  for (DataType t : allowed) list += (list.empty() ? "" : ", ") + dt(t);
  return ctx.unsupported_here(std::string(name) + " has element type " + dt(ctx.input_dtype(i)) +
                              ", expected one of " + list);
}

Status require_same_dtype(const InferContext& ctx, size_t zp, size_t data, const char* zp_name,
                          const char* data_name) {
  if (!ctx.has_input(zp)) return Status::ok();
  BRINK_RETURN_IF_ERROR(check_not_exotic(ctx, zp, zp_name));
  if (ctx.input_dtype(zp) != ctx.input_dtype(data))
    return ctx.invalid(std::string(zp_name) + " has element type " + dt(ctx.input_dtype(zp)) +
                       " but " + data_name + " has " + dt(ctx.input_dtype(data)));
  return Status::ok();
}

// Calls fn.template operator()<Q>() for the 8/16-bit quantized integer types.
template <typename Fn>
void visit_quant(DataType t, Fn&& fn) {
  switch (t) {
    case DataType::kUInt8:
      fn.template operator()<uint8_t>();
      break;
    case DataType::kInt8:
      fn.template operator()<int8_t>();
      break;
    case DataType::kUInt16:
      fn.template operator()<uint16_t>();
      break;
    case DataType::kInt16:
      fn.template operator()<int16_t>();
      break;
    default:
      break;
  }
}
template <typename Fn>
void visit_8bit(DataType t, Fn&& fn) {
  if (t == DataType::kUInt8) fn.template operator()<uint8_t>();
  if (t == DataType::kInt8) fn.template operator()<int8_t>();
}

// Writes x - zero_point (zero point broadcast unidirectionally onto x) as int32.
std::vector<int32_t> offset_to_i32(const Tensor& x, const Tensor* zp, const Shape& zp_shape) {
  std::vector<int32_t> out(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i)
    out[static_cast<size_t>(i)] = static_cast<int32_t>(x.element_as_int64(i));
  if (!zp) return out;
  const std::vector<int32_t> z = ints_of(*zp);
  if (z.size() == 1) {
    for (int32_t& v : out) v -= z[0];
    return out;
  }
  StridedIterator it(x.shape(), {broadcast_strides(zp_shape, x.shape())});
  for (size_t i = 0; !it.done(); it.next(), ++i) out[i] -= z[static_cast<size_t>(it.offset(0))];
  return out;
}

// True if `from` broadcasts onto `to` without changing `to` (right-aligned).
bool broadcasts_onto(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

// C[M,N] = A[M,K] x B[K,N] on int32 operands. Accumulates in uint32 so overflow wraps like
// an int32 hardware accumulator (as MLAS does) instead of being undefined behaviour.
void gemm_i32(const int32_t* a, const int32_t* b, int32_t* c, int64_t M, int64_t K, int64_t N) {
  std::vector<uint32_t> acc(static_cast<size_t>(N));
  for (int64_t m = 0; m < M; ++m) {
    std::fill(acc.begin(), acc.end(), 0u);
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t av = static_cast<uint32_t>(a[m * K + k]);
      if (av == 0) continue;
      const int32_t* brow = b + k * N;
      for (int64_t n = 0; n < N; ++n)
        acc[static_cast<size_t>(n)] += av * static_cast<uint32_t>(brow[n]);
    }
    for (int64_t n = 0; n < N; ++n)
      c[m * N + n] = static_cast<int32_t>(acc[static_cast<size_t>(n)]);
  }
}

// ---- MatMul shapes (numpy matmul semantics, batch broadcasting) --------------------------

struct MatMulPlan {
  bool a_vec = false, b_vec = false;
  Shape a, b;  // promoted to rank >= 2
  Shape out;   // batch + [M, N] (promoted; the real output drops M / N for 1-D operands)
  int64_t M = 0, K = 0, N = 0;
  std::vector<int64_t> a_off, b_off;  // per batch matrix: element offsets into A and B
};

Result<MatMulPlan> plan_matmul(const Shape& a_in, const Shape& b_in, const std::string& where) {
  MatMulPlan p;
  if (a_in.empty() || b_in.empty())
    return invalid_argument(where + ": matmul operands must have rank >= 1");
  p.a = a_in;
  p.b = b_in;
  if (p.a.size() == 1) p.a_vec = true, p.a.insert(p.a.begin(), 1);
  if (p.b.size() == 1) p.b_vec = true, p.b.push_back(1);
  p.M = p.a[p.a.size() - 2];
  p.K = p.a.back();
  p.N = p.b.back();
  if (p.b[p.b.size() - 2] != p.K)
    return invalid_argument(where + ": matmul inner dimensions differ: A is " +
                            shape_to_string(a_in) + ", B is " + shape_to_string(b_in));
  const Shape ab(p.a.begin(), p.a.end() - 2), bb(p.b.begin(), p.b.end() - 2);
  Shape batch;
  if (!broadcast_shapes(ab, bb, &batch))
    return invalid_argument(where + ": cannot broadcast batch dimensions of " +
                            shape_to_string(a_in) + " and " + shape_to_string(b_in));
  p.out = batch;
  p.out.push_back(p.M);
  p.out.push_back(p.N);
  const int64_t nb = shape_numel(batch);
  p.a_off.reserve(static_cast<size_t>(nb));
  p.b_off.reserve(static_cast<size_t>(nb));
  StridedIterator it(batch, {broadcast_strides(ab, batch), broadcast_strides(bb, batch)});
  for (; !it.done(); it.next()) {
    p.a_off.push_back(it.offset(0) * p.M * p.K);
    p.b_off.push_back(it.offset(1) * p.K * p.N);
  }
  if (batch.empty() && p.a_off.empty()) p.a_off = {0}, p.b_off = {0};
  return p;
}

// Output dims of a matmul with possibly symbolic dims.
Result<std::optional<std::vector<Dim>>> matmul_dims(const InferContext& ctx, const TensorType& a,
                                                    const TensorType& b) {
  if (!a.dims || !b.dims) return std::optional<std::vector<Dim>>();
  std::vector<Dim> ad = *a.dims, bd = *b.dims;
  if (ad.empty() || bd.empty()) return ctx.invalid("matmul operands must have rank >= 1");
  const bool av = ad.size() == 1, bv = bd.size() == 1;
  if (av) ad.insert(ad.begin(), Dim(1));
  if (bv) bd.push_back(Dim(1));
  const Dim& ka = ad.back();
  const Dim& kb = bd[bd.size() - 2];
  if (ka.known() && kb.known() && ka.value != kb.value)
    return ctx.invalid("matmul inner dimensions differ: " + a.to_string() + " and " +
                       b.to_string());
  TensorType ta(a.dtype, std::vector<Dim>(ad.begin(), ad.end() - 2));
  TensorType tb(b.dtype, std::vector<Dim>(bd.begin(), bd.end() - 2));
  BRINK_ASSIGN_OR_RETURN(auto batch, broadcast_dims(ctx, {&ta, &tb}));
  std::vector<Dim> out = *batch;
  if (!av) out.push_back(ad[ad.size() - 2]);
  if (!bv) out.push_back(bd.back());
  return std::optional<std::vector<Dim>>(std::move(out));
}

// A's per-row parameter (zero point or scale) as a shape broadcastable onto the promoted A
// (or output): a 1-D vector of M elements means one value per row, i.e. shape [M, 1].
Shape per_row_shape(const Shape& param, int64_t M) {
  if (param.size() == 1 && param[0] == M && M != 1) return {M, 1};
  return param;
}

Status check_matmul_param(const Shape& param, const Shape& target, const std::string& where,
                          const char* name) {
  if (shape_numel(param) == 1 || broadcasts_onto(param, target)) return Status::ok();
  return invalid_model(where + ": " + name + " has shape " + shape_to_string(param) +
                       ", which does not broadcast onto " + shape_to_string(target));
}

// int32 batched matmul of zero-point-corrected A and B; returns the promoted-shape result.
Result<std::vector<int32_t>> int_matmul(const Tensor& a, const Tensor* a_zp, const Tensor& b,
                                        const Tensor* b_zp, const std::string& where,
                                        MatMulPlan* plan_out) {
  BRINK_ASSIGN_OR_RETURN(MatMulPlan p, plan_matmul(a.shape(), b.shape(), where));
  Shape a_zp_shape, b_zp_shape;
  if (a_zp) {
    a_zp_shape = per_row_shape(a_zp->shape(), p.M);
    BRINK_RETURN_IF_ERROR(check_matmul_param(a_zp_shape, p.a, where, "A's zero point"));
  }
  if (b_zp) {
    b_zp_shape = b_zp->shape();
    BRINK_RETURN_IF_ERROR(check_matmul_param(b_zp_shape, p.b, where, "B's zero point"));
  }
  const Tensor a2 = a.reshaped(p.a), b2 = b.reshaped(p.b);
  const std::vector<int32_t> av = offset_to_i32(a2, a_zp, a_zp_shape);
  const std::vector<int32_t> bv = offset_to_i32(b2, b_zp, b_zp_shape);
  std::vector<int32_t> out(static_cast<size_t>(shape_numel(p.out)));
  for (size_t i = 0; i < p.a_off.size(); ++i)
    gemm_i32(av.data() + p.a_off[i], bv.data() + p.b_off[i],
             out.data() + static_cast<int64_t>(i) * p.M * p.N, p.M, p.K, p.N);
  *plan_out = std::move(p);
  return out;
}

// Per-output-element float factor: value of `param` (broadcast onto the promoted output).
std::vector<float> broadcast_floats(const Tensor& param, const Shape& param_shape,
                                    const Shape& out) {
  const std::vector<float> v = floats_of(param);
  std::vector<float> r(static_cast<size_t>(shape_numel(out)));
  if (v.size() == 1) {
    std::fill(r.begin(), r.end(), v[0]);
    return r;
  }
  StridedIterator it(out, {broadcast_strides(param_shape, out)});
  for (size_t i = 0; !it.done(); it.next(), ++i) r[i] = v[static_cast<size_t>(it.offset(0))];
  return r;
}

// ---- QuantizeLinear / DequantizeLinear -------------------------------------------------

// Which scale / zero point element applies to x element (o, k, j), where o indexes the dims
// before `axis`, k the axis and j the dims after it.
struct ParamLayout {
  enum Kind { kPerTensor, kPerAxis, kBlocked } kind = kPerTensor;
  int64_t outer = 1, axis_dim = 1, inner = 1;
  int64_t block = 1, param_axis_dim = 1;
  int64_t index(int64_t o, int64_t k, int64_t j) const {
    switch (kind) {
      case kPerTensor:
        return 0;
      case kPerAxis:
        return k;
      case kBlocked:
        return (o * param_axis_dim + k / block) * inner + j;
    }
    return 0;
  }
};

Result<ParamLayout> qdq_layout(const Shape& x, const Shape& scale, const Shape* zp, int64_t opset,
                               int64_t axis_attr, int64_t block_size, const std::string& where) {
  ParamLayout l;
  const int64_t rank = static_cast<int64_t>(x.size());
  auto fail = [&](const std::string& m) { return invalid_model(where + ": " + m); };
  if (zp && *zp != scale && !(shape_numel(*zp) == 1 && shape_numel(scale) == 1))
    return fail("zero point shape " + shape_to_string(*zp) + " differs from scale shape " +
                shape_to_string(scale));
  if (block_size < 0) return fail("block_size must be >= 0, found " + std::to_string(block_size));
  if (block_size == 0 && shape_numel(scale) == 1 && scale.size() <= 1) {
    l.inner = shape_numel(x);
    return l;
  }
  if (opset < 13)
    return fail(
        "scale must be a scalar before opset 13 (per-axis quantization needs opset 13), found "
        "shape " +
        shape_to_string(scale));
  if (axis_attr < -rank || axis_attr >= std::max<int64_t>(rank, 1))
    return fail("axis " + std::to_string(axis_attr) + " is out of range for input rank " +
                std::to_string(rank));
  const int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
  if (rank == 0) return fail("a non-scalar scale needs an input of rank >= 1");
  for (int64_t d = 0; d < axis; ++d) l.outer *= x[static_cast<size_t>(d)];
  l.axis_dim = x[static_cast<size_t>(axis)];
  for (int64_t d = axis + 1; d < rank; ++d) l.inner *= x[static_cast<size_t>(d)];
  if (block_size == 0) {
    if (scale.size() != 1 || scale[0] != l.axis_dim)
      return fail("per-axis scale must be 1-D with " + std::to_string(l.axis_dim) +
                  " elements (input dim " + std::to_string(axis) + "), found shape " +
                  shape_to_string(scale));
    l.kind = ParamLayout::kPerAxis;
    return l;
  }
  if (static_cast<int64_t>(scale.size()) != rank)
    return fail("blocked quantization needs a scale of the input's rank " + std::to_string(rank) +
                ", found shape " + shape_to_string(scale));
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t want = d == axis ? (x[static_cast<size_t>(d)] + block_size - 1) / block_size
                                   : x[static_cast<size_t>(d)];
    if (scale[static_cast<size_t>(d)] != want)
      return fail("blocked scale shape " + shape_to_string(scale) + " does not match input shape " +
                  shape_to_string(x) + " with block_size " + std::to_string(block_size) +
                  " on axis " + std::to_string(axis));
  }
  l.kind = ParamLayout::kBlocked;
  l.block = block_size;
  l.param_axis_dim = scale[static_cast<size_t>(axis)];
  return l;
}

// Runs fn(flat_index, param_index) over every element of x in order.
template <typename Fn>
void for_each_param(const ParamLayout& l, Fn&& fn) {
  int64_t i = 0;
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t k = 0; k < l.axis_dim; ++k)
      for (int64_t j = 0; j < l.inner; ++j, ++i) fn(i, l.index(o, k, j));
}

Status validate_qdq_shapes(const InferContext& ctx, int64_t axis, int64_t block) {
  if (!ctx.input_type(0).is_static() || !ctx.input_type(1).is_static()) return Status::ok();
  Shape zp;
  const bool has_zp = ctx.has_input(2) && ctx.input_type(2).is_static();
  if (has_zp) zp = ctx.input_type(2).static_shape();
  auto r = qdq_layout(ctx.input_type(0).static_shape(), ctx.input_type(1).static_shape(),
                      has_zp ? &zp : nullptr, ctx.opset(), axis, block, ctx.node().describe());
  return r.is_ok() ? Status::ok() : r.status();
}

OpDef quantize_linear(int since, int max) {
  OpDef d;
  d.op_type = "QuantizeLinear";
  d.since_version = since;
  d.max_version = max;
  d.infer = [](InferContext& ctx) -> Status {
    const int64_t opset = ctx.opset();
    if (opset >= 19) {
      BRINK_RETURN_IF_ERROR(require_dtype_in(
          ctx, 0, "x",
          {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16, DataType::kInt32}));
      BRINK_RETURN_IF_ERROR(require_dtype_in(
          ctx, 1, "y_scale", {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16}));
    } else {
      BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "x", {DataType::kFloat32, DataType::kInt32}));
      BRINK_RETURN_IF_ERROR(require_float_input(ctx, 1, "y_scale"));
    }
    DataType out = DataType::kUInt8;
    const int64_t output_dtype = opset >= 21 ? ctx.node().attr_int("output_dtype", 0) : 0;
    if (const char* name = exotic_quant_type(output_dtype))
      return ctx.unsupported_here(std::string("output_dtype ") + name +
                                  " is not supported (float8 and int4 types are not Brink dtypes)");
    if (ctx.has_input(2)) {
      BRINK_RETURN_IF_ERROR(check_not_exotic(ctx, 2, "y_zero_point"));
      out = ctx.input_dtype(2);
      if (output_dtype != 0 && output_dtype != static_cast<int64_t>(out))
        return ctx.invalid("output_dtype " + std::to_string(output_dtype) +
                           " differs from y_zero_point's element type " + dt(out));
    } else if (output_dtype != 0) {
      out = static_cast<DataType>(output_dtype);
    }
    const bool ok = opset >= 21 ? is_quant_int(out) : is_8bit(out);
    if (!ok)
      return ctx.unsupported_here(
          "output element type " + dt(out) + " is not supported at opset " + std::to_string(opset) +
          (opset >= 21 ? " (expected u8, i8, u16 or i16)" : " (expected u8 or i8)"));
    const int64_t block = opset >= 21 ? ctx.node().attr_int("block_size", 0) : 0;
    BRINK_RETURN_IF_ERROR(validate_qdq_shapes(ctx, ctx.node().attr_int("axis", 1), block));
    ctx.set_output(0, TensorType(out, ctx.input_type(0).dims));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis = c.node.attr_int("axis", 1);
    const int64_t block = c.opset >= 21 ? c.node.attr_int("block_size", 0) : 0;
    const int64_t opset = c.opset;
    const std::string where = c.node.describe();
    const bool fast = kernels::fast_kernels_enabled();
    const Isa isa = c.isa;
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& scale = ctx.input(1);
      const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      Tensor& y = ctx.output(0);
      // Per tensor, float32 to 8 bits: the vectorized kernel (same formula).
      if (fast && x.dtype() == DataType::kFloat32 && scale.dtype() == DataType::kFloat32 &&
          scale.numel() == 1 && (zp == nullptr || zp->numel() == 1) && block == 0 &&
          (y.dtype() == DataType::kUInt8 || y.dtype() == DataType::kInt8)) {
        const int32_t z = zp ? static_cast<int32_t>(zp->element_as_int64(0)) : 0;
        if (y.dtype() == DataType::kUInt8)
          kernels::quantize_f32_u8(x.data<float>(), x.numel(), scale.data<float>()[0], z,
                                   y.data<uint8_t>(), ctx.thread_pool(), isa);
        else
          kernels::quantize_f32_s8(x.data<float>(), x.numel(), scale.data<float>()[0], z,
                                   y.data<int8_t>(), ctx.thread_pool(), isa);
        return Status::ok();
      }
      Shape zps = zp ? zp->shape() : Shape{};
      BRINK_ASSIGN_OR_RETURN(
          ParamLayout l,
          qdq_layout(x.shape(), scale.shape(), zp ? &zps : nullptr, opset, axis, block, where));
      const std::vector<float> s = floats_of(scale);
      const std::vector<int32_t> z = zp ? ints_of(*zp) : std::vector<int32_t>(s.size(), 0);
      visit_quant(y.dtype(), [&]<typename Q>() {
        Q* out = y.data<Q>();
        if (x.dtype() == DataType::kInt32) {
          // numpy promotes int32 / float32 to float64; so do we.
          const int32_t* in = x.data<int32_t>();
          for_each_param(l, [&](int64_t i, int64_t p) {
            out[i] = quantize_value<Q, double>(in[i], s[static_cast<size_t>(p)],
                                               z[static_cast<size_t>(p)]);
          });
          return;
        }
        visit_dtype(x.dtype(), [&]<typename T>() {
          if constexpr (std::is_floating_point_v<compute_t<T>>) {
            const T* in = x.data<T>();
            for_each_param(l, [&](int64_t i, int64_t p) {
              out[i] = quantize_value<Q, float>(
                  static_cast<float>(in[i]), s[static_cast<size_t>(p)], z[static_cast<size_t>(p)]);
            });
          }
        });
      });
      return Status::ok();
    });
  };
  return d;
}

OpDef dequantize_linear(int since, int max) {
  OpDef d;
  d.op_type = "DequantizeLinear";
  d.since_version = since;
  d.max_version = max;
  d.infer = [](InferContext& ctx) -> Status {
    const int64_t opset = ctx.opset();
    if (opset >= 21)
      BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "x",
                                             {DataType::kUInt8, DataType::kInt8, DataType::kUInt16,
                                              DataType::kInt16, DataType::kInt32}));
    else
      BRINK_RETURN_IF_ERROR(
          require_dtype_in(ctx, 0, "x", {DataType::kUInt8, DataType::kInt8, DataType::kInt32}));
    DataType out = DataType::kFloat32;
    if (opset >= 19) {
      BRINK_RETURN_IF_ERROR(require_dtype_in(
          ctx, 1, "x_scale", {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16}));
      out = ctx.input_dtype(1);
    } else {
      BRINK_RETURN_IF_ERROR(require_float_input(ctx, 1, "x_scale"));
    }
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "x_zero_point", "x"));
    const int64_t block = opset >= 21 ? ctx.node().attr_int("block_size", 0) : 0;
    BRINK_RETURN_IF_ERROR(validate_qdq_shapes(ctx, ctx.node().attr_int("axis", 1), block));
    ctx.set_output(0, TensorType(out, ctx.input_type(0).dims));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis = c.node.attr_int("axis", 1);
    const int64_t block = c.opset >= 21 ? c.node.attr_int("block_size", 0) : 0;
    const int64_t opset = c.opset;
    const std::string where = c.node.describe();
    const bool fast = kernels::fast_kernels_enabled();
    const Isa isa = c.isa;
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& scale = ctx.input(1);
      const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      Tensor& y = ctx.output(0);
      // Per tensor, 8 bits to float32: the vectorized kernel (same formula).
      if (fast && y.dtype() == DataType::kFloat32 && scale.dtype() == DataType::kFloat32 &&
          scale.numel() == 1 && (zp == nullptr || zp->numel() == 1) && block == 0 &&
          (x.dtype() == DataType::kUInt8 || x.dtype() == DataType::kInt8)) {
        const int32_t z = zp ? static_cast<int32_t>(zp->element_as_int64(0)) : 0;
        if (x.dtype() == DataType::kUInt8)
          kernels::dequantize_u8_f32(x.data<uint8_t>(), x.numel(), scale.data<float>()[0], z,
                                     y.data<float>(), ctx.thread_pool(), isa);
        else
          kernels::dequantize_s8_f32(x.data<int8_t>(), x.numel(), scale.data<float>()[0], z,
                                     y.data<float>(), ctx.thread_pool(), isa);
        return Status::ok();
      }
      Shape zps = zp ? zp->shape() : Shape{};
      BRINK_ASSIGN_OR_RETURN(
          ParamLayout l,
          qdq_layout(x.shape(), scale.shape(), zp ? &zps : nullptr, opset, axis, block, where));
      const std::vector<float> s = floats_of(scale);
      std::vector<int64_t> z(s.size(), 0);
      if (zp)
        for (int64_t i = 0; i < zp->numel(); ++i)
          z[static_cast<size_t>(i)] = zp->element_as_int64(i);
      visit_dtype(x.dtype(), [&]<typename Q>() {
        if constexpr (std::is_integral_v<Q> && !std::is_same_v<Q, bool>) {
          const Q* in = x.data<Q>();
          visit_dtype(y.dtype(), [&]<typename T>() {
            if constexpr (std::is_floating_point_v<compute_t<T>>) {
              T* out = y.data<T>();
              for_each_param(l, [&](int64_t i, int64_t p) {
                const float v =
                    static_cast<float>(static_cast<int64_t>(in[i]) - z[static_cast<size_t>(p)]) *
                    s[static_cast<size_t>(p)];
                out[i] = static_cast<T>(v);
              });
            }
          });
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- DynamicQuantizeLinear ---------------------------------------------------------------

// ORT's dynamic u8 parameters: the range is widened to include 0; a zero range gives scale 1
// (the ONNX reference uses 1/255 there; the quantized values are all zero either way).
void dynamic_u8_params(const float* x, int64_t n, float* scale, uint8_t* zp) {
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  *scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const float initial_zp = 0.0f - lo / *scale;
  *zp = static_cast<uint8_t>(std::nearbyint(std::clamp(initial_zp, 0.0f, 255.0f)));
}

OpDef dynamic_quantize_linear() {
  OpDef d;
  d.op_type = "DynamicQuantizeLinear";
  d.since_version = 11;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_float_input(ctx, 0, "x"));
    ctx.set_output(0, TensorType(DataType::kUInt8, ctx.input_type(0).dims));
    ctx.set_output(1, DataType::kFloat32, Shape{});
    ctx.set_output(2, DataType::kUInt8, Shape{});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool want_scale = c.node.outputs.size() > 1 && c.node.outputs[1] != ir::kNoValue;
    const bool want_zp = c.node.outputs.size() > 2 && c.node.outputs[2] != ir::kNoValue;
    const bool fast = kernels::fast_kernels_enabled();
    const Isa isa = c.isa;
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      float scale;
      uint8_t zp;
      uint8_t* out = ctx.output(0).data<uint8_t>();
      if (fast) {
        // Range scan and quantization in one vectorized pass (same formula; a range of zero
        // gives scale 0 there, 1 here, as ORT: every value is the zero point either way).
        kernels::dynamic_quantize_u8(x.data<float>(), x.numel(), out, &scale, &zp,
                                     ctx.thread_pool(), isa);
        if (scale == 0.0f) scale = 1.0f;
      } else {
        dynamic_u8_params(x.data<float>(), x.numel(), &scale, &zp);
        const float* in = x.data<float>();
        for (int64_t i = 0; i < x.numel(); ++i)
          out[i] = quantize_value<uint8_t, float>(in[i], scale, zp);
      }
      if (want_scale) ctx.output(1).data<float>()[0] = scale;
      if (want_zp) ctx.output(2).data<uint8_t>()[0] = zp;
      return Status::ok();
    });
  };
  return d;
}

// ---- MatMulInteger / QLinearMatMul ------------------------------------------------------

OpDef matmul_integer() {
  OpDef d;
  d.op_type = "MatMulInteger";
  d.since_version = 10;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "A", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 1, "B", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "a_zero_point", "A"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 3, 1, "b_zero_point", "B"));
    BRINK_ASSIGN_OR_RETURN(auto dims, matmul_dims(ctx, ctx.input_type(0), ctx.input_type(1)));
    ctx.set_output(0, TensorType(DataType::kInt32, std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      MatMulPlan p;
      BRINK_ASSIGN_OR_RETURN(
          std::vector<int32_t> r,
          int_matmul(ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(1),
                     ctx.has_input(3) ? &ctx.input(3) : nullptr, where, &p));
      std::memcpy(ctx.output(0).raw_data(), r.data(), r.size() * sizeof(int32_t));
      return Status::ok();
    });
  };
  return d;
}

OpDef qlinear_matmul(int since, int max) {
  OpDef d;
  d.op_type = "QLinearMatMul";
  d.since_version = since;
  d.max_version = max;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "a", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 3, "b", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 4, 6}) {
      if (ctx.opset() >= 21)
        BRINK_RETURN_IF_ERROR(require_dtype_in(
            ctx, i, "scale", {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16}));
      else
        BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    }
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "a_zero_point", "a"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 5, 3, "b_zero_point", "b"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 6, "y_scale"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 7, "y_zero_point"));
    DataType out = ctx.input_dtype(0);
    if (ctx.has_input(7)) {
      BRINK_RETURN_IF_ERROR(
          require_dtype_in(ctx, 7, "y_zero_point", {DataType::kUInt8, DataType::kInt8}));
      out = ctx.input_dtype(7);
    }
    BRINK_ASSIGN_OR_RETURN(auto dims, matmul_dims(ctx, ctx.input_type(0), ctx.input_type(3)));
    ctx.set_output(0, TensorType(out, std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      MatMulPlan p;
      BRINK_ASSIGN_OR_RETURN(
          std::vector<int32_t> acc,
          int_matmul(ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(3),
                     ctx.has_input(5) ? &ctx.input(5) : nullptr, where, &p));
      const Shape as = per_row_shape(ctx.input(1).shape(), p.M);
      const Shape& bs = ctx.input(4).shape();
      BRINK_RETURN_IF_ERROR(check_matmul_param(as, p.out, where, "a_scale"));
      BRINK_RETURN_IF_ERROR(check_matmul_param(bs, p.out, where, "b_scale"));
      const std::vector<float> sa = broadcast_floats(ctx.input(1), as, p.out);
      const std::vector<float> sb = broadcast_floats(ctx.input(4), bs, p.out);
      const float sy = scalar_f(ctx.input(6));
      const int32_t zy = scalar_zp(ctx, 7);
      Tensor& y = ctx.output(0);
      visit_8bit(y.dtype(), [&]<typename Q>() {
        Q* out = y.data<Q>();
        for (size_t i = 0; i < acc.size(); ++i)
          out[i] = requantize<Q>(acc[i], sa[i] * sb[i] / sy, zy);
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- convolution geometry (ConvInteger, QLinearConv) -------------------------------------

struct ConvAttrs {
  std::string auto_pad;
  std::vector<int64_t> kernel_shape, strides, dilations, pads;
  int64_t group = 1;
};

ConvAttrs read_conv_attrs(const ir::Node& n) {
  ConvAttrs a;
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  a.kernel_shape = n.attr_ints("kernel_shape");
  a.strides = n.attr_ints("strides");
  a.dilations = n.attr_ints("dilations");
  a.pads = n.attr_ints("pads");
  a.group = n.attr_int("group", 1);
  return a;
}

Status check_conv_attrs(const ConvAttrs& a, size_t nsp, const std::string& where) {
  auto fail = [&](const std::string& m) { return invalid_model(where + ": " + m); };
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" &&
      a.auto_pad != "SAME_LOWER")
    return fail("auto_pad '" + a.auto_pad +
                "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  if (!a.kernel_shape.empty() && a.kernel_shape.size() != nsp)
    return fail("kernel_shape has " + std::to_string(a.kernel_shape.size()) + " values, expected " +
                std::to_string(nsp));
  if (!a.strides.empty() && a.strides.size() != nsp)
    return fail("strides has " + std::to_string(a.strides.size()) + " values, expected " +
                std::to_string(nsp));
  if (!a.dilations.empty() && a.dilations.size() != nsp)
    return fail("dilations has " + std::to_string(a.dilations.size()) + " values, expected " +
                std::to_string(nsp));
  if (!a.pads.empty() && a.pads.size() != 2 * nsp)
    return fail("pads has " + std::to_string(a.pads.size()) + " values, expected " +
                std::to_string(2 * nsp));
  for (int64_t s : a.strides)
    if (s < 1) return fail("strides must be >= 1");
  for (int64_t s : a.dilations)
    if (s < 1) return fail("dilations must be >= 1");
  for (int64_t s : a.pads)
    if (s < 0) return fail("pads must be >= 0");
  if (a.group < 1) return fail("group must be >= 1");
  return Status::ok();
}

// Output size and leading pad of one spatial dim (ONNX Conv rules).
void conv_dim(const ConvAttrs& a, size_t i, int64_t in, int64_t k, int64_t* out,
              int64_t* pad_begin) {
  const size_t nsp = a.pads.size() / 2;
  const int64_t s = a.strides.empty() ? 1 : a.strides[i];
  const int64_t dl = a.dilations.empty() ? 1 : a.dilations[i];
  const int64_t ek = (k - 1) * dl + 1;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    *out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (*out - 1) * s + ek - in);
    *pad_begin = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
  } else if (a.auto_pad == "VALID") {
    *out = in >= ek ? (in - ek) / s + 1 : 0;
    *pad_begin = 0;
  } else {
    const int64_t pb = a.pads.empty() ? 0 : a.pads[i], pe = a.pads.empty() ? 0 : a.pads[i + nsp];
    *out = in + pb + pe >= ek ? (in + pb + pe - ek) / s + 1 : 0;
    *pad_begin = pb;
  }
}

// Infers [N, M, out...] for a conv with data input x_idx and weight w_idx.
Status infer_conv(InferContext& ctx, size_t x_idx, size_t w_idx, DataType out_dtype) {
  const TensorType& xt = ctx.input_type(x_idx);
  const TensorType& wt = ctx.input_type(w_idx);
  const ConvAttrs a = read_conv_attrs(ctx.node());
  if (!xt.dims) {
    ctx.set_output(0, TensorType(out_dtype, std::nullopt));
    return Status::ok();
  }
  const auto& xd = *xt.dims;
  if (xd.size() < 3)
    return ctx.invalid("input x has rank " + std::to_string(xd.size()) +
                       ", expected >= 3 (N, C, spatial...)");
  const size_t nsp = xd.size() - 2;
  BRINK_RETURN_IF_ERROR(check_conv_attrs(a, nsp, ctx.node().describe()));
  std::vector<Dim> out{xd[0], Dim()};
  if (wt.dims) {
    const auto& wd = *wt.dims;
    if (wd.size() != xd.size())
      return ctx.invalid("weight has rank " + std::to_string(wd.size()) + ", expected " +
                         std::to_string(xd.size()));
    out[1] = wd[0];
    if (wd[1].known() && xd[1].known() && wd[1].value * a.group != xd[1].value)
      return ctx.invalid("weight has " + std::to_string(wd[1].value) +
                         " input channels per group, but x has " + std::to_string(xd[1].value) +
                         " channels and group is " + std::to_string(a.group));
    if (wd[0].known() && wd[0].value % a.group != 0)
      return ctx.invalid("output channels " + std::to_string(wd[0].value) +
                         " are not divisible by group " + std::to_string(a.group));
  }
  for (size_t i = 0; i < nsp; ++i) {
    int64_t k = -1;
    if (!a.kernel_shape.empty()) k = a.kernel_shape[i];
    if (wt.dims && (*wt.dims)[i + 2].known()) {
      const int64_t wk = (*wt.dims)[i + 2].value;
      if (k >= 0 && k != wk)
        return ctx.invalid("kernel_shape " + std::to_string(k) +
                           " differs from the weight's spatial dim " + std::to_string(wk));
      k = wk;
    }
    if (k < 0 || !xd[i + 2].known()) {
      out.push_back(Dim());
      continue;
    }
    int64_t o, pb;
    conv_dim(a, i, xd[i + 2].value, k, &o, &pb);
    out.push_back(Dim(o));
  }
  ctx.set_output(0, out_dtype, std::move(out));
  return Status::ok();
}

// y[N, M, out...] = conv(x'[N, C, in...], w'[M, C/group, k...]) on zero-point-corrected int32
// operands (padding contributes 0, i.e. the zero point), via im2col and gemm_i32.
void conv_i32(const int32_t* x, const Shape& xs, const int32_t* w, const Shape& ws,
              const ConvAttrs& a, int32_t* y, const Shape& ys) {
  const size_t nsp = xs.size() - 2;
  const int64_t N = xs[0], C = xs[1], M = ws[0], G = a.group;
  const int64_t Cg = C / G, Mg = M / G;
  Shape in_sp(xs.begin() + 2, xs.end()), k_sp(ws.begin() + 2, ws.end()),
      out_sp(ys.begin() + 2, ys.end());
  std::vector<int64_t> pad_begin(nsp), stride(nsp), dil(nsp);
  for (size_t i = 0; i < nsp; ++i) {
    int64_t o;
    conv_dim(a, i, in_sp[i], k_sp[i], &o, &pad_begin[i]);
    stride[i] = a.strides.empty() ? 1 : a.strides[i];
    dil[i] = a.dilations.empty() ? 1 : a.dilations[i];
  }
  const int64_t in_size = shape_numel(in_sp), k_size = shape_numel(k_sp),
                out_size = shape_numel(out_sp);
  const int64_t rows = Cg * k_size;
  const std::vector<int64_t> in_strides = strides_of(in_sp);
  std::vector<int32_t> col(static_cast<size_t>(rows * out_size));
  std::vector<int64_t> kidx(nsp), oidx(nsp);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      // im2col: row (c, kernel position), column output position.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t c = r / k_size;
        int64_t kr = r % k_size;
        for (size_t i = nsp; i-- > 0;) kidx[i] = kr % k_sp[i], kr /= k_sp[i];
        const int32_t* xc = x + (n * C + g * Cg + c) * in_size;
        int32_t* dst = col.data() + r * out_size;
        std::fill(oidx.begin(), oidx.end(), 0);
        for (int64_t p = 0; p < out_size; ++p) {
          int64_t off = 0;
          bool inside = true;
          for (size_t i = 0; i < nsp; ++i) {
            const int64_t pos = oidx[i] * stride[i] - pad_begin[i] + kidx[i] * dil[i];
            if (pos < 0 || pos >= in_sp[i]) {
              inside = false;
              break;
            }
            off += pos * in_strides[i];
          }
          dst[p] = inside ? xc[off] : 0;
          for (size_t i = nsp; i-- > 0;) {
            if (++oidx[i] < out_sp[i]) break;
            oidx[i] = 0;
          }
        }
      }
      gemm_i32(w + g * Mg * rows, col.data(), y + (n * M + g * Mg) * out_size, Mg, rows, out_size);
    }
  }
}

Status check_conv_runtime(const Tensor& x, const Tensor& w, const ConvAttrs& a,
                          const std::string& where) {
  if (w.rank() != x.rank()) return invalid_model(where + ": weight rank differs from input rank");
  if (w.dim(1) * a.group != x.dim(1) || w.dim(0) % a.group != 0)
    return invalid_model(where + ": weight shape " + shape_to_string(w.shape()) +
                         " does not match input " + shape_to_string(x.shape()) + " with group " +
                         std::to_string(a.group));
  for (size_t i = 0; i < a.kernel_shape.size(); ++i)
    if (a.kernel_shape[i] != w.dim(static_cast<int64_t>(i) + 2))
      return invalid_model(where + ": kernel_shape differs from the weight's spatial dims");
  return Status::ok();
}

// The zero-point-corrected weight as a [M, rows] matrix whose zero point may vary per row.
std::vector<int32_t> weights_minus_zp(const Tensor& w, const Tensor* zp) {
  std::vector<int32_t> out(static_cast<size_t>(w.numel()));
  const int64_t M = w.dim(0), per = M ? w.numel() / M : 0;
  const std::vector<int32_t> z = zp ? ints_of(*zp) : std::vector<int32_t>{0};
  for (int64_t m = 0; m < M; ++m) {
    const int32_t zm = z.size() == 1 ? z[0] : z[static_cast<size_t>(m)];
    for (int64_t j = 0; j < per; ++j)
      out[static_cast<size_t>(m * per + j)] =
          static_cast<int32_t>(w.element_as_int64(m * per + j)) - zm;
  }
  return out;
}

Status check_weight_param(const Tensor& w, const Tensor* p, const std::string& where,
                          const char* name) {
  if (!p || p->numel() == 1) return Status::ok();
  if (p->rank() == 1 && p->dim(0) == w.dim(0)) return Status::ok();
  return invalid_model(
      where + ": " + name + " must be a scalar or 1-D with " + std::to_string(w.dim(0)) +
      " elements (one per output channel), found shape " + shape_to_string(p->shape()));
}

OpDef conv_integer() {
  OpDef d;
  d.op_type = "ConvInteger";
  d.since_version = 10;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "x", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 1, "w", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "x_zero_point", "x"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 3, 1, "w_zero_point", "w"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 2, "x_zero_point"));
    return infer_conv(ctx, 0, 1, DataType::kInt32);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ConvAttrs a = read_conv_attrs(c.node);
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& w = ctx.input(1);
      const Tensor* wzp = ctx.has_input(3) ? &ctx.input(3) : nullptr;
      BRINK_RETURN_IF_ERROR(check_conv_runtime(x, w, a, where));
      BRINK_RETURN_IF_ERROR(check_weight_param(w, wzp, where, "w_zero_point"));
      const Tensor* xzp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      const std::vector<int32_t> xv = offset_to_i32(x, xzp, xzp ? xzp->shape() : Shape{});
      const std::vector<int32_t> wv = weights_minus_zp(w, wzp);
      Tensor& y = ctx.output(0);
      conv_i32(xv.data(), x.shape(), wv.data(), w.shape(), a, y.data<int32_t>(), y.shape());
      return Status::ok();
    });
  };
  return d;
}

OpDef qlinear_conv() {
  OpDef d;
  d.op_type = "QLinearConv";
  d.since_version = 10;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "x", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 3, "w", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 4, 6}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "x_zero_point", "x"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 5, 3, "w_zero_point", "w"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 1, "x_scale"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 2, "x_zero_point"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 6, "y_scale"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 7, "y_zero_point"));
    if (ctx.has_input(8) && ctx.input_dtype(8) != DataType::kInt32)
      return ctx.invalid("bias B must be i32, found " + dt(ctx.input_dtype(8)));
    DataType out = ctx.input_dtype(0);
    if (ctx.has_input(7)) {
      BRINK_RETURN_IF_ERROR(
          require_dtype_in(ctx, 7, "y_zero_point", {DataType::kUInt8, DataType::kInt8}));
      out = ctx.input_dtype(7);
    }
    return infer_conv(ctx, 0, 3, out);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ConvAttrs a = read_conv_attrs(c.node);
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& w = ctx.input(3);
      const Tensor* wzp = ctx.has_input(5) ? &ctx.input(5) : nullptr;
      const Tensor& ws = ctx.input(4);
      BRINK_RETURN_IF_ERROR(check_conv_runtime(x, w, a, where));
      BRINK_RETURN_IF_ERROR(check_weight_param(w, wzp, where, "w_zero_point"));
      BRINK_RETURN_IF_ERROR(check_weight_param(w, &ws, where, "w_scale"));
      const int64_t M = w.dim(0);
      const Tensor* bias = ctx.has_input(8) ? &ctx.input(8) : nullptr;
      if (bias && bias->numel() != M)
        return invalid_model(where + ": bias has " + std::to_string(bias->numel()) +
                             " elements, expected " + std::to_string(M));
      const Tensor* xzp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      const std::vector<int32_t> xv = offset_to_i32(x, xzp, xzp ? xzp->shape() : Shape{});
      const std::vector<int32_t> wv = weights_minus_zp(w, wzp);
      Tensor& y = ctx.output(0);
      std::vector<int32_t> acc(static_cast<size_t>(y.numel()));
      conv_i32(xv.data(), x.shape(), wv.data(), w.shape(), a, acc.data(), y.shape());
      // ORT's per-channel multiplier: x_scale * w_scale[m] / y_scale, in float.
      const float sx = scalar_f(ctx.input(1)), sy = scalar_f(ctx.input(6));
      const std::vector<float> sw = floats_of(ws);
      std::vector<float> mult(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; ++m)
        mult[static_cast<size_t>(m)] = sx * sw[sw.size() == 1 ? 0 : static_cast<size_t>(m)] / sy;
      const std::vector<int32_t> b = bias ? ints_of(*bias) : std::vector<int32_t>();
      const int32_t zy = scalar_zp(ctx, 7);
      const int64_t plane = M ? y.numel() / (y.dim(0) * M) : 0;
      visit_8bit(y.dtype(), [&]<typename Q>() {
        Q* out = y.data<Q>();
        for (int64_t i = 0; i < y.numel(); ++i) {
          const size_t m = static_cast<size_t>((i / plane) % M);
          const int32_t v =
              b.empty() ? acc[static_cast<size_t>(i)]
                        : static_cast<int32_t>(static_cast<uint32_t>(acc[static_cast<size_t>(i)]) +
                                               static_cast<uint32_t>(b[m]));
          out[i] = requantize<Q>(v, mult[m], zy);
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- com.microsoft: elementwise --------------------------------------------------------

// QLinearAdd / QLinearMul: A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp.
template <typename F>
OpDef qlinear_binary(const std::string& name, F combine) {
  OpDef d;
  d.op_type = name;
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "A", {DataType::kUInt8, DataType::kInt8}));
    if (!ctx.has_input(3) || ctx.input_dtype(3) != ctx.input_dtype(0))
      return ctx.invalid("B must be present with A's element type " + dt(ctx.input_dtype(0)));
    for (size_t i : {1, 4, 6}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    for (size_t i : {1, 2, 4, 5, 6, 7})
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, i, "scales and zero points"));
    for (size_t i : {2, 5, 7})
      BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, i, 0, "zero point", "A"));
    BRINK_ASSIGN_OR_RETURN(auto dims,
                           broadcast_dims(ctx, {&ctx.input_type(0), &ctx.input_type(3)}));
    ctx.set_output(0, TensorType(ctx.input_dtype(0), std::move(dims)));
    return Status::ok();
  };
  d.create = [combine](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([combine](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(3);
      Tensor& c = ctx.output(0);
      const float sa = scalar_f(ctx.input(1)), sb = scalar_f(ctx.input(4)),
                  sc = scalar_f(ctx.input(6));
      const int32_t za = scalar_zp(ctx, 2), zb = scalar_zp(ctx, 5), zc = scalar_zp(ctx, 7);
      visit_8bit(a.dtype(), [&]<typename Q>() {
        const Q* pa = a.data<Q>();
        const Q* pb = b.data<Q>();
        Q* pc = c.data<Q>();
        StridedIterator it(c.shape(), {broadcast_strides(a.shape(), c.shape()),
                                       broadcast_strides(b.shape(), c.shape())});
        for (int64_t i = 0; !it.done(); it.next(), ++i)
          pc[i] = saturate<Q>(std::nearbyint(
              combine(int32_t(pa[it.offset(0)]) - za, sa, int32_t(pb[it.offset(1)]) - zb, sb, sc) +
              static_cast<float>(zc)));
      });
      return Status::ok();
    });
  };
  return d;
}

// QLinearSigmoid / QLinearLeakyRelu: X, X_scale, X_zp, Y_scale, Y_zp; a 256-entry table like
// ORT (dequantize, apply f in float, quantize).
template <typename F>
OpDef qlinear_lookup(const std::string& name, F f) {
  OpDef d;
  d.op_type = name;
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "X", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 3}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    for (size_t i : {1, 2, 3, 4})
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, i, "scales and zero points"));
    for (size_t i : {2, 4}) BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, i, 0, "zero point", "X"));
    return propagate_input_type(ctx);
  };
  d.create = [f](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const float alpha = c.node.attr_float("alpha", 0.01f);
    return make_kernel([f, alpha](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const float sx = scalar_f(ctx.input(1)), sy = scalar_f(ctx.input(3));
      const int32_t zx = scalar_zp(ctx, 2), zy = scalar_zp(ctx, 4);
      visit_8bit(x.dtype(), [&]<typename Q>() {
        Q table[256];
        for (int v = std::numeric_limits<Q>::lowest(); v <= std::numeric_limits<Q>::max(); ++v)
          table[static_cast<uint8_t>(v)] =
              quantize_value<Q, float>(f(sx * static_cast<float>(v - zx), alpha), sy, zy);
        const Q* in = x.data<Q>();
        Q* out = ctx.output(0).data<Q>();
        for (int64_t i = 0; i < x.numel(); ++i) out[i] = table[static_cast<uint8_t>(in[i])];
      });
      return Status::ok();
    });
  };
  return d;
}

// QLinearConcat: Y_scale, Y_zp, then (X, X_scale, X_zp) per input.
OpDef qlinear_concat() {
  OpDef d;
  d.op_type = "QLinearConcat";
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    const size_t n = ctx.num_inputs();
    if (n < 5 || (n - 2) % 3 != 0)
      return ctx.invalid(
          "expected Y_scale, Y_zero_point and then (tensor, scale, zero point) triples, found " +
          std::to_string(n) + " inputs");
    BRINK_RETURN_IF_ERROR(require_float_input(ctx, 0, "Y_scale"));
    BRINK_RETURN_IF_ERROR(
        require_dtype_in(ctx, 1, "Y_zero_point", {DataType::kUInt8, DataType::kInt8}));
    const DataType q = ctx.input_dtype(1);
    const ir::Attribute* axis_attr = ctx.node().attr("axis");
    if (!axis_attr) return ctx.invalid("attribute 'axis' is required");
    std::optional<std::vector<Dim>> out;
    int64_t axis = 0;
    bool axis_unknown = false;
    for (size_t t = 2; t < n; t += 3) {
      if (!ctx.has_input(t) || ctx.input_dtype(t) != q)
        return ctx.invalid("input " + std::to_string(t) + " must have element type " + dt(q));
      BRINK_RETURN_IF_ERROR(require_float_input(ctx, t + 1, "input scale"));
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, t + 1, "input scale"));
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, t + 2, "input zero point"));
      BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, t + 2, 1, "input zero point", "Y_zero_point"));
      const TensorType& tt = ctx.input_type(t);
      if (!tt.dims) continue;
      if (!out) {
        BRINK_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, axis_attr->i, tt.rank()));
        out = *tt.dims;
        continue;
      }
      if (tt.rank() != static_cast<int64_t>(out->size()))
        return ctx.invalid("concatenated inputs have different ranks");
      for (size_t i = 0; i < out->size(); ++i) {
        Dim& o = (*out)[i];
        const Dim& x = (*tt.dims)[i];
        if (static_cast<int64_t>(i) == axis) {
          if (o.known() && x.known())
            o = Dim(o.value + x.value);
          else
            axis_unknown = true;
        } else if (o.known() && x.known() && o.value != x.value) {
          return ctx.invalid("concatenated inputs differ in dim " + std::to_string(i) + ": " +
                             std::to_string(o.value) + " vs " + std::to_string(x.value));
        } else if (!o.known() && x.known()) {
          o = x;
        }
      }
    }
    bool all_ranked = true;
    for (size_t t = 2; t < n; t += 3) all_ranked = all_ranked && ctx.input_type(t).dims.has_value();
    if (out && (axis_unknown || !all_ranked)) (*out)[static_cast<size_t>(axis)] = Dim();
    ctx.set_output(0, TensorType(q, out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    return make_kernel([axis_attr](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, y.rank());
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= y.dim(i);
      for (int64_t i = axis + 1; i < y.rank(); ++i) inner *= y.dim(i);
      const int64_t out_pitch = y.dim(axis) * inner;
      const float sy = scalar_f(ctx.input(0));
      const int32_t zy = scalar_zp(ctx, 1);
      visit_8bit(y.dtype(), [&]<typename Q>() {
        Q* out = y.data<Q>();
        int64_t col = 0;
        for (size_t t = 2; t < ctx.num_inputs(); t += 3) {
          const Tensor& x = ctx.input(t);
          const float sx = scalar_f(ctx.input(t + 1));
          const int32_t zx = scalar_zp(ctx, t + 2);
          Q table[256];
          for (int v = std::numeric_limits<Q>::lowest(); v <= std::numeric_limits<Q>::max(); ++v)
            table[static_cast<uint8_t>(v)] =
                sx == sy && zx == zy
                    ? static_cast<Q>(v)
                    : quantize_value<Q, float>(sx * static_cast<float>(v - zx), sy, zy);
          const int64_t pitch = x.dim(axis) * inner;
          const Q* in = x.data<Q>();
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t j = 0; j < pitch; ++j)
              out[o * out_pitch + col + j] = table[static_cast<uint8_t>(in[o * pitch + j])];
          col += pitch;
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- com.microsoft: pooling ------------------------------------------------------------

// QLinearGlobalAveragePool integer path (MLAS): sum - zp * size, times
// x_scale / (y_scale * size), rounded, plus the output zero point.
template <typename Q>
void global_avg_pool_q(const Q* x, Q* y, int64_t N, int64_t C, int64_t S, bool channels_last,
                       float sx, int32_t zx, float sy, int32_t zy) {
  const float mult = sx / (sy * static_cast<float>(S));
  const int32_t bias = -zx * static_cast<int32_t>(S);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      int32_t acc = bias;
      if (channels_last)
        for (int64_t s = 0; s < S; ++s) acc += x[(n * S + s) * C + c];
      else
        for (int64_t s = 0; s < S; ++s) acc += x[(n * C + c) * S + s];
      y[n * C + c] = requantize<Q>(acc, mult, zy);
    }
}

OpDef qlinear_global_average_pool() {
  OpDef d;
  d.op_type = "QLinearGlobalAveragePool";
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "X", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 3}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    for (size_t i : {1, 2, 3, 4})
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, i, "scales and zero points"));
    for (size_t i : {2, 4}) BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, i, 0, "zero point", "X"));
    const TensorType& xt = ctx.input_type(0);
    if (!xt.dims) {
      ctx.set_output(0, TensorType(xt.dtype, std::nullopt));
      return Status::ok();
    }
    if (xt.rank() < 3)
      return ctx.invalid("X has rank " + std::to_string(xt.rank()) + ", expected >= 3");
    const bool cl = ctx.node().attr_int("channels_last", 0) != 0;
    std::vector<Dim> out = *xt.dims;
    const size_t first = cl ? 1 : 2, last = first + out.size() - 2;
    for (size_t i = first; i < last; ++i) out[i] = Dim(1);
    ctx.set_output(0, xt.dtype, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool cl = c.node.attr_int("channels_last", 0) != 0;
    // uint8 channels-last (what the NHWC layout pass makes of a quantized CNN's head): the
    // kernel sums all channels of a pixel at once (kernels/qpool.h, the same formula).
    const bool fast = cl && kernels::fast_kernels_enabled() && c.input_dtype(0) == DataType::kUInt8;
    const Isa isa = c.isa;
    return make_kernel([cl, fast, isa](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t N = x.dim(0), C = cl ? x.dim(x.rank() - 1) : x.dim(1);
      const int64_t S = C && N ? x.numel() / (N * C) : 0;
      if (fast) {
        kernels::qglobal_avg_pool_nhwc_u8(N, S, C, x.data<uint8_t>(), scalar_f(ctx.input(1)),
                                          scalar_zp(ctx, 2), ctx.output(0).data<uint8_t>(),
                                          scalar_f(ctx.input(3)), scalar_zp(ctx, 4),
                                          ctx.thread_pool(), isa);
        return Status::ok();
      }
      visit_8bit(x.dtype(), [&]<typename Q>() {
        global_avg_pool_q<Q>(x.data<Q>(), ctx.output(0).data<Q>(), N, C, S, cl,
                             scalar_f(ctx.input(1)), scalar_zp(ctx, 2), scalar_f(ctx.input(3)),
                             scalar_zp(ctx, 4));
      });
      return Status::ok();
    });
  };
  return d;
}

struct PoolAttrs {
  std::string auto_pad;
  std::vector<int64_t> kernel, strides, pads;
  bool ceil_mode = false, count_include_pad = false, channels_last = false;
};

// ORT's PoolAttributes output size (ceil mode computed through float like ORT), also
// rewriting pads for auto_pad.
void pool_dim(const PoolAttrs& a, size_t i, int64_t in, int64_t* out, int64_t* pb, int64_t* pe) {
  const int64_t k = a.kernel[i], s = a.strides[i];
  auto size = [&](int64_t pad_total) {
    const float v = static_cast<float>(in + pad_total - (k - 1) - 1) / static_cast<float>(s) + 1;
    return static_cast<int64_t>(a.ceil_mode ? std::ceil(v) : v);
  };
  if (a.auto_pad == "VALID") {
    *pb = *pe = 0;
    *out = size(0);
  } else if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    const int64_t target = (in + s - 1) / s;
    const int64_t needed = (target - 1) * s + k - in;
    *pb = a.auto_pad == "SAME_LOWER" ? (needed + 1) / 2 : needed / 2;
    *pe = needed - *pb;
    *out = size(needed);
  } else {
    *pb = a.pads[i];
    *pe = a.pads[i + a.kernel.size()];
    *out = size(*pb + *pe);
  }
}

OpDef qlinear_average_pool() {
  OpDef d;
  d.op_type = "QLinearAveragePool";
  d.domain = kMsDomain;
  d.since_version = 1;
  auto read = [](const ir::Node& n, size_t nsp, PoolAttrs* a) -> Status {
    a->auto_pad = n.attr_string("auto_pad", "NOTSET");
    a->kernel = n.attr_ints("kernel_shape");
    a->strides = n.attr_ints("strides");
    a->pads = n.attr_ints("pads");
    a->ceil_mode = n.attr_int("ceil_mode", 0) != 0;
    a->count_include_pad = n.attr_int("count_include_pad", 0) != 0;
    a->channels_last = n.attr_int("channels_last", 0) != 0;
    const std::string where = n.describe();
    if (a->kernel.size() != nsp)
      return invalid_model(where + ": kernel_shape has " + std::to_string(a->kernel.size()) +
                           " values, expected " + std::to_string(nsp));
    if (a->strides.empty()) a->strides.assign(nsp, 1);
    if (a->pads.empty()) a->pads.assign(2 * nsp, 0);
    if (a->strides.size() != nsp || a->pads.size() != 2 * nsp)
      return invalid_model(where + ": strides / pads do not match the " + std::to_string(nsp) +
                           " spatial dims");
    for (int64_t v : a->kernel)
      if (v < 1) return invalid_model(where + ": kernel_shape values must be >= 1");
    for (int64_t v : a->strides)
      if (v < 1) return invalid_model(where + ": strides must be >= 1");
    if (a->auto_pad != "NOTSET" && a->auto_pad != "VALID" && a->auto_pad != "SAME_UPPER" &&
        a->auto_pad != "SAME_LOWER")
      return invalid_model(where + ": auto_pad '" + a->auto_pad + "' is not supported");
    return Status::ok();
  };
  d.infer = [read](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "X", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 3}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    for (size_t i : {1, 2, 3, 4})
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, i, "scales and zero points"));
    for (size_t i : {2, 4}) BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, i, 0, "zero point", "X"));
    const TensorType& xt = ctx.input_type(0);
    if (!xt.dims) {
      ctx.set_output(0, TensorType(xt.dtype, std::nullopt));
      return Status::ok();
    }
    if (xt.rank() < 3)
      return ctx.invalid("X has rank " + std::to_string(xt.rank()) + ", expected >= 3");
    const size_t nsp = static_cast<size_t>(xt.rank()) - 2;
    PoolAttrs a;
    BRINK_RETURN_IF_ERROR(read(ctx.node(), nsp, &a));
    std::vector<Dim> out = *xt.dims;
    const size_t first = a.channels_last ? 1 : 2;
    for (size_t i = 0; i < nsp; ++i) {
      const Dim& in = (*xt.dims)[first + i];
      if (!in.known()) {
        out[first + i] = Dim();
        continue;
      }
      int64_t o, pb, pe;
      pool_dim(a, i, in.value, &o, &pb, &pe);
      if (o < 1)
        return ctx.invalid("pooling output dim " + std::to_string(i) + " would be " +
                           std::to_string(o));
      out[first + i] = Dim(o);
    }
    ctx.set_output(0, xt.dtype, std::move(out));
    return Status::ok();
  };
  d.create = [read](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    PoolAttrs a;
    if (!c.input_types.empty() && c.input_types[0] && c.input_types[0]->rank() >= 3)
      BRINK_RETURN_IF_ERROR(read(c.node, static_cast<size_t>(c.input_types[0]->rank()) - 2, &a));
    const ir::Node node = c.node;
    return make_kernel([read, node](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const size_t nsp = static_cast<size_t>(x.rank()) - 2;
      PoolAttrs a;
      BRINK_RETURN_IF_ERROR(read(node, nsp, &a));
      const bool cl = a.channels_last;
      const int64_t N = x.dim(0), C = cl ? x.dim(x.rank() - 1) : x.dim(1);
      Shape in_sp, out_sp;
      for (size_t i = 0; i < nsp; ++i) {
        in_sp.push_back(x.dim(static_cast<int64_t>(i + (cl ? 1 : 2))));
        out_sp.push_back(y.dim(static_cast<int64_t>(i + (cl ? 1 : 2))));
      }
      std::vector<int64_t> pb(nsp), pe(nsp);
      bool global = true;
      for (size_t i = 0; i < nsp; ++i) {
        int64_t o;
        pool_dim(a, i, in_sp[i], &o, &pb[i], &pe[i]);
        global = global && a.kernel[i] == in_sp[i] && pb[i] == 0 && pe[i] == 0;
      }
      const int64_t S = shape_numel(in_sp), OS = shape_numel(out_sp);
      const float sx = scalar_f(ctx.input(1)), sy = scalar_f(ctx.input(3));
      const int32_t zx = scalar_zp(ctx, 2), zy = scalar_zp(ctx, 4);
      visit_8bit(x.dtype(), [&]<typename Q>() {
        const Q* in = x.data<Q>();
        Q* out = y.data<Q>();
        // ORT switches to its integer global-average kernel when the window is the image.
        if (global) {
          global_avg_pool_q<Q>(in, out, N, C, S, cl, sx, zx, sy, zy);
          return;
        }
        std::vector<float> deq(static_cast<size_t>(x.numel()));
        for (int64_t i = 0; i < x.numel(); ++i)
          deq[static_cast<size_t>(i)] = sx * static_cast<float>(int32_t(in[i]) - zx);
        const std::vector<int64_t> in_strides = strides_of(in_sp);
        const int64_t kernel_size = shape_numel(a.kernel);
        std::vector<int64_t> oidx(nsp), lo(nsp), hi(nsp), idx(nsp);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t c = 0; c < C; ++c) {
            // Element (n, c, s) lives at base + s * step in either layout.
            const int64_t base = cl ? n * S * C + c : (n * C + c) * S, step = cl ? C : 1;
            const int64_t obase = cl ? n * OS * C + c : (n * C + c) * OS;
            std::fill(oidx.begin(), oidx.end(), 0);
            for (int64_t p = 0; p < OS; ++p) {
              int64_t count = 1;
              bool empty = false;
              for (size_t i = 0; i < nsp; ++i) {
                const int64_t start = oidx[i] * a.strides[i] - pb[i];
                hi[i] = std::min(start + a.kernel[i], in_sp[i]);
                lo[i] = std::max<int64_t>(start, 0);
                count *= hi[i] - lo[i];
                empty = empty || hi[i] <= lo[i];
              }
              float sum = 0.f;
              if (!empty) {
                idx = lo;
                while (true) {
                  int64_t off = 0;
                  for (size_t i = 0; i < nsp; ++i) off += idx[i] * in_strides[i];
                  sum += deq[static_cast<size_t>(base + off * step)];
                  size_t i = nsp;
                  while (i-- > 0) {
                    if (++idx[i] < hi[i]) break;
                    idx[i] = lo[i];
                  }
                  if (i == static_cast<size_t>(-1)) break;
                }
              }
              const float avg = sum / static_cast<float>(a.count_include_pad ? kernel_size : count);
              out[obase + p * step] = quantize_value_zp_first<Q>(avg, sy, zy);
              for (size_t i = nsp; i-- > 0;) {
                if (++oidx[i] < out_sp[i]) break;
                oidx[i] = 0;
              }
            }
          }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- com.microsoft: QGemm, MatMulIntegerToFloat, DynamicQuantizeMatMul -------------------

// B packed for the int8 GEMM: the package's blob when the node has one (its B then holds no
// data), else packed now from `b`.
Result<kernels::PackedQB> packed_b(const KernelCreateContext& c, const int8_t* b, int64_t k,
                                   int64_t n, int64_t ldb, bool transposed, kernels::QIsa isa) {
  if (c.prepacked == nullptr) return kernels::pack_qb(b, k, n, ldb, transposed, isa);
  auto adopted =
      kernels::adopt_qb(c.prepacked->layout, c.prepacked->data, c.prepacked->floats * sizeof(float),
                        c.prepacked->owner, k, n, isa);
  if (!adopted.is_ok()) return adopted.status().with_context(c.node.describe());
  return adopted;
}

// The int8 GEMM (kernels/qgemm.h) behind the fast QGemm and MatMulIntegerToFloat kernels:
// uint8 A times a constant int8 B (zero points 0) packed once at create, or adopted from a
// .brink package's blob (packed_b), then one epilogue:
//   acc = (A - a_zero) . B + bias[n]                            (exact int32; bias optional)
//   uint8: y = clamp(nearbyint(acc * scale[n]) + y_zero)        (requantize)
//   float: y = float(acc) * scale[n] [+ float_bias[n]]          (the sum after the rounded
//                                                                product, as the references)
// scale[n] is fixed at create (QGemm: alpha * a_scale * b_scale[n] [/ y_scale]) or, when
// a_scale is a run-time input (MatMulIntegerToFloat), a_scale * b_scale[n] per run.
struct FastQGemmSpec {
  size_t b_input = 0;             // the input B comes from (not read at run: B is packed)
  bool a_matrix = true;           // A is [M, K] (QGemm); else any rank >= 1, last dim K
  bool quantized = false;         // uint8 output (requantize); else float
  std::vector<int32_t> bias;      // int32, added to acc; empty: none
  std::vector<float> float_bias;  // float output: added after the scale; empty: none
  std::vector<float> scale;       // per column (or one): the multiplier, or b_scale alone
  int a_scale_input = -1;         // >= 0: a_scale is read from this input at run time
  int a_zero_input = -1;          // >= 0: a_zero is read from this input at run time
  uint8_t a_zero = 0;             // otherwise the fixed zero point of A
  int32_t y_zero = 0;             // uint8 output's zero point
  std::string where;
};

class FastQGemm final : public Kernel {
 public:
  FastQGemm(kernels::PackedQB b, FastQGemmSpec spec)
      : b_(std::move(b)), spec_(std::move(spec)), run_scale_(static_cast<size_t>(b_.n())) {}

  // B lives packed in the kernel (a package stores it so); the scales, zero points and biases
  // are read at create or run (and stay in a package: they are small).
  bool reads_input_data(size_t i) const override { return i != spec_.b_input; }
  std::optional<PackedWeights> packed_weights() const override {
    return PackedWeights{b_.packed_layout(),
                         static_cast<const float*>(b_.blob()),
                         b_.blob_bytes() / sizeof(float),
                         {}};
  }

  Status run(KernelContext& ctx) override {
    const Tensor& a = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t k = b_.k(), n = b_.n();
    if (spec_.a_matrix && (a.rank() != 2 || a.dim(1) != k))
      return invalid_argument(spec_.where + ": A has shape " + shape_to_string(a.shape()) +
                              ", expected [M, " + std::to_string(k) + "]");
    if (!spec_.a_matrix && (a.rank() < 1 || a.dim(a.rank() - 1) != k))
      return invalid_argument(spec_.where + ": A has shape " + shape_to_string(a.shape()) +
                              ", expected a last dim of " + std::to_string(k));
    const int64_t m = spec_.a_matrix ? a.dim(0) : k > 0 ? a.numel() / k : 0;
    if (y.numel() != m * n)
      return internal_error(spec_.where + ": output shape " + shape_to_string(y.shape()) +
                            " does not match the product");
    kernels::QuantOutput out;
    out.scale = spec_.scale.data();
    out.per_channel = spec_.scale.size() != 1;
    if (spec_.a_scale_input >= 0) {
      const float a_scale = scalar_f(ctx.input(static_cast<size_t>(spec_.a_scale_input)));
      for (int64_t j = 0; j < n; ++j)
        run_scale_[static_cast<size_t>(j)] =
            a_scale * spec_.scale[spec_.scale.size() == 1 ? 0 : static_cast<size_t>(j)];
      out.scale = run_scale_.data();
      out.per_channel = true;
    }
    out.zero_point = spec_.y_zero;
    out.float_bias = spec_.float_bias.empty() ? nullptr : spec_.float_bias.data();
    const uint8_t a_zero =
        spec_.a_zero_input >= 0
            ? static_cast<uint8_t>(scalar_zp(ctx, static_cast<size_t>(spec_.a_zero_input)))
            : spec_.a_zero;
    const int32_t* bias = spec_.bias.empty() ? nullptr : spec_.bias.data();
    if (spec_.quantized)
      kernels::qgemm_u8(m, a.data<uint8_t>(), k, a_zero, b_, bias, out, y.data<uint8_t>(), n,
                        ctx.thread_pool());
    else
      kernels::qgemm_f32(m, a.data<uint8_t>(), k, a_zero, b_, bias, out, y.data<float>(), n,
                         ctx.thread_pool());
    return Status::ok();
  }

 private:
  kernels::PackedQB b_;
  FastQGemmSpec spec_;
  std::vector<float> run_scale_;  // a_scale * b_scale[n], per run (a_scale_input >= 0)
};

// QGemm on FastQGemm for uint8 A (transA = 0) and a constant int8 B with zero points 0,
// constant scales and an int32 C of N values (the layout the QDQ pass makes of a quantized
// CNN's classifier): acc = (A - a_zero) . B + C, then y = acc * mult[n] (float output) or
// clamp(nearbyint(acc * mult[n]) + y_zero) (uint8), with mult[n] = alpha * a_scale *
// b_scale[n] [/ y_scale] computed like the reference: bit for bit the same.
Result<std::unique_ptr<Kernel>> try_fast_qgemm(const KernelCreateContext& c) {
  const auto constant = [&](size_t i) -> const Tensor* {
    return c.has_input(i) && i < c.constant_inputs.size() ? c.constant_inputs[i] : nullptr;
  };
  const Tensor *as = constant(1), *az = constant(2), *b = constant(3), *bs = constant(4),
               *bz = constant(5), *cb = constant(6), *ys = constant(7), *yz = constant(8);
  const bool quantized = c.has_input(7);
  if (!kernels::fast_kernels_enabled() || c.input_dtype(0) != DataType::kUInt8 ||
      c.node.attr_int("transA", 0) != 0 || as == nullptr || (c.has_input(2) && az == nullptr) ||
      b == nullptr || b->dtype() != DataType::kInt8 || b->rank() != 2 || bs == nullptr ||
      (c.has_input(5) && bz == nullptr) || (c.has_input(6) && cb == nullptr) ||
      (quantized && ys == nullptr) || (c.has_input(8) && yz == nullptr) || c.output_types.empty() ||
      c.output_types[0].dtype != (quantized ? DataType::kUInt8 : DataType::kFloat32))
    return std::unique_ptr<Kernel>();
  const bool tb = c.node.attr_int("transB", 0) != 0;
  const int64_t k = tb ? b->dim(1) : b->dim(0), n = tb ? b->dim(0) : b->dim(1);
  if (bz != nullptr)
    for (int64_t i = 0; i < bz->numel(); ++i)
      if (bz->element_as_int64(i) != 0) return std::unique_ptr<Kernel>();
  if ((bs->numel() != 1 && !(bs->rank() == 1 && bs->numel() == n)) ||
      (cb != nullptr && (cb->dtype() != DataType::kInt32 || cb->numel() != n ||
                         !(cb->rank() == 1 || (cb->rank() == 2 && cb->dim(0) == 1)))))
    return std::unique_ptr<Kernel>();
  const float alpha = c.node.attr_float("alpha", 1.0f), sa = scalar_f(*as);
  const std::vector<float> sb = floats_of(*bs);
  std::vector<float> mult(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    mult[static_cast<size_t>(j)] = alpha * sa * sb[sb.size() == 1 ? 0 : static_cast<size_t>(j)];
    if (quantized) mult[static_cast<size_t>(j)] /= scalar_f(*ys);
  }
  FastQGemmSpec spec;
  spec.b_input = 3;
  spec.quantized = quantized;
  if (cb != nullptr) spec.bias.assign(cb->data<int32_t>(), cb->data<int32_t>() + n);
  spec.scale = std::move(mult);
  spec.a_zero = az == nullptr ? 0 : static_cast<uint8_t>(az->element_as_int64(0));
  spec.y_zero = yz == nullptr ? 0 : static_cast<int32_t>(yz->element_as_int64(0));
  spec.where = c.node.describe();
  const kernels::QIsa isa = kernels::qisa_for(c.isa);
  BRINK_ASSIGN_OR_RETURN(kernels::PackedQB packed,
                         packed_b(c, b->data<int8_t>(), k, n, tb ? k : n, tb, isa));
  return std::unique_ptr<Kernel>(std::make_unique<FastQGemm>(std::move(packed), std::move(spec)));
}

// QGemm: A, a_scale, a_zp, B, b_scale, b_zp, C (i32, optional), y_scale (optional), y_zp
// (optional). Without y_scale the output is float: (acc + C) * alpha * a_scale * b_scale.
OpDef qgemm() {
  OpDef d;
  d.op_type = "QGemm";
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "A", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 3, "B", {DataType::kUInt8, DataType::kInt8}));
    for (size_t i : {1, 4}) BRINK_RETURN_IF_ERROR(require_float_input(ctx, i, "scale"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 1, "a_scale"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 2, "a_zero_point"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 2, 0, "a_zero_point", "A"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 5, 3, "b_zero_point", "B"));
    if (ctx.has_input(6) && ctx.input_dtype(6) != DataType::kInt32)
      return ctx.invalid("C must be i32, found " + dt(ctx.input_dtype(6)));
    DataType out = DataType::kFloat32;
    if (ctx.has_input(7)) {
      BRINK_RETURN_IF_ERROR(require_float_input(ctx, 7, "y_scale"));
      BRINK_RETURN_IF_ERROR(check_scalar(ctx, 7, "y_scale"));
      out = ctx.input_dtype(0);
      if (ctx.has_input(8)) {
        BRINK_RETURN_IF_ERROR(
            require_dtype_in(ctx, 8, "y_zero_point", {DataType::kUInt8, DataType::kInt8}));
        BRINK_RETURN_IF_ERROR(check_scalar(ctx, 8, "y_zero_point"));
        out = ctx.input_dtype(8);
      }
    } else if (ctx.has_input(8)) {
      return ctx.invalid("y_zero_point is given without y_scale");
    }
    const TensorType& at = ctx.input_type(0);
    const TensorType& bt = ctx.input_type(3);
    if ((at.dims && at.rank() != 2) || (bt.dims && bt.rank() != 2))
      return ctx.invalid("A and B must be 2-D");
    const bool ta = ctx.node().attr_int("transA", 0) != 0,
               tb = ctx.node().attr_int("transB", 0) != 0;
    Dim m, n, ka, kb;
    if (at.dims) m = (*at.dims)[ta ? 1 : 0], ka = (*at.dims)[ta ? 0 : 1];
    if (bt.dims) n = (*bt.dims)[tb ? 0 : 1], kb = (*bt.dims)[tb ? 1 : 0];
    if (ka.known() && kb.known() && ka.value != kb.value)
      return ctx.invalid("inner dimensions differ: A " + at.to_string() + ", B " + bt.to_string());
    ctx.set_output(0, out, std::vector<Dim>{m, n});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> fast, try_fast_qgemm(c));
    if (fast != nullptr) return fast;
    const bool ta = c.node.attr_int("transA", 0) != 0, tb = c.node.attr_int("transB", 0) != 0;
    const float alpha = c.node.attr_float("alpha", 1.0f);
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(3);
      const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1),
                    N = tb ? b.dim(0) : b.dim(1);
      const Tensor* bzp = ctx.has_input(5) ? &ctx.input(5) : nullptr;
      const Tensor& bs = ctx.input(4);
      for (const Tensor* p : {bzp, &bs})
        if (p && p->numel() != 1 && !(p->rank() == 1 && p->dim(0) == N))
          return invalid_model(where + ": b's scale and zero point must be scalars or 1-D with N=" +
                               std::to_string(N) + " elements");
      // Row-major int32 copies of A [M, K] and B [K, N] minus their zero points.
      const int32_t za = scalar_zp(ctx, 2);
      const std::vector<int32_t> bz = bzp ? ints_of(*bzp) : std::vector<int32_t>{0};
      std::vector<int32_t> av(static_cast<size_t>(M * K)), bv(static_cast<size_t>(K * N));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k)
          av[static_cast<size_t>(i * K + k)] =
              static_cast<int32_t>(a.element_as_int64(ta ? k * M + i : i * K + k)) - za;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j)
          bv[static_cast<size_t>(k * N + j)] =
              static_cast<int32_t>(b.element_as_int64(tb ? j * K + k : k * N + j)) -
              bz[bz.size() == 1 ? 0 : static_cast<size_t>(j)];
      std::vector<int32_t> acc(static_cast<size_t>(M * N));
      gemm_i32(av.data(), bv.data(), acc.data(), M, K, N);
      if (ctx.has_input(6)) {
        const Tensor& cb = ctx.input(6);
        if (!broadcasts_onto(cb.shape(), Shape{M, N}))
          return invalid_model(where + ": C of shape " + shape_to_string(cb.shape()) +
                               " does not broadcast to [" + std::to_string(M) + ", " +
                               std::to_string(N) + "]");
        const int32_t* cp = cb.data<int32_t>();
        StridedIterator it(Shape{M, N}, {broadcast_strides(cb.shape(), Shape{M, N})});
        for (size_t i = 0; !it.done(); it.next(), ++i)
          acc[i] = static_cast<int32_t>(static_cast<uint32_t>(acc[i]) +
                                        static_cast<uint32_t>(cp[it.offset(0)]));
      }
      const float sa = scalar_f(ctx.input(1));
      const std::vector<float> sb = floats_of(bs);
      std::vector<float> mult(static_cast<size_t>(N));
      const bool quantized = ctx.has_input(7);
      for (int64_t j = 0; j < N; ++j) {
        mult[static_cast<size_t>(j)] = alpha * sa * sb[sb.size() == 1 ? 0 : static_cast<size_t>(j)];
        if (quantized) mult[static_cast<size_t>(j)] /= scalar_f(ctx.input(7));
      }
      Tensor& y = ctx.output(0);
      if (!quantized) {
        float* out = y.data<float>();
        for (int64_t i = 0; i < M * N; ++i)
          out[i] =
              static_cast<float>(acc[static_cast<size_t>(i)]) * mult[static_cast<size_t>(i % N)];
        return Status::ok();
      }
      const int32_t zy = scalar_zp(ctx, 8);
      visit_8bit(y.dtype(), [&]<typename Q>() {
        Q* out = y.data<Q>();
        for (int64_t i = 0; i < M * N; ++i)
          out[i] = requantize<Q>(acc[static_cast<size_t>(i)], mult[static_cast<size_t>(i % N)], zy);
      });
      return Status::ok();
    });
  };
  return d;
}

// Shared by MatMulIntegerToFloat and DynamicQuantizeMatMul: y = acc * (a_scale * b_scale[n])
// + bias[n], with B's scale and zero point per tensor or per column.
Status integer_matmul_to_float(KernelContext& ctx, const Tensor& a, int32_t a_zp, float a_scale,
                               const Tensor& b, const Tensor* b_zp, const Tensor& b_scale,
                               const Tensor* bias, const std::string& where) {
  std::optional<Tensor> zp_tensor;
  if (a_zp != 0) zp_tensor = Tensor::scalar<int32_t>(a_zp);
  MatMulPlan p;
  BRINK_ASSIGN_OR_RETURN(std::vector<int32_t> acc,
                         int_matmul(a, zp_tensor ? &*zp_tensor : nullptr, b, b_zp, where, &p));
  BRINK_RETURN_IF_ERROR(check_matmul_param(b_scale.shape(), p.out, where, "b_scale"));
  if (bias) BRINK_RETURN_IF_ERROR(check_matmul_param(bias->shape(), p.out, where, "bias"));
  const std::vector<float> sb = broadcast_floats(b_scale, b_scale.shape(), p.out);
  std::vector<float> bv;
  if (bias) bv = broadcast_floats(*bias, bias->shape(), p.out);
  Tensor& y = ctx.output(0);
  visit_dtype(y.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      T* out = y.data<T>();
      for (size_t i = 0; i < acc.size(); ++i) {
        float v = static_cast<float>(acc[i]) * (a_scale * sb[i]);
        if (bias) v += bv[i];
        out[i] = static_cast<T>(v);
      }
    }
  });
  return Status::ok();
}

// The integer MatMul of dynamically quantized transformers on FastQGemm: y = float(acc) *
// (a_scale * b_scale[n]) + bias[n], acc = (A - a_zero) . B, for uint8 A and a constant 2-D int8
// B with zero points 0 (what quantizers emit for weights); a_scale and a_zero are read per
// run, the float bias is added in the GEMM's epilogue. The same float operations as
// integer_matmul_to_float, so the two agree bit for bit.
Result<std::unique_ptr<Kernel>> try_fast_integer_matmul_to_float(const KernelCreateContext& c) {
  const auto constant = [&](size_t i) -> const Tensor* {
    return c.has_input(i) && i < c.constant_inputs.size() ? c.constant_inputs[i] : nullptr;
  };
  const Tensor *b = constant(1), *bs = constant(3), *bz = constant(5), *bias = constant(6);
  if (!kernels::fast_kernels_enabled() || c.input_dtype(0) != DataType::kUInt8 || b == nullptr ||
      b->dtype() != DataType::kInt8 || b->rank() != 2 || bs == nullptr ||
      bs->dtype() != DataType::kFloat32 || (c.has_input(5) && bz == nullptr) ||
      (c.has_input(6) && bias == nullptr) || c.output_types.empty() ||
      c.output_types[0].dtype != DataType::kFloat32)
    return std::unique_ptr<Kernel>();
  const int64_t k = b->dim(0), n = b->dim(1);
  if (bz != nullptr)
    for (int64_t i = 0; i < bz->numel(); ++i)
      if (bz->element_as_int64(i) != 0) return std::unique_ptr<Kernel>();
  if ((bs->numel() != 1 && !(bs->rank() == 1 && bs->numel() == n)) ||
      (bias != nullptr &&
       (bias->dtype() != DataType::kFloat32 || bias->rank() != 1 || bias->numel() != n)))
    return std::unique_ptr<Kernel>();
  const TensorType& at = *c.input_types[0];
  if (at.has_rank() && at.rank() < 2)
    return std::unique_ptr<Kernel>();  // 1-D A: the reference's promotion
  FastQGemmSpec spec;
  spec.b_input = 1;
  spec.a_matrix = false;
  spec.scale.assign(bs->data<float>(), bs->data<float>() + bs->numel());
  if (bias != nullptr) spec.float_bias.assign(bias->data<float>(), bias->data<float>() + n);
  spec.a_scale_input = 2;
  spec.a_zero_input = 4;
  spec.where = c.node.describe();
  const kernels::QIsa isa = kernels::qisa_for(c.isa);
  BRINK_ASSIGN_OR_RETURN(kernels::PackedQB packed,
                         packed_b(c, b->data<int8_t>(), k, n, n, false, isa));
  return std::unique_ptr<Kernel>(std::make_unique<FastQGemm>(std::move(packed), std::move(spec)));
}

OpDef matmul_integer_to_float() {
  OpDef d;
  d.op_type = "MatMulIntegerToFloat";
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 0, "A", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 1, "B", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(
        require_dtype_in(ctx, 2, "a_scale", {DataType::kFloat32, DataType::kFloat16}));
    if (!ctx.has_input(3) || ctx.input_dtype(3) != ctx.input_dtype(2))
      return ctx.invalid("b_scale must be present with a_scale's element type");
    if (ctx.has_input(6) && ctx.input_dtype(6) != ctx.input_dtype(2))
      return ctx.invalid("bias must have a_scale's element type");
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 2, "a_scale (per-tensor only)"));
    BRINK_RETURN_IF_ERROR(check_scalar(ctx, 4, "a_zero_point (per-tensor only)"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 4, 0, "a_zero_point", "A"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 5, 1, "b_zero_point", "B"));
    BRINK_ASSIGN_OR_RETURN(auto dims, matmul_dims(ctx, ctx.input_type(0), ctx.input_type(1)));
    ctx.set_output(0, TensorType(ctx.input_dtype(2), std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> fast, try_fast_integer_matmul_to_float(c));
    if (fast != nullptr) return fast;
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      return integer_matmul_to_float(ctx, ctx.input(0), scalar_zp(ctx, 4), scalar_f(ctx.input(2)),
                                     ctx.input(1), ctx.has_input(5) ? &ctx.input(5) : nullptr,
                                     ctx.input(3), ctx.has_input(6) ? &ctx.input(6) : nullptr,
                                     where);
    });
  };
  return d;
}

OpDef dynamic_quantize_matmul() {
  OpDef d;
  d.op_type = "DynamicQuantizeMatMul";
  d.domain = kMsDomain;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_float_input(ctx, 0, "A"));
    BRINK_RETURN_IF_ERROR(require_dtype_in(ctx, 1, "B", {DataType::kUInt8, DataType::kInt8}));
    BRINK_RETURN_IF_ERROR(require_float_input(ctx, 2, "b_scale"));
    BRINK_RETURN_IF_ERROR(require_same_dtype(ctx, 3, 1, "b_zero_point", "B"));
    if (ctx.has_input(4)) BRINK_RETURN_IF_ERROR(require_float_input(ctx, 4, "bias"));
    BRINK_ASSIGN_OR_RETURN(auto dims, matmul_dims(ctx, ctx.input_type(0), ctx.input_type(1)));
    ctx.set_output(0, TensorType(DataType::kFloat32, std::move(dims)));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const std::string where = c.node.describe();
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      float scale;
      uint8_t zp;
      dynamic_u8_params(a.data<float>(), a.numel(), &scale, &zp);
      Tensor aq = Tensor::empty(DataType::kUInt8, a.shape());
      const float* in = a.data<float>();
      uint8_t* q = aq.data<uint8_t>();
      for (int64_t i = 0; i < a.numel(); ++i)
        q[i] = quantize_value<uint8_t, float>(in[i], scale, zp);
      return integer_matmul_to_float(ctx, aq, zp, scale, ctx.input(1),
                                     ctx.has_input(3) ? &ctx.input(3) : nullptr, ctx.input(2),
                                     ctx.has_input(4) ? &ctx.input(4) : nullptr, where);
    });
  };
  return d;
}

}  // namespace

void register_quantized_ops(OpRegistry& r) {
  if constexpr (op_selected("", "QuantizeLinear")) r.add(quantize_linear(10, 12));
  if constexpr (op_selected("", "QuantizeLinear")) r.add(quantize_linear(13, 18));
  if constexpr (op_selected("", "QuantizeLinear")) r.add(quantize_linear(19, 20));
  if constexpr (op_selected("", "QuantizeLinear")) r.add(quantize_linear(21, 21));
  if constexpr (op_selected("", "DequantizeLinear")) r.add(dequantize_linear(10, 12));
  if constexpr (op_selected("", "DequantizeLinear")) r.add(dequantize_linear(13, 18));
  if constexpr (op_selected("", "DequantizeLinear")) r.add(dequantize_linear(19, 20));
  if constexpr (op_selected("", "DequantizeLinear")) r.add(dequantize_linear(21, 21));
  if constexpr (op_selected("", "DynamicQuantizeLinear")) r.add(dynamic_quantize_linear());
  if constexpr (op_selected("", "MatMulInteger")) r.add(matmul_integer());
  if constexpr (op_selected("", "ConvInteger")) r.add(conv_integer());
  if constexpr (op_selected("", "QLinearMatMul")) r.add(qlinear_matmul(10, 20));
  if constexpr (op_selected("", "QLinearMatMul")) r.add(qlinear_matmul(21, 21));
  if constexpr (op_selected("", "QLinearConv")) r.add(qlinear_conv());

  if constexpr (op_selected("com.microsoft", "QLinearAdd"))
    r.add(qlinear_binary("QLinearAdd", [](int32_t a, float sa, int32_t b, float sb, float sc) {
      return (sa * static_cast<float>(a) + sb * static_cast<float>(b)) / sc;
    }));
  if constexpr (op_selected("com.microsoft", "QLinearMul"))
    r.add(qlinear_binary("QLinearMul", [](int32_t a, float sa, int32_t b, float sb, float sc) {
      return static_cast<float>(a * b) * (sa * sb / sc);
    }));
  if constexpr (op_selected("com.microsoft", "QLinearSigmoid"))
    r.add(qlinear_lookup("QLinearSigmoid",
                         [](float x, float) { return 1.0f / (1.0f + std::exp(-x)); }));
  if constexpr (op_selected("com.microsoft", "QLinearLeakyRelu"))
    r.add(qlinear_lookup("QLinearLeakyRelu",
                         [](float x, float alpha) { return x >= 0 ? x : x * alpha; }));
  if constexpr (op_selected("com.microsoft", "QLinearConcat")) r.add(qlinear_concat());
  if constexpr (op_selected("com.microsoft", "QLinearGlobalAveragePool"))
    r.add(qlinear_global_average_pool());
  if constexpr (op_selected("com.microsoft", "QLinearAveragePool")) r.add(qlinear_average_pool());
  if constexpr (op_selected("com.microsoft", "QGemm")) r.add(qgemm());
  if constexpr (op_selected("com.microsoft", "MatMulIntegerToFloat"))
    r.add(matmul_integer_to_float());
  if constexpr (op_selected("com.microsoft", "DynamicQuantizeMatMul"))
    r.add(dynamic_quantize_matmul());
}

}  // namespace brink::ops
