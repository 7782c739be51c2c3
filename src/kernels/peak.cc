#include "kernels/peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace brink::kernels {

namespace peak_detail {

double fma_loop_portable(long iters) {
  // 16 chains of 8 lanes; g++ vectorizes the j loops.
  float acc[16][8];
  volatile float seed = 0.5f;
  const float x = 0.999999f * seed * 2.0f, y = 1e-6f * seed;
  for (auto& row : acc)
    for (float& v : row) v = seed;
  for (long i = 0; i < iters; ++i)
    for (auto& row : acc)
      for (float& v : row) v = v * x + y;
  float sum = 0.0f;
  for (auto& row : acc)
    for (float v : row) sum += v;
  volatile float sink = sum;
  (void)sink;
  return static_cast<double>(iters) * 16 * 8 * 2;
}

}  // namespace peak_detail

namespace {

using LoopFn = double (*)(long);

LoopFn loop_for(Isa isa) {
  isa = usable_isa(isa);
  switch (isa) {
#if BRINK_BUILD_AVX512
    case Isa::kAvx512:
      return peak_detail::fma_loop_avx512;
#endif
#if BRINK_BUILD_AVX2
    case Isa::kAvx2:
      return peak_detail::fma_loop_avx2;
#endif
#if BRINK_BUILD_NEON
    case Isa::kNeon:
      return peak_detail::fma_loop_neon;
#endif
    default:
      break;
  }
  BRINK_RETURN_PORTABLE(peak_detail::fma_loop_portable);
}

}  // namespace

double measure_fp32_peak_gflops(int threads, Isa isa, double seconds) {
  if (threads < 1) threads = 1;
  const LoopFn loop = loop_for(isa);
  using Clock = std::chrono::steady_clock;
  // The loop runs in chunks of ~0.1 ms, each timed on its own, and a thread's rate is the
  // 90th percentile of its chunks' rates: a chunk during which the OS ran something else on
  // this core (a shared or loaded machine) is slow and falls out, without needing an idle
  // machine for the whole measurement.
  constexpr long kChunk = 1 << 13;
  for (int w = 0; w < 50; ++w) loop(kChunk);  // warm up: wakes the wide units, lets clocks settle
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> rates(static_cast<size_t>(threads), 0.0);
  auto body = [&](int t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    std::vector<double> chunk_rates;
    chunk_rates.reserve(static_cast<size_t>(seconds * 2e4) + 16);
    const auto start = Clock::now();
    auto last = start;
    do {
      const double flops = loop(kChunk);
      const auto now = Clock::now();
      const double dt = std::chrono::duration<double>(now - last).count();
      if (dt > 0.0) chunk_rates.push_back(flops / dt);
      last = now;
    } while (std::chrono::duration<double>(last - start).count() < seconds);
    std::sort(chunk_rates.begin(), chunk_rates.end());
    rates[static_cast<size_t>(t)] =
        chunk_rates.empty() ? 0.0 : chunk_rates[chunk_rates.size() * 9 / 10];
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(body, t);
  while (ready.load() < threads - 1) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  body(0);
  for (auto& w : workers) w.join();
  double total = 0.0;
  for (double r : rates) total += r;
  return total / 1e9;
}

}  // namespace brink::kernels
