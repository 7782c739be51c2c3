// INT8 GEMM micro-benchmark: GOPS (2 ops per multiply-add) of kernels::qgemm_u8 (B packed, u8
// output with per-channel scales) next to the FP32 kernels::gemm on the same shapes, at one
// thread by default, on ResNet-50-like shapes (im2col views of its 3x3 and 1x1 convolutions).
//
//   qgemm_bench [--qisa avx512vnni,avx512,avx2,portable|all] [--threads 1] [--shape MxNxK ...]
//               [--min-time 0.3] [--exact]
//
// Then the same for QConvNhwcU8 against ConvNhwcF32 on ResNet-50's convolutions (--no-conv
// skips them).
//
// --exact packs weights whose pairs saturate vpmaddubsw (the x86 non-VNNI exact path).
// Times are medians of per-call times after a warm-up; best is the fastest call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/qconv.h"
#include "kernels/qgemm.h"

namespace {

using namespace brink;
using namespace brink::kernels;

struct BenchShape {
  int64_t m, n, k;
  const char* what;
};

const BenchShape kDefaultShapes[] = {
    {3136, 64, 576, "ResNet-50 3x3 conv2_x, 56x56"},
    {3136, 256, 64, "ResNet-50 1x1 expand, 56x56"},
    {784, 128, 1152, "ResNet-50 3x3 conv3_x, 28x28"},
    {196, 256, 2304, "ResNet-50 3x3 conv4_x, 14x14"},
    {196, 1024, 256, "ResNet-50 1x1 expand, 14x14"},
    {49, 512, 4608, "ResNet-50 3x3 conv5_x, 7x7"},
};

struct ConvShape {
  int64_t c, m, k, stride, pad, in;
  const char* what;
};

const ConvShape kConvShapes[] = {
    {3, 64, 7, 2, 3, 224, "ResNet-50 conv1 7x7/2"},
    {64, 64, 3, 1, 1, 56, "ResNet-50 conv2_x 3x3"},
    {64, 256, 1, 1, 0, 56, "ResNet-50 conv2_x 1x1 expand"},
    {128, 128, 3, 1, 1, 28, "ResNet-50 conv3_x 3x3"},
    {256, 256, 3, 1, 1, 14, "ResNet-50 conv4_x 3x3"},
    {512, 512, 3, 1, 1, 7, "ResNet-50 conv5_x 3x3"},
};

template <typename Fn>
void time_it(Fn&& fn, double min_time, double* median, double* best) {
  using clock = std::chrono::steady_clock;
  fn();
  std::vector<double> times;
  const auto start = clock::now();
  while (std::chrono::duration<double>(clock::now() - start).count() < min_time ||
         times.size() < 3) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  *median = times[times.size() / 2];
  *best = times.front();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<QIsa> qisas = {best_qisa()};
  std::vector<int> threads = {1};
  std::vector<BenchShape> shapes;
  double min_time = 0.3;
  bool exact = false;
  bool conv = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--qisa") {
      const std::string v = next();
      qisas.clear();
      for (const std::string& s : bench::split(v, ',')) {
        bool found = false;
        for (QIsa q : supported_qisas())
          if (v == "all" || s == qisa_name(q)) {
            qisas.push_back(q);
            found = true;
          }
        if (!found) {
          std::fprintf(stderr, "error: int8 ISA '%s' is unknown or not supported here\n",
                       s.c_str());
          return 2;
        }
      }
    } else if (arg == "--threads") {
      threads.clear();
      for (const std::string& s : bench::split(next(), ','))
        threads.push_back(std::atoi(s.c_str()));
    } else if (arg == "--shape") {
      const std::vector<std::string> d = bench::split(next(), 'x');
      if (d.size() != 3) {
        std::fprintf(stderr, "error: --shape wants MxNxK\n");
        return 2;
      }
      shapes.push_back(
          {std::atoll(d[0].c_str()), std::atoll(d[1].c_str()), std::atoll(d[2].c_str()), "custom"});
    } else if (arg == "--min-time") {
      min_time = std::atof(next().c_str());
    } else if (arg == "--no-conv") {
      conv = false;
    } else if (arg == "--exact") {
      exact = true;
    } else {
      std::fprintf(stderr,
                   "usage: qgemm_bench [--qisa LIST|all] [--threads 1,2] [--shape MxNxK]"
                   " [--min-time S] [--exact]\n");
      return 2;
    }
  }
  if (shapes.empty()) shapes.assign(std::begin(kDefaultShapes), std::end(kDefaultShapes));

  std::printf("%-6s %-5s %-5s %-11s %3s %9s %9s %9s %7s  %s\n", "M", "N", "K", "qisa", "thr",
              "int8_GOPS", "best", "fp32_GF/s", "speedup", "shape");
  std::mt19937 rng(1);
  for (const BenchShape& s : shapes) {
    std::vector<uint8_t> a(static_cast<size_t>(s.m * s.k));
    std::vector<int8_t> b(static_cast<size_t>(s.k * s.n));
    std::vector<float> af(a.size()), bf(b.size());
    for (size_t i = 0; i < a.size(); ++i) af[i] = a[i] = static_cast<uint8_t>(rng() % 256);
    // Small weights (|b| <= 64) never saturate vpmaddubsw; --exact uses the full s8 range.
    for (size_t i = 0; i < b.size(); ++i)
      bf[i] = b[i] = static_cast<int8_t>(exact ? static_cast<int>(rng() % 255) - 127
                                               : static_cast<int>(rng() % 129) - 64);
    std::vector<int32_t> bias(static_cast<size_t>(s.n), 7);
    std::vector<float> scale(static_cast<size_t>(s.n), 1e-4f), biasf(static_cast<size_t>(s.n));
    std::vector<uint8_t> y(static_cast<size_t>(s.m * s.n));
    std::vector<float> yf(static_cast<size_t>(s.m * s.n));
    QuantOutput out;
    out.scale = scale.data();
    out.zero_point = 3;
    const PackedB fb = pack_b(bf.data(), s.k, s.n, s.n, false, best_isa());
    const double ops = 2.0 * static_cast<double>(s.m * s.n * s.k);
    for (int t : threads) {
      ThreadPool pool(t);
      double fmed = 0, fbest = 0;
      time_it([&] { gemm(s.m, af.data(), s.k, fb, biasf.data(), yf.data(), s.n, {}, &pool); },
              min_time, &fmed, &fbest);
      for (QIsa q : qisas) {
        const PackedQB qb = pack_qb(b.data(), s.k, s.n, s.n, false, q);
        double med = 0, best = 0;
        time_it(
            [&] { qgemm_u8(s.m, a.data(), s.k, 128, qb, bias.data(), out, y.data(), s.n, &pool); },
            min_time, &med, &best);
        std::printf("%-6lld %-5lld %-5lld %-11s %3d %9.1f %9.1f %9.1f %6.2fx  %s%s\n",
                    static_cast<long long>(s.m), static_cast<long long>(s.n),
                    static_cast<long long>(s.k), qisa_name(q), t, ops / med * 1e-9,
                    ops / best * 1e-9, ops / fmed * 1e-9, fmed / med, s.what,
                    qb.exact() ? " (exact path)" : "");
      }
    }
  }
  if (!conv) return 0;
  std::printf("\n%-4s %-4s %-3s %-4s %-11s %3s %9s %9s %9s %7s  %s\n", "C", "M", "k", "in", "qisa",
              "thr", "int8_GOPS", "best", "fp32_GF/s", "speedup", "conv");
  for (const ConvShape& cs : kConvShapes) {
    Conv2dParams p;
    p.in_channels = cs.c;
    p.out_channels = cs.m;
    p.kernel_h = p.kernel_w = cs.k;
    p.stride_h = p.stride_w = cs.stride;
    Conv2dSpatial sp;
    sp.in_h = sp.in_w = cs.in;
    sp.pad_top = sp.pad_left = cs.pad;
    sp.out_h = sp.out_w = (cs.in + 2 * cs.pad - cs.k) / cs.stride + 1;
    const size_t wn = static_cast<size_t>(cs.m * cs.c * cs.k * cs.k);
    std::vector<int8_t> w(wn);
    std::vector<float> wf(wn), bf(static_cast<size_t>(cs.m), 0.5f);
    for (size_t i = 0; i < wn; ++i)
      wf[i] = w[i] = static_cast<int8_t>(static_cast<int>(rng() % 129) - 64);
    std::vector<int32_t> bias(static_cast<size_t>(cs.m), 3);
    std::vector<float> scale(static_cast<size_t>(cs.m), 1e-4f);
    const size_t xn = static_cast<size_t>(cs.in * cs.in * cs.c);
    std::vector<uint8_t> x(xn);
    std::vector<float> xf(xn);
    for (size_t i = 0; i < xn; ++i) xf[i] = x[i] = static_cast<uint8_t>(rng() % 256);
    const size_t yn = static_cast<size_t>(sp.out_h * sp.out_w * cs.m);
    std::vector<uint8_t> y(yn);
    std::vector<float> yf(yn);
    QuantOutput out;
    out.scale = scale.data();
    const double ops = 2.0 * static_cast<double>(yn) * static_cast<double>(cs.c * cs.k * cs.k);
    auto fconv = ConvNhwcF32::create(p, wf.data(), bf.data(), best_isa());
    if (!fconv.is_ok() || !(*fconv)->prepare(sp).is_ok()) return 1;
    for (int t : threads) {
      ThreadPool pool(t);
      double fmed = 0, fbest = 0;
      time_it([&] { (void)(*fconv)->run(xf.data(), nullptr, yf.data(), 1, sp, &pool); }, min_time,
              &fmed, &fbest);
      for (QIsa q : qisas) {
        auto qconv = QConvNhwcU8::create(p, w.data(), bias.data(), 128, q);
        if (!qconv.is_ok() || !(*qconv)->prepare(sp).is_ok()) return 1;
        double med = 0, best = 0;
        time_it([&] { (void)(*qconv)->run_u8(x.data(), out, y.data(), 1, sp, &pool); }, min_time,
                &med, &best);
        std::printf("%-4lld %-4lld %-3lld %-4lld %-11s %3d %9.1f %9.1f %9.1f %6.2fx  %s\n",
                    static_cast<long long>(cs.c), static_cast<long long>(cs.m),
                    static_cast<long long>(cs.k), static_cast<long long>(cs.in), qisa_name(q), t,
                    ops / med * 1e-9, ops / best * 1e-9, ops / fmed * 1e-9, fmed / med, cs.what);
      }
    }
  }
  return 0;
}
