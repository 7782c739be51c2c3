// Reductions (Reduce*), arg-reductions (ArgMax/ArgMin), the softmax family (Softmax,
// LogSoftmax, Hardmax), TopK and CumSum.
//
// Every kernel views its input as [outer, n, inner] around the axis (or, for Reduce*, as
// runs of reduced and kept dims) so that the innermost loop always walks contiguous memory:
// when the axis is last (Softmax in attention, ReduceMean in LayerNorm) each row is one
// contiguous scan; otherwise the loop over `inner` is the contiguous one.
//
// float32 fast paths (src/kernels/softmax.h, elementwise.h; vectorized per ISA, threaded):
// Softmax and LogSoftmax along the last axis (any opset < 13 axis, which flattens the tail),
// and ReduceSum / ReduceMean whose reduced dims are one block of the shape (ignoring size-1
// dims): a trailing block reduces rows, any other block sums rows of columns. Everything else
// runs the reference kernels, the fast paths' oracle in tests/unit/elementwise_fast_test.cc.
// The fast sums accumulate in float (four vector accumulators), the reference in double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include "kernels/elementwise.h"
#include "kernels/softmax.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

using DTypes = std::vector<DataType>;

const DTypes kFloatTypes = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                            DataType::kBFloat16};
// ReduceSum/Mean/Prod/L1/L2/LogSum/LogSumExp/SumSquare and CumSum.
const DTypes kReduceTypes = {DataType::kFloat32,  DataType::kFloat64, DataType::kFloat16,
                             DataType::kBFloat16, DataType::kInt32,   DataType::kInt64,
                             DataType::kUInt32,   DataType::kUInt64};
// ReduceMax/Min: int8/uint8 since opset 12, bool since opset 20.
const DTypes kMinMaxTypes = {DataType::kFloat32,  DataType::kFloat64, DataType::kFloat16,
                             DataType::kBFloat16, DataType::kInt32,   DataType::kInt64,
                             DataType::kUInt32,   DataType::kUInt64,  DataType::kInt8,
                             DataType::kUInt8,    DataType::kBool};
// ArgMax/ArgMin: every numeric type.
const DTypes kArgTypes = {DataType::kFloat32,  DataType::kFloat64, DataType::kFloat16,
                          DataType::kBFloat16, DataType::kInt8,    DataType::kUInt8,
                          DataType::kInt16,    DataType::kUInt16,  DataType::kInt32,
                          DataType::kUInt32,   DataType::kInt64,   DataType::kUInt64};
// TopK: numeric types except bfloat16.
const DTypes kTopKTypes = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                           DataType::kInt8,    DataType::kUInt8,   DataType::kInt16,
                           DataType::kUInt16,  DataType::kInt32,   DataType::kUInt32,
                           DataType::kInt64,   DataType::kUInt64};
const DTypes kIndexTypes = {DataType::kInt32, DataType::kInt64};

std::string dtype_list(const DTypes& types) {
  std::string s;
  for (DataType t : types) s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}

// Input `i` must be present and have one of `allowed` dtypes.
Status require_dtype(const InferContext& ctx, size_t i, const DTypes& allowed) {
  if (!ctx.has_input(i)) return ctx.invalid("input " + std::to_string(i) + " is required");
  const DataType t = ctx.input_dtype(i);
  if (std::find(allowed.begin(), allowed.end(), t) != allowed.end()) return Status::ok();
  const std::string msg = "input " + std::to_string(i) + " has dtype " + dtype_name(t) +
                          ", expected one of " + dtype_list(allowed);
  return dtype_is_supported(t) ? ctx.invalid(msg) : ctx.unsupported_here(msg);
}

template <typename T>
inline constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Converts a double result to T; integer results truncate and saturate (a log of 0 gives
// -inf, which must not become undefined behaviour).
template <typename T>
T from_double(double v) {
  if constexpr (kIsInt<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

template <typename C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>)
    return std::isnan(v);
  else
    return false;
}

// Input dims as concrete sizes (-1 where unknown).
std::vector<Dim> input_dims(const InferContext& ctx, size_t i) {
  return *ctx.input_type(i).dims;
}

// The [outer, n, inner] split of `shape` around `axis`.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_at(const Shape& shape, int64_t axis) {
  AxisSplit s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    const int64_t v = shape[static_cast<size_t>(d)];
    if (d < axis)
      s.outer *= v;
    else if (d == axis)
      s.n = v;
    else
      s.inner *= v;
  }
  return s;
}

// ---- Reduce* ------------------------------------------------------------------------------

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

// Which dims a reduction removes. Empty `axes` means all dims, or none with
// noop_with_empty_axes. Repeated axes are folded into one.
Result<std::vector<bool>> reduced_mask(const InferContext& ctx, const std::vector<int64_t>& axes,
                                       int64_t rank, bool noop_with_empty_axes) {
  std::vector<bool> mask(static_cast<size_t>(rank), axes.empty() && !noop_with_empty_axes);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      return ctx.invalid("axis " + std::to_string(a) + " is out of range for rank " +
                         std::to_string(rank));
    mask[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
  }
  return mask;
}

// How a reduction walks its input: the dims are merged into runs of reduced / kept dims
// (size-1 dims dropped), the last run is walked by a contiguous inner loop and the others
// by an iterator that keeps the input and output offsets.
struct ReducePlan {
  Shape outer_shape;
  std::vector<int64_t> in_strides, out_strides;
  int64_t inner = 1;
  bool inner_reduced = false;
  int64_t count = 1;  // input elements folded into each output element

  ReducePlan(const Shape& shape, const std::vector<bool>& mask) {
    std::vector<std::pair<int64_t, bool>> runs;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (mask[d]) count *= shape[d];
      if (shape[d] == 1) continue;
      if (!runs.empty() && runs.back().second == mask[d])
        runs.back().first *= shape[d];
      else
        runs.emplace_back(shape[d], mask[d]);
    }
    if (runs.empty()) runs.emplace_back(1, false);
    inner = runs.back().first;
    inner_reduced = runs.back().second;
    int64_t in_stride = inner, out_stride = inner_reduced ? 1 : inner;
    const size_t m = runs.size() - 1;
    outer_shape.resize(m);
    in_strides.resize(m);
    out_strides.resize(m);
    for (size_t r = m; r-- > 0;) {
      outer_shape[r] = runs[r].first;
      in_strides[r] = in_stride;
      in_stride *= runs[r].first;
      out_strides[r] = runs[r].second ? 0 : out_stride;
      if (!runs[r].second) out_stride *= runs[r].first;
    }
  }

  // step(acc_index, input_index) for every input element, inner loop contiguous.
  template <typename Step>
  void for_each(Step step) const {
    for (StridedIterator it(outer_shape, {in_strides, out_strides}); !it.done(); it.next()) {
      const int64_t i0 = it.offset(0), o0 = it.offset(1);
      if (inner_reduced) {
        for (int64_t j = 0; j < inner; ++j) step(o0, i0 + j);
      } else {
        for (int64_t j = 0; j < inner; ++j) step(o0 + j, i0 + j);
      }
    }
  }
};

// The reductions run on the input widened to one of three types: double (floating inputs),
// uint64_t (unsigned integers) or int64_t (signed integers and bool), so the loops below exist
// three times rather than once per element type. Widening is exact and changes no result:
// floating inputs already accumulated in double and compare the same in any wider type;
// integers accumulate in uint64_t (wrapping, as NumPy does in the input type) and compare in a
// type that holds all their values. reduce_typed<T> widens, and narrows the results to T.
template <typename T>
using wide_t = std::conditional_t<
    std::is_floating_point_v<compute_t<T>>, double,
    std::conditional_t<std::is_unsigned_v<T> && !std::is_same_v<T, bool>, uint64_t, int64_t>>;

// What reduce_wide leaves per output element: one of these is filled.
template <typename W>
struct WideResults {
  std::vector<W> extreme;         // Max, Min
  std::vector<double> real;       // L2, LogSum, LogSumExp; floating inputs' other kinds
  std::vector<uint64_t> wrapped;  // integer inputs' Sum, Prod, L1, SumSquare, Mean (the sum)
};

template <typename W>
void reduce_wide(ReduceKind kind, const W* in, const ReducePlan& plan, int64_t n_out,
                 bool empty_input, W extreme_init, WideResults<W>* r) {
  constexpr bool kInt = !std::is_same_v<W, double>;
  const auto each = [&](auto step) {
    if (!empty_input) plan.for_each(step);  // else every output reduces the empty set
  };
  const size_t n = static_cast<size_t>(n_out);

  if (kind == ReduceKind::kMax || kind == ReduceKind::kMin) {
    r->extreme.assign(n, extreme_init);
    W* a = r->extreme.data();
    // A NaN, once seen, stays (as numpy's maximum.reduce does).
    if (kind == ReduceKind::kMax)
      each([&](int64_t o, int64_t i) {
        if (in[i] > a[o] || is_nan(in[i])) a[o] = in[i];
      });
    else
      each([&](int64_t o, int64_t i) {
        if (in[i] < a[o] || is_nan(in[i])) a[o] = in[i];
      });
    return;
  }

  const auto real = [&](int64_t i) { return static_cast<double>(in[i]); };
  if (kind == ReduceKind::kL2 || kind == ReduceKind::kLogSum || kind == ReduceKind::kLogSumExp ||
      (kind == ReduceKind::kMean && !kInt)) {
    // Results that go through a float function (and the float mean) accumulate in double;
    // integer inputs get a truncated result.
    r->real.assign(n, 0.0);
    double* a = r->real.data();
    std::vector<double> shift;
    if (kind == ReduceKind::kLogSumExp) {
      // log(sum(exp(x - m))) + m with m the largest finite element (0 if none), so that
      // large inputs do not overflow and -inf inputs do not make NaN.
      shift.assign(n, -std::numeric_limits<double>::infinity());
      double* m = shift.data();
      each([&](int64_t o, int64_t i) {
        if (std::isfinite(real(i)) && real(i) > m[o]) m[o] = real(i);
      });
      for (double& v : shift)
        if (!std::isfinite(v)) v = 0;
      each([&](int64_t o, int64_t i) { a[o] += std::exp(real(i) - m[o]); });
    } else if (kind == ReduceKind::kL2) {
      each([&](int64_t o, int64_t i) { a[o] += real(i) * real(i); });
    } else {
      each([&](int64_t o, int64_t i) { a[o] += real(i); });
    }
    const double count = static_cast<double>(plan.count);
    for (size_t o = 0; o < n; ++o) {
      switch (kind) {
        case ReduceKind::kL2:
          a[o] = std::sqrt(a[o]);
          break;
        case ReduceKind::kLogSum:
          a[o] = std::log(a[o]);
          break;
        case ReduceKind::kLogSumExp:
          a[o] = std::log(a[o]) + shift[o];
          break;
        default:
          a[o] = a[o] / count;
          break;  // kMean; the empty set gives 0/0 = NaN
      }
    }
    return;
  }

  // Sum, Prod, L1, SumSquare, and Mean of integers (the sum here; reduce_typed divides).
  using A = std::conditional_t<kInt, uint64_t, double>;
  std::vector<A>& acc = [&]() -> std::vector<A>& {
    if constexpr (kInt)
      return r->wrapped;
    else
      return r->real;
  }();
  acc.assign(n, kind == ReduceKind::kProd ? A(1) : A(0));
  A* a = acc.data();
  const auto va = [&](int64_t i) { return static_cast<A>(in[i]); };
  switch (kind) {
    case ReduceKind::kProd:
      each([&](int64_t o, int64_t i) { a[o] *= va(i); });
      break;
    case ReduceKind::kSumSquare:
      each([&](int64_t o, int64_t i) { a[o] += va(i) * va(i); });
      break;
    case ReduceKind::kL1:
      each([&](int64_t o, int64_t i) {
        if constexpr (!kInt)
          a[o] += std::abs(va(i));
        else if constexpr (std::is_signed_v<W>)
          a[o] += in[i] < 0 ? A(0) - va(i) : va(i);
        else
          a[o] += va(i);
      });
      break;
    default:
      each([&](int64_t o, int64_t i) { a[o] += va(i); });
      break;
  }
}

template <typename T>
void reduce_typed(ReduceKind kind, const Tensor& x, const std::vector<bool>& mask, Tensor& y) {
  using C = compute_t<T>;
  using W = wide_t<T>;
  const int64_t n_out = y.numel();
  if (n_out == 0) return;
  const ReducePlan plan(x.shape(), mask);
  const T* in = x.data<T>();
  std::vector<W> widened;
  const W* wide = nullptr;
  if constexpr (std::is_same_v<T, W>) {
    wide = in;
  } else {
    widened.resize(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < widened.size(); ++i) widened[i] = static_cast<W>(static_cast<C>(in[i]));
    wide = widened.data();
  }
  // Max and Min start from the identity of T's range (what the empty set gives).
  const bool is_max = kind == ReduceKind::kMax;
  C init;
  if constexpr (std::is_same_v<T, bool>)
    init = !is_max;
  else if constexpr (std::numeric_limits<C>::has_infinity)
    init = is_max ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
  else
    init = is_max ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
  WideResults<W> r;
  reduce_wide<W>(kind, wide, plan, n_out, x.numel() == 0, static_cast<W>(init), &r);

  T* out = y.data<T>();
  if (!r.extreme.empty()) {
    for (int64_t o = 0; o < n_out; ++o) out[o] = static_cast<T>(static_cast<C>(r.extreme[o]));
  } else if (!r.real.empty()) {
    for (int64_t o = 0; o < n_out; ++o) out[o] = from_double<T>(r.real[o]);
  } else if constexpr (kIsInt<T>) {
    for (int64_t o = 0; o < n_out; ++o) {
      const uint64_t a = r.wrapped[static_cast<size_t>(o)];
      if (kind == ReduceKind::kMean) {
        const int64_t c = plan.count;
        if constexpr (std::is_signed_v<T>)
          out[o] = c == 0 ? T(0) : static_cast<T>(static_cast<int64_t>(static_cast<T>(a)) / c);
        else
          out[o] = c == 0 ? T(0)
                          : static_cast<T>(static_cast<uint64_t>(static_cast<T>(a)) /
                                           static_cast<uint64_t>(c));
      } else {
        out[o] = static_cast<T>(a);
      }
    }
  }
}

// ReduceSum / ReduceMean of float32 with the fast kernels when the reduced dims (size-1 dims
// ignored) form one block: [kept, reduced] reduces rows, [reduced, kept] and
// [kept, reduced, kept] add rows of columns. False when the shape needs the reference.
// `mask` has bit d set for each reduced dim d (rank <= 64). Allocates nothing.
bool fast_reduce_sum(const Tensor& x, uint64_t mask, bool mean, Tensor& y, Isa isa,
                     ThreadPool* pool) {
  if (x.numel() == 0 || y.numel() == 0) return false;
  // Runs of kept / reduced dims, outermost first.
  int64_t size[3] = {1, 1, 1};
  bool reduced[3] = {false, false, false};
  int runs = 0;
  int64_t count = 1;
  for (int64_t d = 0; d < x.rank(); ++d) {
    const int64_t v = x.dim(d);
    const bool r = ((mask >> d) & 1u) != 0;
    if (r) count *= v;
    if (v == 1) continue;
    if (runs > 0 && reduced[runs - 1] == r) {
      size[runs - 1] *= v;
      continue;
    }
    if (runs == 3) return false;
    size[runs] = v;
    reduced[runs] = r;
    ++runs;
  }
  const float divisor = mean ? static_cast<float>(count) : 1.0f;
  const float* in = x.data<float>();
  float* out = y.data<float>();
  if (runs == 0 || (runs == 1 && !reduced[0])) return false;  // nothing reduced
  if (runs == 1 || (runs == 2 && reduced[1])) {
    const int64_t rows = runs == 1 ? 1 : size[0], n = runs == 1 ? size[0] : size[1];
    kernels::reduce_rows_f32(in, out, rows, n, divisor, isa, pool);
    return true;
  }
  if (runs == 2) {  // [reduced, kept]
    kernels::reduce_cols_f32(in, out, 1, size[0], size[1], divisor, isa, pool);
    return true;
  }
  if (!reduced[1]) return false;  // [reduced, kept, reduced]
  kernels::reduce_cols_f32(in, out, size[0], size[1], size[2], divisor, isa, pool);
  return true;
}

// axes_from_input: opset 13+ ReduceSum and opset 18+ others read axes from input 1.
OpDef reduce_op(const std::string& name, ReduceKind kind, int since, int max_version,
                bool axes_from_input) {
  const bool min_max = kind == ReduceKind::kMax || kind == ReduceKind::kMin;
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = max_version;
  d.infer = [min_max, axes_from_input](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 0, min_max ? kMinMaxTypes : kReduceTypes));
    const DataType dt = ctx.input_dtype(0);
    const bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
    const bool noop = axes_from_input && ctx.node().attr_int("noop_with_empty_axes", 0) != 0;
    std::optional<std::vector<int64_t>> axes;  // nullopt: not known yet
    if (!axes_from_input) {
      axes = ctx.node().attr_ints("axes");
    } else if (!ctx.has_input(1)) {
      axes = std::vector<int64_t>();
    } else {
      BRINK_RETURN_IF_ERROR(require_dtype(ctx, 1, {DataType::kInt64}));
      if (const Tensor* t = ctx.input_value(1)) {
        axes = tensor_to_int64s(*t);
      } else if (ctx.input_type(1).is_static() &&
                 shape_numel(ctx.input_type(1).static_shape()) == 0) {
        axes = std::vector<int64_t>();
      }
    }
    const TensorType& xt = ctx.input_type(0);
    if (!xt.has_rank()) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    const std::vector<Dim> in = input_dims(ctx, 0);
    const int64_t rank = static_cast<int64_t>(in.size());
    if (!axes) {
      if (keepdims) {
        std::vector<Dim> out;
        for (const Dim& x : in) out.push_back(x.known() && x.value == 1 ? Dim(1) : Dim());
        ctx.set_output(0, dt, out);
      } else if (ctx.input_type(1).is_static() && ctx.input_type(1).rank() == 1) {
        const int64_t n = ctx.input_type(1).static_shape()[0];
        if (n > rank)
          return ctx.invalid("axes has " + std::to_string(n) + " entries for rank " +
                             std::to_string(rank));
        ctx.set_output(0, dt, std::vector<Dim>(static_cast<size_t>(rank - n)));
      } else {
        ctx.set_output(0, TensorType(dt, std::nullopt));
      }
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(std::vector<bool> mask, reduced_mask(ctx, *axes, rank, noop));
    std::vector<Dim> out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!mask[i])
        out.push_back(in[i]);
      else if (keepdims)
        out.push_back(Dim(1));
    }
    ctx.set_output(0, dt, out);
    return Status::ok();
  };
  d.create = [kind,
              axes_from_input](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool noop = axes_from_input && c.node.attr_int("noop_with_empty_axes", 0) != 0;
    const std::vector<int64_t> attr_axes = c.node.attr_ints("axes");
    const bool fast = kernels::fast_kernels_enabled() &&
                      (kind == ReduceKind::kSum || kind == ReduceKind::kMean) && c.has_input(0) &&
                      c.input_dtype(0) == DataType::kFloat32;
    const Isa isa = kernels::usable_isa(c.isa);
    return make_kernel([kind, axes_from_input, noop, attr_axes, fast,
                        isa](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      if (fast && x.dtype() == DataType::kFloat32 && x.rank() <= 64) {
        // The same mask as below, without allocating (run() must not in the steady state).
        const Tensor* axes_t = axes_from_input && ctx.has_input(1) ? &ctx.input(1) : nullptr;
        const int64_t n_axes = axes_from_input ? (axes_t != nullptr ? axes_t->numel() : 0)
                                               : static_cast<int64_t>(attr_axes.size());
        uint64_t bits = 0;
        if (n_axes == 0 && !noop)
          bits = x.rank() == 64 ? ~uint64_t{0} : (uint64_t{1} << x.rank()) - 1;
        bool valid = true;
        for (int64_t i = 0; i < n_axes && valid; ++i) {
          const int64_t a = normalize_axis_unchecked(
              axes_t != nullptr ? axes_t->element_as_int64(i) : attr_axes[static_cast<size_t>(i)],
              x.rank());
          valid = a >= 0 && a < x.rank();
          if (valid) bits |= uint64_t{1} << a;
        }
        if (valid && fast_reduce_sum(x, bits, kind == ReduceKind::kMean, y, isa, ctx.thread_pool()))
          return Status::ok();
      }
      const std::vector<int64_t> axes =
          axes_from_input
              ? (ctx.has_input(1) ? tensor_to_int64s(ctx.input(1)) : std::vector<int64_t>())
              : attr_axes;
      const int64_t rank = x.rank();
      // Inference has already validated the axes against this shape.
      std::vector<bool> mask(static_cast<size_t>(rank), axes.empty() && !noop);
      for (int64_t a : axes) mask[static_cast<size_t>(normalize_axis_unchecked(a, rank))] = true;
      // With noop_with_empty_axes and no axes nothing is reduced: each output element is the
      // reduction of the one-element set {x}, which is x for Sum/Mean/Max/Min/Prod but |x|, x*x
      // or log(x) for the others (numpy's axis=()), so it goes through the general path.
      visit_dtype(x.dtype(), [&]<typename T>() { reduce_typed<T>(kind, x, mask, y); });
      return Status::ok();
    });
  };
  return d;
}

// ---- ArgMax / ArgMin ----------------------------------------------------------------------

OpDef arg_op(const std::string& name, bool is_max) {
  OpDef d;
  d.op_type = name;
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 0, kArgTypes));
    const bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
    if (!ctx.input_type(0).has_rank()) {
      ctx.set_output(0, TensorType(DataType::kInt64, std::nullopt));
      return Status::ok();
    }
    std::vector<Dim> in = input_dims(ctx, 0);
    const int64_t rank = static_cast<int64_t>(in.size());
    BRINK_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
    if (rank > 0) {
      const Dim& n = in[static_cast<size_t>(axis)];
      if (n.known() && n.value == 0)
        return ctx.invalid("cannot take the arg of an empty axis " + std::to_string(axis));
      if (keepdims)
        in[static_cast<size_t>(axis)] = Dim(1);
      else
        in.erase(in.begin() + axis);
    }
    ctx.set_output(0, DataType::kInt64, in);
    return Status::ok();
  };
  d.create = [is_max](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    const bool last = c.node.attr_int("select_last_index", 0) != 0;
    return make_kernel([is_max, axis_attr, last](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      int64_t* out = ctx.output(0).data<int64_t>();
      if (x.rank() == 0) {
        out[0] = 0;
        return Status::ok();
      }
      const AxisSplit s = split_at(x.shape(), normalize_axis_unchecked(axis_attr, x.rank()));
      visit_dtype(x.dtype(), [&]<typename T>() {
        using C = compute_t<T>;
        const T* in = x.data<T>();
        // Strict comparison keeps the first extreme; with select_last_index a tie also wins.
        auto better = [&](C v, C best) {
          if (is_max) return last ? v >= best : v > best;
          return last ? v <= best : v < best;
        };
        std::vector<C> best(static_cast<size_t>(s.inner));
        for (int64_t o = 0; o < s.outer; ++o) {
          const T* base = in + o * s.n * s.inner;
          int64_t* idx = out + o * s.inner;
          for (int64_t k = 0; k < s.inner; ++k) {
            best[static_cast<size_t>(k)] = static_cast<C>(base[k]);
            idx[k] = 0;
          }
          for (int64_t j = 1; j < s.n; ++j) {
            const T* row = base + j * s.inner;
            for (int64_t k = 0; k < s.inner; ++k) {
              const C v = static_cast<C>(row[k]);
              if (better(v, best[static_cast<size_t>(k)])) {
                best[static_cast<size_t>(k)] = v;
                idx[k] = j;
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- Softmax, LogSoftmax, Hardmax ---------------------------------------------------------

enum class SoftmaxKind { kSoftmax, kLogSoftmax, kHardmax };

// One [outer, n, inner] block of softmax-like work; `scratch` holds n*inner values.
template <typename T>
void softmax_typed(SoftmaxKind kind, const T* x, T* y, const AxisSplit& s) {
  using C = compute_t<T>;
  const int64_t n = s.n, inner = s.inner;
  if (n == 0) return;
  if (inner == 1) {
    // Axis is last (or the coerced 2-D view of opset < 13): each row is contiguous.
    for (int64_t o = 0; o < s.outer; ++o) {
      const T* xr = x + o * n;
      T* yr = y + o * n;
      C m = static_cast<C>(xr[0]);
      int64_t arg = 0;
      for (int64_t j = 1; j < n; ++j)
        if (static_cast<C>(xr[j]) > m) {
          m = static_cast<C>(xr[j]);
          arg = j;
        }
      if (kind == SoftmaxKind::kHardmax) {
        for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(C(j == arg ? 1 : 0));
        continue;
      }
      C sum = 0;
      if (kind == SoftmaxKind::kSoftmax) {
        if constexpr (std::is_same_v<T, C>) {
          for (int64_t j = 0; j < n; ++j) {
            const C e = std::exp(static_cast<C>(xr[j]) - m);
            yr[j] = static_cast<T>(e);
            sum += e;
          }
          const C inv = C(1) / sum;
          for (int64_t j = 0; j < n; ++j) yr[j] = yr[j] * inv;
        } else {
          // 16-bit outputs: recompute exp rather than divide an already rounded value (and
          // leave y alone until x is no longer needed: y may be x's buffer).
          for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<C>(xr[j]) - m);
          for (int64_t j = 0; j < n; ++j)
            yr[j] = static_cast<T>(std::exp(static_cast<C>(xr[j]) - m) / sum);
        }
      } else {
        for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<C>(xr[j]) - m);
        // (x - m) - log(sum), not x - (m + log(sum)): near-zero outputs keep their precision.
        const C log_sum = std::log(sum);
        for (int64_t j = 0; j < n; ++j)
          yr[j] = static_cast<T>((static_cast<C>(xr[j]) - m) - log_sum);
      }
    }
    return;
  }
  // Axis in the middle: keep per-column max and sum, walking rows of `inner` contiguous values.
  std::vector<C> m(static_cast<size_t>(inner)), sum(static_cast<size_t>(inner));
  std::vector<int64_t> arg(static_cast<size_t>(inner));
  for (int64_t o = 0; o < s.outer; ++o) {
    const T* xb = x + o * n * inner;
    T* yb = y + o * n * inner;
    for (int64_t k = 0; k < inner; ++k) {
      m[static_cast<size_t>(k)] = static_cast<C>(xb[k]);
      arg[static_cast<size_t>(k)] = 0;
      sum[static_cast<size_t>(k)] = 0;
    }
    for (int64_t j = 1; j < n; ++j)
      for (int64_t k = 0; k < inner; ++k) {
        const C v = static_cast<C>(xb[j * inner + k]);
        if (v > m[static_cast<size_t>(k)]) {
          m[static_cast<size_t>(k)] = v;
          arg[static_cast<size_t>(k)] = j;
        }
      }
    if (kind == SoftmaxKind::kHardmax) {
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < inner; ++k)
          yb[j * inner + k] = static_cast<T>(C(arg[static_cast<size_t>(k)] == j ? 1 : 0));
      continue;
    }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < inner; ++k)
        sum[static_cast<size_t>(k)] +=
            std::exp(static_cast<C>(xb[j * inner + k]) - m[static_cast<size_t>(k)]);
    if (kind == SoftmaxKind::kSoftmax) {
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < inner; ++k)
          yb[j * inner + k] = static_cast<T>(
              std::exp(static_cast<C>(xb[j * inner + k]) - m[static_cast<size_t>(k)]) /
              sum[static_cast<size_t>(k)]);
    } else {
      for (int64_t k = 0; k < inner; ++k)
        sum[static_cast<size_t>(k)] = std::log(sum[static_cast<size_t>(k)]);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < inner; ++k)
          yb[j * inner + k] =
              static_cast<T>((static_cast<C>(xb[j * inner + k]) - m[static_cast<size_t>(k)]) -
                             sum[static_cast<size_t>(k)]);
    }
  }
}

// Opset < 13 coerces the input to 2-D [prod(dims[:axis]), prod(dims[axis:])] (default axis
// 1); opset >= 13 works along a single axis (default -1).
OpDef softmax_op(const std::string& name, SoftmaxKind kind, int since, int max_version) {
  const bool coerce_2d = since < 13;
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = max_version;
  d.infer = [coerce_2d](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 0, kFloatTypes));
    if (ctx.input_type(0).has_rank()) {
      const int64_t rank = ctx.input_type(0).rank();
      const int64_t axis = ctx.node().attr_int("axis", coerce_2d ? 1 : -1);
      // Before opset 11 the 2-D coercion also accepted axis == rank (all in the outer dim).
      const int64_t max_axis = coerce_2d && ctx.opset() < 11 ? rank : rank - 1;
      if (axis < -rank || axis > max_axis)
        return ctx.invalid("axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(rank));
    }
    return propagate_input_type(ctx);
  };
  d.create = [kind, coerce_2d](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", coerce_2d ? 1 : -1);
    const bool fast = kernels::fast_kernels_enabled() && kind != SoftmaxKind::kHardmax &&
                      c.has_input(0) && c.input_dtype(0) == DataType::kFloat32;
    const Isa isa = kernels::usable_isa(c.isa);
    return make_kernel([kind, coerce_2d, axis_attr, fast, isa](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      if (x.numel() == 0) return Status::ok();
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      AxisSplit s;
      if (coerce_2d) {
        for (int64_t dd = 0; dd < x.rank(); ++dd) (dd < axis ? s.outer : s.n) *= x.dim(dd);
      } else {
        s = split_at(x.shape(), axis);
      }
      if (fast && s.inner == 1 && x.dtype() == DataType::kFloat32) {
        kernels::softmax_rows_f32(x.data<float>(), y.data<float>(), s.outer, s.n,
                                  kind == SoftmaxKind::kLogSoftmax, isa, ctx.thread_pool());
        return Status::ok();
      }
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (std::is_floating_point_v<compute_t<T>>)
          softmax_typed<T>(kind, x.data<T>(), y.data<T>(), s);
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- TopK ---------------------------------------------------------------------------------

// k_from_input: opset 10+ reads k from input 1; opset 1 from the attribute.
OpDef topk_op(int since, int max_version, bool k_from_input) {
  OpDef d;
  d.op_type = "TopK";
  d.since_version = since;
  d.max_version = max_version;
  d.infer = [k_from_input](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 0, ctx.opset() < 11 ? kFloatTypes : kTopKTypes));
    const DataType dt = ctx.input_dtype(0);
    std::optional<int64_t> k;
    if (!k_from_input) {
      if (!ctx.node().attr("k")) return ctx.invalid("attribute 'k' is required");
      k = ctx.node().attr_int("k", 0);
    } else {
      BRINK_RETURN_IF_ERROR(require_dtype(ctx, 1, {DataType::kInt64}));
      if (const Tensor* t = ctx.input_value(1)) {
        if (t->numel() != 1)
          return ctx.invalid("input 'K' has " + std::to_string(t->numel()) +
                             " elements, expected 1");
        k = t->element_as_int64(0);
      }
    }
    if (k && *k < 0) return ctx.invalid("k is " + std::to_string(*k) + ", expected >= 0");
    if (!ctx.input_type(0).has_rank()) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      ctx.set_output(1, TensorType(DataType::kInt64, std::nullopt));
      return Status::ok();
    }
    std::vector<Dim> dims = input_dims(ctx, 0);
    const int64_t rank = static_cast<int64_t>(dims.size());
    if (rank == 0) return ctx.invalid("input has rank 0, expected rank >= 1");
    BRINK_ASSIGN_OR_RETURN(int64_t axis,
                           normalize_axis(ctx, ctx.node().attr_int("axis", -1), rank));
    Dim& n = dims[static_cast<size_t>(axis)];
    if (k && n.known() && *k > n.value)
      return ctx.invalid("k is " + std::to_string(*k) + " but axis " + std::to_string(axis) +
                         " has size " + std::to_string(n.value));
    n = k ? Dim(*k) : Dim();
    ctx.set_output(0, dt, dims);
    ctx.set_output(1, DataType::kInt64, dims);
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", -1);
    const bool largest = c.node.attr_int("largest", 1) != 0;
    // sorted=0 leaves the order unspecified; returning sorted order is one valid choice.
    const bool has_values = c.node.outputs.size() > 0 && c.node.outputs[0] != ir::kNoValue;
    const bool has_indices = c.node.outputs.size() > 1 && c.node.outputs[1] != ir::kNoValue;
    return make_kernel([axis_attr, largest, has_values, has_indices](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      const AxisSplit s = split_at(x.shape(), axis);
      Tensor& vt = ctx.output(0);
      const int64_t k = vt.defined() ? vt.dim(axis) : ctx.output(1).dim(axis);
      if (k == 0 || s.outer * s.inner == 0) return Status::ok();
      visit_dtype(x.dtype(), [&]<typename T>() {
        using C = compute_t<T>;
        if constexpr (!std::is_same_v<T, bool>) {
          const T* in = x.data<T>();
          T* vals = has_values ? vt.data<T>() : nullptr;
          int64_t* idxs = has_indices ? ctx.output(1).data<int64_t>() : nullptr;
          std::vector<std::pair<C, int64_t>> row(static_cast<size_t>(s.n));
          // Ties go to the lower index; NaN counts as larger than every number, as in ORT.
          auto before = [largest](const std::pair<C, int64_t>& a, const std::pair<C, int64_t>& b) {
            const bool an = is_nan(a.first), bn = is_nan(b.first);
            if (an || bn) {
              if (an && bn) return a.second < b.second;
              return largest ? an : bn;
            }
            if (a.first != b.first) return largest ? a.first > b.first : a.first < b.first;
            return a.second < b.second;
          };
          for (int64_t o = 0; o < s.outer; ++o)
            for (int64_t i = 0; i < s.inner; ++i) {
              const T* base = in + o * s.n * s.inner + i;
              for (int64_t j = 0; j < s.n; ++j)
                row[static_cast<size_t>(j)] = {static_cast<C>(base[j * s.inner]), j};
              std::partial_sort(row.begin(), row.begin() + k, row.end(), before);
              const int64_t ob = o * k * s.inner + i;
              for (int64_t j = 0; j < k; ++j) {
                if (vals)
                  vals[ob + j * s.inner] = static_cast<T>(row[static_cast<size_t>(j)].first);
                if (idxs) idxs[ob + j * s.inner] = row[static_cast<size_t>(j)].second;
              }
            }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- CumSum -------------------------------------------------------------------------------

OpDef cumsum_op() {
  OpDef d;
  d.op_type = "CumSum";
  d.since_version = 11;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 0, kReduceTypes));
    BRINK_RETURN_IF_ERROR(require_dtype(ctx, 1, kIndexTypes));
    const TensorType& at = ctx.input_type(1);
    if (at.has_rank() && at.rank() > 1)
      return ctx.invalid("input 'axis' has rank " + std::to_string(at.rank()) +
                         ", expected 0 or 1");
    if (const Tensor* a = ctx.input_value(1)) {
      if (a->numel() != 1)
        return ctx.invalid("input 'axis' has " + std::to_string(a->numel()) +
                           " elements, expected 1");
      if (ctx.input_type(0).has_rank())
        BRINK_RETURN_IF_ERROR(
            normalize_axis(ctx, a->element_as_int64(0), ctx.input_type(0).rank()).status());
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool exclusive = c.node.attr_int("exclusive", 0) != 0;
    const bool reverse = c.node.attr_int("reverse", 0) != 0;
    return make_kernel([exclusive, reverse](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      if (x.numel() == 0) return Status::ok();
      if (x.rank() == 0) {
        std::memcpy(y.raw_data(), x.raw_data(), x.nbytes());
        if (exclusive) std::memset(y.raw_data(), 0, y.nbytes());
        return Status::ok();
      }
      const AxisSplit s =
          split_at(x.shape(), normalize_axis_unchecked(ctx.input(1).element_as_int64(0), x.rank()));
      visit_dtype(x.dtype(), [&]<typename T>() {
        using C = compute_t<T>;
        if constexpr (!std::is_same_v<T, bool>) {
          using A = std::conditional_t<kIsInt<T>, uint64_t, C>;  // integers wrap
          const T* in = x.data<T>();
          T* out = y.data<T>();
          std::vector<A> acc(static_cast<size_t>(s.inner));
          for (int64_t o = 0; o < s.outer; ++o) {
            std::fill(acc.begin(), acc.end(), A(0));
            for (int64_t step = 0; step < s.n; ++step) {
              const int64_t j = reverse ? s.n - 1 - step : step;
              const T* xr = in + (o * s.n + j) * s.inner;
              T* yr = out + (o * s.n + j) * s.inner;
              for (int64_t k = 0; k < s.inner; ++k) {
                A v;
                if constexpr (kIsInt<T>)
                  v = static_cast<A>(static_cast<int64_t>(xr[k]));
                else
                  v = static_cast<C>(xr[k]);
                A& a = acc[static_cast<size_t>(k)];
                if (exclusive) {
                  yr[k] = static_cast<T>(a);
                  a += v;
                } else {
                  a += v;
                  yr[k] = static_cast<T>(a);
                }
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  // Each reduction took its axes as an input from opset 13 (ReduceSum) or 18 (the others).
  auto reduce = [&r](const char* name, ReduceKind kind, int axes_input_since) {
    r.add(reduce_op(name, kind, 1, axes_input_since - 1, false));
    r.add(reduce_op(name, kind, axes_input_since, 21, true));
  };
  if constexpr (op_selected("", "ReduceSum")) reduce("ReduceSum", ReduceKind::kSum, 13);
  if constexpr (op_selected("", "ReduceMean")) reduce("ReduceMean", ReduceKind::kMean, 18);
  if constexpr (op_selected("", "ReduceMax")) reduce("ReduceMax", ReduceKind::kMax, 18);
  if constexpr (op_selected("", "ReduceMin")) reduce("ReduceMin", ReduceKind::kMin, 18);
  if constexpr (op_selected("", "ReduceProd")) reduce("ReduceProd", ReduceKind::kProd, 18);
  if constexpr (op_selected("", "ReduceL1")) reduce("ReduceL1", ReduceKind::kL1, 18);
  if constexpr (op_selected("", "ReduceL2")) reduce("ReduceL2", ReduceKind::kL2, 18);
  if constexpr (op_selected("", "ReduceLogSum")) reduce("ReduceLogSum", ReduceKind::kLogSum, 18);
  if constexpr (op_selected("", "ReduceLogSumExp"))
    reduce("ReduceLogSumExp", ReduceKind::kLogSumExp, 18);
  if constexpr (op_selected("", "ReduceSumSquare"))
    reduce("ReduceSumSquare", ReduceKind::kSumSquare, 18);
  if constexpr (op_selected("", "ArgMax")) r.add(arg_op("ArgMax", true));
  if constexpr (op_selected("", "ArgMin")) r.add(arg_op("ArgMin", false));
  auto softmax = [&r](const char* name, SoftmaxKind kind) {
    r.add(softmax_op(name, kind, 1, 12));
    r.add(softmax_op(name, kind, 13, 21));
  };
  if constexpr (op_selected("", "Softmax")) softmax("Softmax", SoftmaxKind::kSoftmax);
  if constexpr (op_selected("", "LogSoftmax")) softmax("LogSoftmax", SoftmaxKind::kLogSoftmax);
  if constexpr (op_selected("", "Hardmax")) softmax("Hardmax", SoftmaxKind::kHardmax);
  if constexpr (op_selected("", "TopK")) r.add(topk_op(1, 9, false));
  if constexpr (op_selected("", "TopK")) r.add(topk_op(10, 21, true));
  if constexpr (op_selected("", "CumSum")) r.add(cumsum_op());
}

}  // namespace brink::ops
