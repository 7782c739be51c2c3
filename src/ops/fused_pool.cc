// brink.MaxPool, brink.AveragePool, brink.GlobalAveragePool, brink.GlobalMaxPool
// (docs/INTERNAL_OPS.md): the ONNX pools at opset 19 (ceil_mode, count_include_pad,
// dilations, auto_pad; MaxPool without the Indices output) with the extra attribute `layout`
// ("NCHW", the default, or "NHWC": X and Y are [N, spatial..., C]).
//
// float32 runs the fast kernels of kernels/pool.h (and uint8 NHWC MaxPool, kernels/qpool.h):
// windowed pools in NHWC with one or two spatial dims, global pools in either layout. Everything
// else (other dtypes, NCHW windowed pools, three spatial dims in NHWC) runs the ONNX reference
// kernels of pool.cc, with NHWC permuted to NCHW and back: that path is also the oracle the fast
// kernels are tested against (tests/unit/pool_fast_test.cc).
#include <cstring>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/qpool.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"
#include "ops/pool.h"

namespace brink::ops {

namespace {

enum class Layout { kNchw, kNhwc };

Result<Layout> parse_layout(const ir::Node& node) {
  const std::string s = node.attr_string("layout", "NCHW");
  if (s == "NCHW") return Layout::kNchw;
  if (s == "NHWC") return Layout::kNhwc;
  return invalid_model(node.describe() + ": layout '" + s + "' is not one of NCHW, NHWC");
}

// [N, spatial..., C] <-> [N, C, spatial...], for any element type and rank >= 3, as a copy.
Tensor permute_layout(const Tensor& t, bool to_nchw) {
  const Shape& s = t.shape();
  const int64_t n = s[0];
  const int64_t c = to_nchw ? s.back() : s[1];
  const int64_t pixels = n * c > 0 ? t.numel() / (n * c) : 0;
  Shape out{n};
  if (to_nchw) {
    out.push_back(c);
    out.insert(out.end(), s.begin() + 1, s.end() - 1);
  } else {
    out.insert(out.end(), s.begin() + 2, s.end());
    out.push_back(c);
  }
  Tensor r = Tensor::empty(t.dtype(), out);
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const unsigned char*>(t.raw_data());
  auto* dst = static_cast<unsigned char*>(r.raw_data());
  for (int64_t ni = 0; ni < n; ++ni)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t p = 0; p < pixels; ++p) {
        const int64_t nchw = (ni * c + ci) * pixels + p;
        const int64_t nhwc = (ni * pixels + p) * c + ci;
        if (to_nchw)
          std::memcpy(dst + nchw * es, src + nhwc * es, es);
        else
          std::memcpy(dst + nhwc * es, src + nchw * es, es);
      }
  return r;
}

// Runs `reference` (which reads an NCHW x and writes an NCHW y) for the node's layout.
template <typename Fn>
Status run_in_nchw(Layout layout, const Tensor& x, Tensor& y, const Fn& reference) {
  if (layout == Layout::kNchw) return reference(x, y);
  const Tensor xt = permute_layout(x, true);
  Shape yt_shape{y.dim(0), y.shape().back()};
  yt_shape.insert(yt_shape.end(), y.shape().begin() + 1, y.shape().end() - 1);
  Tensor yt = Tensor::empty(y.dtype(), yt_shape);
  BRINK_RETURN_IF_ERROR(reference(xt, yt));
  const Tensor yn = permute_layout(yt, false);
  std::memcpy(y.raw_data(), yn.raw_data(), y.nbytes());
  return Status::ok();
}

// ---- windowed pools ---------------------------------------------------------------------------

// Opset-19 semantics: MaxPool-12 (int8/uint8 too, no Indices output here) and AveragePool-19.
PoolVersion version_of(PoolKind kind) {
  if (kind == PoolKind::kMax) return {PoolKind::kMax, false, true, true, false, true};
  return {PoolKind::kAverage, false, true, true, true, false};
}

Status infer_pool(InferContext& ctx, PoolKind kind) {
  const PoolVersion v = version_of(kind);
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(ctx.node()));
  BRINK_RETURN_IF_ERROR(check_pool_input(ctx, v.int8));
  if (ctx.num_outputs() != 1)
    return ctx.invalid("has " + std::to_string(ctx.num_outputs()) + " outputs, expected 1");
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
    const size_t first = layout == Layout::kNhwc ? 1 : 2;  // first spatial dim
    out[0] = xd[0];
    out[layout == Layout::kNhwc ? n + 1 : 1] = xd[layout == Layout::kNhwc ? n + 1 : 1];
    for (size_t i = 0; i < n; ++i) {
      if (!xd[first + i].known()) continue;
      int64_t o = 0, pb = 0, pe = 0;
      if (std::string err = pool_output_dim(a, i, xd[first + i].value, &o, &pb, &pe); !err.empty())
        return ctx.invalid(err);
      out[first + i] = Dim(o);
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
  return Status::ok();
}

// The NHWC problem for x [N, H, W, C] or [N, W, C] (as H = 1).
Status nhwc_shape(const PoolAttrs& a, const Shape& x, kernels::Pool2dShape* s) {
  const bool one_d = a.kernel.size() == 1;
  if (x.size() != a.kernel.size() + 2)
    return invalid_argument("input X has rank " + std::to_string(x.size()) + ", expected " +
                            std::to_string(a.kernel.size() + 2));
  s->batch = x[0];
  s->channels = x.back();
  s->in_h = one_d ? 1 : x[1];
  s->in_w = one_d ? x[1] : x[2];
  s->out_h = 1, s->kernel_h = 1, s->stride_h = 1, s->dilation_h = 1;
  s->pad_top = 0, s->pad_bottom = 0;
  const size_t w = one_d ? 0 : 1;  // attribute index of the width dim
  std::string err;
  if (!one_d) err = pool_output_dim(a, 0, s->in_h, &s->out_h, &s->pad_top, &s->pad_bottom);
  if (err.empty()) err = pool_output_dim(a, w, s->in_w, &s->out_w, &s->pad_left, &s->pad_right);
  if (!err.empty()) return invalid_argument(err);
  if (!one_d) {
    s->kernel_h = a.kernel[0];
    s->stride_h = a.strides[0];
    s->dilation_h = a.dilations[0];
  }
  s->kernel_w = a.kernel[w];
  s->stride_w = a.strides[w];
  s->dilation_w = a.dilations[w];
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> create_pool(const KernelCreateContext& c, PoolKind kind) {
  const PoolVersion v = version_of(kind);
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(c.node));
  const size_t n = c.node.attr_ints("kernel_shape").size();
  if (n > 3)
    return c.unsupported_here("kernel_shape has " + std::to_string(n) +
                              " dims; at most 3 spatial dims are supported");
  PoolAttrs a;
  if (std::string err = parse_pool_attrs(c.node, n, v, c.opset, &a); !err.empty())
    return c.invalid(err);
  const std::string where = c.node.describe();
  const bool fast = kernels::fast_kernels_enabled() && layout == Layout::kNhwc && n <= 2 &&
                    c.has_input(0) && c.input_dtype(0) == DataType::kFloat32;
  if (kernels::fast_kernels_enabled() && layout == Layout::kNhwc && n == 2 &&
      kind == PoolKind::kMax && c.has_input(0) && c.input_dtype(0) == DataType::kUInt8) {
    const Isa isa = c.isa;
    return make_kernel([a, where, isa](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      kernels::Pool2dShape s;
      if (Status st = nhwc_shape(a, x.shape(), &s); !st.is_ok()) return st.with_context(where);
      kernels::max_pool2d_nhwc_u8(s, x.data<uint8_t>(), ctx.output(0).data<uint8_t>(),
                                  ctx.thread_pool(), isa);
      return Status::ok();
    });
  }
  if (fast) {
    const kernels::PoolOp op =
        kind == PoolKind::kMax ? kernels::PoolOp::kMax : kernels::PoolOp::kAverage;
    const Isa isa = c.isa;
    return make_kernel([a, op, isa, where](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      kernels::Pool2dShape s;
      if (Status st = nhwc_shape(a, x.shape(), &s); !st.is_ok()) return st.with_context(where);
      kernels::pool2d_nhwc_f32(op, s, a.count_include_pad != 0, x.data<float>(), y.data<float>(),
                               isa, ctx.thread_pool());
      return Status::ok();
    });
  }
  return make_kernel([a, kind, layout, where](KernelContext& ctx) -> Status {
    Status s = run_in_nchw(layout, ctx.input(0), ctx.output(0), [&](const Tensor& x, Tensor& y) {
      return pool_reference(kind, a, x, y, nullptr);
    });
    return s.is_ok() ? s : s.with_context(where);
  });
}

OpDef pool_def(const char* name, PoolKind kind) {
  OpDef d;
  d.op_type = name;
  d.domain = "brink";
  d.since_version = 1;
  d.infer = [kind](InferContext& ctx) { return infer_pool(ctx, kind); };
  d.create = [kind](const KernelCreateContext& c) { return create_pool(c, kind); };
  return d;
}

// ---- global pools -----------------------------------------------------------------------------

Status infer_global_pool(InferContext& ctx) {
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(ctx.node()));
  BRINK_RETURN_IF_ERROR(check_pool_input(ctx, false));
  const TensorType& xt = ctx.input_type(0);
  if (!xt.has_rank()) {
    ctx.set_output(0, xt);
    return Status::ok();
  }
  std::vector<Dim> out = *xt.dims;
  const size_t first = layout == Layout::kNhwc ? 1 : 2, last = out.size() - (first == 1);
  for (size_t i = first; i < last; ++i) out[i] = Dim(1);
  ctx.set_output(0, xt.dtype, std::move(out));
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> create_global_pool(const KernelCreateContext& c, PoolKind kind) {
  BRINK_ASSIGN_OR_RETURN(Layout layout, parse_layout(c.node));
  const bool fast =
      kernels::fast_kernels_enabled() && c.has_input(0) && c.input_dtype(0) == DataType::kFloat32;
  if (fast) {
    const kernels::PoolOp op =
        kind == PoolKind::kMax ? kernels::PoolOp::kMax : kernels::PoolOp::kAverage;
    const Isa isa = c.isa;
    return make_kernel([op, isa, layout](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t n = x.dim(0), ch = layout == Layout::kNhwc ? x.shape().back() : x.dim(1);
      const int64_t pixels = n * ch > 0 ? x.numel() / (n * ch) : 0;
      if (layout == Layout::kNhwc)
        kernels::global_pool_nhwc_f32(op, n, pixels, ch, x.data<float>(), y.data<float>(), isa,
                                      ctx.thread_pool());
      else
        kernels::global_pool_nchw_f32(op, n * ch, pixels, x.data<float>(), y.data<float>(), isa,
                                      ctx.thread_pool());
      return Status::ok();
    });
  }
  return make_kernel([kind, layout](KernelContext& ctx) -> Status {
    return run_in_nchw(layout, ctx.input(0), ctx.output(0), [&](const Tensor& x, Tensor& y) {
      global_pool_reference(kind, 2, x, y);
      return Status::ok();
    });
  });
}

OpDef global_pool_def(const char* name, PoolKind kind) {
  OpDef d;
  d.op_type = name;
  d.domain = "brink";
  d.since_version = 1;
  d.infer = infer_global_pool;
  d.create = [kind](const KernelCreateContext& c) { return create_global_pool(c, kind); };
  return d;
}

}  // namespace

void register_fused_pool_ops(OpRegistry& r) {
  if constexpr (op_selected("brink", "MaxPool")) r.add(pool_def("MaxPool", PoolKind::kMax));
  if constexpr (op_selected("brink", "AveragePool"))
    r.add(pool_def("AveragePool", PoolKind::kAverage));
  if constexpr (op_selected("brink", "GlobalAveragePool"))
    r.add(global_pool_def("GlobalAveragePool", PoolKind::kAverage));
  if constexpr (op_selected("brink", "GlobalMaxPool"))
    r.add(global_pool_def("GlobalMaxPool", PoolKind::kMax));
}

}  // namespace brink::ops
