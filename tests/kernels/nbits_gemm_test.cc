// kernels::nbits_gemm (INT4 weight-only, MatMulNBits layout) against "dequantize B with the
// plain reference, then a naive float product", for every ISA this machine (or qemu) runs:
// M, N, K of 1..17 and past the tile sizes, K not a multiple of the block size (the padded
// last block) and odd K, block sizes 16/32/64/128, with and without zero points and bias,
// padded strides, 1..3 threads, and no write outside C.
#include "kernels/nbits_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

struct Case {
  int64_t m = 1, n = 1, k = 1, block = 32;
  bool zero_points = false, bias = false;
  int64_t lda_pad = 0, ldc_pad = 0;
  float alpha = 1.0f;
  std::string describe(Isa isa) const {
    return std::string(isa_name(isa)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
           " k=" + std::to_string(k) + " block=" + std::to_string(block) +
           (zero_points ? " zp" : "") + (bias ? " bias" : "") + " pads=" + std::to_string(lda_pad) +
           "/" + std::to_string(ldc_pad) + " alpha=" + std::to_string(alpha);
  }
};

void check(const Case& c, Isa isa, ThreadPool* pool) {
  SCOPED_TRACE(c.describe(isa));
  std::mt19937 rng(static_cast<uint32_t>(c.m * 7919 + c.n * 104729 + c.k * 31 + c.block));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int64_t k_blocks = (c.k + c.block - 1) / c.block, blob = c.block / 2;
  std::vector<uint8_t> b(static_cast<size_t>(c.n * k_blocks * blob));
  for (uint8_t& v : b) v = static_cast<uint8_t>(byte(rng));
  std::vector<float> scales(static_cast<size_t>(c.n * k_blocks));
  for (float& s : scales) s = uni(rng) * 0.1f;
  std::vector<uint8_t> zp;
  if (c.zero_points) {
    zp.resize(static_cast<size_t>(c.n * ((k_blocks + 1) / 2)));
    for (uint8_t& v : zp) v = static_cast<uint8_t>(byte(rng));
  }
  std::vector<float> bias(static_cast<size_t>(c.n));
  for (float& v : bias) v = uni(rng);
  const int64_t lda = c.k + c.lda_pad, ldc = c.n + c.ldc_pad;
  std::vector<float> a(static_cast<size_t>(c.m * lda));
  for (float& v : a) v = uni(rng);

  const std::vector<float> w = dequantize_nbits(
      b.data(), scales.data(), c.zero_points ? zp.data() : nullptr, c.k, c.n, c.block);
  std::vector<double> want(static_cast<size_t>(c.m * c.n));
  double max_abs = 0;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double s = c.bias ? bias[static_cast<size_t>(j)] : 0.0;
      for (int64_t kk = 0; kk < c.k; ++kk)
        s += static_cast<double>(a[static_cast<size_t>(i * lda + kk)]) *
             (static_cast<double>(w[static_cast<size_t>(kk * c.n + j)]) * c.alpha);
      want[static_cast<size_t>(i * c.n + j)] = s;
      max_abs = std::max(max_abs, std::fabs(s));
    }

  const PackedNBits p = pack_nbits(b.data(), scales.data(), c.zero_points ? zp.data() : nullptr,
                                   c.k, c.n, c.block, isa, c.alpha);
  const float sentinel = -12345.0f;
  std::vector<float> y(static_cast<size_t>(c.m * ldc), sentinel);
  nbits_gemm(c.m, a.data(), lda, p, c.bias ? bias.data() : nullptr, y.data(), ldc, pool);
  // Float sums of k terms of size <= max|a| * max|w|: a tolerance relative to the largest
  // output and to k.
  const double tol = 1e-5 * (1.0 + max_abs) * std::sqrt(static_cast<double>(c.k) + 1.0);
  int bad = 0;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = y[static_cast<size_t>(i * ldc + j)];
      if (j >= c.n) {
        if (got != sentinel && bad++ < 5) ADD_FAILURE() << "wrote past C at " << i << "," << j;
        continue;
      }
      const double d = std::fabs(got - want[static_cast<size_t>(i * c.n + j)]);
      if (!(d <= tol) && bad++ < 5)
        ADD_FAILURE() << "C[" << i << "][" << j << "] = " << got << ", expected "
                      << want[static_cast<size_t>(i * c.n + j)];
    }
}

TEST(NBitsGemm, DequantizeMatchesTheLayout) {
  // Column 0, block 0: bytes 0x21, 0x43 hold q = 1, 2, 3, 4; zero point 3 (low nibble of 0xA3).
  const std::vector<uint8_t> b = {0x21, 0x43};
  const std::vector<float> scale = {0.5f};
  const std::vector<uint8_t> zp = {0xA3};
  const std::vector<float> w = dequantize_nbits(b.data(), scale.data(), zp.data(), 3, 1, 4);
  EXPECT_EQ(w, (std::vector<float>{-1.0f, -0.5f, 0.0f}));
  const std::vector<float> sym = dequantize_nbits(b.data(), scale.data(), nullptr, 4, 1, 4);
  EXPECT_EQ(sym, (std::vector<float>{-3.5f, -3.0f, -2.5f, -2.0f}));
}

TEST(NBitsGemm, AwkwardShapesEveryIsa) {
  const int64_t sizes[] = {1, 2, 3, 5, 8, 9, 16, 17};
  for (Isa isa : supported_isas())
    for (int64_t m : sizes)
      for (int64_t n : {1, 7, 16, 17, 33})
        for (int64_t k : {1, 2, 15, 16, 17, 33, 70}) {
          Case c;
          c.m = m;
          c.n = n;
          c.k = k;
          c.block = 16;
          c.zero_points = (m + n + k) % 2 == 0;
          c.bias = (m + k) % 3 != 0;
          check(c, isa, nullptr);
        }
}

TEST(NBitsGemm, BlockSizesZeroPointsBias) {
  for (Isa isa : supported_isas())
    for (int64_t block : {int64_t{16}, int64_t{32}, int64_t{64}, int64_t{128}})
      for (int64_t k : {block - 1, block, block + 1, 3 * block + 5, int64_t{384}})
        for (int64_t m : {1, 4, 7, 19})
          for (bool zp : {false, true})
            for (bool bias : {false, true}) {
              Case c;
              c.m = m;
              c.n = 37;
              c.k = k;
              c.block = block;
              c.zero_points = zp;
              c.bias = bias;
              check(c, isa, nullptr);
            }
}

TEST(NBitsGemm, StridesAlphaThreads) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (Isa isa : supported_isas())
      for (int64_t m : {1, 3, 13, 40})
        for (int64_t n : {5, 48, 100}) {
          Case c;
          c.m = m;
          c.n = n;
          c.k = 200;
          c.block = 32;
          c.zero_points = true;
          c.bias = true;
          c.lda_pad = 3;
          c.ldc_pad = 5;
          c.alpha = 0.75f;
          check(c, isa, &pool);
        }
  }
}

}  // namespace
}  // namespace brink::kernels
