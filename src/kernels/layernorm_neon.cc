// The neon variant of the layernorm rows (layernorm_impl.h).
#define BRINK_SIMD_NEON
#include "kernels/layernorm_impl.h"
