// LayerNorm driver (rows split over threads) and the portable variant of layernorm_impl.h.
#define BRINK_SIMD_PORTABLE
#include "kernels/layernorm.h"

#include <algorithm>

#include "kernels/layernorm_impl.h"

namespace brink::kernels {

void layernorm_rows_f32(const float* x, float* y, int64_t rows, int64_t n, const float* scale,
                        const float* bias, float eps, float* mean_out, float* inv_std_out, Isa isa,
                        ThreadPool* pool) {
  if (rows <= 0 || n <= 0) return;
  isa = usable_isa(isa);
  int64_t tasks = 1;
  if (pool != nullptr && pool->num_threads() > 1 && rows * n >= kParallelMinElements)
    tasks = std::min<int64_t>(rows, 4 * static_cast<int64_t>(pool->num_threads()));
  parallel_for(pool, tasks, [&](int64_t t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * n;
      float* yr = y + r * n;
      float* mo = mean_out != nullptr ? mean_out + r : nullptr;
      float* io = inv_std_out != nullptr ? inv_std_out + r : nullptr;
      const size_t len = static_cast<size_t>(n);
      [&]() { BRINK_ISA_DISPATCH(isa, layernorm_row_f32, xr, yr, len, scale, bias, eps, mo, io) }();
    }
  });
}

}  // namespace brink::kernels
