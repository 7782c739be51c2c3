// The avx512 variant of the binary and reduction loops (elementwise_impl.h).
#define BRINK_SIMD_AVX512
#include "kernels/elementwise_impl.h"
