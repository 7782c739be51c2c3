// LSTM / GRU / RNN reference kernels. Expected values were produced by ONNX Runtime 1.32's
// CPU kernels on the same inputs (the ONNX reference implementation ignores sequence_lens).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

constexpr float kTol = 1e-5f;

void expect_near(const Tensor& t, const Shape& shape, const std::vector<float>& want) {
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(t.dtype(), DataType::kFloat32);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(t.data<float>()[i], want[i], kTol) << "element " << i;
}

ir::Node rnn_node(const std::string& op, size_t inputs, size_t outputs,
                  std::vector<ir::Attribute> attrs) {
  return make_node(op, inputs, outputs, std::move(attrs));
}

TEST(Rnn, BidirectionalLstmWithSequenceLensPeepholesAndInitialState) {
  // seq 3, batch 2 (lengths 3 and 1), input 2, hidden 2.
  Tensor x = Tensor::from_vector<float>(
      {3, 2, 2}, {-0.7f, -0.7f, 0.6f, 0, 0.2f, 0.2f, 0.4f, -0.9f, 0, -0.7f, -0.2f, 0.8f});
  Tensor w = Tensor::from_vector<float>(
      {2, 8, 2}, {0.1f,  -0.8f, 0.1f, -0.7f, 0.5f,  0.9f, 0.9f,  0.2f,  0.7f,  -0.2f, -0.7f,
                  0,     -0.1f, 0.3f, 0.9f,  -0.4f, 0.7f, -0.7f, -0.3f, 0.5f,  -0.5f, 0.3f,
                  -0.1f, 0,     0.8f, 0.6f,  0.6f,  0.1f, 0.9f,  0.9f,  -0.7f, -0.6f});
  Tensor r = Tensor::from_vector<float>(
      {2, 8, 2}, {-0.4f, 0.1f, 0.6f,  0,     0.9f,  -0.3f, 0.8f,  0.2f, 0.4f,  -0.5f, 0.2f,
                  0.6f,  0.7f, 0.7f,  0.9f,  -0.7f, 0.5f,  -0.1f, 0.4f, -0.4f, -0.9f, -0.8f,
                  0.9f,  0.8f, -0.4f, -0.1f, -0.5f, -0.7f, 0.7f,  0.3f, -0.8f, -0.6f});
  Tensor b = Tensor::from_vector<float>(
      {2, 16}, {0.1f,  0.8f,  0.9f,  -0.5f, 0.2f, -0.9f, -0.6f, -0.6f, -0.1f, -0.3f, 0.4f,
                -0.1f, -0.3f, 0.8f,  0.2f,  0.4f, 0.5f,  -0.3f, 0.7f,  -0.9f, -0.4f, -0.6f,
                -0.9f, 0.9f,  -0.8f, -0.1f, 0.6f, 0.4f,  0.7f,  -0.8f, 0,     -0.9f});
  Tensor lens = Tensor::from_vector<int32_t>({2}, {3, 1});
  Tensor h0 =
      Tensor::from_vector<float>({2, 2, 2}, {-0.6f, 0.7f, -0.8f, 0.2f, -0.9f, -0.4f, 0.8f, -0.3f});
  Tensor c0 =
      Tensor::from_vector<float>({2, 2, 2}, {-0.4f, -0.8f, 0.5f, -0.6f, 0, -0.9f, -0.9f, 0.6f});
  Tensor p = Tensor::from_vector<float>(
      {2, 6}, {-0.9f, -0.1f, -0.1f, -0.7f, 0.3f, 0.5f, 0.9f, -0.6f, 0.8f, -0.8f, -0.7f, 0.2f});
  auto node = rnn_node(
      "LSTM", 8, 3,
      {make_attr("hidden_size", int64_t{2}), make_attr("direction", std::string("bidirectional"))});
  auto out = evaluate_node(node, 14, {&x, &w, &r, &b, &lens, &h0, &c0, &p});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // Batch 1 has length 1: its Y rows past step 0 are zero, and its reverse direction starts at
  // step 0 (its own last valid step), not at step 2.
  expect_near((*out)[0], {3, 2, 2, 2},
              {-0.1636088f,
               -0.2160737f,
               -0.06119111f,
               -0.1682959f,
               -0.3731581f,
               0.0748487f,
               -0.281468f,
               -0.05913986f,
               -0.3958609f,
               -0.1451016f,
               0,
               0,
               -0.3600225f,
               0.008934342f,
               0,
               0,
               -0.4081176f,
               -0.07272083f,
               0,
               0,
               -0.355586f,
               0.01455046f,
               0,
               0});
  expect_near((*out)[1], {2, 2, 2},
              {-0.4081176f, -0.07272083f, -0.06119111f, -0.1682959f, -0.3731581f, 0.0748487f,
               -0.281468f, -0.05913986f});
  expect_near((*out)[2], {2, 2, 2},
              {-0.8131707f, -0.2580729f, -0.08813262f, -0.4339458f, -0.510085f, 0.2794304f,
               -0.630892f, -0.1179795f});
}

struct GruCase {
  Tensor x = Tensor::from_vector<float>(
      {3, 2, 2}, {0.7f, 0.8f, 0.5f, -0.9f, -0.2f, 0.6f, 0.1f, -0.6f, 0.3f, -0.8f, 0.4f, -0.9f});
  Tensor w = Tensor::from_vector<float>(
      {1, 6, 2}, {-0.3f, -0.4f, 0.8f, 0.4f, 0.3f, 0, -0.4f, 0.7f, 0.8f, -0.5f, -0.5f, -0.4f});
  Tensor r = Tensor::from_vector<float>(
      {1, 6, 2}, {0, -0.5f, -0.2f, 0.9f, -0.3f, 0.8f, 0, -0.3f, 0.8f, -0.1f, 0.5f, -0.4f});
  Tensor b = Tensor::from_vector<float>(
      {1, 12}, {0.9f, 0.5f, 0.7f, -0.9f, -0.7f, -0.8f, 0.1f, -0.2f, 0.9f, -0.5f, -0.6f, 0.7f});
  Tensor h0 = Tensor::from_vector<float>({1, 2, 2}, {-0.4f, 0.5f, -0.4f, 0.1f});

  Result<std::vector<Tensor>> run(int64_t linear_before_reset) const {
    auto node = rnn_node("GRU", 6, 2,
                         {make_attr("hidden_size", int64_t{2}),
                          make_attr("linear_before_reset", linear_before_reset)});
    return evaluate_node(node, 14, {&x, &w, &r, &b, nullptr, &h0});
  }
};

TEST(Rnn, GruResetAppliedBeforeRecurrentMatmul) {
  auto out = GruCase().run(0);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near((*out)[0], {3, 1, 2, 2},
              {-0.620036f, 0.3070201f, -0.4533972f, -0.0002824329f, -0.7407815f, 0.05434877f,
               -0.5427652f, -0.04583932f, -0.7607836f, -0.06708544f, -0.5815113f, -0.09819628f});
  expect_near((*out)[1], {1, 2, 2}, {-0.7607836f, -0.06708544f, -0.5815113f, -0.09819628f});
}

TEST(Rnn, GruLinearBeforeReset) {
  auto out = GruCase().run(1);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near((*out)[0], {3, 1, 2, 2},
              {-0.6183491f, 0.2876752f, -0.4432296f, -0.1511292f, -0.7378809f, -0.02613272f,
               -0.5211653f, -0.312165f, -0.7512437f, -0.2356447f, -0.5442291f, -0.4124207f});
  expect_near((*out)[1], {1, 2, 2}, {-0.7512437f, -0.2356447f, -0.5442291f, -0.4124207f});
}

TEST(Rnn, ReverseRnnWithSequenceLensRunsEachSequenceBackFromItsEnd) {
  Tensor x = Tensor::from_vector<float>(
      {3, 2, 2}, {-0.8f, 0.3f, 0.8f, 0.4f, 0.7f, 0.5f, 0.1f, 0.8f, 0, -0.7f, 0.1f, 0.2f});
  Tensor w = Tensor::from_vector<float>({1, 2, 2}, {-0.6f, -0.7f, 0.3f, -0.1f});
  Tensor r = Tensor::from_vector<float>({1, 2, 2}, {0, 0.5f, 0.4f, 0.7f});
  Tensor b = Tensor::from_vector<float>({1, 4}, {-0.6f, 0.5f, 0.1f, -0.9f});
  Tensor lens = Tensor::from_vector<int32_t>({2}, {2, 3});
  auto node = rnn_node(
      "RNN", 5, 2,
      {make_attr("hidden_size", int64_t{2}), make_attr("direction", std::string("reverse"))});
  auto out = evaluate_node(node, 14, {&x, &w, &r, &b, &lens});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near((*out)[0], {3, 1, 2, 2},
              {-0.3343768f, -0.8263023f, -0.9261009f, -0.7870595f, -0.8537977f, -0.2354957f,
               -0.8631783f, -0.7405514f, 0, 0, -0.6043677f, -0.3713602f});
  expect_near((*out)[1], {1, 2, 2}, {-0.3343768f, -0.8263023f, -0.9261009f, -0.7870595f});
}

TEST(Rnn, BatchwiseLayoutMatchesSequenceMajor) {
  // The GRU case again with layout = 1: inputs and outputs are the same values transposed.
  GruCase g;
  auto ref = g.run(0);
  ASSERT_TRUE(ref.is_ok());
  std::vector<float> xt(12);
  for (int t = 0; t < 3; ++t)
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 2; ++i)
        xt[static_cast<size_t>((b * 3 + t) * 2 + i)] = g.x.data<float>()[(t * 2 + b) * 2 + i];
  Tensor x = Tensor::from_vector<float>({2, 3, 2}, xt);
  Tensor h0 = g.h0.reshaped({2, 1, 2});  // [batch, num_directions, hidden]; num_directions is 1
  auto node = rnn_node("GRU", 6, 2,
                       {make_attr("hidden_size", int64_t{2}), make_attr("layout", int64_t{1})});
  auto out = evaluate_node(node, 14, {&x, &g.w, &g.r, &g.b, nullptr, &h0});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3, 1, 2}));
  ASSERT_EQ((*out)[1].shape(), (Shape{2, 1, 2}));
  for (int t = 0; t < 3; ++t)
    for (int b = 0; b < 2; ++b)
      for (int j = 0; j < 2; ++j)
        EXPECT_NEAR((*out)[0].data<float>()[(b * 3 + t) * 2 + j],
                    (*ref)[0].data<float>()[(t * 2 + b) * 2 + j], kTol);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR((*out)[1].data<float>()[i], (*ref)[1].data<float>()[i], kTol);
}

TEST(Rnn, OptionalOutputsMayBeAbsent) {
  GruCase g;
  auto node = rnn_node("GRU", 6, 2, {make_attr("hidden_size", int64_t{2})});
  node.outputs[0] = ir::kNoValue;  // only Y_h
  auto out = evaluate_node(node, 14, {&g.x, &g.w, &g.r, &g.b, nullptr, &g.h0});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_near((*out)[1], {1, 2, 2}, {-0.7607836f, -0.06708544f, -0.5815113f, -0.09819628f});
}

TEST(Rnn, CustomActivationsAndClip) {
  // One step, hidden 1, identity weights: h = f(clip(x)) with f = Affine(alpha 2, beta 1).
  Tensor x = Tensor::from_vector<float>({1, 1, 1}, {3.0f});
  Tensor w = Tensor::from_vector<float>({1, 1, 1}, {1.0f});
  Tensor r = Tensor::from_vector<float>({1, 1, 1}, {0.0f});
  auto node = rnn_node("RNN", 3, 2,
                       {make_attr("hidden_size", int64_t{1}), make_attr("clip", 0.5f),
                        [] {
                          ir::Attribute a;
                          a.name = "activations";
                          a.type = ir::AttrType::kStrings;
                          a.strings = {"affine"};  // names are case-insensitive, as in ONNX Runtime
                          return a;
                        }(),
                        make_attr("activation_alpha", std::vector<float>{2.0f}),
                        make_attr("activation_beta", std::vector<float>{1.0f})});
  auto out = evaluate_node(node, 7, {&x, &w, &r});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_FLOAT_EQ((*out)[1].data<float>()[0], 2.0f);  // 2 * clip(3, 0.5) + 1
}

TEST(Rnn, DoubleAndHalfPrecision) {
  GruCase g;
  auto ref = g.run(1);
  ASSERT_TRUE(ref.is_ok());
  auto convert = [](const Tensor& t, DataType to) {
    Tensor o = Tensor::empty(to, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (to == DataType::kFloat64)
        o.data<double>()[i] = t.data<float>()[i];
      else
        o.data<Float16>()[i] = Float16(t.data<float>()[i]);
    }
    return o;
  };
  for (DataType dt : {DataType::kFloat64, DataType::kFloat16}) {
    Tensor x = convert(g.x, dt), w = convert(g.w, dt), r = convert(g.r, dt), b = convert(g.b, dt),
           h0 = convert(g.h0, dt);
    auto node = rnn_node(
        "GRU", 6, 2,
        {make_attr("hidden_size", int64_t{2}), make_attr("linear_before_reset", int64_t{1})});
    auto out = evaluate_node(node, 14, {&x, &w, &r, &b, nullptr, &h0});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    ASSERT_EQ((*out)[0].dtype(), dt);
    const double tol = dt == DataType::kFloat64 ? 1e-6 : 3e-3;
    for (int64_t i = 0; i < 12; ++i)
      EXPECT_NEAR((*out)[0].element_as_double(i), (*ref)[0].data<float>()[i], tol);
  }
}

TEST(Rnn, RejectsBadModels) {
  GruCase g;
  {
    Tensor lens = Tensor::from_vector<int32_t>({2}, {4, 1});  // longer than seq_length 3
    auto out = evaluate_node(rnn_node("GRU", 5, 2, {make_attr("hidden_size", int64_t{2})}), 14,
                             {&g.x, &g.w, &g.r, &g.b, &lens});
    ASSERT_FALSE(out.is_ok());
    EXPECT_NE(out.status().message().find("sequence_lens"), std::string::npos)
        << out.status().message();
  }
  {
    auto out = evaluate_node(rnn_node("GRU", 3, 2, {make_attr("hidden_size", int64_t{3})}), 14,
                             {&g.x, &g.w, &g.r});
    ASSERT_FALSE(out.is_ok());
    EXPECT_NE(out.status().message().find("W has shape"), std::string::npos)
        << out.status().message();
  }
  {
    auto out =
        evaluate_node(rnn_node("GRU", 3, 2, {make_attr("direction", std::string("sideways"))}), 14,
                      {&g.x, &g.w, &g.r});
    ASSERT_FALSE(out.is_ok());
    EXPECT_NE(out.status().message().find("sideways"), std::string::npos);
  }
  {
    ir::Attribute acts;
    acts.name = "activations";
    acts.type = ir::AttrType::kStrings;
    acts.strings = {"Sigmoid", "Gelu"};
    auto out = evaluate_node(rnn_node("GRU", 3, 2, {acts}), 14, {&g.x, &g.w, &g.r});
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(out.status().message().find("Gelu"), std::string::npos);
  }
}

}  // namespace
}  // namespace brink::ops
