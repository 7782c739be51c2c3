// Convolution micro-benchmark: GFLOP/s of kernels::ConvNhwcF32 (weights packed, indirection
// table built at prepare, NHWC) on every distinct non-depthwise convolution of ResNet-50 and
// MobileNetV2 (torchvision, batch 1, 224x224), as % of the FP32 peak measured by
// kernels::measure_fp32_peak_gflops with the same ISA and thread count. The ResNet-50 and
// MobileNetV2 lines at the end weight each shape by how often the model runs it: the
// convolutions' share of one inference, as if run back to back.
//
//   conv_bench [--isa avx512|avx2|portable|neon] [--threads 1,2] [--filter text]
//              [--min-time 0.2] [--model resnet50|mobilenetv2|all]
//
// Each shape runs for at least --min-time seconds after a warm-up; GFLOP/s and % of peak are
// from the median call, best_GF/s from the fastest (a shared, loaded machine slows some calls
// down). Weights stay hot in cache between calls, which a real inference of ResNet-50 (about
// 100 MB of weights) does not have; the model totals are therefore an upper bound.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/peak.h"

namespace {

using brink::bench::parse_isa;
using brink::bench::split;

using namespace brink;

struct ConvShape {
  const char* model;
  int count;  // how many times the model runs this convolution
  int64_t h, w, c, m, k, stride, pad;
};

// Distinct convolutions with their count per inference (depthwise layers excluded: they
// are kernels::DepthwiseConvNhwc's, see depthwise_bench).
const ConvShape kShapes[] = {
    // ResNet-50 (v1.5: the stride is on the 3x3).
    {"resnet50", 1, 224, 224, 3, 64, 7, 2, 3},
    {"resnet50", 1, 56, 56, 64, 64, 1, 1, 0},
    {"resnet50", 3, 56, 56, 64, 64, 3, 1, 1},
    {"resnet50", 4, 56, 56, 64, 256, 1, 1, 0},
    {"resnet50", 2, 56, 56, 256, 64, 1, 1, 0},
    {"resnet50", 1, 56, 56, 256, 128, 1, 1, 0},
    {"resnet50", 1, 56, 56, 128, 128, 3, 2, 1},
    {"resnet50", 1, 56, 56, 256, 512, 1, 2, 0},
    {"resnet50", 4, 28, 28, 128, 512, 1, 1, 0},
    {"resnet50", 3, 28, 28, 512, 128, 1, 1, 0},
    {"resnet50", 3, 28, 28, 128, 128, 3, 1, 1},
    {"resnet50", 1, 28, 28, 512, 256, 1, 1, 0},
    {"resnet50", 1, 28, 28, 256, 256, 3, 2, 1},
    {"resnet50", 1, 28, 28, 512, 1024, 1, 2, 0},
    {"resnet50", 6, 14, 14, 256, 1024, 1, 1, 0},
    {"resnet50", 5, 14, 14, 1024, 256, 1, 1, 0},
    {"resnet50", 5, 14, 14, 256, 256, 3, 1, 1},
    {"resnet50", 1, 14, 14, 1024, 512, 1, 1, 0},
    {"resnet50", 1, 14, 14, 512, 512, 3, 2, 1},
    {"resnet50", 1, 14, 14, 1024, 2048, 1, 2, 0},
    {"resnet50", 3, 7, 7, 512, 2048, 1, 1, 0},
    {"resnet50", 2, 7, 7, 2048, 512, 1, 1, 0},
    {"resnet50", 2, 7, 7, 512, 512, 3, 1, 1},
    // MobileNetV2: the stem and the pointwise expansions / projections.
    {"mobilenetv2", 1, 224, 224, 3, 32, 3, 2, 1},
    {"mobilenetv2", 1, 112, 112, 32, 16, 1, 1, 0},
    {"mobilenetv2", 1, 112, 112, 16, 96, 1, 1, 0},
    {"mobilenetv2", 1, 56, 56, 96, 24, 1, 1, 0},
    {"mobilenetv2", 2, 56, 56, 24, 144, 1, 1, 0},
    {"mobilenetv2", 1, 56, 56, 144, 24, 1, 1, 0},
    {"mobilenetv2", 1, 28, 28, 144, 32, 1, 1, 0},
    {"mobilenetv2", 3, 28, 28, 32, 192, 1, 1, 0},
    {"mobilenetv2", 2, 28, 28, 192, 32, 1, 1, 0},
    {"mobilenetv2", 1, 14, 14, 192, 64, 1, 1, 0},
    {"mobilenetv2", 4, 14, 14, 64, 384, 1, 1, 0},
    {"mobilenetv2", 3, 14, 14, 384, 64, 1, 1, 0},
    {"mobilenetv2", 1, 14, 14, 384, 96, 1, 1, 0},
    {"mobilenetv2", 3, 14, 14, 96, 576, 1, 1, 0},
    {"mobilenetv2", 2, 14, 14, 576, 96, 1, 1, 0},
    {"mobilenetv2", 1, 7, 7, 576, 160, 1, 1, 0},
    {"mobilenetv2", 3, 7, 7, 160, 960, 1, 1, 0},
    {"mobilenetv2", 2, 7, 7, 960, 160, 1, 1, 0},
    {"mobilenetv2", 1, 7, 7, 960, 320, 1, 1, 0},
    {"mobilenetv2", 1, 7, 7, 320, 1280, 1, 1, 0},
};

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Timing {
  double median_s = 0, best_s = 0;
};

// Median and best of calls to `fn` over at least `min_time` seconds, after a warm-up.
template <typename Fn>
Timing time_calls(Fn&& fn, double min_time) {
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
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  std::vector<int> threads = {1, 2};
  std::string filter, model = "all";
  double min_time = 0.2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--isa") {
      if (!parse_isa(next(), &isa) || !isa_supported(isa)) {
        std::fprintf(stderr, "error: --isa %s is unknown or not supported here\n", argv[i]);
        return 2;
      }
    } else if (arg == "--threads") {
      threads.clear();
      for (const std::string& t : split(next(), ',')) threads.push_back(std::atoi(t.c_str()));
    } else if (arg == "--filter") {
      filter = next();
    } else if (arg == "--model") {
      model = next();
    } else if (arg == "--min-time") {
      min_time = std::atof(next().c_str());
    } else {
      std::fprintf(stderr,
                   "usage: conv_bench [--isa NAME] [--threads 1,2] [--filter TEXT] "
                   "[--model resnet50|mobilenetv2|all] [--min-time S]\n");
      return 2;
    }
  }

  for (int nt : threads) {
    ThreadPool pool(nt);
    const double peak = kernels::measure_fp32_peak_gflops(nt, isa);
    std::printf("conv_bench: isa %s, %d thread(s), measured FP32 peak %.1f GFLOP/s (%s)\n",
                isa_name(isa), nt, peak, cpu_features().brand.c_str());
    std::printf("%-12s %-28s %5s %9s %10s %8s %8s %7s\n", "model", "conv (HxW CxM kxk/s)", "count",
                "MFLOP", "median_us", "GF/s", "best_GF/s", "%peak");
    struct Total {
      double flops = 0, seconds = 0, best_seconds = 0;
    };
    Total totals[2];
    for (const ConvShape& s : kShapes) {
      if (model != "all" && model != s.model) continue;
      char name[64];
      std::snprintf(name, sizeof(name), "%lldx%lld %lldx%lld %lldx%lld/%lld",
                    static_cast<long long>(s.h), static_cast<long long>(s.w),
                    static_cast<long long>(s.c), static_cast<long long>(s.m),
                    static_cast<long long>(s.k), static_cast<long long>(s.k),
                    static_cast<long long>(s.stride));
      if (!filter.empty() && std::string(name).find(filter) == std::string::npos) continue;
      kernels::Conv2dParams p;
      p.in_channels = s.c;
      p.out_channels = s.m;
      p.kernel_h = p.kernel_w = s.k;
      p.stride_h = p.stride_w = s.stride;
      p.activation.kind = kernels::ActivationKind::kRelu;
      const std::vector<float> w = random_floats(static_cast<size_t>(s.m * s.c * s.k * s.k), 1);
      const std::vector<float> b = random_floats(static_cast<size_t>(s.m), 2);
      auto conv = kernels::ConvNhwcF32::create(p, w.data(), b.data(), isa);
      if (!conv.is_ok()) {
        std::fprintf(stderr, "error: %s\n", conv.status().message().c_str());
        return 1;
      }
      kernels::Conv2dSpatial sp;
      sp.in_h = s.h;
      sp.in_w = s.w;
      sp.out_h = (s.h + 2 * s.pad - s.k) / s.stride + 1;
      sp.out_w = (s.w + 2 * s.pad - s.k) / s.stride + 1;
      sp.pad_top = sp.pad_left = s.pad;
      if (Status st = (*conv)->prepare(sp); !st.is_ok()) {
        std::fprintf(stderr, "error: %s\n", st.message().c_str());
        return 1;
      }
      const std::vector<float> x = random_floats(static_cast<size_t>(s.h * s.w * s.c), 3);
      std::vector<float> y(static_cast<size_t>(sp.out_h * sp.out_w * s.m));
      const Timing t = time_calls(
          [&] {
            Status st = (*conv)->run(x.data(), nullptr, y.data(), 1, sp, &pool);
            if (!st.is_ok()) std::abort();
          },
          min_time);
      const double flops = 2.0 * static_cast<double>(sp.out_h * sp.out_w * s.m * s.c * s.k * s.k);
      const double gf = flops / t.median_s * 1e-9;
      std::printf("%-12s %-28s %5d %9.1f %10.1f %8.1f %8.1f %6.1f%%\n", s.model, name, s.count,
                  flops * 1e-6, t.median_s * 1e6, gf, flops / t.best_s * 1e-9, 100.0 * gf / peak);
      Total& total = totals[std::string(s.model) == "resnet50" ? 0 : 1];
      total.flops += s.count * flops;
      total.seconds += s.count * t.median_s;
      total.best_seconds += s.count * t.best_s;
    }
    const char* names[2] = {"resnet50", "mobilenetv2"};
    for (int i = 0; i < 2; ++i) {
      if (totals[i].seconds == 0) continue;
      const double gf = totals[i].flops / totals[i].seconds * 1e-9;
      const double best_gf = totals[i].flops / totals[i].best_seconds * 1e-9;
      std::printf("%-12s %-28s %5s %9.1f %10.1f %8.1f %8.1f %6.1f%% (best: %.1f%%)\n", names[i],
                  "all convolutions above", "", totals[i].flops * 1e-6, totals[i].seconds * 1e6, gf,
                  best_gf, 100.0 * gf / peak, 100.0 * best_gf / peak);
    }
    std::printf("\n");
  }
  return 0;
}
