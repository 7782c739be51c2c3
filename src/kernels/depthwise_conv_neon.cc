// The NEON variant of the depthwise kernel (depthwise_conv_impl.h): 4 channels per vector.
#define BRINK_SIMD_NEON
#include "kernels/depthwise_conv_impl.h"

namespace brink::kernels::neon {

void depthwise_conv_tile(const depthwise_internal::Packed& p, const DepthwiseConvShape& s,
                         const float* x, const float* residual, float* y,
                         const depthwise_internal::Tile& t) {
  depthwise_conv_tile_impl(p, s, x, residual, y, t);
}

}  // namespace brink::kernels::neon
