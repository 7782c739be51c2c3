// Quantized pooling (qpool.h) and the byte transpose (transpose.h) against naive loops, for
// every ISA; exact equality.
#include "kernels/qpool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/transpose.h"

namespace brink::kernels {
namespace {

ThreadPool* pool_of(int threads) {
  static ThreadPool pool2(2), pool3(3);
  return threads == 2 ? &pool2 : threads == 3 ? &pool3 : nullptr;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

TEST(QPoolU8, GlobalAveragePoolMatchesFormula) {
  uint32_t seed = 1;
  for (int64_t batch : {1, 3})
    for (int64_t pixels : {1, 2, 9, 49, 300})
      for (int64_t c : {1, 7, 16, 17, 33, 64 + 7, 1280}) {
        const auto x = random_bytes(static_cast<size_t>(batch * pixels * c), seed++);
        const float xs = 0.04f, ys = 0.03f;
        const int32_t xz = 100, yz = 120;
        const float m = xs / (static_cast<float>(pixels) * ys);
        for (Isa isa : supported_isas())
          for (int threads : {1, 2}) {
            std::vector<uint8_t> y(static_cast<size_t>(batch * c) + 16, 0xA5);
            qglobal_avg_pool_nhwc_u8(batch, pixels, c, x.data(), xs, xz, y.data(), ys, yz,
                                     pool_of(threads), isa);
            for (int64_t b = 0; b < batch; ++b)
              for (int64_t ch = 0; ch < c; ++ch) {
                int64_t s = 0;
                for (int64_t p = 0; p < pixels; ++p)
                  s += int64_t{x[static_cast<size_t>((b * pixels + p) * c + ch)]} - xz;
                const double r = std::nearbyint(static_cast<double>(static_cast<float>(s) * m));
                const auto want = static_cast<uint8_t>(std::clamp(r + yz, 0.0, 255.0));
                ASSERT_EQ(y[static_cast<size_t>(b * c + ch)], want)
                    << isa_name(isa) << " batch " << batch << " pixels " << pixels << " C " << c;
              }
            for (size_t i = 0; i < 16; ++i) ASSERT_EQ(y[static_cast<size_t>(batch * c) + i], 0xA5);
          }
      }
}

void check_max_pool(const Pool2dShape& s, uint32_t seed) {
  const auto x = random_bytes(static_cast<size_t>(s.batch * s.in_h * s.in_w * s.channels), seed);
  const size_t y_size = static_cast<size_t>(s.batch * s.out_h * s.out_w * s.channels);
  std::vector<uint8_t> want(y_size);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        for (int64_t c = 0; c < s.channels; ++c) {
          int m = 0;
          for (int64_t i = 0; i < s.kernel_h; ++i)
            for (int64_t j = 0; j < s.kernel_w; ++j) {
              const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
              const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
              if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
              m = std::max<int>(
                  m, x[static_cast<size_t>(((n * s.in_h + ih) * s.in_w + iw) * s.channels + c)]);
            }
          want[static_cast<size_t>(((n * s.out_h + oh) * s.out_w + ow) * s.channels + c)] =
              static_cast<uint8_t>(m);
        }
  for (Isa isa : supported_isas())
    for (int threads : {1, 3}) {
      std::vector<uint8_t> y(y_size + 64, 0xA5);
      max_pool2d_nhwc_u8(s, x.data(), y.data(), pool_of(threads), isa);
      for (size_t i = 0; i < y_size; ++i)
        ASSERT_EQ(y[i], want[i]) << isa_name(isa) << " C " << s.channels << " element " << i;
      for (size_t i = 0; i < 64; ++i) ASSERT_EQ(y[y_size + i], 0xA5) << isa_name(isa);
    }
}

TEST(QPoolU8, MaxPoolMatchesNaiveLoop) {
  uint32_t seed = 7;
  for (int64_t c : {1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64 + 7})
    for (int64_t k : {2, 3})
      for (int64_t st : {1, 2}) {
        const int64_t h = 9, w = 8, pad = k == 3 ? 1 : 0;
        const int64_t oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
        check_max_pool({2, h, w, c, oh, ow, k, k, st, st, 1, 1, pad, pad, pad, pad}, seed++);
      }
  // Dilation 2, asymmetric pads, windows entirely in the padding (give 0), 1x1 images.
  check_max_pool({1, 7, 6, 19, 3, 3, 3, 3, 2, 2, 2, 2, 1, 2, 1, 1}, seed++);
  check_max_pool({1, 1, 1, 9, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2}, seed++);
  check_max_pool({1, 4, 4, 5, 4, 4, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3}, seed++);
}

TEST(QTransposeU8, PlanesMatchNaiveLoop) {
  uint32_t seed = 3;
  for (int64_t n : {1, 2})
    for (int64_t rows : {1, 3, 4, 5, 17, 33, 100})
      for (int64_t cols : {1, 2, 7, 16, 31, 65, 300}) {
        const auto src = random_bytes(static_cast<size_t>(n * rows * cols), seed++);
        for (int threads : {1, 3}) {
          std::vector<uint8_t> dst(src.size() + 8, 0xA5);
          transpose_planes_u8(src.data(), dst.data(), n, rows, cols, pool_of(threads));
          for (int64_t p = 0; p < n; ++p)
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c)
                ASSERT_EQ(dst[static_cast<size_t>((p * cols + c) * rows + r)],
                          src[static_cast<size_t>((p * rows + r) * cols + c)]);
          for (size_t i = 0; i < 8; ++i) ASSERT_EQ(dst[src.size() + i], 0xA5);
        }
      }
}

}  // namespace
}  // namespace brink::kernels
