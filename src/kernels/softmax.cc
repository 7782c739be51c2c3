// Softmax driver (rows split over threads) and the portable variant of softmax_impl.h.
#define BRINK_SIMD_PORTABLE
#include "kernels/softmax.h"

#include <algorithm>

#include "kernels/softmax_impl.h"

namespace brink::kernels {

void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log, Isa isa,
                      ThreadPool* pool) {
  if (rows <= 0 || n <= 0) return;
  isa = usable_isa(isa);
  int64_t tasks = 1;
  if (pool != nullptr && pool->num_threads() > 1 && rows * n >= kParallelMinElements)
    tasks = std::min<int64_t>(rows, 4 * static_cast<int64_t>(pool->num_threads()));
  auto row = [&](const float* xr, float* yr) {
    BRINK_ISA_DISPATCH(isa, softmax_row_f32, xr, yr, static_cast<size_t>(n), log)
  };
  parallel_for(pool, tasks, [&](int64_t t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) row(x + r * n, y + r * n);
  });
}

float softmax_row_unnormalized(float* s, size_t n, float scale, const float* mask,
                               bool mask_is_scalar, Isa isa) {
  BRINK_ISA_DISPATCH(isa, softmax_row_unnormalized_f32, s, n, scale, mask, mask_is_scalar)
}

}  // namespace brink::kernels
