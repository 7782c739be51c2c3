// The neon variant of the pooling kernels (pool_impl.h).
#define BRINK_SIMD_NEON
#include "kernels/pool_impl.h"

namespace brink::kernels::neon {

void pool2d_nhwc_rows(PoolOp op, const Pool2dShape& s, bool count_include_pad, const float* x,
                      float* y, int64_t row_begin, int64_t row_end) {
  pool2d_nhwc_rows_impl(op, s, count_include_pad, x, y, row_begin, row_end);
}
void global_pool_nhwc_chunk(PoolOp op, int64_t pixels, int64_t channels, const float* x, float* y,
                            int64_t c_begin, int64_t c_end) {
  global_pool_nhwc_chunk_impl(op, pixels, channels, x, y, c_begin, c_end);
}
void global_pool_nchw_planes(PoolOp op, int64_t pixels, const float* x, float* y,
                             int64_t plane_begin, int64_t plane_end) {
  global_pool_nchw_planes_impl(op, pixels, x, y, plane_begin, plane_end);
}

}  // namespace brink::kernels::neon
