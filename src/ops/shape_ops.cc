// Tensor-manipulation operators: reshaping (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
// Dropout in inference mode), reordering (Transpose, DepthToSpace, SpaceToDepth,
// ReverseSequence), joining and cutting (Concat, Split, Slice, Compress, Tile, Expand),
// indexing (Gather*, Scatter*, OneHot, NonZero, Unique), and tensors made from shapes or
// attributes (Shape, Size, Constant, ConstantOfShape, Range, EyeLike, Trilu).
//
// The executor pre-computes shapes with `infer`, so inference here is as exact as it can
// be: it reads constant inputs (Reshape's shape, Slice's starts, ...) when known, and keeps
// symbolic dims (batch, sequence) flowing through ops that only move them around.
//
// Most of these kernels move bytes without looking at them, so they work on element sizes
// rather than dtypes, which covers every dtype at once. Contiguous runs are copied with
// memcpy; everything strided goes through strided_copy.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <type_traits>

#include "kernels/transpose.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

using Dims = std::vector<Dim>;
using OptDims = std::optional<Dims>;

std::string str(int64_t v) {
  return std::to_string(v);
}

std::string ints_str(const std::vector<int64_t>& v) {
  return shape_to_string(v);
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + d[i].to_string();
  return s + "]";
}

int64_t rank_of(const Dims& d) {
  return static_cast<int64_t>(d.size());
}

// ---- small inference helpers -------------------------------------------------------------

// Every input up to `n` must be present (optional inputs are checked by the caller).
Status require_inputs(const InferContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!ctx.has_input(i))
      return ctx.invalid("input " + str(static_cast<int64_t>(i)) + " is required");
  return Status::ok();
}

Status check_data_dtype(const InferContext& ctx, size_t i) {
  if (!dtype_is_supported(ctx.input_dtype(i)))
    return ctx.unsupported_here("input " + str(static_cast<int64_t>(i)) + " has element type " +
                                dtype_name(ctx.input_dtype(i)) + ", which is not supported");
  return Status::ok();
}

bool is_index_dtype(DataType t) {
  return t == DataType::kInt32 || t == DataType::kInt64;
}

Status check_index_dtype(const InferContext& ctx, size_t i, const std::string& what) {
  if (!is_index_dtype(ctx.input_dtype(i)))
    return ctx.invalid(what + " (input " + str(static_cast<int64_t>(i)) + ") has element type " +
                       dtype_name(ctx.input_dtype(i)) + ", expected i32 or i64");
  return Status::ok();
}

Status check_dtype(const InferContext& ctx, size_t i, DataType want, const std::string& what) {
  if (ctx.input_dtype(i) != want)
    return ctx.invalid(what + " (input " + str(static_cast<int64_t>(i)) + ") has element type " +
                       dtype_name(ctx.input_dtype(i)) + ", expected " + dtype_name(want));
  return Status::ok();
}

const Dims* dims_of_input(const InferContext& ctx, size_t i) {
  const auto& d = ctx.input_type(i).dims;
  return d ? &*d : nullptr;
}

// The value of input i as int64s, when known at this point.
std::optional<std::vector<int64_t>> known_ints(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  const Tensor* t = ctx.input_value(i);
  if (!t) return std::nullopt;
  return tensor_to_int64s(*t);
}

// Number of elements of a 1-D input when known (from its value or its type), else -1.
int64_t known_length(const InferContext& ctx, size_t i) {
  if (const Tensor* t = ctx.input_value(i)) return t->numel();
  const Dims* d = dims_of_input(ctx, i);
  if (!d) return -1;
  if (d->empty()) return 1;
  if (d->size() == 1 && (*d)[0].known()) return (*d)[0].value;
  return -1;
}

// Product of dims [b, e): known when all are; the one symbol when every other dim is a
// known 1; unknown otherwise.
Dim dims_product(const Dims& d, size_t b, size_t e) {
  int64_t known = 1;
  const Dim* symbol = nullptr;
  int symbols = 0;
  for (size_t i = b; i < e; ++i) {
    if (d[i].known()) {
      known *= d[i].value;
    } else {
      symbol = &d[i];
      ++symbols;
    }
  }
  if (symbols == 0) return Dim(known);
  if (symbols == 1 && known == 1) return *symbol;
  if (known == 0) return Dim(0);
  return Dim();
}

// Two dims that must be equal: the known one wins, else the first symbol.
Result<Dim> merge_dims(const InferContext& ctx, const Dim& a, const Dim& b,
                       const std::string& what) {
  if (a.known() && b.known() && a.value != b.value)
    return ctx.invalid(what + ": dimension " + str(a.value) + " does not match " + str(b.value));
  if (a.known()) return a;
  if (b.known()) return b;
  return a.param.empty() ? b : a;
}

// Reads element i of an i32/i64 tensor without a dtype switch per element.
class IndexReader {
 public:
  explicit IndexReader(const Tensor& t) : p_(t.raw_data()), is64_(t.dtype() == DataType::kInt64) {}
  int64_t operator[](int64_t i) const {
    return is64_ ? static_cast<const int64_t*>(p_)[i] : static_cast<const int32_t*>(p_)[i];
  }

 private:
  const void* p_;
  bool is64_;
};

// ---- byte-moving helpers -------------------------------------------------------------------

// Calls fn.template operator()<N>() with N the element size in bytes (1, 2, 4 or 8), so copy
// loops compile to fixed-size loads and stores.
template <typename Fn>
void visit_elem_size(size_t esize, Fn&& fn) {
  switch (esize) {
    case 1:
      fn.template operator()<1>();
      break;
    case 2:
      fn.template operator()<2>();
      break;
    case 4:
      fn.template operator()<4>();
      break;
    default:
      fn.template operator()<8>();
      break;
  }
}

// Copies n elements read `stride` elements apart (stride may be 0 or negative) into a
// contiguous destination.
void copy_row(uint8_t* dst, const uint8_t* src, int64_t n, int64_t stride, size_t esize) {
  if (stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * esize);
    return;
  }
  visit_elem_size(esize, [&]<size_t N>() {
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(dst + k * static_cast<int64_t>(N), src + k * stride * static_cast<int64_t>(N), N);
  });
}

// Writes the elements of a strided view of `src` (shape `shape`, strides in elements,
// possibly 0 or negative) to `dst` in row-major order. Adjacent dims that are contiguous in
// the source are merged first, so e.g. a Transpose that keeps the last axis copies whole
// rows with memcpy.
void strided_copy(void* dst_v, const void* src_v, const Shape& shape,
                  const std::vector<int64_t>& strides, size_t esize) {
  if (shape_numel(shape) == 0) return;
  Shape d;
  std::vector<int64_t> s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!d.empty() && s.back() == strides[i] * shape[i]) {
      d.back() *= shape[i];
      s.back() = strides[i];
    } else {
      d.push_back(shape[i]);
      s.push_back(strides[i]);
    }
  }
  auto* dst = static_cast<uint8_t*>(dst_v);
  const auto* src = static_cast<const uint8_t*>(src_v);
  if (d.empty()) {
    std::memcpy(dst, src, esize);
    return;
  }
  const int64_t inner = d.back(), inner_stride = s.back();
  d.pop_back();
  s.pop_back();
  const int64_t outer = shape_numel(d);
  const int64_t es = static_cast<int64_t>(esize);
  std::vector<int64_t> idx(d.size(), 0);
  int64_t off = 0;
  for (int64_t o = 0; o < outer; ++o) {
    copy_row(dst, src + off * es, inner, inner_stride, esize);
    dst += inner * es;
    for (size_t k = d.size(); k-- > 0;) {
      off += s[k];
      if (++idx[k] < d[k]) break;
      off -= s[k] * d[k];
      idx[k] = 0;
    }
  }
}

void copy_all(const Tensor& in, Tensor& out) {
  if (in.nbytes()) std::memcpy(out.raw_data(), in.raw_data(), in.nbytes());
}

// Fills n elements with the element at `value`.
void fill_elements(void* dst, int64_t n, const void* value, size_t esize) {
  bool zero = true;
  for (size_t b = 0; b < esize; ++b) zero &= static_cast<const uint8_t*>(value)[b] == 0;
  if (zero) {
    std::memset(dst, 0, static_cast<size_t>(n) * esize);
    return;
  }
  visit_elem_size(esize, [&]<size_t N>() {
    auto* d = static_cast<uint8_t*>(dst);
    for (int64_t k = 0; k < n; ++k) std::memcpy(d + k * static_cast<int64_t>(N), value, N);
  });
}

// A scalar of dtype `t` holding `v`, as raw bytes (at most 8).
std::array<uint8_t, 8> scalar_bytes(DataType t, double v) {
  std::array<uint8_t, 8> b{};
  visit_dtype(t, [&]<typename T>() {
    const T x = static_cast<T>(static_cast<compute_t<T>>(v));
    std::memcpy(b.data(), &x, sizeof(T));
  });
  return b;
}

// The output tensor when the executor allocated it with `shape`, else a fresh allocation:
// for data-dependent outputs that inference may or may not have known.
Tensor& output_with_shape(KernelContext& ctx, size_t i, DataType dtype, const Shape& shape) {
  Tensor& o = ctx.output(i);
  if (o.defined() && o.dtype() == dtype && o.shape() == shape) return o;
  return ctx.allocate_output(i, dtype, shape);
}

std::unique_ptr<Kernel> copy_kernel() {
  return make_kernel([](KernelContext& ctx) -> Status {
    copy_all(ctx.input(0), ctx.output(0));
    return Status::ok();
  });
}

OpDef def(const std::string& name, int since, int max = 21) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = max;
  return d;
}

// ---- Identity ----------------------------------------------------------------------------

OpDef identity_op() {
  OpDef d = def("Identity", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return copy_kernel();
  };
  return d;
}

// ---- Reshape -----------------------------------------------------------------------------

// Output dims of Reshape for a known target `shape`. A -1 is solved symbolically when the
// input's symbols cancel against the output's (e.g. [batch, seq, 768] -> [0, 0, 12, -1]).
Result<Dims> reshape_dims(const InferContext& ctx, const Dims* in,
                          const std::vector<int64_t>& shape, bool allowzero) {
  Dims out;
  int64_t infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t v = shape[i];
    if (v == -1) {
      if (infer_at >= 0) return ctx.invalid("shape " + ints_str(shape) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
      out.push_back(Dim());
    } else if (v == 0 && !allowzero) {
      if (!in) {
        out.push_back(Dim());
      } else if (i < in->size()) {
        out.push_back((*in)[i]);
      } else {
        return ctx.invalid("shape " + ints_str(shape) + " has 0 at index " +
                           str(static_cast<int64_t>(i)) + " but the input has rank " +
                           str(rank_of(*in)));
      }
    } else if (v < 0) {
      return ctx.invalid("shape " + ints_str(shape) + " has the negative value " + str(v));
    } else {
      has_zero |= v == 0;
      out.push_back(Dim(v));
    }
  }
  if (allowzero && has_zero && infer_at >= 0)
    return ctx.invalid("shape " + ints_str(shape) + " has both 0 and -1 with allowzero=1");
  if (!in) return out;

  int64_t in_known = 1;
  std::multiset<std::string> in_symbols;
  bool in_anonymous = false;
  for (const Dim& x : *in) {
    if (x.known())
      in_known *= x.value;
    else if (x.param.empty())
      in_anonymous = true;
    else
      in_symbols.insert(x.param);
  }
  if (infer_at < 0) {
    if (!in_anonymous && in_symbols.empty() && all_known(out)) {
      int64_t out_n = 1;
      for (const Dim& x : out) out_n *= x.value;
      if (out_n != in_known)
        return ctx.invalid("cannot reshape " + dims_str(*in) + " (" + str(in_known) +
                           " elements) to " + dims_str(out));
    }
    return out;
  }
  int64_t out_known = 1;
  bool solvable = !in_anonymous;
  for (size_t i = 0; i < out.size(); ++i) {
    if (static_cast<int64_t>(i) == infer_at) continue;
    const Dim& x = out[i];
    if (x.known()) {
      out_known *= x.value;
    } else if (auto it = in_symbols.find(x.param); !x.param.empty() && it != in_symbols.end()) {
      in_symbols.erase(it);
    } else {
      solvable = false;
    }
  }
  if (!solvable) return out;
  if (out_known == 0) {
    if (in_known == 0 && in_symbols.empty())
      return ctx.invalid("cannot infer the -1 in shape " + ints_str(shape) +
                         " for an empty input " + dims_str(*in));
    return out;
  }
  if (in_symbols.empty()) {
    if (in_known % out_known != 0)
      return ctx.invalid("cannot reshape " + dims_str(*in) + " (" + str(in_known) +
                         " elements) to " + ints_str(shape));
    out[static_cast<size_t>(infer_at)] = Dim(in_known / out_known);
  } else if (in_symbols.size() == 1 && in_known == out_known) {
    out[static_cast<size_t>(infer_at)] = Dim::symbol(*in_symbols.begin());
  }
  return out;
}

OpDef reshape_op(int since, int max, bool has_allowzero) {
  OpDef d = def("Reshape", since, max);
  d.infer = [has_allowzero](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "shape"));
    const bool allowzero = has_allowzero && ctx.node().attr_int("allowzero", 0) != 0;
    if (auto shape = known_ints(ctx, 1)) {
      BRINK_ASSIGN_OR_RETURN(Dims out, reshape_dims(ctx, dims_of_input(ctx, 0), *shape, allowzero));
      ctx.set_output(0, ctx.input_dtype(0), std::move(out));
      return Status::ok();
    }
    const int64_t n = known_length(ctx, 1);
    ctx.set_output(0, TensorType(ctx.input_dtype(0),
                                 n >= 0 ? OptDims(Dims(static_cast<size_t>(n))) : OptDims()));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return copy_kernel();
  };
  return d;
}

// ---- Flatten -----------------------------------------------------------------------------

OpDef flatten_op() {
  OpDef d = def("Flatten", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, ctx.input_dtype(0), Dims{Dim(), Dim()});
      return Status::ok();
    }
    const int64_t r = rank_of(*in);
    int64_t axis = ctx.node().attr_int("axis", 1);
    if (axis < -r || axis > r)
      return ctx.invalid("attribute 'axis' is " + str(axis) + ", expected a value in [" + str(-r) +
                         ", " + str(r) + "] for rank " + str(r));
    if (axis < 0) axis += r;
    ctx.set_output(0, ctx.input_dtype(0),
                   Dims{dims_product(*in, 0, static_cast<size_t>(axis)),
                        dims_product(*in, static_cast<size_t>(axis), in->size())});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return copy_kernel();
  };
  return d;
}

// ---- Squeeze / Unsqueeze -----------------------------------------------------------------

// Axes from the attribute (before opset 13) or the optional input 1 (from 13); nullopt when
// given as an input whose value is not known yet. `present` tells whether axes were given.
std::optional<std::vector<int64_t>> squeeze_axes(const InferContext& ctx, bool axes_as_input,
                                                 bool* present) {
  if (axes_as_input) {
    *present = ctx.has_input(1);
    if (!*present) return std::vector<int64_t>{};
    return known_ints(ctx, 1);
  }
  *present = ctx.node().attr("axes") != nullptr;
  return ctx.node().attr_ints("axes");
}

OpDef squeeze_op(int since, int max, bool axes_as_input) {
  OpDef d = def("Squeeze", since, max);
  d.infer = [axes_as_input](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    if (axes_as_input && ctx.has_input(1))
      BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "axes"));
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    bool present = false;
    auto axes = squeeze_axes(ctx, axes_as_input, &present);
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    const int64_t r = rank_of(*in);
    if (!axes) {
      // Which dims go is unknown, only how many.
      const int64_t n = known_length(ctx, 1);
      ctx.set_output(0, TensorType(dt, n >= 0 && n <= r ? OptDims(Dims(static_cast<size_t>(r - n)))
                                                        : OptDims()));
      return Status::ok();
    }
    std::vector<bool> drop(in->size(), false);
    if (present) {
      for (int64_t a : *axes) {
        BRINK_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, r));
        const Dim& x = (*in)[static_cast<size_t>(ax)];
        if (x.known() && x.value != 1)
          return ctx.invalid("cannot squeeze axis " + str(a) + " of shape " + dims_str(*in) +
                             ": its size is " + str(x.value) + ", not 1");
        drop[static_cast<size_t>(ax)] = true;
      }
    } else {
      for (size_t i = 0; i < in->size(); ++i) {
        if (!(*in)[i].known()) {
          // A symbolic dim might be 1: the output rank depends on the data.
          ctx.set_output(0, TensorType(dt, std::nullopt));
          return Status::ok();
        }
        drop[i] = (*in)[i].value == 1;
      }
    }
    Dims out;
    for (size_t i = 0; i < in->size(); ++i)
      if (!drop[i]) out.push_back((*in)[i]);
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return copy_kernel();
  };
  return d;
}

OpDef unsqueeze_op(int since, int max, bool axes_as_input) {
  OpDef d = def("Unsqueeze", since, max);
  d.infer = [axes_as_input](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, axes_as_input ? 2 : 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    if (axes_as_input) BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "axes"));
    if (!axes_as_input && !ctx.node().attr("axes"))
      return ctx.invalid("attribute 'axes' is required");
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    bool present = false;
    auto axes = squeeze_axes(ctx, axes_as_input, &present);
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    if (!axes) {
      const int64_t n = known_length(ctx, 1);
      ctx.set_output(0, TensorType(dt, n >= 0 ? OptDims(Dims(in->size() + static_cast<size_t>(n)))
                                              : OptDims()));
      return Status::ok();
    }
    const int64_t out_rank = rank_of(*in) + static_cast<int64_t>(axes->size());
    std::vector<bool> is_new(static_cast<size_t>(out_rank), false);
    for (int64_t a : *axes) {
      BRINK_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, out_rank));
      if (is_new[static_cast<size_t>(ax)])
        return ctx.invalid("axes " + ints_str(*axes) + " repeat an axis");
      is_new[static_cast<size_t>(ax)] = true;
    }
    Dims out;
    size_t k = 0;
    for (int64_t i = 0; i < out_rank; ++i)
      out.push_back(is_new[static_cast<size_t>(i)] ? Dim(1) : (*in)[k++]);
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return copy_kernel();
  };
  return d;
}

// ---- Transpose ---------------------------------------------------------------------------

// True when transposing `shape` by `perm` (reversed axes without one) swaps the last two of
// at most three axes once size-1 axes are dropped and axes that stay neighbours are merged:
// [planes, rows, cols] -> [planes, cols, rows], the NCHW <-> NHWC layout changes among them.
bool as_batched_2d_transpose(const Shape& shape, const std::vector<int64_t>& perm, bool has_perm,
                             int64_t* planes, int64_t* rows, int64_t* cols) {
  const size_t r = shape.size();
  std::vector<size_t> order;  // input axes in output order, size-1 axes dropped
  for (size_t i = 0; i < r; ++i) {
    const size_t axis = has_perm ? static_cast<size_t>(perm[i]) : r - 1 - i;
    if (shape[axis] != 1) order.push_back(axis);
  }
  // Runs of input axes that stay consecutive in the output, and their sizes.
  std::vector<std::pair<size_t, int64_t>> runs;  // (first input axis, size)
  for (size_t k = 0; k < order.size(); ++k) {
    if (k > 0 && order[k] > order[k - 1]) {
      bool consecutive = true;  // only size-1 axes between them in the input
      for (size_t a = order[k - 1] + 1; a < order[k]; ++a) consecutive &= shape[a] == 1;
      if (consecutive) {
        runs.back().second *= shape[order[k]];
        continue;
      }
    }
    runs.emplace_back(order[k], shape[order[k]]);
  }
  std::vector<size_t> by_input(runs.size());
  std::iota(by_input.begin(), by_input.end(), size_t{0});
  std::sort(by_input.begin(), by_input.end(),
            [&](size_t a, size_t b) { return runs[a].first < runs[b].first; });
  // by_input[j]: the output position of the j-th run in input order.
  if (runs.size() == 2 && by_input[0] == 1 && by_input[1] == 0) {
    *planes = 1, *rows = runs[1].second, *cols = runs[0].second;
    return true;
  }
  if (runs.size() == 3 && by_input[0] == 0 && by_input[1] == 2 && by_input[2] == 1) {
    *planes = runs[0].second, *rows = runs[2].second, *cols = runs[1].second;
    return true;
  }
  return false;
}

OpDef transpose_op() {
  OpDef d = def("Transpose", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const Dims* in = dims_of_input(ctx, 0);
    std::vector<int64_t> perm = ctx.node().attr_ints("perm");
    const bool has_perm = ctx.node().attr("perm") != nullptr;
    if (!in) {
      ctx.set_output(
          0, TensorType(ctx.input_dtype(0), has_perm ? OptDims(Dims(perm.size())) : OptDims()));
      return Status::ok();
    }
    const int64_t r = rank_of(*in);
    if (!has_perm)
      for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
    if (static_cast<int64_t>(perm.size()) != r)
      return ctx.invalid("attribute 'perm' " + ints_str(perm) + " has " +
                         str(static_cast<int64_t>(perm.size())) + " entries, expected " + str(r) +
                         " (the input rank)");
    std::vector<bool> seen(static_cast<size_t>(r), false);
    Dims out;
    for (int64_t p : perm) {
      if (p < 0 || p >= r || seen[static_cast<size_t>(p)])
        return ctx.invalid("attribute 'perm' " + ints_str(perm) + " is not a permutation of [0, " +
                           str(r) + ")");
      seen[static_cast<size_t>(p)] = true;
      out.push_back((*in)[static_cast<size_t>(p)]);
    }
    ctx.set_output(0, ctx.input_dtype(0), std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    std::vector<int64_t> perm = c.node.attr_ints("perm");
    const bool has_perm = c.node.attr("perm") != nullptr;
    return make_kernel([perm, has_perm](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      int64_t planes = 0, rows = 0, cols = 0;
      const size_t es = dtype_size(x.dtype());
      if ((es == 4 || es == 1) &&
          as_batched_2d_transpose(x.shape(), perm, has_perm, &planes, &rows, &cols)) {
        if (es == 4)
          kernels::transpose_planes_f32(static_cast<const float*>(x.raw_data()),
                                        static_cast<float*>(ctx.output(0).raw_data()), planes, rows,
                                        cols, ctx.thread_pool());
        else  // quantized activations (uint8 / int8)
          kernels::transpose_planes_u8(static_cast<const uint8_t*>(x.raw_data()),
                                       static_cast<uint8_t*>(ctx.output(0).raw_data()), planes,
                                       rows, cols, ctx.thread_pool());
        return Status::ok();
      }
      const std::vector<int64_t> in_strides = strides_of(x.shape());
      std::vector<int64_t> strides;
      for (size_t i = 0; i < x.shape().size(); ++i) {
        const size_t p = has_perm ? static_cast<size_t>(perm[i]) : x.shape().size() - 1 - i;
        strides.push_back(in_strides[p]);
      }
      strided_copy(ctx.output(0).raw_data(), x.raw_data(), ctx.output(0).shape(), strides,
                   dtype_size(x.dtype()));
      return Status::ok();
    });
  };
  return d;
}

// ---- Concat ------------------------------------------------------------------------------

OpDef concat_op() {
  OpDef d = def("Concat", 1);
  d.infer = [](InferContext& ctx) -> Status {
    if (ctx.num_inputs() == 0) return ctx.invalid("expected at least one input");
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, ctx.num_inputs()));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    if (!ctx.node().attr("axis") && ctx.opset() >= 4)
      return ctx.invalid("attribute 'axis' is required");
    const int64_t axis_attr = ctx.node().attr_int("axis", 1);
    const Dims* first = nullptr;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (ctx.input_dtype(i) != dt)
        return ctx.invalid("input " + str(static_cast<int64_t>(i)) + " has element type " +
                           dtype_name(ctx.input_dtype(i)) + ", expected " + dtype_name(dt) +
                           " like input 0");
      const Dims* di = dims_of_input(ctx, i);
      if (!di) continue;
      if (first && di->size() != first->size())
        return ctx.invalid("input " + str(static_cast<int64_t>(i)) + " has rank " +
                           str(rank_of(*di)) + ", expected " + str(rank_of(*first)) +
                           " like the other inputs");
      if (!first) first = di;
    }
    if (!first) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    const int64_t r = rank_of(*first);
    if (r == 0) return ctx.invalid("cannot concatenate scalars (inputs have rank 0)");
    BRINK_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(ctx, axis_attr, r));
    Dims out = *first;
    int64_t sum = 0;
    bool sum_known = true;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Dims* di = dims_of_input(ctx, i);
      if (!di) {
        sum_known = false;
        continue;
      }
      for (int64_t k = 0; k < r; ++k) {
        const Dim& x = (*di)[static_cast<size_t>(k)];
        if (k == axis) {
          if (x.known())
            sum += x.value;
          else
            sum_known = false;
          continue;
        }
        BRINK_ASSIGN_OR_RETURN(
            out[static_cast<size_t>(k)],
            merge_dims(ctx, out[static_cast<size_t>(k)], x,
                       "input " + str(static_cast<int64_t>(i)) + " axis " + str(k)));
      }
    }
    out[static_cast<size_t>(axis)] = sum_known ? Dim(sum) : Dim();
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 1);
    return make_kernel([axis_attr](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, y.rank());
      const size_t es = dtype_size(y.dtype());
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < axis; ++k) outer *= y.dim(k);
      for (int64_t k = axis + 1; k < y.rank(); ++k) inner *= y.dim(k);
      const size_t out_row = static_cast<size_t>(y.dim(axis) * inner) * es;
      auto* dst = static_cast<uint8_t*>(y.raw_data());
      size_t offset = 0;
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor& x = ctx.input(i);
        const size_t row = static_cast<size_t>(x.dim(axis) * inner) * es;
        const auto* src = static_cast<const uint8_t*>(x.raw_data());
        if (row)
          for (int64_t o = 0; o < outer; ++o)
            std::memcpy(dst + static_cast<size_t>(o) * out_row + offset,
                        src + static_cast<size_t>(o) * row, row);
        offset += row;
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- Split -------------------------------------------------------------------------------

enum class SplitForm { kAttribute, kInput, kInputOrNumOutputs };

OpDef split_op(int since, int max, SplitForm form) {
  OpDef d = def("Split", since, max);
  d.infer = [form](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    const ir::Node& node = ctx.node();
    const int64_t n_out = static_cast<int64_t>(ctx.num_outputs());
    if (n_out == 0) return ctx.invalid("expected at least one output");
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      for (int64_t k = 0; k < n_out; ++k)
        ctx.set_output(static_cast<size_t>(k), TensorType(dt, std::nullopt));
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(const int64_t axis,
                           normalize_axis(ctx, node.attr_int("axis", 0), rank_of(*in)));
    const Dim& dim = (*in)[static_cast<size_t>(axis)];
    std::optional<std::vector<int64_t>> split;
    bool split_given = false;
    if (form == SplitForm::kAttribute) {
      split_given = node.attr("split") != nullptr;
      if (split_given) split = node.attr_ints("split");
    } else if (ctx.has_input(1)) {
      BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "split"));
      split_given = true;
      split = known_ints(ctx, 1);
    }
    if (!split_given) {
      int64_t n = n_out;
      if (form == SplitForm::kInputOrNumOutputs && node.attr("num_outputs")) {
        n = node.attr_int("num_outputs", 0);
        if (n != n_out)
          return ctx.invalid("attribute 'num_outputs' is " + str(n) + " but the node has " +
                             str(n_out) + " outputs");
      }
      if (dim.known()) {
        std::vector<int64_t> s(static_cast<size_t>(n), dim.value / n);
        if (dim.value % n != 0) {
          // Chunks of ceil(dim / n), the last one smaller (opset 18 num_outputs rule).
          if (form != SplitForm::kInputOrNumOutputs || !node.attr("num_outputs"))
            return ctx.invalid("cannot split dimension " + str(dim.value) + " into " + str(n) +
                               " equal parts");
          const int64_t chunk = dim.value / n + 1;
          std::fill(s.begin(), s.end(), chunk);
          s.back() = dim.value - chunk * (n - 1);
          if (s.back() < 0)
            return ctx.invalid("cannot split dimension " + str(dim.value) + " into " + str(n) +
                               " chunks of " + str(chunk));
        }
        split = s;
      }
    }
    if (split) {
      if (static_cast<int64_t>(split->size()) != n_out)
        return ctx.invalid("split " + ints_str(*split) + " has " +
                           str(static_cast<int64_t>(split->size())) + " entries but the node has " +
                           str(n_out) + " outputs");
      int64_t sum = 0;
      for (int64_t s : *split) {
        if (s < 0) return ctx.invalid("split " + ints_str(*split) + " has a negative size");
        sum += s;
      }
      if (dim.known() && sum != dim.value)
        return ctx.invalid("split " + ints_str(*split) + " sums to " + str(sum) + " but axis " +
                           str(axis) + " has size " + str(dim.value));
    }
    for (int64_t k = 0; k < n_out; ++k) {
      Dims out = *in;
      out[static_cast<size_t>(axis)] = split ? Dim((*split)[static_cast<size_t>(k)]) : Dim();
      ctx.set_output(static_cast<size_t>(k), dt, std::move(out));
    }
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    return make_kernel([axis_attr](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      const size_t es = dtype_size(x.dtype());
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
      for (int64_t k = axis + 1; k < x.rank(); ++k) inner *= x.dim(k);
      const size_t in_row = static_cast<size_t>(x.dim(axis) * inner) * es;
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      size_t offset = 0;
      for (size_t i = 0; i < ctx.num_outputs(); ++i) {
        Tensor& y = ctx.output(i);
        if (!y.defined()) continue;  // an absent output: its size still came from inference
        const size_t row = static_cast<size_t>(y.dim(axis) * inner) * es;
        auto* dst = static_cast<uint8_t*>(y.raw_data());
        if (row)
          for (int64_t o = 0; o < outer; ++o)
            std::memcpy(dst + static_cast<size_t>(o) * row,
                        src + static_cast<size_t>(o) * in_row + offset, row);
        offset += row;
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- Slice -------------------------------------------------------------------------------

// Effective start and element count of a slice of a dim of size `dim`, by the ONNX rule:
// negative starts/ends count from the end, then both are clamped depending on the step.
void slice_range(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t* first,
                 int64_t* count) {
  // start/end >= INT64_MIN and dim >= 0, so adding dim to a negative value cannot overflow.
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    *count = end > start ? (end - start + step - 1) / step : 0;
  } else if (dim == 0) {
    start = 0;
    *count = 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    *count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
  }
  *first = start;
}

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

// Checks lengths, fills defaults (axes 0.., steps 1) and normalizes axes against `rank`.
Status complete_slice_args(const InferContext* ctx, SliceArgs* a, int64_t rank,
                           const std::string& who) {
  auto fail = [&](const std::string& m) {
    return ctx ? ctx->invalid(m) : invalid_argument(who + ": " + m);
  };
  const size_t n = a->starts.size();
  if (a->ends.size() != n)
    return fail("starts has " + str(static_cast<int64_t>(n)) + " entries but ends has " +
                str(static_cast<int64_t>(a->ends.size())));
  if (a->axes.empty() && n > 0) {
    if (static_cast<int64_t>(n) > rank)
      return fail("starts has " + str(static_cast<int64_t>(n)) +
                  " entries, more than the input rank " + str(rank));
    for (size_t i = 0; i < n; ++i) a->axes.push_back(static_cast<int64_t>(i));
  }
  if (a->steps.empty()) a->steps.assign(n, 1);
  if (a->axes.size() != n || a->steps.size() != n)
    return fail("starts, ends, axes and steps have different lengths (" +
                str(static_cast<int64_t>(n)) + ", " + str(static_cast<int64_t>(a->ends.size())) +
                ", " + str(static_cast<int64_t>(a->axes.size())) + ", " +
                str(static_cast<int64_t>(a->steps.size())) + ")");
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& ax : a->axes) {
    if (ax < -rank || ax >= rank)
      return fail("axis " + str(ax) + " is out of range for rank " + str(rank));
    if (ax < 0) ax += rank;
    if (seen[static_cast<size_t>(ax)]) return fail("axes " + ints_str(a->axes) + " repeat an axis");
    seen[static_cast<size_t>(ax)] = true;
  }
  for (int64_t s : a->steps)
    if (s == 0) return fail("steps " + ints_str(a->steps) + " contain 0");
  return Status::ok();
}

// Slice arguments from attributes (opset 1-9) or inputs (10+); nullopt when an input's
// value is not known.
std::optional<SliceArgs> slice_args(const ir::Node& node, bool from_inputs,
                                    const std::function<const Tensor*(size_t)>& value,
                                    const std::function<bool(size_t)>& has) {
  SliceArgs a;
  if (!from_inputs) {
    a.starts = node.attr_ints("starts");
    a.ends = node.attr_ints("ends");
    a.axes = node.attr_ints("axes");
    return a;
  }
  for (size_t i = 1; i <= 4; ++i) {
    if (!has(i)) continue;
    const Tensor* t = value(i);
    if (!t) return std::nullopt;
    std::vector<int64_t> v = tensor_to_int64s(*t);
    (i == 1 ? a.starts : i == 2 ? a.ends : i == 3 ? a.axes : a.steps) = std::move(v);
  }
  return a;
}

OpDef slice_op(int since, int max, bool from_inputs) {
  OpDef d = def("Slice", since, max);
  d.infer = [from_inputs](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, from_inputs ? 3 : 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    if (from_inputs) {
      static const char* names[] = {"", "starts", "ends", "axes", "steps"};
      for (size_t i = 1; i <= 4; ++i)
        if (ctx.has_input(i)) BRINK_RETURN_IF_ERROR(check_index_dtype(ctx, i, names[i]));
      for (size_t i = 2; i <= 4; ++i)
        if (ctx.has_input(i) && ctx.input_dtype(i) != ctx.input_dtype(1))
          return ctx.invalid(std::string(names[i]) + " has element type " +
                             dtype_name(ctx.input_dtype(i)) + " but starts has " +
                             dtype_name(ctx.input_dtype(1)));
    } else if (!ctx.node().attr("starts") || !ctx.node().attr("ends")) {
      return ctx.invalid("attributes 'starts' and 'ends' are required");
    }
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    const int64_t r = rank_of(*in);
    Dims out = *in;
    auto args = slice_args(
        ctx.node(), from_inputs, [&](size_t i) { return ctx.input_value(i); },
        [&](size_t i) { return ctx.has_input(i); });
    if (!args) {
      // Only the axes named by a known `axes` input can change.
      auto axes = known_ints(ctx, 3);
      if (axes) {
        for (int64_t a : *axes) {
          BRINK_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, r));
          out[static_cast<size_t>(ax)] = Dim();
        }
      } else {
        for (Dim& x : out) x = Dim();
      }
      ctx.set_output(0, dt, std::move(out));
      return Status::ok();
    }
    BRINK_RETURN_IF_ERROR(complete_slice_args(&ctx, &*args, r, ""));
    for (size_t i = 0; i < args->axes.size(); ++i) {
      const size_t ax = static_cast<size_t>(args->axes[i]);
      const int64_t s = args->starts[i], e = args->ends[i], st = args->steps[i];
      if (!out[ax].known()) {
        // [0:end-of-dim] keeps a symbolic dim as it is.
        if (s == 0 && st == 1 && e >= std::numeric_limits<int32_t>::max()) continue;
        out[ax] = Dim();
        continue;
      }
      int64_t first = 0, count = 0;
      slice_range(out[ax].value, s, e, st, &first, &count);
      out[ax] = Dim(count);
    }
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [from_inputs](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ir::Node node = c.node;
    const std::string who = c.node.describe();
    return make_kernel([node, from_inputs, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      auto args = slice_args(
          node, from_inputs, [&](size_t i) { return &ctx.input(i); },
          [&](size_t i) { return ctx.has_input(i); });
      BRINK_RETURN_IF_ERROR(complete_slice_args(nullptr, &*args, x.rank(), who));
      const std::vector<int64_t> in_strides = strides_of(x.shape());
      Shape count = x.shape();
      std::vector<int64_t> strides = in_strides;
      int64_t offset = 0;
      for (size_t i = 0; i < args->axes.size(); ++i) {
        const size_t ax = static_cast<size_t>(args->axes[i]);
        int64_t first = 0;
        slice_range(x.shape()[ax], args->starts[i], args->ends[i], args->steps[i], &first,
                    &count[ax]);
        offset += first * in_strides[ax];
        strides[ax] = in_strides[ax] * args->steps[i];
      }
      Tensor& y = ctx.output(0);
      if (y.shape() != count)
        return internal_error(who + ": output shape differs from the inferred one");
      if (y.numel() == 0) return Status::ok();
      const size_t es = dtype_size(x.dtype());
      strided_copy(y.raw_data(),
                   static_cast<const uint8_t*>(x.raw_data()) + offset * static_cast<int64_t>(es),
                   count, strides, es);
      return Status::ok();
    });
  };
  return d;
}

// ---- Gather family -----------------------------------------------------------------------

Status index_out_of_range(const std::string& who, int64_t idx, int64_t dim) {
  return invalid_argument(who + ": index " + str(idx) +
                          " is out of range for a dimension of size " + str(dim));
}

OpDef gather_op() {
  OpDef d = def("Gather", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_index_dtype(ctx, 1, "indices"));
    const Dims* data = dims_of_input(ctx, 0);
    const Dims* ind = dims_of_input(ctx, 1);
    if (!data || !ind) {
      ctx.set_output(0, TensorType(ctx.input_dtype(0), std::nullopt));
      return Status::ok();
    }
    if (data->empty()) return ctx.invalid("data (input 0) is a scalar, expected rank >= 1");
    BRINK_ASSIGN_OR_RETURN(const int64_t axis,
                           normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank_of(*data)));
    Dims out(data->begin(), data->begin() + axis);
    out.insert(out.end(), ind->begin(), ind->end());
    out.insert(out.end(), data->begin() + axis + 1, data->end());
    ctx.set_output(0, ctx.input_dtype(0), std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    const std::string who = c.node.describe();
    return make_kernel([axis_attr, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& ind = ctx.input(1);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      const size_t es = dtype_size(x.dtype());
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
      for (int64_t k = axis + 1; k < x.rank(); ++k) inner *= x.dim(k);
      const int64_t n = x.dim(axis), count = ind.numel();
      const size_t block = static_cast<size_t>(inner) * es;
      IndexReader idx(ind);
      std::vector<int64_t> rows(static_cast<size_t>(count));
      for (int64_t k = 0; k < count; ++k) {
        int64_t i = idx[k];
        if (i < -n || i >= n) return index_out_of_range(who, i, n);
        rows[static_cast<size_t>(k)] = i < 0 ? i + n : i;
      }
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(ctx.output(0).raw_data());
      for (int64_t o = 0; o < outer; ++o) {
        const uint8_t* base = src + static_cast<size_t>(o * n) * block;
        for (int64_t k = 0; k < count; ++k, dst += block)
          std::memcpy(dst, base + static_cast<size_t>(rows[static_cast<size_t>(k)]) * block, block);
      }
      return Status::ok();
    });
  };
  return d;
}

// Validates that data and indices have the same rank; output/updates shape = indices shape.
Status check_elements_ranks(const InferContext& ctx, const Dims* data, const Dims* ind,
                            int64_t* axis) {
  if (data && ind && data->size() != ind->size())
    return ctx.invalid("indices (input 1) has rank " + str(rank_of(*ind)) + ", expected " +
                       str(rank_of(*data)) + " like data");
  if (data) {
    if (data->empty()) return ctx.invalid("data (input 0) is a scalar, expected rank >= 1");
    BRINK_ASSIGN_OR_RETURN(*axis,
                           normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank_of(*data)));
  }
  return Status::ok();
}

// Calls fn(k, data_offset) for every element k of `ind` (row-major), where data_offset is
// the offset in `data` of the element the index addresses along `axis`.
template <typename Fn>
Status for_each_element_index(const std::string& who, const Tensor& data, const Tensor& ind,
                              int64_t axis, Fn&& fn) {
  std::vector<int64_t> ds = strides_of(data.shape());
  const int64_t axis_stride = ds[static_cast<size_t>(axis)];
  const int64_t n = data.dim(axis);
  ds[static_cast<size_t>(axis)] = 0;
  for (int64_t k = 0; k < ind.rank(); ++k)
    if (k != axis && ind.dim(k) > data.dim(k))
      return invalid_argument(who + ": indices shape " + shape_to_string(ind.shape()) +
                              " exceeds data shape " + shape_to_string(data.shape()) + " on axis " +
                              str(k));
  IndexReader idx(ind);
  int64_t k = 0;
  for (StridedIterator it(ind.shape(), {ds}); !it.done(); it.next(), ++k) {
    int64_t i = idx[k];
    if (i < -n || i >= n) return index_out_of_range(who, i, n);
    if (i < 0) i += n;
    fn(k, it.offset(0) + i * axis_stride);
  }
  return Status::ok();
}

OpDef gather_elements_op() {
  OpDef d = def("GatherElements", 11);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_index_dtype(ctx, 1, "indices"));
    int64_t axis = 0;
    BRINK_RETURN_IF_ERROR(
        check_elements_ranks(ctx, dims_of_input(ctx, 0), dims_of_input(ctx, 1), &axis));
    ctx.set_output(0, TensorType(ctx.input_dtype(0), ctx.input_type(1).dims));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    const std::string who = c.node.describe();
    return make_kernel([axis_attr, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      const size_t es = dtype_size(x.dtype());
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(ctx.output(0).raw_data());
      Status s;
      visit_elem_size(es, [&]<size_t N>() {
        s = for_each_element_index(who, x, ctx.input(1), axis, [&](int64_t k, int64_t off) {
          std::memcpy(dst + k * static_cast<int64_t>(N), src + off * static_cast<int64_t>(N), N);
        });
      });
      return s;
    });
  };
  return d;
}

// GatherND / ScatterND addressing: data [batch..., indexed (m dims)..., slice...] and
// indices [batch..., tuples..., m].
struct NdLayout {
  int64_t batches = 1;        // product of the batch dims
  int64_t tuples = 1;         // index tuples per batch
  int64_t m = 0;              // length of one index tuple
  int64_t slice = 1;          // elements copied per tuple
  int64_t batch_stride = 1;   // elements of data per batch
  std::vector<int64_t> dims;  // the m indexed dims of data
  std::vector<int64_t> strides;
};

NdLayout nd_layout(const Shape& data, const Shape& ind, int64_t b) {
  NdLayout l;
  l.m = ind.back();
  for (int64_t k = 0; k < b; ++k) l.batches *= data[static_cast<size_t>(k)];
  for (size_t k = static_cast<size_t>(b); k + 1 < ind.size(); ++k) l.tuples *= ind[k];
  for (size_t k = static_cast<size_t>(b + l.m); k < data.size(); ++k) l.slice *= data[k];
  int64_t stride = l.slice;
  l.dims.resize(static_cast<size_t>(l.m));
  l.strides.resize(static_cast<size_t>(l.m));
  for (int64_t k = l.m; k-- > 0;) {
    l.dims[static_cast<size_t>(k)] = data[static_cast<size_t>(b + k)];
    l.strides[static_cast<size_t>(k)] = stride;
    stride *= l.dims[static_cast<size_t>(k)];
  }
  l.batch_stride = stride;
  return l;
}

// Element offset in data addressed by tuple t (of all batches' tuples), or an error.
Result<int64_t> nd_offset(const std::string& who, const NdLayout& l, const IndexReader& idx,
                          int64_t t) {
  int64_t off = (t / l.tuples) * l.batch_stride;
  for (int64_t k = 0; k < l.m; ++k) {
    int64_t i = idx[t * l.m + k];
    const int64_t n = l.dims[static_cast<size_t>(k)];
    if (i < -n || i >= n) return index_out_of_range(who, i, n);
    if (i < 0) i += n;
    off += i * l.strides[static_cast<size_t>(k)];
  }
  return off;
}

// Shape checks shared by GatherND and ScatterND; returns m (or -1 when unknown).
Result<int64_t> check_nd(const InferContext& ctx, const Dims* data, const Dims* ind, int64_t b) {
  if (!data || !ind) return int64_t{-1};
  if (data->empty()) return ctx.invalid("data (input 0) is a scalar, expected rank >= 1");
  if (ind->empty()) return ctx.invalid("indices (input 1) is a scalar, expected rank >= 1");
  if (b < 0 || b >= rank_of(*ind) || b >= rank_of(*data))
    return ctx.invalid("batch_dims " + str(b) + " must be smaller than the ranks of data (" +
                       str(rank_of(*data)) + ") and indices (" + str(rank_of(*ind)) + ")");
  for (int64_t k = 0; k < b; ++k) {
    const Dim& x = (*data)[static_cast<size_t>(k)];
    const Dim& y = (*ind)[static_cast<size_t>(k)];
    if (x.known() && y.known() && x.value != y.value)
      return ctx.invalid("batch dimension " + str(k) + " is " + str(x.value) + " in data but " +
                         str(y.value) + " in indices");
  }
  const Dim& last = ind->back();
  if (!last.known()) return int64_t{-1};
  if (last.value < 1 || last.value > rank_of(*data) - b)
    return ctx.invalid("indices' last dimension is " + str(last.value) + ", expected 1 to " +
                       str(rank_of(*data) - b) + " (data rank minus batch_dims)");
  return last.value;
}

OpDef gather_nd_op(int since, int max) {
  OpDef d = def("GatherND", since, max);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "indices"));
    const int64_t b = ctx.opset() >= 12 ? ctx.node().attr_int("batch_dims", 0) : 0;
    const Dims* data = dims_of_input(ctx, 0);
    const Dims* ind = dims_of_input(ctx, 1);
    BRINK_ASSIGN_OR_RETURN(const int64_t m, check_nd(ctx, data, ind, b));
    if (m < 0) {
      ctx.set_output(0, TensorType(ctx.input_dtype(0), std::nullopt));
      return Status::ok();
    }
    Dims out(ind->begin(), ind->end() - 1);
    out.insert(out.end(), data->begin() + b + m, data->end());
    ctx.set_output(0, ctx.input_dtype(0), std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t b = c.opset >= 12 ? c.node.attr_int("batch_dims", 0) : 0;
    const std::string who = c.node.describe();
    return make_kernel([b, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& ind = ctx.input(1);
      const NdLayout l = nd_layout(x.shape(), ind.shape(), b);
      const size_t es = dtype_size(x.dtype());
      const size_t block = static_cast<size_t>(l.slice) * es;
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(ctx.output(0).raw_data());
      IndexReader idx(ind);
      for (int64_t t = 0; t < l.batches * l.tuples; ++t) {
        BRINK_ASSIGN_OR_RETURN(const int64_t off, nd_offset(who, l, idx, t));
        std::memcpy(dst + static_cast<size_t>(t) * block, src + static_cast<size_t>(off) * es,
                    block);
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- Scatter family ----------------------------------------------------------------------

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Result<Reduction> parse_reduction(const KernelCreateContext& c) {
  const std::string r = c.node.attr_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (c.opset >= 16 && r == "add") return Reduction::kAdd;
  if (c.opset >= 16 && r == "mul") return Reduction::kMul;
  if (c.opset >= 18 && r == "max") return Reduction::kMax;
  if (c.opset >= 18 && r == "min") return Reduction::kMin;
  const char* allowed = c.opset >= 18   ? "none, add, mul, max or min"
                        : c.opset >= 16 ? "none, add or mul"
                                        : "none";
  return c.invalid("attribute 'reduction' is '" + r + "', expected " + allowed + " at opset " +
                   str(c.opset));
}

template <typename T>
void reduce_into(T& dst, T src, Reduction r) {
  if constexpr (std::is_same_v<T, bool>) {
    switch (r) {
      case Reduction::kNone:
        dst = src;
        break;
      case Reduction::kAdd:
      case Reduction::kMax:
        dst = dst || src;
        break;
      case Reduction::kMul:
      case Reduction::kMin:
        dst = dst && src;
        break;
    }
  } else {
    using C = compute_t<T>;
    const C a = static_cast<C>(dst), b = static_cast<C>(src);
    switch (r) {
      case Reduction::kNone:
        dst = src;
        break;
      case Reduction::kAdd:
        dst = static_cast<T>(a + b);
        break;
      case Reduction::kMul:
        dst = static_cast<T>(a * b);
        break;
      case Reduction::kMax:
        dst = static_cast<T>(std::max(a, b));
        break;
      case Reduction::kMin:
        dst = static_cast<T>(std::min(a, b));
        break;
    }
  }
}

OpDef scatter_nd_op() {
  OpDef d = def("ScatterND", 11);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 3));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "indices"));
    if (ctx.input_dtype(2) != ctx.input_dtype(0))
      return ctx.invalid(std::string("updates (input 2) has element type ") +
                         dtype_name(ctx.input_dtype(2)) + ", expected " +
                         dtype_name(ctx.input_dtype(0)) + " like data");
    const Dims* data = dims_of_input(ctx, 0);
    const Dims* ind = dims_of_input(ctx, 1);
    const Dims* upd = dims_of_input(ctx, 2);
    BRINK_ASSIGN_OR_RETURN(const int64_t m, check_nd(ctx, data, ind, 0));
    if (m >= 0 && upd) {
      Dims want(ind->begin(), ind->end() - 1);
      want.insert(want.end(), data->begin() + m, data->end());
      bool ok = want.size() == upd->size();
      for (size_t k = 0; ok && k < want.size(); ++k)
        ok = !want[k].known() || !(*upd)[k].known() || want[k].value == (*upd)[k].value;
      if (!ok)
        return ctx.invalid("updates (input 2) has shape " + dims_str(*upd) + ", expected " +
                           dims_str(want));
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(const Reduction red, parse_reduction(c));
    const std::string who = c.node.describe();
    return make_kernel([red, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& ind = ctx.input(1);
      const Tensor& upd = ctx.input(2);
      Tensor& y = ctx.output(0);
      copy_all(x, y);
      const NdLayout l = nd_layout(x.shape(), ind.shape(), 0);
      IndexReader idx(ind);
      Status s;
      visit_dtype(x.dtype(), [&]<typename T>() {
        T* out = y.data<T>();
        const T* u = upd.data<T>();
        for (int64_t t = 0; t < l.tuples; ++t) {
          auto off = nd_offset(who, l, idx, t);
          if (!off) {
            s = off.status();
            return;
          }
          for (int64_t e = 0; e < l.slice; ++e) reduce_into(out[*off + e], u[t * l.slice + e], red);
        }
      });
      return s;
    });
  };
  return d;
}

// ScatterElements (opset 11+) and the older Scatter (opset 9-10) it replaced.
OpDef scatter_elements_op(const std::string& name, int since, int max) {
  OpDef d = def(name, since, max);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 3));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_index_dtype(ctx, 1, "indices"));
    if (ctx.input_dtype(2) != ctx.input_dtype(0))
      return ctx.invalid(std::string("updates (input 2) has element type ") +
                         dtype_name(ctx.input_dtype(2)) + ", expected " +
                         dtype_name(ctx.input_dtype(0)) + " like data");
    int64_t axis = 0;
    const Dims* ind = dims_of_input(ctx, 1);
    const Dims* upd = dims_of_input(ctx, 2);
    BRINK_RETURN_IF_ERROR(check_elements_ranks(ctx, dims_of_input(ctx, 0), ind, &axis));
    if (ind && upd) {
      bool ok = ind->size() == upd->size();
      for (size_t k = 0; ok && k < ind->size(); ++k)
        ok = !(*ind)[k].known() || !(*upd)[k].known() || (*ind)[k].value == (*upd)[k].value;
      if (!ok)
        return ctx.invalid("updates (input 2) has shape " + dims_str(*upd) + ", expected " +
                           dims_str(*ind) + " like indices");
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(const Reduction red, parse_reduction(c));
    const int64_t axis_attr = c.node.attr_int("axis", 0);
    const std::string who = c.node.describe();
    return make_kernel([red, axis_attr, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& upd = ctx.input(2);
      Tensor& y = ctx.output(0);
      copy_all(x, y);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      Status s;
      visit_dtype(x.dtype(), [&]<typename T>() {
        T* out = y.data<T>();
        const T* u = upd.data<T>();
        s = for_each_element_index(who, x, ctx.input(1), axis, [&](int64_t k, int64_t off) {
          reduce_into(out[off], u[k], red);
        });
      });
      return s;
    });
  };
  return d;
}

// ---- Shape, Size -------------------------------------------------------------------------

// The [start, end) range of dims Shape-15 reports, clamped to [0, rank].
void shape_range(const ir::Node& node, int64_t opset, int64_t r, int64_t* start, int64_t* end) {
  *start = opset >= 15 ? node.attr_int("start", 0) : 0;
  *end = opset >= 15 && node.attr("end") ? node.attr_int("end", r) : r;
  if (*start < 0) *start += r;
  if (*end < 0) *end += r;
  *start = std::clamp<int64_t>(*start, 0, r);
  *end = std::clamp<int64_t>(*end, 0, r);
}

OpDef shape_op() {
  OpDef d = def("Shape", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, DataType::kInt64, Dims{Dim()});
      return Status::ok();
    }
    int64_t start = 0, end = 0;
    shape_range(ctx.node(), ctx.opset(), rank_of(*in), &start, &end);
    ctx.set_output(0, DataType::kInt64, Shape{std::max<int64_t>(end - start, 0)});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ir::Node node = c.node;
    const int64_t opset = c.opset;
    return make_kernel([node, opset](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      int64_t start = 0, end = 0;
      shape_range(node, opset, x.rank(), &start, &end);
      int64_t* out = ctx.output(0).data<int64_t>();
      for (int64_t k = start; k < end; ++k) out[k - start] = x.dim(k);
      return Status::ok();
    });
  };
  return d;
}

OpDef size_op() {
  OpDef d = def("Size", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    ctx.set_output(0, DataType::kInt64, Shape{});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      ctx.output(0).data<int64_t>()[0] = ctx.input(0).numel();
      return Status::ok();
    });
  };
  return d;
}

// ---- Constant, ConstantOfShape -----------------------------------------------------------

// The tensor a Constant node holds. Works with InferContext and KernelCreateContext.
template <typename Ctx>
Result<Tensor> constant_value(const Ctx& ctx, const ir::Node& node) {
  static const char* kNames[] = {"value",      "value_float",  "value_floats",  "value_int",
                                 "value_ints", "value_string", "value_strings", "sparse_value"};
  const ir::Attribute* found = nullptr;
  int count = 0;
  for (const char* n : kNames)
    if (const ir::Attribute* a = node.attr(n)) {
      found = a;
      ++count;
    }
  if (count != 1)
    return ctx.invalid(
        "expected exactly one of the attributes value, value_float(s), value_int(s), "
        "value_string(s), sparse_value; found " +
        str(count));
  const std::string& n = found->name;
  if (n == "sparse_value")
    return ctx.unsupported_here("attribute 'sparse_value' (a sparse constant) is not supported");
  if (n == "value_string" || n == "value_strings")
    return ctx.unsupported_here("attribute '" + n + "' (a string constant) is not supported");
  if (n == "value") {
    if (found->type != ir::AttrType::kTensor || !found->t.defined())
      return ctx.invalid("attribute 'value' is not a tensor");
    if (!dtype_is_supported(found->t.dtype()))
      return ctx.unsupported_here(std::string("attribute 'value' has element type ") +
                                  dtype_name(found->t.dtype()) + ", which is not supported");
    return found->t;
  }
  if (n == "value_float") return Tensor::scalar<float>(found->f);
  if (n == "value_int") return Tensor::scalar<int64_t>(found->i);
  if (n == "value_floats")
    return Tensor::from_vector<float>({static_cast<int64_t>(found->floats.size())}, found->floats);
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(found->ints.size())}, found->ints);
}

OpDef constant_op() {
  OpDef d = def("Constant", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_ASSIGN_OR_RETURN(Tensor t, constant_value(ctx, ctx.node()));
    ctx.set_output(0, t.dtype(), t.shape());
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(Tensor t, constant_value(c, c.node));
    return make_kernel([t](KernelContext& ctx) -> Status {
      copy_all(t, ctx.output(0));
      return Status::ok();
    });
  };
  return d;
}

// ConstantOfShape's fill value: a one-element tensor attribute, f32 0 by default.
template <typename Ctx>
Result<Tensor> fill_value(const Ctx& ctx) {
  const ir::Attribute* a = ctx.node().attr("value");
  if (!a) return Tensor::scalar<float>(0.0f);
  if (a->type != ir::AttrType::kTensor || a->t.numel() != 1)
    return ctx.invalid("attribute 'value' must be a one-element tensor");
  if (!dtype_is_supported(a->t.dtype()))
    return ctx.unsupported_here(std::string("attribute 'value' has element type ") +
                                dtype_name(a->t.dtype()) + ", which is not supported");
  return a->t;
}

// KernelCreateContext holds the node as a member; this adapter gives it node() like InferContext.
struct CreateCtx {
  const KernelCreateContext& c;
  const ir::Node& node() const { return c.node; }
  Status invalid(const std::string& m) const { return c.invalid(m); }
  Status unsupported_here(const std::string& m) const { return c.unsupported_here(m); }
};

OpDef constant_of_shape_op() {
  OpDef d = def("ConstantOfShape", 9);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 0, DataType::kInt64, "input"));
    BRINK_ASSIGN_OR_RETURN(Tensor v, fill_value(ctx));
    if (auto shape = known_ints(ctx, 0)) {
      for (int64_t x : *shape)
        if (x < 0) return ctx.invalid("shape " + ints_str(*shape) + " has a negative dimension");
      ctx.set_output(0, v.dtype(), *shape);
      return Status::ok();
    }
    const int64_t n = known_length(ctx, 0);
    ctx.set_output(
        0, TensorType(v.dtype(), n >= 0 ? OptDims(Dims(static_cast<size_t>(n))) : OptDims()));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(Tensor v, fill_value(CreateCtx{c}));
    return make_kernel([v](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      fill_elements(y.raw_data(), y.numel(), v.raw_data(), dtype_size(v.dtype()));
      return Status::ok();
    });
  };
  return d;
}

// ---- Expand, Tile ------------------------------------------------------------------------

OpDef expand_op() {
  OpDef d = def("Expand", 8);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "shape"));
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    if (auto shape = known_ints(ctx, 1)) {
      TensorType target(dt, dims_of(*shape));
      BRINK_ASSIGN_OR_RETURN(auto out, broadcast_dims(ctx, {&ctx.input_type(0), &target}));
      ctx.set_output(0, TensorType(dt, std::move(out)));
      return Status::ok();
    }
    const int64_t n = known_length(ctx, 1);
    if (!in || n < 0) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    // The target may be 1 where the input is not: the input's dims > 1 survive.
    const size_t r = std::max(in->size(), static_cast<size_t>(n));
    Dims out(r);
    for (size_t k = 0; k < in->size(); ++k) {
      const Dim& x = (*in)[k];
      if (x.known() && x.value != 1) out[r - in->size() + k] = x;
    }
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      strided_copy(y.raw_data(), x.raw_data(), y.shape(), broadcast_strides(x.shape(), y.shape()),
                   dtype_size(x.dtype()));
      return Status::ok();
    });
  };
  return d;
}

OpDef tile_op() {
  OpDef d = def("Tile", 6);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "repeats"));
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    auto reps = known_ints(ctx, 1);
    if (!reps) {
      ctx.set_output(0, dt, Dims(in->size()));
      return Status::ok();
    }
    if (reps->size() != in->size())
      return ctx.invalid("repeats " + ints_str(*reps) + " has " +
                         str(static_cast<int64_t>(reps->size())) + " entries, expected " +
                         str(rank_of(*in)) + " (the input rank)");
    Dims out;
    for (size_t k = 0; k < in->size(); ++k) {
      const int64_t rep = (*reps)[k];
      if (rep < 0) return ctx.invalid("repeats " + ints_str(*reps) + " has a negative value");
      const Dim& x = (*in)[k];
      out.push_back(rep == 1 ? x : rep == 0 ? Dim(0) : x.known() ? Dim(x.value * rep) : Dim());
    }
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      // The output seen as [rep0, d0, rep1, d1, ...], reading the input with stride 0 on reps.
      const std::vector<int64_t> s = strides_of(x.shape());
      Shape view;
      std::vector<int64_t> strides;
      for (int64_t k = 0; k < x.rank(); ++k) {
        view.push_back(x.dim(k) ? y.dim(k) / x.dim(k) : 0);
        strides.push_back(0);
        view.push_back(x.dim(k));
        strides.push_back(s[static_cast<size_t>(k)]);
      }
      strided_copy(y.raw_data(), x.raw_data(), view, strides, dtype_size(x.dtype()));
      return Status::ok();
    });
  };
  return d;
}

// ---- Range -------------------------------------------------------------------------------

// Number of elements of Range(start, limit, delta): max(ceil((limit - start) / delta), 0).
Result<int64_t> range_count(const InferContext& ctx, const Tensor& start, const Tensor& limit,
                            const Tensor& delta) {
  if (dtype_is_float(start.dtype())) {
    const double s = start.element_as_double(0), l = limit.element_as_double(0),
                 d = delta.element_as_double(0);
    if (d == 0) return ctx.invalid("delta is 0");
    const double n = std::ceil((l - s) / d);
    if (!std::isfinite(n)) return ctx.invalid("the number of elements is not finite");
    return std::max<int64_t>(static_cast<int64_t>(n), 0);
  }
  const int64_t s = start.element_as_int64(0), l = limit.element_as_int64(0),
                d = delta.element_as_int64(0);
  if (d == 0) return ctx.invalid("delta is 0");
  const int64_t diff = l - s;
  int64_t n = diff / d;
  if (diff % d != 0 && (diff > 0) == (d > 0)) ++n;
  return std::max<int64_t>(n, 0);
}

OpDef range_op() {
  OpDef d = def("Range", 11);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 3));
    const DataType dt = ctx.input_dtype(0);
    if (dt != DataType::kFloat32 && dt != DataType::kFloat64 && dt != DataType::kInt16 &&
        dt != DataType::kInt32 && dt != DataType::kInt64)
      return ctx.invalid(std::string("start has element type ") + dtype_name(dt) +
                         ", expected f32, f64, i16, i32 or i64");
    static const char* names[] = {"start", "limit", "delta"};
    for (size_t i = 0; i < 3; ++i) {
      if (ctx.input_dtype(i) != dt)
        return ctx.invalid(std::string(names[i]) + " has element type " +
                           dtype_name(ctx.input_dtype(i)) + ", expected " + dtype_name(dt) +
                           " like start");
      const Dims* di = dims_of_input(ctx, i);
      if (di && !(di->empty() || (di->size() == 1 && (*di)[0].known() && (*di)[0].value == 1)))
        return ctx.invalid(std::string(names[i]) + " has shape " + dims_str(*di) +
                           ", expected a scalar");
    }
    const Tensor *s = ctx.input_value(0), *l = ctx.input_value(1), *dl = ctx.input_value(2);
    if (s && l && dl) {
      BRINK_ASSIGN_OR_RETURN(const int64_t n, range_count(ctx, *s, *l, *dl));
      ctx.set_output(0, dt, Shape{n});
    } else {
      ctx.set_output(0, dt, Dims{Dim()});
    }
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      visit_dtype(y.dtype(), [&]<typename T>() {
        if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
          const T s = ctx.input(0).data<T>()[0], dl = ctx.input(2).data<T>()[0];
          T* out = y.data<T>();
          for (int64_t i = 0; i < y.numel(); ++i)
            out[i] = static_cast<T>(s + static_cast<T>(i) * dl);
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- Dropout (inference) -----------------------------------------------------------------

enum class DropoutForm { kMaskLikeInput, kBoolMask, kInputs };

OpDef dropout_op(int since, int max, DropoutForm form) {
  OpDef d = def("Dropout", since, max);
  d.infer = [form](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    const DataType dt = ctx.input_dtype(0);
    if (!dtype_is_float(dt))
      return ctx.invalid(std::string("data has element type ") + dtype_name(dt) +
                         ", expected a float type");
    if (form == DropoutForm::kInputs) {
      if (ctx.has_input(1) && !dtype_is_float(ctx.input_dtype(1)))
        return ctx.invalid(std::string("ratio has element type ") + dtype_name(ctx.input_dtype(1)) +
                           ", expected a float type");
      if (ctx.has_input(2))
        BRINK_RETURN_IF_ERROR(check_dtype(ctx, 2, DataType::kBool, "training_mode"));
    }
    ctx.set_output(0, ctx.input_type(0));
    if (ctx.num_outputs() > 1)
      ctx.set_output(1, TensorType(form == DropoutForm::kMaskLikeInput ? dt : DataType::kBool,
                                   ctx.input_type(0).dims));
    return Status::ok();
  };
  d.create = [form](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool has_mask = c.node.outputs.size() > 1 && c.node.outputs[1] != ir::kNoValue;
    const std::string who = c.node.describe();
    // Training mode with a positive ratio drops random elements: not an inference op.
    auto training_error = [who](double ratio) {
      return unsupported(who + ": training_mode=1 with ratio " + std::to_string(ratio) +
                         " (random dropout) is not supported; Brink runs inference only");
    };
    if (form == DropoutForm::kInputs && c.has_input(2) && c.constant_inputs.size() > 2 &&
        c.constant_inputs[2]) {
      const bool training = c.constant_inputs[2]->element_as_int64(0) != 0;
      double ratio = 0.5;
      if (c.has_input(1) && c.constant_inputs[1])
        ratio = c.constant_inputs[1]->element_as_double(0);
      const bool ratio_known = !c.has_input(1) || c.constant_inputs[1];
      if (training && ratio_known && ratio > 0) return training_error(ratio);
    }
    return make_kernel([form, has_mask, training_error](KernelContext& ctx) -> Status {
      if (form == DropoutForm::kInputs && ctx.has_input(2) &&
          ctx.input(2).element_as_int64(0) != 0) {
        const double ratio = ctx.has_input(1) ? ctx.input(1).element_as_double(0) : 0.5;
        if (ratio > 0) return training_error(ratio);
      }
      copy_all(ctx.input(0), ctx.output(0));
      if (has_mask) {
        Tensor& m = ctx.output(1);
        const auto one = scalar_bytes(m.dtype(), 1.0);
        fill_elements(m.raw_data(), m.numel(), one.data(), dtype_size(m.dtype()));
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- NonZero -----------------------------------------------------------------------------

template <typename T>
bool is_nonzero(T v) {
  return static_cast<compute_t<T>>(v) != compute_t<T>(0);
}

int64_t count_nonzero(const Tensor& x) {
  int64_t n = 0;
  visit_dtype(x.dtype(), [&]<typename T>() {
    const T* p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) n += is_nonzero(p[i]) ? 1 : 0;
  });
  return n;
}

OpDef nonzero_op() {
  OpDef d = def("NonZero", 9);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const Dims* in = dims_of_input(ctx, 0);
    const Dim rank = in ? Dim(rank_of(*in)) : Dim();
    const Tensor* v = ctx.input_value(0);
    ctx.set_output(0, DataType::kInt64, Dims{rank, v ? Dim(count_nonzero(*v)) : Dim()});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext&) -> Result<std::unique_ptr<Kernel>> {
    return make_kernel([](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t r = x.rank(), n = count_nonzero(x);
      // A scalar gives [0, n] (ONNX differs from NumPy here).
      Tensor& y = output_with_shape(ctx, 0, DataType::kInt64, {r, n});
      int64_t* out = y.data<int64_t>();
      std::vector<int64_t> index(static_cast<size_t>(r), 0);
      visit_dtype(x.dtype(), [&]<typename T>() {
        const T* p = x.data<T>();
        int64_t j = 0;
        for (int64_t i = 0; i < x.numel(); ++i) {
          if (is_nonzero(p[i])) {
            for (int64_t k = 0; k < r; ++k) out[k * n + j] = index[static_cast<size_t>(k)];
            ++j;
          }
          for (int64_t k = r; k-- > 0;) {
            if (++index[static_cast<size_t>(k)] < x.dim(k)) break;
            index[static_cast<size_t>(k)] = 0;
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- Trilu -------------------------------------------------------------------------------

OpDef trilu_op() {
  OpDef d = def("Trilu", 14);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const Dims* in = dims_of_input(ctx, 0);
    if (in && in->size() < 2)
      return ctx.invalid("input has rank " + str(rank_of(*in)) + ", expected at least 2");
    if (ctx.has_input(1)) {
      BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "k"));
      if (known_length(ctx, 1) > 1) return ctx.invalid("k must be a scalar");
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool upper = c.node.attr_int("upper", 1) != 0;
    return make_kernel([upper](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t k =
          ctx.has_input(1) && ctx.input(1).numel() > 0 ? ctx.input(1).element_as_int64(0) : 0;
      copy_all(x, y);
      const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
      const int64_t mats = rows * cols > 0 ? x.numel() / (rows * cols) : 0;
      const size_t es = dtype_size(x.dtype());
      auto* p = static_cast<uint8_t*>(y.raw_data());
      for (int64_t m = 0; m < mats; ++m) {
        for (int64_t i = 0; i < rows; ++i) {
          // Keep j - i >= k (upper) or j - i <= k (lower); zero the rest of the row.
          uint8_t* row = p + static_cast<size_t>((m * rows + i) * cols) * es;
          if (upper) {
            const int64_t end = std::clamp<int64_t>(i + k, 0, cols);
            std::memset(row, 0, static_cast<size_t>(end) * es);
          } else {
            const int64_t begin = std::clamp<int64_t>(i + k + 1, 0, cols);
            std::memset(row + static_cast<size_t>(begin) * es, 0,
                        static_cast<size_t>(cols - begin) * es);
          }
        }
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- DepthToSpace, SpaceToDepth ----------------------------------------------------------

Result<int64_t> blocksize_of(const InferContext& ctx) {
  const ir::Attribute* a = ctx.node().attr("blocksize");
  if (!a) return ctx.invalid("attribute 'blocksize' is required");
  if (a->i < 1) return ctx.invalid("attribute 'blocksize' is " + str(a->i) + ", expected >= 1");
  return a->i;
}

OpDef depth_to_space_op() {
  OpDef d = def("DepthToSpace", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_ASSIGN_OR_RETURN(const int64_t b, blocksize_of(ctx));
    const std::string mode = ctx.node().attr_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD")
      return ctx.invalid("attribute 'mode' is '" + mode + "', expected DCR or CRD");
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, ctx.input_dtype(0), Dims(4));
      return Status::ok();
    }
    if (in->size() != 4)
      return ctx.invalid("input has rank " + str(rank_of(*in)) + ", expected 4 (N, C, H, W)");
    const Dim& c = (*in)[1];
    if (c.known() && c.value % (b * b) != 0)
      return ctx.invalid("channels " + str(c.value) +
                         " are not divisible by blocksize^2 = " + str(b * b));
    auto scale = [&](const Dim& x) { return x.known() ? Dim(x.value * b) : Dim(); };
    ctx.set_output(0, ctx.input_dtype(0),
                   Dims{(*in)[0], c.known() ? Dim(c.value / (b * b)) : Dim(), scale((*in)[2]),
                        scale((*in)[3])});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t b = c.node.attr_int("blocksize", 1);
    const bool crd = c.node.attr_string("mode", "DCR") == "CRD";
    return make_kernel([b, crd](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t n = x.dim(0), oc = x.dim(1) / (b * b), h = x.dim(2), w = x.dim(3);
      // Output [N, C', H, b, W, b] read from the input seen as DCR [N, b, b, C', H, W] or
      // CRD [N, C', b, b, H, W].
      const int64_t sw = 1, sh = w, sc = h * w;
      const int64_t s_oc = crd ? b * b * sc : sc, s_b1 = crd ? b * sc : b * oc * sc,
                    s_b2 = crd ? sc : oc * sc;
      strided_copy(ctx.output(0).raw_data(), x.raw_data(), {n, oc, h, b, w, b},
                   {oc * b * b * sc, s_oc, sh, s_b1, sw, s_b2}, dtype_size(x.dtype()));
      return Status::ok();
    });
  };
  return d;
}

OpDef space_to_depth_op() {
  OpDef d = def("SpaceToDepth", 1);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_ASSIGN_OR_RETURN(const int64_t b, blocksize_of(ctx));
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, ctx.input_dtype(0), Dims(4));
      return Status::ok();
    }
    if (in->size() != 4)
      return ctx.invalid("input has rank " + str(rank_of(*in)) + ", expected 4 (N, C, H, W)");
    Dims out{(*in)[0], (*in)[1].known() ? Dim((*in)[1].value * b * b) : Dim(), Dim(), Dim()};
    for (size_t k = 2; k < 4; ++k) {
      const Dim& x = (*in)[k];
      if (!x.known()) continue;
      if (x.value % b != 0)
        return ctx.invalid("spatial dimension " + str(x.value) + " is not divisible by blocksize " +
                           str(b));
      out[k] = Dim(x.value / b);
    }
    ctx.set_output(0, ctx.input_dtype(0), std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t b = c.node.attr_int("blocksize", 1);
    return make_kernel([b](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t n = x.dim(0), ch = x.dim(1), h = x.dim(2), w = x.dim(3), oh = h / b, ow = w / b;
      // Output [N, b, b, C, H/b, W/b] read from the input seen as [N, C, H/b, b, W/b, b].
      strided_copy(ctx.output(0).raw_data(), x.raw_data(), {n, b, b, ch, oh, ow},
                   {ch * h * w, w, 1, h * w, b * w, b}, dtype_size(x.dtype()));
      return Status::ok();
    });
  };
  return d;
}

// ---- EyeLike -----------------------------------------------------------------------------

OpDef eye_like_op() {
  OpDef d = def("EyeLike", 9);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    DataType dt = ctx.input_dtype(0);
    if (const ir::Attribute* a = ctx.node().attr("dtype")) {
      dt = static_cast<DataType>(a->i);
      if (!dtype_is_supported(dt))
        return ctx.unsupported_here("attribute 'dtype' is " + str(a->i) +
                                    ", which is not a supported element type");
    }
    const Dims* in = dims_of_input(ctx, 0);
    if (in && in->size() != 2)
      return ctx.invalid("input has rank " + str(rank_of(*in)) + ", expected 2");
    ctx.set_output(0, dt, in ? *in : Dims(2));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t k = c.node.attr_int("k", 0);
    return make_kernel([k](KernelContext& ctx) -> Status {
      Tensor& y = ctx.output(0);
      const size_t es = dtype_size(y.dtype());
      std::memset(y.raw_data(), 0, y.nbytes());
      const auto one = scalar_bytes(y.dtype(), 1.0);
      const int64_t rows = y.dim(0), cols = y.dim(1);
      auto* p = static_cast<uint8_t*>(y.raw_data());
      for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; ++i)
        std::memcpy(p + static_cast<size_t>(i * cols + i + k) * es, one.data(), es);
      return Status::ok();
    });
  };
  return d;
}

// ---- OneHot ------------------------------------------------------------------------------

OpDef one_hot_op(int since, int max) {
  OpDef d = def("OneHot", since, max);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 3));
    for (size_t i = 0; i < 2; ++i)
      if (ctx.input_dtype(i) == DataType::kBool || !dtype_is_supported(ctx.input_dtype(i)))
        return ctx.invalid(std::string(i ? "depth" : "indices") + " has element type " +
                           dtype_name(ctx.input_dtype(i)) + ", expected a numeric type");
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 2));
    const int64_t nv = known_length(ctx, 2);
    if (nv >= 0 && nv != 2)
      return ctx.invalid("values must have 2 elements [off_value, on_value], found " + str(nv));
    if (known_length(ctx, 1) > 1) return ctx.invalid("depth must have one element");
    const DataType dt = ctx.input_dtype(2);
    const Dims* in = dims_of_input(ctx, 0);
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(const int64_t axis,
                           normalize_axis(ctx, ctx.node().attr_int("axis", -1), rank_of(*in) + 1));
    Dim depth;
    if (const Tensor* t = ctx.input_value(1)) {
      if (t->numel() != 1) return ctx.invalid("depth must have one element");
      const int64_t v = t->element_as_int64(0);
      if (v < 1) return ctx.invalid("depth is " + str(v) + ", expected >= 1");
      depth = Dim(v);
    }
    Dims out = *in;
    out.insert(out.begin() + axis, depth);
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = c.node.attr_int("axis", -1);
    const bool negative_indices = c.opset >= 11;
    return make_kernel([axis_attr, negative_indices](KernelContext& ctx) -> Status {
      const Tensor& ind = ctx.input(0);
      const Tensor& values = ctx.input(2);
      Tensor& y = ctx.output(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, y.rank());
      const int64_t depth = y.dim(axis);
      const size_t es = dtype_size(y.dtype());
      const auto* v = static_cast<const uint8_t*>(values.raw_data());
      fill_elements(y.raw_data(), y.numel(), v, es);
      int64_t inner = 1;
      for (int64_t k = axis + 1; k < y.rank(); ++k) inner *= y.dim(k);
      const std::vector<int64_t> idx = tensor_to_int64s(ind);
      auto* out = static_cast<uint8_t*>(y.raw_data());
      for (int64_t p = 0; p < ind.numel(); ++p) {
        int64_t i = idx[static_cast<size_t>(p)];
        if (i < 0 && negative_indices) i += depth;
        if (i < 0 || i >= depth) continue;  // out of range: all off_value
        const int64_t o = p / inner, in = p % inner;
        std::memcpy(out + static_cast<size_t>((o * depth + i) * inner + in) * es, v + es, es);
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- Compress ----------------------------------------------------------------------------

int64_t count_true(const Tensor& cond, int64_t limit) {
  const bool* c = cond.data<bool>();
  int64_t n = 0;
  for (int64_t i = 0; i < std::min(limit, cond.numel()); ++i) n += c[i] ? 1 : 0;
  return n;
}

OpDef compress_op() {
  OpDef d = def("Compress", 9);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kBool, "condition"));
    const Dims* cd = dims_of_input(ctx, 1);
    if (cd && cd->size() != 1)
      return ctx.invalid("condition has rank " + str(rank_of(*cd)) + ", expected 1");
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    const Tensor* cond = ctx.input_value(1);
    const ir::Attribute* axis_attr = ctx.node().attr("axis");
    if (!axis_attr) {
      Dim n;
      if (cond && in && all_known(*in))
        n = Dim(count_true(*cond, dims_product(*in, 0, in->size()).value));
      ctx.set_output(0, dt, Dims{n});
      return Status::ok();
    }
    if (!in) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(ctx, axis_attr->i, rank_of(*in)));
    Dims out = *in;
    const Dim& x = (*in)[static_cast<size_t>(axis)];
    out[static_cast<size_t>(axis)] = cond && x.known() ? Dim(count_true(*cond, x.value)) : Dim();
    ctx.set_output(0, dt, std::move(out));
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ir::Attribute* a = c.node.attr("axis");
    const bool has_axis = a != nullptr;
    const int64_t axis_attr = a ? a->i : 0;
    return make_kernel([has_axis, axis_attr](KernelContext& ctx) -> Status {
      const Tensor& x0 = ctx.input(0);
      const Tensor& cond = ctx.input(1);
      const Tensor x = has_axis ? x0 : x0.reshaped({x0.numel()});
      const int64_t axis = has_axis ? normalize_axis_unchecked(axis_attr, x.rank()) : 0;
      Shape shape = x.shape();
      shape[static_cast<size_t>(axis)] = count_true(cond, x.dim(axis));
      Tensor& y = output_with_shape(ctx, 0, x.dtype(), shape);
      const size_t es = dtype_size(x.dtype());
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
      for (int64_t k = axis + 1; k < x.rank(); ++k) inner *= x.dim(k);
      const size_t block = static_cast<size_t>(inner) * es;
      const int64_t n = x.dim(axis), m = std::min(n, cond.numel());
      const bool* c = cond.data<bool>();
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(y.raw_data());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < m; ++i)
          if (c[i]) {
            std::memcpy(dst, src + static_cast<size_t>(o * n + i) * block, block);
            dst += block;
          }
      return Status::ok();
    });
  };
  return d;
}

// ---- ReverseSequence ---------------------------------------------------------------------

OpDef reverse_sequence_op() {
  OpDef d = def("ReverseSequence", 10);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 2));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, DataType::kInt64, "sequence_lens"));
    const int64_t t = ctx.node().attr_int("time_axis", 0), b = ctx.node().attr_int("batch_axis", 1);
    if (!((t == 0 && b == 1) || (t == 1 && b == 0)))
      return ctx.invalid("attributes time_axis=" + str(t) + " and batch_axis=" + str(b) +
                         " must be 0 and 1 in some order");
    const Dims* in = dims_of_input(ctx, 0);
    if (in && in->size() < 2)
      return ctx.invalid("input has rank " + str(rank_of(*in)) + ", expected at least 2");
    const Dims* lens = dims_of_input(ctx, 1);
    if (lens && lens->size() != 1)
      return ctx.invalid("sequence_lens has rank " + str(rank_of(*lens)) + ", expected 1");
    if (in && lens && (*lens)[0].known() && (*in)[static_cast<size_t>(b)].known() &&
        (*lens)[0].value != (*in)[static_cast<size_t>(b)].value)
      return ctx.invalid("sequence_lens has " + str((*lens)[0].value) +
                         " entries, expected the batch size " +
                         str((*in)[static_cast<size_t>(b)].value));
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const bool time_first = c.node.attr_int("time_axis", 0) == 0;
    const std::string who = c.node.describe();
    return make_kernel([time_first, who](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const int64_t* lens = ctx.input(1).data<int64_t>();
      const int64_t steps = x.dim(time_first ? 0 : 1), batch = x.dim(time_first ? 1 : 0);
      const size_t block = static_cast<size_t>(x.numel() / std::max<int64_t>(steps * batch, 1)) *
                           dtype_size(x.dtype());
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(ctx.output(0).raw_data());
      auto at = [&](int64_t t, int64_t b) {
        return static_cast<size_t>(time_first ? t * batch + b : b * steps + t) * block;
      };
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t len = lens[b];
        if (len < 0 || len > steps)
          return invalid_argument(who + ": sequence_lens[" + str(b) + "] is " + str(len) +
                                  ", expected 0 to " + str(steps));
        for (int64_t t = 0; t < steps; ++t)
          std::memcpy(dst + at(t, b), src + at(t < len ? len - 1 - t : t, b), block);
      }
      return Status::ok();
    });
  };
  return d;
}

// ---- Unique ------------------------------------------------------------------------------

// Unique's sort key for element type T (see unique_groups).
template <typename T>
using unique_key_t =
    std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>,
                       std::conditional_t<std::is_same_v<T, uint64_t>, uint64_t, int64_t>>;

// Sorts the slices (rows of `len` keys, one per entry of `order`) stably by value, NaN last
// and equal to NaN, and groups equal ones: `first` holds each group's first slice, `counts`
// its size, `inverse` each slice's group.
template <typename K>
void unique_groups(const std::vector<K>& rows, int64_t len, std::vector<int64_t>* order,
                   std::vector<int64_t>* inverse, std::vector<int64_t>* first,
                   std::vector<int64_t>* counts) {
  auto is_nan = [](K v) {
    if constexpr (std::is_floating_point_v<K>)
      return std::isnan(v);
    else
      return false;
  };
  auto less = [&](K a, K b) { return !is_nan(a) && (is_nan(b) || a < b); };
  auto equal = [&](K a, K b) { return a == b || (is_nan(a) && is_nan(b)); };
  auto row_less = [&](int64_t a, int64_t b) {
    const K* ra = rows.data() + a * len;
    const K* rb = rows.data() + b * len;
    for (int64_t e = 0; e < len; ++e) {
      if (less(ra[e], rb[e])) return true;
      if (less(rb[e], ra[e])) return false;
    }
    return false;
  };
  auto row_equal = [&](int64_t a, int64_t b) {
    for (int64_t e = 0; e < len; ++e)
      if (!equal(rows[static_cast<size_t>(a * len + e)], rows[static_cast<size_t>(b * len + e)]))
        return false;
    return true;
  };
  std::stable_sort(order->begin(), order->end(), row_less);
  for (size_t i = 0; i < order->size(); ++i) {
    if (i == 0 || !row_equal((*order)[i - 1], (*order)[i])) {
      first->push_back((*order)[i]);
      counts->push_back(0);
    }
    ++counts->back();
    (*inverse)[static_cast<size_t>((*order)[i])] = static_cast<int64_t>(first->size()) - 1;
  }
}

OpDef unique_op() {
  OpDef d = def("Unique", 11);
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(require_inputs(ctx, 1));
    BRINK_RETURN_IF_ERROR(check_data_dtype(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    const Dims* in = dims_of_input(ctx, 0);
    const ir::Attribute* axis_attr = ctx.node().attr("axis");
    Dim n;  // slices compared: elements without axis, the axis size with one
    if (!axis_attr) {
      ctx.set_output(0, dt, Dims{Dim()});
      if (in) n = dims_product(*in, 0, in->size());
    } else if (in) {
      BRINK_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(ctx, axis_attr->i, rank_of(*in)));
      Dims out = *in;
      out[static_cast<size_t>(axis)] = Dim();
      n = (*in)[static_cast<size_t>(axis)];
      ctx.set_output(0, dt, std::move(out));
    } else {
      ctx.set_output(0, TensorType(dt, std::nullopt));
    }
    ctx.set_output(1, DataType::kInt64, Dims{Dim()});
    ctx.set_output(2, DataType::kInt64, Dims{n});
    ctx.set_output(3, DataType::kInt64, Dims{Dim()});
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ir::Attribute* a = c.node.attr("axis");
    const bool has_axis = a != nullptr;
    const int64_t axis_attr = a ? a->i : 0;
    const bool sorted = c.node.attr_int("sorted", 1) != 0;
    std::vector<bool> present;
    for (int o : c.node.outputs) present.push_back(o != ir::kNoValue);
    return make_kernel([has_axis, axis_attr, sorted, present](KernelContext& ctx) -> Status {
      const Tensor& x0 = ctx.input(0);
      const Tensor x = has_axis ? x0 : x0.reshaped({x0.numel()});
      const int64_t axis = has_axis ? normalize_axis_unchecked(axis_attr, x.rank()) : 0;
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < axis; ++k) outer *= x.dim(k);
      for (int64_t k = axis + 1; k < x.rank(); ++k) inner *= x.dim(k);
      const int64_t n = x.dim(axis), len = outer * inner;
      // order: slice numbers sorted (stably) by value; group: first slice of each run of equals.
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      std::vector<int64_t> inverse(static_cast<size_t>(n));
      std::vector<int64_t> first, counts;
      visit_dtype(x.dtype(), [&]<typename T>() {
        // Slices gathered contiguously as sort keys, so comparisons read rows: 16/32-bit floats
        // as float, integers and bool as int64 (uint64 as itself), which keeps their order and
        // equality and sorts with one instance per key type rather than per element type.
        using K = unique_key_t<T>;
        std::vector<K> rows(static_cast<size_t>(n * len));
        const T* p = x.data<T>();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < n; ++i)
            for (int64_t e = 0; e < inner; ++e)
              rows[static_cast<size_t>(i * len + o * inner + e)] =
                  static_cast<K>(static_cast<compute_t<T>>(p[(o * n + i) * inner + e]));
        unique_groups(rows, len, &order, &inverse, &first, &counts);
      });
      const int64_t u = static_cast<int64_t>(first.size());
      std::vector<int64_t> position(static_cast<size_t>(u));  // sorted group -> output position
      std::iota(position.begin(), position.end(), 0);
      if (!sorted) {
        std::vector<int64_t> by_first(static_cast<size_t>(u));
        std::iota(by_first.begin(), by_first.end(), 0);
        std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) {
          return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
        });
        for (int64_t k = 0; k < u; ++k)
          position[static_cast<size_t>(by_first[static_cast<size_t>(k)])] = k;
      }
      Shape yshape = x.shape();
      yshape[static_cast<size_t>(axis)] = u;
      Tensor& y = output_with_shape(ctx, 0, x.dtype(), yshape);
      const size_t es = dtype_size(x.dtype()), block = static_cast<size_t>(inner) * es;
      const auto* src = static_cast<const uint8_t*>(x.raw_data());
      auto* dst = static_cast<uint8_t*>(y.raw_data());
      for (int64_t g = 0; g < u; ++g) {
        const int64_t at = position[static_cast<size_t>(g)], from = first[static_cast<size_t>(g)];
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(dst + static_cast<size_t>(o * u + at) * block,
                      src + static_cast<size_t>(o * n + from) * block, block);
      }
      auto write = [&](size_t out, int64_t count, auto&& value) {
        if (out >= present.size() || !present[out]) return;
        int64_t* q = output_with_shape(ctx, out, DataType::kInt64, {count}).data<int64_t>();
        for (int64_t k = 0; k < count; ++k) q[k] = value(k);
      };
      std::vector<int64_t> group_at(static_cast<size_t>(u));  // output position -> group
      for (int64_t g = 0; g < u; ++g)
        group_at[static_cast<size_t>(position[static_cast<size_t>(g)])] = g;
      write(1, u, [&](int64_t k) {
        return first[static_cast<size_t>(group_at[static_cast<size_t>(k)])];
      });
      write(2, n, [&](int64_t k) {
        return position[static_cast<size_t>(inverse[static_cast<size_t>(k)])];
      });
      write(3, u, [&](int64_t k) {
        return counts[static_cast<size_t>(group_at[static_cast<size_t>(k)])];
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  if constexpr (op_selected("", "Identity")) r.add(identity_op());
  if constexpr (op_selected("", "Reshape")) r.add(reshape_op(5, 13, false));
  if constexpr (op_selected("", "Reshape")) r.add(reshape_op(14, 21, true));
  if constexpr (op_selected("", "Flatten")) r.add(flatten_op());
  if constexpr (op_selected("", "Squeeze")) r.add(squeeze_op(1, 12, false));
  if constexpr (op_selected("", "Squeeze")) r.add(squeeze_op(13, 21, true));
  if constexpr (op_selected("", "Unsqueeze")) r.add(unsqueeze_op(1, 12, false));
  if constexpr (op_selected("", "Unsqueeze")) r.add(unsqueeze_op(13, 21, true));
  if constexpr (op_selected("", "Transpose")) r.add(transpose_op());
  if constexpr (op_selected("", "Concat")) r.add(concat_op());
  if constexpr (op_selected("", "Split")) r.add(split_op(2, 12, SplitForm::kAttribute));
  if constexpr (op_selected("", "Split")) r.add(split_op(13, 17, SplitForm::kInput));
  if constexpr (op_selected("", "Split")) r.add(split_op(18, 21, SplitForm::kInputOrNumOutputs));
  if constexpr (op_selected("", "Slice")) r.add(slice_op(1, 9, false));
  if constexpr (op_selected("", "Slice")) r.add(slice_op(10, 21, true));
  if constexpr (op_selected("", "Gather")) r.add(gather_op());
  if constexpr (op_selected("", "GatherElements")) r.add(gather_elements_op());
  if constexpr (op_selected("", "GatherND")) r.add(gather_nd_op(11, 21));
  if constexpr (op_selected("", "ScatterND")) r.add(scatter_nd_op());
  if constexpr (op_selected("", "ScatterElements"))
    r.add(scatter_elements_op("ScatterElements", 11, 21));
  if constexpr (op_selected("", "Scatter")) r.add(scatter_elements_op("Scatter", 9, 10));
  if constexpr (op_selected("", "Shape")) r.add(shape_op());
  if constexpr (op_selected("", "Size")) r.add(size_op());
  if constexpr (op_selected("", "Constant")) r.add(constant_op());
  if constexpr (op_selected("", "ConstantOfShape")) r.add(constant_of_shape_op());
  if constexpr (op_selected("", "Expand")) r.add(expand_op());
  if constexpr (op_selected("", "Tile")) r.add(tile_op());
  if constexpr (op_selected("", "Range")) r.add(range_op());
  if constexpr (op_selected("", "Dropout")) r.add(dropout_op(7, 9, DropoutForm::kMaskLikeInput));
  if constexpr (op_selected("", "Dropout")) r.add(dropout_op(10, 11, DropoutForm::kBoolMask));
  if constexpr (op_selected("", "Dropout")) r.add(dropout_op(12, 21, DropoutForm::kInputs));
  if constexpr (op_selected("", "NonZero")) r.add(nonzero_op());
  if constexpr (op_selected("", "Trilu")) r.add(trilu_op());
  if constexpr (op_selected("", "DepthToSpace")) r.add(depth_to_space_op());
  if constexpr (op_selected("", "SpaceToDepth")) r.add(space_to_depth_op());
  if constexpr (op_selected("", "EyeLike")) r.add(eye_like_op());
  if constexpr (op_selected("", "OneHot")) r.add(one_hot_op(9, 10));
  if constexpr (op_selected("", "OneHot")) r.add(one_hot_op(11, 21));
  if constexpr (op_selected("", "Compress")) r.add(compress_op());
  if constexpr (op_selected("", "ReverseSequence")) r.add(reverse_sequence_op());
  if constexpr (op_selected("", "Unique")) r.add(unique_op());
}

}  // namespace brink::ops
