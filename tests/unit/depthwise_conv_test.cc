// The NHWC depthwise kernel (kernels/depthwise_conv.h) against the reference ONNX Conv with
// group = C (plus the residual and the scalar activation), for every ISA this machine runs,
// on awkward shapes and on 1, 2 and 3 threads.
#include "kernels/depthwise_conv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "op_test_util.h"
#include "ops/evaluate.h"

namespace brink::kernels {
namespace {

using ops::evaluate_node;
using ops::make_attr;
using ops::make_node;
using ops::random_tensor;

struct DwCase {
  int64_t n = 1, h = 7, w = 6, c = 16;
  int64_t kh = 3, kw = 3, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 1, pl = 1, pb = 1, pr = 1;
  bool bias = true, residual = false;
  Activation act;

  std::string describe() const {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "N%lld H%lld W%lld C%lld k%lldx%lld s%lld,%lld d%lld,%lld pads %lld,%lld,%lld,%lld"
        "%s%s act %s",
        static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w),
        static_cast<long long>(c), static_cast<long long>(kh), static_cast<long long>(kw),
        static_cast<long long>(sh), static_cast<long long>(sw), static_cast<long long>(dh),
        static_cast<long long>(dw), static_cast<long long>(pt), static_cast<long long>(pl),
        static_cast<long long>(pb), static_cast<long long>(pr), bias ? " bias" : "",
        residual ? " residual" : "", activation_name(act.kind));
    return buf;
  }
  int64_t out_h() const { return (h + pt + pb - (kh - 1) * dh - 1) / sh + 1; }
  int64_t out_w() const { return (w + pl + pr - (kw - 1) * dw - 1) / sw + 1; }
};

// [N, C, H, W] -> [N, H, W, C].
Tensor to_nhwc(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), h = t.dim(2), w = t.dim(3);
  Tensor r = Tensor::empty(DataType::kFloat32, {n, h, w, c});
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h * w; ++i)
        r.data<float>()[(a * h * w + i) * c + ch] = t.data<float>()[(a * c + ch) * h * w + i];
  return r;
}
Tensor abs_of(const Tensor& t) {
  Tensor r = Tensor::empty(t.dtype(), t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = std::fabs(t.data<float>()[i]);
  return r;
}

// The reference depthwise convolution in NCHW, through the ONNX Conv operator.
Tensor reference_conv(const DwCase& c, const Tensor& x_nchw, const Tensor& w, const Tensor* b) {
  std::vector<const Tensor*> inputs{&x_nchw, &w};
  if (b != nullptr) inputs.push_back(b);
  auto out =
      evaluate_node(make_node("Conv", inputs.size(), 1,
                              {make_attr("group", c.c),
                               make_attr("kernel_shape", std::vector<int64_t>{c.kh, c.kw}),
                               make_attr("strides", std::vector<int64_t>{c.sh, c.sw}),
                               make_attr("dilations", std::vector<int64_t>{c.dh, c.dw}),
                               make_attr("pads", std::vector<int64_t>{c.pt, c.pl, c.pb, c.pr})}),
                    13, inputs);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return out.is_ok() ? (*out)[0] : Tensor();
}

ThreadPool* pool_of(int threads) {
  static ThreadPool pool2(2), pool3(3);
  return threads == 2 ? &pool2 : threads == 3 ? &pool3 : nullptr;
}

void check(const DwCase& c, uint32_t seed) {
  SCOPED_TRACE(c.describe());
  ASSERT_GT(c.out_h(), 0);
  ASSERT_GT(c.out_w(), 0);
  const Tensor x_nchw = random_tensor({c.n, c.c, c.h, c.w}, seed);
  const Tensor w = random_tensor({c.c, 1, c.kh, c.kw}, seed + 1);
  const Tensor b = random_tensor({c.c}, seed + 2);
  const Tensor x = to_nhwc(x_nchw);
  const Shape y_shape{c.n, c.out_h(), c.out_w(), c.c};
  const Tensor res = random_tensor(y_shape, seed + 3);

  // Want: act(conv + residual); tolerance from the magnitude of the terms summed.
  Tensor conv = reference_conv(c, x_nchw, w, c.bias ? &b : nullptr);
  ASSERT_TRUE(conv.defined());
  const Tensor abs_b = abs_of(b);
  const Tensor mag =
      to_nhwc(reference_conv(c, abs_of(x_nchw), abs_of(w), c.bias ? &abs_b : nullptr));
  const Tensor want_pre = to_nhwc(conv);
  ASSERT_EQ(want_pre.shape(), y_shape);
  std::vector<float> want(static_cast<size_t>(want_pre.numel())), tol(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    float v = want_pre.data<float>()[i];
    float m = mag.data<float>()[i];
    if (c.residual) {
      v += res.data<float>()[i];
      m += std::fabs(res.data<float>()[i]);
    }
    want[i] = apply_activation_scalar(c.act, v);
    tol[i] = 2e-5f * m + 1e-6f;
  }

  for (Isa isa : supported_isas()) {
    auto k = DepthwiseConvNhwc::create(c.c, c.kh, c.kw, w.data<float>(),
                                       c.bias ? b.data<float>() : nullptr, c.act, isa);
    ASSERT_NE(k, nullptr) << isa_name(isa);
    const DepthwiseConvShape s{c.n,  c.h,  c.w,  c.c,  c.out_h(), c.out_w(), c.kh,
                               c.kw, c.sh, c.sw, c.dh, c.dw,      c.pt,      c.pl};
    for (int threads : {1, 2, 3}) {
      Tensor y = Tensor::empty(DataType::kFloat32, y_shape);
      for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = NAN;
      k->run(s, x.data<float>(), c.residual ? res.data<float>() : nullptr, y.data<float>(),
             pool_of(threads));
      for (size_t i = 0; i < want.size(); ++i) {
        const float got = y.data<float>()[i];
        if (!(std::fabs(got - want[i]) <= tol[i])) {
          const int64_t ch = static_cast<int64_t>(i) % c.c;
          const int64_t pix = static_cast<int64_t>(i) / c.c;
          FAIL() << isa_name(isa) << " threads " << threads << ": element " << i << " (pixel "
                 << pix << ", channel " << ch << ") is " << got << ", expected " << want[i]
                 << " +- " << tol[i];
        }
      }
    }
  }
}

Activation act(ActivationKind kind, float alpha = 0.0f, float beta = 0.0f) {
  Activation a;
  a.kind = kind;
  a.alpha = alpha;
  a.beta = beta;
  return a;
}

TEST(DepthwiseConvNhwc, ChannelCountsKernelsAndStrides) {
  uint32_t seed = 1;
  const std::vector<std::pair<int64_t, int64_t>> kernels = {{1, 1}, {3, 3}, {5, 5}, {7, 7}, {3, 1}};
  for (int64_t c : {1, 3, 7, 16, 17, 33, 96, 145})
    for (auto [kh, kw] : kernels)
      for (int64_t s : {1, 2, 3}) {
        DwCase d;
        d.c = c;
        d.kh = kh, d.kw = kw, d.sh = s, d.sw = s;
        d.h = 9, d.w = 11;
        d.pt = kh / 2, d.pl = kw / 2, d.pb = (kh - 1) / 2, d.pr = kw / 2;  // asymmetric for even
        check(d, seed += 7);
      }
}

TEST(DepthwiseConvNhwc, TinyImages) {
  uint32_t seed = 100;
  for (int64_t c : {1, 7, 16, 17, 33})
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}, {3, 2}})
      for (int64_t k : {1, 3, 5})
        for (int64_t s : {1, 2}) {
          DwCase d;
          d.c = c, d.h = h, d.w = w, d.kh = k, d.kw = k, d.sh = s, d.sw = s;
          d.pt = d.pl = d.pb = d.pr = k / 2;
          check(d, seed += 7);
        }
}

TEST(DepthwiseConvNhwc, PaddingOnEverySideAndLargerThanTheKernel) {
  uint32_t seed = 200;
  const std::vector<std::vector<int64_t>> pads = {
      {0, 0, 0, 0}, {2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 2},
      {1, 0, 2, 3}, {3, 1, 0, 2}, {4, 4, 4, 4}, {5, 0, 1, 6}, {0, 3, 3, 0}};
  for (int64_t c : {3, 16, 17})
    for (int64_t k : {3, 5})
      for (int64_t s : {1, 2})
        for (const auto& p : pads) {
          DwCase d;
          d.c = c, d.h = 8, d.w = 13, d.kh = k, d.kw = k, d.sh = s, d.sw = s;
          d.pt = p[0], d.pl = p[1], d.pb = p[2], d.pr = p[3];
          if (d.out_h() < 1 || d.out_w() < 1) continue;
          check(d, seed += 7);
        }
}

TEST(DepthwiseConvNhwc, DilationAndMixedStrides) {
  uint32_t seed = 300;
  for (int64_t c : {1, 17, 33, 96})
    for (auto [dh, dw] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {1, 2}, {2, 1}, {3, 2}})
      for (auto [sh, sw] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 1}, {1, 3}}) {
        DwCase d;
        d.c = c, d.h = 10, d.w = 12, d.kh = 3, d.kw = 3, d.dh = dh, d.dw = dw, d.sh = sh, d.sw = sw;
        d.pt = dh, d.pl = dw, d.pb = 1, d.pr = 2 * dw;
        check(d, seed += 7);
      }
}

TEST(DepthwiseConvNhwc, LargerImagesTakeTheUnrolledInteriorPath) {
  uint32_t seed = 400;
  for (int64_t c : {16, 24, 40, 145})
    for (int64_t k : {3, 5})
      for (int64_t s : {1, 2}) {
        DwCase d;
        d.n = 2, d.c = c, d.h = 21, d.w = 23, d.kh = k, d.kw = k, d.sh = s, d.sw = s;
        d.pt = d.pl = k / 2, d.pb = d.pr = (k - 1) / 2;
        d.bias = (c % 2) == 0;
        d.residual = s == 1;
        check(d, seed += 7);
      }
}

TEST(DepthwiseConvNhwc, EveryActivationWithBiasResidualAndBatch) {
  uint32_t seed = 500;
  const std::vector<Activation> acts = {act(ActivationKind::kNone),
                                        act(ActivationKind::kRelu),
                                        act(ActivationKind::kClip, 0.0f, 6.0f),
                                        act(ActivationKind::kClip, -0.5f, 0.25f),
                                        act(ActivationKind::kLeakyRelu, 0.1f),
                                        act(ActivationKind::kHardSigmoid, 0.2f, 0.5f),
                                        act(ActivationKind::kHardSwish),
                                        act(ActivationKind::kSigmoid),
                                        act(ActivationKind::kSilu),
                                        act(ActivationKind::kTanh),
                                        act(ActivationKind::kGelu),
                                        act(ActivationKind::kGeluTanh)};
  for (const Activation& a : acts)
    for (bool bias : {false, true})
      for (bool residual : {false, true}) {
        DwCase d;
        d.n = 2, d.c = 33, d.h = 9, d.w = 10, d.kh = 3, d.kw = 3;
        d.bias = bias, d.residual = residual, d.act = a;
        check(d, seed += 7);
        d.c = 8, d.kh = d.kw = 5, d.pt = d.pl = d.pb = d.pr = 2, d.sh = d.sw = 2;
        check(d, seed += 7);
      }
}

TEST(DepthwiseConvNhwc, RejectsWhatItCannotRun) {
  const float w[9] = {};
  EXPECT_EQ(DepthwiseConvNhwc::create(0, 3, 3, w, nullptr, Activation{}, Isa::kPortable), nullptr);
  EXPECT_EQ(DepthwiseConvNhwc::create(4, 0, 3, w, nullptr, Activation{}, Isa::kPortable), nullptr);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (!isa_supported(isa)) {
      EXPECT_EQ(DepthwiseConvNhwc::create(1, 3, 3, w, nullptr, Activation{}, isa), nullptr);
    }
  }
}

}  // namespace
}  // namespace brink::kernels
