// Depthwise convolution micro-benchmark: kernels::DepthwiseConvNhwc on the depthwise layers of
// MobileNetV2 (3x3) and EfficientNet-B0 (5x5), with Relu6 fused (or --activation), in GFLOP/s (2
// per multiply-add, padding taps not counted) and GB/s (input + output + packed weights, each read
// or written once: the traffic floor of the layer), both from the median time.
//
//   depthwise_bench [--isa avx512|avx2|portable|neon|all] [--threads 1,2] [--min-time 0.3]
//                   [--activation relu6|hardswish|sigmoid|silu]
//
// Each configuration runs for at least --min-time seconds after a warm-up; the number
// reported is the median of the per-call times (this machine is shared and noisy).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/depthwise_conv.h"

namespace {

using brink::bench::parse_isa;
using brink::bench::split;

using namespace brink;

struct BenchShape {
  int64_t h, w, c, k, stride;
  const char* what;
};

const BenchShape kShapes[] = {
    {112, 112, 32, 3, 1, "MobileNetV2 block 1"},    {112, 112, 96, 3, 2, "MobileNetV2 block 2"},
    {56, 56, 144, 3, 1, "MobileNetV2 block 3"},     {56, 56, 144, 3, 2, "MobileNetV2 block 4"},
    {28, 28, 192, 3, 1, "MobileNetV2 blocks 5-6"},  {28, 28, 192, 3, 2, "MobileNetV2 block 7"},
    {14, 14, 384, 3, 1, "MobileNetV2 blocks 8-11"}, {14, 14, 576, 3, 1, "MobileNetV2 blocks 12-13"},
    {14, 14, 576, 3, 2, "MobileNetV2 block 14"},    {7, 7, 960, 3, 1, "MobileNetV2 blocks 15-17"},
    {56, 56, 144, 5, 2, "EfficientNet-B0 stage 3"}, {28, 28, 240, 5, 1, "EfficientNet-B0 stage 3"},
    {14, 14, 672, 5, 1, "EfficientNet-B0 stage 5"}, {7, 7, 1152, 5, 1, "EfficientNet-B0 stage 6"},
};

// Median and minimum per-call time; the minimum is the steadier number for A/B comparisons
// on a loaded machine.
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
  std::vector<Isa> isas{best_isa()};
  std::vector<int> thread_counts{1, 2};
  double min_time = 0.3;
  kernels::Activation act;
  act.kind = kernels::ActivationKind::kClip;  // Relu6
  act.alpha = 0.0f;
  act.beta = 6.0f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--isa" && has_value) {
      const std::string v = argv[++i];
      isas.clear();
      if (v == "all") {
        isas = supported_isas();
      } else {
        for (const std::string& s : split(v, ',')) {
          Isa isa;
          if (!parse_isa(s, &isa) || !isa_supported(isa)) {
            std::fprintf(stderr, "unsupported --isa %s\n", s.c_str());
            return 2;
          }
          isas.push_back(isa);
        }
      }
    } else if (a == "--threads" && has_value) {
      thread_counts.clear();
      for (const std::string& s : split(argv[++i], ','))
        thread_counts.push_back(std::atoi(s.c_str()));
    } else if (a == "--min-time" && has_value) {
      min_time = std::atof(argv[++i]);
    } else if (a == "--activation" && has_value) {
      const std::string v = argv[++i];
      if (v == "hardswish") {
        act.kind = kernels::ActivationKind::kHardSwish;
      } else if (v == "sigmoid") {
        act.kind = kernels::ActivationKind::kSigmoid;
      } else if (v == "silu") {
        act.kind = kernels::ActivationKind::kSilu;
      } else if (v != "relu6") {
        std::fprintf(stderr, "unknown --activation %s (relu6, hardswish, sigmoid, silu)\n",
                     v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: depthwise_bench [--isa avx512|avx2|portable|neon|all] [--threads 1,2] "
                   "[--min-time 0.3] [--activation relu6|hardswish|sigmoid|silu]\n");
      return 2;
    }
  }

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);

  std::printf("%-26s %-8s %-4s %10s %10s %9s %8s\n", "shape (HxWxC kxk /s)", "isa", "thr",
              "median us", "best us", "GFLOP/s", "GB/s");
  for (const BenchShape& b : kShapes) {
    const int64_t pad = b.k / 2;
    const int64_t oh = (b.h + 2 * pad - b.k) / b.stride + 1,
                  ow = (b.w + 2 * pad - b.k) / b.stride + 1;
    std::vector<float> x(static_cast<size_t>(b.h * b.w * b.c)),
        y(static_cast<size_t>(oh * ow * b.c));
    std::vector<float> w(static_cast<size_t>(b.c * b.k * b.k)), bias(static_cast<size_t>(b.c));
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
    for (float& v : bias) v = dist(rng);
    // Taps inside the image only: what the kernel computes.
    int64_t macs = 0;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t a = 0; a < b.k; ++a)
          for (int64_t c = 0; c < b.k; ++c) {
            const int64_t ih = i * b.stride - pad + a, iw = j * b.stride - pad + c;
            macs += ih >= 0 && ih < b.h && iw >= 0 && iw < b.w;
          }
    macs *= b.c;
    const double bytes = 4.0 * static_cast<double>(x.size() + y.size() + w.size() + bias.size());
    const kernels::DepthwiseConvShape s{1,   b.h,      b.w,      b.c, oh, ow,  b.k,
                                        b.k, b.stride, b.stride, 1,   1,  pad, pad};
    char name[64];
    std::snprintf(name, sizeof name, "%lldx%lldx%lld %lldx%lld /%lld", static_cast<long long>(b.h),
                  static_cast<long long>(b.w), static_cast<long long>(b.c),
                  static_cast<long long>(b.k), static_cast<long long>(b.k),
                  static_cast<long long>(b.stride));
    for (Isa isa : isas) {
      auto k = kernels::DepthwiseConvNhwc::create(b.c, b.k, b.k, w.data(), bias.data(), act, isa);
      if (!k) continue;
      for (int threads : thread_counts) {
        ThreadPool pool(threads);
        const auto [t, best] = time_calls(
            [&] { k->run(s, x.data(), nullptr, y.data(), threads > 1 ? &pool : nullptr); },
            min_time);
        std::printf("%-26s %-8s %-4d %10.1f %10.1f %9.1f %8.1f\n", name, isa_name(isa), threads,
                    t * 1e6, best * 1e6, 2.0 * static_cast<double>(macs) / t * 1e-9,
                    bytes / t * 1e-9);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
