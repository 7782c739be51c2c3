// Fast float32 Softmax / LogSoftmax over contiguous rows (the axis is the last one, or the
// flattened tail of opset < 13), and the scaled, masked softmax row that attention uses.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"

namespace brink::kernels {

// y = softmax(x) (or log_softmax) of each of `rows` rows of n values (n > 0). y may be x.
// Max-subtracted like the reference; a row holding NaN gives NaN, a row of -inf gives NaN
// (0/0), as the reference does.
void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log, Isa isa,
                      ThreadPool* pool);

BRINK_DECLARE_PER_ISA(void softmax_row_f32(const float* x, float* y, size_t n, bool log))
// In place on s[0, n): s = exp(t - max(t)) with t = s * scale + mask, where mask is a row of
// n values, or one value for the whole row when mask_is_scalar, or absent (nullptr).
// Returns sum(s), so the caller can fold the division into what it does next.
BRINK_DECLARE_PER_ISA(float softmax_row_unnormalized_f32(float* s, size_t n, float scale,
                                                         const float* mask, bool mask_is_scalar))

// Dispatches softmax_row_unnormalized_f32 (isa must be usable_isa()).
float softmax_row_unnormalized(float* s, size_t n, float scale, const float* mask,
                               bool mask_is_scalar, Isa isa);

}  // namespace brink::kernels
