// kernels::qgemm_u8 / qgemm_f32 against a naive loop, for every QIsa this machine (or qemu)
// runs: exact equality (the reference does the same float rounding), awkward M/N/K, padded
// strides, transposed B, zero points 0/128/255, per-tensor and per-channel scales, clamps,
// large K, 1..3 threads, a float bias after the scale (f32 output), weights that saturate
// vpmaddubsw (the exact path) and weights that cannot, and no write outside y.
#include "kernels/qgemm.h"

#include <gtest/gtest.h>

#include <array>
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

const int64_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 70};

enum class Weights { kSmall, kFull, kExtreme };  // |b| <= 64, [-128, 127], only -128/127

struct Case {
  int64_t m = 1, n = 1, k = 1;
  int64_t lda_pad = 0, ldb_pad = 0, ldy_pad = 0;
  bool b_transposed = false;
  bool bias = true;
  bool per_channel = true;
  bool f32 = false;
  bool float_bias = false;  // f32 only: QuantOutput::float_bias
  uint8_t a_zero = 0;
  int32_t y_zero = 0;
  uint8_t lo = 0, hi = 255;
  float scale_mul = 1.0f;  // 0: scale 0.5 everywhere (many exact ties)
  Weights weights = Weights::kSmall;
  bool a_extreme = false;  // A all 255 (with kExtreme: every pair saturates vpmaddubsw)
  int threads = 1;

  std::string describe(QIsa isa) const {
    return std::string(qisa_name(isa)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
           " k=" + std::to_string(k) + " pads=" + std::to_string(lda_pad) + "/" +
           std::to_string(ldb_pad) + "/" + std::to_string(ldy_pad) +
           (b_transposed ? " transB" : "") + (bias ? " bias" : "") +
           (per_channel ? " per-channel" : " per-tensor") + (f32 ? " f32" : " u8") +
           (f32 && float_bias ? " float-bias" : "") + " a_zero=" + std::to_string(a_zero) +
           " y_zero=" + std::to_string(y_zero) + " clamp=" + std::to_string(lo) + ".." +
           std::to_string(hi) + " weights=" + std::to_string(static_cast<int>(weights)) +
           " threads=" + std::to_string(threads);
  }
};

void check(const Case& c, QIsa isa, ThreadPool* pool) {
  SCOPED_TRACE(c.describe(isa));
  const int64_t lda = c.k + c.lda_pad;
  const int64_t ldb = (c.b_transposed ? c.k : c.n) + c.ldb_pad;
  const int64_t ldy = c.n + c.ldy_pad;
  std::mt19937 rng(static_cast<uint32_t>(c.m * 7919 + c.n * 104729 + c.k * 31 + c.a_zero));
  std::vector<uint8_t> a(static_cast<size_t>(c.m * lda));
  for (uint8_t& v : a) v = c.a_extreme ? 255 : static_cast<uint8_t>(rng() % 256);
  std::vector<int8_t> b(static_cast<size_t>((c.b_transposed ? c.n : c.k) * ldb));
  for (int8_t& v : b) {
    switch (c.weights) {
      case Weights::kSmall:
        v = static_cast<int8_t>(static_cast<int>(rng() % 129) - 64);
        break;
      case Weights::kFull:
        v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
        break;
      case Weights::kExtreme:
        v = static_cast<int8_t>(rng() % 2 ? 127 : -128);
        break;
    }
  }
  std::vector<int32_t> bias(static_cast<size_t>(c.n));
  for (int32_t& v : bias) v = static_cast<int32_t>(rng() % 200001) - 100000;
  // Scales that spread the outputs over the u8 range (acc is about 128 * 50 * sqrt(k) wide).
  std::vector<float> scale(static_cast<size_t>(c.n));
  const float base = c.scale_mul == 0.0f
                         ? 0.5f
                         : c.scale_mul * 60.0f / (6400.0f * std::sqrt(static_cast<float>(c.k)));
  for (float& v : scale) v = c.scale_mul == 0.0f ? 0.5f : base * (0.5f + (rng() % 1000) / 1000.0f);

  std::vector<float> float_bias(static_cast<size_t>(c.n));
  for (float& v : float_bias) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 7.0f;

  // The reference: exact int64 sums, then the output stage in float as qgemm.h specifies.
  auto bval = [&](int64_t kk, int64_t j) -> int64_t {
    return c.b_transposed ? b[static_cast<size_t>(j * ldb + kk)]
                          : b[static_cast<size_t>(kk * ldb + j)];
  };
  std::vector<int32_t> acc(static_cast<size_t>(c.m * c.n));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      int64_t s = c.bias ? bias[static_cast<size_t>(j)] : 0;
      for (int64_t kk = 0; kk < c.k; ++kk)
        s += (static_cast<int64_t>(a[static_cast<size_t>(i * lda + kk)]) - c.a_zero) * bval(kk, j);
      acc[static_cast<size_t>(i * c.n + j)] = static_cast<int32_t>(s);
    }

  QuantOutput out;
  out.scale = scale.data();
  out.per_channel = c.per_channel;
  out.zero_point = c.y_zero;
  out.min = c.lo;
  out.max = c.hi;
  if (c.float_bias) out.float_bias = float_bias.data();
  const PackedQB packed = pack_qb(b.data(), c.k, c.n, ldb, c.b_transposed, isa);
  ASSERT_FALSE(packed.empty());
  ASSERT_EQ(packed.k(), c.k);
  ASSERT_EQ(packed.n(), c.n);
  ASSERT_EQ(packed.isa(), isa);
  if (c.weights == Weights::kExtreme && c.k >= 2) {
    ASSERT_TRUE(packed.exact());
  }
  if (c.weights == Weights::kSmall) {
    ASSERT_FALSE(packed.exact());
  }
  const int32_t* bias_ptr = c.bias ? bias.data() : nullptr;
  const size_t y_size = static_cast<size_t>((c.m + 1) * ldy);  // one guard row
  if (c.f32) {
    std::vector<float> y(y_size, -777.0f);
    qgemm_f32(c.m, a.data(), lda, c.a_zero, packed, bias_ptr, out, y.data(), ldy, pool);
    for (int64_t i = 0; i <= c.m; ++i)
      for (int64_t j = 0; j < ldy; ++j) {
        const float got = y[static_cast<size_t>(i * ldy + j)];
        if (i == c.m || j >= c.n) {
          ASSERT_EQ(got, -777.0f) << "wrote outside y at " << i << "," << j;
          continue;
        }
        const float s = scale[c.per_channel ? static_cast<size_t>(j) : 0];
        // volatile: the product is rounded before the bias is added (no FMA), as qgemm.h says.
        volatile float product = static_cast<float>(acc[static_cast<size_t>(i * c.n + j)]) * s;
        const float want = c.float_bias ? product + float_bias[static_cast<size_t>(j)] : product;
        ASSERT_EQ(got, want) << "at " << i << "," << j;
      }
  } else {
    std::vector<uint8_t> y(y_size, 0xAB);
    qgemm_u8(c.m, a.data(), lda, c.a_zero, packed, bias_ptr, out, y.data(), ldy, pool);
    for (int64_t i = 0; i <= c.m; ++i)
      for (int64_t j = 0; j < ldy; ++j) {
        const int got = y[static_cast<size_t>(i * ldy + j)];
        if (i == c.m || j >= c.n) {
          ASSERT_EQ(got, 0xAB) << "wrote outside y at " << i << "," << j;
          continue;
        }
        const float s = scale[c.per_channel ? static_cast<size_t>(j) : 0];
        const float v = static_cast<float>(acc[static_cast<size_t>(i * c.n + j)]) * s;
        long q = std::lrint(v) + c.y_zero;  // default rounding: to nearest, ties to even
        q = std::min<long>(std::max<long>(q, c.lo), c.hi);
        ASSERT_EQ(got, q) << "at " << i << "," << j << " acc "
                          << acc[static_cast<size_t>(i * c.n + j)];
      }
  }
}

TEST(QGemm, IsaListStartsPortableAndNamesAreDistinct) {
  const std::vector<QIsa> isas = supported_qisas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), QIsa::kPortable);
  EXPECT_TRUE(qisa_supported(best_qisa()));
  std::string names;
  for (QIsa isa : isas) {
    EXPECT_NE(std::string(qisa_name(isa)), "unknown");
    names += std::string(" ") + qisa_name(isa);
  }
  std::printf("int8 ISAs tested here:%s\n", names.c_str());
}

TEST(QGemm, AllShapesEveryIsa) {
  int index = 0;
  for (QIsa isa : supported_qisas())
    for (int64_t m : kSizes)
      for (int64_t n : kSizes)
        for (int64_t k : kSizes) {
          // Keep the sweep modest (qemu): the full M x N cross for a few K, a diagonal else.
          if (!(k == 1 || k == 5 || k == 33 || m == n || m == 17 || n == 17)) continue;
          Case c;
          c.m = m;
          c.n = n;
          c.k = k;
          ++index;
          c.a_zero = static_cast<uint8_t>(index % 3 == 0 ? 0 : index % 3 == 1 ? 128 : 255);
          c.y_zero = index % 5 == 0 ? 0 : (index % 5 == 1 ? 255 : 100);
          c.per_channel = index % 2 == 0;
          c.b_transposed = index % 7 == 3;
          c.bias = index % 11 != 5;
          c.f32 = index % 4 == 1;
          c.float_bias = index % 8 == 1;
          c.weights = index % 3 == 1 ? Weights::kFull : Weights::kSmall;
          if (index % 6 == 2) {
            c.lo = 37;
            c.hi = 201;
          }
          c.lda_pad = index % 5 == 2 ? 3 : 0;
          c.ldb_pad = index % 7 == 1 ? 5 : 0;
          c.ldy_pad = index % 3 == 2 ? 7 : 0;
          check(c, isa, nullptr);
          if (HasFatalFailure()) return;
        }
}

TEST(QGemm, LargeKAndThreads) {
  ThreadPool pool(3);
  for (QIsa isa : supported_qisas())
    for (int64_t k : {576, 1152, 2304})
      for (int64_t m : {1, 9, 70})
        for (bool f32 : {false, true}) {
          Case c;
          c.m = m;
          c.n = 37;
          c.k = k;
          c.a_zero = 128;
          c.y_zero = 128;
          c.f32 = f32;
          c.float_bias = m != 9;
          c.weights = k == 1152 ? Weights::kFull : Weights::kSmall;
          c.per_channel = k != 576;
          c.threads = 3;
          check(c, isa, &pool);
          if (HasFatalFailure()) return;
        }
}

TEST(QGemm, RoundsHalfToEven) {
  for (QIsa isa : supported_qisas())
    for (int64_t k : {1, 2, 7}) {
      Case c;
      c.m = 19;
      c.n = 35;
      c.k = k;
      c.bias = false;
      c.scale_mul = 0.0f;  // scale 0.5: every odd acc is a tie
      c.per_channel = false;
      c.y_zero = 128;
      check(c, isa, nullptr);
      if (HasFatalFailure()) return;
    }
}

TEST(QGemm, ClampsAndZeroPoints) {
  for (QIsa isa : supported_qisas())
    for (uint8_t a_zero : {0, 128, 255})
      for (int32_t y_zero : {0, 128, 255}) {
        Case c;
        c.m = 13;
        c.n = 47;
        c.k = 29;
        c.a_zero = a_zero;
        c.y_zero = y_zero;
        c.lo = static_cast<uint8_t>(y_zero == 0 ? 0 : 10);
        c.hi = static_cast<uint8_t>(y_zero == 255 ? 255 : 240);
        c.scale_mul = 4.0f;  // wide: many values clamp
        check(c, isa, nullptr);
        if (HasFatalFailure()) return;
      }
}

// Weights whose pairs saturate vpmaddubsw's int16 sum (255 * 127 * 2 > 32767): pack_qb must
// notice and the x86 kernels take the exact path; small weights keep the fast path.
TEST(QGemm, SaturatingPairsTakeTheExactPath) {
  for (QIsa isa : supported_qisas()) {
    for (Weights w : {Weights::kSmall, Weights::kFull, Weights::kExtreme}) {
      for (int64_t k : {2, 3, 64, 259}) {
        Case c;
        c.m = 11;
        c.n = 40;
        c.k = k;
        c.weights = w;
        c.a_extreme = w == Weights::kExtreme;
        c.a_zero = 0;
        c.f32 = true;  // the raw sums, unclamped
        c.bias = false;
        check(c, isa, nullptr);
        if (HasFatalFailure()) return;
      }
    }
    // The flag itself: one pair at the limit (64 + 64 = 128) is fine, one past it is not.
    std::vector<int8_t> b = {64, -64, 1, 2};  // k = 4, n = 1: pairs (64,-64), (1,2)
    EXPECT_FALSE(pack_qb(b.data(), 4, 1, 1, false, isa).exact());
    b[1] = -65;
    EXPECT_TRUE(pack_qb(b.data(), 4, 1, 1, false, isa).exact());
    b = {127, 0, 0, 0, 2, 127};  // k = 6: the saturating pair is (k4, k5) = (2, 127)
    EXPECT_FALSE(pack_qb(b.data(), 4, 1, 1, false, isa).exact());
    EXPECT_TRUE(pack_qb(b.data(), 6, 1, 1, false, isa).exact());
  }
}

TEST(QGemm, EmptyAndZeroK) {
  for (QIsa isa : supported_qisas()) {
    Case c;
    c.m = 5;
    c.n = 9;
    c.k = 0;
    check(c, isa, nullptr);
    const PackedQB packed = pack_qb(nullptr, 4, 0, 0, false, isa);
    qgemm_u8(3, nullptr, 4, 0, packed, nullptr, QuantOutput{}, nullptr, 0, nullptr);
    EXPECT_TRUE(pack_qb(nullptr, -1, 3, 3, false, isa).empty());
    EXPECT_TRUE(PackedQB().empty());
  }
}

// pack_qb -> the blob copied elsewhere (as a package's mapping holds it) -> adopt_qb: the same
// bytes out, on awkward shapes (K and N past and short of the tiles, saturating pairs).
TEST(QGemm, AdoptedBlobRunsIdentically) {
  std::mt19937 rng(7);
  for (QIsa isa : supported_qisas())
    for (const auto& [m, k, n] : std::vector<std::array<int64_t, 3>>{
             {1, 1, 1}, {3, 5, 17}, {9, 67, 33}, {17, 128, 65}, {4, 3, 100}}) {
      SCOPED_TRACE(std::string(qisa_name(isa)) + " " + std::to_string(m) + "x" + std::to_string(k) +
                   "x" + std::to_string(n));
      std::vector<int8_t> b(static_cast<size_t>(k * n));
      for (int8_t& v : b) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
      std::vector<uint8_t> a(static_cast<size_t>(m * k));
      for (uint8_t& v : a) v = static_cast<uint8_t>(rng());
      std::vector<int32_t> bias(static_cast<size_t>(n));
      for (int32_t& v : bias) v = static_cast<int32_t>(rng() % 2001) - 1000;
      std::vector<float> scale(static_cast<size_t>(n));
      for (float& v : scale) v = 1e-4f * static_cast<float>(1 + rng() % 50);
      const PackedQB packed = pack_qb(b.data(), k, n, k, true, isa);
      const size_t bytes = packed.blob_bytes();
      ASSERT_EQ(bytes % 64, 0u);
      std::shared_ptr<void> copy(allocate_aligned(bytes),
                                 [bytes](void* q) { free_aligned(q, bytes); });
      std::memcpy(copy.get(), packed.blob(), bytes);
      auto adopted = adopt_qb(packed.packed_layout(), copy.get(), bytes, copy, k, n, isa);
      ASSERT_TRUE(adopted.is_ok()) << adopted.status().message();
      EXPECT_EQ(adopted->blob(), copy.get());
      EXPECT_EQ(adopted->exact(), packed.exact());
      QuantOutput out;
      out.scale = scale.data();
      out.zero_point = 3;
      std::vector<uint8_t> y0(static_cast<size_t>(m * n)), y1(y0.size(), 1);
      qgemm_u8(m, a.data(), k, 130, packed, bias.data(), out, y0.data(), n, nullptr);
      qgemm_u8(m, a.data(), k, 130, *adopted, bias.data(), out, y1.data(), n, nullptr);
      ASSERT_EQ(y0, y1);
      std::vector<float> f0(y0.size()), f1(y0.size(), 1);
      qgemm_f32(m, a.data(), k, 7, packed, bias.data(), out, f0.data(), n, nullptr);
      qgemm_f32(m, a.data(), k, 7, *adopted, bias.data(), out, f1.data(), n, nullptr);
      ASSERT_EQ(0, std::memcmp(f0.data(), f1.data(), f0.size() * sizeof(float)));
    }
}

TEST(QGemm, AdoptRefusesAnotherLayout) {
  std::vector<int8_t> b(40 * 24, 5);
  const PackedQB packed = pack_qb(b.data(), 40, 24, 24, false, QIsa::kPortable);
  const std::string layout = packed.packed_layout();
  const size_t bytes = packed.blob_bytes();
  EXPECT_TRUE(adopt_qb(layout, packed.blob(), bytes, nullptr, 40, 24, QIsa::kPortable).is_ok());
  auto bad = adopt_qb(layout + "x", packed.blob(), bytes, nullptr, 40, 24, QIsa::kPortable);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("this build packs"), std::string::npos);
  EXPECT_FALSE(
      adopt_qb(layout, packed.blob(), bytes - 64, nullptr, 40, 24, QIsa::kPortable).is_ok());
  EXPECT_FALSE(adopt_qb(layout, packed.blob(), bytes, nullptr, 41, 24, QIsa::kPortable).is_ok());
  EXPECT_FALSE(adopt_qb(layout, packed.blob(), bytes, nullptr, 40, 25, QIsa::kPortable).is_ok());
  for (QIsa isa : supported_qisas())
    if (isa != QIsa::kPortable) {
      EXPECT_FALSE(adopt_qb(layout, packed.blob(), bytes, nullptr, 40, 24, isa).is_ok())
          << qisa_name(isa);
    }
  std::vector<uint8_t> copy(bytes + 64);
  auto* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(copy.data()) + 63) / 64 * 64);
  std::memcpy(aligned, packed.blob(), bytes);
  aligned[1] ^= 1;  // the magic
  EXPECT_FALSE(adopt_qb(layout, aligned, bytes, nullptr, 40, 24, QIsa::kPortable).is_ok());
  std::memcpy(aligned + 4, packed.blob(), bytes - 4);
  EXPECT_FALSE(adopt_qb(layout, aligned + 4, bytes, nullptr, 40, 24, QIsa::kPortable).is_ok());
}

}  // namespace
}  // namespace brink::kernels
