// Pooling reference kernels against hand-computed values and a naive per-window
// implementation on awkward shapes (ceil_mode, asymmetric pads, dilations, 1x1 images).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "op_test_util.h"
#include "ops/evaluate.h"

namespace brink::ops {
namespace {

Tensor iota(const Shape& shape, float start = 1.0f) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  return Tensor::from_vector<float>(shape, v);
}

void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                  double tol = 1e-5) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.element_as_double(i), want[static_cast<size_t>(i)], tol) << "element " << i;
}

ir::Attribute ints(const char* name, std::vector<int64_t> v) {
  return make_attr(name, v);
}

// A 2-D pooling problem and a naive evaluation of it.
struct Pool2d {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: top, left, bottom, right
  bool ceil_mode = false;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                 bool ceil_mode) {
  const int64_t span = in + pb + pe - ((k - 1) * d + 1);
  int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (o - 1) * s >= in + pb) --o;
  return o;
}

// kind: 0 max, 1 average (count_include_pad as given), 2 LpPool with p.
std::vector<double> naive_pool2d(const Tensor& x, const Pool2d& p, int kind, bool count_include_pad,
                                 int p_norm, Shape* shape) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh =
      out_size(h, p.kernel[0], p.strides[0], p.dilations[0], p.pads[0], p.pads[2], p.ceil_mode);
  const int64_t ow =
      out_size(w, p.kernel[1], p.strides[1], p.dilations[1], p.pads[1], p.pads[3], p.ceil_mode);
  *shape = {n, c, oh, ow};
  std::vector<double> y;
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double acc = kind == 0 ? -INFINITY : 0.0;
        int64_t count = 0;
        for (int64_t ki = 0; ki < p.kernel[0]; ++ki)
          for (int64_t kj = 0; kj < p.kernel[1]; ++kj) {
            const int64_t r = i * p.strides[0] + ki * p.dilations[0] - p.pads[0];
            const int64_t s = j * p.strides[1] + kj * p.dilations[1] - p.pads[1];
            const bool in_padding = r < h + p.pads[2] && s < w + p.pads[3];
            if (r < 0 || r >= h || s < 0 || s >= w) {
              if (count_include_pad && in_padding) ++count;
              continue;
            }
            const double v = x.element_as_double((pl * h + r) * w + s);
            ++count;
            if (kind == 0)
              acc = std::max(acc, v);
            else if (kind == 1)
              acc += v;
            else
              acc += std::pow(std::abs(v), p_norm);
          }
        if (kind == 1) acc /= static_cast<double>(count);
        if (kind == 2) acc = std::pow(acc, 1.0 / p_norm);
        y.push_back(acc);
      }
  return y;
}

std::vector<ir::Attribute> pool_attrs(const Pool2d& p) {
  return {ints("kernel_shape", p.kernel), ints("strides", p.strides),
          ints("dilations", p.dilations), ints("pads", p.pads),
          make_attr("ceil_mode", static_cast<int64_t>(p.ceil_mode))};
}

const std::vector<Pool2d> kAwkward = {
    {{3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, true},  {{2, 3}, {3, 2}, {1, 1}, {1, 0, 0, 2}, true},
    {{3, 2}, {1, 3}, {2, 1}, {2, 1, 1, 0}, false}, {{2, 2}, {5, 5}, {1, 1}, {1, 1, 1, 1}, true},
    {{1, 1}, {2, 3}, {1, 1}, {0, 0, 0, 0}, true},  {{3, 3}, {2, 2}, {2, 2}, {1, 2, 2, 1}, true},
};

TEST(MaxPool, AwkwardShapesMatchNaiveWindows) {
  uint32_t seed = 1;
  for (const Shape& xs : {Shape{1, 3, 7, 6}, Shape{2, 1, 5, 5}, Shape{1, 2, 1, 1}}) {
    for (const Pool2d& p : kAwkward) {
      SCOPED_TRACE(shape_to_string(xs) + " kernel " + std::to_string(p.kernel[0]) + "x" +
                   std::to_string(p.kernel[1]));
      if (xs[2] + p.pads[0] + p.pads[2] < (p.kernel[0] - 1) * p.dilations[0] + 1 ||
          xs[3] + p.pads[1] + p.pads[3] < (p.kernel[1] - 1) * p.dilations[1] + 1)
        continue;
      Tensor x = random_tensor(xs, ++seed);
      auto out = evaluate_node(make_node("MaxPool", 1, 1, pool_attrs(p)), 12, {&x});
      ASSERT_TRUE(out.is_ok()) << out.status().message();
      Shape shape;
      const std::vector<double> want = naive_pool2d(x, p, 0, false, 0, &shape);
      expect_close((*out)[0], shape, want);
    }
  }
}

TEST(MaxPool, IndicesRowAndColumnMajor) {
  // ONNX's maxpool_with_argmax_2d_precomputed_strides: x = 1..25 (5x5), 2x2 kernel, stride 2.
  Tensor x = iota({1, 1, 5, 5});
  for (int64_t order : {0, 1}) {
    auto out = evaluate_node(make_node("MaxPool", 1, 2,
                                       {ints("kernel_shape", {2, 2}), ints("strides", {2, 2}),
                                        make_attr("storage_order", order)}),
                             12, {&x});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    expect_close((*out)[0], {1, 1, 2, 2}, {7, 9, 17, 19});
    ASSERT_EQ((*out)[1].dtype(), DataType::kInt64);
    const std::vector<int64_t> want =
        order == 0 ? std::vector<int64_t>{6, 8, 16, 18} : std::vector<int64_t>{6, 16, 8, 18};
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ((*out)[1].data<int64_t>()[i], want[static_cast<size_t>(i)]);
  }
  // Indices count whole-tensor positions: the second image's plane starts at C*H*W.
  Tensor x2 = random_tensor({2, 3, 3, 3}, 9);
  auto out = evaluate_node(make_node("MaxPool", 1, 2, {ints("kernel_shape", {3, 3})}), 12, {&x2});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  for (int64_t pl = 0; pl < 6; ++pl) {
    const int64_t idx = (*out)[1].data<int64_t>()[pl];
    EXPECT_GE(idx, pl * 9);
    EXPECT_LT(idx, (pl + 1) * 9);
    EXPECT_EQ(x2.data<float>()[idx], (*out)[0].data<float>()[pl]);
  }
}

TEST(MaxPool, OpsetGatesAttributesOutputsAndTypes) {
  Tensor x = random_tensor({1, 1, 4, 4}, 3);
  auto ceil8 =
      evaluate_node(make_node("MaxPool", 1, 1,
                              {ints("kernel_shape", {2, 2}), make_attr("ceil_mode", int64_t{1})}),
                    8, {&x});
  ASSERT_FALSE(ceil8.is_ok());
  EXPECT_NE(ceil8.status().message().find("ceil_mode"), std::string::npos);
  auto two_outputs7 =
      evaluate_node(make_node("MaxPool", 1, 2, {ints("kernel_shape", {2, 2})}), 7, {&x});
  EXPECT_FALSE(two_outputs7.is_ok());

  Tensor xu = Tensor::from_vector<uint8_t>({1, 1, 2, 3}, {5, 200, 7, 1, 255, 0});
  auto u11 = evaluate_node(make_node("MaxPool", 1, 1, {ints("kernel_shape", {2, 2})}), 11, {&xu});
  ASSERT_FALSE(u11.is_ok());
  EXPECT_EQ(u11.status().code(), StatusCode::kUnsupported);
  auto u12 = evaluate_node(make_node("MaxPool", 1, 1, {ints("kernel_shape", {2, 2})}), 12, {&xu});
  ASSERT_TRUE(u12.is_ok()) << u12.status().message();
  ASSERT_EQ((*u12)[0].dtype(), DataType::kUInt8);
  EXPECT_EQ((*u12)[0].data<uint8_t>()[0], 255);
  EXPECT_EQ((*u12)[0].data<uint8_t>()[1], 255);
}

TEST(AveragePool, CeilModeExampleFromOnnx) {
  Tensor x = iota({1, 1, 4, 4});
  auto out = evaluate_node(make_node("AveragePool", 1, 1,
                                     {ints("kernel_shape", {3, 3}), ints("strides", {2, 2}),
                                      make_attr("ceil_mode", int64_t{1})}),
                           11, {&x});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_close((*out)[0], {1, 1, 2, 2}, {6, 7.5, 12, 13.5});
}

TEST(AveragePool, AwkwardShapesWithAndWithoutCountIncludePad) {
  uint32_t seed = 100;
  for (bool include : {false, true}) {
    for (const Pool2d& p : kAwkward) {
      SCOPED_TRACE(std::string("count_include_pad ") + (include ? "1" : "0"));
      Tensor x = random_tensor({2, 3, 7, 5}, ++seed);
      std::vector<ir::Attribute> attrs = pool_attrs(p);
      attrs.push_back(make_attr("count_include_pad", static_cast<int64_t>(include)));
      auto out = evaluate_node(make_node("AveragePool", 1, 1, attrs), 19, {&x});
      ASSERT_TRUE(out.is_ok()) << out.status().message();
      Shape shape;
      const std::vector<double> want = naive_pool2d(x, p, 1, include, 0, &shape);
      expect_close((*out)[0], shape, want);
    }
  }
  // Dilations arrive at opset 19.
  Tensor x = random_tensor({1, 1, 5, 5}, 7);
  auto d18 = evaluate_node(
      make_node("AveragePool", 1, 1, {ints("kernel_shape", {2, 2}), ints("dilations", {2, 2})}), 18,
      {&x});
  EXPECT_FALSE(d18.is_ok());
}

TEST(AveragePool, SamePaddingOneDimAndThreeDim) {
  // 1-D SAME_UPPER, stride 2, kernel 3 on 5 values: 3 outputs, total padding 2 (1 each side),
  // so the windows cover [-1, 2), [1, 4), [3, 6); padding is not counted.
  Tensor x = Tensor::from_vector<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  auto out = evaluate_node(make_node("AveragePool", 1, 1,
                                     {ints("kernel_shape", {3}), ints("strides", {2}),
                                      make_attr("auto_pad", std::string("SAME_UPPER"))}),
                           11, {&x});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_close((*out)[0], {1, 1, 3}, {1.5, 3, 4.5});
  // 3-D: a 2x2x2 average over a 2x2x2 block of 1..8 is 4.5.
  Tensor x3 = iota({1, 1, 2, 2, 2});
  auto out3 =
      evaluate_node(make_node("AveragePool", 1, 1, {ints("kernel_shape", {2, 2, 2})}), 11, {&x3});
  ASSERT_TRUE(out3.is_ok()) << out3.status().message();
  expect_close((*out3)[0], {1, 1, 1, 1, 1}, {4.5});
}

TEST(LpPool, MatchesNaiveForSeveralP) {
  uint32_t seed = 200;
  for (int64_t p : {1, 2, 3}) {
    Pool2d geom{{2, 3}, {2, 1}, {1, 1}, {1, 0, 0, 1}, false};
    Tensor x = random_tensor({1, 3, 5, 4}, ++seed);
    std::vector<ir::Attribute> attrs{ints("kernel_shape", geom.kernel),
                                     ints("strides", geom.strides), ints("pads", geom.pads),
                                     make_attr("p", p)};
    auto out = evaluate_node(make_node("LpPool", 1, 1, attrs), 11, {&x});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    Shape shape;
    expect_close((*out)[0], shape, naive_pool2d(x, geom, 2, false, static_cast<int>(p), &shape));
  }
}

TEST(GlobalPool, AverageMaxAndLpOverOddChannelsAndOneByOneImages) {
  Tensor x = Tensor::from_vector<float>({1, 3, 2, 2}, {1, 2, 3, 4, -1, -2, -3, -4, 0, 0, 3, 4});
  auto avg = evaluate_node(make_node("GlobalAveragePool", 1, 1), 1, {&x});
  ASSERT_TRUE(avg.is_ok()) << avg.status().message();
  expect_close((*avg)[0], {1, 3, 1, 1}, {2.5, -2.5, 1.75});
  auto mx = evaluate_node(make_node("GlobalMaxPool", 1, 1), 1, {&x});
  ASSERT_TRUE(mx.is_ok());
  expect_close((*mx)[0], {1, 3, 1, 1}, {4, -1, 4});
  auto lp = evaluate_node(make_node("GlobalLpPool", 1, 1), 2, {&x});
  ASSERT_TRUE(lp.is_ok());
  expect_close((*lp)[0], {1, 3, 1, 1}, {std::sqrt(30.0), std::sqrt(30.0), 5.0});

  Tensor one = Tensor::from_vector<float>({2, 5, 1, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  auto g1 = evaluate_node(make_node("GlobalAveragePool", 1, 1), 1, {&one});
  ASSERT_TRUE(g1.is_ok());
  expect_close((*g1)[0], {2, 5, 1, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  Tensor one_d = Tensor::from_vector<float>({1, 1, 3}, {1, 5, 3});
  auto g1d = evaluate_node(make_node("GlobalMaxPool", 1, 1), 1, {&one_d});
  ASSERT_TRUE(g1d.is_ok());
  expect_close((*g1d)[0], {1, 1, 1}, {5});
}

TEST(MaxUnpool, ScattersIntoDefaultAndRequestedShapes) {
  // MaxPool (2x2, stride 2) of a 4x4 plane then MaxUnpool puts maxima back where they were.
  Tensor x = random_tensor({1, 2, 4, 4}, 300);
  auto pooled = evaluate_node(
      make_node("MaxPool", 1, 2, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})}), 12,
      {&x});
  ASSERT_TRUE(pooled.is_ok()) << pooled.status().message();
  const Tensor& values = (*pooled)[0];
  const Tensor& indices = (*pooled)[1];
  auto un = evaluate_node(
      make_node("MaxUnpool", 2, 1, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})}), 11,
      {&values, &indices});
  ASSERT_TRUE(un.is_ok()) << un.status().message();
  const Tensor& y = (*un)[0];
  ASSERT_EQ(y.shape(), x.shape());
  int nonzero = 0;
  for (int64_t i = 0; i < y.numel(); ++i)
    if (y.data<float>()[i] != 0) {
      ++nonzero;
      EXPECT_EQ(y.data<float>()[i], x.data<float>()[i]);
    }
  EXPECT_EQ(nonzero, 8);

  // ONNX's maxunpool_export_with_output_shape: indices address the default 4x4 shape, and the
  // requested 5x5 output holds it in its leading corner.
  Tensor v = Tensor::from_vector<float>({1, 1, 2, 2}, {5, 6, 7, 8});
  Tensor idx = Tensor::from_vector<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
  Tensor shape = Tensor::from_vector<int64_t>({4}, {1, 1, 5, 5});
  auto big = evaluate_node(
      make_node("MaxUnpool", 3, 1, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})}), 11,
      {&v, &idx, &shape});
  ASSERT_TRUE(big.is_ok()) << big.status().message();
  std::vector<double> want(25, 0.0);
  want[6] = 5, want[8] = 6, want[16] = 7, want[18] = 8;
  expect_close((*big)[0], {1, 1, 5, 5}, want);

  Tensor bad = Tensor::from_vector<int64_t>({1, 1, 2, 2}, {5, 7, 13, 99});
  auto out_of_range = evaluate_node(
      make_node("MaxUnpool", 2, 1, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})}), 11,
      {&v, &bad});
  EXPECT_FALSE(out_of_range.is_ok());
}

TEST(Pool, RejectsWindowLargerThanPaddedInput) {
  Tensor x = random_tensor({1, 1, 2, 2}, 1);
  auto out = evaluate_node(make_node("MaxPool", 1, 1, {ints("kernel_shape", {3, 3})}), 12, {&x});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("window"), std::string::npos) << out.status().message();
  auto missing = evaluate_node(make_node("AveragePool", 1, 1), 11, {&x});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("kernel_shape"), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace brink::ops
