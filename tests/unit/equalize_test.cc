// The int8 accuracy tools (src/quant/equalize.h, smooth_quant.h) on small models:
// cross-layer equalization keeps the model's function and equalizes the channel ranges of each
// pair (plain, grouped / depthwise with a multiplier, across Relu and LeakyRelu), and leaves
// alone what it must not touch (shared weights, a second reader, Clip); bias correction makes
// the mean output error of int8 weights exactly zero per channel on its data (Conv 2-D with
// stride, dilation, asymmetric pads and groups; Conv 1-D; Gemm transB; MatMul + Add); SmoothQuant
// keeps the function and refuses alpha outside [0, 1].
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "brink/session.h"
#include "graph_builders.h"
#include "ops/evaluate.h"
#include "quant/equalize.h"
#include "quant/smooth_quant.h"

namespace brink::quant {
namespace {

using ops::make_attr;

// Weights from seed 11 (what these tests' thresholds were set with).
struct Builder : test::ModelBuilder {
  Builder() : test::ModelBuilder(17, 11) {}
};

Dataset random_data(int n, const std::string& name, const Shape& shape, uint32_t seed,
                    float offset = 0.0f) {
  Dataset d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    Tensor t = Tensor::empty(DataType::kFloat32, shape);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = u(rng) + offset;
    d.samples.push_back({{name, t}});
  }
  return d;
}

std::vector<Tensor> run(const ir::Model& m, const std::vector<NamedTensor>& feed) {
  SessionOptions o;
  o.optimization_level = 0;
  auto s = Session::from_model(m, o);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  auto out = (*s)->run(feed);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return *out;
}

void expect_same_function(const ir::Model& a, const ir::Model& b, const Dataset& data) {
  for (const auto& feed : data.samples) {
    const auto ya = run(a, feed), yb = run(b, feed);
    ASSERT_EQ(ya.size(), yb.size());
    for (size_t k = 0; k < ya.size(); ++k) {
      ASSERT_EQ(ya[k].numel(), yb[k].numel());
      float amax = 0;
      for (int64_t i = 0; i < ya[k].numel(); ++i)
        amax = std::max(amax, std::fabs(ya[k].data<float>()[i]));
      for (int64_t i = 0; i < ya[k].numel(); ++i)
        ASSERT_NEAR(yb[k].data<float>()[i], ya[k].data<float>()[i], 1e-5f * amax + 1e-6f) << i;
    }
  }
}

const Tensor& constant(const ir::Model& m, const std::string& name) {
  return *m.graph.value(m.graph.find_value(name)).constant;
}

// max |w| per slice along axis 0 (output channels) or, for the second conv of a pair, per input
// channel (over the output channels of its group).
std::vector<float> out_ranges(const Tensor& w) {
  const int64_t m = w.dim(0), inner = w.numel() / m;
  std::vector<float> r(static_cast<size_t>(m), 0.0f);
  for (int64_t i = 0; i < w.numel(); ++i)
    r[static_cast<size_t>(i / inner)] =
        std::max(r[static_cast<size_t>(i / inner)], std::fabs(w.data<float>()[i]));
  return r;
}

std::vector<float> in_ranges(const Tensor& w, int64_t group) {
  const int64_t n = w.dim(0), cg = w.dim(1), k = w.numel() / (n * cg), per = n / group;
  std::vector<float> r(static_cast<size_t>(cg * group), 0.0f);
  for (int64_t o = 0; o < n; ++o)
    for (int64_t l = 0; l < cg; ++l)
      for (int64_t j = 0; j < k; ++j) {
        const size_t c = static_cast<size_t>((o / per) * cg + l);
        r[c] = std::max(r[c], std::fabs(w.data<float>()[(o * cg + l) * k + j]));
      }
  return r;
}

// x[1,6,9,8] -> Conv(8, 3x3, pad 1) -> Relu -> depthwise Conv(group 8, multiplier 2, stride 2)
// -> LeakyRelu -> Conv 1x1 (16 -> 5) -> y. Conv1's output channels span e^±3.
ir::Model cle_model() {
  return Builder()
      .input("x", {1, 6, 9, 8})
      .spread_init("w1", {8, 6, 3, 3}, 0.3f, 3.0f)
      .spread_init("b1", {8}, 0.2f)
      .spread_init("w2", {16, 1, 3, 3}, 0.5f, 2.0f)
      .spread_init("b2", {16}, 0.2f)
      .spread_init("w3", {5, 16, 1, 1}, 0.3f)
      .node("Conv", {"x", "w1", "b1"}, {"c1"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Relu", {"c1"}, {"r1"})
      .node("Conv", {"r1", "w2", "b2"}, {"c2"},
            {make_attr("group", int64_t{8}), make_attr("strides", std::vector<int64_t>{2, 2}),
             make_attr("pads", std::vector<int64_t>{1, 0, 1, 1})})
      .node("LeakyRelu", {"c2"}, {"r2"}, {make_attr("alpha", 0.2f)})
      .node("Conv", {"r2", "w3"}, {"y"})
      .output("y")
      .build();
}

TEST(Equalize, KeepsTheFunctionAndEqualizesEachPair) {
  const ir::Model original = cle_model();
  ir::Model m = original;
  auto st = equalize_cross_layer(m);
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  EXPECT_EQ(st->pairs, 2);
  EXPECT_GE(st->sweeps, 2);
  expect_same_function(original, m, random_data(3, "x", {1, 6, 9, 8}, 5));
  // The input model's tensors are untouched (copies of a model share storage).
  const auto before = out_ranges(constant(cle_model(), "w1"));
  const auto still = out_ranges(constant(original, "w1"));
  for (size_t c = 0; c < before.size(); ++c) EXPECT_EQ(before[c], still[c]);
  // Pair 2 (depthwise -> pointwise) was equalized last: its ranges match exactly; pair 1 within
  // the convergence tolerance.
  const auto r2o = out_ranges(constant(m, "w2")), r3i = in_ranges(constant(m, "w3"), 1);
  for (size_t c = 0; c < r2o.size(); ++c) EXPECT_NEAR(r2o[c] / r3i[c], 1.0f, 1e-4f) << c;
  const auto r1o = out_ranges(constant(m, "w1")), r2i = in_ranges(constant(m, "w2"), 8);
  for (size_t c = 0; c < r1o.size(); ++c) EXPECT_NEAR(r1o[c] / r2i[c], 1.0f, 1e-3f) << c;
  // Conv1's channels are now much closer together than e^±3.
  const auto [lo, hi] = std::minmax_element(r1o.begin(), r1o.end());
  const auto r1 = out_ranges(constant(original, "w1"));
  const auto [lo0, hi0] = std::minmax_element(r1.begin(), r1.end());
  EXPECT_LT(*hi / *lo, 0.5f * (*hi0 / *lo0));
}

TEST(Equalize, LeavesSharedWeightsSecondReadersAndClipAlone) {
  ir::Model m = Builder()
                    .input("x", {1, 4, 5, 5})
                    .spread_init("w1", {4, 4, 1, 1})
                    .spread_init("w2", {4, 4, 1, 1})
                    .spread_init("w3", {4, 4, 1, 1})
                    .init("lo", Tensor::scalar<float>(0.0f))
                    .init("hi", Tensor::scalar<float>(6.0f))
                    // w1 is shared by two convs: neither pair through them is equalized.
                    .node("Conv", {"x", "w1"}, {"a"})
                    .node("Conv", {"a", "w1"}, {"b"})
                    // b has two readers.
                    .node("Conv", {"b", "w2"}, {"c"})
                    .node("Relu", {"b"}, {"b2"})
                    // Clip(0, 6) between c and the last conv.
                    .node("Clip", {"c", "lo", "hi"}, {"d"})
                    .node("Conv", {"d", "w3"}, {"y"})
                    .output("y")
                    .output("b2")
                    .build();
  auto st = equalize_cross_layer(m);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->pairs, 0);
}

// Symmetric int8 weights, as the quantizer makes them, dequantized.
Tensor fake_quant(const Tensor& w, int axis) {
  const int64_t channels = axis < 0 ? 1 : w.dim(axis);
  int64_t inner = 1;
  if (axis >= 0)
    for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  std::vector<float> amax(static_cast<size_t>(channels), 0.0f);
  auto ch = [&](int64_t i) { return static_cast<size_t>(axis < 0 ? 0 : (i / inner) % channels); };
  for (int64_t i = 0; i < w.numel(); ++i)
    amax[ch(i)] = std::max(amax[ch(i)], std::fabs(w.data<float>()[i]));
  Tensor q = w.clone();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float s = amax[ch(i)] / 127.0f;
    q.data<float>()[i] =
        static_cast<float>(std::rint(static_cast<double>(w.data<float>()[i]) / s)) * s;
  }
  return q;
}

// Mean over the samples and all but `axis` of (b - a): one value per channel along `axis`.
std::vector<double> channel_mean_error(const ir::Model& a, const ir::Model& b, const Dataset& data,
                                       int axis) {
  std::vector<double> sum;
  int64_t count = 0;
  for (const auto& feed : data.samples) {
    const Tensor ya = run(a, feed)[0], yb = run(b, feed)[0];
    const int ax = axis < 0 ? static_cast<int>(ya.rank()) + axis : axis;
    const int64_t c = ya.dim(ax);
    int64_t inner = 1;
    for (int64_t d = ax + 1; d < ya.rank(); ++d) inner *= ya.dim(d);
    if (sum.empty()) sum.assign(static_cast<size_t>(c), 0.0);
    for (int64_t i = 0; i < ya.numel(); ++i)
      sum[static_cast<size_t>((i / inner) % c)] += yb.data<float>()[i] - ya.data<float>()[i];
    count += ya.numel() / c;
  }
  for (double& s : sum) s /= static_cast<double>(count);
  return sum;
}

struct BiasCase {
  const char* name;
  ir::Model model;
  std::string weight;
  int weight_axis;  // the quantizer's channel axis
  Shape input;
  int out_axis;
};

std::vector<BiasCase> bias_cases() {
  std::vector<BiasCase> cases;
  cases.push_back(
      {"conv2d",
       Builder()
           .input("x", {2, 4, 9, 7})
           .spread_init("w", {6, 2, 3, 3}, 0.5f, 2.0f)
           .spread_init("b", {6})
           .node("Conv", {"x", "w", "b"}, {"y"},
                 {make_attr("group", int64_t{2}), make_attr("strides", std::vector<int64_t>{2, 1}),
                  make_attr("dilations", std::vector<int64_t>{1, 2}),
                  make_attr("pads", std::vector<int64_t>{0, 2, 1, 1})})
           .output("y")
           .build(),
       "w",
       0,
       {2, 4, 9, 7},
       1});
  cases.push_back({"conv2d_same_no_bias",
                   Builder()
                       .input("x", {1, 3, 6, 5})
                       .spread_init("w", {4, 3, 3, 3}, 0.5f, 2.0f)
                       .node("Conv", {"x", "w"}, {"y"},
                             {make_attr("auto_pad", std::string("SAME_LOWER")),
                              make_attr("strides", std::vector<int64_t>{2, 2})})
                       .output("y")
                       .build(),
                   "w",
                   0,
                   {1, 3, 6, 5},
                   1});
  cases.push_back(
      {"conv1d",
       Builder()
           .input("x", {1, 3, 11})
           .spread_init("w", {5, 3, 4}, 0.5f, 2.0f)
           .spread_init("b", {5})
           .node("Conv", {"x", "w", "b"}, {"y"}, {make_attr("pads", std::vector<int64_t>{2, 1})})
           .output("y")
           .build(),
       "w",
       0,
       {1, 3, 11},
       1});
  cases.push_back({"gemm_transb",
                   Builder()
                       .input("x", {3, 10})
                       .spread_init("w", {7, 10}, 0.5f, 2.0f)
                       .spread_init("b", {7})
                       .node("Gemm", {"x", "w", "b"}, {"y"}, {make_attr("transB", int64_t{1})})
                       .output("y")
                       .build(),
                   "w",
                   0,
                   {3, 10},
                   -1});
  cases.push_back({"matmul_add",
                   Builder()
                       .input("x", {2, 3, 10})
                       .spread_init("w", {10, 6}, 0.5f)
                       .spread_init("b", {6})
                       .node("MatMul", {"x", "w"}, {"m"})
                       .node("Add", {"b", "m"}, {"y"})
                       .output("y")
                       .build(),
                   "w",
                   1,
                   {2, 3, 10},
                   -1});
  return cases;
}

TEST(BiasCorrection, MakesTheMeanErrorOfInt8WeightsZeroPerChannel) {
  for (bool per_channel : {false, true}) {
    for (BiasCase& c : bias_cases()) {
      SCOPED_TRACE(std::string(c.name) + (per_channel ? " per-channel" : " per-tensor"));
      // Inputs with a non-zero mean: the weight error's effect does not average out.
      const Dataset data = random_data(6, "x", c.input, 3, 0.6f);
      ir::Model corrected = c.model;
      auto n = correct_bias(corrected, data, per_channel, -1, 1);
      ASSERT_TRUE(n.is_ok()) << n.status().message();
      EXPECT_EQ(*n, 1);
      // The int8 weights, with the original bias and with the corrected one.
      const int axis = per_channel ? c.weight_axis : -1;
      auto with_q = [&](ir::Model m) {
        const int w = m.graph.find_value(c.weight);
        m.graph.value(w).constant = fake_quant(*m.graph.value(w).constant, axis);
        return m;
      };
      const auto before = channel_mean_error(c.model, with_q(c.model), data, c.out_axis);
      const auto after = channel_mean_error(c.model, with_q(corrected), data, c.out_axis);
      double b = 0, a = 0;
      for (size_t k = 0; k < before.size(); ++k) {
        b = std::max(b, std::fabs(before[k]));
        a = std::max(a, std::fabs(after[k]));
      }
      EXPECT_GT(b, 1e-4);
      EXPECT_LT(a, 1e-5 + 1e-3 * b) << "before " << b << " after " << a;
    }
  }
}

TEST(SmoothQuant, KeepsTheFunctionAndRefusesBadAlpha) {
  const ir::Model original =
      Builder()
          .input("x", {5, 8})
          .spread_init("g", {8})
          .spread_init("be", {8})
          .spread_init("w", {8, 6})
          .spread_init("wt", {3, 8})
          .node("LayerNormalization", {"x", "g", "be"}, {"n"}, {make_attr("axis", int64_t{-1})})
          .node("MatMul", {"n", "w"}, {"y"})
          .node("Gemm", {"n", "wt"}, {"z"}, {make_attr("transB", int64_t{1})})
          .output("y")
          .output("z")
          .build();
  const Dataset data = random_data(4, "x", {5, 8}, 9);
  for (double alpha : {0.0, 0.5, 0.85, 1.0}) {
    ir::Model m = original;
    auto st = smooth_quant(m, data, alpha, -1, 1);
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    EXPECT_EQ(st->layer_norms, 1);
    EXPECT_EQ(st->matmuls, 2);
    EXPECT_EQ(st->duplicated, 0);
    expect_same_function(original, m, data);
  }
  for (double alpha : {-0.01, 1.01, std::nan("")}) {
    ir::Model m = original;
    auto st = smooth_quant(m, data, alpha, -1, 1);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.status().message().find("[0, 1]"), std::string::npos);
  }
}

}  // namespace
}  // namespace brink::quant
