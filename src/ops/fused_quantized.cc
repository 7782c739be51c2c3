// brink.QConv and brink.QAdd (docs/INTERNAL_OPS.md): the int8 operators that the QDQ pass
// (passes/qdq_fusion.cc) makes out of DequantizeLinear -> Conv / Add -> [Relu | Clip] ->
// QuantizeLinear, so that activations stay uint8 from one layer to the next.
//
// brink.QConv has ONNX QLinearConv's inputs (x, x_scale, x_zero_point, w, w_scale,
// w_zero_point, y_scale, y_zero_point, B) and attributes, plus `layout` ("NCHW" or "NHWC":
// x and y are [N, H, W, C]) and the fused `activation` (Relu or Clip only: on a quantized
// output they are a clamp, exact because rounding is monotonic). brink.QAdd has
// com.microsoft QLinearAdd's inputs (A, A_scale, A_zero_point, B, B_scale, B_zero_point,
// C_scale, C_zero_point) plus `activation`; it is layout-agnostic.
//
// Fast path: uint8 x, constant int8 weights with zero points 0 (symmetric, as quantizers
// emit them), constant scales and zero points, 2-D: the integer kernels of kernels/qconv.h
// (indirect GEMM, VNNI / AVX2 / NEON) and kernels/qdepthwise_conv.h (group == C == M), the
// requantization and the clamp in their epilogue; NCHW is transposed into NHWC scratch
// around them. Everything else runs the reference: ONNX QLinearConv's (or QLinearAdd's)
// reference kernel, then the clamp, with NHWC permuted to NCHW and back. That path is the
// oracle the fast one is tested against (tests/unit/quantized_fast_test.cc).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/qconv.h"
#include "kernels/qdepthwise_conv.h"
#include "kernels/qelementwise.h"
#include "kernels/qgemm.h"
#include "kernels/transpose.h"
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

// The fused activation: none, Relu or Clip (the ones that are a clamp on a quantized value).
Result<Activation> parse_clamp_activation(const ir::Node& node) {
  BRINK_ASSIGN_OR_RETURN(Activation act, kernels::parse_activation(node));
  if (!act.none() && !act.is_clamp())
    return invalid_model(node.describe() + ": activation '" + kernels::activation_name(act.kind) +
                         "' is not one of Relu, Clip (a quantized output takes only a clamp)");
  return act;
}

// The uint8 range an activation leaves of an output quantized with (scale, zero point):
// quantize(clamp(y, lo, hi)) == clamp(quantize(y), quantize(lo), quantize(hi)).
void clamp_bounds(const Activation& act, float scale, int32_t zero, uint8_t* lo, uint8_t* hi) {
  auto q = [&](float v) {
    const float r = std::nearbyint(v / scale) + static_cast<float>(zero);
    return static_cast<uint8_t>(std::clamp(r, 0.0f, 255.0f));
  };
  *lo = 0;
  *hi = 255;
  if (act.none()) return;
  *lo = q(act.clamp_min());
  if (act.kind == ActivationKind::kClip) *hi = q(act.clamp_max());
}

void clamp_u8(uint8_t* y, int64_t n, uint8_t lo, uint8_t hi) {
  if (lo == 0 && hi == 255) return;
  for (int64_t i = 0; i < n; ++i) y[i] = std::clamp(y[i], lo, hi);
}

// [N, H, W, C] <-> [N, C, H, W] of 8-bit elements into `out` (allocated with the new shape).
void permute_u8(const Tensor& t, bool to_nchw, Tensor& out, ThreadPool* pool) {
  const int64_t n = t.dim(0);
  const int64_t c = to_nchw ? t.dim(3) : t.dim(1);
  const int64_t hw = to_nchw ? t.dim(1) * t.dim(2) : t.dim(2) * t.dim(3);
  const auto* src = static_cast<const uint8_t*>(t.raw_data());
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  if (to_nchw)
    kernels::transpose_planes_u8(src, dst, n, hw, c, pool);
  else
    kernels::transpose_planes_u8(src, dst, n, c, hw, pool);
}

Shape nchw_shape(const Shape& nhwc) {
  return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]};
}

float scalar_float(const Tensor& t) {
  return t.dtype() == DataType::kFloat32 ? t.data<float>()[0]
                                         : static_cast<float>(t.element_as_double(0));
}
int32_t scalar_zero(const Tensor* t) {
  return t == nullptr || t->numel() == 0 ? 0 : static_cast<int32_t>(t->element_as_int64(0));
}

// A reference kernel of another op (ONNX QLinearConv, com.microsoft QLinearAdd) created for
// this node with `types` as its input types.
Result<std::unique_ptr<Kernel>> create_reference(const KernelCreateContext& c,
                                                 const std::string& domain, const char* op_type,
                                                 int64_t opset,
                                                 std::vector<const TensorType*> types,
                                                 std::vector<TensorType> output_types) {
  const OpDef* def = OpRegistry::global().find(domain, op_type, opset);
  if (def == nullptr) return internal_error(std::string("no reference ") + op_type);
  KernelCreateContext rc{
      c.node, opset, std::move(types), c.constant_inputs, std::move(output_types), {}};
  rc.isa = c.isa;
  rc.num_threads = c.num_threads;
  return def->create(rc);
}

// ---- brink.QConv -----------------------------------------------------------------------------

Status infer_qconv(InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(3)) return ctx.invalid("inputs x and w are required");
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(ctx.node()));
  BRINK_RETURN_IF_ERROR(parse_clamp_activation(ctx.node()).status());
  std::vector<const TensorType*> types;
  std::vector<const Tensor*> values;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    types.push_back(ctx.has_input(i) ? &ctx.input_type(i) : nullptr);
    values.push_back(ctx.input_value(i));
  }
  TensorType xt = ctx.input_type(0);
  if (layout == Layout::kNhwc && xt.has_rank()) {
    if (xt.rank() != 4)
      return ctx.invalid("layout NHWC needs x of rank 4 (a 2-D convolution), found rank " +
                         std::to_string(xt.rank()));
    const auto& d = *xt.dims;
    xt.dims = std::vector<Dim>{d[0], d[3], d[1], d[2]};
  }
  types[0] = &xt;
  values[0] = nullptr;  // a constant NHWC x would be read as NCHW
  InferContext inner(ctx.node(), 19, types, values);
  const OpDef* def = OpRegistry::global().find("", "QLinearConv", 19);
  if (def == nullptr) return internal_error("no QLinearConv definition");
  BRINK_RETURN_IF_ERROR(def->infer(inner));
  TensorType out = inner.outputs()[0];
  if (layout == Layout::kNhwc && out.has_rank()) {
    if (out.rank() != 4) return ctx.invalid("layout NHWC needs a 2-D convolution");
    const auto& d = *out.dims;
    out.dims = std::vector<Dim>{d[0], d[2], d[3], d[1]};
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

// The integer convolution on one of the NHWC kernels.
class FastQConvKernel final : public Kernel {
 public:
  FastQConvKernel(ConvAttrs a, Layout layout, kernels::Conv2dParams p,
                  std::unique_ptr<kernels::QConvNhwcU8> conv,
                  std::unique_ptr<kernels::DepthwiseQConvNhwcU8> depthwise,
                  std::vector<float> scale, int32_t y_zero, uint8_t lo, uint8_t hi,
                  std::string where)
      : a_(std::move(a)),
        layout_(layout),
        p_(p),
        conv_(std::move(conv)),
        depthwise_(std::move(depthwise)),
        scale_(std::move(scale)),
        y_zero_(y_zero),
        lo_(lo),
        hi_(hi),
        where_(std::move(where)) {}

  Status run(KernelContext& ctx) override {
    Status s = run_impl(ctx);
    return s.is_ok() ? s : s.with_context(where_);
  }
  // w and B live in the prepared kernel (packed, B folded into per-channel constants); the
  // scales and zero points are read at create, and stay in a package (they are small).
  bool reads_input_data(size_t i) const override { return i != 3 && i != 8; }
  std::string kernel_note() const override { return note_; }
  // The integer kernel's blob, for a .brink package to store: PackedWeights holds floats, so
  // the blob (a multiple of 64 bytes) travels as bytes / 4 float32 words, stored and mapped bit
  // for bit. None when the float kernels run this layer.
  std::optional<PackedWeights> packed_weights() const override {
    if (fconv_ != nullptr) return std::nullopt;
    if (conv_ != nullptr)
      return PackedWeights{conv_->packed_layout(),
                           static_cast<const float*>(conv_->packed_data()),
                           conv_->packed_bytes() / sizeof(float),
                           {}};
    if (depthwise_ != nullptr)
      return PackedWeights{depthwise_->packed_layout(),
                           static_cast<const float*>(depthwise_->packed_data()),
                           depthwise_->packed_bytes() / sizeof(float),
                           {}};
    return std::nullopt;
  }

  // The float kernels for this layer: the QDQ graph's own semantics (x dequantized, an FP32
  // convolution with the dequantized weights and bias, the result quantized and clamped).
  void set_float_path(std::unique_ptr<kernels::ConvNhwcF32> fconv, float x_scale, int32_t x_zero,
                      float y_scale, Isa isa) {
    fconv_ = std::move(fconv);
    x_scale_ = x_scale;
    x_zero_ = x_zero;
    y_scale_ = y_scale;
    isa_ = isa;
  }
  // Keeps one of the two kernels a measurement chose between.
  void drop_float_path() { fconv_.reset(); }
  void drop_integer_path() { conv_.reset(); }
  void set_note(std::string note) { note_ = std::move(note); }
  // One image through each path (for the load-time measurement).
  Status run_float_for_timing(const uint8_t* x, uint8_t* y, const kernels::Conv2dSpatial& sp) {
    return run_float(x, y, 1, sp, nullptr);
  }
  Status run_integer_for_timing(const uint8_t* x, uint8_t* y, const kernels::Conv2dSpatial& sp) {
    std::unique_ptr<kernels::ConvNhwcF32> keep = std::move(fconv_);
    Status s = run_nhwc(x, y, 1, sp, nullptr);
    fconv_ = std::move(keep);
    return s;
  }

  Status run_nhwc(const uint8_t* x, uint8_t* y, int64_t n, const kernels::Conv2dSpatial& sp,
                  ThreadPool* pool) const {
    if (fconv_ != nullptr) return run_float(x, y, n, sp, pool);
    if (conv_ != nullptr) {
      kernels::QuantOutput out;
      out.scale = scale_.data();
      out.per_channel = true;
      out.zero_point = y_zero_;
      out.min = lo_;
      out.max = hi_;
      return conv_->run_u8(x, out, y, n, sp, pool);
    }
    kernels::QRequant out;
    out.scale = scale_.data();
    out.per_channel = true;
    out.zero_point = y_zero_;
    out.min = lo_;
    out.max = hi_;
    return depthwise_->run(x, out, y, n, sp, pool);
  }

 private:
  Status run_float(const uint8_t* x, uint8_t* y, int64_t n, const kernels::Conv2dSpatial& sp,
                   ThreadPool* pool) const {
    const int64_t xs = n * sp.in_h * sp.in_w * p_.in_channels;
    const int64_t ys = n * sp.out_h * sp.out_w * p_.out_channels;
    thread_local std::vector<float> xf, yf;
    if (xf.size() < static_cast<size_t>(xs)) xf.resize(static_cast<size_t>(xs));
    if (yf.size() < static_cast<size_t>(ys)) yf.resize(static_cast<size_t>(ys));
    kernels::dequantize_u8_f32(x, xs, x_scale_, x_zero_, xf.data(), pool, isa_);
    BRINK_RETURN_IF_ERROR(fconv_->run(xf.data(), nullptr, yf.data(), n, sp, pool));
    kernels::quantize_f32_u8(yf.data(), ys, y_scale_, y_zero_, y, pool, isa_);
    if (lo_ > 0 || hi_ < 255)
      for (int64_t i = 0; i < ys; ++i) y[i] = std::clamp(y[i], lo_, hi_);
    return Status::ok();
  }

  Status run_impl(KernelContext& ctx) const {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (x.rank() != 4 || y.rank() != 4)
      return invalid_argument("x has rank " + std::to_string(x.rank()) + ", expected 4");
    const bool nhwc = layout_ == Layout::kNhwc;
    const int64_t n = x.dim(0);
    const int64_t c = nhwc ? x.dim(3) : x.dim(1);
    const int64_t m = nhwc ? y.dim(3) : y.dim(1);
    if (c != p_.in_channels || m != p_.out_channels)
      return invalid_argument("x has " + std::to_string(c) + " channels, expected " +
                              std::to_string(p_.in_channels));
    kernels::Conv2dSpatial sp;
    sp.in_h = nhwc ? x.dim(1) : x.dim(2);
    sp.in_w = nhwc ? x.dim(2) : x.dim(3);
    std::string err = conv_output_dim(a_, 0, sp.in_h, p_.kernel_h, &sp.out_h, &sp.pad_top);
    if (err.empty()) err = conv_output_dim(a_, 1, sp.in_w, p_.kernel_w, &sp.out_w, &sp.pad_left);
    if (!err.empty()) return invalid_argument(err);
    if (sp.out_h != (nhwc ? y.dim(1) : y.dim(2)) || sp.out_w != (nhwc ? y.dim(2) : y.dim(3)))
      return internal_error("output shape " + shape_to_string(y.shape()) +
                            " does not match the convolution");
    if (n == 0 || y.numel() == 0) return Status::ok();
    ThreadPool* pool = ctx.thread_pool();
    const auto* xd = static_cast<const uint8_t*>(x.raw_data());
    auto* yd = static_cast<uint8_t*>(y.raw_data());
    if (nhwc) return run_nhwc(xd, yd, n, sp, pool);
    const int64_t in_hw = sp.in_h * sp.in_w, out_hw = sp.out_h * sp.out_w;
    thread_local std::vector<uint8_t> xs_buf, ys_buf;
    if (xs_buf.size() < static_cast<size_t>(n * in_hw * c))
      xs_buf.resize(static_cast<size_t>(n * in_hw * c));
    if (ys_buf.size() < static_cast<size_t>(n * out_hw * m))
      ys_buf.resize(static_cast<size_t>(n * out_hw * m));
    kernels::transpose_planes_u8(xd, xs_buf.data(), n, c, in_hw, pool);
    BRINK_RETURN_IF_ERROR(run_nhwc(xs_buf.data(), ys_buf.data(), n, sp, pool));
    kernels::transpose_planes_u8(ys_buf.data(), yd, n, out_hw, m, pool);
    return Status::ok();
  }

  ConvAttrs a_;
  Layout layout_;
  kernels::Conv2dParams p_;
  std::unique_ptr<kernels::QConvNhwcU8> conv_;
  std::unique_ptr<kernels::DepthwiseQConvNhwcU8> depthwise_;
  std::vector<float> scale_;  // x_scale * w_scale[m] / y_scale, as the reference computes it
  int32_t y_zero_;
  uint8_t lo_, hi_;
  std::string where_;
  std::unique_ptr<kernels::ConvNhwcF32> fconv_;  // set: the float kernels run this layer
  float x_scale_ = 1, y_scale_ = 1;
  int32_t x_zero_ = 0;
  Isa isa_ = Isa::kPortable;
  std::string note_;
};

// Layers up to this many multiply-accumulates are timed at load with both kernels under
// Int8Kernels::kWhereFaster (a few microseconds each); larger ones always run the integer
// kernels, whose advantage there is the arithmetic, not overheads a measurement must find.
constexpr int64_t kMeasureMaxMacs = int64_t{1} << 21;

// The float kernels of a brink.QConv: weights w * w_scale[m], bias b * x_scale * w_scale[m].
Result<std::unique_ptr<kernels::ConvNhwcF32>> float_qconv(const kernels::Conv2dParams& p,
                                                          const Tensor& w, const Tensor& ws,
                                                          const Tensor* b, float sx, Isa isa) {
  const int64_t m = p.out_channels, per = w.numel() / m;
  const auto* wd = w.data<int8_t>();
  std::vector<float> wf(static_cast<size_t>(w.numel())), bf;
  for (int64_t k = 0; k < m; ++k) {
    const float s = static_cast<float>(ws.element_as_double(ws.numel() == 1 ? 0 : k));
    for (int64_t i = 0; i < per; ++i)
      wf[static_cast<size_t>(k * per + i)] = static_cast<float>(wd[k * per + i]) * s;
    if (b != nullptr) bf.push_back(static_cast<float>(b->data<int32_t>()[k]) * (sx * s));
  }
  kernels::Conv2dParams fp = p;
  fp.activation = Activation{};
  return kernels::ConvNhwcF32::create(fp, wf.data(), b == nullptr ? nullptr : bf.data(), isa);
}

// The best of `runs` timed calls of `fn`, in microseconds, after one untimed call.
template <typename Fn>
double best_time_us(Fn&& fn, int runs) {
  fn();
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::string format_us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f us", us);
  return buf;
}

// The fast kernel when this node is one it handles; nullptr otherwise.
Result<std::unique_ptr<Kernel>> try_fast_qconv(const KernelCreateContext& c, const ConvAttrs& a,
                                               Layout layout, const Activation& act) {
  const auto constant = [&](size_t i) -> const Tensor* {
    return c.has_input(i) && i < c.constant_inputs.size() ? c.constant_inputs[i] : nullptr;
  };
  const Tensor* w = constant(3);
  const Tensor *xs = constant(1), *xz = constant(2), *ws = constant(4), *wz = constant(5),
               *ys = constant(6), *yz = constant(7), *b = constant(8);
  if (!kernels::fast_kernels_enabled() || c.input_dtype(0) != DataType::kUInt8 || w == nullptr ||
      w->dtype() != DataType::kInt8 || w->rank() != 4 || a.strides.size() != 2 || xs == nullptr ||
      ws == nullptr || ys == nullptr || (c.has_input(2) && xz == nullptr) ||
      (c.has_input(5) && wz == nullptr) || (c.has_input(7) && yz == nullptr) ||
      (c.has_input(8) && b == nullptr))
    return std::unique_ptr<Kernel>();
  if (yz != nullptr && yz->dtype() != DataType::kUInt8) return std::unique_ptr<Kernel>();
  const int64_t m = w->dim(0);
  if (wz != nullptr)
    for (int64_t i = 0; i < wz->numel(); ++i)
      if (wz->element_as_int64(i) != 0) return std::unique_ptr<Kernel>();
  if ((ws->numel() != 1 && ws->numel() != m) || (b != nullptr && b->numel() != m) ||
      (b != nullptr && b->dtype() != DataType::kInt32) || xs->numel() != 1 || ys->numel() != 1)
    return std::unique_ptr<Kernel>();
  kernels::Conv2dParams p;
  p.group = a.group;
  p.out_channels = m;
  p.in_channels = w->dim(1) * a.group;
  p.kernel_h = w->dim(2);
  p.kernel_w = w->dim(3);
  p.stride_h = a.strides[0];
  p.stride_w = a.strides[1];
  p.dilation_h = a.dilations[0];
  p.dilation_w = a.dilations[1];
  const float sx = scalar_float(*xs), sy = scalar_float(*ys);
  std::vector<float> scale(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i)
    scale[static_cast<size_t>(i)] =
        sx * static_cast<float>(ws->element_as_double(ws->numel() == 1 ? 0 : i)) / sy;
  const int32_t x_zero = scalar_zero(xz), y_zero = scalar_zero(yz);
  uint8_t lo, hi;
  clamp_bounds(act, sy, y_zero, &lo, &hi);
  const auto* wd = w->data<int8_t>();
  const int32_t* bd = b == nullptr ? nullptr : b->data<int32_t>();
  std::unique_ptr<kernels::QConvNhwcU8> conv;
  std::unique_ptr<kernels::DepthwiseQConvNhwcU8> depthwise;
  // The load-time spatial size, when the input's is known (out_h = 0 otherwise).
  kernels::Conv2dSpatial sp;
  if (const TensorType& xt = *c.input_types[0]; xt.has_rank() && xt.rank() == 4) {
    const Dim& h = (*xt.dims)[layout == Layout::kNhwc ? 1 : 2];
    const Dim& wdim = (*xt.dims)[layout == Layout::kNhwc ? 2 : 3];
    if (h.known() && wdim.known() && h.value > 0 && wdim.value > 0) {
      sp.in_h = h.value;
      sp.in_w = wdim.value;
      if (!conv_output_dim(a, 0, sp.in_h, p.kernel_h, &sp.out_h, &sp.pad_top).empty() ||
          !conv_output_dim(a, 1, sp.in_w, p.kernel_w, &sp.out_w, &sp.pad_left).empty())
        sp = kernels::Conv2dSpatial{};
    }
  }
  const bool depthwise_layer =
      p.group > 1 && p.group == p.in_channels && p.out_channels == p.in_channels;
  if (c.prepacked != nullptr) {
    // Weights packed by an earlier load (a .brink package's): w and B hold no data here, only
    // the integer kernel that packed them can run this layer, with no measurement.
    if (depthwise_layer) {
      auto made = kernels::DepthwiseQConvNhwcU8::create_prepacked(
          p, c.prepacked->layout, c.prepacked->data, c.prepacked->floats * sizeof(float),
          c.prepacked->owner, static_cast<uint8_t>(x_zero), c.isa);
      if (!made.is_ok()) return made.status().with_context(c.node.describe());
      return std::unique_ptr<Kernel>(
          std::make_unique<FastQConvKernel>(a, layout, p, nullptr, std::move(*made),
                                            std::move(scale), y_zero, lo, hi, c.node.describe()));
    }
    auto made = kernels::QConvNhwcU8::create_prepacked(
        p, c.prepacked->layout, c.prepacked->data, c.prepacked->floats * sizeof(float),
        c.prepacked->owner, static_cast<uint8_t>(x_zero), kernels::qisa_for(c.isa));
    if (!made.is_ok()) return made.status().with_context(c.node.describe());
    conv = std::move(*made);
    if (sp.out_h > 0 && sp.out_w > 0)
      BRINK_RETURN_IF_ERROR(conv->prepare(sp).with_context(c.node.describe()));
    auto kernel =
        std::make_unique<FastQConvKernel>(a, layout, p, std::move(conv), nullptr, std::move(scale),
                                          y_zero, lo, hi, c.node.describe());
    if (c.int8_kernels != Int8Kernels::kInteger) kernel->set_note("int8 (packed in the package)");
    return std::unique_ptr<Kernel>(std::move(kernel));
  }
  if (depthwise_layer) {
    auto made =
        kernels::DepthwiseQConvNhwcU8::create(p, wd, bd, static_cast<uint8_t>(x_zero), c.isa);
    if (!made.is_ok()) return std::unique_ptr<Kernel>();
    depthwise = std::move(*made);
  } else {
    auto made = kernels::QConvNhwcU8::create(p, wd, bd, static_cast<uint8_t>(x_zero),
                                             kernels::qisa_for(c.isa));
    if (!made.is_ok()) return std::unique_ptr<Kernel>();
    conv = std::move(*made);
    if (sp.out_h > 0 && sp.out_w > 0)
      BRINK_RETURN_IF_ERROR(conv->prepare(sp).with_context(c.node.describe()));
  }
  const bool have_sp = sp.out_h > 0 && sp.out_w > 0;
  auto kernel =
      std::make_unique<FastQConvKernel>(a, layout, p, std::move(conv), std::move(depthwise),
                                        std::move(scale), y_zero, lo, hi, c.node.describe());
  // "INT8 only where faster": the float kernels are an alternative for the general
  // convolution (the depthwise one's work is too little for dequantize + quantize passes to
  // ever pay off).
  if (c.int8_kernels == Int8Kernels::kInteger || depthwise_layer)
    return std::unique_ptr<Kernel>(std::move(kernel));
  const int64_t macs =
      sp.out_h * sp.out_w * p.out_channels * (p.in_channels / p.group) * p.kernel_h * p.kernel_w;
  if (c.int8_kernels == Int8Kernels::kWhereFaster && (!have_sp || macs > kMeasureMaxMacs))
    return std::unique_ptr<Kernel>(std::move(kernel));
  auto fconv = float_qconv(p, *w, *ws, b, sx, c.isa);
  if (!fconv.is_ok()) return std::unique_ptr<Kernel>(std::move(kernel));
  if (have_sp) BRINK_RETURN_IF_ERROR((*fconv)->prepare(sp).with_context(c.node.describe()));
  kernel->set_float_path(std::move(*fconv), sx, x_zero, sy, c.isa);
  if (c.int8_kernels == Int8Kernels::kFloat) {
    kernel->drop_integer_path();
    kernel->set_note("fp32 (--int8-kernels float)");
    return std::unique_ptr<Kernel>(std::move(kernel));
  }
  // Time both on one image of random bytes, on the calling thread; keep the float kernels
  // only when clearly faster (15 %: timing noise must not flip a tie).
  std::vector<uint8_t> x(static_cast<size_t>(sp.in_h * sp.in_w * p.in_channels));
  std::vector<uint8_t> y(static_cast<size_t>(sp.out_h * sp.out_w * p.out_channels));
  uint32_t r = 12345;
  for (uint8_t& v : x) v = static_cast<uint8_t>((r = r * 1664525u + 1013904223u) >> 24);
  double t_int8 = 0, t_fp32 = 0;
  Status failed = Status::ok();
  auto timed = [&](bool use_float) {
    return best_time_us(
        [&] {
          Status st = use_float ? kernel->run_float_for_timing(x.data(), y.data(), sp)
                                : kernel->run_integer_for_timing(x.data(), y.data(), sp);
          if (!st.is_ok()) failed = st;
        },
        5);
  };
  t_int8 = timed(false);
  t_fp32 = timed(true);
  t_int8 = std::min(t_int8, timed(false));  // interleaved: drift hits both
  t_fp32 = std::min(t_fp32, timed(true));
  BRINK_RETURN_IF_ERROR(failed.with_context(c.node.describe()));
  if (t_fp32 < 0.85 * t_int8) {
    kernel->drop_integer_path();
    kernel->set_note("fp32 (" + format_us(t_fp32) + ") faster than int8 (" + format_us(t_int8) +
                     ")");
  } else {
    kernel->drop_float_path();
    kernel->set_note("int8 (" + format_us(t_int8) + ") vs fp32 (" + format_us(t_fp32) + ")");
  }
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// The reference: QLinearConv's kernel on NCHW, then the clamp.
class ReferenceQConvKernel final : public Kernel {
 public:
  ReferenceQConvKernel(std::unique_ptr<Kernel> inner, Layout layout, Activation act,
                       std::string where)
      : inner_(std::move(inner)), layout_(layout), act_(act), where_(std::move(where)) {}

  Status run(KernelContext& ctx) override {
    Status s = run_impl(ctx);
    return s.is_ok() ? s : s.with_context(where_);
  }

 private:
  Status run_impl(KernelContext& ctx) {
    Tensor& y = ctx.output(0);
    std::vector<const Tensor*> inputs;
    for (size_t i = 0; i < ctx.num_inputs(); ++i)
      inputs.push_back(ctx.has_input(i) ? &ctx.input(i) : nullptr);
    std::vector<Tensor> outputs(1);
    Tensor x_nchw;
    if (layout_ == Layout::kNhwc) {
      const Tensor& x = ctx.input(0);
      if (x.rank() != 4 || y.rank() != 4)
        return invalid_argument("layout NHWC needs x and y of rank 4");
      x_nchw = Tensor::empty(x.dtype(), nchw_shape(x.shape()));
      permute_u8(x, true, x_nchw, nullptr);
      inputs[0] = &x_nchw;
      outputs[0] = Tensor::empty(y.dtype(), nchw_shape(y.shape()));
    } else {
      outputs[0] = y;  // shares y's storage: the reference writes into it
    }
    KernelContext inner(inputs, &outputs, ctx.num_threads());
    inner.set_thread_pool(ctx.thread_pool());
    BRINK_RETURN_IF_ERROR(inner_->run(inner));
    if (layout_ == Layout::kNhwc) permute_u8(outputs[0], false, y, nullptr);
    if (!act_.none()) {
      if (y.dtype() != DataType::kUInt8)
        return unsupported("activation " + std::string(kernels::activation_name(act_.kind)) +
                           " on a " + dtype_name(y.dtype()) + " output (only uint8)");
      uint8_t lo, hi;
      clamp_bounds(act_, scalar_float(ctx.input(6)),
                   scalar_zero(ctx.has_input(7) ? &ctx.input(7) : nullptr), &lo, &hi);
      clamp_u8(static_cast<uint8_t*>(y.raw_data()), y.numel(), lo, hi);
    }
    return Status::ok();
  }

  std::unique_ptr<Kernel> inner_;
  Layout layout_;
  Activation act_;
  std::string where_;
};

Result<std::unique_ptr<Kernel>> create_qconv(const KernelCreateContext& c) {
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(c.node));
  BRINK_ASSIGN_OR_RETURN(Activation act, parse_clamp_activation(c.node));
  if (!c.has_input(0) || !c.has_input(3)) return c.invalid("inputs x and w are required");
  const TensorType& xt = *c.input_types[0];
  const TensorType& wt = *c.input_types[3];
  const size_t spatial = wt.has_rank() && wt.rank() >= 3   ? static_cast<size_t>(wt.rank() - 2)
                         : xt.has_rank() && xt.rank() >= 3 ? static_cast<size_t>(xt.rank() - 2)
                                                           : 0;
  if (spatial == 0) return c.unsupported_here("the rank of x and w must be known and >= 3");
  ConvAttrs a;
  if (std::string err = parse_conv_attrs(c.node, spatial, false, &a); !err.empty())
    return c.invalid(err);
  if (layout == Layout::kNhwc && spatial != 2)
    return c.invalid("layout NHWC needs a 2-D convolution, found " + std::to_string(spatial) +
                     " spatial dims");
  BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> fast, try_fast_qconv(c, a, layout, act));
  if (fast != nullptr) return fast;
  TensorType x_nchw = xt;
  if (layout == Layout::kNhwc && xt.has_rank()) {
    const auto& d = *xt.dims;
    x_nchw.dims = std::vector<Dim>{d[0], d[3], d[1], d[2]};
  }
  std::vector<const TensorType*> types = c.input_types;
  types[0] = &x_nchw;
  BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> inner,
                         create_reference(c, "", "QLinearConv", 19, types, c.output_types));
  return std::unique_ptr<Kernel>(
      std::make_unique<ReferenceQConvKernel>(std::move(inner), layout, act, c.node.describe()));
}

// ---- brink.QAdd ------------------------------------------------------------------------------

Status infer_qadd(InferContext& ctx) {
  BRINK_RETURN_IF_ERROR(parse_clamp_activation(ctx.node()).status());
  const OpDef* def = OpRegistry::global().find("com.microsoft", "QLinearAdd", 1);
  if (def == nullptr) return internal_error("no QLinearAdd definition");
  return def->infer(ctx);
}

class QAddKernel final : public Kernel {
 public:
  QAddKernel(std::unique_ptr<Kernel> reference, Activation act, Isa isa, bool fast,
             std::string where)
      : reference_(std::move(reference)),
        act_(act),
        isa_(isa),
        fast_(fast),
        where_(std::move(where)) {}

  Status run(KernelContext& ctx) override {
    Status s = run_impl(ctx);
    return s.is_ok() ? s : s.with_context(where_);
  }

 private:
  Status run_impl(KernelContext& ctx) {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    Tensor& y = ctx.output(0);
    const float ys = scalar_float(ctx.input(6));
    const int32_t yz = scalar_zero(ctx.has_input(7) ? &ctx.input(7) : nullptr);
    uint8_t lo = 0, hi = 255;
    if (y.dtype() == DataType::kUInt8) clamp_bounds(act_, ys, yz, &lo, &hi);
    const bool scalars = ctx.input(1).numel() == 1 && ctx.input(4).numel() == 1;
    if (fast_ && a.dtype() == DataType::kUInt8 && a.shape() == b.shape() &&
        a.shape() == y.shape() && scalars) {
      kernels::qadd_u8(static_cast<const uint8_t*>(a.raw_data()), scalar_float(ctx.input(1)),
                       scalar_zero(ctx.has_input(2) ? &ctx.input(2) : nullptr),
                       static_cast<const uint8_t*>(b.raw_data()), scalar_float(ctx.input(4)),
                       scalar_zero(ctx.has_input(5) ? &ctx.input(5) : nullptr),
                       static_cast<uint8_t*>(y.raw_data()), ys, yz, lo, hi, y.numel(),
                       ctx.thread_pool(), isa_);
      return Status::ok();
    }
    BRINK_RETURN_IF_ERROR(reference_->run(ctx));
    if (!act_.none()) {
      if (y.dtype() != DataType::kUInt8)
        return unsupported("activation on a " + std::string(dtype_name(y.dtype())) +
                           " output (only uint8)");
      clamp_u8(static_cast<uint8_t*>(y.raw_data()), y.numel(), lo, hi);
    }
    return Status::ok();
  }

  std::unique_ptr<Kernel> reference_;
  Activation act_;
  Isa isa_;
  bool fast_;
  std::string where_;
};

Result<std::unique_ptr<Kernel>> create_qadd(const KernelCreateContext& c) {
  BRINK_ASSIGN_OR_RETURN(Activation act, parse_clamp_activation(c.node));
  BRINK_ASSIGN_OR_RETURN(
      std::unique_ptr<Kernel> reference,
      create_reference(c, "com.microsoft", "QLinearAdd", 1, c.input_types, c.output_types));
  return std::unique_ptr<Kernel>(std::make_unique<QAddKernel>(
      std::move(reference), act, c.isa, kernels::fast_kernels_enabled(), c.node.describe()));
}

}  // namespace

void register_fused_quantized_ops(OpRegistry& r) {
  if constexpr (op_selected("brink", "QConv")) {
    OpDef conv;
    conv.op_type = "QConv";
    conv.domain = "brink";
    conv.since_version = 1;
    conv.infer = infer_qconv;
    conv.create = create_qconv;
    r.add(std::move(conv));
  }
  if constexpr (op_selected("brink", "QAdd")) {
    OpDef add;
    add.op_type = "QAdd";
    add.domain = "brink";
    add.since_version = 1;
    add.infer = infer_qadd;
    add.create = create_qadd;
    r.add(std::move(add));
  }
}

}  // namespace brink::ops
