// Quantized depthwise convolution micro-benchmark: kernels::DepthwiseQConvNhwcU8 (u8 in/out,
// s8 weights, per-channel requant) against the float32 kernels::DepthwiseConvNhwc on the
// 3x3 pad-1 depthwise layers of MobileNetV2, one thread, best-of and median microseconds.
//
//   qdepthwise_bench [--min-time 0.2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/depthwise_conv.h"
#include "kernels/qdepthwise_conv.h"

namespace {

using namespace brink;

struct BenchShape {
  int64_t h, w, c, stride;
};
const BenchShape kShapes[] = {
    {112, 112, 96, 2}, {56, 56, 144, 1}, {28, 28, 192, 1}, {14, 14, 384, 1}, {7, 7, 960, 1}};

std::pair<double, double> time_calls(const std::function<void()>& fn, double min_time) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> times;
  const auto start = clock::now();
  while (times.size() < 5 ||
         std::chrono::duration<double>(clock::now() - start).count() < min_time) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  return {times[times.size() / 2], *std::min_element(times.begin(), times.end())};
}

}  // namespace

int main(int argc, char** argv) {
  double min_time = 0.2;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--min-time" && i + 1 < argc) {
      min_time = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: qdepthwise_bench [--min-time 0.2]\n");
      return 2;
    }
  }
  const Isa isa = best_isa();
  std::mt19937 rng(1);
  std::printf("isa %s, 1 thread\n%-22s %12s %12s %12s %12s %8s\n", isa_name(isa), "shape",
              "u8 med us", "u8 best us", "f32 med us", "f32 best us", "f32/u8");
  for (const BenchShape& b : kShapes) {
    const int64_t oh = (b.h + 2 - 3) / b.stride + 1, ow = (b.w + 2 - 3) / b.stride + 1;
    std::vector<uint8_t> xq(static_cast<size_t>(b.h * b.w * b.c)),
        yq(static_cast<size_t>(oh * ow * b.c));
    std::vector<int8_t> wq(static_cast<size_t>(b.c * 9));
    std::vector<int32_t> bq(static_cast<size_t>(b.c));
    std::vector<float> xf(xq.size()), yf(yq.size()), wf(wq.size()), bf(bq.size()),
        scale(bq.size(), 0.002f);
    for (size_t i = 0; i < xq.size(); ++i)
      xq[i] = static_cast<uint8_t>(rng()), xf[i] = xq[i] / 255.0f;
    for (size_t i = 0; i < wq.size(); ++i)
      wq[i] = static_cast<int8_t>(rng()), wf[i] = wq[i] / 128.0f;
    for (size_t i = 0; i < bq.size(); ++i)
      bq[i] = static_cast<int32_t>(rng() % 2000) - 1000, bf[i] = 0.1f;

    kernels::Conv2dParams p;
    p.in_channels = p.out_channels = p.group = b.c;
    p.kernel_h = p.kernel_w = 3;
    p.stride_h = p.stride_w = b.stride;
    auto q = kernels::DepthwiseQConvNhwcU8::create(p, wq.data(), bq.data(), 128, isa);
    if (!q.is_ok()) {
      std::fprintf(stderr, "%s\n", q.status().message().c_str());
      return 1;
    }
    kernels::QRequant rq;
    rq.scale = scale.data();
    rq.zero_point = 128;
    const kernels::Conv2dSpatial s{b.h, b.w, oh, ow, 1, 1};
    const auto [tq, bq_best] =
        time_calls([&] { (void)(*q)->run(xq.data(), rq, yq.data(), 1, s, nullptr); }, min_time);

    kernels::Activation relu6;
    relu6.kind = kernels::ActivationKind::kClip;
    relu6.alpha = 0.0f;
    relu6.beta = 6.0f;
    auto f = kernels::DepthwiseConvNhwc::create(b.c, 3, 3, wf.data(), bf.data(), relu6, isa);
    const kernels::DepthwiseConvShape fs{1, b.h,      b.w,      b.c, oh, ow, 3,
                                         3, b.stride, b.stride, 1,   1,  1,  1};
    const auto [tf, bf_best] =
        time_calls([&] { f->run(fs, xf.data(), nullptr, yf.data(), nullptr); }, min_time);

    char name[64];
    std::snprintf(name, sizeof name, "%lldx%lldx%lld /%lld", static_cast<long long>(b.h),
                  static_cast<long long>(b.w), static_cast<long long>(b.c),
                  static_cast<long long>(b.stride));
    std::printf("%-22s %12.1f %12.1f %12.1f %12.1f %8.2f\n", name, tq * 1e6, bq_best * 1e6,
                tf * 1e6, bf_best * 1e6, bf_best / bq_best);
  }
  return 0;
}
