// Fast float32 elementwise kernels: unary functions (activation.h), broadcasting binary
// arithmetic, and row/column sums, with the work split over a ThreadPool for large tensors.
//
// Each kernel is written once against elementwise_simd.h and compiled per ISA (files
// *_avx512.cc, *_avx2.cc, *_neon.cc and the portable *.cc); the `isa` argument picks the
// variant (one the machine lacks falls back to portable, so a stale Isa cannot crash).
//
// Aliasing: the output may be the same array as an input that has the output's full shape
// (in-place execution). Every loop here reads an element before it writes the same output
// element and never reads it again, and the threads own disjoint output ranges.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "brink/tensor.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace brink::kernels {

// Below this many elements an elementwise op runs on the calling thread: waking a worker
// costs more than the op.
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

// Tests and benchmarks compare the fast kernels with the reference kernels in src/ops: while
// disabled, the ops that have a fast float32 path (elementwise, Softmax, LayerNorm, Reduce,
// brink.Attention, ...) prepare their reference kernel instead. Read at prepare time only;
// enabled unless the environment variable BRINK_REFERENCE_KERNELS=1 is set.
void set_fast_kernels_enabled(bool enabled);
bool fast_kernels_enabled();

// `isa` if this machine can run it, else the fallback variant (core/cpu_features.h).
using brink::usable_isa;

// ---- unary ------------------------------------------------------------------------------

// unary_f32 over n elements, split over `pool` when n >= kParallelMinElements.
void unary_f32_parallel(const Unary& u, const float* x, float* y, int64_t n, Isa isa,
                        ThreadPool* pool);

// ---- binary -----------------------------------------------------------------------------

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMax,    // NaN in either operand gives NaN (numpy.maximum)
  kMin,    // likewise
  kPRelu,  // a < 0 ? a * b : a (b is the slope)
};

// How the operands of one contiguous run advance: both element by element, or one of them
// stays on a single value.
enum class BinaryMode : uint8_t { kVecVec, kVecScalar, kScalarVec };

// y[i] = op(a[i or 0], b[i or 0]) for i < n, as `mode` says.
using BinaryRunFn = void (*)(const float* a, const float* b, float* y, size_t n);
BinaryRunFn binary_run_fn(BinaryOp op, BinaryMode mode, Isa isa);

constexpr int kMaxBroadcastDims = 8;

// How to walk two operands broadcast (NumPy rules) to the output: output dims of size 1 are
// dropped and neighbouring dims merged wherever both operands allow, so that the innermost
// merged dim is one contiguous run in which each operand advances by one or stays put.
// [N,C,H,W] + [1,C,1,1] becomes N*C runs of H*W against one value each; [B,S,D] + [D]
// becomes B*S runs of D against the same row; same shapes become one run.
struct BinaryBroadcast {
  int64_t numel = 0;
  int64_t inner = 1;  // run length
  bool a_steps = true, b_steps = true;
  int outer_rank = 0;  // merged dims outside the run, outermost first
  std::array<int64_t, kMaxBroadcastDims> outer{};
  std::array<int64_t, kMaxBroadcastDims> a_stride{}, b_stride{};  // elements, 0 = broadcast
};

// False when the shapes do not broadcast to `out` or need more than kMaxBroadcastDims merged
// dims (callers then use the reference kernel). Does not allocate.
bool plan_binary_broadcast(const Shape& a, const Shape& b, const Shape& out, BinaryBroadcast* plan);
void binary_broadcast_f32(BinaryOp op, const BinaryBroadcast& plan, const float* a, const float* b,
                          float* y, Isa isa, ThreadPool* pool);

// ---- reductions -------------------------------------------------------------------------

// y[r] = sum(x[r * n, (r + 1) * n)) / divisor for r < rows (n > 0).
void reduce_rows_f32(const float* x, float* y, int64_t rows, int64_t n, float divisor, Isa isa,
                     ThreadPool* pool);
// x viewed as [outer, n, inner]: y[o * inner + k] = sum_j x[(o * n + j) * inner + k] / divisor.
void reduce_cols_f32(const float* x, float* y, int64_t outer, int64_t n, int64_t inner,
                     float divisor, Isa isa, ThreadPool* pool);

// ---- per-ISA entry points (used by the dispatchers in the kernels' .cc files) ------------

// Declares `decl` in every ISA namespace; only the ones built for this architecture are
// defined, and BRINK_ISA_DISPATCH only calls those.
#define BRINK_DECLARE_PER_ISA(decl) \
  namespace portable {              \
  decl;                             \
  }                                 \
  namespace avx2 {                  \
  decl;                             \
  }                                 \
  namespace avx512 {                \
  decl;                             \
  }                                 \
  namespace neon {                  \
  decl;                             \
  }

// return <isa>::fn(args...) for the variant `isa` names (which must be usable_isa()). Only the
// variants this build contains are referenced (BRINK_BUILD_*, core/cpu_features.h).
#if BRINK_BUILD_AVX512
#define BRINK_DISPATCH_CASE_AVX512(fn, ...) \
  case Isa::kAvx512:                        \
    return avx512::fn(__VA_ARGS__);
#else
#define BRINK_DISPATCH_CASE_AVX512(fn, ...)
#endif
#if BRINK_BUILD_AVX2
#define BRINK_DISPATCH_CASE_AVX2(fn, ...) \
  case Isa::kAvx2:                        \
    return avx2::fn(__VA_ARGS__);
#else
#define BRINK_DISPATCH_CASE_AVX2(fn, ...)
#endif
#if BRINK_BUILD_NEON
#define BRINK_DISPATCH_CASE_NEON(fn, ...) \
  case Isa::kNeon:                        \
    return neon::fn(__VA_ARGS__);
#else
#define BRINK_DISPATCH_CASE_NEON(fn, ...)
#endif
#define BRINK_ISA_DISPATCH(isa, fn, ...)                \
  switch (isa) {                                        \
    BRINK_DISPATCH_CASE_AVX512(fn, __VA_ARGS__)         \
    BRINK_DISPATCH_CASE_AVX2(fn, __VA_ARGS__)           \
    BRINK_DISPATCH_CASE_NEON(fn, __VA_ARGS__)           \
    default:                                            \
      BRINK_RETURN_PORTABLE(portable::fn(__VA_ARGS__)); \
  }

BRINK_DECLARE_PER_ISA(void unary_f32(const Unary& u, const float* x, float* y, size_t n))
BRINK_DECLARE_PER_ISA(BinaryRunFn binary_run_fn(BinaryOp op, BinaryMode mode))
BRINK_DECLARE_PER_ISA(float sum_f32(const float* x, size_t n))
BRINK_DECLARE_PER_ISA(void add_to_f32(const float* x, float* acc, size_t n))

}  // namespace brink::kernels
