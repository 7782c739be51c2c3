// The machine's measured FP32 peak: what `brink bench --peak` reports and what "% of peak"
// in benchmarks and profiles is relative to.
//
// Each thread runs a loop of independent FMA chains on registers only (no memory traffic,
// enough chains to cover FMA latency x throughput on current cores: 12 for AVX-512 and AVX2,
// 16 for NEON) for about `seconds`; the threads run at the same time, so turbo and shared
// power limits are those of a loaded machine. A multiply-add counts as 2 flops per lane.
#pragma once

#include "core/cpu_features.h"

namespace brink::kernels {

// GFLOP/s of `threads` threads (1 or more) together with `isa`'s widest FMA (kPortable:
// whatever the compiler makes of a plain multiply-add loop). An unsupported isa measures
// the portable loop.
double measure_fp32_peak_gflops(int threads, Isa isa, double seconds = 0.2);

namespace peak_detail {
// `iters` rounds of the ISA's FMA chains; returns the flops done.
double fma_loop_portable(long iters);
#if defined(__x86_64__)
double fma_loop_avx2(long iters);
double fma_loop_avx512(long iters);
#endif
#if defined(__aarch64__)
double fma_loop_neon(long iters);
#endif
}  // namespace peak_detail

}  // namespace brink::kernels
