// Quantized (u8) pooling over NHWC: global average pool with requantization (com.microsoft
// QLinearGlobalAveragePool) and 2-D max pool (MaxPool on u8 tensors: no requantization, max
// commutes with the monotone dequantization).
//
// Exact formulas (all ISAs agree bit for bit):
//   qglobal_avg_pool_nhwc_u8: S = sum_p x[b][p][c] - pixels * x_zero      (exact int64)
//                             m = x_scale / (float(pixels) * y_scale)     (once, in float)
//                             y = clamp(nearbyint(float(S) * m) + y_zero, 0, 255)
//   max_pool2d_nhwc_u8:       the max over the window's taps inside the image (padding never
//                             wins); a window with no tap inside the image gives 0.
// Current state: one loop nest in plain C++ over channels (the compiler vectorizes the
// channel loops); the `isa` argument is accepted for the dispatching variants to come.
#pragma once

#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/pool.h"  // Pool2dShape

namespace brink::kernels {

// x: [batch, pixels, channels] u8; y: [batch, channels] u8.
void qglobal_avg_pool_nhwc_u8(int64_t batch, int64_t pixels, int64_t channels, const uint8_t* x,
                              float x_scale, int32_t x_zero, uint8_t* y, float y_scale,
                              int32_t y_zero, ThreadPool* pool, Isa isa = best_isa());

// x: [N, in_h, in_w, C], y: [N, out_h, out_w, C] (pool.h's Pool2dShape, resolved pads).
void max_pool2d_nhwc_u8(const Pool2dShape& s, const uint8_t* x, uint8_t* y, ThreadPool* pool,
                        Isa isa = best_isa());

}  // namespace brink::kernels
