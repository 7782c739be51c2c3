// Quantized pooling (qpool.h): plain C++ loops over channels, split over threads.
#include "kernels/qpool.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace brink::kernels {

void qglobal_avg_pool_nhwc_u8(int64_t batch, int64_t pixels, int64_t channels, const uint8_t* x,
                              float x_scale, int32_t x_zero, uint8_t* y, float y_scale,
                              int32_t y_zero, ThreadPool* pool, Isa isa) {
  (void)isa;
  if (batch <= 0 || channels <= 0) return;
  const float m = x_scale / (static_cast<float>(pixels) * y_scale);
  parallel_for(batch * channels * pixels >= 65536 ? pool : nullptr, batch, [&](int64_t b) {
    std::vector<uint32_t> sum(static_cast<size_t>(channels), 0);
    const uint8_t* img = x + b * pixels * channels;
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t c = 0; c < channels; ++c) sum[static_cast<size_t>(c)] += img[p * channels + c];
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t s = int64_t{sum[static_cast<size_t>(c)]} - pixels * int64_t{x_zero};
      float t = static_cast<float>(s) * m;
      if (std::isnan(t)) t = 0.0f;
      t = std::nearbyint(std::clamp(t, -65536.0f, 65536.0f));
      y[b * channels + c] =
          static_cast<uint8_t>(std::clamp<int32_t>(static_cast<int32_t>(t) + y_zero, 0, 255));
    }
  });
}

namespace {
// out[c] = max(out[c], in[c]); restrict lets the compiler vectorize the byte loop (with
// possible aliasing it does not, and the pool runs ~8x slower).
void max_into(uint8_t* __restrict out, const uint8_t* __restrict in, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) out[c] = out[c] > in[c] ? out[c] : in[c];
}
}  // namespace

void max_pool2d_nhwc_u8(const Pool2dShape& s, const uint8_t* x, uint8_t* y, ThreadPool* pool,
                        Isa isa) {
  (void)isa;
  const int64_t rows = s.batch * s.out_h, c_n = s.channels;
  if (rows <= 0 || s.out_w <= 0 || c_n <= 0) return;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  const int64_t work = rows * s.out_w * c_n * s.kernel_h * s.kernel_w;
  const int64_t tasks =
      threads <= 1 ? 1 : std::clamp<int64_t>(work / 16384, 1, std::min<int64_t>(rows, 4 * threads));
  parallel_for(pool, tasks, [&](int64_t t) {
    for (int64_t row = rows * t / tasks; row < rows * (t + 1) / tasks; ++row) {
      const int64_t n = row / s.out_h, oh = row % s.out_h;
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        uint8_t* out = y + (row * s.out_w + ow) * c_n;
        std::fill(out, out + c_n, uint8_t{0});
        for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
          const int64_t ih = oh * s.stride_h - s.pad_top + kh * s.dilation_h;
          if (ih < 0 || ih >= s.in_h) continue;
          for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
            const int64_t iw = ow * s.stride_w - s.pad_left + kw * s.dilation_w;
            if (iw < 0 || iw >= s.in_w) continue;
            max_into(out, x + ((n * s.in_h + ih) * s.in_w + iw) * c_n, c_n);
          }
        }
      }
    }
  });
}

}  // namespace brink::kernels
