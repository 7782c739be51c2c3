// Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax, TopK and CumSum reference kernels.
// Expected values are worked by hand or taken from NumPy / ONNX Runtime for the same inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

template <typename T>
std::vector<T> iota_values(int64_t n, T start = T(0)) {
  std::vector<T> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

// Runs a one-output node and returns its output (fails the test on error).
Tensor run1(const std::string& op, int64_t opset, const std::vector<const Tensor*>& inputs,
            std::vector<ir::Attribute> attrs = {}) {
  auto out = evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return out.is_ok() ? (*out)[0] : Tensor();
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// ---- Reduce* ----------------------------------------------------------------------------------

TEST(Reduce, SumOverOuterAndInnerAxesKeepsDims) {
  const Tensor x = Tensor::from_vector<float>({2, 3, 4}, iota_values<float>(24));
  const Tensor y = run1("ReduceSum", 11, {&x}, {make_attr("axes", std::vector<int64_t>{0, 2})});
  ASSERT_EQ(y.shape(), (Shape{1, 3, 1}));
  // Row j of both batches: sum of 4j..4j+3 and 12+4j..12+4j+3.
  expect_near(values_of<float>(y), {60, 92, 124});
}

TEST(Reduce, NegativeAxesAndNoKeepdims) {
  const Tensor x = Tensor::from_vector<float>({2, 3, 4}, iota_values<float>(24));
  const Tensor y =
      run1("ReduceMax", 13, {&x},
           {make_attr("axes", std::vector<int64_t>{-2}), make_attr("keepdims", int64_t{0})});
  ASSERT_EQ(y.shape(), (Shape{2, 4}));
  expect_near(values_of<float>(y), {8, 9, 10, 11, 20, 21, 22, 23});
}

TEST(Reduce, AxesAsInputFromOpset13ForSumAnd18ForOthers) {
  const Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor axes = Tensor::from_vector<int64_t>({1}, {-1});
  const Tensor s = run1("ReduceSum", 13, {&x, &axes});
  ASSERT_EQ(s.shape(), (Shape{2, 1}));
  expect_near(values_of<float>(s), {6, 15});
  const Tensor m = run1("ReduceMean", 18, {&x, &axes}, {make_attr("keepdims", int64_t{0})});
  ASSERT_EQ(m.shape(), (Shape{2}));
  expect_near(values_of<float>(m), {2, 5});
  // At opset 17 ReduceMean still takes axes as an attribute.
  const Tensor m17 = run1("ReduceMean", 17, {&x}, {make_attr("axes", std::vector<int64_t>{0})});
  ASSERT_EQ(m17.shape(), (Shape{1, 3}));
  expect_near(values_of<float>(m17), {2.5f, 3.5f, 4.5f});
}

TEST(Reduce, EmptyAxesReduceAllUnlessNoop) {
  const Tensor x = Tensor::from_vector<float>({2, 2}, {1, -2, 3, -4});
  const Tensor empty = Tensor::from_vector<int64_t>({0}, {});
  const Tensor all = run1("ReduceSum", 13, {&x, &empty}, {make_attr("keepdims", int64_t{0})});
  ASSERT_EQ(all.shape(), Shape{});
  EXPECT_FLOAT_EQ(all.data<float>()[0], -2);
  const Tensor noop =
      run1("ReduceSum", 13, {&x, &empty}, {make_attr("noop_with_empty_axes", int64_t{1})});
  ASSERT_EQ(noop.shape(), (Shape{2, 2}));
  expect_near(values_of<float>(noop), {1, -2, 3, -4});
  // Without axes, ReduceL1 over the one-element sets is |x| (NumPy's axis=()).
  const Tensor l1 = run1("ReduceL1", 18, {&x}, {make_attr("noop_with_empty_axes", int64_t{1})});
  expect_near(values_of<float>(l1), {1, 2, 3, 4});
}

TEST(Reduce, EmptySetGivesTheIdentityOfEachReduction) {
  const Tensor x = Tensor::zeros(DataType::kFloat32, {2, 0, 3});
  const std::vector<ir::Attribute> axis1 = {make_attr("axes", std::vector<int64_t>{1})};
  EXPECT_EQ(run1("ReduceSum", 11, {&x}, axis1).data<float>()[0], 0.0f);
  EXPECT_EQ(run1("ReduceProd", 11, {&x}, axis1).data<float>()[0], 1.0f);
  EXPECT_EQ(run1("ReduceL2", 11, {&x}, axis1).data<float>()[0], 0.0f);
  EXPECT_EQ(run1("ReduceMax", 11, {&x}, axis1).data<float>()[0],
            -std::numeric_limits<float>::infinity());
  EXPECT_EQ(run1("ReduceMin", 11, {&x}, axis1).data<float>()[0],
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(run1("ReduceLogSum", 11, {&x}, axis1).data<float>()[0],
            -std::numeric_limits<float>::infinity());
  EXPECT_EQ(run1("ReduceLogSumExp", 11, {&x}, axis1).data<float>()[0],
            -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(run1("ReduceMean", 11, {&x}, axis1).data<float>()[0]));
  const Tensor xi = Tensor::zeros(DataType::kInt32, {0, 2});
  const Tensor mi = run1("ReduceMin", 11, {&xi}, {make_attr("axes", std::vector<int64_t>{0})});
  ASSERT_EQ(mi.shape(), (Shape{1, 2}));
  EXPECT_EQ(mi.data<int32_t>()[0], std::numeric_limits<int32_t>::max());
}

TEST(Reduce, AwkwardShapeWithUnitDimsAndScalar) {
  // [3, 1, 5] over axes {0, 1}: size-1 dims are merged away but still count as reduced.
  const Tensor x = Tensor::from_vector<int64_t>({3, 1, 5}, iota_values<int64_t>(15));
  const Tensor y = run1("ReduceSum", 11, {&x}, {make_attr("axes", std::vector<int64_t>{1, 0})});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 5}));
  EXPECT_EQ(values_of<int64_t>(y), (std::vector<int64_t>{15, 18, 21, 24, 27}));
  const Tensor s = Tensor::scalar<float>(-3);
  const Tensor r = run1("ReduceSumSquare", 18, {&s});
  ASSERT_EQ(r.shape(), Shape{});
  EXPECT_FLOAT_EQ(r.data<float>()[0], 9);
}

TEST(Reduce, IntegerMeanTruncatesAndLogSumExpIsStable) {
  const Tensor x = Tensor::from_vector<int32_t>({2, 2}, {1, 2, -3, -4});
  const Tensor m = run1("ReduceMean", 11, {&x}, {make_attr("axes", std::vector<int64_t>{1})});
  EXPECT_EQ(values_of<int32_t>(m), (std::vector<int32_t>{1, -3}));  // 1.5 -> 1, -3.5 -> -3
  const Tensor big =
      Tensor::from_vector<float>({3}, {1000, 1000, -std::numeric_limits<float>::infinity()});
  const Tensor l = run1("ReduceLogSumExp", 13, {&big}, {make_attr("keepdims", int64_t{0})});
  EXPECT_NEAR(l.data<float>()[0], 1000 + std::log(2.0f), 1e-3);
}

TEST(Reduce, Float16AccumulatesInFloat) {
  std::vector<Float16> v(4096, Float16(1.0f));
  const Tensor x = Tensor::from_vector<Float16>({4096}, v);
  const Tensor y = run1("ReduceSum", 11, {&x}, {make_attr("keepdims", int64_t{0})});
  EXPECT_EQ(static_cast<float>(y.data<Float16>()[0]), 4096.0f);  // 2048 + 1 would stall in f16
}

TEST(Reduce, RejectsAxisOutOfRangeAndBadDtype) {
  const Tensor x = Tensor::zeros(DataType::kFloat32, {2, 3});
  auto bad = evaluate_node(
      make_node("ReduceSum", 1, 1, {make_attr("axes", std::vector<int64_t>{2})}), 11, {&x});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("axis 2 is out of range for rank 2"), std::string::npos);
  const Tensor b = Tensor::zeros(DataType::kBool, {2});
  auto bt = evaluate_node(make_node("ReduceSum", 1, 1), 11, {&b});
  ASSERT_FALSE(bt.is_ok());
  EXPECT_NE(bt.status().message().find("dtype bool"), std::string::npos);
}

TEST(Reduce, InfersSymbolicShapesWhenAxesAreUnknown) {
  const OpDef* def = OpRegistry::global().find("", "ReduceSum", 13);
  ASSERT_NE(def, nullptr);
  const TensorType x(DataType::kFloat32, std::vector<Dim>{Dim::symbol("batch"), Dim(1), Dim(8)});
  const TensorType axes(DataType::kInt64, std::vector<Dim>{Dim(1)});
  {
    ir::Node n = make_node("ReduceSum", 2, 1);
    InferContext ctx(n, 13, {&x, &axes}, {nullptr, nullptr});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    const TensorType& y = ctx.outputs()[0];
    ASSERT_EQ(y.rank(), 3);  // keepdims: every dim is either kept or 1
    EXPECT_FALSE((*y.dims)[0].known());
    EXPECT_EQ((*y.dims)[1].value, 1);
  }
  {
    ir::Node n = make_node("ReduceSum", 2, 1, {make_attr("keepdims", int64_t{0})});
    InferContext ctx(n, 13, {&x, &axes}, {nullptr, nullptr});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    EXPECT_EQ(ctx.outputs()[0].rank(), 2);  // one axis removed, which one is unknown
  }
  {
    const Tensor known = Tensor::from_vector<int64_t>({1}, {-1});
    ir::Node n = make_node("ReduceSum", 2, 1, {make_attr("keepdims", int64_t{0})});
    InferContext ctx(n, 13, {&x, &axes}, {nullptr, &known});
    ASSERT_TRUE(def->infer(ctx).is_ok());
    const TensorType& y = ctx.outputs()[0];
    ASSERT_EQ(y.rank(), 2);
    EXPECT_EQ((*y.dims)[0].param, "batch");
  }
}

// ---- ArgMax / ArgMin --------------------------------------------------------------------------

TEST(ArgMax, TiesPickFirstOrLastIndex) {
  const Tensor x = Tensor::from_vector<float>({2, 3}, {2, 5, 5, 7, 1, 7});
  const Tensor first = run1("ArgMax", 13, {&x}, {make_attr("axis", int64_t{1})});
  ASSERT_EQ(first.shape(), (Shape{2, 1}));
  EXPECT_EQ(values_of<int64_t>(first), (std::vector<int64_t>{1, 0}));
  const Tensor last =
      run1("ArgMax", 13, {&x},
           {make_attr("axis", int64_t{-1}), make_attr("select_last_index", int64_t{1})});
  EXPECT_EQ(values_of<int64_t>(last), (std::vector<int64_t>{2, 2}));
}

TEST(ArgMin, AlongOuterAxisWithoutKeepdims) {
  const Tensor x = Tensor::from_vector<int32_t>({3, 2}, {4, 0, 1, 9, 1, -2});
  const Tensor y = run1("ArgMin", 11, {&x}, {make_attr("keepdims", int64_t{0})});
  ASSERT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(values_of<int64_t>(y), (std::vector<int64_t>{1, 2}));
}

// ---- Softmax family ---------------------------------------------------------------------------

TEST(Softmax, Opset11CoercesTo2DWhileOpset13UsesOneAxis) {
  const Tensor x = Tensor::from_vector<float>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  const std::vector<ir::Attribute> axis1 = {make_attr("axis", int64_t{1})};
  // Opset 11, axis 1: each batch's 4 values form one distribution.
  const Tensor y11 = run1("Softmax", 11, {&x}, axis1);
  const float z = 1 + std::exp(1.0f) + std::exp(2.0f) + std::exp(3.0f);
  expect_near(values_of<float>(y11),
              {1 / z, std::exp(1.0f) / z, std::exp(2.0f) / z, std::exp(3.0f) / z, 1 / z,
               std::exp(1.0f) / z, std::exp(2.0f) / z, std::exp(3.0f) / z});
  // Opset 13, axis 1: pairs two apart (x[b, 0, k], x[b, 1, k]) form the distributions.
  const Tensor y13 = run1("Softmax", 13, {&x}, axis1);
  const float lo = 1 / (1 + std::exp(2.0f)), hi = 1 - lo;
  expect_near(values_of<float>(y13), {lo, lo, hi, hi, lo, lo, hi, hi});
  // Default axis: 1 (2-D coercion) before opset 13, -1 after.
  expect_near(values_of<float>(run1("Softmax", 11, {&x})), values_of<float>(y11));
  const Tensor last = run1("Softmax", 13, {&x});
  const float a = 1 / (1 + std::exp(1.0f));
  expect_near(values_of<float>(last), {a, 1 - a, a, 1 - a, a, 1 - a, a, 1 - a});
}

TEST(Softmax, LargeInputsDoNotOverflowAndLogSoftmaxMatches) {
  const Tensor x = Tensor::from_vector<float>({1, 3}, {1000, 1001, 1002});
  const Tensor s = run1("Softmax", 13, {&x});
  const Tensor l = run1("LogSoftmax", 13, {&x});
  const float lse = std::log(std::exp(-2.0f) + std::exp(-1.0f) + 1.0f);
  expect_near(values_of<float>(l), {-2 - lse, -1 - lse, -lse});
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(s.data<float>()[i], std::exp(l.data<float>()[i]), 1e-6);
}

TEST(Softmax, RejectsIntegerInputAndBadAxis) {
  const Tensor xi = Tensor::zeros(DataType::kInt32, {2, 2});
  EXPECT_FALSE(evaluate_node(make_node("Softmax", 1, 1), 13, {&xi}).is_ok());
  const Tensor x = Tensor::zeros(DataType::kFloat32, {2, 2});
  auto r = evaluate_node(make_node("Softmax", 1, 1, {make_attr("axis", int64_t{2})}), 13, {&x});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("axis 2 is out of range"), std::string::npos);
}

TEST(Hardmax, FirstMaximumWinsAlongAxis) {
  const Tensor x = Tensor::from_vector<float>({2, 3}, {3, 1, 3, 0, 2, 2});
  const Tensor y = run1("Hardmax", 13, {&x});
  expect_near(values_of<float>(y), {1, 0, 0, 0, 1, 0});
  const Tensor y0 = run1("Hardmax", 13, {&x}, {make_attr("axis", int64_t{0})});
  expect_near(values_of<float>(y0), {1, 0, 1, 0, 1, 0});
}

// ---- TopK -------------------------------------------------------------------------------------

TEST(TopK, LargestAndSmallestBreakTiesByLowerIndex) {
  const Tensor x = Tensor::from_vector<int32_t>({2, 4}, {1, 3, 3, 2, 5, 5, 0, 5});
  const Tensor k = Tensor::from_vector<int64_t>({1}, {2});
  auto out = evaluate_node(make_node("TopK", 2, 2), 11, {&x, &k});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values_of<int32_t>((*out)[0]), (std::vector<int32_t>{3, 3, 5, 5}));
  EXPECT_EQ(values_of<int64_t>((*out)[1]), (std::vector<int64_t>{1, 2, 0, 1}));
  auto small =
      evaluate_node(make_node("TopK", 2, 2, {make_attr("largest", int64_t{0})}), 11, {&x, &k});
  ASSERT_TRUE(small.is_ok());
  EXPECT_EQ(values_of<int32_t>((*small)[0]), (std::vector<int32_t>{1, 2, 0, 5}));
  EXPECT_EQ(values_of<int64_t>((*small)[1]), (std::vector<int64_t>{0, 3, 2, 0}));
}

TEST(TopK, Opset1AttributeAlongMiddleAxisAndKTooLarge) {
  const Tensor x = Tensor::from_vector<float>({2, 3, 2}, {1, 6, 3, 4, 2, 5, 9, 7, 8, 8, 7, 9});
  auto out = evaluate_node(
      make_node("TopK", 1, 2, {make_attr("k", int64_t{1}), make_attr("axis", int64_t{1})}), 1,
      {&x});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 1, 2}));
  expect_near(values_of<float>((*out)[0]), {3, 6, 9, 9});
  EXPECT_EQ(values_of<int64_t>((*out)[1]), (std::vector<int64_t>{1, 0, 0, 2}));
  const Tensor k = Tensor::from_vector<int64_t>({1}, {4});
  auto bad = evaluate_node(make_node("TopK", 2, 2), 11, {&x, &k});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("k is 4"), std::string::npos);
}

// ---- CumSum -----------------------------------------------------------------------------------

TEST(CumSum, ExclusiveReverseAlongNegativeAxis) {
  const Tensor x = Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor axis = Tensor::scalar<int64_t>(-1);
  EXPECT_EQ(values_of<int32_t>(run1("CumSum", 14, {&x, &axis})),
            (std::vector<int32_t>{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(
      values_of<int32_t>(run1("CumSum", 14, {&x, &axis}, {make_attr("exclusive", int64_t{1})})),
      (std::vector<int32_t>{0, 1, 3, 0, 4, 9}));
  EXPECT_EQ(values_of<int32_t>(
                run1("CumSum", 14, {&x, &axis},
                     {make_attr("exclusive", int64_t{1}), make_attr("reverse", int64_t{1})})),
            (std::vector<int32_t>{5, 3, 0, 11, 6, 0}));
  const Tensor axis0 = Tensor::from_vector<int32_t>({1}, {0});
  const Tensor xf = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_near(
      values_of<float>(run1("CumSum", 11, {&xf, &axis0}, {make_attr("reverse", int64_t{1})})),
      {5, 7, 9, 4, 5, 6});
}

}  // namespace
}  // namespace brink::ops
