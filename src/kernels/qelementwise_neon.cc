// The aarch64 entries of the quantized elementwise kernels (qelementwise.h): for now the
// portable loops (plain C++, which the compiler vectorizes with NEON), so that dispatch on
// aarch64 finds every function; hand-written NEON variants are still to come.
#include <cstddef>
#include <cstdint>

#include "kernels/qelementwise.h"

namespace brink::kernels {

using qelementwise_internal::QAddParams;

namespace portable {
void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const QAddParams& p);
void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero, uint8_t* y);
void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero, int8_t* y);
void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero, float* y);
void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero, float* y);
void minmax_run(const float* x, size_t n, float* lo, float* hi);
}  // namespace portable

namespace neon {
void qadd_u8_run(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const QAddParams& p) {
  portable::qadd_u8_run(a, b, y, n, p);
}
void quantize_u8_run(const float* x, size_t n, float scale, int32_t zero, uint8_t* y) {
  portable::quantize_u8_run(x, n, scale, zero, y);
}
void quantize_s8_run(const float* x, size_t n, float scale, int32_t zero, int8_t* y) {
  portable::quantize_s8_run(x, n, scale, zero, y);
}
void dequantize_u8_run(const uint8_t* x, size_t n, float scale, int32_t zero, float* y) {
  portable::dequantize_u8_run(x, n, scale, zero, y);
}
void dequantize_s8_run(const int8_t* x, size_t n, float scale, int32_t zero, float* y) {
  portable::dequantize_s8_run(x, n, scale, zero, y);
}
void minmax_run(const float* x, size_t n, float* lo, float* hi) {
  portable::minmax_run(x, n, lo, hi);
}
}  // namespace neon

}  // namespace brink::kernels
