// The avx2 variant of the softmax rows (softmax_impl.h).
#define BRINK_SIMD_AVX2
#include "kernels/softmax_impl.h"
