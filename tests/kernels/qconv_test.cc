// QConvNhwcU8 against a naive NHWC loop, for every QIsa this machine (or qemu) runs: exact
// equality of u8 and f32 outputs, kernel sizes, strides, dilations, pads, groups (depthwise
// included), 1x1 direct, batch > 1, a second input size next to the prepared one, zero points,
// clamps, per-tensor and per-channel scales, saturating weights, 1 and 3 threads, and no
// write outside y.
#include "kernels/qconv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

struct ConvCase {
  int64_t c, m, group, kh, kw, stride, dilation, pad, in_h, in_w;
};

Conv2dSpatial spatial(const ConvCase& cc, int64_t in_h, int64_t in_w) {
  Conv2dSpatial s;
  s.in_h = in_h;
  s.in_w = in_w;
  s.pad_top = s.pad_left = cc.pad;
  s.out_h = (in_h + 2 * cc.pad - cc.dilation * (cc.kh - 1) - 1) / cc.stride + 1;
  s.out_w = (in_w + 2 * cc.pad - cc.dilation * (cc.kw - 1) - 1) / cc.stride + 1;
  return s;
}

struct Options {
  uint8_t x_zero = 128;
  int32_t y_zero = 100;
  uint8_t lo = 0, hi = 255;
  bool per_channel = true;
  bool full_weights = false;  // [-128, 127] (saturating pairs), else |w| <= 64
  bool bias = true;
};

void check(const ConvCase& cc, const Options& o, QIsa isa, int64_t batch, ThreadPool* pool) {
  const std::string what = std::string(qisa_name(isa)) + " C=" + std::to_string(cc.c) +
                           " M=" + std::to_string(cc.m) + " g=" + std::to_string(cc.group) +
                           " k=" + std::to_string(cc.kh) + "x" + std::to_string(cc.kw) +
                           " s=" + std::to_string(cc.stride) + " d=" + std::to_string(cc.dilation) +
                           " p=" + std::to_string(cc.pad) + " in=" + std::to_string(cc.in_h) + "x" +
                           std::to_string(cc.in_w) + " batch=" + std::to_string(batch) +
                           " x_zero=" + std::to_string(o.x_zero);
  SCOPED_TRACE(what);
  Conv2dParams p;
  p.in_channels = cc.c;
  p.out_channels = cc.m;
  p.group = cc.group;
  p.kernel_h = cc.kh;
  p.kernel_w = cc.kw;
  p.stride_h = p.stride_w = cc.stride;
  p.dilation_h = p.dilation_w = cc.dilation;
  const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
  std::mt19937 rng(static_cast<uint32_t>(cc.c * 131 + cc.m * 17 + cc.kh * 7 + cc.in_h));
  std::vector<int8_t> w(static_cast<size_t>(cc.m * cg * cc.kh * cc.kw));
  for (int8_t& v : w)
    v = static_cast<int8_t>(o.full_weights ? static_cast<int>(rng() % 256) - 128
                                           : static_cast<int>(rng() % 129) - 64);
  std::vector<int32_t> bias(static_cast<size_t>(cc.m));
  for (int32_t& v : bias) v = static_cast<int32_t>(rng() % 20001) - 10000;
  std::vector<float> scale(static_cast<size_t>(cc.m));
  const float base = 60.0f / (6400.0f * std::sqrt(static_cast<float>(cg * cc.kh * cc.kw)));
  for (float& v : scale) v = base * (0.5f + (rng() % 1000) / 1000.0f);

  auto made = QConvNhwcU8::create(p, w.data(), o.bias ? bias.data() : nullptr, o.x_zero, isa);
  ASSERT_TRUE(made.is_ok()) << made.status().message();
  std::unique_ptr<QConvNhwcU8> conv = std::move(made).value();
  ASSERT_EQ(conv->isa(), isa);
  const Conv2dSpatial prepared = spatial(cc, cc.in_h, cc.in_w);
  ASSERT_TRUE(conv->prepare(prepared).is_ok());
  QuantOutput out;
  out.scale = scale.data();
  out.per_channel = o.per_channel;
  out.zero_point = o.y_zero;
  out.min = o.lo;
  out.max = o.hi;

  // The prepared size, then another one (its table is built on first use).
  for (const Conv2dSpatial& s : {prepared, spatial(cc, cc.in_h + 3, cc.in_w + 1)}) {
    if (s.out_h < 1 || s.out_w < 1) continue;
    std::vector<uint8_t> x(static_cast<size_t>(batch * s.in_h * s.in_w * cc.c));
    for (uint8_t& v : x) v = static_cast<uint8_t>(rng() % 256);
    const int64_t pixels = s.out_h * s.out_w;
    std::vector<int32_t> acc(static_cast<size_t>(batch * pixels * cc.m));
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t oy = 0; oy < s.out_h; ++oy)
        for (int64_t ox = 0; ox < s.out_w; ++ox)
          for (int64_t m = 0; m < cc.m; ++m) {
            const int64_t g = m / mg;
            int64_t sum = o.bias ? bias[static_cast<size_t>(m)] : 0;
            for (int64_t ky = 0; ky < cc.kh; ++ky)
              for (int64_t kx = 0; kx < cc.kw; ++kx) {
                const int64_t iy = oy * cc.stride - cc.pad + ky * cc.dilation;
                const int64_t ix = ox * cc.stride - cc.pad + kx * cc.dilation;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                for (int64_t c = 0; c < cg; ++c) {
                  const int64_t xv =
                      x[static_cast<size_t>(((n * s.in_h + iy) * s.in_w + ix) * cc.c + g * cg + c)];
                  const int64_t wv =
                      w[static_cast<size_t>(((m * cg + c) * cc.kh + ky) * cc.kw + kx)];
                  sum += (xv - o.x_zero) * wv;
                }
              }
            acc[static_cast<size_t>((n * pixels + oy * s.out_w + ox) * cc.m + m)] =
                static_cast<int32_t>(sum);
          }
    const size_t guard = 64;
    std::vector<uint8_t> y(acc.size() + guard, 0xAB);
    ASSERT_TRUE(conv->run_u8(x.data(), out, y.data(), batch, s, pool).is_ok());
    std::vector<float> yf(acc.size() + guard, -777.0f);
    ASSERT_TRUE(conv->run_f32(x.data(), out, yf.data(), batch, s, pool).is_ok());
    for (size_t i = 0; i < acc.size(); ++i) {
      const float sc = scale[o.per_channel ? i % static_cast<size_t>(cc.m) : 0];
      const float v = static_cast<float>(acc[i]) * sc;
      long q = std::lrint(v) + o.y_zero;
      q = std::min<long>(std::max<long>(q, o.lo), o.hi);
      ASSERT_EQ(y[i], q) << "at " << i << " acc " << acc[i];
      ASSERT_EQ(yf[i], v) << "at " << i;
    }
    for (size_t i = acc.size(); i < y.size(); ++i) {
      ASSERT_EQ(y[i], 0xAB) << "wrote past y";
      ASSERT_EQ(yf[i], -777.0f) << "wrote past y";
    }
  }
}

const ConvCase kCases[] = {
    // c, m, group, kh, kw, stride, dilation, pad, in_h, in_w
    {3, 16, 1, 7, 7, 2, 1, 3, 17, 15},   // a first layer
    {16, 40, 1, 3, 3, 1, 1, 1, 9, 11},   // 3x3 same
    {33, 17, 1, 3, 3, 2, 1, 1, 10, 7},   // odd channels, stride 2
    {8, 64, 1, 1, 1, 1, 1, 0, 6, 7},     // 1x1 direct
    {37, 70, 1, 1, 1, 2, 1, 0, 9, 9},    // 1x1 strided (table)
    {12, 18, 3, 3, 3, 1, 2, 2, 8, 9},    // groups, dilation
    {24, 24, 24, 3, 3, 1, 1, 1, 7, 6},   // depthwise
    {32, 64, 2, 3, 1, 1, 1, 1, 5, 13},   // grouped, 3x1
    {5, 9, 1, 2, 4, 3, 1, 0, 13, 14},    // no padding, uneven kernel
    {64, 33, 1, 3, 3, 1, 1, 1, 14, 14},  // more pixels than one tile row
    {1, 1, 1, 1, 1, 1, 1, 0, 1, 1},      // the smallest
    {128, 48, 1, 3, 3, 1, 1, 1, 4, 4},   // larger K (1152)
};

TEST(QConv, EveryIsaEveryShape) {
  int index = 0;
  for (QIsa isa : supported_qisas())
    for (const ConvCase& cc : kCases) {
      ++index;
      Options o;
      o.x_zero = static_cast<uint8_t>(index % 3 == 0 ? 0 : index % 3 == 1 ? 128 : 255);
      o.y_zero = index % 2 == 0 ? 0 : 128;
      o.per_channel = index % 4 != 1;
      o.full_weights = index % 3 == 2;
      o.bias = index % 5 != 3;
      if (index % 4 == 2) {
        o.lo = 20;
        o.hi = 230;
      }
      check(cc, o, isa, index % 2 == 0 ? 2 : 1, nullptr);
      if (HasFatalFailure()) return;
    }
}

TEST(QConv, SaturatingWeightsAndThreads) {
  ThreadPool pool(3);
  for (QIsa isa : supported_qisas())
    for (const ConvCase& cc : {kCases[1], kCases[5], kCases[9]}) {
      Options o;
      o.full_weights = true;
      o.x_zero = 0;
      check(cc, o, isa, 2, &pool);
      if (HasFatalFailure()) return;
    }
}

TEST(QConv, RejectsBadParams) {
  Conv2dParams p;
  p.in_channels = 6;
  p.out_channels = 4;
  p.group = 4;  // 6 does not split into 4 groups
  const std::vector<int8_t> w(64, 1);
  EXPECT_FALSE(QConvNhwcU8::create(p, w.data(), nullptr, 0, QIsa::kPortable).is_ok());
  p.group = 1;
  p.kernel_h = 0;
  EXPECT_FALSE(QConvNhwcU8::create(p, w.data(), nullptr, 0, QIsa::kPortable).is_ok());
  p.kernel_h = 1;
  auto made = QConvNhwcU8::create(p, w.data(), nullptr, 0, QIsa::kPortable);
  ASSERT_TRUE(made.is_ok());
  EXPECT_FALSE((*made)->prepare(Conv2dSpatial{}).is_ok());
  EXPECT_GT((*made)->memory_bytes(), 0u);
}

// A copy of a kernel's blob in fresh 64-byte aligned memory (as a package's mapping holds it).
std::shared_ptr<const void> copy_blob(const QConvNhwcU8& k) {
  const size_t bytes = k.packed_bytes();
  void* mem = allocate_aligned(bytes);
  std::memcpy(mem, k.packed_data(), bytes);
  return std::shared_ptr<const void>(
      mem, [bytes](const void* q) { free_aligned(const_cast<void*>(q), bytes); });
}

Conv2dParams params_of(const ConvCase& cc) {
  Conv2dParams p;
  p.in_channels = cc.c;
  p.out_channels = cc.m;
  p.group = cc.group;
  p.kernel_h = cc.kh;
  p.kernel_w = cc.kw;
  p.stride_h = p.stride_w = cc.stride;
  p.dilation_h = p.dilation_w = cc.dilation;
  return p;
}

// create() -> its blob copied elsewhere -> create_prepacked(): byte-identical outputs (u8 and
// f32), with saturating weights (the exact flag travels in the blob) and without.
TEST(QConv, PrepackedBlobRunsIdentically) {
  int index = 0;
  for (QIsa isa : supported_qisas())
    for (const ConvCase& cc : kCases) {
      ++index;
      SCOPED_TRACE(std::string(qisa_name(isa)) + " case " + std::to_string(index));
      const Conv2dParams p = params_of(cc);
      std::mt19937 rng(static_cast<uint32_t>(index));
      std::vector<int8_t> w(static_cast<size_t>(cc.m * (cc.c / cc.group) * cc.kh * cc.kw));
      const bool full = index % 2 == 0;
      for (int8_t& v : w)
        v = static_cast<int8_t>(full ? static_cast<int>(rng() % 256) - 128
                                     : static_cast<int>(rng() % 129) - 64);
      std::vector<int32_t> bias(static_cast<size_t>(cc.m));
      for (int32_t& v : bias) v = static_cast<int32_t>(rng() % 20001) - 10000;
      const uint8_t x_zero = static_cast<uint8_t>(rng() % 256);
      auto made = QConvNhwcU8::create(p, w.data(), bias.data(), x_zero, isa);
      ASSERT_TRUE(made.is_ok()) << made.status().message();
      const QConvNhwcU8& a = **made;
      EXPECT_EQ(a.packed_bytes() % 64, 0u);
      auto blob = copy_blob(a);
      auto adopted = QConvNhwcU8::create_prepacked(p, a.packed_layout(), blob.get(),
                                                   a.packed_bytes(), blob, x_zero, isa);
      ASSERT_TRUE(adopted.is_ok()) << adopted.status().message();
      const QConvNhwcU8& b = **adopted;
      EXPECT_EQ(b.packed_data(), blob.get());
      EXPECT_EQ(b.packed_layout(), a.packed_layout());

      const Conv2dSpatial s = spatial(cc, cc.in_h, cc.in_w);
      const int64_t batch = 2;
      std::vector<uint8_t> x(static_cast<size_t>(batch * cc.in_h * cc.in_w * cc.c));
      for (uint8_t& v : x) v = static_cast<uint8_t>(rng());
      std::vector<float> scale(static_cast<size_t>(cc.m));
      for (float& v : scale) v = 1e-4f * static_cast<float>(1 + rng() % 100);
      QuantOutput out;
      out.scale = scale.data();
      out.zero_point = 77;
      const size_t ys = static_cast<size_t>(batch * s.out_h * s.out_w * cc.m);
      std::vector<uint8_t> ya(ys), yb(ys, 1);
      ASSERT_TRUE(a.run_u8(x.data(), out, ya.data(), batch, s, nullptr).is_ok());
      ASSERT_TRUE(b.run_u8(x.data(), out, yb.data(), batch, s, nullptr).is_ok());
      ASSERT_EQ(ya, yb);
      std::vector<float> fa(ys), fb(ys, 1);
      ASSERT_TRUE(a.run_f32(x.data(), out, fa.data(), batch, s, nullptr).is_ok());
      ASSERT_TRUE(b.run_f32(x.data(), out, fb.data(), batch, s, nullptr).is_ok());
      ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), ys * sizeof(float)));
    }
}

// Another layout, size, zero point, alignment or a damaged header: refused with an error.
TEST(QConv, PrepackedBlobMismatchIsRefused) {
  const ConvCase cc{16, 24, 1, 3, 3, 1, 1, 1, 5, 5};
  const Conv2dParams p = params_of(cc);
  std::vector<int8_t> w(static_cast<size_t>(24 * 16 * 9), 3);
  auto made = QConvNhwcU8::create(p, w.data(), nullptr, 5, QIsa::kPortable);
  ASSERT_TRUE(made.is_ok());
  const QConvNhwcU8& a = **made;
  auto blob = copy_blob(a);
  const std::string layout = a.packed_layout();
  EXPECT_NE(layout.find("portable"), std::string::npos);
  auto bad = QConvNhwcU8::create_prepacked(p, layout + "-other", blob.get(), a.packed_bytes(), blob,
                                           5, QIsa::kPortable);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("this build packs"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(QConvNhwcU8::create_prepacked(p, layout, blob.get(), a.packed_bytes() - 64, blob, 5,
                                             QIsa::kPortable)
                   .is_ok());
  EXPECT_FALSE(QConvNhwcU8::create_prepacked(p, layout, blob.get(), a.packed_bytes(), blob, 6,
                                             QIsa::kPortable)
                   .is_ok());
  Conv2dParams other = p;
  other.out_channels = 32;  // another size of blob
  EXPECT_FALSE(QConvNhwcU8::create_prepacked(other, layout, blob.get(), a.packed_bytes(), blob, 5,
                                             QIsa::kPortable)
                   .is_ok());
  for (QIsa isa : supported_qisas())
    if (isa != QIsa::kPortable) {
      EXPECT_FALSE(
          QConvNhwcU8::create_prepacked(p, layout, blob.get(), a.packed_bytes(), blob, 5, isa)
              .is_ok())
          << qisa_name(isa);
    }
  // A damaged header (a copy with its magic changed).
  std::vector<uint8_t> copy(a.packed_bytes() + 64);
  uint8_t* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(copy.data()) + 63) / 64 * 64);
  std::memcpy(aligned, a.packed_data(), a.packed_bytes());
  aligned[0] ^= 1;
  EXPECT_FALSE(QConvNhwcU8::create_prepacked(p, layout, aligned, a.packed_bytes(), nullptr, 5,
                                             QIsa::kPortable)
                   .is_ok());
  // Not 64-byte aligned.
  std::memcpy(aligned + 1, a.packed_data(), a.packed_bytes() - 1);
  EXPECT_FALSE(QConvNhwcU8::create_prepacked(p, layout, aligned + 1, a.packed_bytes(), nullptr, 5,
                                             QIsa::kPortable)
                   .is_ok());
}

}  // namespace
}  // namespace brink::kernels
