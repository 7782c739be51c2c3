// Pooling kernels: the split over threads, dispatch, and the portable variant of
// pool_impl.h (one lane of plain C++: the fallback, not a fast path).
#define BRINK_SIMD_PORTABLE
#include "kernels/pool.h"

#include <algorithm>

#include "kernels/pool_impl.h"

namespace brink::kernels {

namespace portable {
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
}  // namespace portable

namespace {

// How many tasks to split `units` equal pieces of work (`work` element-visits in all) into:
// about 4 per thread, so that dynamic claiming evens out, but none below ~16k visits, where
// handing a task to another thread costs more than it saves.
int64_t task_count(ThreadPool* pool, int64_t units, int64_t work) {
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  if (threads <= 1) return 1;
  return std::clamp<int64_t>(work / 16384, 1, std::min<int64_t>(units, int64_t{4} * threads));
}

void rows(Isa isa, PoolOp op, const Pool2dShape& s, bool cip, const float* x, float* y, int64_t r0,
          int64_t r1) {
  BRINK_ISA_DISPATCH(isa, pool2d_nhwc_rows, op, s, cip, x, y, r0, r1)
}
void nhwc_chunk(Isa isa, PoolOp op, int64_t pixels, int64_t c, const float* x, float* y, int64_t c0,
                int64_t c1) {
  BRINK_ISA_DISPATCH(isa, global_pool_nhwc_chunk, op, pixels, c, x, y, c0, c1)
}
void nchw_planes(Isa isa, PoolOp op, int64_t pixels, const float* x, float* y, int64_t p0,
                 int64_t p1) {
  BRINK_ISA_DISPATCH(isa, global_pool_nchw_planes, op, pixels, x, y, p0, p1)
}

}  // namespace

void pool2d_nhwc_f32(PoolOp op, const Pool2dShape& s, bool count_include_pad, const float* x,
                     float* y, Isa isa, ThreadPool* pool) {
  isa = usable_isa(isa);
  const int64_t total_rows = s.batch * s.out_h;
  if (total_rows <= 0 || s.out_w <= 0 || s.channels <= 0) return;
  const int64_t tasks =
      task_count(pool, total_rows, total_rows * s.out_w * s.channels * s.kernel_h * s.kernel_w);
  parallel_for(pool, tasks, [&](int64_t t) {
    rows(isa, op, s, count_include_pad, x, y, total_rows * t / tasks, total_rows * (t + 1) / tasks);
  });
}

void global_pool_nhwc_f32(PoolOp op, int64_t batch, int64_t pixels, int64_t channels,
                          const float* x, float* y, Isa isa, ThreadPool* pool) {
  isa = usable_isa(isa);
  if (batch <= 0 || channels <= 0) return;
  // Tasks are (image, run of channel groups); a group is 64 channels, a multiple of every
  // variant's vector, so only the last group of an image has a partial vector.
  constexpr int64_t kGroup = 64;
  const int64_t groups = (channels + kGroup - 1) / kGroup;
  const int64_t per_image =
      std::max<int64_t>(1, task_count(pool, batch * groups, batch * pixels * channels) / batch);
  const int64_t chunks = std::min(groups, per_image);
  parallel_for(pool, batch * chunks, [&](int64_t t) {
    const int64_t n = t / chunks, k = t % chunks;
    const int64_t c0 = std::min(channels, groups * k / chunks * kGroup);
    const int64_t c1 = std::min(channels, groups * (k + 1) / chunks * kGroup);
    nhwc_chunk(isa, op, pixels, channels, x + n * pixels * channels, y + n * channels, c0, c1);
  });
}

void global_pool_nchw_f32(PoolOp op, int64_t planes, int64_t pixels, const float* x, float* y,
                          Isa isa, ThreadPool* pool) {
  isa = usable_isa(isa);
  if (planes <= 0) return;
  const int64_t tasks = task_count(pool, planes, planes * pixels);
  parallel_for(pool, tasks, [&](int64_t t) {
    nchw_planes(isa, op, pixels, x, y, planes * t / tasks, planes * (t + 1) / tasks);
  });
}

}  // namespace brink::kernels
