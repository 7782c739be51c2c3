// Fast float32 LayerNormalization over contiguous rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"

namespace brink::kernels {

// For each of `rows` rows of n values (n > 0):
//   y = (x - mean) * inv_std * scale + bias,  inv_std = 1 / sqrt(mean((x - mean)^2) + eps)
// with scale and bias n values each (bias may be nullptr). The variance is the mean of
// squared deviations (two passes over the row, which is in L1): never negative, no
// cancellation. mean_out / inv_std_out (nullptr when not wanted) get one value per row.
// y may be x.
void layernorm_rows_f32(const float* x, float* y, int64_t rows, int64_t n, const float* scale,
                        const float* bias, float eps, float* mean_out, float* inv_std_out, Isa isa,
                        ThreadPool* pool);

BRINK_DECLARE_PER_ISA(void layernorm_row_f32(const float* x, float* y, size_t n, const float* scale,
                                             const float* bias, float eps, float* mean_out,
                                             float* inv_std_out))

}  // namespace brink::kernels
