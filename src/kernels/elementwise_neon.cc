// The neon variant of the binary and reduction loops (elementwise_impl.h).
#define BRINK_SIMD_NEON
#include "kernels/elementwise_impl.h"
