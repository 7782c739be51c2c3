// brink.Conv (docs/INTERNAL_OPS.md): Y = act(Conv(X, W) + B + Z) in NCHW or NHWC layout.
//
// Float32 2-D convolutions with constant weights run on kernels::ConvNhwcF32 (an indirect
// GEMM with packed weights, conv.h), depthwise ones (group == C == M) on
// kernels::DepthwiseConvNhwc; an NCHW one is transposed into NHWC scratch around them,
// which costs a few percent over a native NHWC graph. Everything else (f16/f64, 1-D/3-D,
// weights computed at run time) runs the reference: ONNX Conv's reference kernel, then Z and
// the activation, with NHWC transposed to NCHW and back. That path is the oracle the fast
// one is tested against.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/depthwise_conv.h"
#include "ops/conv.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

using kernels::Activation;
using kernels::ActivationKind;

enum class Layout { kNchw, kNhwc };

Result<Layout> parse_layout(const ir::Node& node) {
  const std::string s = node.attr_string("layout", "NCHW");
  if (s == "NCHW") return Layout::kNchw;
  if (s == "NHWC") return Layout::kNhwc;
  return invalid_model(node.describe() + ": layout '" + s + "' is not one of NCHW, NHWC");
}

// [N, spatial..., C] <-> [N, C, spatial...] on dims.
std::vector<Dim> nhwc_to_nchw_dims(const std::vector<Dim>& d) {
  std::vector<Dim> out{d[0], d.back()};
  out.insert(out.end(), d.begin() + 1, d.end() - 1);
  return out;
}
std::vector<Dim> nchw_to_nhwc_dims(const std::vector<Dim>& d) {
  std::vector<Dim> out{d[0]};
  out.insert(out.end(), d.begin() + 2, d.end());
  out.push_back(d[1]);
  return out;
}

Status infer_fused_conv(InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.invalid("inputs X and W are required");
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(ctx.node()));
  BRINK_RETURN_IF_ERROR(kernels::parse_activation(ctx.node()).status());
  TensorType xt = ctx.input_type(0);
  if (layout == Layout::kNhwc && xt.has_rank()) {
    if (xt.rank() != 4)
      return ctx.invalid("layout NHWC needs X of rank 4 (a 2-D convolution), found rank " +
                         std::to_string(xt.rank()));
    xt.dims = nhwc_to_nchw_dims(*xt.dims);
  }
  TensorType out;
  BRINK_RETURN_IF_ERROR(infer_conv_output(ctx, xt, false, &out));
  if (layout == Layout::kNhwc && out.has_rank()) {
    if (out.rank() != 4)
      return ctx.invalid("layout NHWC needs a 2-D convolution, W has rank " +
                         std::to_string(out.rank()));
    out.dims = nchw_to_nhwc_dims(*out.dims);
  }
  if (ctx.has_input(3)) {
    const TensorType& zt = ctx.input_type(3);
    if (zt.dtype != out.dtype)
      return ctx.invalid(std::string("input Z has dtype ") + dtype_name(zt.dtype) + ", expected " +
                         dtype_name(out.dtype) + " like X");
    if (zt.has_rank() && out.has_rank()) {
      bool same = zt.rank() == out.rank();
      for (size_t i = 0; same && i < out.dims->size(); ++i) {
        const Dim& a = (*zt.dims)[i];
        const Dim& b = (*out.dims)[i];
        if (a.known() && b.known() && a.value != b.value) same = false;
      }
      if (!same)
        return ctx.invalid("input Z has shape " + zt.to_string() + ", expected the shape of Y " +
                           out.to_string());
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

// ---- reference path ---------------------------------------------------------------------

// The activation in double precision, for f64 convolutions; the float one is the oracle
// kernels::apply_activation_scalar and this mirrors it.
double activate_f64(const Activation& a, double x) {
  switch (a.kind) {
    case ActivationKind::kNone:
      return x;
    case ActivationKind::kRelu:
      return x > 0.0 ? x : 0.0;
    case ActivationKind::kClip:
      return x < a.alpha ? a.alpha : (x > a.beta ? a.beta : x);
    case ActivationKind::kLeakyRelu:
      return x >= 0.0 ? x : a.alpha * x;
    case ActivationKind::kHardSigmoid:
      return std::clamp(a.alpha * x + a.beta, 0.0, 1.0);
    case ActivationKind::kHardSwish:
      return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case ActivationKind::kSigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case ActivationKind::kSilu:
      return x / (1.0 + std::exp(-x));
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kGelu:
      return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752));
    case ActivationKind::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  }
  return x;
}

// y = act(y + z), elementwise, z nullptr or shaped like y.
void add_and_activate(const Activation& act, Tensor& y, const Tensor* z) {
  if (act.none() && z == nullptr) return;
  visit_dtype(y.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, Float16>) {
      T* py = y.data<T>();
      const T* pz = z == nullptr ? nullptr : z->data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) {
        float v = static_cast<float>(py[i]);
        if (pz != nullptr) v += static_cast<float>(pz[i]);
        py[i] = static_cast<T>(kernels::apply_activation_scalar(act, v));
      }
    } else if constexpr (std::is_same_v<T, double>) {
      double* py = y.data<double>();
      const double* pz = z == nullptr ? nullptr : z->data<double>();
      for (int64_t i = 0; i < y.numel(); ++i)
        py[i] = activate_f64(act, py[i] + (pz != nullptr ? pz[i] : 0.0));
    }
  });
}

// [N, H, W, C] <-> [N, C, H, W] for any element type, as a copy.
Tensor permute_layout(const Tensor& t, bool to_nchw) {
  const int64_t n = t.dim(0);
  const int64_t c = to_nchw ? t.dim(3) : t.dim(1);
  const int64_t h = to_nchw ? t.dim(1) : t.dim(2);
  const int64_t w = to_nchw ? t.dim(2) : t.dim(3);
  Tensor out = Tensor::empty(t.dtype(), to_nchw ? Shape{n, c, h, w} : Shape{n, h, w, c});
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const unsigned char*>(t.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  for (int64_t ni = 0; ni < n; ++ni)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t p = 0; p < h * w; ++p) {
        const int64_t nchw = (ni * c + ci) * h * w + p;
        const int64_t nhwc = (ni * h * w + p) * c + ci;
        if (to_nchw)
          std::memcpy(dst + nchw * es, src + nhwc * es, es);
        else
          std::memcpy(dst + nhwc * es, src + nchw * es, es);
      }
  return out;
}

[[maybe_unused]] Status reference_run(const ConvAttrs& a, Layout layout, const Activation& act,
                                      KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  Tensor& y = ctx.output(0);
  if (z != nullptr && z->shape() != y.shape())
    return invalid_argument("input Z has shape " + shape_to_string(z->shape()) +
                            ", expected the shape of Y " + shape_to_string(y.shape()));
  if (layout == Layout::kNchw) {
    BRINK_RETURN_IF_ERROR(conv_reference(a, x, w, b, y));
  } else {
    if (x.rank() != 4 || y.rank() != 4)
      return invalid_argument("layout NHWC needs X and Y of rank 4");
    const Tensor xt = permute_layout(x, true);
    Tensor yt = Tensor::empty(y.dtype(), {y.dim(0), y.dim(3), y.dim(1), y.dim(2)});
    BRINK_RETURN_IF_ERROR(conv_reference(a, xt, w, b, yt));
    const Tensor yn = permute_layout(yt, false);
    std::memcpy(y.raw_data(), yn.raw_data(), y.nbytes());
  }
  add_and_activate(act, y, z);
  return Status::ok();
}

// ---- fast path ------------------------------------------------------------------------------

// Per-thread scratch for the NCHW <-> NHWC copies around the NHWC kernel: grows to the
// largest convolution a thread has run, after which runs do not allocate.
float* scratch(std::vector<float>& buffer, int64_t n) {
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// The spatial problem for an input of in_h x in_w.
Status conv_spatial(const ConvAttrs& a, const kernels::Conv2dParams& p, int64_t in_h, int64_t in_w,
                    kernels::Conv2dSpatial* s) {
  s->in_h = in_h;
  s->in_w = in_w;
  std::string err = conv_output_dim(a, 0, in_h, p.kernel_h, &s->out_h, &s->pad_top);
  if (err.empty()) err = conv_output_dim(a, 1, in_w, p.kernel_w, &s->out_w, &s->pad_left);
  if (!err.empty()) return invalid_argument(err);
  return Status::ok();
}

// A 2-D float32 convolution on one of the NHWC kernels: the indirect GEMM, or the depthwise
// kernel (depthwise_conv.h) for group == C == M.
class FastConvKernel final : public Kernel {
 public:
  FastConvKernel(ConvAttrs a, Layout layout, kernels::Conv2dParams p,
                 std::unique_ptr<kernels::ConvNhwcF32> conv,
                 std::unique_ptr<kernels::DepthwiseConvNhwc> depthwise, std::string where)
      : a_(std::move(a)),
        layout_(layout),
        p_(p),
        conv_(std::move(conv)),
        depthwise_(std::move(depthwise)),
        where_(std::move(where)) {}

  Status run(KernelContext& ctx) override {
    Status s = run_impl(ctx);
    return s.is_ok() ? s : s.with_context(where_);
  }
  // W and B live packed in conv_ / depthwise_; run() reads X and Z only.
  bool reads_input_data(size_t i) const override { return i == 0 || i == 3; }
  std::optional<PackedWeights> packed_weights() const override {
    if (conv_ == nullptr) return std::nullopt;  // depthwise weights are small: packed at load
    return PackedWeights{conv_->packed_layout(), conv_->packed_data(), conv_->packed_floats(), {}};
  }

 private:
  Status run_nhwc(const float* x, const float* z, float* y, int64_t n,
                  const kernels::Conv2dSpatial& sp, ThreadPool* pool) const {
    if (conv_ != nullptr) return conv_->run(x, z, y, n, sp, pool);
    const kernels::DepthwiseConvShape shape{n,           sp.in_h,     sp.in_w,       p_.in_channels,
                                            sp.out_h,    sp.out_w,    p_.kernel_h,   p_.kernel_w,
                                            p_.stride_h, p_.stride_w, p_.dilation_h, p_.dilation_w,
                                            sp.pad_top,  sp.pad_left};
    depthwise_->run(shape, x, z, y, pool);
    return Status::ok();
  }

  Status run_impl(KernelContext& ctx) const {
    const Tensor& x = ctx.input(0);
    const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
    Tensor& y = ctx.output(0);
    if (x.rank() != 4 || y.rank() != 4)
      return invalid_argument("X has rank " + std::to_string(x.rank()) + ", expected 4");
    const bool nhwc = layout_ == Layout::kNhwc;
    const int64_t n = x.dim(0);
    const int64_t c = nhwc ? x.dim(3) : x.dim(1);
    const int64_t m = nhwc ? y.dim(3) : y.dim(1);
    if (c != p_.in_channels || m != p_.out_channels)
      return invalid_argument("X has " + std::to_string(c) + " channels, expected " +
                              std::to_string(p_.in_channels));
    if (z != nullptr && z->shape() != y.shape())
      return invalid_argument("input Z has shape " + shape_to_string(z->shape()) +
                              ", expected the shape of Y " + shape_to_string(y.shape()));
    kernels::Conv2dSpatial sp;
    BRINK_RETURN_IF_ERROR(
        conv_spatial(a_, p_, nhwc ? x.dim(1) : x.dim(2), nhwc ? x.dim(2) : x.dim(3), &sp));
    if (sp.out_h != (nhwc ? y.dim(1) : y.dim(2)) || sp.out_w != (nhwc ? y.dim(2) : y.dim(3)))
      return internal_error("output shape " + shape_to_string(y.shape()) +
                            " does not match the convolution");
    if (n == 0 || y.numel() == 0) return Status::ok();
    ThreadPool* pool = ctx.thread_pool();
    const float* zd = z == nullptr ? nullptr : z->data<float>();
    if (nhwc) return run_nhwc(x.data<float>(), zd, y.data<float>(), n, sp, pool);

    const int64_t in_hw = sp.in_h * sp.in_w, out_hw = sp.out_h * sp.out_w;
    thread_local std::vector<float> xs_buf, ys_buf, zs_buf;
    float* xs = scratch(xs_buf, n * in_hw * c);
    float* ys = scratch(ys_buf, n * out_hw * m);
    kernels::nchw_to_nhwc(x.data<float>(), xs, n, c, in_hw, pool);
    float* zs = nullptr;
    if (zd != nullptr) {
      zs = scratch(zs_buf, n * out_hw * m);
      kernels::nchw_to_nhwc(zd, zs, n, m, out_hw, pool);
    }
    BRINK_RETURN_IF_ERROR(run_nhwc(xs, zs, ys, n, sp, pool));
    kernels::nhwc_to_nchw(ys, y.data<float>(), n, m, out_hw, pool);
    return Status::ok();
  }

  ConvAttrs a_;
  Layout layout_;
  kernels::Conv2dParams p_;
  std::unique_ptr<kernels::ConvNhwcF32> conv_;
  std::unique_ptr<kernels::DepthwiseConvNhwc> depthwise_;
  std::string where_;
};

// The fast kernel when this node is one it handles (f32, 2-D, constant W and B); nullptr
// otherwise.
Result<std::unique_ptr<Kernel>> try_fast(const KernelCreateContext& c, const ConvAttrs& a,
                                         Layout layout, const Activation& act) {
  const auto constant = [&](size_t i) {
    return i < c.constant_inputs.size() ? c.constant_inputs[i] : nullptr;
  };
  const Tensor* w = constant(1);
  const Tensor* b = c.has_input(2) ? constant(2) : nullptr;
  if (!fast_conv_applies(c.input_dtype(0), w != nullptr ? &w->shape() : nullptr, c.has_input(2),
                         b != nullptr ? &b->shape() : nullptr) ||
      a.strides.size() != 2)
    return std::unique_ptr<Kernel>();
  kernels::Conv2dParams p;
  p.group = a.group;
  p.out_channels = w->dim(0);
  p.in_channels = w->dim(1) * a.group;
  p.kernel_h = w->dim(2);
  p.kernel_w = w->dim(3);
  p.stride_h = a.strides[0];
  p.stride_w = a.strides[1];
  p.dilation_h = a.dilations[0];
  p.dilation_w = a.dilations[1];
  p.activation = act;
  const float* bias = b == nullptr ? nullptr : b->data<float>();
  std::unique_ptr<kernels::ConvNhwcF32> conv;
  std::unique_ptr<kernels::DepthwiseConvNhwc> depthwise;
  if (c.prepacked == nullptr && kernels::is_depthwise(p.group, p.in_channels, p.out_channels)) {
    const std::string_view missing = kernels::DepthwiseConvNhwc::missing_row(
        p.in_channels, p.kernel_w, p.stride_w, p.dilation_w, c.isa);
    if (!missing.empty())
      return c.unsupported_here(
          "this selective build left out the depthwise row it needs (list "
          "brink.depthwise:" +
          std::string(missing) + ")");
    depthwise = kernels::DepthwiseConvNhwc::create(p.in_channels, p.kernel_h, p.kernel_w,
                                                   w->data<float>(), bias, act, c.isa);
    if (depthwise == nullptr) return std::unique_ptr<Kernel>();
  } else if (c.prepacked != nullptr) {
    auto made = kernels::ConvNhwcF32::create_prepacked(
        p, c.prepacked->layout, c.prepacked->data, c.prepacked->floats, c.prepacked->owner, c.isa);
    if (!made.is_ok()) return made.status().with_context(c.node.describe());
    conv = std::move(*made);
  } else {
    auto made = kernels::ConvNhwcF32::create(p, w->data<float>(), bias, c.isa);
    if (!made.is_ok()) return std::unique_ptr<Kernel>();
    conv = std::move(*made);
    // With a static input size the indirection table is built now, not at the first run.
    const TensorType& xt = *c.input_types[0];
    if (xt.has_rank() && xt.rank() == 4) {
      const Dim& h = (*xt.dims)[layout == Layout::kNhwc ? 1 : 2];
      const Dim& wd = (*xt.dims)[layout == Layout::kNhwc ? 2 : 3];
      kernels::Conv2dSpatial sp;
      if (h.known() && wd.known() && h.value > 0 && wd.value > 0 &&
          conv_spatial(a, p, h.value, wd.value, &sp).is_ok())
        BRINK_RETURN_IF_ERROR(conv->prepare(sp).with_context(c.node.describe()));
    }
  }
  return std::unique_ptr<Kernel>(std::make_unique<FastConvKernel>(
      a, layout, p, std::move(conv), std::move(depthwise), c.node.describe()));
}

Result<std::unique_ptr<Kernel>> create_fused_conv(const KernelCreateContext& c) {
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(c.node));
  BRINK_ASSIGN_OR_RETURN(Activation act, kernels::parse_activation(c.node));
  BRINK_ASSIGN_OR_RETURN(ConvAttrs a, prepare_conv(c, false));
  if (layout == Layout::kNhwc && a.strides.size() != 2)
    return c.invalid("layout NHWC needs a 2-D convolution, found " +
                     std::to_string(a.strides.size()) + " spatial dims");
  BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> fast, try_fast(c, a, layout, act));
  if (fast != nullptr) return fast;
  if (c.prepacked != nullptr)  // its W holds no data: only the fast kernel can run it
    return c.unsupported_here("the package's packed weights (" + c.prepacked->layout +
                              ") do not fit this convolution's fast kernel");
  if constexpr (!conv_reference_selected()) {
    return c.unsupported_here(
        "its fast kernels do not take this convolution, and this selective build left out the "
        "reference one (list brink.conv:reference)");
  } else {
    const std::string where = c.node.describe();
    return make_kernel([a, layout, act, where](KernelContext& ctx) -> Status {
      Status s = reference_run(a, layout, act, ctx);
      return s.is_ok() ? s : s.with_context(where);
    });
  }
}

}  // namespace

bool fast_conv_applies(DataType x, const Shape* w, bool has_bias, const Shape* b) {
  if (x != DataType::kFloat32 || w == nullptr || w->size() != 4 || (has_bias && b == nullptr))
    return false;
  return b == nullptr || (b->size() == 1 && (*b)[0] == (*w)[0]);
}

void register_fused_conv_ops(OpRegistry& r) {
  if constexpr (!op_selected("brink", "Conv")) return;
  OpDef d;
  d.op_type = "Conv";
  d.domain = "brink";
  d.since_version = 1;
  d.infer = infer_fused_conv;
  d.create = create_fused_conv;
  r.add(std::move(d));
}

}  // namespace brink::ops
