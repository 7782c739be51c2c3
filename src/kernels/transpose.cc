#include "kernels/transpose.h"

#include <algorithm>

namespace brink::kernels {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// n planes of rows x cols into n planes of cols x rows. Tasks take bands of destination
// rows (source columns), so each writes one contiguous stretch and no cache line is
// written by two threads; a plane with few columns is split by bands of source rows.
template <class T>
void transpose_planes(const T* src, T* dst, int64_t n, int64_t rows, int64_t cols,
                      ThreadPool* pool) {
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  const bool parallel = threads > 1 && n * rows * cols >= 16384;
  const bool by_cols = cols >= 16 * threads || !parallel;
  const int64_t span = by_cols ? cols : rows;
  const int64_t bands = parallel ? std::min<int64_t>(span, 4 * threads) : 1;
  const int64_t band_len = ceil_div(span, bands);
  parallel_for(pool, n * bands, [&](int64_t task) {
    const int64_t plane = task / bands, band = task % bands;
    const int64_t b0 = band * band_len, b1 = std::min(span, b0 + band_len);
    if (b0 >= b1) return;
    const int64_t r0 = by_cols ? 0 : b0, r1 = by_cols ? rows : b1;
    const int64_t c0 = by_cols ? b0 : 0, c1 = by_cols ? b1 : cols;
    const T* s = src + plane * rows * cols;
    T* d = dst + plane * rows * cols;
    if (rows <= 4) {  // an image's few channels: gather them per pixel
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) d[c * rows + r] = s[r * cols + c];
      return;
    }
    constexpr int64_t kTile = 32;
    for (int64_t cc = c0; cc < c1; cc += kTile) {
      const int64_t ce = std::min(c1, cc + kTile);
      for (int64_t rr = r0; rr < r1; rr += kTile) {
        const int64_t re = std::min(r1, rr + kTile);
        for (int64_t c = cc; c < ce; ++c)
          for (int64_t r = rr; r < re; ++r) d[c * rows + r] = s[r * cols + c];
      }
    }
  });
}

}  // namespace

void transpose_planes_f32(const float* src, float* dst, int64_t n, int64_t rows, int64_t cols,
                          ThreadPool* pool) {
  transpose_planes(src, dst, n, rows, cols, pool);
}

void transpose_planes_u8(const uint8_t* src, uint8_t* dst, int64_t n, int64_t rows, int64_t cols,
                         ThreadPool* pool) {
  transpose_planes(src, dst, n, rows, cols, pool);
}

}  // namespace brink::kernels
