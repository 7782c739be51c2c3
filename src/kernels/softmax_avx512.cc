// The avx512 variant of the softmax rows (softmax_impl.h).
#define BRINK_SIMD_AVX512
#include "kernels/softmax_impl.h"
