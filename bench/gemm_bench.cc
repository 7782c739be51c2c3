// GEMM micro-benchmark: GFLOP/s of kernels::gemm (B pre-packed, as for weights) on the
// shapes of MobileNet / ResNet / BERT layers, and % of the FP32 peak measured by
// kernels::measure_fp32_peak_gflops with the same ISA and thread count.
//
//   gemm_bench [--isa avx512|avx2|portable|neon|all] [--threads 1,2] [--shape MxNxK ...]
//              [--unpacked] [--min-time 0.3]
//
// Each configuration runs for at least --min-time seconds after a warm-up; GFLOP/s and % of
// peak are from the median of the per-call times, best_GF/s from the fastest call (a shared,
// loaded machine slows some calls down; the best one shows what the kernel can do).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "kernels/peak.h"

namespace {

using brink::bench::parse_isa;
using brink::bench::split;

using namespace brink;

struct BenchShape {
  int64_t m, n, k;
  const char* what;
};

const BenchShape kDefaultShapes[] = {
    {3136, 64, 64, "MobileNetV2 1x1, 56x56"}, {196, 1024, 256, "ResNet-50 1x1 expand, 14x14"},
    {128, 384, 384, "BERT QKV/out proj"},     {128, 1536, 384, "BERT FFN up"},
    {128, 384, 1536, "BERT FFN down"},        {49, 2048, 512, "ResNet-50 1x1 expand, 7x7"},
    {1, 1000, 2048, "ResNet-50 classifier"},  {512, 512, 512, "square"},
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<Isa> isas = {best_isa()};
  std::vector<int> threads = {1, 2};
  std::vector<BenchShape> shapes;
  bool unpacked = false;
  double min_time = 0.3;
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
      const std::string v = next();
      isas.clear();
      if (v == "all") {
        isas = supported_isas();
      } else {
        for (const std::string& s : split(v, ',')) {
          Isa isa;
          if (!parse_isa(s, &isa) || !isa_supported(isa)) {
            std::fprintf(stderr, "error: ISA '%s' is unknown or not supported here\n", s.c_str());
            return 2;
          }
          isas.push_back(isa);
        }
      }
    } else if (arg == "--threads") {
      threads.clear();
      for (const std::string& s : split(next(), ',')) threads.push_back(std::atoi(s.c_str()));
    } else if (arg == "--shape") {
      const std::vector<std::string> d = split(next(), 'x');
      if (d.size() != 3) {
        std::fprintf(stderr, "error: --shape wants MxNxK\n");
        return 2;
      }
      shapes.push_back(
          {std::atoll(d[0].c_str()), std::atoll(d[1].c_str()), std::atoll(d[2].c_str()), "custom"});
    } else if (arg == "--unpacked") {
      unpacked = true;
    } else if (arg == "--min-time") {
      min_time = std::atof(next().c_str());
    } else {
      std::fprintf(stderr,
                   "usage: %s [--isa LIST|all] [--threads LIST] [--shape MxNxK]... "
                   "[--unpacked] [--min-time S]\n",
                   argv[0]);
      return 2;
    }
  }
  if (shapes.empty()) shapes.assign(std::begin(kDefaultShapes), std::end(kDefaultShapes));

  std::printf("%-8s %3s %-16s %10s %9s %7s %9s  %s\n", "isa", "thr", "MxNxK", "p50_us", "GFLOP/s",
              "%peak", "best_GF/s", "layer");
  for (Isa isa : isas) {
    for (int t : threads) {
      const double peak = kernels::measure_fp32_peak_gflops(t, isa);
      std::printf("# %s, %d thread(s): measured FP32 peak %.1f GFLOP/s\n", isa_name(isa), t, peak);
      ThreadPool pool(t);
      for (const BenchShape& s : shapes) {
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n)),
            bias(static_cast<size_t>(s.n)), c(static_cast<size_t>(s.m * s.n));
        for (float& v : a) v = dist(rng);
        for (float& v : b) v = dist(rng);
        for (float& v : bias) v = dist(rng);
        const kernels::PackedB packed = kernels::pack_b(b.data(), s.k, s.n, s.n, false, isa);
        kernels::Activation relu{kernels::ActivationKind::kRelu};
        auto call = [&]() {
          if (unpacked)
            kernels::gemm_unpacked(s.m, s.n, s.k, a.data(), s.k, b.data(), s.n, false, bias.data(),
                                   c.data(), s.n, relu, &pool, isa);
          else
            kernels::gemm(s.m, a.data(), s.k, packed, bias.data(), c.data(), s.n, relu, &pool);
        };
        using Clock = std::chrono::steady_clock;
        for (int w = 0; w < 3; ++w) call();
        std::vector<double> times;
        const auto start = Clock::now();
        while (std::chrono::duration<double>(Clock::now() - start).count() < min_time ||
               times.size() < 5) {
          const auto t0 = Clock::now();
          call();
          times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
        std::sort(times.begin(), times.end());
        const double median = times[times.size() / 2];
        const double flops = 2.0 * static_cast<double>(s.m * s.n * s.k);
        const double gflops = flops / median / 1e9;
        const std::string dims =
            std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
        std::printf("%-8s %3d %-16s %10.1f %9.1f %6.1f%% %9.1f  %s\n", isa_name(isa), t,
                    dims.c_str(), median * 1e6, gflops, 100.0 * gflops / peak,
                    flops / times.front() / 1e9, s.what);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
