// The AVX-512 variant of the depthwise kernel (depthwise_conv_impl.h): 16 channels per vector.
#define BRINK_SIMD_AVX512
#include "kernels/depthwise_conv_impl.h"

namespace brink::kernels::avx512 {

void depthwise_conv_tile(const depthwise_internal::Packed& p, const DepthwiseConvShape& s,
                         const float* x, const float* residual, float* y,
                         const depthwise_internal::Tile& t) {
  depthwise_conv_tile_impl(p, s, x, residual, y, t);
}

}  // namespace brink::kernels::avx512
