// The quantized NHWC depthwise kernel against a naive loop with the header's exact formula,
// for every ISA this build runs (NEON under qemu in the aarch64 cross build). u8 outputs
// must match exactly.
#include "kernels/qdepthwise_conv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

struct Case {
  int64_t n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool bias = true, per_channel = true;

  int64_t out_h() const { return (h + pt + pb - (kh - 1) * dh - 1) / sh + 1; }
  int64_t out_w() const { return (w + pl + pr - (kw - 1) * dw - 1) / sw + 1; }
  std::string describe() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "N%lld H%lld W%lld C%lld k%lldx%lld s%lld,%lld d%lld,%lld pads %lld,%lld,%lld,"
                  "%lld bias %d per_channel %d",
                  static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w),
                  static_cast<long long>(c), static_cast<long long>(kh), static_cast<long long>(kw),
                  static_cast<long long>(sh), static_cast<long long>(sw),
                  static_cast<long long>(dh), static_cast<long long>(dw),
                  static_cast<long long>(pt), static_cast<long long>(pl),
                  static_cast<long long>(pb), static_cast<long long>(pr), bias, per_channel);
    return buf;
  }
};

ThreadPool* pool_of(int threads) {
  static ThreadPool pool2(2), pool3(3);
  return threads == 2 ? &pool2 : threads == 3 ? &pool3 : nullptr;
}

uint8_t requant_ref(int64_t acc, float scale, int32_t zp, uint8_t lo, uint8_t hi) {
  const float f = static_cast<float>(static_cast<int32_t>(acc)) * scale;
  const double r = std::nearbyint(static_cast<double>(f));  // f is exact in double
  const double v = std::clamp(r + zp, static_cast<double>(lo), static_cast<double>(hi));
  return static_cast<uint8_t>(v);
}

void check(const Case& c, uint32_t seed) {
  SCOPED_TRACE(c.describe());
  const int64_t oh_n = c.out_h(), ow_n = c.out_w();
  ASSERT_GT(oh_n, 0);
  ASSERT_GT(ow_n, 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127),
      bias_d(static_cast<int>(-2000 * c.kh * c.kw), static_cast<int>(2000 * c.kh * c.kw));
  std::vector<uint8_t> x(static_cast<size_t>(c.n * c.h * c.w * c.c));
  for (auto& v : x) v = static_cast<uint8_t>(u8(rng));
  std::vector<int8_t> w(static_cast<size_t>(c.c * c.kh * c.kw));
  for (auto& v : w) v = static_cast<int8_t>(s8(rng));
  std::vector<int32_t> b(static_cast<size_t>(c.c));
  for (auto& v : b) v = bias_d(rng);
  const uint8_t x_zero = static_cast<uint8_t>(u8(rng));
  // Scales that spread the outputs over the whole u8 range, with some saturation.
  std::uniform_real_distribution<float> sd(0.3f, 1.5f);
  std::vector<float> scale(static_cast<size_t>(c.c));
  const float base = 1.0f / (64.0f * static_cast<float>(c.kh * c.kw));
  for (auto& v : scale) v = base * sd(rng);
  QRequant rq;
  rq.scale = scale.data();
  rq.per_channel = c.per_channel;
  rq.zero_point = 128 + static_cast<int32_t>(seed % 7);
  rq.min = static_cast<uint8_t>(seed % 3 == 0 ? 10 : 0);
  rq.max = static_cast<uint8_t>(seed % 3 == 0 ? 240 : 255);

  const size_t y_size = static_cast<size_t>(c.n * oh_n * ow_n * c.c);
  std::vector<uint8_t> want(y_size);
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow)
        for (int64_t ch = 0; ch < c.c; ++ch) {
          int64_t acc = c.bias ? b[static_cast<size_t>(ch)] : 0;
          for (int64_t i = 0; i < c.kh; ++i)
            for (int64_t j = 0; j < c.kw; ++j) {
              const int64_t ih = oh * c.sh - c.pt + i * c.dh, iw = ow * c.sw - c.pl + j * c.dw;
              if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
              acc += (int64_t{x[static_cast<size_t>(((n * c.h + ih) * c.w + iw) * c.c + ch)]} -
                      x_zero) *
                     w[static_cast<size_t>((ch * c.kh + i) * c.kw + j)];
            }
          want[static_cast<size_t>(((n * oh_n + oh) * ow_n + ow) * c.c + ch)] =
              requant_ref(acc, scale[static_cast<size_t>(c.per_channel ? ch : 0)], rq.zero_point,
                          rq.min, rq.max);
        }

  // The scales must spread the outputs: mostly inside (min, max), not all saturated.
  size_t inside = 0;
  for (uint8_t v : want) inside += v > rq.min && v < rq.max;
  EXPECT_GE(inside * 2, y_size) << "test data saturates";

  Conv2dParams p;
  p.in_channels = p.out_channels = p.group = c.c;
  p.kernel_h = c.kh;
  p.kernel_w = c.kw;
  p.stride_h = c.sh;
  p.stride_w = c.sw;
  p.dilation_h = c.dh;
  p.dilation_w = c.dw;
  const Conv2dSpatial s{c.h, c.w, oh_n, ow_n, c.pt, c.pl};
  constexpr size_t kGuard = 64;
  for (Isa isa : supported_isas()) {
    auto k = DepthwiseQConvNhwcU8::create(p, w.data(), c.bias ? b.data() : nullptr, x_zero, isa);
    ASSERT_TRUE(k.is_ok()) << isa_name(isa) << ": " << k.status().message();
    EXPECT_EQ((*k)->isa(), isa);
    EXPECT_GT((*k)->memory_bytes(), 0u);
    for (int threads : {1, 2, 3}) {
      std::vector<uint8_t> y(y_size + 2 * kGuard, 0xA5);
      const Status st = (*k)->run(x.data(), rq, y.data() + kGuard, c.n, s, pool_of(threads));
      ASSERT_TRUE(st.is_ok()) << st.message();
      for (size_t i = 0; i < kGuard; ++i) {
        ASSERT_EQ(y[i], 0xA5) << isa_name(isa) << ": wrote before the output";
        ASSERT_EQ(y[kGuard + y_size + i], 0xA5) << isa_name(isa) << ": wrote past the output";
      }
      for (size_t i = 0; i < y_size; ++i)
        if (y[kGuard + i] != want[i])
          FAIL() << isa_name(isa) << " threads " << threads << ": element " << i << " (channel "
                 << static_cast<int64_t>(i) % c.c << ") is " << int{y[kGuard + i]} << ", expected "
                 << int{want[i]};
    }
    // The blob copied elsewhere (as a package's mapping holds it) and adopted: the same bytes.
    const size_t bytes = (*k)->packed_bytes();
    EXPECT_EQ(bytes % 64, 0u);
    std::shared_ptr<void> copy(allocate_aligned(bytes),
                               [bytes](void* q) { free_aligned(q, bytes); });
    std::memcpy(copy.get(), (*k)->packed_data(), bytes);
    auto adopted = DepthwiseQConvNhwcU8::create_prepacked(p, (*k)->packed_layout(), copy.get(),
                                                          bytes, copy, x_zero, isa);
    ASSERT_TRUE(adopted.is_ok()) << isa_name(isa) << ": " << adopted.status().message();
    EXPECT_EQ((*adopted)->packed_data(), copy.get());
    std::vector<uint8_t> y(y_size, 0xA5);
    ASSERT_TRUE((*adopted)->run(x.data(), rq, y.data(), c.n, s, nullptr).is_ok());
    ASSERT_EQ(y, want) << isa_name(isa) << ": the adopted blob computes otherwise";
  }
}

TEST(QDepthwiseConvU8, AwkwardChannelCounts) {
  uint32_t seed = 1;
  for (int64_t c : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33, 71})
    for (int64_t st : {1, 2}) check({1, 6, 7, c, 3, 3, st, st, 1, 1, 1, 1, 1, 1}, seed += 3);
}

TEST(QDepthwiseConvU8, KernelsStridesDilationsPads) {
  uint32_t seed = 100;
  for (int64_t k : {1, 2, 3, 5})
    for (int64_t st : {1, 2})
      for (int64_t c : {5, 24, 40})
        check({1, 9, 8, c, k, k, st, st, 1, 1, k / 2, k / 2, k / 2, (k + 1) / 2}, seed += 3);
  // Sizes 1..9 in each dimension with the MobileNet 3x3 pad 1.
  for (int64_t hw = 1; hw <= 9; ++hw)
    check({1, hw, 10 - hw, 19, 3, 3, hw % 2 + 1, 2 - hw % 2, 1, 1, 1, 1, 1, 1}, seed += 3);
  check({2, 12, 11, 33, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, seed += 3);  // dilation 2, batch 2
  check({3, 11, 9, 17, 7, 7, 3, 3, 1, 1, 3, 2, 1, 3, false}, seed += 3);
  check({1, 8, 7, 10, 3, 1, 1, 2, 1, 1, 1, 0, 2, 1}, seed += 3);  // 3x1, asymmetric
  check({1, 6, 9, 4, 3, 3, 1, 1, 1, 1, 4, 0, 5, 4}, seed += 3);   // pads past the kernel
  check({1, 7, 7, 71, 3, 3, 1, 1, 1, 2, 0, 0, 0, 0, true, false}, seed += 3);  // per tensor
  check({2, 10, 10, 64 + 7, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1}, seed += 3);         // TF-style SAME s2
}

TEST(QDepthwiseConvU8, WideChannelCounts) {
  // 64 channels and more: the VNNI quad path where the CPU has it (64-channel blocks, taps in
  // groups of four), with channel tails, kernels whose taps are not a multiple of four,
  // strides, dilation, batch and per-tensor scales.
  uint32_t seed = 900;
  for (int64_t c : {64, 65, 96, 127, 128, 144, 191})
    for (int64_t k : {1, 2, 3, 5})
      check({1, 7, 6, c, k, k, 1 + c % 2, 1 + c % 2, 1, 1, k / 2, k / 2, k / 2, (k + 1) / 2},
            seed += 3);
  check({2, 9, 8, 80, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, seed += 3);   // dilation 2, batch 2
  check({1, 8, 8, 100, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3}, seed += 3);  // 7x7: 13 quads
  check({1, 6, 5, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false}, seed += 3);  // per tensor
}

TEST(QDepthwiseConvU8, SameKernelDifferentSizes) {
  // One kernel, runs with different input sizes: no size-dependent state.
  uint32_t seed = 500;
  for (int64_t hw : {5, 14, 3, 9}) check({1, hw, hw, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, seed++);
}

TEST(QDepthwiseConvU8, PrepackedBlobMismatchIsRefused) {
  Conv2dParams p;
  p.in_channels = p.out_channels = p.group = 19;
  p.kernel_h = p.kernel_w = 3;
  const std::vector<int8_t> w(19 * 9, 2);
  auto k = DepthwiseQConvNhwcU8::create(p, w.data(), nullptr, 9, Isa::kPortable);
  ASSERT_TRUE(k.is_ok());
  const size_t bytes = (*k)->packed_bytes();
  const std::string layout = (*k)->packed_layout();
  const void* blob = (*k)->packed_data();
  EXPECT_TRUE(
      DepthwiseQConvNhwcU8::create_prepacked(p, layout, blob, bytes, nullptr, 9, Isa::kPortable)
          .is_ok());
  auto bad = DepthwiseQConvNhwcU8::create_prepacked(p, layout + "x", blob, bytes, nullptr, 9,
                                                    Isa::kPortable);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("this build packs"), std::string::npos);
  EXPECT_FALSE(DepthwiseQConvNhwcU8::create_prepacked(p, layout, blob, bytes - 64, nullptr, 9,
                                                      Isa::kPortable)
                   .is_ok());
  EXPECT_FALSE(
      DepthwiseQConvNhwcU8::create_prepacked(p, layout, blob, bytes, nullptr, 10, Isa::kPortable)
          .is_ok());
  for (Isa isa : supported_isas())
    if (isa != Isa::kPortable) {
      EXPECT_FALSE(
          DepthwiseQConvNhwcU8::create_prepacked(p, layout, blob, bytes, nullptr, 9, isa).is_ok())
          << isa_name(isa);
    }
  p.kernel_w = 5;  // more tap pairs: another layout
  EXPECT_FALSE(
      DepthwiseQConvNhwcU8::create_prepacked(p, layout, blob, bytes, nullptr, 9, Isa::kPortable)
          .is_ok());
}

TEST(QDepthwiseConvU8, RejectsBadParameters) {
  Conv2dParams p;
  p.in_channels = p.out_channels = 8;
  p.group = 4;
  p.kernel_h = p.kernel_w = 3;
  std::vector<int8_t> w(72);
  EXPECT_FALSE(DepthwiseQConvNhwcU8::create(p, w.data(), nullptr, 0, Isa::kPortable).is_ok());
  p.group = 8;
  p.stride_h = 0;
  EXPECT_FALSE(DepthwiseQConvNhwcU8::create(p, w.data(), nullptr, 0, Isa::kPortable).is_ok());
  p.stride_h = 1;
  auto k = DepthwiseQConvNhwcU8::create(p, w.data(), nullptr, 0, Isa::kPortable);
  ASSERT_TRUE(k.is_ok());
  std::vector<uint8_t> x(8 * 9), y(8 * 9);
  float scale = 1.0f;
  QRequant rq;
  rq.scale = &scale;
  rq.per_channel = false;
  rq.zero_point = 300;
  const Conv2dSpatial s{3, 3, 3, 3, 1, 1};
  EXPECT_FALSE((*k)->run(x.data(), rq, y.data(), 1, s, nullptr).is_ok());
  rq.zero_point = 0;
  EXPECT_TRUE((*k)->run(x.data(), rq, y.data(), 1, s, nullptr).is_ok());
}

}  // namespace
}  // namespace brink::kernels
