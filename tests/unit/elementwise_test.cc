#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs a one-output node; inputs may be nullptr (absent optional inputs).
Result<Tensor> run(const std::string& op, int64_t opset, const std::vector<const Tensor*>& inputs,
                   std::vector<ir::Attribute> attrs = {}) {
  auto out = evaluate_node(make_node(op, inputs.size(), 1, std::move(attrs)), opset, inputs);
  if (!out.is_ok()) return out.status();
  return (*out)[0];
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

std::vector<float> as_floats(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<float>(t.element_as_double(i)));
  return v;
}

// ---- broadcasting -------------------------------------------------------------------------

TEST(Elementwise, AddBroadcastsRowAgainstMatrix) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto out = evaluate_node(make_node("Add", 2, 1), 14, {&a, &b});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3}));
  std::vector<float> expect{11, 22, 33, 14, 25, 36};
  for (int i = 0; i < 6; ++i) EXPECT_EQ((*out)[0].data<float>()[i], expect[static_cast<size_t>(i)]);
}

TEST(Elementwise, AddRejectsIncompatibleShapes) {
  Tensor a = Tensor::zeros(DataType::kFloat32, {2, 3});
  Tensor b = Tensor::zeros(DataType::kFloat32, {4});
  auto out = evaluate_node(make_node("Add", 2, 1), 14, {&a, &b});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("broadcast"), std::string::npos);
}

// Flat index into `in` for output multi-index `idx` under NumPy broadcasting.
int64_t broadcast_index(const Shape& in, const Shape& out, const std::vector<int64_t>& idx) {
  int64_t flat = 0;
  const size_t off = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) flat = flat * in[d] + (in[d] == 1 ? 0 : idx[off + d]);
  return flat;
}

Tensor iota_i32(const Shape& s, int32_t start) {
  Tensor t = Tensor::empty(DataType::kInt32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = start + static_cast<int32_t>(i);
  return t;
}

// Every pair of shapes of rank 0..4 built from dims {1, 2, 3}, against a naive reference:
// exercises the dim collapsing of the fast loop, including 1-dims on both sides.
TEST(Elementwise, BinaryBroadcastMatchesNaiveReferenceOnManyShapes) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> rank_d(0, 4), dim_d(0, 2);
  const int64_t dims[] = {1, 2, 3};
  int checked = 0;
  for (int iter = 0; iter < 600; ++iter) {
    Shape sa(static_cast<size_t>(rank_d(rng))), sb(static_cast<size_t>(rank_d(rng)));
    for (auto& d : sa) d = dims[dim_d(rng)];
    for (auto& d : sb) d = dims[dim_d(rng)];
    Shape so;
    if (!broadcast_shapes(sa, sb, &so)) continue;
    Tensor a = iota_i32(sa, 1), b = iota_i32(sb, 1000);
    auto z = run("Sub", 14, {&a, &b});
    ASSERT_TRUE(z.is_ok()) << z.status().message();
    ASSERT_EQ(z->shape(), so);
    std::vector<int64_t> idx(so.size(), 0);
    for (int64_t i = 0; i < z->numel(); ++i) {
      const int32_t want = a.data<int32_t>()[broadcast_index(sa, so, idx)] -
                           b.data<int32_t>()[broadcast_index(sb, so, idx)];
      ASSERT_EQ(z->data<int32_t>()[i], want)
          << shape_to_string(sa) << " - " << shape_to_string(sb) << " at " << i;
      for (size_t d = so.size(); d-- > 0;) {
        if (++idx[d] < so[d]) break;
        idx[d] = 0;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

TEST(Elementwise, BroadcastsOnesOnBothSides) {
  Tensor a = Tensor::from_vector<float>({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({1, 4, 1}, {10, 20, 30, 40});
  auto z = run("Mul", 13, {&a, &b});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  ASSERT_EQ(z->shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(z->data<float>()[0], 10);
  EXPECT_EQ(z->data<float>()[5], 60);    // [0,1,2] = 3 * 20
  EXPECT_EQ(z->data<float>()[23], 240);  // [1,3,2] = 6 * 40
}

TEST(Elementwise, PerChannelBroadcastAsInBatchNormDecomposition) {
  Tensor x = Tensor::zeros(DataType::kFloat32, {2, 3, 2, 2});
  Tensor c = Tensor::from_vector<float>({1, 3, 1, 1}, {1, 2, 3});
  auto z = run("Add", 14, {&x, &c});
  ASSERT_TRUE(z.is_ok());
  for (int64_t i = 0; i < z->numel(); ++i)
    EXPECT_EQ(z->data<float>()[i], static_cast<float>((i / 4) % 3 + 1));
}

TEST(Elementwise, ScalarsAndEmptyTensors) {
  Tensor s1 = Tensor::scalar<float>(2), s2 = Tensor::scalar<float>(5);
  auto z = run("Div", 14, {&s1, &s2});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->shape(), Shape{});
  EXPECT_FLOAT_EQ(z->data<float>()[0], 0.4f);

  Tensor m = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  z = run("Sub", 14, {&s2, &m});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<float>(*z), (std::vector<float>{4, 3, 2, 1}));

  Tensor e = Tensor::zeros(DataType::kFloat32, {0, 3});
  Tensor row = Tensor::from_vector<float>({3}, {1, 2, 3});
  z = run("Add", 14, {&e, &row});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(z->shape(), (Shape{0, 3}));
  Tensor one = Tensor::from_vector<float>({1, 1}, {1});
  z = run("Add", 14, {&one, &e});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->shape(), (Shape{0, 3}));
  z = run("Relu", 14, {&e});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->numel(), 0);
  Tensor w = Tensor::zeros(DataType::kBool, {0});
  z = run("Where", 16, {&w, &s1, &s2});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->shape(), Shape{0});
}

TEST(Elementwise, BinaryRejectsMixedDtypesAndWrongOpsetDtypes) {
  Tensor f = Tensor::zeros(DataType::kFloat32, {2});
  Tensor i = Tensor::zeros(DataType::kInt64, {2});
  auto z = run("Add", 14, {&f, &i});
  ASSERT_FALSE(z.is_ok());
  EXPECT_NE(z.status().message().find("same dtype"), std::string::npos);

  Tensor u8 = Tensor::zeros(DataType::kUInt8, {2});
  EXPECT_FALSE(run("Add", 13, {&u8, &u8}).is_ok());  // small ints arrive in Add-14
  EXPECT_TRUE(run("Add", 14, {&u8, &u8}).is_ok());
  Tensor b = Tensor::zeros(DataType::kBool, {2});
  EXPECT_FALSE(run("Add", 14, {&b, &b}).is_ok());
}

// ---- integer arithmetic -------------------------------------------------------------------

TEST(Elementwise, IntegerDivisionTruncatesTowardZero) {
  Tensor a =
      Tensor::from_vector<int32_t>({6}, {7, -7, 7, -7, 5, std::numeric_limits<int32_t>::min()});
  Tensor b = Tensor::from_vector<int32_t>({6}, {2, 2, -2, -2, 0, -1});
  auto z = run("Div", 14, {&a, &b});
  ASSERT_TRUE(z.is_ok());
  // x / 0 = 0 (as NumPy); INT_MIN / -1 wraps.
  EXPECT_EQ(values<int32_t>(*z),
            (std::vector<int32_t>{3, -3, -3, 3, 0, std::numeric_limits<int32_t>::min()}));
  Tensor u = Tensor::from_vector<uint8_t>({2}, {200, 7});
  Tensor v = Tensor::from_vector<uint8_t>({1}, {3});
  z = run("Div", 14, {&u, &v});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<uint8_t>(*z), (std::vector<uint8_t>{66, 2}));
}

TEST(Elementwise, IntegerArithmeticWrapsInsteadOfOverflowing) {
  Tensor a = Tensor::from_vector<int32_t>({2}, {std::numeric_limits<int32_t>::max(), 65536});
  Tensor b = Tensor::from_vector<int32_t>({2}, {1, 65536});
  auto z = run("Add", 14, {&a, &b});
  EXPECT_EQ(z->data<int32_t>()[0], std::numeric_limits<int32_t>::min());
  z = run("Mul", 14, {&a, &b});
  EXPECT_EQ(z->data<int32_t>()[1], 0);
  Tensor u = Tensor::from_vector<uint16_t>({1}, {65535});
  z = run("Mul", 14, {&u, &u});
  EXPECT_EQ(z->data<uint16_t>()[0], 1);
  Tensor n = Tensor::from_vector<int8_t>({2}, {-128, 5});
  z = run("Neg", 13, {&n});
  EXPECT_EQ(values<int8_t>(*z), (std::vector<int8_t>{-128, -5}));
  z = run("Abs", 13, {&n});
  EXPECT_EQ(values<int8_t>(*z), (std::vector<int8_t>{-128, 5}));
}

TEST(Elementwise, ModFollowsDivisorSignByDefaultAndDividendWithFmod) {
  Tensor a = Tensor::from_vector<int32_t>({6}, {-4, 7, 5, 4, -7, 8});
  Tensor b = Tensor::from_vector<int32_t>({6}, {2, -3, 8, -2, 3, 0});
  auto z = run("Mod", 13, {&a, &b});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(values<int32_t>(*z), (std::vector<int32_t>{0, -2, 5, 0, 2, 0}));
  z = run("Mod", 13, {&a, &b}, {make_attr("fmod", int64_t{1})});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<int32_t>(*z), (std::vector<int32_t>{0, 1, 5, 0, -1, 0}));

  Tensor fa = Tensor::from_vector<float>({2}, {-4.5f, 7.5f});
  Tensor fb = Tensor::from_vector<float>({2}, {2.0f, -2.0f});
  z = run("Mod", 13, {&fa, &fb}, {make_attr("fmod", int64_t{1})});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<float>(*z), (std::vector<float>{-0.5f, 1.5f}));
  z = run("Mod", 13, {&fa, &fb});
  ASSERT_FALSE(z.is_ok());
  EXPECT_NE(z.status().message().find("fmod"), std::string::npos);

  Tensor ha = Tensor::from_vector<Float16>({1}, {Float16(-4.3f)});
  Tensor hb = Tensor::from_vector<Float16>({1}, {Float16(2.1f)});
  z = run("Mod", 13, {&ha, &hb}, {make_attr("fmod", int64_t{1})});
  ASSERT_TRUE(z.is_ok());
  EXPECT_NEAR(static_cast<float>(z->data<Float16>()[0]), -0.1016f, 1e-3);
}

TEST(Elementwise, PowWithMixedTypes) {
  Tensor fb = Tensor::from_vector<float>({3}, {1, 2, 3});
  Tensor ie = Tensor::from_vector<int64_t>({3}, {4, 5, 6});
  auto z = run("Pow", 15, {&fb, &ie});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(z->dtype(), DataType::kFloat32);
  EXPECT_EQ(values<float>(*z), (std::vector<float>{1, 32, 729}));

  Tensor ib = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  Tensor fe = Tensor::from_vector<float>({3}, {4, 5, 0.5f});
  z = run("Pow", 15, {&ib, &fe});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->dtype(), DataType::kInt64);
  EXPECT_EQ(values<int64_t>(*z), (std::vector<int64_t>{1, 32, 1}));  // 3^0.5 truncates

  Tensor i32 = Tensor::from_vector<int32_t>({4}, {2, -3, 2, -1});
  Tensor e32 = Tensor::from_vector<int32_t>({4}, {31, 3, -1, -3});
  z = run("Pow", 15, {&i32, &e32});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<int32_t>(*z),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -27, 0, -1}));

  // Pow-7 needs one type for both; Pow-12 does not.
  EXPECT_FALSE(run("Pow", 7, {&fb, &ie}).is_ok());
  EXPECT_TRUE(run("Pow", 12, {&fb, &ie}).is_ok());

  Tensor two = Tensor::scalar<float>(2);
  Tensor x = Tensor::from_vector<float>({2, 2}, {-1.5f, 3, 0, 1e20f});
  z = run("Pow", 15, {&x, &two});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->shape(), (Shape{2, 2}));
  EXPECT_EQ(values<float>(*z), (std::vector<float>{2.25f, 9, 0, kInf}));
  Tensor h = Tensor::from_vector<Float16>({2}, {Float16(1.5f), Float16(-2.0f)});
  Tensor e = Tensor::from_vector<float>({2}, {2.0f, 3.0f});
  z = run("Pow", 15, {&h, &e});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(as_floats(*z), (std::vector<float>{2.25f, -8.0f}));
}

TEST(Elementwise, BitShiftAndBitwise) {
  Tensor x = Tensor::from_vector<uint8_t>({4}, {16, 4, 1, 255});
  Tensor s = Tensor::from_vector<uint8_t>({4}, {1, 2, 8, 7});
  auto z = run("BitShift", 11, {&x, &s}, {make_attr("direction", std::string("LEFT"))});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<uint8_t>(*z), (std::vector<uint8_t>{32, 16, 0, 128}));
  z = run("BitShift", 11, {&x, &s}, {make_attr("direction", std::string("RIGHT"))});
  EXPECT_EQ(values<uint8_t>(*z), (std::vector<uint8_t>{8, 1, 0, 1}));
  EXPECT_FALSE(run("BitShift", 11, {&x, &s}, {make_attr("direction", std::string("UP"))}).is_ok());

  Tensor a = Tensor::from_vector<int16_t>({2}, {0x0ff0, -1});
  Tensor b = Tensor::from_vector<int16_t>({1}, {0x00ff});
  EXPECT_EQ(values<int16_t>(*run("BitwiseAnd", 18, {&a, &b})), (std::vector<int16_t>{0xf0, 0xff}));
  EXPECT_EQ(values<int16_t>(*run("BitwiseOr", 18, {&a, &b})), (std::vector<int16_t>{0x0fff, -1}));
  EXPECT_EQ(values<int16_t>(*run("BitwiseXor", 18, {&a, &b})),
            (std::vector<int16_t>{0x0f0f, -256}));
  EXPECT_EQ(values<int16_t>(*run("BitwiseNot", 18, {&a})), (std::vector<int16_t>{-0x0ff1, 0}));
}

// ---- comparisons and logic ---------------------------------------------------------------

TEST(Elementwise, ComparisonsProduceBool) {
  Tensor a = Tensor::from_vector<float>({4}, {1, 2, 3, kNaN});
  Tensor b = Tensor::scalar<float>(2);
  auto z = run("Less", 13, {&a, &b});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->dtype(), DataType::kBool);
  EXPECT_EQ(values<bool>(*z), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(values<bool>(*run("GreaterOrEqual", 16, {&a, &b})),
            (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(values<bool>(*run("Equal", 13, {&a, &b})),
            (std::vector<bool>{false, true, false, false}));

  Tensor p = Tensor::from_vector<bool>({2, 2}, {true, true, false, false});
  Tensor q = Tensor::from_vector<bool>({2}, {true, false});
  EXPECT_EQ(values<bool>(*run("And", 7, {&p, &q})), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(values<bool>(*run("Or", 7, {&p, &q})), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(values<bool>(*run("Xor", 7, {&p, &q})), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(values<bool>(*run("Equal", 11, {&p, &q})),
            (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(values<bool>(*run("Not", 1, {&q})), (std::vector<bool>{false, true}));
  // Equal-7 takes no floats; Less rejects bool.
  EXPECT_FALSE(run("Equal", 7, {&a, &a}).is_ok());
  EXPECT_FALSE(run("Less", 13, {&p, &p}).is_ok());
}

// ---- unary -------------------------------------------------------------------------------

TEST(Elementwise, RoundsHalfToEven) {
  Tensor x = Tensor::from_vector<float>({8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.7f, -2.2f});
  auto z = run("Round", 11, {&x});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<float>(*z), (std::vector<float>{0, 2, 2, -0.0f, -2, -2, 3, -2}));
}

TEST(Elementwise, SignIsNaNIsInf) {
  Tensor x = Tensor::from_vector<float>({5}, {-3, 0, 2, kInf, -kInf});
  EXPECT_EQ(values<float>(*run("Sign", 13, {&x})), (std::vector<float>{-1, 0, 1, 1, -1}));
  Tensor u = Tensor::from_vector<uint32_t>({2}, {0, 7});
  EXPECT_EQ(values<uint32_t>(*run("Sign", 13, {&u})), (std::vector<uint32_t>{0, 1}));
  Tensor y = Tensor::from_vector<float>({4}, {kNaN, kInf, -kInf, 1});
  EXPECT_EQ(values<bool>(*run("IsNaN", 13, {&y})), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(values<bool>(*run("IsInf", 10, {&y})), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(values<bool>(*run("IsInf", 10, {&y}, {make_attr("detect_negative", int64_t{0})})),
            (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(values<bool>(*run("IsInf", 10, {&y}, {make_attr("detect_positive", int64_t{0})})),
            (std::vector<bool>{false, false, true, false}));
  Tensor h = Tensor::from_vector<Float16>({1}, {Float16(1.0f)});
  EXPECT_FALSE(run("IsInf", 10, {&h}).is_ok());  // f16 arrives in IsInf-20
  EXPECT_TRUE(run("IsInf", 20, {&h}).is_ok());
}

TEST(Elementwise, UnaryMathOnFloat16AndBFloat16) {
  Tensor h = Tensor::from_vector<Float16>({3}, {Float16(0.0f), Float16(1.0f), Float16(-2.0f)});
  auto z = run("Exp", 13, {&h});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->dtype(), DataType::kFloat16);
  EXPECT_NEAR(static_cast<float>(z->data<Float16>()[1]), 2.71828f, 2e-3);
  Tensor b = Tensor::from_vector<BFloat16>({2}, {BFloat16(4.0f), BFloat16(0.25f)});
  z = run("Sqrt", 13, {&b});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(as_floats(*z), (std::vector<float>{2.0f, 0.5f}));
  EXPECT_FALSE(run("Sqrt", 12, {&b}).is_ok());  // bf16 arrives in Sqrt-13
  Tensor i = Tensor::from_vector<int32_t>({1}, {4});
  auto bad = run("Sqrt", 13, {&i});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("int32"), std::string::npos);
}

TEST(Elementwise, ReluAcceptsSignedIntegersFromOpset14) {
  Tensor i = Tensor::from_vector<int8_t>({3}, {-5, 0, 7});
  EXPECT_FALSE(run("Relu", 13, {&i}).is_ok());
  auto z = run("Relu", 14, {&i});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<int8_t>(*z), (std::vector<int8_t>{0, 0, 7}));
  Tensor u = Tensor::from_vector<uint8_t>({1}, {1});
  EXPECT_FALSE(run("Relu", 14, {&u}).is_ok());
}

TEST(Elementwise, Activations) {
  Tensor x = Tensor::from_vector<float>({4}, {-2, -0.5f, 0.5f, 3});
  auto near = [](const Tensor& t, const std::vector<float>& want) {
    ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(t.data<float>()[i], want[i], 1e-5f) << i;
  };
  near(*run("Sigmoid", 13, {&x}), {0.11920292f, 0.37754067f, 0.62245933f, 0.95257413f});
  near(*run("LeakyRelu", 16, {&x}, {make_attr("alpha", 0.1f)}), {-0.2f, -0.05f, 0.5f, 3});
  near(*run("Elu", 6, {&x}), {-0.86466472f, -0.39346934f, 0.5f, 3});
  near(*run("Selu", 6, {&x}), {-1.5201665f, -0.6917582f, 0.52535051f, 3.1521031f});
  near(*run("Celu", 12, {&x}, {make_attr("alpha", 2.0f)}), {-1.2642411f, -0.4423984f, 0.5f, 3});
  near(*run("HardSigmoid", 6, {&x}), {0.1f, 0.4f, 0.6f, 1});
  near(*run("HardSwish", 14, {&x}), {-0.33333334f, -0.20833333f, 0.29166666f, 3});
  near(*run("Softplus", 1, {&x}), {0.12692801f, 0.47407698f, 0.97407698f, 3.04858735f});
  near(*run("Softsign", 1, {&x}), {-0.66666667f, -0.33333333f, 0.33333333f, 0.75f});
  near(*run("Mish", 18, {&x}), {-0.25250148f, -0.22074377f, 0.37524521f, 2.98653500f});
  near(*run("ThresholdedRelu", 10, {&x}, {make_attr("alpha", 0.5f)}), {0, 0, 0, 3});
  near(*run("Shrink", 9, {&x}, {make_attr("lambd", 1.0f), make_attr("bias", 0.5f)}),
       {-1.5f, 0, 0, 2.5f});
  near(*run("Gelu", 20, {&x}), {-0.04550026f, -0.15426877f, 0.34573123f, 2.99595031f});
  near(*run("Gelu", 20, {&x}, {make_attr("approximate", std::string("tanh"))}),
       {-0.04540231f, -0.15428599f, 0.34571401f, 2.99636261f});
  EXPECT_FALSE(run("Gelu", 20, {&x}, {make_attr("approximate", std::string("fast"))}).is_ok());
  EXPECT_FALSE(run("Gelu", 19, {&x}).is_ok());

  Tensor big = Tensor::from_vector<float>({2}, {-100, 100});
  near(*run("Sigmoid", 13, {&big}), {0, 1});
  near(*run("Softplus", 1, {&big}), {0, 100});
}

TEST(Elementwise, ActivationsLetNaNThrough) {
  Tensor x = Tensor::from_vector<float>({1}, {kNaN});
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Elu", "Selu",
                         "HardSwish", "LeakyRelu", "Mish"}) {
    const int64_t opset = std::string(op) == "Mish" ? 18 : 16;
    auto z = run(op, opset, {&x});
    ASSERT_TRUE(z.is_ok()) << op << ": " << z.status().message();
    EXPECT_TRUE(std::isnan(z->data<float>()[0])) << op;
  }
  EXPECT_TRUE(std::isnan(run("HardSigmoid", 6, {&x})->data<float>()[0]));
  EXPECT_TRUE(std::isnan(run("Celu", 12, {&x})->data<float>()[0]));
  EXPECT_TRUE(std::isnan(run("Gelu", 20, {&x})->data<float>()[0]));
  Tensor lo = Tensor::scalar<float>(0), hi = Tensor::scalar<float>(1);
  EXPECT_TRUE(std::isnan(run("Clip", 13, {&x, &lo, &hi})->data<float>()[0]));
}

TEST(Elementwise, PReluBroadcastsSlopeUnidirectionally) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {-1, -2, 3, -4, 5, -6});
  Tensor slope = Tensor::from_vector<float>({3}, {0.5f, 0.25f, 2});
  auto z = run("PRelu", 16, {&x, &slope});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(values<float>(*z), (std::vector<float>{-0.5f, -0.5f, 3, -2, 5, -12}));
  Tensor wide = Tensor::from_vector<float>({2, 2, 3}, std::vector<float>(12, 1));
  EXPECT_FALSE(run("PRelu", 16, {&x, &wide}).is_ok());
  Tensor xi = Tensor::from_vector<int32_t>({2}, {-3, 3});
  Tensor si = Tensor::from_vector<int32_t>({1}, {2});
  EXPECT_EQ(values<int32_t>(*run("PRelu", 9, {&xi, &si})), (std::vector<int32_t>{-6, 3}));
  EXPECT_FALSE(run("PRelu", 7, {&xi, &si}).is_ok());
}

// ---- Clip --------------------------------------------------------------------------------

TEST(Elementwise, ClipWithMissingBounds) {
  Tensor x = Tensor::from_vector<float>({5}, {-kInf, -2, 0, 2, kInf});
  Tensor lo = Tensor::scalar<float>(-1), hi = Tensor::scalar<float>(1);
  EXPECT_EQ(values<float>(*run("Clip", 13, {&x, &lo, &hi})), (std::vector<float>{-1, -1, 0, 1, 1}));
  EXPECT_EQ(values<float>(*run("Clip", 13, {&x, nullptr, &hi})),
            (std::vector<float>{-kInf, -2, 0, 1, 1}));
  EXPECT_EQ(values<float>(*run("Clip", 13, {&x, &lo})), (std::vector<float>{-1, -1, 0, 2, kInf}));
  EXPECT_EQ(values<float>(*run("Clip", 11, {&x})), (std::vector<float>{-kInf, -2, 0, 2, kInf}));
  // min > max: everything becomes max.
  EXPECT_EQ(values<float>(*run("Clip", 13, {&x, &hi, &lo})),
            (std::vector<float>{-1, -1, -1, -1, -1}));
  // Clip-6 takes attributes.
  EXPECT_EQ(values<float>(*run("Clip", 6, {&x}, {make_attr("min", -1.5f)})),
            (std::vector<float>{-1.5f, -1.5f, 0, 2, kInf}));
  EXPECT_EQ(values<float>(*run("Clip", 6, {&x}, {make_attr("min", -1.5f), make_attr("max", 0.5f)})),
            (std::vector<float>{-1.5f, -1.5f, 0, 0.5f, 0.5f}));

  Tensor xi = Tensor::from_vector<int8_t>({3}, {-128, 5, 127});
  Tensor mi = Tensor::scalar<int8_t>(0);
  EXPECT_FALSE(run("Clip", 11, {&xi, &mi}).is_ok());  // integers arrive in Clip-12
  EXPECT_EQ(values<int8_t>(*run("Clip", 12, {&xi, nullptr, &mi})),
            (std::vector<int8_t>{-128, 0, 0}));
  Tensor not_scalar = Tensor::from_vector<float>({2}, {0, 1});
  EXPECT_FALSE(run("Clip", 13, {&x, &not_scalar}).is_ok());
  Tensor one_elem = Tensor::from_vector<float>({1}, {0});
  EXPECT_TRUE(run("Clip", 13, {&x, &one_elem}).is_ok());
}

// ---- variadic and Where ------------------------------------------------------------------

TEST(Elementwise, VariadicOpsBroadcastAllInputs) {
  Tensor a = Tensor::from_vector<float>({2, 1}, {1, 6});
  Tensor b = Tensor::from_vector<float>({3}, {2, 4, 8});
  Tensor c = Tensor::scalar<float>(3);
  auto z = run("Max", 13, {&a, &b, &c});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->shape(), (Shape{2, 3}));
  EXPECT_EQ(values<float>(*z), (std::vector<float>{3, 4, 8, 6, 6, 8}));
  EXPECT_EQ(values<float>(*run("Min", 13, {&a, &b, &c})), (std::vector<float>{1, 1, 1, 2, 3, 3}));
  EXPECT_EQ(values<float>(*run("Sum", 13, {&a, &b, &c})),
            (std::vector<float>{6, 8, 12, 11, 13, 17}));
  EXPECT_EQ(values<float>(*run("Mean", 13, {&a, &b, &c})),
            (std::vector<float>{2, 8.0f / 3, 4, 11.0f / 3, 13.0f / 3, 17.0f / 3}));
  EXPECT_EQ(values<float>(*run("Sum", 8, {&b})), (std::vector<float>{2, 4, 8}));
  // The third input is the one that widens the shape.
  EXPECT_EQ(values<float>(*run("Sum", 13, {&c, &c, &a})), (std::vector<float>{7, 12}));

  // 16-bit floats accumulate in float: 2048 + 1 + 1 stepwise in f16 would stay 2048.
  Tensor h1 = Tensor::from_vector<Float16>({1}, {Float16(2048.0f)});
  Tensor h2 = Tensor::from_vector<Float16>({1}, {Float16(1.0f)});
  EXPECT_EQ(as_floats(*run("Sum", 13, {&h1, &h2, &h2})), (std::vector<float>{2050}));
  EXPECT_EQ(as_floats(*run("Mean", 13, {&h1, &h2, &h2})), (std::vector<float>{683.5f}));

  Tensor n = Tensor::from_vector<float>({2}, {kNaN, 1});
  Tensor m = Tensor::from_vector<float>({2}, {0, kNaN});
  z = run("Max", 13, {&n, &m});
  EXPECT_TRUE(std::isnan(z->data<float>()[0]));
  EXPECT_TRUE(std::isnan(z->data<float>()[1]));

  Tensor i = Tensor::from_vector<uint16_t>({2}, {1, 65535});
  Tensor j = Tensor::from_vector<uint16_t>({2}, {2, 3});
  EXPECT_FALSE(run("Max", 11, {&i, &j}).is_ok());  // integers arrive in Max-12
  EXPECT_EQ(values<uint16_t>(*run("Max", 12, {&i, &j})), (std::vector<uint16_t>{2, 65535}));
  EXPECT_FALSE(run("Sum", 13, {&i, &j}).is_ok());
  EXPECT_FALSE(run("Max", 13, {&a, &i}).is_ok());
  EXPECT_FALSE(run("Max", 13, {}).is_ok());
}

TEST(Elementwise, WhereBroadcastsThreeWays) {
  Tensor c = Tensor::from_vector<bool>({2, 1}, {true, false});
  Tensor x = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  Tensor y = Tensor::scalar<int64_t>(-1);
  auto z = run("Where", 16, {&c, &x, &y});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(z->shape(), (Shape{2, 3}));
  EXPECT_EQ(values<int64_t>(*z), (std::vector<int64_t>{1, 2, 3, -1, -1, -1}));

  Tensor c2 = Tensor::from_vector<bool>({3}, {true, false, true});
  Tensor xs = Tensor::from_vector<float>({2, 1}, {10, 20});
  Tensor ys = Tensor::from_vector<float>({1, 3}, {-1, -2, -3});
  z = run("Where", 9, {&c2, &xs, &ys});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(values<float>(*z), (std::vector<float>{10, -2, 10, 20, -2, 20}));

  Tensor bf = Tensor::from_vector<BFloat16>({3}, {BFloat16(1.0f), BFloat16(2.0f), BFloat16(3.0f)});
  EXPECT_FALSE(run("Where", 9, {&c2, &bf, &bf}).is_ok());
  EXPECT_TRUE(run("Where", 16, {&c2, &bf, &bf}).is_ok());
  Tensor notbool = Tensor::from_vector<int32_t>({3}, {1, 0, 1});
  EXPECT_FALSE(run("Where", 16, {&notbool, &x, &x}).is_ok());
}

// ---- Cast --------------------------------------------------------------------------------

ir::Attribute to(DataType t) {
  return make_attr("to", static_cast<int64_t>(t));
}

// In range, float -> int truncates toward zero. NaN and out-of-range values (undefined in
// the spec) give what ORT and NumPy give on x86-64; the expected values were taken from both.
TEST(Elementwise, CastFloatToIntTruncatesAndMatchesOrtOutOfRange) {
  Tensor x =
      Tensor::from_vector<float>({8}, {2.9f, -2.9f, kNaN, 1e10f, -1e10f, kInf, -kInf, 127.5f});
  auto z = run("Cast", 13, {&x}, {to(DataType::kInt32)});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(values<int32_t>(*z), (std::vector<int32_t>{2, -2, mn, mn, mn, mn, mn, 127}));
  z = run("Cast", 13, {&x}, {to(DataType::kUInt8)});
  EXPECT_EQ(values<uint8_t>(*z), (std::vector<uint8_t>{2, 254, 0, 0, 0, 0, 0, 127}));
  z = run("Cast", 13, {&x}, {to(DataType::kInt64)});
  EXPECT_EQ(z->data<int64_t>()[3], 10000000000LL);
  EXPECT_EQ(z->data<int64_t>()[5], std::numeric_limits<int64_t>::min());
  z = run("Cast", 13, {&x}, {to(DataType::kBool)});
  EXPECT_EQ(values<bool>(*z), (std::vector<bool>{true, true, true, true, true, true, true, true}));

  Tensor y = Tensor::from_vector<float>({6}, {kNaN, kInf, -kInf, -1.5f, 3e9f, 1e19f});
  EXPECT_EQ(values<uint32_t>(*run("Cast", 13, {&y}, {to(DataType::kUInt32)})),
            (std::vector<uint32_t>{2147483648u, 0, 2147483648u, 4294967295u, 3000000000u, 0}));
  EXPECT_EQ(
      values<uint64_t>(*run("Cast", 13, {&y}, {to(DataType::kUInt64)})),
      (std::vector<uint64_t>{9223372036854775808ull, 0, 9223372036854775808ull,
                             18446744073709551615ull, 3000000000ull, 9999999980506447872ull}));
  Tensor w = Tensor::from_vector<double>({3}, {300.7, -129.9, 65536.5});
  EXPECT_EQ(values<int8_t>(*run("Cast", 13, {&w}, {to(DataType::kInt8)})),
            (std::vector<int8_t>{44, 127, 0}));
}

TEST(Elementwise, CastBetweenIntegersKeepsLowBits) {
  Tensor x = Tensor::from_vector<int16_t>({3}, {200, -1, 0});
  EXPECT_EQ(values<int8_t>(*run("Cast", 13, {&x}, {to(DataType::kInt8)})),
            (std::vector<int8_t>{-56, -1, 0}));
  EXPECT_EQ(values<uint32_t>(*run("Cast", 13, {&x}, {to(DataType::kUInt32)})),
            (std::vector<uint32_t>{200, 0xffffffffu, 0}));
  EXPECT_EQ(values<bool>(*run("Cast", 13, {&x}, {to(DataType::kBool)})),
            (std::vector<bool>{true, true, false}));
  Tensor b = Tensor::from_vector<bool>({2}, {true, false});
  EXPECT_EQ(values<double>(*run("Cast", 13, {&b}, {to(DataType::kFloat64)})),
            (std::vector<double>{1, 0}));
  EXPECT_EQ(as_floats(*run("Cast", 13, {&b}, {to(DataType::kFloat16)})),
            (std::vector<float>{1, 0}));
}

TEST(Elementwise, CastHalfTypes) {
  Tensor x = Tensor::from_vector<float>({5}, {1.0f / 3, 65520.0f, kNaN, -kInf, 1e-8f});
  auto h = run("Cast", 13, {&x}, {to(DataType::kFloat16)});
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->dtype(), DataType::kFloat16);
  EXPECT_EQ(h->data<Float16>()[0].bits, 0x3555);  // nearest half to 1/3
  EXPECT_TRUE(std::isinf(static_cast<float>(h->data<Float16>()[1])));
  EXPECT_TRUE(std::isnan(static_cast<float>(h->data<Float16>()[2])));
  EXPECT_EQ(h->data<Float16>()[3].bits, 0xfc00);
  EXPECT_EQ(h->data<Float16>()[4].bits, 0x0000);
  // f16 -> bf16 -> f32
  auto bf = run("Cast", 13, {&*h}, {to(DataType::kBFloat16)});
  ASSERT_TRUE(bf.is_ok());
  EXPECT_EQ(bf->dtype(), DataType::kBFloat16);
  auto f = run("Cast", 13, {&*bf}, {to(DataType::kFloat32)});
  EXPECT_NEAR(f->data<float>()[0], 1.0f / 3, 2e-3);
  EXPECT_TRUE(std::isnan(f->data<float>()[2]));
  // bf16 arrived in Cast-13.
  EXPECT_FALSE(run("Cast", 9, {&x}, {to(DataType::kBFloat16)}).is_ok());
  Tensor d = Tensor::from_vector<double>({1}, {0.1});
  EXPECT_EQ(run("Cast", 6, {&d}, {to(DataType::kFloat16)})->data<Float16>()[0].bits,
            Float16(0.1f).bits);
}

TEST(Elementwise, CastRejectsStringAndFloat8Clearly) {
  Tensor x = Tensor::from_vector<float>({1}, {1});
  auto z = run("Cast", 13, {&x}, {make_attr("to", int64_t{8})});
  ASSERT_FALSE(z.is_ok());
  EXPECT_EQ(z.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(z.status().message().find("string"), std::string::npos);
  z = run("Cast", 19, {&x}, {make_attr("to", int64_t{17}), make_attr("saturate", int64_t{1})});
  ASSERT_FALSE(z.is_ok());
  EXPECT_EQ(z.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(z.status().message().find("float8e4m3fn"), std::string::npos);
  z = run("Cast", 13, {&x}, {make_attr("to", int64_t{99})});
  ASSERT_FALSE(z.is_ok());
  EXPECT_EQ(z.status().code(), StatusCode::kInvalidModel);
  EXPECT_FALSE(run("Cast", 13, {&x}).is_ok());  // 'to' is required
}

TEST(Elementwise, CastLikeTakesTheSecondInputsDtype) {
  Tensor x = Tensor::from_vector<double>({2}, {1.5, -2.5});
  Tensor like = Tensor::from_vector<int16_t>({1}, {0});
  auto z = run("CastLike", 15, {&x, &like});
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_EQ(z->dtype(), DataType::kInt16);
  EXPECT_EQ(values<int16_t>(*z), (std::vector<int16_t>{1, -2}));
  EXPECT_FALSE(run("CastLike", 14, {&x, &like}).is_ok());
}

TEST(Float16, RoundTripsRepresentableValuesAndRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f})
    EXPECT_EQ(static_cast<float>(Float16(f)), f);
  EXPECT_EQ(static_cast<float>(Float16(1.0f + 1.0f / 4096)), 1.0f);  // halfway rounds to even
  EXPECT_TRUE(std::isinf(static_cast<float>(Float16(70000.0f))));
}

}  // namespace
}  // namespace brink::ops
