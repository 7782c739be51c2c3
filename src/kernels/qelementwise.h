// Quantized elementwise kernels: u8 Add with requantization (the residual Add of quantized
// ResNets / MobileNetV2, QLinearAdd), per-tensor QuantizeLinear / DequantizeLinear, and
// DynamicQuantizeLinear (range scan + quantize in one call).
//
// Exact formulas (every ISA variant computes them bit for bit; the tests compare for
// equality). All float arithmetic is IEEE single precision, one rounding per operation, no
// fused multiply-add; nearbyint rounds half to even:
//
//   qadd_u8:       fa = a_scale / y_scale, fb = b_scale / y_scale            (once, in float)
//                  t  = float(a - a_zero) * fa + float(b - b_zero) * fb
//                  y  = clamp(nearbyint(t) + y_zero, min, max)
//   quantize:      t  = x / scale;  y = saturate(nearbyint(t) + zero)  (to [0,255] / [-128,127])
//                  NaN x (or 0/0) gives the zero point (saturated); +-inf saturates.
//   dequantize:    y  = float(x - zero) * scale
//   dynamic (u8):  lo = min(0, min x), hi = max(0, max x) over the non-NaN elements;
//                  scale = (hi - lo) / 255; zero = nearbyint(clamp(-lo / scale, 0, 255))
//                  (a NaN there gives 0); then quantize as above. An input with no nonzero
//                  finite range (all zeros, all NaN, empty) gives scale 0, zero 0, y all 0.
//                  An infinite element makes scale infinite (then finite x give the zero
//                  point): the formula followed through, as ONNX Runtime does.
// Large t are clamped to +-65536 before rounding, which changes nothing after saturation.
// Zero points must lie in [-2^30, 2^30] (u8/s8 tensors hold [0,255] / [-128,127] anyway).
//
// Every function splits n elements over `pool` (nullptr: the calling thread) in chunks of
// multiples of 64 when n is large, allocates nothing (dynamic_quantize_u8 excepted: a few
// floats per task), and accepts y == an input (in place). `isa` picks the variant; one this
// machine lacks runs the portable variant.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {

void qadd_u8(const uint8_t* a, float a_scale, int32_t a_zero, const uint8_t* b, float b_scale,
             int32_t b_zero, uint8_t* y, float y_scale, int32_t y_zero, uint8_t min, uint8_t max,
             int64_t n, ThreadPool* pool, Isa isa = best_isa());

void quantize_f32_u8(const float* x, int64_t n, float scale, int32_t zero, uint8_t* y,
                     ThreadPool* pool, Isa isa = best_isa());
void quantize_f32_s8(const float* x, int64_t n, float scale, int32_t zero, int8_t* y,
                     ThreadPool* pool, Isa isa = best_isa());
void dequantize_u8_f32(const uint8_t* x, int64_t n, float scale, int32_t zero, float* y,
                       ThreadPool* pool, Isa isa = best_isa());
void dequantize_s8_f32(const int8_t* x, int64_t n, float scale, int32_t zero, float* y,
                       ThreadPool* pool, Isa isa = best_isa());

// DynamicQuantizeLinear: writes y [n], *scale and *zero (see the formula above).
void dynamic_quantize_u8(const float* x, int64_t n, uint8_t* y, float* scale, uint8_t* zero,
                         ThreadPool* pool, Isa isa = best_isa());

namespace qelementwise_internal {

struct QAddParams {
  int32_t a_zero, b_zero, y_zero;
  float fa, fb;  // a_scale / y_scale, b_scale / y_scale
  uint8_t min, max;
};

}  // namespace qelementwise_internal

}  // namespace brink::kernels
