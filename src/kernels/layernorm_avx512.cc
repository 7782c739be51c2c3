// The avx512 variant of the layernorm rows (layernorm_impl.h).
#define BRINK_SIMD_AVX512
#include "kernels/layernorm_impl.h"
