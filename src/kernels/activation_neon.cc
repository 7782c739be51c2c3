// The neon variant of the unary kernel (activation_math.h).
#define BRINK_SIMD_NEON
#include "kernels/activation_math.h"
#include "kernels/elementwise.h"

namespace brink::kernels::neon {

void unary_f32(const Unary& u, const float* x, float* y, size_t n) {
  unary_f32_impl(u, x, y, n);
}

}  // namespace brink::kernels::neon
