// Pooling operators: MaxPool (with Indices), AveragePool, LpPool, their Global variants, and
// MaxUnpool.
//
// Windowed pools run over a 3-D spatial view (1-D and 2-D inputs get leading spatial dims of
// size 1). Output sizes follow the ONNX formulas; with ceil_mode a last window that would
// start in the end padding is dropped, as ONNX's reference, ONNX Runtime and PyTorch do.
// AveragePool divides by the number of window positions inside the input, or with
// count_include_pad by those inside the input plus its explicit padding (never the extra
// positions ceil_mode adds), as PyTorch does.
//
// Limits: more than 3 spatial dims is unsupported.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"
#include "ops/pool.h"

namespace brink::ops {

namespace {

constexpr size_t kMaxSpatial = 3;

int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

template <typename T>
constexpr bool is_pool_float_v =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, Float16>;

// The accumulation type: double for f64, float for every other type.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

bool is_pool_float(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16;
}

}  // namespace

// Parses the attributes for `n` spatial dims; returns an error message, empty when valid.
std::string parse_pool_attrs(const ir::Node& node, size_t n, const PoolVersion& v, int64_t opset,
                             PoolAttrs* a) {
  auto absent_before = [&](const char* name, bool allowed) -> std::string {
    if (!allowed && node.attr(name))
      return std::string("attribute '") + name + "' is not defined at opset " +
             std::to_string(opset);
    return "";
  };
  for (auto [name, allowed] : {std::pair{"ceil_mode", v.ceil_mode},
                               {"dilations", v.dilations},
                               {"storage_order", v.indices},
                               {"count_include_pad", v.count_include_pad},
                               {"p", v.kind == PoolKind::kLp}})
    if (std::string err = absent_before(name, allowed); !err.empty()) return err;

  a->auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (a->auto_pad != "NOTSET" && a->auto_pad != "SAME_UPPER" && a->auto_pad != "SAME_LOWER" &&
      a->auto_pad != "VALID")
    return "auto_pad '" + a->auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID";
  if (n == 0) return "attribute 'kernel_shape' is required";
  auto read = [&](const char* name, size_t len, int64_t fill, int64_t min,
                  std::vector<int64_t>* out) -> std::string {
    *out = node.attr_ints(name);
    if (out->empty() && !node.attr(name)) out->assign(len, fill);
    if (out->size() != len)
      return std::string(name) + " has " + std::to_string(out->size()) + " values, expected " +
             std::to_string(len);
    for (int64_t x : *out)
      if (x < min)
        return std::string(name) + " has the value " + std::to_string(x) + ", expected at least " +
               std::to_string(min);
    return "";
  };
  std::string err;
  if (!(err = read("kernel_shape", n, 1, 1, &a->kernel)).empty()) return err;
  if (!(err = read("strides", n, 1, 1, &a->strides)).empty()) return err;
  if (!(err = read("dilations", n, 1, 1, &a->dilations)).empty()) return err;
  if (!(err = read("pads", 2 * n, 0, 0, &a->pads)).empty()) return err;
  a->ceil_mode = node.attr_int("ceil_mode", 0);
  a->storage_order = node.attr_int("storage_order", 0);
  if (a->storage_order != 0 && a->storage_order != 1)
    return "storage_order is " + std::to_string(a->storage_order) + ", expected 0 or 1";
  a->count_include_pad = node.attr_int("count_include_pad", 0);
  a->p = node.attr_int("p", 2);
  if (v.kind == PoolKind::kLp && a->p < 1)
    return "p is " + std::to_string(a->p) + ", expected a positive value";
  return "";
}

// Output size and pads of one spatial dim; an error message if the window does not fit.
std::string pool_output_dim(const PoolAttrs& a, size_t i, int64_t in, int64_t* out,
                            int64_t* pad_begin, int64_t* pad_end) {
  const size_t n = a.kernel.size();
  const int64_t s = a.strides[i];
  const int64_t dk = (a.kernel[i] - 1) * a.dilations[i] + 1;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    *out = ceil_div(in, s);
    const int64_t total = std::max<int64_t>(0, (*out - 1) * s + dk - in);
    *pad_begin = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    *pad_end = total - *pad_begin;
    return "";
  }
  const bool valid = a.auto_pad == "VALID";
  *pad_begin = valid ? 0 : a.pads[i];
  *pad_end = valid ? 0 : a.pads[n + i];
  const int64_t span = in + *pad_begin + *pad_end - dk;
  if (span < 0)
    return "spatial dim " + std::to_string(i) + " of size " + std::to_string(in) + " (padded by " +
           std::to_string(*pad_begin) + "+" + std::to_string(*pad_end) +
           ") is smaller than the window size " + std::to_string(dk);
  if (a.ceil_mode) {
    *out = ceil_div(span, s) + 1;
    if ((*out - 1) * s >= in + *pad_begin) --*out;  // the last window must start in the input
  } else {
    *out = span / s + 1;
  }
  return "";
}

namespace {

// One pooling problem in the 3-D view.
struct Geometry {
  std::array<int64_t, kMaxSpatial> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1},
      dilation{1, 1, 1}, pad_begin{0, 0, 0}, pad_end{0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
};

// The kernel offsets [lo, hi) of one window along one dim that land inside the input, and
// how many land inside the input or its padding (for count_include_pad).
struct WindowRange {
  int64_t start, lo, hi, padded_count;
};
WindowRange window_range(const Geometry& g, size_t j, int64_t o) {
  WindowRange r;
  const int64_t d = g.dilation[j];
  r.start = o * g.stride[j] - g.pad_begin[j];
  r.lo = std::max<int64_t>(0, ceil_div(-r.start, d));
  r.hi = std::min(g.kernel[j], floor_div(g.in[j] - 1 - r.start, d) + 1);
  r.padded_count = std::max<int64_t>(
      0, std::min(g.kernel[j], floor_div(g.in[j] + g.pad_end[j] - 1 - r.start, d) + 1));
  return r;
}

Status pool_geometry(const PoolAttrs& a, const Shape& x, Geometry* g) {
  const size_t n = a.kernel.size();
  if (x.size() != n + 2)
    return invalid_argument("input has rank " + std::to_string(x.size()) + ", expected " +
                            std::to_string(n + 2));
  for (size_t i = 0; i < n; ++i) {
    const size_t j = kMaxSpatial - n + i;
    g->in[j] = x[2 + i];
    g->kernel[j] = a.kernel[i];
    g->stride[j] = a.strides[i];
    g->dilation[j] = a.dilations[i];
    std::string err = pool_output_dim(a, i, g->in[j], &g->out[j], &g->pad_begin[j], &g->pad_end[j]);
    if (!err.empty()) return invalid_argument(err);
  }
  return Status::ok();
}

// MaxPool over one plane; `indices` (may be null) gets flat indices into the whole input,
// row-major or, with storage_order 1, column-major over the spatial dims.
template <typename T>
void max_pool_plane(const Geometry& g, const T* x, T* y, int64_t* indices, int64_t plane_offset,
                    bool column_major) {
  using C = compute_t<T>;
  const auto [id_n, ih_n, iw_n] = g.in;
  int64_t pos = 0;
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const WindowRange rd = window_range(g, 0, od);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const WindowRange rh = window_range(g, 1, oh);
      for (int64_t ow = 0; ow < g.out[2]; ++ow, ++pos) {
        const WindowRange rw = window_range(g, 2, ow);
        C best = std::numeric_limits<C>::lowest();
        int64_t best_d = -1, best_h = -1, best_w = -1;
        for (int64_t kd = rd.lo; kd < rd.hi; ++kd) {
          const int64_t id = rd.start + kd * g.dilation[0];
          for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
            const int64_t ih = rh.start + kh * g.dilation[1];
            const T* row = x + (id * ih_n + ih) * iw_n;
            for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
              const int64_t iw = rw.start + kw * g.dilation[2];
              const C v = static_cast<C>(row[iw]);
              // Strictly greater: the first maximum in row-major order wins, as ORT does.
              if (v > best || best_d < 0) {
                best = v;
                best_d = id, best_h = ih, best_w = iw;
              }
            }
          }
        }
        y[pos] = static_cast<T>(best);
        if (indices) {
          const int64_t flat = column_major ? (best_w * ih_n + best_h) * id_n + best_d
                                            : (best_d * ih_n + best_h) * iw_n + best_w;
          indices[pos] = best_d < 0 ? -1 : plane_offset + flat;
        }
      }
    }
  }
}

// AveragePool (p == 0) or LpPool (p > 0) over one plane.
template <typename T>
void sum_pool_plane(const Geometry& g, const T* x, T* y, bool count_include_pad, int64_t p) {
  using A = acc_t<T>;
  const auto [id_n, ih_n, iw_n] = g.in;
  int64_t pos = 0;
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const WindowRange rd = window_range(g, 0, od);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const WindowRange rh = window_range(g, 1, oh);
      for (int64_t ow = 0; ow < g.out[2]; ++ow, ++pos) {
        const WindowRange rw = window_range(g, 2, ow);
        A sum = 0;
        for (int64_t kd = rd.lo; kd < rd.hi; ++kd) {
          const int64_t id = rd.start + kd * g.dilation[0];
          for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
            const int64_t ih = rh.start + kh * g.dilation[1];
            const T* row = x + (id * ih_n + ih) * iw_n;
            for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
              const A v = static_cast<A>(row[rw.start + kw * g.dilation[2]]);
              if (p == 0)
                sum += v;
              else if (p == 1)
                sum += std::abs(v);
              else if (p == 2)
                sum += v * v;
              else
                sum += std::pow(std::abs(v), static_cast<A>(p));
            }
          }
        }
        if (p == 0) {
          const int64_t count = count_include_pad
                                    ? rd.padded_count * rh.padded_count * rw.padded_count
                                    : std::max<int64_t>(0, rd.hi - rd.lo) *
                                          std::max<int64_t>(0, rh.hi - rh.lo) *
                                          std::max<int64_t>(0, rw.hi - rw.lo);
          y[pos] = static_cast<T>(count > 0 ? sum / static_cast<A>(count) : A(0));
        } else if (p == 1) {
          y[pos] = static_cast<T>(sum);
        } else if (p == 2) {
          y[pos] = static_cast<T>(std::sqrt(sum));
        } else {
          y[pos] = static_cast<T>(std::pow(sum, A(1) / static_cast<A>(p)));
        }
      }
    }
  }
}

}  // namespace

Status check_pool_input(const InferContext& ctx, bool int8) {
  if (!ctx.has_input(0)) return ctx.invalid("input X is required");
  const DataType t = ctx.input_dtype(0);
  const bool ok = is_pool_float(t) || (int8 && (t == DataType::kInt8 || t == DataType::kUInt8));
  if (!ok)
    return ctx.unsupported_here(
        std::string("input X has dtype ") + dtype_name(t) +
        (int8 ? ", expected f16, f32, f64, i8 or u8" : ", expected f16, f32 or f64"));
  const TensorType& xt = ctx.input_type(0);
  if (xt.has_rank() && xt.rank() < 3)
    return ctx.invalid("input X has rank " + std::to_string(xt.rank()) +
                       ", expected at least 3 (N, C, spatial...)");
  return Status::ok();
}

Status pool_reference(PoolKind kind, const PoolAttrs& a, const Tensor& x, Tensor& y,
                      Tensor* indices) {
  if (a.kernel.size() > kMaxSpatial)
    return unsupported("kernel_shape has " + std::to_string(a.kernel.size()) +
                       " dims; at most 3 spatial dims are supported");
  Geometry g;
  BRINK_RETURN_IF_ERROR(pool_geometry(a, x.shape(), &g));
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t in_size = g.in_size(), out_size = g.out_size();
  int64_t* idx = indices != nullptr ? indices->data<int64_t>() : nullptr;
  visit_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (is_pool_float_v<T> || std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
      for (int64_t pl = 0; pl < planes; ++pl) {
        const T* xp = x.data<T>() + pl * in_size;
        T* yp = y.data<T>() + pl * out_size;
        if (kind == PoolKind::kMax) {
          max_pool_plane<T>(g, xp, yp, idx ? idx + pl * out_size : nullptr, pl * in_size,
                            a.storage_order == 1);
        } else if constexpr (is_pool_float_v<T>) {
          sum_pool_plane<T>(g, xp, yp, a.count_include_pad != 0, kind == PoolKind::kLp ? a.p : 0);
        }
      }
    }
  });
  return Status::ok();
}

void global_pool_reference(PoolKind kind, int64_t p, const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t size = planes > 0 ? x.numel() / planes : 0;
  visit_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (is_pool_float_v<T>) {
      using A = double;  // sums over whole feature maps: keep the precision
      for (int64_t pl = 0; pl < planes; ++pl) {
        const T* xp = x.data<T>() + pl * size;
        A r;
        if (kind == PoolKind::kMax) {
          r = -std::numeric_limits<A>::infinity();
          for (int64_t i = 0; i < size; ++i) r = std::max<A>(r, static_cast<A>(xp[i]));
        } else if (kind == PoolKind::kAverage) {
          r = 0;
          for (int64_t i = 0; i < size; ++i) r += static_cast<A>(xp[i]);
          r /= static_cast<A>(size);
        } else {
          r = 0;
          for (int64_t i = 0; i < size; ++i)
            r += std::pow(std::abs(static_cast<A>(xp[i])), static_cast<A>(p));
          r = std::pow(r, 1.0 / static_cast<A>(p));
        }
        y.data<T>()[pl] = static_cast<T>(r);
      }
    }
  });
}

namespace {

OpDef pool_op(const std::string& name, int since, int until, PoolVersion v) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = until;
  d.infer = [v](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_pool_input(ctx, v.int8));
    if (!v.indices && ctx.num_outputs() > 1)
      return ctx.invalid("has " + std::to_string(ctx.num_outputs()) +
                         " outputs, expected 1 at opset " + std::to_string(ctx.opset()));
    const TensorType& xt = ctx.input_type(0);
    const size_t n = ctx.node().attr_ints("kernel_shape").size();
    if (xt.has_rank() && static_cast<size_t>(xt.rank()) != n + 2)
      return ctx.invalid("input X has rank " + std::to_string(xt.rank()) + ", expected " +
                         std::to_string(n + 2) + " to match kernel_shape");
    PoolAttrs a;
    if (std::string err = parse_pool_attrs(ctx.node(), n, v, ctx.opset(), &a); !err.empty())
      return ctx.invalid(err);
    std::vector<Dim> out(n + 2, Dim());
    if (xt.has_rank()) {
      const std::vector<Dim>& xd = *xt.dims;
      out[0] = xd[0];
      out[1] = xd[1];
      for (size_t i = 0; i < n; ++i) {
        if (!xd[2 + i].known()) continue;
        int64_t o = 0, pb = 0, pe = 0;
        if (std::string err = pool_output_dim(a, i, xd[2 + i].value, &o, &pb, &pe); !err.empty())
          return ctx.invalid(err);
        out[2 + i] = Dim(o);
      }
    }
    ctx.set_output(0, ctx.input_dtype(0), out);
    if (ctx.num_outputs() > 1) ctx.set_output(1, DataType::kInt64, out);
    return Status::ok();
  };
  d.create = [v](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const size_t n = c.node.attr_ints("kernel_shape").size();
    if (n > kMaxSpatial)
      return c.unsupported_here("kernel_shape has " + std::to_string(n) +
                                " dims; at most 3 spatial dims are supported");
    PoolAttrs a;
    if (std::string err = parse_pool_attrs(c.node, n, v, c.opset, &a); !err.empty())
      return c.invalid(err);
    const bool want_indices = c.node.outputs.size() > 1 && c.node.outputs[1] != ir::kNoValue;
    const std::string where = c.node.describe();
    return make_kernel([a, v, want_indices, where](KernelContext& ctx) -> Status {
      Status s = pool_reference(v.kind, a, ctx.input(0), ctx.output(0),
                                want_indices ? &ctx.output(1) : nullptr);
      return s.is_ok() ? s : s.with_context(where);
    });
  };
  return d;
}

// ---- Global pools ------------------------------------------------------------------------------

OpDef global_pool_op(const std::string& name, int since, PoolKind kind) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_pool_input(ctx, false));
    const TensorType& xt = ctx.input_type(0);
    if (!xt.has_rank()) {
      ctx.set_output(0, xt);
      return Status::ok();
    }
    std::vector<Dim> out = *xt.dims;
    for (size_t i = 2; i < out.size(); ++i) out[i] = Dim(1);
    ctx.set_output(0, xt.dtype, std::move(out));
    return Status::ok();
  };
  d.create = [kind](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t p = kind == PoolKind::kLp ? c.node.attr_int("p", 2) : 0;
    if (kind == PoolKind::kLp && p < 1)
      return c.invalid("p is " + std::to_string(p) + ", expected a positive value");
    return make_kernel([kind, p](KernelContext& ctx) -> Status {
      global_pool_reference(kind, p, ctx.input(0), ctx.output(0));
      return Status::ok();
    });
  };
  return d;
}

// ---- MaxUnpool -------------------------------------------------------------------------------

// The output size MaxUnpool infers when no output_shape is given.
struct UnpoolAttrs {
  std::vector<int64_t> kernel, strides, pads;
};

std::string parse_unpool_attrs(const ir::Node& node, size_t n, UnpoolAttrs* a) {
  a->kernel = node.attr_ints("kernel_shape");
  if (a->kernel.size() != n)
    return "kernel_shape has " + std::to_string(a->kernel.size()) + " values, expected " +
           std::to_string(n) + " (one per spatial dim)";
  a->strides = node.attr_ints("strides");
  if (a->strides.empty()) a->strides.assign(n, 1);
  a->pads = node.attr_ints("pads");
  if (a->pads.empty()) a->pads.assign(2 * n, 0);
  if (a->strides.size() != n || a->pads.size() != 2 * n)
    return "strides or pads do not have one value per spatial dim";
  for (size_t i = 0; i < n; ++i)
    if (a->kernel[i] < 1 || a->strides[i] < 1 || a->pads[i] < 0 || a->pads[n + i] < 0)
      return "kernel_shape and strides must be positive, pads non-negative";
  return "";
}

int64_t unpool_default_dim(const UnpoolAttrs& a, size_t i, int64_t in) {
  const size_t n = a.kernel.size();
  return (in - 1) * a.strides[i] - a.pads[i] - a.pads[n + i] + a.kernel[i];
}

OpDef max_unpool_op() {
  OpDef d;
  d.op_type = "MaxUnpool";
  d.since_version = 9;  // MaxUnpool-9 and -11 differ only in documentation
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_pool_input(ctx, false));
    if (!ctx.has_input(1)) return ctx.invalid("input I (indices) is required");
    if (ctx.input_dtype(1) != DataType::kInt64)
      return ctx.invalid(std::string("input I has dtype ") + dtype_name(ctx.input_dtype(1)) +
                         ", expected i64");
    const TensorType& xt = ctx.input_type(0);
    const size_t n = ctx.node().attr_ints("kernel_shape").size();
    UnpoolAttrs a;
    if (std::string err = parse_unpool_attrs(ctx.node(), n, &a); !err.empty())
      return ctx.invalid(err);
    if (xt.has_rank() && static_cast<size_t>(xt.rank()) != n + 2)
      return ctx.invalid("input X has rank " + std::to_string(xt.rank()) + ", expected " +
                         std::to_string(n + 2) + " to match kernel_shape");
    if (ctx.has_input(2)) {
      if (ctx.input_dtype(2) != DataType::kInt64)
        return ctx.invalid(std::string("input output_shape has dtype ") +
                           dtype_name(ctx.input_dtype(2)) + ", expected i64");
      const Tensor* shape = ctx.input_value(2);
      if (!shape) {
        ctx.set_output(0, xt.dtype, std::vector<Dim>(n + 2, Dim()));
        return Status::ok();
      }
      const std::vector<int64_t> s = tensor_to_int64s(*shape);
      if (s.size() != n + 2)
        return ctx.invalid("output_shape has " + std::to_string(s.size()) + " values, expected " +
                           std::to_string(n + 2));
      for (int64_t v : s)
        if (v < 0) return ctx.invalid("output_shape has a negative value " + std::to_string(v));
      ctx.set_output(0, xt.dtype, dims_of(s));
      return Status::ok();
    }
    std::vector<Dim> out(n + 2, Dim());
    if (xt.has_rank()) {
      out[0] = (*xt.dims)[0];
      out[1] = (*xt.dims)[1];
      for (size_t i = 0; i < n; ++i)
        if ((*xt.dims)[2 + i].known())
          out[2 + i] = Dim(unpool_default_dim(a, i, (*xt.dims)[2 + i].value));
    }
    ctx.set_output(0, xt.dtype, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const size_t n = c.node.attr_ints("kernel_shape").size();
    UnpoolAttrs a;
    if (std::string err = parse_unpool_attrs(c.node, n, &a); !err.empty()) return c.invalid(err);
    const std::string where = c.node.describe();
    return make_kernel([a, where](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& ind = ctx.input(1);
      Tensor& y = ctx.output(0);
      if (ind.shape() != x.shape())
        return invalid_argument(where + ": input I has shape " + shape_to_string(ind.shape()) +
                                ", expected " + shape_to_string(x.shape()) + " like X");
      // Indices address the default (inferred) output shape, as in ONNX's reference; a
      // larger requested output_shape holds that block in its leading corner.
      const size_t rank = static_cast<size_t>(x.rank());
      Shape natural(x.shape().begin(), x.shape().begin() + 2);
      for (size_t i = 0; i + 2 < rank; ++i)
        natural.push_back(unpool_default_dim(a, i, x.dim(static_cast<int64_t>(i + 2))));
      const Shape& out = y.shape();
      const bool same = natural == out;
      const int64_t natural_numel = shape_numel(natural);
      const std::vector<int64_t> out_strides = strides_of(out);
      std::memset(y.raw_data(), 0, y.nbytes());
      const int64_t* idx = ind.data<int64_t>();
      Status status;
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_pool_float_v<T>) {
          const T* xd = x.data<T>();
          T* yd = y.data<T>();
          for (int64_t i = 0; i < x.numel(); ++i) {
            int64_t flat = idx[i];
            if (flat < 0 || flat >= natural_numel) {
              status = invalid_argument(where + ": index " + std::to_string(flat) +
                                        " is outside the output of " +
                                        std::to_string(natural_numel) + " elements");
              return;
            }
            int64_t offset = 0;
            if (same) {
              offset = flat;
            } else {
              bool inside = true;
              for (size_t k = rank; k-- > 0;) {
                const int64_t coord = flat % natural[k];
                flat /= natural[k];
                if (coord >= out[k]) inside = false;
                offset += coord * out_strides[k];
              }
              if (!inside) continue;
            }
            yd[offset] = xd[i];
          }
        }
      });
      return status;
    });
  };
  return d;
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  using K = PoolKind;
  // MaxPool: 8 adds the Indices output and storage_order, 10 ceil_mode and dilations
  // (11 changes only documentation), 12 int8/uint8 inputs.
  if constexpr (op_selected("", "MaxPool"))
    r.add(pool_op("MaxPool", 1, 7, {K::kMax, false, false, false, false, false}));
  if constexpr (op_selected("", "MaxPool"))
    r.add(pool_op("MaxPool", 8, 9, {K::kMax, true, false, false, false, false}));
  if constexpr (op_selected("", "MaxPool"))
    r.add(pool_op("MaxPool", 10, 11, {K::kMax, true, true, true, false, false}));
  if constexpr (op_selected("", "MaxPool"))
    r.add(pool_op("MaxPool", 12, 21, {K::kMax, true, true, true, false, true}));
  // AveragePool: 7 adds count_include_pad, 10 ceil_mode (11 documentation), 19 dilations.
  if constexpr (op_selected("", "AveragePool"))
    r.add(pool_op("AveragePool", 1, 6, {K::kAverage, false, false, false, false, false}));
  if constexpr (op_selected("", "AveragePool"))
    r.add(pool_op("AveragePool", 7, 9, {K::kAverage, false, false, false, true, false}));
  if constexpr (op_selected("", "AveragePool"))
    r.add(pool_op("AveragePool", 10, 18, {K::kAverage, false, true, false, true, false}));
  if constexpr (op_selected("", "AveragePool"))
    r.add(pool_op("AveragePool", 19, 21, {K::kAverage, false, true, true, true, false}));
  // LpPool: 2 makes p an int (11 documentation), 18 adds ceil_mode and dilations.
  if constexpr (op_selected("", "LpPool"))
    r.add(pool_op("LpPool", 2, 17, {K::kLp, false, false, false, false, false}));
  if constexpr (op_selected("", "LpPool"))
    r.add(pool_op("LpPool", 18, 21, {K::kLp, false, true, true, false, false}));
  if constexpr (op_selected("", "GlobalAveragePool"))
    r.add(global_pool_op("GlobalAveragePool", 1, K::kAverage));
  if constexpr (op_selected("", "GlobalMaxPool"))
    r.add(global_pool_op("GlobalMaxPool", 1, K::kMax));
  if constexpr (op_selected("", "GlobalLpPool")) r.add(global_pool_op("GlobalLpPool", 2, K::kLp));
  if constexpr (op_selected("", "MaxUnpool")) r.add(max_unpool_op());
}

}  // namespace brink::ops
