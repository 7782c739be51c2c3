// The avx2 variant of the layernorm rows (layernorm_impl.h).
#define BRINK_SIMD_AVX2
#include "kernels/layernorm_impl.h"
