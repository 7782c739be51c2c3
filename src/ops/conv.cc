// Convolution operators: Conv and ConvTranspose (float types, 1-D to 3-D).
//
// Both run as a direct loop nest over a 3-D spatial view: 1-D and 2-D problems get leading
// spatial dims of size 1, so one loop nest serves every rank real models use. There is no
// im2col buffer. The innermost loop of Conv runs over a contiguous output row, the one of
// ConvTranspose over a contiguous input row, so that g++ -O3 vectorizes them; the bounds of
// that loop are computed up front instead of testing padding per element. Accumulation is
// in float (double for f64); f16 inputs are converted to float once per run.
//
// Limits: more than 3 spatial dims is unsupported.
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/conv.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

constexpr size_t kMaxSpatial = 3;

// Floor and ceiling of a / b for b > 0 and any sign of a.
int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

bool is_conv_dtype(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16;
}

std::string ints_to_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::string parse_conv_attrs(const ir::Node& node, size_t n, bool transpose, ConvAttrs* a) {
  a->auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (a->auto_pad != "NOTSET" && a->auto_pad != "SAME_UPPER" && a->auto_pad != "SAME_LOWER" &&
      a->auto_pad != "VALID")
    return "auto_pad '" + a->auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID";
  a->group = node.attr_int("group", 1);
  if (a->group < 1) return "group is " + std::to_string(a->group) + ", expected a positive value";
  auto read = [&](const char* name, size_t len, int64_t fill, int64_t min,
                  std::vector<int64_t>* out) -> std::string {
    *out = node.attr_ints(name);
    if (out->empty()) {
      out->assign(len, fill);
      return "";
    }
    if (out->size() != len)
      return std::string(name) + " has " + std::to_string(out->size()) + " values, expected " +
             std::to_string(len);
    for (int64_t v : *out)
      if (v < min)
        return std::string(name) + " " + ints_to_string(*out) + " has a value below " +
               std::to_string(min);
    return "";
  };
  std::string err;
  if (!(err = read("strides", n, 1, 1, &a->strides)).empty()) return err;
  if (!(err = read("dilations", n, 1, 1, &a->dilations)).empty()) return err;
  if (!(err = read("pads", 2 * n, 0, 0, &a->pads)).empty()) return err;
  a->kernel_shape = node.attr_ints("kernel_shape");
  if (!a->kernel_shape.empty()) {
    if (a->kernel_shape.size() != n)
      return "kernel_shape has " + std::to_string(a->kernel_shape.size()) + " values, expected " +
             std::to_string(n);
    for (int64_t k : a->kernel_shape)
      if (k < 1) return "kernel_shape " + ints_to_string(a->kernel_shape) + " is not positive";
  }
  if (transpose) {
    if (!(err = read("output_padding", n, 0, 0, &a->output_padding)).empty()) return err;
    a->output_shape = node.attr_ints("output_shape");
    // Some exporters include the batch and channel dims; only the spatial ones matter.
    if (a->output_shape.size() == n + 2)
      a->output_shape.erase(a->output_shape.begin(), a->output_shape.begin() + 2);
    if (!a->output_shape.empty() && a->output_shape.size() != n)
      return "output_shape has " + std::to_string(a->output_shape.size()) + " values, expected " +
             std::to_string(n);
  }
  return "";
}

std::string conv_output_dim(const ConvAttrs& a, size_t i, int64_t in, int64_t k, int64_t* out,
                            int64_t* pad_begin) {
  const size_t n = a.strides.size();
  const int64_t s = a.strides[i];
  const int64_t dk = (k - 1) * a.dilations[i] + 1;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    *out = ceil_div(in, s);
    const int64_t total = std::max<int64_t>(0, (*out - 1) * s + dk - in);
    *pad_begin = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    return "";
  }
  const int64_t pb = a.auto_pad == "VALID" ? 0 : a.pads[i];
  const int64_t pe = a.auto_pad == "VALID" ? 0 : a.pads[n + i];
  *pad_begin = pb;
  if (in + pb + pe < dk)
    return "spatial dim " + std::to_string(i) + " of size " + std::to_string(in) + " (padded by " +
           std::to_string(pb) + "+" + std::to_string(pe) +
           ") is smaller than the dilated kernel size " + std::to_string(dk);
  *out = (in + pb + pe - dk) / s + 1;
  return "";
}

namespace {

// Output size and leading pad of one spatial dim of a ConvTranspose.
void conv_transpose_output_dim(const ConvAttrs& a, size_t i, int64_t in, int64_t k, int64_t* out,
                               int64_t* pad_begin) {
  const size_t n = a.strides.size();
  const int64_t s = a.strides[i];
  const int64_t dk = (k - 1) * a.dilations[i] + 1;
  const int64_t full = s * (in - 1) + a.output_padding[i] + dk;
  const bool same = a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER";
  if (!a.output_shape.empty() || same) {
    // The pads follow from the requested size, as the spec's formula: SAME_UPPER puts the
    // odd unit at the end, everything else at the beginning. Floor division keeps a
    // negative total (output larger than the natural size) consistent with ONNX's reference.
    *out = !a.output_shape.empty() ? a.output_shape[i] : in * s;
    const int64_t total = full - *out;
    *pad_begin = a.auto_pad == "SAME_UPPER" ? floor_div(total, 2) : total - floor_div(total, 2);
    return;
  }
  const int64_t pb = a.auto_pad == "VALID" ? 0 : a.pads[i];
  const int64_t pe = a.auto_pad == "VALID" ? 0 : a.pads[n + i];
  *pad_begin = pb;
  *out = full - pb - pe;
}

// One spatial problem in the 3-D view (leading dims padded with size 1).
struct Geometry {
  std::array<int64_t, kMaxSpatial> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1},
      dilation{1, 1, 1}, pad{0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// The accumulation type: double for f64, float for every other float type.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// `t`'s elements as A; no copy when T already is A.
template <typename T, typename A>
const A* as_acc(const Tensor& t, std::vector<A>* buffer) {
  if constexpr (std::is_same_v<T, A>) {
    return t.data<T>();
  } else {
    buffer->resize(static_cast<size_t>(t.numel()));
    const T* p = t.data<T>();
    for (size_t i = 0; i < buffer->size(); ++i) (*buffer)[i] = static_cast<A>(p[i]);
    return buffer->data();
  }
}

}  // namespace

// ---- Conv ------------------------------------------------------------------------------------

Status check_conv_types(const InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("inputs X and W are required");
  const DataType t = ctx.input_dtype(0);
  if (!is_conv_dtype(t))
    return ctx.unsupported_here(std::string("input X has dtype ") + dtype_name(t) +
                                ", expected f16, f32 or f64");
  if (ctx.input_dtype(1) != t)
    return ctx.invalid(std::string("input W has dtype ") + dtype_name(ctx.input_dtype(1)) +
                       ", expected " + dtype_name(t) + " like X");
  if (ctx.has_input(2) && ctx.input_dtype(2) != t)
    return ctx.invalid(std::string("input B has dtype ") + dtype_name(ctx.input_dtype(2)) +
                       ", expected " + dtype_name(t) + " like X");
  return Status::ok();
}

Status infer_conv_output(const InferContext& ctx, const TensorType& xt, bool transpose,
                         TensorType* result) {
  BRINK_RETURN_IF_ERROR(check_conv_types(ctx));
  const DataType t = ctx.input_dtype(0);
  const TensorType& wt = ctx.input_type(1);
  const int64_t rank = xt.has_rank() ? xt.rank() : wt.rank();
  if (rank < 0) {
    *result = TensorType(t, std::nullopt);
    return Status::ok();
  }
  if (rank < 3)
    return ctx.invalid("input X has rank " + std::to_string(rank) +
                       ", expected at least 3 (N, C, spatial...)");
  if (xt.has_rank() && wt.has_rank() && wt.rank() != rank)
    return ctx.invalid("input W has rank " + std::to_string(wt.rank()) + ", expected " +
                       std::to_string(rank) + " like X");
  const size_t n = static_cast<size_t>(rank - 2);
  ConvAttrs a;
  if (std::string err = parse_conv_attrs(ctx.node(), n, transpose, &a); !err.empty())
    return ctx.invalid(err);

  const std::vector<Dim> none(static_cast<size_t>(rank), Dim());
  const std::vector<Dim>& xd = xt.has_rank() ? *xt.dims : none;
  const std::vector<Dim>& wd = wt.has_rank() ? *wt.dims : none;
  // Channel bookkeeping: Conv W is [M, C/group, k...], ConvTranspose W is [C, M/group, k...].
  const Dim& c_in = xd[1];
  Dim m_out;
  if (!transpose) {
    if (c_in.known() && wd[1].known() && c_in.value != wd[1].value * a.group)
      return ctx.invalid("input X has " + std::to_string(c_in.value) + " channels, expected " +
                         std::to_string(wd[1].value * a.group) + " (W dim 1 " +
                         std::to_string(wd[1].value) + " x group " + std::to_string(a.group) + ")");
    if (wd[0].known() && wd[0].value % a.group != 0)
      return ctx.invalid("W has " + std::to_string(wd[0].value) +
                         " output channels, not a multiple of group " + std::to_string(a.group));
    m_out = wd[0];
  } else {
    if (c_in.known() && wd[0].known() && c_in.value != wd[0].value)
      return ctx.invalid("input X has " + std::to_string(c_in.value) + " channels, expected " +
                         std::to_string(wd[0].value) + " (W dim 0)");
    if (c_in.known() && c_in.value % a.group != 0)
      return ctx.invalid("input X has " + std::to_string(c_in.value) +
                         " channels, not a multiple of group " + std::to_string(a.group));
    if (wd[1].known()) m_out = Dim(wd[1].value * a.group);
  }
  if (ctx.has_input(2) && ctx.input_type(2).has_rank()) {
    const TensorType& bt = ctx.input_type(2);
    if (bt.rank() != 1)
      return ctx.invalid("input B has rank " + std::to_string(bt.rank()) + ", expected 1");
    const Dim& bd = (*bt.dims)[0];
    if (bd.known() && m_out.known() && bd.value != m_out.value)
      return ctx.invalid("input B has " + std::to_string(bd.value) + " values, expected " +
                         std::to_string(m_out.value) + " (one per output channel)");
  }

  std::vector<Dim> out{xd[0], m_out};
  for (size_t i = 0; i < n; ++i) {
    Dim k = a.kernel_shape.empty() ? wd[2 + i] : Dim(a.kernel_shape[i]);
    if (!a.kernel_shape.empty() && wd[2 + i].known() && wd[2 + i].value != a.kernel_shape[i])
      return ctx.invalid("kernel_shape " + ints_to_string(a.kernel_shape) +
                         " does not match the spatial dims of W");
    const Dim& in = xd[2 + i];
    if (transpose && !a.output_shape.empty()) {
      out.emplace_back(a.output_shape[i]);
      continue;
    }
    if (!in.known() || !k.known()) {
      out.emplace_back();
      continue;
    }
    int64_t o = 0, pad = 0;
    if (transpose) {
      conv_transpose_output_dim(a, i, in.value, k.value, &o, &pad);
      if (o < 0)
        return ctx.invalid("output spatial dim " + std::to_string(i) + " would be " +
                           std::to_string(o) + ", expected a non-negative size");
    } else if (std::string err = conv_output_dim(a, i, in.value, k.value, &o, &pad); !err.empty()) {
      return ctx.invalid(err);
    }
    out.emplace_back(o);
  }
  *result = TensorType(t, std::move(out));
  return Status::ok();
}

namespace {

// Shared infer of Conv and ConvTranspose; `transpose` picks the weight layout and the
// output size formula.
Status infer_conv(InferContext& ctx, bool transpose) {
  TensorType out;
  BRINK_RETURN_IF_ERROR(infer_conv_output(ctx, ctx.input_type(0), transpose, &out));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

}  // namespace

Result<ConvAttrs> prepare_conv(const KernelCreateContext& c, bool transpose) {
  const TensorType& wt = *c.input_types[1];
  int64_t rank = c.input_types[0]->rank();
  if (rank < 0) rank = wt.rank();
  if (rank < 0) {
    // Rank unknown until run time: the attributes say how many spatial dims there are.
    const std::vector<int64_t> strides = c.node.attr_ints("strides");
    const std::vector<int64_t> kernel = c.node.attr_ints("kernel_shape");
    if (!kernel.empty())
      rank = static_cast<int64_t>(kernel.size()) + 2;
    else if (!strides.empty())
      rank = static_cast<int64_t>(strides.size()) + 2;
    else
      return c.unsupported_here("the rank of X and W is unknown at load time");
  }
  if (rank - 2 > static_cast<int64_t>(kMaxSpatial))
    return c.unsupported_here("inputs of rank " + std::to_string(rank) +
                              " are not supported (at most 3 spatial dims)");
  ConvAttrs a;
  if (std::string err = parse_conv_attrs(c.node, static_cast<size_t>(rank - 2), transpose, &a);
      !err.empty())
    return c.invalid(err);
  return a;
}

namespace {

// The 3-D geometry of this run, from the actual shapes.
Status conv_geometry(const ConvAttrs& a, const Tensor& x, const Tensor& w, const Tensor& y,
                     bool transpose, Geometry* g) {
  const size_t n = static_cast<size_t>(x.rank() - 2);
  if (n != a.strides.size() || w.rank() != x.rank())
    return invalid_argument("Conv inputs changed rank between load and run");
  for (size_t i = 0; i < n; ++i) {
    const size_t j = kMaxSpatial - n + i;
    g->in[j] = x.dim(static_cast<int64_t>(2 + i));
    g->kernel[j] = w.dim(static_cast<int64_t>(2 + i));
    g->out[j] = y.dim(static_cast<int64_t>(2 + i));
    g->stride[j] = a.strides[i];
    g->dilation[j] = a.dilations[i];
    int64_t out = 0;
    if (transpose) {
      conv_transpose_output_dim(a, i, g->in[j], g->kernel[j], &out, &g->pad[j]);
    } else {
      std::string err = conv_output_dim(a, i, g->in[j], g->kernel[j], &out, &g->pad[j]);
      if (!err.empty()) return invalid_argument(err);
    }
  }
  // A pointwise convolution (1x1 kernel, stride 1, no padding) reads whole planes in order:
  // view the plane as one long row so the inner loop is as long as possible.
  bool pointwise = !transpose;
  for (size_t j = 0; j < kMaxSpatial; ++j)
    if (g->kernel[j] != 1 || g->stride[j] != 1 || g->pad[j] != 0) pointwise = false;
  if (pointwise) {
    const int64_t size = g->in_size();
    *g = Geometry();
    g->in[2] = g->out[2] = size;
  }
  return Status::ok();
}

// MB accumulators (one per output channel) as a GCC/Clang vector type: `v += w * x` on it is
// MB multiply-adds in SIMD registers, which the auto-vectorizer does not reliably produce
// from the equivalent loop over an interleaved array.
template <typename A, int MB>
struct Lanes {
  typedef A type __attribute__((vector_size(MB * sizeof(A))));
};

// Accumulates MB output channels of one image into `acc` (acc[pos] holds them at output
// position pos), which arrives holding the bias:
//   acc[pos][j] += sum over input channels c < cg and kernel offsets k of
//                  w[j, c, k] * x[c, pos * stride + k * dilation - pad].
// `x` is the group's first input plane, `w` the first channel's weights, `w_stride` the
// distance between two channels' weights. With MB > 1 each input value loaded serves MB
// multiply-adds, which is what makes this loop nest fast enough for real models; MB == 1
// serves channel counts that do not fill a block (depthwise convolutions, remainders).
template <int MB, typename A, typename V>
void conv_channels(const Geometry& g, const A* x, int64_t cg, const A* w, int64_t w_stride,
                   V* acc) {
  const int64_t in_size = g.in_size(), ksize = g.kernel_size();
  const auto [od_n, oh_n, ow_n] = g.out;
  const auto [id_n, ih_n, iw_n] = g.in;
  const auto [kd_n, kh_n, kw_n] = g.kernel;
  const auto [sd, sh, sw] = g.stride;
  const auto [dd, dh, dw] = g.dilation;
  const auto [pd, ph, pw] = g.pad;
  for (int64_t c = 0; c < cg; ++c) {
    const A* xplane = x + c * in_size;
    for (int64_t kd = 0; kd < kd_n; ++kd) {
      for (int64_t kh = 0; kh < kh_n; ++kh) {
        for (int64_t kw = 0; kw < kw_n; ++kw) {
          const int64_t k = (kd * kh_n + kh) * kw_n + kw;
          V wv;
          if constexpr (MB == 1)
            wv = w[c * ksize + k];
          else
            for (int j = 0; j < MB; ++j) wv[j] = w[j * w_stride + c * ksize + k];
          // Output columns whose input column ow*sw + off lies inside the row.
          const int64_t off = kw * dw - pw;
          const int64_t ow_lo = std::max<int64_t>(0, ceil_div(-off, sw));
          const int64_t ow_hi = std::min(ow_n, floor_div(iw_n - 1 - off, sw) + 1);
          if (ow_lo >= ow_hi) continue;
          for (int64_t od = 0; od < od_n; ++od) {
            const int64_t id = od * sd + kd * dd - pd;
            if (id < 0 || id >= id_n) continue;
            for (int64_t oh = 0; oh < oh_n; ++oh) {
              const int64_t ih = oh * sh + kh * dh - ph;
              if (ih < 0 || ih >= ih_n) continue;
              const A* xrow = xplane + (id * ih_n + ih) * iw_n;
              V* arow = acc + (od * oh_n + oh) * ow_n;
              if (MB == 1 && sw == 1) {
                for (int64_t ow = ow_lo; ow < ow_hi; ++ow) arow[ow] += wv * xrow[ow + off];
              } else {
                for (int64_t ow = ow_lo; ow < ow_hi; ++ow) arow[ow] += wv * xrow[ow * sw + off];
              }
            }
          }
        }
      }
    }
  }
}

// Runs the output channels [m0, m0 + MB) of one image: bias, accumulate, store.
template <int MB, typename T, typename A>
void conv_block(const Geometry& g, const A* xg, int64_t cg, const A* wd, const Tensor* b,
                int64_t m0, T* y0, std::vector<A>* scratch) {
  using V = std::conditional_t<MB == 1, A, typename Lanes<A, MB>::type>;
  const int64_t out_size = g.out_size(), ksize = g.kernel_size();
  // Over-allocate so the vectors can start at an address aligned for V.
  scratch->resize(static_cast<size_t>((out_size + 1) * MB));
  void* p = scratch->data();
  size_t space = scratch->size() * sizeof(A);
  V* acc =
      static_cast<V*>(std::align(alignof(V), sizeof(V) * static_cast<size_t>(out_size), p, space));
  V bias;
  for (int j = 0; j < MB; ++j) {
    const A bj = b ? static_cast<A>(b->data<T>()[m0 + j]) : A(0);
    if constexpr (MB == 1)
      bias = bj;
    else
      bias[j] = bj;
  }
  std::fill(acc, acc + out_size, bias);
  conv_channels<MB>(g, xg, cg, wd + m0 * cg * ksize, cg * ksize, acc);
  for (int j = 0; j < MB; ++j) {
    T* out = y0 + (m0 + j) * out_size;
    for (int64_t pos = 0; pos < out_size; ++pos) {
      if constexpr (MB == 1)
        out[pos] = static_cast<T>(acc[pos]);
      else
        out[pos] = static_cast<T>(acc[pos][j]);
    }
  }
}

// y[n, m] = b[m] + sum over the group's input channels c and kernel offsets k of
//           w[m, c, k] * x[n, c, out_pos * stride + k * dilation - pad].
template <typename T>
void conv_run(const Geometry& g, int64_t group, const Tensor& x, const Tensor& w, const Tensor* b,
              Tensor& y) {
  using A = acc_t<T>;
  constexpr int kBlock = 8;
  std::vector<A> xbuf, wbuf, scratch;
  const A* xd = as_acc<T, A>(x, &xbuf);
  const A* wd = as_acc<T, A>(w, &wbuf);
  const int64_t batch = x.dim(0), channels = x.dim(1), out_channels = y.dim(1);
  const int64_t cg = channels / group, mg = out_channels / group;
  const int64_t in_size = g.in_size(), out_size = g.out_size();
  for (int64_t ni = 0; ni < batch; ++ni) {
    T* y0 = y.data<T>() + ni * out_channels * out_size;
    for (int64_t grp = 0; grp < group; ++grp) {
      const A* xg = xd + (ni * channels + grp * cg) * in_size;
      int64_t m = grp * mg;
      for (; m + kBlock <= (grp + 1) * mg; m += kBlock)
        conv_block<kBlock>(g, xg, cg, wd, b, m, y0, &scratch);
      for (; m < (grp + 1) * mg; ++m) conv_block<1>(g, xg, cg, wd, b, m, y0, &scratch);
    }
  }
}

// y[n, m, in_pos * stride + k * dilation - pad] += w[c, m, k] * x[n, c, in_pos], summed over
// the group's input channels c; each output starts at b[m].
template <typename T>
void conv_transpose_run(const Geometry& g, int64_t group, const Tensor& x, const Tensor& w,
                        const Tensor* b, Tensor& y) {
  using A = acc_t<T>;
  std::vector<A> xbuf, wbuf, acc_buf;
  const A* xd = as_acc<T, A>(x, &xbuf);
  const A* wd = as_acc<T, A>(w, &wbuf);
  const int64_t batch = x.dim(0), channels = x.dim(1), out_channels = y.dim(1);
  const int64_t cg = channels / group, mg = out_channels / group;
  const int64_t in_size = g.in_size(), out_size = g.out_size(), ksize = g.kernel_size();
  const auto [od_n, oh_n, ow_n] = g.out;
  const auto [id_n, ih_n, iw_n] = g.in;
  const auto [kd_n, kh_n, kw_n] = g.kernel;
  const auto [sd, sh, sw] = g.stride;
  const auto [dd, dh, dw] = g.dilation;
  const auto [pd, ph, pw] = g.pad;
  if constexpr (!std::is_same_v<T, A>) acc_buf.resize(static_cast<size_t>(out_size));

  for (int64_t ni = 0; ni < batch; ++ni) {
    for (int64_t m = 0; m < out_channels; ++m) {
      const int64_t grp = m / mg, mi = m % mg;
      A* acc;
      if constexpr (std::is_same_v<T, A>)
        acc = y.data<T>() + (ni * out_channels + m) * out_size;
      else
        acc = acc_buf.data();
      const A bias = b ? static_cast<A>(b->data<T>()[m]) : A(0);
      std::fill(acc, acc + out_size, bias);

      for (int64_t c = 0; c < cg; ++c) {
        const int64_t ci = grp * cg + c;
        const A* xplane = xd + (ni * channels + ci) * in_size;
        const A* wk = wd + (ci * mg + mi) * ksize;
        for (int64_t kd = 0; kd < kd_n; ++kd) {
          for (int64_t kh = 0; kh < kh_n; ++kh) {
            for (int64_t kw = 0; kw < kw_n; ++kw) {
              const A wv = wk[(kd * kh_n + kh) * kw_n + kw];
              // Input columns whose output column iw*sw + off lies inside the row.
              const int64_t off = kw * dw - pw;
              const int64_t iw_lo = std::max<int64_t>(0, ceil_div(-off, sw));
              const int64_t iw_hi = std::min(iw_n, floor_div(ow_n - 1 - off, sw) + 1);
              if (iw_lo >= iw_hi) continue;
              for (int64_t id = 0; id < id_n; ++id) {
                const int64_t od = id * sd + kd * dd - pd;
                if (od < 0 || od >= od_n) continue;
                for (int64_t ih = 0; ih < ih_n; ++ih) {
                  const int64_t oh = ih * sh + kh * dh - ph;
                  if (oh < 0 || oh >= oh_n) continue;
                  const A* xrow = xplane + (id * ih_n + ih) * iw_n;
                  A* arow = acc + (od * oh_n + oh) * ow_n;
                  for (int64_t iw = iw_lo; iw < iw_hi; ++iw) arow[iw * sw + off] += wv * xrow[iw];
                }
              }
            }
          }
        }
      }
      if constexpr (!std::is_same_v<T, A>) {
        T* out = y.data<T>() + (ni * out_channels + m) * out_size;
        for (int64_t i = 0; i < out_size; ++i) out[i] = static_cast<T>(acc[i]);
      }
    }
  }
}

// Runs Conv or ConvTranspose on the actual shapes.
Status conv_or_transpose_run(const ConvAttrs& a, bool transpose, const Tensor& x, const Tensor& w,
                             const Tensor* b, Tensor& y) {
  Geometry g;
  BRINK_RETURN_IF_ERROR(conv_geometry(a, x, w, y, transpose, &g));
  visit_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                  std::is_same_v<T, Float16>) {
      if (transpose)
        conv_transpose_run<T>(g, a.group, x, w, b, y);
      else
        conv_run<T>(g, a.group, x, w, b, y);
    }
  });
  return Status::ok();
}

OpDef conv_op(bool transpose) {
  OpDef d;
  d.op_type = transpose ? "ConvTranspose" : "Conv";
  d.since_version = 1;
  d.infer = [transpose](InferContext& ctx) { return infer_conv(ctx, transpose); };
  d.create = [transpose](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(ConvAttrs a, prepare_conv(c, transpose));
    const std::string where = c.node.describe();
    return make_kernel([a, transpose, where](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      const Tensor& w = ctx.input(1);
      const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
      Status s = conv_or_transpose_run(a, transpose, x, w, b, ctx.output(0));
      if (!s.is_ok()) return s.with_context(where);
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

Status conv_reference(const ConvAttrs& a, const Tensor& x, const Tensor& w, const Tensor* b,
                      Tensor& y) {
  return conv_or_transpose_run(a, false, x, w, b, y);
}

void register_conv_ops(OpRegistry& r) {
  // Conv-1 and Conv-11 (likewise ConvTranspose) differ only in documentation.
  if constexpr (op_selected("", "Conv")) r.add(conv_op(false));
  if constexpr (op_selected("", "ConvTranspose")) r.add(conv_op(true));
}

}  // namespace brink::ops
