// The NHWC depthwise kernel against a naive double-precision loop, for every ISA this build
// runs (NEON under qemu in the aarch64 cross build). No ONNX here: this file links against
// brink_rt alone. tests/unit/depthwise_conv_test.cc checks the same kernel against the
// reference Conv operator on x86.
#include "kernels/depthwise_conv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

struct Case {
  int64_t n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool bias, residual;
  ActivationKind act;

  int64_t out_h() const { return (h + pt + pb - (kh - 1) * dh - 1) / sh + 1; }
  int64_t out_w() const { return (w + pl + pr - (kw - 1) * dw - 1) / sw + 1; }
  std::string describe() const {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "N%lld H%lld W%lld C%lld k%lldx%lld s%lld,%lld d%lld,%lld pads %lld,%lld,%lld,%lld "
        "bias %d residual %d act %s",
        static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w),
        static_cast<long long>(c), static_cast<long long>(kh), static_cast<long long>(kw),
        static_cast<long long>(sh), static_cast<long long>(sw), static_cast<long long>(dh),
        static_cast<long long>(dw), static_cast<long long>(pt), static_cast<long long>(pl),
        static_cast<long long>(pb), static_cast<long long>(pr), bias, residual,
        activation_name(act));
    return buf;
  }
};

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

ThreadPool* pool_of(int threads) {
  static ThreadPool pool2(2), pool3(3);
  return threads == 2 ? &pool2 : threads == 3 ? &pool3 : nullptr;
}

void check(const Case& c, uint32_t seed) {
  SCOPED_TRACE(c.describe());
  const int64_t oh_n = c.out_h(), ow_n = c.out_w();
  ASSERT_GT(oh_n, 0);
  ASSERT_GT(ow_n, 0);
  const auto x = random_values(static_cast<size_t>(c.n * c.h * c.w * c.c), seed);
  const auto w = random_values(static_cast<size_t>(c.c * c.kh * c.kw), seed + 1);
  const auto b = random_values(static_cast<size_t>(c.c), seed + 2);
  const size_t y_size = static_cast<size_t>(c.n * oh_n * ow_n * c.c);
  const auto res = random_values(y_size, seed + 3);
  Activation a;
  a.kind = c.act;
  if (c.act == ActivationKind::kClip) a.alpha = 0.0f, a.beta = 6.0f;
  if (c.act == ActivationKind::kLeakyRelu) a.alpha = 0.1f;

  std::vector<float> want(y_size), tol(y_size);
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow)
        for (int64_t ch = 0; ch < c.c; ++ch) {
          const size_t yi = static_cast<size_t>(((n * oh_n + oh) * ow_n + ow) * c.c + ch);
          double s = c.bias ? b[static_cast<size_t>(ch)] : 0.0;
          double m = std::fabs(s);
          for (int64_t i = 0; i < c.kh; ++i)
            for (int64_t j = 0; j < c.kw; ++j) {
              const int64_t ih = oh * c.sh - c.pt + i * c.dh, iw = ow * c.sw - c.pl + j * c.dw;
              if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
              const double p =
                  double{x[static_cast<size_t>(((n * c.h + ih) * c.w + iw) * c.c + ch)]} *
                  w[static_cast<size_t>((ch * c.kh + i) * c.kw + j)];
              s += p;
              m += std::fabs(p);
            }
          if (c.residual) s += res[yi], m += std::fabs(res[yi]);
          want[yi] = apply_activation_scalar(a, static_cast<float>(s));
          tol[yi] = static_cast<float>(2e-5 * m + 1e-6);
        }

  for (Isa isa : supported_isas()) {
    auto k =
        DepthwiseConvNhwc::create(c.c, c.kh, c.kw, w.data(), c.bias ? b.data() : nullptr, a, isa);
    ASSERT_NE(k, nullptr) << isa_name(isa);
    const DepthwiseConvShape s{c.n,  c.h,  c.w,  c.c,  oh_n, ow_n, c.kh,
                               c.kw, c.sh, c.sw, c.dh, c.dw, c.pt, c.pl};
    for (int threads : {1, 2, 3}) {
      std::vector<float> y(y_size, NAN);
      k->run(s, x.data(), c.residual ? res.data() : nullptr, y.data(), pool_of(threads));
      for (size_t i = 0; i < y_size; ++i)
        if (!(std::fabs(y[i] - want[i]) <= tol[i]))
          FAIL() << isa_name(isa) << " threads " << threads << ": element " << i << " is " << y[i]
                 << ", expected " << want[i] << " +- " << tol[i];
    }
  }
}

TEST(DepthwiseConvKernel, AwkwardShapesMatchNaiveLoop) {
  using K = ActivationKind;
  uint32_t seed = 1;
  for (int64_t c : {1, 3, 4, 7, 8, 16, 17, 33})
    for (int64_t k : {1, 3, 5})
      for (int64_t s : {1, 2})
        check({1, 9, 10, c, k, k, s, s, 1, 1, k / 2, k / 2, k / 2, (k + 1) / 2, true, false,
               K::kNone},
              seed += 5);
  // 1x1 and 2x3 images, 7x7 and 3x1 kernels, stride 3, dilation, padding past the kernel.
  check({1, 1, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, K::kRelu}, seed += 5);
  check({2, 2, 3, 9, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, false, true, K::kClip}, seed += 5);
  check({1, 11, 9, 6, 7, 7, 3, 3, 1, 1, 3, 2, 1, 3, false, false, K::kNone}, seed += 5);
  check({1, 8, 7, 10, 3, 1, 1, 2, 1, 1, 1, 0, 2, 1, true, true, K::kLeakyRelu}, seed += 5);
  check({1, 12, 12, 13, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, false, K::kNone}, seed += 5);
  check({1, 6, 9, 4, 3, 3, 1, 1, 1, 1, 4, 0, 5, 4, true, false, K::kNone}, seed += 5);
  // The activations computed in registers.
  for (K act : {K::kHardSwish, K::kSigmoid, K::kSilu, K::kTanh})
    check({2, 14, 13, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, act}, seed += 5);
  // Big enough for the 4-pixel interior loops of 3x3 and 5x5, strides 1 and 2.
  for (int64_t k : {3, 5})
    for (int64_t s : {1, 2})
      check({1, 19, 21, 24, k, k, s, s, 1, 1, k / 2, k / 2, k / 2, k / 2, true, false, K::kClip},
            seed += 5);
}

}  // namespace
}  // namespace brink::kernels
