// The neon variant of the softmax rows (softmax_impl.h).
#define BRINK_SIMD_NEON
#include "kernels/softmax_impl.h"
