// DFT, STFT, window functions, MelWeightMatrix and Det against naive formulas in double.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

using cd = std::complex<double>;
constexpr double kPi = std::numbers::pi;

Result<Tensor> run(const std::string& op, int64_t opset, const std::vector<const Tensor*>& inputs,
                   std::vector<ir::Attribute> attrs = {}) {
  auto out = evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs);
  if (!out.is_ok()) return out.status();
  return (*out)[0];
}

std::vector<double> random_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> v(count);
  for (double& x : v) x = dist(rng);
  return v;
}

// The DFT of x (zero-padded or truncated to n) by its definition.
std::vector<cd> naive_dft(const std::vector<cd>& x, int64_t n, bool inverse) {
  std::vector<cd> out(static_cast<size_t>(n));
  const double sign = inverse ? 1 : -1;
  for (int64_t k = 0; k < n; ++k) {
    cd s(0, 0);
    for (int64_t j = 0; j < n && j < static_cast<int64_t>(x.size()); ++j)
      s += x[static_cast<size_t>(j)] *
           std::polar(1.0, sign * 2 * kPi * static_cast<double>((j * k) % n) / double(n));
    out[static_cast<size_t>(k)] = inverse ? s / double(n) : s;
  }
  return out;
}

// Lengths covering radix-2, the direct path and Bluestein (long, not a power of two).
class DftLength : public ::testing::TestWithParam<int64_t> {};

TEST_P(DftLength, ComplexForwardAndInverseMatchDefinition) {
  const int64_t n = GetParam();
  const std::vector<double> raw = random_values(static_cast<size_t>(2 * n), 11);
  std::vector<cd> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = cd(raw[size_t(2 * i)], raw[size_t(2 * i + 1)]);
  Tensor in = Tensor::from_vector<double>({1, n, 2}, raw);
  for (bool inverse : {false, true}) {
    auto out = run("DFT", 17, {&in}, {make_attr("inverse", int64_t{inverse})});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    ASSERT_EQ(out->shape(), (Shape{1, n, 2}));
    const std::vector<cd> want = naive_dft(x, n, inverse);
    for (int64_t k = 0; k < n; ++k) {
      EXPECT_NEAR(out->data<double>()[2 * k], want[size_t(k)].real(), 1e-9) << k;
      EXPECT_NEAR(out->data<double>()[2 * k + 1], want[size_t(k)].imag(), 1e-9) << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Signal, DftLength, ::testing::Values(1, 2, 3, 8, 12, 64, 97, 100, 256));

TEST(Signal, DftRealOnesidedWithPaddingAlongInnerAxis) {
  // [batch=2, 3, 5, 1], transformed along axis 2 with dft_length 8 (zero-padded), onesided.
  const std::vector<double> raw = random_values(30, 5);
  Tensor in = Tensor::from_vector<float>({2, 3, 5, 1}, std::vector<float>(raw.begin(), raw.end()));
  Tensor len = Tensor::scalar<int64_t>(8);
  auto out = run("DFT", 17, {&in, &len},
                 {make_attr("axis", int64_t{2}), make_attr("onesided", int64_t{1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->shape(), (Shape{2, 3, 5, 2}));
  for (int64_t b = 0; b < 6; ++b) {
    std::vector<cd> x;
    for (int64_t j = 0; j < 5; ++j) x.emplace_back(static_cast<float>(raw[size_t(b * 5 + j)]), 0);
    const std::vector<cd> want = naive_dft(x, 8, false);
    for (int64_t k = 0; k < 5; ++k) {
      EXPECT_NEAR(out->data<float>()[(b * 5 + k) * 2], want[size_t(k)].real(), 1e-5);
      EXPECT_NEAR(out->data<float>()[(b * 5 + k) * 2 + 1], want[size_t(k)].imag(), 1e-5);
    }
  }
}

TEST(Signal, DftOpset20TakesAxisAsInputAndIrfftInvertsRfft) {
  const std::vector<double> raw = random_values(2 * 7 * 10, 9);
  Tensor x = Tensor::from_vector<double>({2, 7, 10, 1}, raw);
  Tensor axis = Tensor::scalar<int64_t>(-2);  // the length-10 axis
  auto spectrum = run("DFT", 20, {&x, nullptr, &axis}, {make_attr("onesided", int64_t{1})});
  ASSERT_TRUE(spectrum.is_ok()) << spectrum.status().message();
  ASSERT_EQ(spectrum->shape(), (Shape{2, 7, 6, 2}));
  // IRFFT's default length is 2 * (6 - 1) = 10, giving back the real signal.
  auto back = run("DFT", 20, {&*spectrum, nullptr, &axis},
                  {make_attr("onesided", int64_t{1}), make_attr("inverse", int64_t{1})});
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  ASSERT_EQ(back->shape(), x.shape());
  for (size_t i = 0; i < raw.size(); ++i) EXPECT_NEAR(back->data<double>()[i], raw[i], 1e-12);
  // Opset 20's default axis is -2 as well.
  auto dflt = run("DFT", 20, {&x}, {make_attr("onesided", int64_t{1})});
  ASSERT_TRUE(dflt.is_ok()) << dflt.status().message();
  EXPECT_EQ(dflt->shape(), spectrum->shape());
}

TEST(Signal, DftRejectsComplexAxisAndBadLength) {
  Tensor x = Tensor::zeros(DataType::kFloat32, {1, 4, 2});
  EXPECT_FALSE(run("DFT", 17, {&x}, {make_attr("axis", int64_t{2})}).is_ok());
  EXPECT_FALSE(run("DFT", 17, {&x}, {make_attr("axis", int64_t{-1})}).is_ok());
  Tensor zero = Tensor::scalar<int32_t>(0);
  EXPECT_FALSE(run("DFT", 17, {&x, &zero}).is_ok());
  Tensor three = Tensor::zeros(DataType::kFloat32, {1, 4, 3});
  EXPECT_FALSE(run("DFT", 17, {&three}).is_ok());
}

TEST(Signal, StftMatchesWindowedDftOfEachFrame) {
  const int64_t length = 40, frame = 12, step = 5;
  const std::vector<double> raw = random_values(2 * length, 21);
  Tensor sig =
      Tensor::from_vector<float>({2, length, 1}, std::vector<float>(raw.begin(), raw.end()));
  Tensor step_t = Tensor::scalar<int64_t>(step);
  std::vector<float> win(frame);
  for (int64_t i = 0; i < frame; ++i) win[size_t(i)] = 0.5f + 0.04f * float(i);
  Tensor window = Tensor::from_vector<float>({frame}, win);
  auto out = run("STFT", 17, {&sig, &step_t, &window});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const int64_t frames = (length - frame) / step + 1, bins = frame / 2 + 1;
  ASSERT_EQ(out->shape(), (Shape{2, frames, bins, 2}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      std::vector<cd> x;
      for (int64_t j = 0; j < frame; ++j)
        x.emplace_back(double(float(raw[size_t(b * length + f * step + j)])) * win[size_t(j)], 0);
      const std::vector<cd> want = naive_dft(x, frame, false);
      for (int64_t k = 0; k < bins; ++k) {
        const float* got = out->data<float>() + ((b * frames + f) * bins + k) * 2;
        EXPECT_NEAR(got[0], want[size_t(k)].real(), 1e-4);
        EXPECT_NEAR(got[1], want[size_t(k)].imag(), 1e-4);
      }
    }
  // A frame_length that disagrees with the window is an error.
  Tensor wrong = Tensor::scalar<int64_t>(frame + 1);
  auto bad = evaluate_node(make_node("STFT", 4, 1), 17, {&sig, &step_t, &window, &wrong});
  EXPECT_FALSE(bad.is_ok());
}

TEST(Signal, StftWithoutWindowUsesFrameLengthAndFullSpectrum) {
  Tensor sig = Tensor::from_vector<double>({1, 8, 2}, random_values(16, 4));
  Tensor step = Tensor::scalar<int32_t>(2);
  Tensor frame = Tensor::scalar<int32_t>(4);
  auto out = evaluate_node(make_node("STFT", 4, 1, {make_attr("onesided", int64_t{0})}), 17,
                           {&sig, &step, nullptr, &frame});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 3, 4, 2}));
}

TEST(Signal, WindowsMatchTheirFormulas) {
  Tensor size = Tensor::scalar<int64_t>(10);
  for (bool periodic : {false, true}) {
    const double denom = periodic ? 10 : 9;
    const std::vector<ir::Attribute> attrs{make_attr("periodic", int64_t{periodic}),
                                           make_attr("output_datatype", int64_t{11})};
    auto hann = run("HannWindow", 17, {&size}, attrs);
    auto hamming = run("HammingWindow", 17, {&size}, attrs);
    auto blackman = run("BlackmanWindow", 17, {&size}, attrs);
    ASSERT_TRUE(hann.is_ok() && hamming.is_ok() && blackman.is_ok());
    ASSERT_EQ(hann->dtype(), DataType::kFloat64);
    for (int64_t i = 0; i < 10; ++i) {
      const double c = std::cos(2 * kPi * double(i) / denom);
      const double c2 = std::cos(4 * kPi * double(i) / denom);
      EXPECT_NEAR(hann->data<double>()[i], 0.5 - 0.5 * c, 1e-12);
      EXPECT_NEAR(hamming->data<double>()[i], 25.0 / 46 - 21.0 / 46 * c, 1e-12);
      EXPECT_NEAR(blackman->data<double>()[i], 0.42 - 0.5 * c + 0.08 * c2, 1e-12);
    }
  }
}

TEST(Signal, WindowIntegerOutputTruncatesAndPeakIsOne) {
  Tensor size = Tensor::scalar<int32_t>(8);
  auto out = run("BlackmanWindow", 17, {&size}, {make_attr("output_datatype", int64_t{7})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->dtype(), DataType::kInt64);
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(out->data<int64_t>()[i], i == 4 ? 1 : 0) << i;
  Tensor empty = Tensor::scalar<int64_t>(0);
  auto none = run("HannWindow", 17, {&empty});
  ASSERT_TRUE(none.is_ok()) << none.status().message();
  EXPECT_EQ(none->shape(), (Shape{0}));
  EXPECT_FALSE(run("HannWindow", 17, {&size}, {make_attr("output_datatype", int64_t{9})}).is_ok());
}

TEST(Signal, MelWeightMatrixMatchesOnnxNodeTest) {
  // The ONNX node test test_melweightmatrix: 8 mel bins over a 16-point DFT at 8192 Hz.
  Tensor bins = Tensor::scalar<int32_t>(8), dft = Tensor::scalar<int32_t>(16);
  Tensor rate = Tensor::scalar<int32_t>(8192);
  Tensor lo = Tensor::scalar<float>(0), hi = Tensor::scalar<float>(4096);
  auto out = run("MelWeightMatrix", 17, {&bins, &dft, &rate, &lo, &hi});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->shape(), (Shape{9, 8}));
  // Bin edges are [0, 0, 0, 1, 1, 2, 3, 4, 5, 6]: each column is a triangle on them.
  const std::vector<int64_t> edge{0, 0, 0, 1, 1, 2, 3, 4, 5, 6};
  for (int64_t m = 0; m < 8; ++m) {
    const int64_t l = edge[size_t(m)], c = edge[size_t(m + 1)], h = edge[size_t(m + 2)];
    for (int64_t j = 0; j < 9; ++j) {
      double want = 0;
      if (j == c)
        want = 1;
      else if (j > l && j < c)
        want = double(j - l) / double(c - l);
      else if (j > c && j < h)
        want = double(h - j) / double(h - c);
      EXPECT_NEAR(out->data<float>()[j * 8 + m], want, 1e-6) << j << "," << m;
    }
  }
}

TEST(Signal, DetOfBatchesWithPivotingAndSingularMatrices) {
  // [[0, 1], [2, 3]] needs a row swap; [[1, 2], [2, 4]] is singular; then a 3x3.
  Tensor two = Tensor::from_vector<float>({2, 2, 2}, {0, 1, 2, 3, 1, 2, 2, 4});
  auto out = run("Det", 11, {&two});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ(out->shape(), (Shape{2}));
  EXPECT_FLOAT_EQ(out->data<float>()[0], -2);
  EXPECT_FLOAT_EQ(out->data<float>()[1], 0);

  Tensor three = Tensor::from_vector<double>({3, 3}, {2, -3, 1, 2, 0, -1, 1, 4, 5});
  auto d3 = run("Det", 11, {&three});
  ASSERT_TRUE(d3.is_ok()) << d3.status().message();
  EXPECT_EQ(d3->rank(), 0);
  EXPECT_NEAR(d3->data<double>()[0], 49, 1e-12);

  Tensor half = Tensor::from_vector<Float16>(
      {2, 2}, {Float16(3.0f), Float16(1.0f), Float16(2.0f), Float16(4.0f)});
  auto dh = run("Det", 11, {&half});
  ASSERT_TRUE(dh.is_ok()) << dh.status().message();
  EXPECT_FLOAT_EQ(static_cast<float>(dh->data<Float16>()[0]), 10.0f);

  Tensor rect = Tensor::zeros(DataType::kFloat32, {2, 3});
  EXPECT_FALSE(run("Det", 11, {&rect}).is_ok());
}

}  // namespace
}  // namespace brink::ops
