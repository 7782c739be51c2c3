// Quantized elementwise kernels (quantize, dequantize, dynamic quantize, u8 Add) against
// naive loops with the exact formulas of qelementwise.h, for every ISA; exact equality.
#include "kernels/qelementwise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

ThreadPool* pool2() {
  static ThreadPool pool(2);
  return &pool;
}

int32_t ref_round(float t, int32_t zero, int32_t lo, int32_t hi) {
  if (std::isnan(t)) return std::clamp(zero, lo, hi);
  const double r = std::nearbyint(static_cast<double>(std::clamp(t, -1e6f, 1e6f)));
  return static_cast<int32_t>(
      std::clamp(r + zero, static_cast<double>(lo), static_cast<double>(hi)));
}

std::vector<float> inputs(size_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  // Exact halves (ties to even), specials.
  for (size_t i = 0; i < n; i += 7)
    x[i] = 0.05f * static_cast<float>(static_cast<int>(i % 40) - 20) + 0.025f;
  if (specials && n > 5) {
    x[1] = std::numeric_limits<float>::quiet_NaN();
    x[2] = std::numeric_limits<float>::infinity();
    x[3] = -std::numeric_limits<float>::infinity();
    x[4] = 1e30f;
  }
  return x;
}

const int64_t kSizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64 + 7, 1000, 70001};

TEST(QElementwiseU8, QuantizeMatchesFormula) {
  for (int64_t n : kSizes) {
    const auto x = inputs(static_cast<size_t>(n), static_cast<uint32_t>(n), true);
    const float scale = 0.05f;
    for (int32_t zero : {0, 3, 128, 255}) {
      std::vector<uint8_t> want(static_cast<size_t>(n));
      std::vector<int8_t> want_s(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        want[static_cast<size_t>(i)] =
            static_cast<uint8_t>(ref_round(x[static_cast<size_t>(i)] / scale, zero, 0, 255));
        want_s[static_cast<size_t>(i)] = static_cast<int8_t>(
            ref_round(x[static_cast<size_t>(i)] / scale, zero - 128, -128, 127));
      }
      for (Isa isa : supported_isas()) {
        std::vector<uint8_t> y(static_cast<size_t>(n) + 64, 0xA5);
        std::vector<int8_t> ys(static_cast<size_t>(n) + 64, 0x55);
        quantize_f32_u8(x.data(), n, scale, zero, y.data(), pool2(), isa);
        quantize_f32_s8(x.data(), n, scale, zero - 128, ys.data(), pool2(), isa);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(y[static_cast<size_t>(i)], want[static_cast<size_t>(i)])
              << isa_name(isa) << " n " << n << " i " << i << " x " << x[static_cast<size_t>(i)];
          ASSERT_EQ(ys[static_cast<size_t>(i)], want_s[static_cast<size_t>(i)])
              << isa_name(isa) << " n " << n << " i " << i;
        }
        for (size_t i = 0; i < 64; ++i) {
          ASSERT_EQ(y[static_cast<size_t>(n) + i], 0xA5) << isa_name(isa) << ": wrote past the end";
          ASSERT_EQ(ys[static_cast<size_t>(n) + i], 0x55)
              << isa_name(isa) << ": wrote past the end";
        }
      }
    }
  }
}

TEST(QElementwiseU8, QuantizeSpecialValues) {
  const float x[] = {std::numeric_limits<float>::quiet_NaN(),
                     std::numeric_limits<float>::infinity(),
                     -std::numeric_limits<float>::infinity(),
                     2.5f,
                     3.5f,
                     -2.5f};
  for (Isa isa : supported_isas()) {
    uint8_t y[6];
    quantize_f32_u8(x, 6, 1.0f, 10, y, nullptr, isa);
    EXPECT_EQ(y[0], 10) << isa_name(isa);  // NaN -> zero point
    EXPECT_EQ(y[1], 255) << isa_name(isa);
    EXPECT_EQ(y[2], 0) << isa_name(isa);
    EXPECT_EQ(y[3], 12) << isa_name(isa);  // ties to even
    EXPECT_EQ(y[4], 14) << isa_name(isa);
    EXPECT_EQ(y[5], 8) << isa_name(isa);
  }
}

TEST(QElementwiseU8, DequantizeMatchesFormula) {
  for (int64_t n : kSizes) {
    std::vector<uint8_t> x(static_cast<size_t>(n));
    std::vector<int8_t> xs(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(i)] = static_cast<uint8_t>(i * 37 % 256);
      xs[static_cast<size_t>(i)] = static_cast<int8_t>(i * 37 % 256 - 128);
    }
    for (Isa isa : supported_isas()) {
      std::vector<float> y(static_cast<size_t>(n) + 16, -7.0f),
          ys(static_cast<size_t>(n) + 16, -7.0f);
      dequantize_u8_f32(x.data(), n, 0.37f, 100, y.data(), pool2(), isa);
      dequantize_s8_f32(xs.data(), n, 0.37f, -5, ys.data(), pool2(), isa);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(y[static_cast<size_t>(i)],
                  static_cast<float>(int32_t{x[static_cast<size_t>(i)]} - 100) * 0.37f)
            << isa_name(isa);
        ASSERT_EQ(ys[static_cast<size_t>(i)],
                  static_cast<float>(int32_t{xs[static_cast<size_t>(i)]} + 5) * 0.37f)
            << isa_name(isa);
      }
      for (size_t i = 0; i < 16; ++i)
        ASSERT_EQ(y[static_cast<size_t>(n) + i], -7.0f) << isa_name(isa);
    }
  }
}

TEST(QElementwiseU8, DynamicQuantize) {
  for (int64_t n : kSizes) {
    for (bool specials : {false, true}) {
      auto x = inputs(static_cast<size_t>(n), static_cast<uint32_t>(n) + 9, false);
      if (specials && n > 2) x[1] = std::numeric_limits<float>::quiet_NaN();
      float lo = 0.0f, hi = 0.0f;
      for (float v : x)
        if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      const float scale = (hi - lo) / 255.0f;
      const uint8_t zero =
          static_cast<uint8_t>(std::nearbyint(std::clamp(-lo / scale, 0.0f, 255.0f)));
      for (Isa isa : supported_isas()) {
        std::vector<uint8_t> y(static_cast<size_t>(n));
        float s = -1.0f;
        uint8_t z = 1;
        dynamic_quantize_u8(x.data(), n, y.data(), &s, &z, pool2(), isa);
        ASSERT_EQ(s, scale) << isa_name(isa) << " n " << n;
        ASSERT_EQ(z, zero) << isa_name(isa) << " n " << n;
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(y[static_cast<size_t>(i)],
                    ref_round(x[static_cast<size_t>(i)] / scale, zero, 0, 255))
              << isa_name(isa) << " i " << i;
      }
    }
  }
  // No range: all zeros gives scale 0, zero 0, y 0.
  std::vector<float> zeros(40, 0.0f);
  for (Isa isa : supported_isas()) {
    std::vector<uint8_t> y(40, 9);
    float s = -1.0f;
    uint8_t z = 1;
    dynamic_quantize_u8(zeros.data(), 40, y.data(), &s, &z, nullptr, isa);
    EXPECT_EQ(s, 0.0f);
    EXPECT_EQ(z, 0);
    for (uint8_t v : y) ASSERT_EQ(v, 0);
  }
}

TEST(QElementwiseU8, AddMatchesFormula) {
  for (int64_t n : kSizes) {
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::uniform_int_distribution<int> d(0, 255);
    std::vector<uint8_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (auto& v : a) v = static_cast<uint8_t>(d(rng));
    for (auto& v : b) v = static_cast<uint8_t>(d(rng));
    const float as = 0.021f, bs = 0.034f, ys = 0.05f;
    const float fa = as / ys, fb = bs / ys;
    for (Isa isa : supported_isas()) {
      std::vector<uint8_t> y(static_cast<size_t>(n) + 64, 0xA5);
      qadd_u8(a.data(), as, 120, b.data(), bs, 131, y.data(), ys, 128, 5, 250, n, pool2(), isa);
      for (int64_t i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i);
        float tb = static_cast<float>(int32_t{b[k]} - 131) * fb;
        float ta = static_cast<float>(int32_t{a[k]} - 120) * fa;
        __asm__("" : "+m"(ta), "+m"(tb));  // as the kernels: no FMA contraction
        const float t = ta + tb;
        ASSERT_EQ(y[k], ref_round(t, 128, 5, 250)) << isa_name(isa) << " n " << n << " i " << i;
      }
      for (size_t i = 0; i < 64; ++i)
        ASSERT_EQ(y[static_cast<size_t>(n) + i], 0xA5) << isa_name(isa);
      // In place.
      std::vector<uint8_t> inplace = a;
      qadd_u8(inplace.data(), as, 120, b.data(), bs, 131, inplace.data(), ys, 128, 5, 250, n,
              pool2(), isa);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(inplace[static_cast<size_t>(i)], y[static_cast<size_t>(i)]);
    }
  }
}

}  // namespace
}  // namespace brink::kernels
