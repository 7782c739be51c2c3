// The fast pooling kernels (kernels/pool.h) against the reference pools of src/ops/pool.cc
// (both in brink_rt: no ONNX import), for every ISA this build runs: NEON under qemu in the
// aarch64 cross build. tests/unit/pool_fast_test.cc checks the brink.* pool operators.
#include "kernels/pool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "ops/pool.h"

namespace brink::kernels {
namespace {

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

// NCHW reference through ops::pool_reference, returned in NHWC order.
std::vector<float> reference(PoolOp op, const Pool2dShape& s, bool cip,
                             const std::vector<float>& x_nhwc) {
  const int64_t n = s.batch, c = s.channels, hw = s.in_h * s.in_w, ohw = s.out_h * s.out_w;
  Tensor x = Tensor::empty(DataType::kFloat32, {n, c, s.in_h, s.in_w});
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p)
        x.data<float>()[(a * c + ch) * hw + p] = x_nhwc[static_cast<size_t>((a * hw + p) * c + ch)];
  ops::PoolAttrs attrs;
  attrs.kernel = {s.kernel_h, s.kernel_w};
  attrs.strides = {s.stride_h, s.stride_w};
  attrs.dilations = {s.dilation_h, s.dilation_w};
  attrs.pads = {s.pad_top, s.pad_left, s.pad_bottom, s.pad_right};
  attrs.count_include_pad = cip;
  Tensor y = Tensor::empty(DataType::kFloat32, {n, c, s.out_h, s.out_w});
  const Status st = ops::pool_reference(
      op == PoolOp::kMax ? ops::PoolKind::kMax : ops::PoolKind::kAverage, attrs, x, y, nullptr);
  EXPECT_TRUE(st.is_ok()) << st.message();
  std::vector<float> out(static_cast<size_t>(n * ohw * c));
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < ohw; ++p)
        out[static_cast<size_t>((a * ohw + p) * c + ch)] = y.data<float>()[(a * c + ch) * ohw + p];
  return out;
}

void check(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t stride, int64_t dil,
           int64_t pt, int64_t pl, int64_t pb, int64_t pr, uint32_t seed) {
  Pool2dShape s{n, h, w, c, 0, 0, k, k, stride, stride, dil, dil, pt, pl, pb, pr};
  s.out_h = (h + pt + pb - (k - 1) * dil - 1) / stride + 1;
  s.out_w = (w + pl + pr - (k - 1) * dil - 1) / stride + 1;
  SCOPED_TRACE(::testing::Message()
               << "N" << n << " H" << h << " W" << w << " C" << c << " k" << k << " s" << stride
               << " d" << dil << " pads " << pt << "," << pl << "," << pb << "," << pr);
  ASSERT_GT(s.out_h, 0);
  ASSERT_GT(s.out_w, 0);
  const auto x = random_values(static_cast<size_t>(n * h * w * c), seed);
  for (PoolOp op : {PoolOp::kMax, PoolOp::kAverage})
    for (bool cip : {false, true}) {
      if (op == PoolOp::kMax && cip) continue;
      const auto want = reference(op, s, cip, x);
      for (Isa isa : supported_isas())
        for (int threads : {1, 2, 3}) {
          std::vector<float> y(want.size(), NAN);
          pool2d_nhwc_f32(op, s, cip, x.data(), y.data(), isa, pool_of(threads));
          for (size_t i = 0; i < y.size(); ++i)
            if (!(y[i] == want[i]))
              FAIL() << (op == PoolOp::kMax ? "max" : "average") << " cip " << cip << " "
                     << isa_name(isa) << " threads " << threads << ": element " << i << " is "
                     << y[i] << ", expected " << want[i];
        }
    }
}

TEST(PoolKernel, WindowedNhwcMatchesReference) {
  uint32_t seed = 1;
  for (int64_t c : {1, 3, 4, 7, 16, 17, 33, 70})
    for (int64_t k : {1, 2, 3})
      for (int64_t s : {1, 2})
        check(1, 7, 9, c, k, s, 1, k / 2, k / 2, (k - 1) / 2, k / 2, seed += 3);
  check(2, 1, 1, 5, 3, 1, 1, 1, 1, 1, 1, seed += 3);
  check(1, 2, 3, 9, 3, 2, 1, 1, 1, 1, 1, seed += 3);
  check(1, 8, 8, 6, 3, 1, 2, 2, 0, 1, 3, seed += 3);
  check(1, 6, 5, 11, 3, 3, 1, 3, 3, 3, 3, seed += 3);
}

TEST(PoolKernel, GlobalPoolsMatchReference) {
  uint32_t seed = 100;
  for (int64_t c : {1, 4, 17, 70})
    for (int64_t pixels : {1, 6, 49, 300}) {
      const int64_t n = 2;
      const auto x = random_values(static_cast<size_t>(n * pixels * c), seed += 3);
      for (PoolOp op : {PoolOp::kMax, PoolOp::kAverage}) {
        // want[n][c] in double, as the reference global pool computes it.
        std::vector<double> want(static_cast<size_t>(n * c));
        for (int64_t a = 0; a < n; ++a)
          for (int64_t ch = 0; ch < c; ++ch) {
            double r = op == PoolOp::kMax ? -INFINITY : 0.0;
            for (int64_t p = 0; p < pixels; ++p) {
              const double v = x[static_cast<size_t>((a * pixels + p) * c + ch)];
              r = op == PoolOp::kMax ? std::max(r, v) : r + v;
            }
            want[static_cast<size_t>(a * c + ch)] = op == PoolOp::kMax ? r : r / pixels;
          }
        // The same values in NCHW for the plane kernel.
        std::vector<float> x_nchw(x.size());
        for (int64_t a = 0; a < n; ++a)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < pixels; ++p)
              x_nchw[static_cast<size_t>((a * c + ch) * pixels + p)] =
                  x[static_cast<size_t>((a * pixels + p) * c + ch)];
        for (Isa isa : supported_isas())
          for (int threads : {1, 2, 3}) {
            std::vector<float> y1(want.size(), NAN), y2(want.size(), NAN);
            global_pool_nhwc_f32(op, n, pixels, c, x.data(), y1.data(), isa, pool_of(threads));
            global_pool_nchw_f32(op, n * c, pixels, x_nchw.data(), y2.data(), isa,
                                 pool_of(threads));
            for (size_t i = 0; i < want.size(); ++i) {
              EXPECT_NEAR(y1[i], want[i], 1e-6) << isa_name(isa) << " NHWC element " << i;
              EXPECT_NEAR(y2[i], want[i], 1e-6) << isa_name(isa) << " NCHW element " << i;
            }
          }
      }
    }
}

}  // namespace
}  // namespace brink::kernels
