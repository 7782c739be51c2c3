// Elementwise operators: unary math and activations, broadcasting binary arithmetic,
// comparisons and logic, variadic Sum/Mean/Max/Min, Where, Cast and CastLike.
//
// Every operand is read through one broadcasting loop (plan_broadcast + for_each_run): the
// output dims are collapsed so that same-shape, scalar, row-vector and per-channel operands
// run as long contiguous inner loops, and only the dims outside that run go through
// StridedIterator.
//
// float32 inputs take the fast kernels of src/kernels/elementwise.h instead (vectorized per
// ISA, threaded over large tensors) for the unary functions kernels::UnaryOp lists, Add, Sub,
// Mul, Div, PRelu, Pow with a constant exponent of 1, 2, 3 or 0.5, Clip, and variadic
// Max/Min/Sum/Mean; every other dtype, op or shape runs the reference kernels below, which
// are the fast ones' oracle in tests/unit/elementwise_fast_test.cc.
//
// In-place execution: every kernel here, reference or fast, may write its output over its
// first input or over any input of the output's shape and dtype: each element is read before
// the same output element is written and never read again. (Sum/Mean/Max/Min with three or
// more inputs that are all that same buffer fold through a temporary.)
//
// No input can trigger undefined behaviour: integer arithmetic wraps (two's complement, as
// NumPy and ORT do in practice), integer division and remainder by zero give 0 (as NumPy),
// and float -> integer conversion truncates toward zero with NaN and out-of-range values
// handled as x86-64 (and so ORT and NumPy) handle them (the ONNX spec leaves both undefined).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>

#include "kernels/elementwise.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

constexpr int kMaxOpset = 21;

// ---- dtype sets ------------------------------------------------------------------------
// A set of DataTypes as a bitmask over their ONNX codes, used to check inputs against the
// type constraints of one opset version.

using TypeSet = uint32_t;
constexpr TypeSet bit(DataType t) {
  return TypeSet{1} << static_cast<int>(t);
}

constexpr TypeSet kF32 = bit(DataType::kFloat32);
constexpr TypeSet kF32F64 = kF32 | bit(DataType::kFloat64);
constexpr TypeSet kF3 = kF32F64 | bit(DataType::kFloat16);  // float types before bf16 arrived
constexpr TypeSet kF4 = kF3 | bit(DataType::kBFloat16);
constexpr TypeSet kSInts =
    bit(DataType::kInt8) | bit(DataType::kInt16) | bit(DataType::kInt32) | bit(DataType::kInt64);
constexpr TypeSet kUInts = bit(DataType::kUInt8) | bit(DataType::kUInt16) | bit(DataType::kUInt32) |
                           bit(DataType::kUInt64);
constexpr TypeSet kInts = kSInts | kUInts;
constexpr TypeSet kI32I64 = bit(DataType::kInt32) | bit(DataType::kInt64);
constexpr TypeSet kI32I64U32U64 = kI32I64 | bit(DataType::kUInt32) | bit(DataType::kUInt64);
constexpr TypeSet kBoolT = bit(DataType::kBool);
constexpr TypeSet kNum3 = kF3 | kInts;
constexpr TypeSet kNum4 = kF4 | kInts;
constexpr TypeSet kAll3 = kNum3 | kBoolT;
constexpr TypeSet kAll4 = kNum4 | kBoolT;

bool in_set(TypeSet s, DataType t) {
  const int c = static_cast<int>(t);
  return c > 0 && c < 32 && ((s >> c) & 1u) != 0;
}

std::string set_names(TypeSet s) {
  std::string out;
  for (int c = 0; c < 32; ++c) {
    if (((s >> c) & 1u) == 0) continue;
    if (!out.empty()) out += ", ";
    out += dtype_long_name(static_cast<DataType>(c));
  }
  return out;
}

// Input `i` must be present and of a dtype the op accepts at this opset.
Status check_input(const InferContext& ctx, size_t i, TypeSet allowed) {
  const std::string which = "input " + std::to_string(i);
  if (!ctx.has_input(i)) return ctx.invalid(which + " is required but absent");
  const DataType t = ctx.input_dtype(i);
  if (in_set(allowed, t)) return Status::ok();
  if (t == DataType::kString)
    return ctx.unsupported_here(which + " is a string tensor; Brink does not support strings");
  const std::string msg = which + " has dtype " + dtype_long_name(t) + ", expected one of " +
                          set_names(allowed) + " at opset " + std::to_string(ctx.opset());
  return dtype_is_supported(t) ? ctx.invalid(msg) : ctx.unsupported_here(msg);
}

Status check_same_dtype(const InferContext& ctx, size_t i, size_t j) {
  if (ctx.input_dtype(i) == ctx.input_dtype(j)) return Status::ok();
  return ctx.invalid("inputs " + std::to_string(i) + " and " + std::to_string(j) +
                     " must have the same dtype, found " + dtype_long_name(ctx.input_dtype(i)) +
                     " and " + dtype_long_name(ctx.input_dtype(j)));
}

// ---- compile-time dtype categories ---------------------------------------------------------
// Kernels are instantiated only for the categories an op can see, which keeps code size
// down and lets functors use operations that do not exist for other types.

enum : unsigned { kCatF = 1, kCatS = 2, kCatU = 4, kCatB = 8 };
constexpr unsigned kCatInt = kCatS | kCatU;
constexpr unsigned kCatNum = kCatF | kCatInt;

template <typename T>
constexpr unsigned cat_of() {
  if constexpr (std::is_same_v<T, bool>)
    return kCatB;
  else if constexpr (std::is_floating_point_v<compute_t<T>>)
    return kCatF;
  else if constexpr (std::is_signed_v<T>)
    return kCatS;
  else
    return kCatU;
}
template <typename T, unsigned Cats>
inline constexpr bool in_cats = (cat_of<T>() & Cats) != 0;

// x < 0 without a "comparison is always false" warning for unsigned types.
template <typename C>
constexpr bool is_neg(C x) {
  if constexpr (std::is_unsigned_v<C>)
    return false;
  else
    return x < C(0);
}

template <typename T>
inline constexpr bool is_half_v = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// ---- value conversion ------------------------------------------------------------------

// Float -> integer conversion as x86-64 performs it, which is what ORT and NumPy produce
// there: truncate toward zero into a 32-bit or 64-bit register, where NaN and out-of-range
// values become that register's minimum ("integer indefinite"), then keep the low bits.
// Unsigned 32/64-bit targets take the upper half of their range through a subtraction, as
// compilers emit it. Emulated here so the result is the same on every platform and never
// undefined behaviour.
inline int32_t cvt_i32(double d) {
  return d > -2147483649.0 && d < 2147483648.0 ? static_cast<int32_t>(d)
                                               : std::numeric_limits<int32_t>::min();
}
inline int64_t cvt_i64(double d) {
  return d >= -9223372036854775808.0 && d < 9223372036854775808.0
             ? static_cast<int64_t>(d)
             : std::numeric_limits<int64_t>::min();
}
template <typename To>
To float_to_int(double d) {
  if constexpr (std::is_same_v<To, uint64_t>) {
    constexpr double k2p63 = 9223372036854775808.0;
    if (d >= k2p63) return static_cast<uint64_t>(cvt_i64(d - k2p63)) ^ (uint64_t{1} << 63);
    return static_cast<uint64_t>(cvt_i64(d));
  } else if constexpr (std::is_same_v<To, int64_t>) {
    return cvt_i64(d);
  } else if constexpr (std::is_same_v<To, uint32_t>) {
    constexpr double k2p31 = 2147483648.0;
    if (d >= k2p31) return static_cast<uint32_t>(cvt_i32(d - k2p31)) ^ (uint32_t{1} << 31);
    return static_cast<uint32_t>(cvt_i32(d));
  } else {
    return static_cast<To>(cvt_i32(d));
  }
}

// Converts one value between any two Brink element types (or from a compute type).
// Float -> integer: see float_to_int (in range it is static_cast, truncating toward zero).
// Integer -> integer keeps the low bits (two's complement), number -> bool is x != 0 (NaN
// is true), bool -> number gives {0, 1}, 16-bit floats round to nearest even (from double
// via float, which can double-round in rare ties).
template <typename To, typename From>
To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_half_v<From>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (is_half_v<To>) {
    return To(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<To> || !std::is_floating_point_v<From>) {
    return static_cast<To>(v);
  } else {
    return float_to_int<To>(static_cast<double>(v));
  }
}

// ---- integer arithmetic without undefined behaviour ----------------------------------------

// An unsigned type at least as wide as `unsigned`, so arithmetic on it never promotes to a
// signed type (uint16 * uint16 would otherwise overflow int).
template <typename T>
struct WideUnsigned {
  using type =
      std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
};
template <typename T>
using wide_unsigned_t = typename WideUnsigned<T>::type;

template <typename C>
C add_v(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = wide_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}
template <typename C>
C sub_v(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = wide_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
  } else {
    return a - b;
  }
}
template <typename C>
C mul_v(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = wide_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) * static_cast<U>(b));
  } else {
    return a * b;
  }
}
template <typename C>
C neg_v(C a) {
  if constexpr (std::is_integral_v<C>) {
    using U = wide_unsigned_t<C>;
    return static_cast<C>(U(0) - static_cast<U>(a));
  } else {
    return -a;
  }
}
// Integer division truncates toward zero (C semantics); x / 0 = 0 as in NumPy, and
// INT_MIN / -1 wraps to INT_MIN.
template <typename C>
C div_v(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    if (b == 0) return C(0);
    if constexpr (std::is_signed_v<C>) {
      if (b == C(-1)) return neg_v(a);
    }
    return static_cast<C>(a / b);
  } else {
    return a / b;
  }
}
// C fmod semantics: the result has the sign of the dividend.
template <typename C>
C fmod_v(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    if (b == 0) return C(0);
    if constexpr (std::is_signed_v<C>) {
      if (b == C(-1)) return C(0);
    }
    return static_cast<C>(a % b);
  } else {
    return std::fmod(a, b);
  }
}
// Python % semantics for integers: the result has the sign of the divisor.
template <typename C>
C pymod_v(C a, C b) {
  C r = fmod_v(a, b);
  if constexpr (std::is_signed_v<C>) {
    if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
  }
  return r;
}
template <typename C>
C max_v(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return a;  // NaN propagates, as numpy.maximum
    if (std::isnan(b)) return b;
  }
  return a < b ? b : a;
}
template <typename C>
C min_v(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return a;
    if (std::isnan(b)) return b;
  }
  return b < a ? b : a;
}

// Integer power by squaring, wrapping on overflow like NumPy. Negative exponents go through
// double: 1 and -1 keep their magnitude, other bases truncate to 0, and 0^-n saturates.
template <typename CB, typename CE>
CB int_pow(CB base, CE exp) {
  if constexpr (std::is_signed_v<CE>) {
    if (exp < 0) return convert<CB>(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  }
  using U = wide_unsigned_t<CB>;
  U result = 1;
  U b = static_cast<U>(base);
  auto e = static_cast<std::make_unsigned_t<CE>>(exp);
  while (e != 0) {
    if (e & 1u) result *= b;
    b *= b;
    e = static_cast<decltype(e)>(e >> 1);
  }
  return static_cast<CB>(result);
}

// Pow on compute types: same-type floats use the native pow of that type, integer pairs are
// exact, mixed pairs go through double (the caller converts back to the base type).
template <typename CB, typename CE>
auto pow_v(CB x, CE y) {
  if constexpr (std::is_floating_point_v<CB> && std::is_same_v<CB, CE>) {
    return std::pow(x, y);
  } else if constexpr (std::is_integral_v<CB> && std::is_integral_v<CE>) {
    return int_pow(x, y);
  } else {
    return std::pow(static_cast<double>(x), static_cast<double>(y));
  }
}

// Round half to even without depending on the floating-point environment's rounding mode.
template <typename C>
C round_half_even(C x) {
  const C r = std::round(x);  // half away from zero
  if (std::fabs(x - std::trunc(x)) == C(0.5)) return C(2) * std::round(x / C(2));
  return r;
}

// ---- broadcasting loop -------------------------------------------------------------------

constexpr size_t kMaxOperands = 3;
using Offsets = std::array<int64_t, kMaxOperands>;

// How to walk up to three operands broadcast to an output shape. Output dims of size 1 are
// dropped and adjacent dims merged wherever every operand is contiguous (or broadcast)
// across both, so the innermost merged dim becomes one run in which each operand either
// advances by one element (step 1) or stays put (step 0).
struct BroadcastPlan {
  int64_t numel = 0;
  int64_t inner = 1;  // length of each contiguous run of the output
  std::array<int64_t, kMaxOperands> step{};
  Shape outer;                                      // output dims outside the run
  std::vector<std::vector<int64_t>> outer_strides;  // per operand, over `outer`
};

BroadcastPlan plan_broadcast(const Shape& out, std::initializer_list<const Shape*> ins) {
  BroadcastPlan p;
  p.numel = shape_numel(out);
  const size_t n = ins.size();
  std::vector<std::vector<int64_t>> full;
  for (const Shape* s : ins) full.push_back(broadcast_strides(*s, out));
  Shape dims;
  std::vector<std::vector<int64_t>> strides(n);
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    bool merge = !dims.empty();
    for (size_t k = 0; k < n && merge; ++k) merge = strides[k].back() == full[k][d] * out[d];
    if (merge) {
      dims.back() *= out[d];
      for (size_t k = 0; k < n; ++k) strides[k].back() = full[k][d];
    } else {
      dims.push_back(out[d]);
      for (size_t k = 0; k < n; ++k) strides[k].push_back(full[k][d]);
    }
  }
  if (!dims.empty()) {
    p.inner = dims.back();
    dims.pop_back();
    for (size_t k = 0; k < n; ++k) {
      p.step[k] = strides[k].back();
      strides[k].pop_back();
    }
  }
  p.outer = std::move(dims);
  p.outer_strides = std::move(strides);
  return p;
}

// Calls run(state, output_offset, operand_offsets) once per contiguous run, in output order.
// Not a template: the walk is compiled once, not once per element type and function (the
// reference kernels instantiate it a few hundred times); one indirect call per run.
using RunFn = void (*)(void* state, int64_t out_offset, const Offsets& off);
void for_each_run(const BroadcastPlan& p, RunFn run, void* state) {
  if (p.numel == 0) return;
  Offsets off{};
  if (p.outer.empty()) {
    run(state, int64_t{0}, off);
    return;
  }
  StridedIterator it(p.outer, p.outer_strides);
  for (int64_t o = 0; !it.done(); it.next(), o += p.inner) {
    for (size_t k = 0; k < p.outer_strides.size(); ++k) off[k] = it.offset(k);
    run(state, o, off);
  }
}

// Calls fn(output_offset, operand_offsets) once per contiguous run, in output order.
template <typename Fn>
void for_each_run(const BroadcastPlan& p, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  for_each_run(
      p, [](void* state, int64_t o, const Offsets& off) { (*static_cast<F*>(state))(o, off); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

// out = f(a, b) elementwise with NumPy broadcasting to out's shape; f maps raw element
// values (TA, TB) to TO. `a` may be `out` itself (used to accumulate).
template <typename TA, typename TB, typename TO, typename F>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const BroadcastPlan p = plan_broadcast(out.shape(), {&a.shape(), &b.shape()});
  const TA* pa = a.data<TA>();
  const TB* pb = b.data<TB>();
  TO* po = out.data<TO>();
  const int64_t n = p.inner;
  for_each_run(p, [&](int64_t o, const Offsets& off) {
    const TA* x = pa + off[0];
    const TB* y = pb + off[1];
    TO* z = po + o;
    if (p.step[0] && p.step[1]) {
      for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[i]);
    } else if (p.step[0]) {
      const TB yv = *y;
      for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], yv);
    } else if (p.step[1]) {
      const TA xv = *x;
      for (int64_t i = 0; i < n; ++i) z[i] = f(xv, y[i]);
    } else {
      std::fill(z, z + n, f(*x, *y));
    }
  });
}

Status dtype_not_handled(const char* what, DataType t) {
  return internal_error(std::string(what) + ": kernel has no instantiation for dtype " +
                        dtype_long_name(t));
}

// ---- kernels ----------------------------------------------------------------------------

// y = f(x) on the compute type of x's dtype (one of Cats); y has x's dtype, or bool.
template <unsigned Cats, bool BoolOut = false, typename F>
std::unique_ptr<Kernel> unary_kernel(F f) {
  return make_kernel([f](KernelContext& ctx) -> Status {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    bool ran = false;
    visit_dtype(x.dtype(), [&]<typename T>() {
      if constexpr (in_cats<T, Cats>) {
        using O = std::conditional_t<BoolOut, bool, T>;
        using C = compute_t<T>;
        const T* in = x.data<T>();
        O* out = y.data<O>();
        const int64_t n = x.numel();
        for (int64_t i = 0; i < n; ++i) out[i] = convert<O>(f(static_cast<C>(in[i])));
        ran = true;
      }
    });
    return ran ? Status::ok() : dtype_not_handled("unary", x.dtype());
  });
}

// z = f(a, b) with broadcasting, a and b of one dtype (one of Cats); z has that dtype or bool.
template <unsigned Cats, bool BoolOut = false, typename F>
std::unique_ptr<Kernel> binary_kernel(F f) {
  return make_kernel([f](KernelContext& ctx) -> Status {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& z = ctx.output(0);
    bool ran = false;
    visit_dtype(a.dtype(), [&]<typename T>() {
      if constexpr (in_cats<T, Cats>) {
        using O = std::conditional_t<BoolOut, bool, T>;
        using C = compute_t<T>;
        binary_loop<T, T, O>(a, b, z, [&f](T x, T y) {
          return convert<O>(f(static_cast<C>(x), static_cast<C>(y)));
        });
        ran = true;
      }
    });
    return ran ? Status::ok() : dtype_not_handled("binary", a.dtype());
  });
}

// ---- registration helpers -------------------------------------------------------------

// One opset version of an op: from `since` until the next version (or kMaxOpset), with the
// dtypes its inputs may have.
struct Version {
  int since;
  TypeSet types;
};
using VersionList = std::initializer_list<Version>;
using InferFactory = std::function<InferFn(TypeSet)>;

void add_op(OpRegistry& r, const std::string& name, VersionList versions, const InferFactory& infer,
            const CreateFn& create) {
  const std::vector<Version> v(versions);
  for (size_t i = 0; i < v.size(); ++i) {
    OpDef d;
    d.op_type = name;
    d.since_version = v[i].since;
    d.max_version = i + 1 < v.size() ? v[i + 1].since - 1 : kMaxOpset;
    d.infer = infer(v[i].types);
    d.create = create;
    r.add(std::move(d));
  }
}

InferFn same_type_infer(TypeSet types) {
  return [types](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
    return propagate_input_type(ctx);
  };
}

InferFn bool_out_infer(TypeSet types) {
  return [types](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
    ctx.set_output(0, TensorType(DataType::kBool, ctx.input_type(0).dims));
    return Status::ok();
  };
}

// A broadcasting binary op whose inputs share one dtype; the output has it too, or is bool.
InferFn binary_infer(TypeSet types, bool bool_out) {
  return [types, bool_out](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
    BRINK_RETURN_IF_ERROR(check_input(ctx, 1, types));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 0, 1));
    BRINK_ASSIGN_OR_RETURN(auto dims,
                           broadcast_dims(ctx, {&ctx.input_type(0), &ctx.input_type(1)}));
    ctx.set_output(0, TensorType(bool_out ? DataType::kBool : ctx.input_dtype(0), std::move(dims)));
    return Status::ok();
  };
}
InferFn binary_same_infer(TypeSet types) {
  return binary_infer(types, false);
}
InferFn binary_bool_infer(TypeSet types) {
  return binary_infer(types, true);
}

// ---- fast float32 paths ----------------------------------------------------------------

using kernels::BinaryOp;
using kernels::Unary;
using kernels::UnaryOp;

// True when the node's first input is float32 and the fast kernels are enabled.
bool use_fast_f32(const KernelCreateContext& c) {
  return kernels::fast_kernels_enabled() && c.has_input(0) &&
         c.input_dtype(0) == DataType::kFloat32;
}

// Runs the fast kernel for float32 tensors and `reference` for anything else (the dtype is
// known at prepare time, but a kernel must never misread a tensor it was not prepared for).
// `fast` returns false to hand a call it cannot take (a shape it has no plan for) to the
// reference.
template <typename Fast>
std::unique_ptr<Kernel> fast_or_reference(Fast fast, std::unique_ptr<Kernel> reference) {
  return make_kernel(
      [fast, ref = std::shared_ptr<Kernel>(std::move(reference))](KernelContext& ctx) -> Status {
        if (ctx.input(0).dtype() == DataType::kFloat32 && fast(ctx)) return Status::ok();
        return ref->run(ctx);
      });
}

std::unique_ptr<Kernel> fast_unary_kernel(Unary u, Isa isa, std::unique_ptr<Kernel> reference) {
  return fast_or_reference(
      [u, isa](KernelContext& ctx) {
        const Tensor& x = ctx.input(0);
        kernels::unary_f32_parallel(u, x.data<float>(), ctx.output(0).data<float>(), x.numel(), isa,
                                    ctx.thread_pool());
        return true;
      },
      std::move(reference));
}

// z = op(a, b) broadcast to z's shape, all float32; false when the shapes need the reference.
bool fast_binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& z, Isa isa,
                 ThreadPool* pool) {
  if (a.dtype() != DataType::kFloat32 || b.dtype() != DataType::kFloat32) return false;
  kernels::BinaryBroadcast plan;
  if (!kernels::plan_binary_broadcast(a.shape(), b.shape(), z.shape(), &plan)) return false;
  kernels::binary_broadcast_f32(op, plan, a.data<float>(), b.data<float>(), z.data<float>(), isa,
                                pool);
  return true;
}

std::unique_ptr<Kernel> fast_binary_kernel(BinaryOp op, Isa isa,
                                           std::unique_ptr<Kernel> reference) {
  return fast_or_reference(
      [op, isa](KernelContext& ctx) {
        return fast_binary(op, ctx.input(0), ctx.input(1), ctx.output(0), isa, ctx.thread_pool());
      },
      std::move(reference));
}

// The unary function a node computes, from its attributes (Gelu's approximate, LeakyRelu's
// alpha...); only called for nodes whose reference kernel was created, so attributes are valid.
using UnaryParamsFn = std::function<Unary(const KernelCreateContext&)>;

CreateFn with_fast_unary(CreateFn reference, UnaryParamsFn params) {
  return [reference, params](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> ref, reference(c));
    if (!use_fast_f32(c)) return ref;
    return fast_unary_kernel(params(c), kernels::usable_isa(c.isa), std::move(ref));
  };
}

template <unsigned Cats, typename F>
void add_unary(OpRegistry& r, const std::string& name, VersionList versions, F f,
               std::optional<UnaryOp> fast = std::nullopt) {
  CreateFn reference = [f](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return unary_kernel<Cats>(f);
  };
  if (fast)
    reference =
        with_fast_unary(reference, [op = *fast](const KernelCreateContext&) { return Unary{op}; });
  add_op(r, name, versions, same_type_infer, reference);
}

template <unsigned Cats, typename F>
void add_binary(OpRegistry& r, const std::string& name, VersionList versions, F f,
                std::optional<BinaryOp> fast = std::nullopt) {
  add_op(r, name, versions, binary_same_infer,
         [f, fast](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
           std::unique_ptr<Kernel> ref = binary_kernel<Cats>(f);
           if (!fast || !use_fast_f32(c)) return ref;
           return fast_binary_kernel(*fast, kernels::usable_isa(c.isa), std::move(ref));
         });
}

template <unsigned Cats, typename F>
void add_compare(OpRegistry& r, const std::string& name, VersionList versions, F f) {
  add_op(r, name, versions, binary_bool_infer,
         [f](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
           return binary_kernel<Cats, true>(f);
         });
}

// ---- unary math -------------------------------------------------------------------------

void register_unary_math(OpRegistry& r) {
  if constexpr (op_selected("", "Abs"))
    add_unary<kCatNum>(
        r, "Abs", {{6, kNum3}, {13, kNum4}},
        [](auto x) {
          using C = decltype(x);
          if constexpr (std::is_floating_point_v<C>)
            return std::fabs(x);
          else if constexpr (std::is_signed_v<C>)
            return x < 0 ? neg_v(x) : x;
          else
            return x;
        },
        UnaryOp::kAbs);
  if constexpr (op_selected("", "Neg"))
    add_unary<kCatF | kCatS>(
        r, "Neg", {{6, kF3 | kSInts}, {13, kF4 | kSInts}}, [](auto x) { return neg_v(x); },
        UnaryOp::kNeg);
  if constexpr (op_selected("", "Exp"))
    add_unary<kCatF>(
        r, "Exp", {{6, kF3}, {13, kF4}}, [](auto x) { return std::exp(x); }, UnaryOp::kExp);
  if constexpr (op_selected("", "Log"))
    add_unary<kCatF>(
        r, "Log", {{6, kF3}, {13, kF4}}, [](auto x) { return std::log(x); }, UnaryOp::kLog);
  if constexpr (op_selected("", "Sqrt"))
    add_unary<kCatF>(
        r, "Sqrt", {{6, kF3}, {13, kF4}}, [](auto x) { return std::sqrt(x); }, UnaryOp::kSqrt);
  if constexpr (op_selected("", "Reciprocal"))
    add_unary<kCatF>(
        r, "Reciprocal", {{6, kF3}, {13, kF4}}, [](auto x) { return decltype(x)(1) / x; },
        UnaryOp::kReciprocal);
  if constexpr (op_selected("", "Floor"))
    add_unary<kCatF>(r, "Floor", {{6, kF3}, {13, kF4}}, [](auto x) { return std::floor(x); });
  if constexpr (op_selected("", "Ceil"))
    add_unary<kCatF>(r, "Ceil", {{6, kF3}, {13, kF4}}, [](auto x) { return std::ceil(x); });
  if constexpr (op_selected("", "Round"))
    add_unary<kCatF>(r, "Round", {{11, kF3}}, [](auto x) { return round_half_even(x); });
  if constexpr (op_selected("", "Sign"))
    add_unary<kCatNum>(r, "Sign", {{9, kNum3}, {13, kNum4}}, [](auto x) {
      using C = decltype(x);
      if constexpr (std::is_floating_point_v<C>)
        return x > 0 ? C(1) : x < 0 ? C(-1) : x;  // 0, NaN kept
      else
        return static_cast<C>(int(x > 0) - int(is_neg(x)));
    });
  if constexpr (op_selected("", "Sin"))
    add_unary<kCatF>(r, "Sin", {{7, kF3}}, [](auto x) { return std::sin(x); });
  if constexpr (op_selected("", "Cos"))
    add_unary<kCatF>(r, "Cos", {{7, kF3}}, [](auto x) { return std::cos(x); });
  if constexpr (op_selected("", "Tan"))
    add_unary<kCatF>(r, "Tan", {{7, kF3}}, [](auto x) { return std::tan(x); });
  if constexpr (op_selected("", "Asin"))
    add_unary<kCatF>(r, "Asin", {{7, kF3}}, [](auto x) { return std::asin(x); });
  if constexpr (op_selected("", "Acos"))
    add_unary<kCatF>(r, "Acos", {{7, kF3}}, [](auto x) { return std::acos(x); });
  if constexpr (op_selected("", "Atan"))
    add_unary<kCatF>(r, "Atan", {{7, kF3}}, [](auto x) { return std::atan(x); });
  if constexpr (op_selected("", "Sinh"))
    add_unary<kCatF>(r, "Sinh", {{9, kF3}}, [](auto x) { return std::sinh(x); });
  if constexpr (op_selected("", "Cosh"))
    add_unary<kCatF>(r, "Cosh", {{9, kF3}}, [](auto x) { return std::cosh(x); });
  if constexpr (op_selected("", "Asinh"))
    add_unary<kCatF>(r, "Asinh", {{9, kF3}}, [](auto x) { return std::asinh(x); });
  if constexpr (op_selected("", "Acosh"))
    add_unary<kCatF>(r, "Acosh", {{9, kF3}}, [](auto x) { return std::acosh(x); });
  if constexpr (op_selected("", "Atanh"))
    add_unary<kCatF>(r, "Atanh", {{9, kF3}}, [](auto x) { return std::atanh(x); });
  // Erf-9 also takes integers: computed in double and truncated back (so mostly 0 or +-1).
  if constexpr (op_selected("", "Erf"))
    add_unary<kCatNum>(
        r, "Erf", {{9, kNum3}, {13, kF4}},
        [](auto x) {
          if constexpr (std::is_floating_point_v<decltype(x)>)
            return std::erf(x);
          else
            return std::erf(static_cast<double>(x));
        },
        UnaryOp::kErf);
  if constexpr (op_selected("", "BitwiseNot"))
    add_unary<kCatInt>(r, "BitwiseNot", {{18, kInts}},
                       [](auto x) { return static_cast<decltype(x)>(~x); });

  if constexpr (op_selected("", "Not"))
    add_op(r, "Not", {{1, kBoolT}}, same_type_infer,
           [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
             return unary_kernel<kCatB>([](bool x) { return !x; });
           });
  if constexpr (op_selected("", "IsNaN"))
    add_op(r, "IsNaN", {{9, kF3}, {13, kF4}}, bool_out_infer,
           [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
             return unary_kernel<kCatF, true>([](auto x) { return std::isnan(x); });
           });
  if constexpr (op_selected("", "IsInf"))
    add_op(r, "IsInf", {{10, kF32F64}, {20, kF4}}, bool_out_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             const bool neg = c.node.attr_int("detect_negative", 1) != 0;
             const bool pos = c.node.attr_int("detect_positive", 1) != 0;
             return unary_kernel<kCatF, true>(
                 [neg, pos](auto x) { return std::isinf(x) && (x > 0 ? pos : neg); });
           });
}

// ---- activations ------------------------------------------------------------------------

template <typename C>
C sigmoid_v(C x) {
  // Two forms so that exp never overflows.
  if (x >= 0) return C(1) / (C(1) + std::exp(-x));
  const C e = std::exp(x);
  return e / (C(1) + e);
}
template <typename C>
C softplus_v(C x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// Registers a unary op whose kernel depends on attributes: make(create_ctx) -> Result<kernel>,
// with the fast float32 function `fast` gives for the same attributes, if any.
template <typename Make>
void add_unary_attr(OpRegistry& r, const std::string& name, VersionList versions, Make make,
                    UnaryParamsFn fast = nullptr) {
  add_op(r, name, versions, same_type_infer, fast ? with_fast_unary(make, fast) : CreateFn(make));
}

void register_activations(OpRegistry& r) {
  // NaN passes through (x < 0 is false), as numpy.maximum(x, 0).
  if constexpr (op_selected("", "Relu"))
    add_unary<kCatF | kCatS>(
        r, "Relu", {{6, kF3}, {13, kF4}, {14, kF4 | kSInts}},
        [](auto x) { return x < 0 ? decltype(x)(0) : x; }, UnaryOp::kRelu);
  if constexpr (op_selected("", "Sigmoid"))
    add_unary<kCatF>(
        r, "Sigmoid", {{6, kF3}, {13, kF4}}, [](auto x) { return sigmoid_v(x); },
        UnaryOp::kSigmoid);
  if constexpr (op_selected("", "Tanh"))
    add_unary<kCatF>(
        r, "Tanh", {{6, kF3}, {13, kF4}}, [](auto x) { return std::tanh(x); }, UnaryOp::kTanh);
  if constexpr (op_selected("", "HardSwish"))
    add_unary<kCatF>(
        r, "HardSwish", {{14, kF3}},
        [](auto x) {
          using C = decltype(x);
          return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
        },
        UnaryOp::kHardSwish);
  if constexpr (op_selected("", "Softplus"))
    add_unary<kCatF>(
        r, "Softplus", {{1, kF3}}, [](auto x) { return softplus_v(x); }, UnaryOp::kSoftplus);
  if constexpr (op_selected("", "Softsign"))
    add_unary<kCatF>(
        r, "Softsign", {{1, kF3}}, [](auto x) { return x / (decltype(x)(1) + std::fabs(x)); },
        UnaryOp::kSoftsign);
  if constexpr (op_selected("", "Mish"))
    add_unary<kCatF>(
        r, "Mish", {{18, kF3}}, [](auto x) { return x * std::tanh(softplus_v(x)); },
        UnaryOp::kMish);

  if constexpr (op_selected("", "HardSigmoid"))
    add_unary_attr(
        r, "HardSigmoid", {{6, kF3}},
        [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
          const float alpha = c.node.attr_float("alpha", 0.2f),
                      beta = c.node.attr_float("beta", 0.5f);
          return unary_kernel<kCatF>([alpha, beta](auto x) {
            using C = decltype(x);
            const C v = C(alpha) * x + C(beta);
            return v < C(0) ? C(0) : v > C(1) ? C(1) : v;  // NaN passes through
          });
        },
        [](const KernelCreateContext& c) {
          return Unary{UnaryOp::kHardSigmoid, c.node.attr_float("alpha", 0.2f),
                       c.node.attr_float("beta", 0.5f)};
        });
  if constexpr (op_selected("", "LeakyRelu"))
    add_unary_attr(
        r, "LeakyRelu", {{6, kF3}, {16, kF4}},
        [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
          const float alpha = c.node.attr_float("alpha", 0.01f);
          return unary_kernel<kCatF>(
              [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * x : x; });
        },
        [](const KernelCreateContext& c) {
          return Unary{UnaryOp::kLeakyRelu, c.node.attr_float("alpha", 0.01f)};
        });
  if constexpr (op_selected("", "Elu"))
    add_unary_attr(
        r, "Elu", {{6, kF3}}, [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
          const float alpha = c.node.attr_float("alpha", 1.0f);
          return unary_kernel<kCatF>(
              [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * std::expm1(x) : x; });
        });
  if constexpr (op_selected("", "Selu"))
    add_unary_attr(r, "Selu", {{6, kF3}},
                   [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
                     const float alpha = c.node.attr_float("alpha", 1.67326319217681884765625f);
                     const float gamma = c.node.attr_float("gamma", 1.05070102214813232421875f);
                     return unary_kernel<kCatF>([alpha, gamma](auto x) {
                       using C = decltype(x);
                       return x > 0 ? C(gamma) * x : C(gamma) * (C(alpha) * std::exp(x) - C(alpha));
                     });
                   });
  if constexpr (op_selected("", "Celu"))
    add_unary_attr(r, "Celu", {{12, kF32}},
                   [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
                     const float alpha = c.node.attr_float("alpha", 1.0f);
                     if (alpha == 0.0f) return c.invalid("attribute alpha must be non-zero");
                     return unary_kernel<kCatF>([alpha](auto x) {
                       using C = decltype(x);
                       // max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), letting NaN through
                       return x > C(0) ? x : C(alpha) * std::expm1(x / C(alpha));
                     });
                   });
  if constexpr (op_selected("", "ThresholdedRelu"))
    add_unary_attr(r, "ThresholdedRelu", {{10, kF3}},
                   [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
                     const float alpha = c.node.attr_float("alpha", 1.0f);
                     return unary_kernel<kCatF>(
                         [alpha](auto x) { return x > decltype(x)(alpha) ? x : decltype(x)(0); });
                   });
  if constexpr (op_selected("", "Gelu"))
    add_unary_attr(
        r, "Gelu", {{20, kF4}},
        [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
          const std::string approx = c.node.attr_string("approximate", "none");
          if (approx == "none")
            return unary_kernel<kCatF>([](auto x) {
              using C = decltype(x);
              return C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752440)));
            });
          if (approx == "tanh")
            return unary_kernel<kCatF>([](auto x) {
              using C = decltype(x);
              const C k = C(0.79788456080286535588);  // sqrt(2 / pi)
              return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
            });
          return c.invalid("attribute approximate is '" + approx + "', expected 'none' or 'tanh'");
        },
        [](const KernelCreateContext& c) {
          return Unary{c.node.attr_string("approximate", "none") == "tanh" ? UnaryOp::kGeluTanh
                                                                           : UnaryOp::kGelu};
        });
  // Shrink-9 takes integers too: computed in double, then converted back (saturating).
  if constexpr (op_selected("", "Shrink"))
    add_unary_attr(
        r, "Shrink", {{9, kNum3}},
        [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
          const float bias = c.node.attr_float("bias", 0.0f),
                      lambd = c.node.attr_float("lambd", 0.5f);
          return unary_kernel<kCatNum>([bias, lambd](auto x) {
            using C =
                std::conditional_t<std::is_floating_point_v<decltype(x)>, decltype(x), double>;
            const C v = static_cast<C>(x);
            return v < -C(lambd) ? v + C(bias) : v > C(lambd) ? v - C(bias) : C(0);
          });
        });

  // PRelu: slope broadcasts unidirectionally to X; the output has X's type.
  auto prelu_infer = [](TypeSet types) -> InferFn {
    return [types](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
      BRINK_RETURN_IF_ERROR(check_input(ctx, 1, types));
      BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 0, 1));
      const TensorType& x = ctx.input_type(0);
      const TensorType& s = ctx.input_type(1);
      if (x.has_rank() && s.has_rank()) {
        bool ok = s.rank() <= x.rank();
        for (int64_t i = 0; ok && i < s.rank(); ++i) {
          const Dim& sd = (*s.dims)[static_cast<size_t>(s.rank() - 1 - i)];
          const Dim& xd = (*x.dims)[static_cast<size_t>(x.rank() - 1 - i)];
          if (sd.known() && sd.value != 1 && xd.known() && xd.value != sd.value) ok = false;
        }
        if (!ok)
          return ctx.invalid("slope of type " + s.to_string() +
                             " does not broadcast (unidirectionally) to X of type " +
                             x.to_string());
      }
      return propagate_input_type(ctx);
    };
  };
  if constexpr (op_selected("", "PRelu"))
    add_op(r, "PRelu", {{7, kF3}, {9, kF3 | kI32I64U32U64}, {16, kF4 | kI32I64U32U64}}, prelu_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             std::unique_ptr<Kernel> ref = binary_kernel<kCatNum>(
                 [](auto x, auto slope) { return is_neg(x) ? mul_v(x, slope) : x; });
             if (!use_fast_f32(c)) return ref;
             return fast_binary_kernel(BinaryOp::kPRelu, kernels::usable_isa(c.isa),
                                       std::move(ref));
           });

  // Clip-6: bounds are attributes. An absent bound does not clamp (so +-inf survive).
  if constexpr (op_selected("", "Clip"))
    add_op(r, "Clip", {{6, kF3}}, same_type_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             const ir::Attribute* lo_attr = c.node.attr("min");
             const ir::Attribute* hi_attr = c.node.attr("max");
             const float lo =
                 lo_attr ? c.node.attr_float("min", 0) : -std::numeric_limits<float>::infinity();
             const float hi =
                 hi_attr ? c.node.attr_float("max", 0) : std::numeric_limits<float>::infinity();
             std::unique_ptr<Kernel> ref = unary_kernel<kCatF>([lo, hi](auto x) {
               using C = decltype(x);
               return std::min(std::max(x, C(lo)), C(hi));  // NaN passes through
             });
             if (!use_fast_f32(c)) return ref;
             return fast_unary_kernel(Unary{UnaryOp::kClip, lo, hi}, kernels::usable_isa(c.isa),
                                      std::move(ref));
           });
  // Clip-11+: bounds are optional scalar inputs of the input's dtype.
  auto clip_infer = [](TypeSet types) -> InferFn {
    return [types](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
      for (size_t i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 0, i));
        const TensorType& t = ctx.input_type(i);
        if (t.is_static() && shape_numel(t.static_shape()) != 1)
          return ctx.invalid(std::string("input ") + (i == 1 ? "min" : "max") +
                             " must be a scalar, found " + t.to_string());
      }
      return propagate_input_type(ctx);
    };
  };
  if constexpr (op_selected("", "Clip"))
    add_op(r, "Clip", {{11, kF3}, {12, kNum3}, {13, kNum4}}, clip_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             std::unique_ptr<Kernel> ref = make_kernel([](KernelContext& ctx) -> Status {
               const Tensor& x = ctx.input(0);
               Tensor& y = ctx.output(0);
               const bool has_lo = ctx.has_input(1), has_hi = ctx.has_input(2);
               if ((has_lo && ctx.input(1).numel() != 1) || (has_hi && ctx.input(2).numel() != 1))
                 return invalid_argument("Clip: min and max must hold exactly one value");
               bool ran = false;
               visit_dtype(x.dtype(), [&]<typename T>() {
                 if constexpr (in_cats<T, kCatNum>) {
                   using C = compute_t<T>;
                   const C lo = has_lo ? static_cast<C>(ctx.input(1).data<T>()[0]) : C(0);
                   const C hi = has_hi ? static_cast<C>(ctx.input(2).data<T>()[0]) : C(0);
                   const T* in = x.data<T>();
                   T* out = y.data<T>();
                   const int64_t count = x.numel();
                   for (int64_t i = 0; i < count; ++i) {
                     C v = static_cast<C>(in[i]);
                     if (has_lo) v = std::max(v, lo);
                     if (has_hi)
                       v = std::min(v, hi);  // min > max gives max everywhere, as the spec says
                     out[i] = convert<T>(v);
                   }
                   ran = true;
                 }
               });
               return ran ? Status::ok() : dtype_not_handled("Clip", x.dtype());
             });
             if (!use_fast_f32(c)) return ref;
             const Isa isa = kernels::usable_isa(c.isa);
             return fast_or_reference(
                 [isa](KernelContext& ctx) {
                   // The bounds are inputs, read on every run; a wrong count goes to the
                   // reference, which reports it.
                   const float inf = std::numeric_limits<float>::infinity();
                   Unary u{UnaryOp::kClip, -inf, inf};
                   for (size_t i = 1; i <= 2; ++i) {
                     if (!ctx.has_input(i)) continue;
                     const Tensor& t = ctx.input(i);
                     if (t.numel() != 1 || t.dtype() != DataType::kFloat32) return false;
                     (i == 1 ? u.alpha : u.beta) = t.data<float>()[0];
                   }
                   const Tensor& x = ctx.input(0);
                   kernels::unary_f32_parallel(u, x.data<float>(), ctx.output(0).data<float>(),
                                               x.numel(), isa, ctx.thread_pool());
                   return true;
                 },
                 std::move(ref));
           });
}

// ---- binary ops -------------------------------------------------------------------------

void register_binary(OpRegistry& r) {
  const VersionList arith = {{7, kF3 | kI32I64U32U64}, {13, kF4 | kI32I64U32U64}, {14, kNum4}};
  if constexpr (op_selected("", "Add"))
    add_binary<kCatNum>(
        r, "Add", arith, [](auto a, auto b) { return add_v(a, b); }, BinaryOp::kAdd);
  if constexpr (op_selected("", "Sub"))
    add_binary<kCatNum>(
        r, "Sub", arith, [](auto a, auto b) { return sub_v(a, b); }, BinaryOp::kSub);
  if constexpr (op_selected("", "Mul"))
    add_binary<kCatNum>(
        r, "Mul", arith, [](auto a, auto b) { return mul_v(a, b); }, BinaryOp::kMul);
  if constexpr (op_selected("", "Div"))
    add_binary<kCatNum>(
        r, "Div", arith, [](auto a, auto b) { return div_v(a, b); }, BinaryOp::kDiv);

  // Mod: fmod=0 is Python's % (integers only), fmod=1 is C's fmod (any numeric type).
  if constexpr (op_selected("", "Mod"))
    add_op(r, "Mod", {{10, kNum3}, {13, kNum4}}, binary_same_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             const int64_t fmod = c.node.attr_int("fmod", 0);
             if (fmod != 0 && fmod != 1)
               return c.invalid("attribute fmod is " + std::to_string(fmod) + ", expected 0 or 1");
             if (fmod == 0 && c.has_input(0) && dtype_is_float(c.input_dtype(0)))
               return c.invalid(std::string("fmod=0 is defined for integer types only; ") +
                                dtype_long_name(c.input_dtype(0)) + " inputs need fmod=1");
             if (fmod == 1)
               return binary_kernel<kCatNum>([](auto a, auto b) { return fmod_v(a, b); });
             return binary_kernel<kCatInt>([](auto a, auto b) { return pymod_v(a, b); });
           });

  if constexpr (op_selected("", "BitShift"))
    add_op(r, "BitShift", {{11, kUInts}}, binary_same_infer,
           [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
             const std::string dir = c.node.attr_string("direction", "");
             // Shifting by the bit width or more gives 0 (it is undefined in C++).
             if (dir == "LEFT")
               return binary_kernel<kCatU>([](auto x, auto s) {
                 using C = decltype(x);
                 return uint64_t{s} >= sizeof(C) * 8
                            ? C(0)
                            : static_cast<C>(static_cast<wide_unsigned_t<C>>(x) << s);
               });
             if (dir == "RIGHT")
               return binary_kernel<kCatU>([](auto x, auto s) {
                 using C = decltype(x);
                 return uint64_t{s} >= sizeof(C) * 8 ? C(0) : static_cast<C>(x >> s);
               });
             return c.invalid("attribute direction is '" + dir + "', expected 'LEFT' or 'RIGHT'");
           });
  if constexpr (op_selected("", "BitwiseAnd"))
    add_binary<kCatInt>(r, "BitwiseAnd", {{18, kInts}},
                        [](auto a, auto b) { return static_cast<decltype(a)>(a & b); });
  if constexpr (op_selected("", "BitwiseOr"))
    add_binary<kCatInt>(r, "BitwiseOr", {{18, kInts}},
                        [](auto a, auto b) { return static_cast<decltype(a)>(a | b); });
  if constexpr (op_selected("", "BitwiseXor"))
    add_binary<kCatInt>(r, "BitwiseXor", {{18, kInts}},
                        [](auto a, auto b) { return static_cast<decltype(a)>(a ^ b); });

  if constexpr (op_selected("", "Equal"))
    add_compare<kCatNum | kCatB>(r, "Equal",
                                 {{7, kBoolT | kI32I64}, {11, kAll3}, {13, kAll4}, {19, kAll4}},
                                 [](auto a, auto b) { return a == b; });
  const VersionList order9 = {{7, kF3}, {9, kNum3}, {13, kNum4}};
  const VersionList order12 = {{12, kNum3}, {16, kNum4}};
  if constexpr (op_selected("", "Less"))
    add_compare<kCatNum>(r, "Less", order9, [](auto a, auto b) { return a < b; });
  if constexpr (op_selected("", "Greater"))
    add_compare<kCatNum>(r, "Greater", order9, [](auto a, auto b) { return a > b; });
  if constexpr (op_selected("", "LessOrEqual"))
    add_compare<kCatNum>(r, "LessOrEqual", order12, [](auto a, auto b) { return a <= b; });
  if constexpr (op_selected("", "GreaterOrEqual"))
    add_compare<kCatNum>(r, "GreaterOrEqual", order12, [](auto a, auto b) { return a >= b; });
  if constexpr (op_selected("", "And"))
    add_compare<kCatB>(r, "And", {{7, kBoolT}}, [](bool a, bool b) { return a && b; });
  if constexpr (op_selected("", "Or"))
    add_compare<kCatB>(r, "Or", {{7, kBoolT}}, [](bool a, bool b) { return a || b; });
  if constexpr (op_selected("", "Xor"))
    add_compare<kCatB>(r, "Xor", {{7, kBoolT}}, [](bool a, bool b) { return a != b; });

  // Pow-7: base and exponent share a float type. Pow-12+: the exponent has its own type;
  // the output has the base's type.
  auto pow_infer = [](TypeSet base_types, TypeSet exp_types, bool same) -> InferFn {
    return [=](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, base_types));
      BRINK_RETURN_IF_ERROR(check_input(ctx, 1, exp_types));
      if (same) BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 0, 1));
      BRINK_ASSIGN_OR_RETURN(auto dims,
                             broadcast_dims(ctx, {&ctx.input_type(0), &ctx.input_type(1)}));
      ctx.set_output(0, TensorType(ctx.input_dtype(0), std::move(dims)));
      return Status::ok();
    };
  };
  const CreateFn pow_create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    std::unique_ptr<Kernel> ref = make_kernel([](KernelContext& ctx) -> Status {
      const Tensor& a = ctx.input(0);
      const Tensor& b = ctx.input(1);
      Tensor& z = ctx.output(0);
      bool ran = false;
      visit_dtype(a.dtype(), [&]<typename TB>() {
        if constexpr (in_cats<TB, kCatF | kCatS>) {
          using CB = compute_t<TB>;
          if constexpr (std::is_floating_point_v<CB>) {
            // x^2 is common (variance in decomposed LayerNorm); x*x is what pow returns.
            if (b.numel() == 1 && z.numel() == a.numel() && b.element_as_double(0) == 2.0) {
              const TB* in = a.data<TB>();
              TB* out = z.data<TB>();
              const int64_t count = a.numel();
              for (int64_t i = 0; i < count; ++i) {
                const CB v = static_cast<CB>(in[i]);
                out[i] = convert<TB>(v * v);
              }
              ran = true;
              return;
            }
          }
          visit_dtype(b.dtype(), [&]<typename TE>() {
            if constexpr (in_cats<TE, kCatNum>) {
              using CE = compute_t<TE>;
              binary_loop<TB, TE, TB>(a, b, z, [](TB x, TE y) {
                return convert<TB>(pow_v(static_cast<CB>(x), static_cast<CE>(y)));
              });
              ran = true;
            }
          });
        }
      });
      return ran ? Status::ok() : dtype_not_handled("Pow", a.dtype());
    });
    if (!use_fast_f32(c)) return ref;
    // A one-value exponent of 1, 2, 3 or 0.5 (read on every run: it need not be constant) is
    // a multiply or a square root; other exponents, and exponents that broadcast the base to
    // a larger output, take the reference.
    const Isa isa = kernels::usable_isa(c.isa);
    return fast_or_reference(
        [isa](KernelContext& ctx) {
          const Tensor& a = ctx.input(0);
          const Tensor& b = ctx.input(1);
          Tensor& z = ctx.output(0);
          if (b.numel() != 1 || z.numel() != a.numel()) return false;
          const double e = b.element_as_double(0);
          UnaryOp op;
          if (e == 1.0)
            op = UnaryOp::kIdentity;
          else if (e == 2.0)
            op = UnaryOp::kSquare;
          else if (e == 3.0)
            op = UnaryOp::kCube;
          else if (e == 0.5)
            op = UnaryOp::kPowHalf;
          else
            return false;
          kernels::unary_f32_parallel(Unary{op}, a.data<float>(), z.data<float>(), a.numel(), isa,
                                      ctx.thread_pool());
          return true;
        },
        std::move(ref));
  };
  if constexpr (op_selected("", "Pow"))
    add_op(
        r, "Pow", {{7, kF3}}, [&](TypeSet t) { return pow_infer(t, t, true); }, pow_create);
  if constexpr (op_selected("", "Pow"))
    add_op(
        r, "Pow", {{12, kF3 | kI32I64}}, [&](TypeSet t) { return pow_infer(t, kNum3, false); },
        pow_create);
  if constexpr (op_selected("", "Pow"))
    add_op(
        r, "Pow", {{13, kF4 | kI32I64}}, [&](TypeSet t) { return pow_infer(t, kNum3, false); },
        pow_create);
  if constexpr (op_selected("", "Pow"))
    add_op(
        r, "Pow", {{15, kF4 | kI32I64}}, [&](TypeSet t) { return pow_infer(t, kNum4, false); },
        pow_create);
}

// ---- variadic ops -----------------------------------------------------------------------

InferFn variadic_infer(TypeSet types) {
  return [types](InferContext& ctx) -> Status {
    if (ctx.num_inputs() == 0) return ctx.invalid("expects at least one input, found none");
    std::vector<const TensorType*> ts;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      BRINK_RETURN_IF_ERROR(check_input(ctx, i, types));
      BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 0, i));
      ts.push_back(&ctx.input_type(i));
    }
    BRINK_ASSIGN_OR_RETURN(auto dims, broadcast_dims(ctx, ts));
    ctx.set_output(0, TensorType(ctx.input_dtype(0), std::move(dims)));
    return Status::ok();
  };
}

// The order in which a variadic op folds its inputs. An input that is the output's buffer
// (in-place execution) must be consumed by the first step, before the output is written:
// inputs sharing z's buffer come first. With three or more of them no order works (ok =
// false) and the fold goes through a temporary.
struct FoldOrder {
  size_t first = 0, second = 1;
  bool ok = true;
  bool later(size_t k) const { return k != first && k != second; }
};
FoldOrder fold_order(const KernelContext& ctx, const Tensor& z) {
  FoldOrder o;
  size_t shared[2];
  size_t count = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.input(i).raw_data() != z.raw_data() || z.numel() == 0) continue;
    if (count == 2) {
      o.ok = false;
      return o;
    }
    shared[count++] = i;
  }
  if (count >= 1) o.first = shared[0];
  if (count == 2) {
    o.second = shared[1];
  } else {
    o.second = o.first == 0 ? 1 : 0;
  }
  return o;
}

// Folds f over the inputs (broadcasting) into the output; Mean then divides by the count.
// 16-bit floats accumulate in float and round once at the end; other types fold in place.
template <typename T, typename F>
void fold_inputs(KernelContext& ctx, Tensor& z, const F& f, bool mean) {
  using C = compute_t<T>;
  const size_t n = ctx.num_inputs();
  const FoldOrder order = fold_order(ctx, z);
  const bool temporary = is_half_v<T> || !order.ok;
  Tensor acc = temporary ? Tensor::empty(dtype_of<C>, z.shape()) : z;  // else aliases z
  C* pa = acc.data<C>();
  const int64_t count = acc.numel();
  if (n == 1) {
    const T* in = ctx.input(0).data<T>();
    for (int64_t i = 0; i < count; ++i) pa[i] = static_cast<C>(in[i]);
  } else {
    binary_loop<T, T, C>(ctx.input(order.first), ctx.input(order.second), acc,
                         [&f](T x, T y) { return f(static_cast<C>(x), static_cast<C>(y)); });
  }
  for (size_t k = 0; k < n; ++k)
    if (order.later(k))
      binary_loop<C, T, C>(acc, ctx.input(k), acc,
                           [&f](C x, T y) { return f(x, static_cast<C>(y)); });
  if (mean)
    for (int64_t i = 0; i < count; ++i) pa[i] = pa[i] / static_cast<C>(n);
  if (temporary) {
    T* out = z.data<T>();
    for (int64_t i = 0; i < count; ++i) out[i] = T(pa[i]);
  }
}

// The float32 fold with the fast binary kernel; false (before writing anything) when some
// input's shape has no broadcast plan, or the inputs need a temporary (see FoldOrder).
bool fast_fold(KernelContext& ctx, BinaryOp op, bool mean, Isa isa) {
  Tensor& z = ctx.output(0);
  const size_t n = ctx.num_inputs();
  const FoldOrder order = fold_order(ctx, z);
  if (!order.ok) return false;
  kernels::BinaryBroadcast plan;
  for (size_t k = 0; k < n; ++k) {
    const Tensor& in = ctx.input(k);
    if (in.dtype() != DataType::kFloat32 ||
        !kernels::plan_binary_broadcast(in.shape(), in.shape(), z.shape(), &plan))
      return false;
  }
  ThreadPool* pool = ctx.thread_pool();
  if (n == 1) {
    if (ctx.input(0).raw_data() != z.raw_data())
      kernels::unary_f32_parallel(Unary{UnaryOp::kIdentity}, ctx.input(0).data<float>(),
                                  z.data<float>(), z.numel(), isa, pool);
    return true;
  }
  if (!fast_binary(op, ctx.input(order.first), ctx.input(order.second), z, isa, pool)) return false;
  for (size_t k = 0; k < n; ++k)
    if (order.later(k)) fast_binary(op, z, ctx.input(k), z, isa, pool);
  if (mean) {
    const float count = static_cast<float>(n);
    kernels::plan_binary_broadcast(z.shape(), {}, z.shape(), &plan);
    kernels::binary_broadcast_f32(BinaryOp::kDiv, plan, z.data<float>(), &count, z.data<float>(),
                                  isa, pool);
  }
  return true;
}

template <unsigned Cats, typename F>
void add_variadic(OpRegistry& r, const std::string& name, VersionList versions, F f, bool mean,
                  BinaryOp fast) {
  add_op(r, name, versions, variadic_infer,
         [f, mean, fast](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
           std::unique_ptr<Kernel> ref = make_kernel([f, mean](KernelContext& ctx) -> Status {
             Tensor& z = ctx.output(0);
             bool ran = false;
             visit_dtype(z.dtype(), [&]<typename T>() {
               if constexpr (in_cats<T, Cats>) {
                 fold_inputs<T>(ctx, z, f, mean);
                 ran = true;
               }
             });
             return ran ? Status::ok() : dtype_not_handled(mean ? "Mean" : "variadic", z.dtype());
           });
           if (!use_fast_f32(c)) return ref;
           const Isa isa = kernels::usable_isa(c.isa);
           return fast_or_reference(
               [fast, mean, isa](KernelContext& ctx) { return fast_fold(ctx, fast, mean, isa); },
               std::move(ref));
         });
}

void register_variadic(OpRegistry& r) {
  const VersionList minmax = {{6, kF3}, {8, kF3}, {12, kNum3}, {13, kNum4}};
  if constexpr (op_selected("", "Max"))
    add_variadic<kCatNum>(
        r, "Max", minmax, [](auto a, auto b) { return max_v(a, b); }, false, BinaryOp::kMax);
  if constexpr (op_selected("", "Min"))
    add_variadic<kCatNum>(
        r, "Min", minmax, [](auto a, auto b) { return min_v(a, b); }, false, BinaryOp::kMin);
  const VersionList summean = {{6, kF3}, {8, kF3}, {13, kF4}};
  if constexpr (op_selected("", "Sum"))
    add_variadic<kCatF>(
        r, "Sum", summean, [](auto a, auto b) { return a + b; }, false, BinaryOp::kAdd);
  if constexpr (op_selected("", "Mean"))
    add_variadic<kCatF>(
        r, "Mean", summean, [](auto a, auto b) { return a + b; }, true, BinaryOp::kAdd);
}

// ---- Where ------------------------------------------------------------------------------

void register_where(OpRegistry& r) {
  auto infer = [](TypeSet types) -> InferFn {
    return [types](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, kBoolT));
      BRINK_RETURN_IF_ERROR(check_input(ctx, 1, types));
      BRINK_RETURN_IF_ERROR(check_input(ctx, 2, types));
      BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 1, 2));
      BRINK_ASSIGN_OR_RETURN(auto dims, broadcast_dims(ctx, {&ctx.input_type(0), &ctx.input_type(1),
                                                             &ctx.input_type(2)}));
      ctx.set_output(0, TensorType(ctx.input_dtype(1), std::move(dims)));
      return Status::ok();
    };
  };
  if constexpr (op_selected("", "Where"))
    add_op(
        r, "Where", {{9, kAll3}, {16, kAll4}}, infer,
        [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
          return make_kernel([](KernelContext& ctx) -> Status {
            const Tensor& c = ctx.input(0);
            const Tensor& x = ctx.input(1);
            const Tensor& y = ctx.input(2);
            Tensor& z = ctx.output(0);
            const BroadcastPlan p = plan_broadcast(z.shape(), {&c.shape(), &x.shape(), &y.shape()});
            const bool ok = visit_dtype(x.dtype(), [&]<typename T>() {
              const bool* pc = c.data<bool>();
              const T* px = x.data<T>();
              const T* py = y.data<T>();
              T* pz = z.data<T>();
              const int64_t sc = p.step[0], sx = p.step[1], sy = p.step[2];
              for_each_run(p, [&](int64_t o, const Offsets& off) {
                const bool* cc = pc + off[0];
                const T* xx = px + off[1];
                const T* yy = py + off[2];
                for (int64_t i = 0; i < p.inner; ++i)
                  pz[o + i] = cc[i * sc] ? xx[i * sx] : yy[i * sy];
              });
            });
            return ok ? Status::ok() : dtype_not_handled("Where", x.dtype());
          });
        });
}

// ---- Cast, CastLike ---------------------------------------------------------------------

// Names for ONNX data types Brink has no DataType for, so errors can say what was asked.
const char* onnx_type_name(int64_t code) {
  switch (code) {
    case 8:
      return "string";
    case 14:
      return "complex64";
    case 15:
      return "complex128";
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
    case 23:
      return "float4e2m1";
    default:
      return nullptr;
  }
}

Status check_cast_target(const InferContext& ctx, int64_t code, TypeSet allowed) {
  if (code > 0 && code < 32 && in_set(allowed, static_cast<DataType>(code))) return Status::ok();
  if (code > 0 && code < 32 && dtype_is_supported(static_cast<DataType>(code)))
    return ctx.invalid(std::string("cannot cast to ") +
                       dtype_long_name(static_cast<DataType>(code)) + " at opset " +
                       std::to_string(ctx.opset()) + "; expected one of " + set_names(allowed));
  if (const char* name = onnx_type_name(code))
    return ctx.unsupported_here(std::string("casting to ") + name + " is not supported by Brink");
  return ctx.invalid("target type " + std::to_string(code) + " is not an ONNX data type");
}

Status cast_tensor(const Tensor& x, Tensor& y) {
  if (x.dtype() == y.dtype()) {
    // In place (y is x's buffer) there is nothing to copy; memcpy onto itself is undefined.
    if (x.nbytes() > 0 && x.raw_data() != y.raw_data())
      std::memcpy(y.raw_data(), x.raw_data(), x.nbytes());
    return Status::ok();
  }
  bool ran = false;
  visit_dtype(x.dtype(), [&]<typename From>() {
    visit_dtype(y.dtype(), [&]<typename To>() {
      const From* in = x.data<From>();
      To* out = y.data<To>();
      const int64_t count = x.numel();
      for (int64_t i = 0; i < count; ++i) out[i] = convert<To>(in[i]);
      ran = true;
    });
  });
  if (!ran)
    return internal_error(std::string("Cast: no conversion from ") + dtype_long_name(x.dtype()) +
                          " to " + dtype_long_name(y.dtype()));
  return Status::ok();
}

// The `saturate` attribute (opset 19+) only affects float8 targets, which are rejected.
CreateFn cast_create() {
  return [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel(
        [](KernelContext& ctx) -> Status { return cast_tensor(ctx.input(0), ctx.output(0)); });
  };
}

void register_cast(OpRegistry& r) {
  auto cast_infer = [](TypeSet types) -> InferFn {
    return [types](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
      const ir::Attribute* to = ctx.node().attr("to");
      if (!to) return ctx.invalid("attribute 'to' is required");
      BRINK_RETURN_IF_ERROR(check_cast_target(ctx, to->i, types));
      ctx.set_output(0, TensorType(static_cast<DataType>(to->i), ctx.input_type(0).dims));
      return Status::ok();
    };
  };
  if constexpr (op_selected("", "Cast"))
    add_op(r, "Cast", {{6, kAll3}, {9, kAll3}, {13, kAll4}, {19, kAll4}, {21, kAll4}}, cast_infer,
           cast_create());

  auto cast_like_infer = [](TypeSet types) -> InferFn {
    return [types](InferContext& ctx) -> Status {
      BRINK_RETURN_IF_ERROR(check_input(ctx, 0, types));
      BRINK_RETURN_IF_ERROR(check_input(ctx, 1, types));
      ctx.set_output(0, TensorType(ctx.input_dtype(1), ctx.input_type(0).dims));
      return Status::ok();
    };
  };
  if constexpr (op_selected("", "CastLike"))
    add_op(r, "CastLike", {{15, kAll4}, {19, kAll4}, {21, kAll4}}, cast_like_infer, cast_create());
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  register_unary_math(r);
  register_activations(r);
  register_binary(r);
  register_variadic(r);
  register_where(r);
  register_cast(r);
}

}  // namespace brink::ops
