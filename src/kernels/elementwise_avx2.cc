// The avx2 variant of the binary and reduction loops (elementwise_impl.h).
#define BRINK_SIMD_AVX2
#include "kernels/elementwise_impl.h"
