// Normalization reference kernels against formulas evaluated naively in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                  double tol = 1e-4) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.element_as_double(i), want[static_cast<size_t>(i)], tol) << "element " << i;
}

double at(const Tensor& t, int64_t i) {
  return t.element_as_double(i);
}

// Mean and 1/sqrt(var + eps) of `count` elements of x starting at `start`, `stride` apart.
std::pair<double, double> stats(const Tensor& x, int64_t start, int64_t count, int64_t stride,
                                double eps) {
  double s = 0, sq = 0;
  for (int64_t i = 0; i < count; ++i) s += at(x, start + i * stride);
  const double mean = s / static_cast<double>(count);
  for (int64_t i = 0; i < count; ++i) sq += std::pow(at(x, start + i * stride) - mean, 2);
  return {mean, 1.0 / std::sqrt(sq / static_cast<double>(count) + eps)};
}

TEST(BatchNormalization, InferenceFormulaAcrossOpsets) {
  const int64_t c = 3, plane = 5;
  Tensor x = random_tensor({2, c, 1, plane}, 1);
  Tensor scale = random_tensor({c}, 2), bias = random_tensor({c}, 3), mean = random_tensor({c}, 4);
  Tensor var = random_tensor({c}, 5, 0.1f, 2.0f);
  std::vector<double> want;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < plane; ++k)
        want.push_back(at(scale, ch) * (at(x, (n * c + ch) * plane + k) - at(mean, ch)) /
                           std::sqrt(at(var, ch) + 1e-3) +
                       at(bias, ch));
  for (int64_t opset : {7, 9, 14, 15}) {
    SCOPED_TRACE("opset " + std::to_string(opset));
    auto out = evaluate_node(make_node("BatchNormalization", 5, 1, {make_attr("epsilon", 1e-3f)}),
                             opset, {&x, &scale, &bias, &mean, &var});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    expect_close((*out)[0], x.shape(), want);
  }
  // Opset 15: mean/var may be f64 while X is f32.
  Tensor mean64 = Tensor::empty(DataType::kFloat64, {c}),
         var64 = Tensor::empty(DataType::kFloat64, {c});
  for (int64_t i = 0; i < c; ++i)
    mean64.data<double>()[i] = at(mean, i), var64.data<double>()[i] = at(var, i);
  auto mixed = evaluate_node(make_node("BatchNormalization", 5, 1, {make_attr("epsilon", 1e-3f)}),
                             15, {&x, &scale, &bias, &mean64, &var64});
  ASSERT_TRUE(mixed.is_ok()) << mixed.status().message();
  expect_close((*mixed)[0], x.shape(), want);
  auto mixed9 =
      evaluate_node(make_node("BatchNormalization", 5, 1), 9, {&x, &scale, &bias, &mean64, &var64});
  EXPECT_FALSE(mixed9.is_ok());
}

TEST(BatchNormalization, TrainingModeIsUnsupported) {
  Tensor x = random_tensor({1, 2, 3}, 1), s = random_tensor({2}, 2),
         v = random_tensor({2}, 3, 0.5f, 1.0f);
  auto out =
      evaluate_node(make_node("BatchNormalization", 5, 3, {make_attr("training_mode", int64_t{1})}),
                    15, {&x, &s, &s, &s, &v});
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(out.status().message().find("training_mode"), std::string::npos);
  // Before opset 14, asking for the running statistics means training.
  auto old = evaluate_node(make_node("BatchNormalization", 5, 3), 9, {&x, &s, &s, &s, &v});
  ASSERT_FALSE(old.is_ok());
  EXPECT_EQ(old.status().code(), StatusCode::kUnsupported);
}

TEST(BatchNormalization, Opset7NonSpatialUsesOneParameterPerPosition) {
  Tensor x = random_tensor({2, 2, 3}, 10);
  Tensor s = random_tensor({2, 3}, 11), b = random_tensor({2, 3}, 12),
         m = random_tensor({2, 3}, 13);
  Tensor v = random_tensor({2, 3}, 14, 0.2f, 1.0f);
  auto out =
      evaluate_node(make_node("BatchNormalization", 5, 1, {make_attr("spatial", int64_t{0})}), 7,
                    {&x, &s, &b, &m, &v});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  std::vector<double> want;
  for (int64_t i = 0; i < 12; ++i) {
    const int64_t p = i % 6;
    want.push_back(at(s, p) * (at(x, i) - at(m, p)) / std::sqrt(at(v, p) + 1e-5) + at(b, p));
  }
  expect_close((*out)[0], x.shape(), want);
}

TEST(InstanceNormalization, NormalizesEachPlaneIncludingOneByOne) {
  Tensor x = random_tensor({2, 3, 2, 3}, 20), s = random_tensor({3}, 21),
         b = random_tensor({3}, 22);
  auto out = evaluate_node(make_node("InstanceNormalization", 3, 1, {make_attr("epsilon", 1e-2f)}),
                           6, {&x, &s, &b});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  std::vector<double> want;
  for (int64_t pl = 0; pl < 6; ++pl) {
    auto [mean, inv] = stats(x, pl * 6, 6, 1, 1e-2);
    for (int64_t k = 0; k < 6; ++k)
      want.push_back((at(x, pl * 6 + k) - mean) * inv * at(s, pl % 3) + at(b, pl % 3));
  }
  expect_close((*out)[0], x.shape(), want);
  // A 1x1 plane has zero variance: the output is the bias.
  Tensor one = random_tensor({1, 3, 1, 1}, 23);
  auto o1 = evaluate_node(make_node("InstanceNormalization", 3, 1), 6, {&one, &s, &b});
  ASSERT_TRUE(o1.is_ok());
  expect_close((*o1)[0], {1, 3, 1, 1}, {at(b, 0), at(b, 1), at(b, 2)});
}

TEST(LayerNormalization, EveryAxisWithMeanAndInvStdDevOutputs) {
  const Shape shape{2, 3, 4};
  Tensor x = random_tensor(shape, 30);
  for (int64_t axis : {-1, 1, 0, -2}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    const int64_t a = axis < 0 ? axis + 3 : axis;
    Shape norm(shape.begin() + a, shape.end());
    const int64_t cols = shape_numel(norm), rows = x.numel() / cols;
    Tensor scale = random_tensor(norm, 31), bias = random_tensor(norm, 32);
    auto out = evaluate_node(make_node("LayerNormalization", 3, 3,
                                       {make_attr("axis", axis), make_attr("epsilon", 1e-3f)}),
                             17, {&x, &scale, &bias});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    std::vector<double> want, means, invs;
    for (int64_t r = 0; r < rows; ++r) {
      auto [mean, inv] = stats(x, r * cols, cols, 1, 1e-3);
      means.push_back(mean);
      invs.push_back(inv);
      for (int64_t k = 0; k < cols; ++k)
        want.push_back((at(x, r * cols + k) - mean) * inv * at(scale, k) + at(bias, k));
    }
    Shape stat_shape = shape;
    for (size_t i = static_cast<size_t>(a); i < 3; ++i) stat_shape[i] = 1;
    expect_close((*out)[0], shape, want);
    expect_close((*out)[1], stat_shape, means);
    expect_close((*out)[2], stat_shape, invs);
    EXPECT_EQ((*out)[1].dtype(), DataType::kFloat32);
  }
}

TEST(LayerNormalization, BroadcastScaleOptionalBiasAndAbsentOutputs) {
  Tensor x = random_tensor({3, 5}, 40);
  Tensor scale = Tensor::from_vector<float>({1}, {2.0f});  // broadcast over the row
  ir::Node node = make_node("LayerNormalization", 2, 3);
  node.outputs[1] = ir::kNoValue;
  node.outputs[2] = ir::kNoValue;
  auto out = evaluate_node(node, 17, {&x, &scale});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  std::vector<double> want;
  for (int64_t r = 0; r < 3; ++r) {
    auto [mean, inv] = stats(x, r * 5, 5, 1, 1e-5);
    for (int64_t k = 0; k < 5; ++k) want.push_back((at(x, r * 5 + k) - mean) * inv * 2.0);
  }
  expect_close((*out)[0], {3, 5}, want);

  Tensor bad = random_tensor({4}, 41);
  auto mismatch = evaluate_node(make_node("LayerNormalization", 2, 1), 17, {&x, &bad});
  EXPECT_FALSE(mismatch.is_ok());
}

TEST(GroupNormalization, Opset18ScalesPerGroupOpset21PerChannel) {
  const int64_t c = 6, groups = 3, plane = 4;
  Tensor x = random_tensor({2, c, 2, 2}, 50);
  Tensor g_scale = random_tensor({groups}, 51), g_bias = random_tensor({groups}, 52);
  Tensor c_scale = random_tensor({c}, 53), c_bias = random_tensor({c}, 54);
  std::vector<double> want18, want21;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t start = (n * c + g * 2) * plane;
      auto [mean, inv] = stats(x, start, 2 * plane, 1, 1e-5);
      for (int64_t k = 0; k < 2 * plane; ++k) {
        const double normalized = (at(x, start + k) - mean) * inv;
        const int64_t ch = g * 2 + k / plane;
        want18.push_back(normalized * at(g_scale, g) + at(g_bias, g));
        want21.push_back(normalized * at(c_scale, ch) + at(c_bias, ch));
      }
    }
  auto attrs = std::vector<ir::Attribute>{make_attr("num_groups", groups)};
  auto o18 =
      evaluate_node(make_node("GroupNormalization", 3, 1, attrs), 18, {&x, &g_scale, &g_bias});
  ASSERT_TRUE(o18.is_ok()) << o18.status().message();
  expect_close((*o18)[0], x.shape(), want18);
  auto o21 =
      evaluate_node(make_node("GroupNormalization", 3, 1, attrs), 21, {&x, &c_scale, &c_bias});
  ASSERT_TRUE(o21.is_ok()) << o21.status().message();
  expect_close((*o21)[0], x.shape(), want21);
  // Each opset rejects the other's parameter shape.
  EXPECT_FALSE(
      evaluate_node(make_node("GroupNormalization", 3, 1, attrs), 18, {&x, &c_scale, &c_bias})
          .is_ok());
  EXPECT_FALSE(
      evaluate_node(make_node("GroupNormalization", 3, 1, attrs), 21, {&x, &g_scale, &g_bias})
          .is_ok());
  auto four = std::vector<ir::Attribute>{make_attr("num_groups", int64_t{4})};
  EXPECT_FALSE(
      evaluate_node(make_node("GroupNormalization", 3, 1, four), 21, {&x, &c_scale, &c_bias})
          .is_ok());
}

TEST(LRN, SumsSquaresOverNeighbouringChannels) {
  const int64_t c = 5, plane = 3;
  Tensor x = random_tensor({2, c, 1, plane}, 60);
  for (int64_t size : {1, 2, 3, 4}) {
    SCOPED_TRACE("size " + std::to_string(size));
    auto out = evaluate_node(make_node("LRN", 1, 1,
                                       {make_attr("size", size), make_attr("alpha", 0.01f),
                                        make_attr("beta", 0.6f), make_attr("bias", 1.5f)}),
                             13, {&x});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    std::vector<double> want;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t k = 0; k < plane; ++k) {
          double sq = 0;
          for (int64_t j = std::max<int64_t>(0, ch - (size - 1) / 2);
               j <= std::min(c - 1, ch + size / 2); ++j)
            sq += std::pow(at(x, (n * c + j) * plane + k), 2);
          want.push_back(at(x, (n * c + ch) * plane + k) /
                         std::pow(1.5 + 0.01 / static_cast<double>(size) * sq, 0.6));
        }
    expect_close((*out)[0], x.shape(), want);
  }
}

TEST(MeanVarianceNormalization, DefaultAndCustomAxes) {
  Tensor x = random_tensor({2, 3, 2, 2}, 70);
  auto out = evaluate_node(make_node("MeanVarianceNormalization", 1, 1), 13, {&x});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // Default axes {0, 2, 3}: one group per channel, spanning both images.
  std::vector<double> mean(3, 0), var(3, 0);
  for (int64_t i = 0; i < 24; ++i) mean[static_cast<size_t>((i / 4) % 3)] += at(x, i) / 8;
  for (int64_t i = 0; i < 24; ++i)
    var[static_cast<size_t>((i / 4) % 3)] +=
        std::pow(at(x, i) - mean[static_cast<size_t>((i / 4) % 3)], 2) / 8;
  std::vector<double> want;
  for (int64_t i = 0; i < 24; ++i) {
    const size_t ch = static_cast<size_t>((i / 4) % 3);
    want.push_back((at(x, i) - mean[ch]) / (std::sqrt(var[ch]) + 1e-9));
  }
  expect_close((*out)[0], x.shape(), want);

  Tensor y = random_tensor({2, 5}, 71);
  auto last = evaluate_node(
      make_node("MeanVarianceNormalization", 1, 1, {make_attr("axes", std::vector<int64_t>{-1})}),
      9, {&y});
  ASSERT_TRUE(last.is_ok()) << last.status().message();
  std::vector<double> want_last;
  for (int64_t r = 0; r < 2; ++r) {
    auto [m, inv] = stats(y, r * 5, 5, 1, 0.0);
    for (int64_t k = 0; k < 5; ++k)
      want_last.push_back((at(y, r * 5 + k) - m) / (1.0 / inv + 1e-9));
  }
  expect_close((*last)[0], y.shape(), want_last);
}

TEST(LpNormalization, L1AndL2AlongAnAxisAndZeroVectors) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {3, 0, -4, 0, 0, 0});
  auto l2 = evaluate_node(make_node("LpNormalization", 1, 1), 1, {&x});
  ASSERT_TRUE(l2.is_ok()) << l2.status().message();
  expect_close((*l2)[0], {2, 3}, {0.6, 0, -0.8, 0, 0, 0});
  auto l1 = evaluate_node(make_node("LpNormalization", 1, 1,
                                    {make_attr("p", int64_t{1}), make_attr("axis", int64_t{0})}),
                          1, {&x});
  ASSERT_TRUE(l1.is_ok()) << l1.status().message();
  expect_close((*l1)[0], {2, 3}, {1, 0, -1, 0, 0, 0});
  auto p3 =
      evaluate_node(make_node("LpNormalization", 1, 1, {make_attr("p", int64_t{3})}), 1, {&x});
  EXPECT_FALSE(p3.is_ok());
}

}  // namespace
}  // namespace brink::ops
