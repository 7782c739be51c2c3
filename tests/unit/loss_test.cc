// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against the spec's worked examples
// and a naive log-softmax evaluated in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

// The spec's example input: N=2, C=3, d1=2, with target [[2, 1], [0, 2]].
Tensor example_input() {
  return Tensor::from_vector<float>({2, 3, 2}, {1, 2, 2, 2, 3, 2, 0, 1, 2, 2, 1, 2});
}
Tensor example_target() {
  return Tensor::from_vector<int64_t>({2, 2}, {2, 1, 0, 2});
}

Result<std::vector<Tensor>> run(const std::string& op, int64_t opset,
                                const std::vector<const Tensor*>& inputs,
                                std::vector<ir::Attribute> attrs, size_t outputs = 1) {
  return evaluate_node(make_node(op, inputs.size(), outputs, std::move(attrs)), opset, inputs);
}

TEST(Loss, NllNoneReductionMatchesSpecExample) {
  Tensor x = example_input(), t = example_target();
  auto out = run("NegativeLogLikelihoodLoss", 13, {&x, &t}, {make_attr("reduction", "none")});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const Tensor& loss = (*out)[0];
  ASSERT_EQ(loss.shape(), (Shape{2, 2}));
  const std::vector<float> want{-3, -2, -0, -2};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(loss.data<float>()[i], want[static_cast<size_t>(i)]);
}

TEST(Loss, NllWeightedSumAndMeanMatchSpecExamples) {
  Tensor x = example_input(), t = example_target();
  Tensor w = Tensor::from_vector<float>({3}, {0.2f, 0.3f, 0.1f});
  auto sum = run("NegativeLogLikelihoodLoss", 12, {&x, &t, &w}, {make_attr("reduction", "sum")});
  ASSERT_TRUE(sum.is_ok()) << sum.status().message();
  EXPECT_EQ((*sum)[0].rank(), 0);
  EXPECT_NEAR((*sum)[0].data<float>()[0], -1.1, 1e-6);
  auto mean = run("NegativeLogLikelihoodLoss", 13, {&x, &t, &w}, {});  // "mean" is the default
  ASSERT_TRUE(mean.is_ok()) << mean.status().message();
  EXPECT_NEAR((*mean)[0].data<float>()[0], -1.1 / 0.7, 1e-6);
}

TEST(Loss, NllIgnoreIndexIsExcludedFromTheMean) {
  Tensor x = example_input();
  Tensor t = Tensor::from_vector<int32_t>({2, 2}, {2, -7, 0, 2});
  auto out =
      run("NegativeLogLikelihoodLoss", 13, {&x, &t}, {make_attr("ignore_index", int64_t{-7})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_NEAR((*out)[0].data<float>()[0], (-3.0 - 0.0 - 2.0) / 3.0, 1e-6);
}

TEST(Loss, MeanOfOnlyIgnoredSamplesIsNaN) {
  Tensor x = example_input();
  Tensor t = Tensor::from_vector<int64_t>({2, 2}, {1, 1, 1, 1});
  auto out =
      run("NegativeLogLikelihoodLoss", 13, {&x, &t}, {make_attr("ignore_index", int64_t{1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_TRUE(std::isnan((*out)[0].data<float>()[0]));
}

TEST(Loss, TargetOutOfRangeIsAnError) {
  Tensor x = example_input();
  Tensor t = Tensor::from_vector<int64_t>({2, 2}, {2, 3, 0, 2});
  auto out = run("NegativeLogLikelihoodLoss", 13, {&x, &t}, {});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("outside [0, 3)"), std::string::npos)
      << out.status().message();
}

TEST(Loss, RejectsUnknownReductionAndMismatchedTarget) {
  Tensor x = example_input(), t = example_target();
  auto bad = run("SoftmaxCrossEntropyLoss", 13, {&x, &t}, {make_attr("reduction", "max")});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("reduction"), std::string::npos);
  Tensor t3 = Tensor::from_vector<int64_t>({2, 3}, {0, 0, 0, 0, 0, 0});
  auto mismatch = run("NegativeLogLikelihoodLoss", 13, {&x, &t3}, {});
  ASSERT_FALSE(mismatch.is_ok());
  Tensor w = Tensor::from_vector<float>({2}, {1, 1});
  auto bad_weight = run("NegativeLogLikelihoodLoss", 13, {&x, &t, &w}, {});
  ASSERT_FALSE(bad_weight.is_ok());
  EXPECT_NE(bad_weight.status().message().find("one per class"), std::string::npos)
      << bad_weight.status().message();
}

// Softmax cross entropy on (N, C, d1, d2) with weights and ignore_index, every reduction,
// against log-softmax computed naively.
TEST(Loss, SoftmaxCrossEntropyMatchesNaiveReference) {
  const int64_t n = 2, c = 4, d = 6;  // d = d1 * d2 = 2 * 3
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-3, 3);
  std::vector<float> xv(static_cast<size_t>(n * c * d));
  for (float& v : xv) v = dist(rng);
  Tensor x = Tensor::from_vector<float>({n, c, 2, 3}, xv);
  std::vector<int64_t> tv{0, 3, 1, 2, 5, 1, 2, 2, 5, 0, 3, 1};  // 5 is ignore_index
  Tensor t = Tensor::from_vector<int64_t>({n, 2, 3}, tv);
  std::vector<float> wv{0.5f, 1.5f, 2.0f, 0.25f};
  Tensor w = Tensor::from_vector<float>({c}, wv);

  std::vector<double> log_prob(xv.size()), loss(static_cast<size_t>(n * d));
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double mx = -1e30, s = 0;
      for (int64_t k = 0; k < c; ++k) mx = std::max(mx, double(xv[size_t((i * c + k) * d + j)]));
      for (int64_t k = 0; k < c; ++k) s += std::exp(xv[size_t((i * c + k) * d + j)] - mx);
      for (int64_t k = 0; k < c; ++k)
        log_prob[size_t((i * c + k) * d + j)] = xv[size_t((i * c + k) * d + j)] - mx - std::log(s);
      const int64_t label = tv[size_t(i * d + j)];
      if (label == 5) continue;
      const double l = -log_prob[size_t((i * c + label) * d + j)] * wv[size_t(label)];
      loss[size_t(i * d + j)] = l;
      sum += l;
      wsum += wv[size_t(label)];
    }

  const std::vector<ir::Attribute> base{make_attr("ignore_index", int64_t{5})};
  auto none_attrs = base;
  none_attrs.push_back(make_attr("reduction", "none"));
  auto none = run("SoftmaxCrossEntropyLoss", 13, {&x, &t, &w}, none_attrs, 2);
  ASSERT_TRUE(none.is_ok()) << none.status().message();
  ASSERT_EQ((*none)[0].shape(), (Shape{n, 2, 3}));
  ASSERT_EQ((*none)[1].shape(), x.shape());
  for (size_t i = 0; i < loss.size(); ++i)
    EXPECT_NEAR((*none)[0].data<float>()[i], loss[i], 1e-5) << i;
  for (size_t i = 0; i < log_prob.size(); ++i)
    EXPECT_NEAR((*none)[1].data<float>()[i], log_prob[i], 1e-5) << i;

  auto sum_attrs = base;
  sum_attrs.push_back(make_attr("reduction", "sum"));
  auto summed = run("SoftmaxCrossEntropyLoss", 12, {&x, &t, &w}, sum_attrs);
  ASSERT_TRUE(summed.is_ok()) << summed.status().message();
  EXPECT_NEAR((*summed)[0].data<float>()[0], sum, 1e-4);

  auto mean = run("SoftmaxCrossEntropyLoss", 13, {&x, &t, &w}, base);
  ASSERT_TRUE(mean.is_ok()) << mean.status().message();
  EXPECT_NEAR((*mean)[0].data<float>()[0], sum / wsum, 1e-5);
}

TEST(Loss, SoftmaxCrossEntropyAcceptsBFloat16FromOpset13Only) {
  Tensor x = Tensor::from_vector<BFloat16>(
      {2, 2}, {BFloat16(1.0f), BFloat16(2.0f), BFloat16(0.5f), BFloat16(0.5f)});
  Tensor t = Tensor::from_vector<int64_t>({2}, {1, 0});
  auto ok = run("SoftmaxCrossEntropyLoss", 13, {&x, &t}, {});
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  const double want = (std::log(1 + std::exp(-1.0)) + std::log(2.0)) / 2;
  EXPECT_NEAR(static_cast<float>((*ok)[0].data<BFloat16>()[0]), want, 1e-2);
  EXPECT_FALSE(run("SoftmaxCrossEntropyLoss", 12, {&x, &t}, {}).is_ok());
  EXPECT_FALSE(run("NegativeLogLikelihoodLoss", 13, {&x, &t}, {}).is_ok());
}

TEST(Loss, InferKeepsSymbolicSampleDims) {
  const OpDef* def = OpRegistry::global().find("", "NegativeLogLikelihoodLoss", 13);
  ASSERT_NE(def, nullptr);
  ir::Node node = make_node("NegativeLogLikelihoodLoss", 2, 1, {make_attr("reduction", "none")});
  TensorType x(DataType::kFloat32, std::vector<Dim>{Dim::symbol("N"), Dim(5), Dim(7)});
  TensorType t(DataType::kInt64, std::vector<Dim>{Dim(), Dim()});
  InferContext ctx(node, 13, {&x, &t}, {nullptr, nullptr});
  ASSERT_TRUE(def->infer(ctx).is_ok());
  const TensorType& out = ctx.outputs()[0];
  ASSERT_TRUE(out.has_rank());
  EXPECT_EQ((*out.dims)[0], Dim::symbol("N"));
  EXPECT_EQ((*out.dims)[1], Dim(7));
}

}  // namespace
}  // namespace brink::ops
