// Resize, Upsample and Pad reference kernels. Expected values come from the ONNX reference
// implementation and ONNX Runtime on the same inputs (they agree on every case here).
#include <gtest/gtest.h>

#include <numeric>

#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

std::vector<float> iota_f(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

Tensor run1(const std::string& op, int64_t opset, const std::vector<const Tensor*>& inputs,
            std::vector<ir::Attribute> attrs = {}) {
  auto out = evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return out.is_ok() ? (*out)[0] : Tensor();
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-4f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

ir::Attribute s_attr(const std::string& name, const char* v) {
  return make_attr(name, std::string(v));
}

// ---- Resize -----------------------------------------------------------------------------------

TEST(Resize, OneByOneImageUpsamplesToAConstantInEveryMode) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 1, 1}, {4.5f});
  const Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 3, 2});
  for (const char* mode : {"nearest", "linear", "cubic"})
    for (const char* coord : {"half_pixel", "align_corners", "pytorch_half_pixel", "asymmetric"}) {
      const Tensor y =
          run1("Resize", 13, {&x, nullptr, &scales},
               {s_attr("mode", mode), s_attr("coordinate_transformation_mode", coord)});
      ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 2})) << mode << " " << coord;
      for (float v : values_of<float>(y)) EXPECT_FLOAT_EQ(v, 4.5f) << mode << " " << coord;
    }
}

TEST(Resize, NonIntegerScalesLinearAndCubic) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 3, 4}, iota_f(12, 1));
  const Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 1.5f, 0.75f});
  const Tensor lin = run1("Resize", 13, {&x, nullptr, &scales}, {s_attr("mode", "linear")});
  ASSERT_EQ(lin.shape(), (Shape{1, 1, 4, 3}));  // floor(3 * 1.5), floor(4 * 0.75)
  expect_near(values_of<float>(lin), {1.1666667f, 2.5f, 3.8333333f, 3.1666667f, 4.5f, 5.8333333f,
                                      5.8333333f, 7.1666667f, 8.5f, 8.5f, 9.8333333f, 11.1666667f});
  const Tensor cub = run1("Resize", 13, {&x, nullptr, &scales}, {s_attr("mode", "cubic")});
  expect_near(values_of<float>(cub),
              {0.7789352f, 2.1527777f, 3.5266204f, 2.7511575f, 4.125f, 5.4988427f, 6.0474539f,
               7.4212961f, 8.7951393f, 8.6215277f, 9.9953699f, 11.3692131f});
}

TEST(Resize, AlignCornersWithScalesUsesTheFractionalOutputWidth) {
  // ONNX's own node test (test_resize_downsample_scales_linear_align_corners): the source
  // coordinate divides by in * scale - 1 = 1.4, not by out - 1 = 1.
  const Tensor x = Tensor::from_vector<float>({1, 1, 2, 4}, iota_f(8, 1));
  const Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 0.6f, 0.6f});
  const Tensor y =
      run1("Resize", 13, {&x, nullptr, &scales},
           {s_attr("mode", "linear"), s_attr("coordinate_transformation_mode", "align_corners")});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  expect_near(values_of<float>(y), {1, 3.142857f});
}

TEST(Resize, NearestModesRoundTies) {
  const Tensor x = Tensor::from_vector<float>({1, 4}, {10, 20, 30, 40});
  const Tensor sizes = Tensor::from_vector<int64_t>({2}, {1, 7});
  const std::vector<std::pair<const char*, std::vector<float>>> cases = {
      {"round_prefer_floor", {10, 10, 20, 20, 30, 40, 40}},
      {"round_prefer_ceil", {10, 10, 20, 30, 30, 40, 40}},
      {"floor", {10, 10, 10, 20, 30, 30, 40}},
      {"ceil", {10, 20, 20, 30, 40, 40, 40}}};
  for (const auto& [mode, want] : cases) {
    const Tensor y =
        run1("Resize", 13, {&x, nullptr, nullptr, &sizes}, {s_attr("nearest_mode", mode)});
    EXPECT_EQ(values_of<float>(y), want) << mode;
  }
}

TEST(Resize, NearestCopiesIntegersExactly) {
  const Tensor x = Tensor::from_vector<int64_t>({1, 2}, {(int64_t{1} << 60) + 1, -7});
  const Tensor scales = Tensor::from_vector<float>({2}, {1, 2});
  const Tensor y = run1("Resize", 11, {&x, nullptr, &scales}, {s_attr("mode", "nearest")});
  EXPECT_EQ(values_of<int64_t>(y),
            (std::vector<int64_t>{(int64_t{1} << 60) + 1, (int64_t{1} << 60) + 1, -7, -7}));
}

TEST(Resize, TfCropAndResizeExtrapolates) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 3, 4}, iota_f(12, 1));
  const Tensor roi = Tensor::from_vector<float>({8}, {0, 0, 0.2f, 0.1f, 1, 1, 0.9f, 1.3f});
  const Tensor sizes = Tensor::from_vector<int64_t>({4}, {1, 1, 2, 3});
  const Tensor y = run1(
      "Resize", 13, {&x, &roi, nullptr, &sizes},
      {s_attr("mode", "linear"), s_attr("coordinate_transformation_mode", "tf_crop_and_resize"),
       make_attr("extrapolation_value", -1.0f)});
  expect_near(values_of<float>(y), {2.9f, 4.7f, -1, 8.5f, 10.3f, -1});
}

TEST(Resize, Opset18AxesAspectRatioAndAntialias) {
  const Tensor x = Tensor::zeros(DataType::kFloat32, {1, 2, 3, 4});
  const Tensor sizes = Tensor::from_vector<int64_t>({2}, {7, 2});
  // axes [-1, -2]: W -> 7 (x1.75), H -> 2 (x0.667); not_larger keeps the smaller scale.
  const Tensor y = run1("Resize", 18, {&x, nullptr, nullptr, &sizes},
                        {make_attr("axes", std::vector<int64_t>{-1, -2}),
                         s_attr("keep_aspect_ratio_policy", "not_larger")});
  EXPECT_EQ(y.shape(), (Shape{1, 2, 2, 3}));
  const Tensor z = run1("Resize", 18, {&x, nullptr, nullptr, &sizes},
                        {make_attr("axes", std::vector<int64_t>{-1, -2}),
                         s_attr("keep_aspect_ratio_policy", "not_smaller")});
  EXPECT_EQ(z.shape(), (Shape{1, 2, 5, 7}));

  const Tensor row = Tensor::from_vector<float>({1, 1, 1, 8}, iota_f(8, 1));
  const Tensor half = Tensor::from_vector<float>({1}, {0.5f});
  const Tensor aa = run1("Resize", 18, {&row, nullptr, &half},
                         {s_attr("mode", "linear"), make_attr("antialias", int64_t{1}),
                          make_attr("axes", std::vector<int64_t>{3})});
  expect_near(values_of<float>(aa), {1.625f, 3.5f, 5.5f, 7.375f});
}

TEST(Resize, RejectsBothScalesAndSizesAndUnknownModes) {
  const Tensor x = Tensor::zeros(DataType::kFloat32, {1, 2});
  const Tensor scales = Tensor::from_vector<float>({2}, {1, 2});
  const Tensor sizes = Tensor::from_vector<int64_t>({2}, {1, 4});
  auto both = evaluate_node(make_node("Resize", 4, 1), 13, {&x, nullptr, &scales, &sizes});
  ASSERT_FALSE(both.is_ok());
  EXPECT_NE(both.status().message().find("both 'scales' and 'sizes'"), std::string::npos);
  auto mode = evaluate_node(make_node("Resize", 3, 1, {s_attr("mode", "bicubic")}), 13,
                            {&x, nullptr, &scales});
  ASSERT_FALSE(mode.is_ok());
  EXPECT_NE(mode.status().message().find("'mode' is 'bicubic'"), std::string::npos);
}

TEST(Resize, InfersUnknownSizesAndKnownConstantScales) {
  const OpDef* def = OpRegistry::global().find("", "Resize", 13);
  ASSERT_NE(def, nullptr);
  const TensorType x(DataType::kFloat32,
                     std::vector<Dim>{Dim::symbol("n"), Dim(3), Dim(10), Dim(10)});
  const TensorType st(DataType::kFloat32, std::vector<Dim>{Dim(4)});
  ir::Node n = make_node("Resize", 3, 1);
  n.inputs[1] = ir::kNoValue;
  {
    InferContext ctx(n, 13, {&x, nullptr, &st}, {nullptr, nullptr, nullptr});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    EXPECT_EQ(ctx.outputs()[0].rank(), 4);
    EXPECT_FALSE((*ctx.outputs()[0].dims)[2].known());
  }
  {
    const TensorType xs = TensorType::of(DataType::kFloat32, {1, 3, 10, 10});
    const Tensor s = Tensor::from_vector<float>({4}, {1, 1, 0.7f, 2});
    InferContext ctx(n, 13, {&xs, nullptr, &st}, {nullptr, nullptr, &s});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    // floor(10 * 0.7f) in float is 7 (in double it would be 6.99999988 -> 6).
    EXPECT_EQ(ctx.outputs()[0].static_shape(), (Shape{1, 3, 7, 20}));
  }
  {
    // A symbolic batch at scale 1 keeps its symbol while the known dims are resized.
    const Tensor s = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
    InferContext ctx(n, 13, {&x, nullptr, &st}, {nullptr, nullptr, &s});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    const auto& dims = *ctx.outputs()[0].dims;
    EXPECT_EQ(dims[0].param, "n");
    EXPECT_EQ(dims[2].value, 20);
    EXPECT_EQ(dims[3].value, 20);
  }
}

// ---- Upsample / Resize-10 ---------------------------------------------------------------------

TEST(Upsample, Opset7AttributeAndOpset9Input) {
  const Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor y7 =
      run1("Upsample", 7, {&x}, {make_attr("scales", std::vector<float>{1, 1, 2, 3})});
  ASSERT_EQ(y7.shape(), (Shape{1, 1, 4, 6}));
  expect_near(values_of<float>(y7),
              {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  const Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
  const Tensor y9 = run1("Upsample", 9, {&x, &scales}, {s_attr("mode", "linear")});
  expect_near(values_of<float>(y9), {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4});
  auto down = evaluate_node(
      make_node("Upsample", 1, 1, {make_attr("scales", std::vector<float>{1, 1, 0.5f, 1})}), 7,
      {&x});
  ASSERT_FALSE(down.is_ok());
  EXPECT_NE(down.status().message().find("less than 1"), std::string::npos);
}

TEST(Resize, Opset10NearestRoundsUpWhenDownsampling) {
  const Tensor x = Tensor::from_vector<float>({1, 8}, iota_f(8, 0));
  const Tensor scales = Tensor::from_vector<float>({2}, {1, 0.6f});
  const Tensor y = run1("Resize", 10, {&x, &scales});
  expect_near(values_of<float>(y), {0, 2, 4, 5});
}

// ---- Pad --------------------------------------------------------------------------------------

TEST(Pad, NegativePadsCropBeforePadding) {
  const Tensor x = Tensor::from_vector<float>({3, 4}, iota_f(12, 0));
  const Tensor pads = Tensor::from_vector<int64_t>({4}, {-1, 1, 1, -2});
  const Tensor value = Tensor::scalar<float>(7);
  const Tensor y = run1("Pad", 13, {&x, &pads, &value});
  ASSERT_EQ(y.shape(), (Shape{3, 3}));
  expect_near(values_of<float>(y), {7, 4, 5, 7, 8, 9, 7, 7, 7});
  const Tensor row = Tensor::from_vector<float>({5}, {1, 2, 3, 4, 5});
  const Tensor p2 = Tensor::from_vector<int64_t>({2}, {-1, 2});
  expect_near(values_of<float>(run1("Pad", 13, {&row, &p2}, {s_attr("mode", "reflect")})),
              {2, 3, 4, 5, 4, 3});
}

TEST(Pad, ReflectEdgeAndWrapModes) {
  const Tensor x = Tensor::from_vector<int32_t>({4}, {1, 2, 3, 4});
  const Tensor p = Tensor::from_vector<int64_t>({2}, {2, 3});
  EXPECT_EQ(values_of<int32_t>(run1("Pad", 11, {&x, &p}, {s_attr("mode", "reflect")})),
            (std::vector<int32_t>{3, 2, 1, 2, 3, 4, 3, 2, 1}));
  EXPECT_EQ(values_of<int32_t>(run1("Pad", 11, {&x, &p}, {s_attr("mode", "edge")})),
            (std::vector<int32_t>{1, 1, 1, 2, 3, 4, 4, 4, 4}));
  const Tensor x3 = Tensor::from_vector<int32_t>({3}, {1, 2, 3});
  const Tensor p3 = Tensor::from_vector<int64_t>({2}, {2, 4});
  EXPECT_EQ(values_of<int32_t>(run1("Pad", 19, {&x3, &p3}, {s_attr("mode", "wrap")})),
            (std::vector<int32_t>{2, 3, 1, 2, 3, 1, 2, 3, 1}));
  auto no_wrap = evaluate_node(make_node("Pad", 2, 1, {s_attr("mode", "wrap")}), 18, {&x3, &p3});
  EXPECT_FALSE(no_wrap.is_ok());  // wrap arrived in opset 19
}

TEST(Pad, Opset2AttributesAndOpset18Axes) {
  const Tensor x = Tensor::from_vector<float>({1, 2}, {5, 6});
  const Tensor y2 =
      run1("Pad", 2, {&x},
           {make_attr("pads", std::vector<int64_t>{0, 1, 1, 0}), make_attr("value", 1.5f)});
  ASSERT_EQ(y2.shape(), (Shape{2, 3}));
  expect_near(values_of<float>(y2), {1.5f, 5, 6, 1.5f, 1.5f, 1.5f});
  const Tensor pads = Tensor::from_vector<int64_t>({2}, {1, 2});
  const Tensor axes = Tensor::from_vector<int64_t>({1}, {-1});
  const Tensor y18 = run1("Pad", 18, {&x, &pads, nullptr, &axes});
  ASSERT_EQ(y18.shape(), (Shape{1, 5}));
  expect_near(values_of<float>(y18), {0, 5, 6, 0, 0});
}

TEST(Pad, RejectsNegativeSizesAndInfersUnknownPads) {
  const Tensor x = Tensor::zeros(DataType::kFloat32, {2, 2});
  const Tensor pads = Tensor::from_vector<int64_t>({4}, {0, -2, 0, -1});
  auto bad = evaluate_node(make_node("Pad", 2, 1), 13, {&x, &pads});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("negative size"), std::string::npos);

  const OpDef* def = OpRegistry::global().find("", "Pad", 13);
  ASSERT_NE(def, nullptr);
  const TensorType xt(DataType::kFloat32, std::vector<Dim>{Dim::symbol("n"), Dim(4)});
  const TensorType pt(DataType::kInt64, std::vector<Dim>{Dim(4)});
  ir::Node n = make_node("Pad", 2, 1);
  InferContext unknown(n, 13, {&xt, &pt}, {nullptr, nullptr});
  ASSERT_TRUE(def->infer(unknown).is_ok());
  EXPECT_EQ(unknown.outputs()[0].rank(), 2);
  const Tensor known = Tensor::from_vector<int64_t>({4}, {0, 1, 0, 2});
  InferContext ctx(n, 13, {&xt, &pt}, {nullptr, &known});
  ASSERT_TRUE(def->infer(ctx).is_ok());
  const auto& dims = *ctx.outputs()[0].dims;
  EXPECT_EQ(dims[0].param, "n");  // unpadded symbolic dims survive
  EXPECT_EQ(dims[1].value, 7);
}

}  // namespace
}  // namespace brink::ops
