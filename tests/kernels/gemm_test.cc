// kernels::gemm against a naive triple loop in double, for every ISA this machine (or qemu)
// runs: awkward M/N/K, padded strides, bias, every activation, accumulate, transposed and
// scaled B, K blocking, 1..3 threads, and no write outside C.
#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {
namespace {

const int64_t kSizes[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  11,
                          12, 13, 14, 15, 16, 17, 31, 33, 64, 100, 257};

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Case {
  int64_t m = 1, n = 1, k = 1;
  int64_t lda_pad = 0, ldb_pad = 0, ldc_pad = 0;
  bool bias = false;
  bool accumulate = false;
  bool b_transposed = false;
  bool unpacked = false;  // gemm_unpacked instead of pack_b + gemm
  float alpha = 1.0f;
  Activation act;
  int threads = 1;

  std::string describe(Isa isa) const {
    return std::string(isa_name(isa)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
           " k=" + std::to_string(k) + " pads=" + std::to_string(lda_pad) + "/" +
           std::to_string(ldb_pad) + "/" + std::to_string(ldc_pad) + (bias ? " bias" : "") +
           (accumulate ? " accumulate" : "") + (b_transposed ? " transB" : "") +
           (unpacked ? " unpacked" : "") + " alpha=" + std::to_string(alpha) +
           " act=" + activation_name(act.kind) + " threads=" + std::to_string(threads);
  }
};

// Runs `c` with `isa` and compares every element with the double-precision reference, within
// 2e-5 of the magnitude of its dot product; checks that C's row padding and the rows after
// it are untouched.
void check(const Case& c, Isa isa, ThreadPool* pool) {
  SCOPED_TRACE(c.describe(isa));
  const int64_t lda = c.k + c.lda_pad;
  const int64_t ldb = (c.b_transposed ? c.k : c.n) + c.ldb_pad;
  const int64_t ldc = c.n + c.ldc_pad;
  const uint32_t seed = static_cast<uint32_t>(c.m * 7919 + c.n * 104729 + c.k * 31);
  const std::vector<float> a = random_floats(static_cast<size_t>(c.m * lda), seed);
  const std::vector<float> b =
      random_floats(static_cast<size_t>((c.b_transposed ? c.n : c.k) * ldb), seed + 1);
  const std::vector<float> bias = random_floats(static_cast<size_t>(c.n), seed + 2);
  const std::vector<float> c_init = random_floats(static_cast<size_t>((c.m + 1) * ldc), seed + 3);
  std::vector<float> out = c_init;
  // Guards: row padding and one extra row must keep their values.
  const float* bias_ptr = c.bias ? bias.data() : nullptr;
  if (c.unpacked) {
    ASSERT_EQ(c.alpha, 1.0f);
    gemm_unpacked(c.m, c.n, c.k, a.data(), lda, b.data(), ldb, c.b_transposed, bias_ptr, out.data(),
                  ldc, c.act, pool, isa, c.accumulate);
  } else {
    const PackedB packed = pack_b(b.data(), c.k, c.n, ldb, c.b_transposed, isa, c.alpha);
    ASSERT_EQ(packed.k(), c.k);
    ASSERT_EQ(packed.n(), c.n);
    gemm(c.m, a.data(), lda, packed, bias_ptr, out.data(), ldc, c.act, pool, c.accumulate);
  }
  for (int64_t i = 0; i <= c.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (i == c.m || j >= c.n) {
        ASSERT_EQ(out[at], c_init[at]) << "wrote outside C at row " << i << " col " << j;
        continue;
      }
      double sum = 0.0, mag = 0.0;
      for (int64_t p = 0; p < c.k; ++p) {
        const double av = a[static_cast<size_t>(i * lda + p)];
        const double bv =
            c.alpha * b[static_cast<size_t>(c.b_transposed ? j * ldb + p : p * ldb + j)];
        sum += av * bv;
        mag += std::fabs(av * bv);
      }
      if (c.bias) {
        sum += bias[static_cast<size_t>(j)];
        mag += std::fabs(bias[static_cast<size_t>(j)]);
      }
      if (c.accumulate) {
        sum += c_init[at];
        mag += std::fabs(c_init[at]);
      }
      const double want = apply_activation_scalar(c.act, static_cast<float>(sum));
      const double tol = 2e-5 * mag + 1e-6;
      ASSERT_NEAR(out[at], want, tol) << "at row " << i << " col " << j;
    }
  }
}

// Every ISA this build can run here, with a pool per thread count.
class GemmTest : public ::testing::Test {
 protected:
  static ThreadPool* pool(int threads) {
    static ThreadPool p2(2), p3(3);
    return threads == 2 ? &p2 : threads == 3 ? &p3 : nullptr;
  }
};

TEST_F(GemmTest, AllSizes) {
  // Every (m, n) of the size list against a spread of k; the strides, bias and activation
  // rotate with the case so each combination is met somewhere without a full product.
  const int64_t ks[] = {1, 2, 3, 7, 16, 17, 33, 64, 257};
  const Activation acts[] = {{}, {ActivationKind::kRelu}, {ActivationKind::kClip, -0.5f, 0.5f}};
  for (Isa isa : supported_isas()) {
    int index = 0;
    for (int64_t m : kSizes)
      for (int64_t n : kSizes)
        for (int64_t k : ks) {
          if (m * n * k > 300'000) continue;  // keeps the qemu and ASan runs short
          Case c;
          c.m = m;
          c.n = n;
          c.k = k;
          c.lda_pad = index % 3 == 1 ? 3 : 0;
          c.ldc_pad = index % 4 == 2 ? 5 : 0;
          c.bias = index % 2 == 0;
          c.act = acts[index % 3];
          ++index;
          check(c, isa, nullptr);
          if (HasFatalFailure()) return;
        }
  }
}

TEST_F(GemmTest, LargeSizes) {
  for (Isa isa : supported_isas())
    for (int64_t m : {64, 100, 257})
      for (int64_t n : {33, 257})
        for (int64_t k : {100, 257}) {
          Case c;
          c.m = m;
          c.n = n;
          c.k = k;
          c.bias = true;
          check(c, isa, nullptr);
          if (HasFatalFailure()) return;
        }
}

TEST_F(GemmTest, KBlocking) {
  // K past one block (384): later blocks accumulate into C, the epilogue runs once.
  for (Isa isa : supported_isas())
    for (int64_t k : {385, 500, 769, 1100})
      for (bool accumulate : {false, true}) {
        Case c;
        c.m = 13;
        c.n = 37;
        c.k = k;
        c.lda_pad = 1;
        c.bias = true;
        c.accumulate = accumulate;
        c.act = {ActivationKind::kClip, -3.0f, 2.0f};
        check(c, isa, nullptr);
        if (HasFatalFailure()) return;
      }
}

TEST_F(GemmTest, EveryActivation) {
  const Activation acts[] = {
      {ActivationKind::kNone},
      {ActivationKind::kRelu},
      {ActivationKind::kClip, 0.0f, 6.0f},
      {ActivationKind::kClip, -0.25f, 0.25f},
      {ActivationKind::kLeakyRelu, 0.1f},
      {ActivationKind::kHardSigmoid, 0.2f, 0.5f},
      {ActivationKind::kHardSwish},
      {ActivationKind::kSigmoid},
      {ActivationKind::kSilu},
      {ActivationKind::kTanh},
      {ActivationKind::kGelu},
      {ActivationKind::kGeluTanh},
  };
  for (Isa isa : supported_isas())
    for (const Activation& act : acts)
      for (int threads : {1, 2}) {
        for (int64_t k : {5, 400}) {
          Case c;
          c.m = 19;
          c.n = 45;
          c.k = k;
          c.ldc_pad = 3;
          c.bias = true;
          c.act = act;
          c.threads = threads;
          check(c, isa, pool(threads));
          if (HasFatalFailure()) return;
        }
      }
}

TEST_F(GemmTest, Threads) {
  // Shapes whose split favours N (small m), M (tall-skinny) or both.
  const int64_t shapes[][3] = {{1, 257, 64},    {2, 100, 33},  {257, 17, 31}, {257, 64, 100},
                               {100, 100, 100}, {33, 257, 17}, {1, 1, 300},   {64, 1000, 16}};
  for (Isa isa : supported_isas())
    for (int threads : {1, 2, 3})
      for (const auto& s : shapes) {
        Case c;
        c.m = s[0];
        c.n = s[1];
        c.k = s[2];
        c.bias = true;
        c.act = {ActivationKind::kRelu};
        c.threads = threads;
        check(c, isa, pool(threads));
        if (HasFatalFailure()) return;
      }
}

TEST_F(GemmTest, TransposedScaledAccumulateUnpacked) {
  for (Isa isa : supported_isas())
    for (int64_t m : {1, 7, 33})
      for (int64_t n : {1, 9, 40})
        for (int64_t k : {1, 17, 390}) {
          for (int variant = 0; variant < 4; ++variant) {
            Case c;
            c.m = m;
            c.n = n;
            c.k = k;
            c.b_transposed = variant % 2 == 1;
            c.ldb_pad = 2;
            c.lda_pad = 1;
            c.accumulate = variant >= 2;
            c.unpacked = variant == 3;
            c.alpha = c.unpacked ? 1.0f : 0.75f;
            c.bias = variant != 1;
            c.act = {ActivationKind::kSilu};
            c.threads = 2;
            check(c, isa, pool(2));
            if (HasFatalFailure()) return;
          }
        }
}

TEST_F(GemmTest, ZeroK) {
  // A product over nothing: C = act(bias (+ C)).
  for (Isa isa : supported_isas())
    for (bool accumulate : {false, true}) {
      Case c;
      c.m = 5;
      c.n = 19;
      c.k = 0;
      c.bias = true;
      c.accumulate = accumulate;
      c.act = {ActivationKind::kRelu};
      check(c, isa, nullptr);
      if (HasFatalFailure()) return;
    }
}

TEST_F(GemmTest, PackIntoCallerBuffer) {
  for (Isa isa : supported_isas()) {
    const int64_t k = 70, n = 50, m = 9;
    const std::vector<float> a = random_floats(static_cast<size_t>(m * k), 1);
    const std::vector<float> b = random_floats(static_cast<size_t>(k * n), 2);
    const size_t floats = packed_b_floats(k, n, isa);
    float* buffer = static_cast<float*>(std::aligned_alloc(64, (floats * 4 + 63) / 64 * 64));
    const PackedB view = pack_b_into(buffer, b.data(), k, n, n, false, isa);
    const PackedB owned = pack_b(b.data(), k, n, n, false, isa);
    EXPECT_FALSE(view.empty());
    EXPECT_TRUE(PackedB().empty());
    EXPECT_EQ(view.size_floats(), floats);
    EXPECT_EQ(view.nr(), gemm_tile(isa).nr);
    std::vector<float> c1(static_cast<size_t>(m * n)), c2(c1.size());
    gemm(m, a.data(), k, view, nullptr, c1.data(), n, {}, nullptr);
    gemm(m, a.data(), k, owned, nullptr, c2.data(), n, {}, nullptr);
    EXPECT_EQ(c1, c2) << isa_name(isa);
    std::free(buffer);
  }
}

}  // namespace
}  // namespace brink::kernels
