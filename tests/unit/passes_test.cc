// Graph passes (src/passes): each pass on small hand-built graphs (the expected nodes exist
// or are gone, and the model computes the same before and after, run by the runtime), then
// the whole pipeline on the torchvision / transformer models of tests/python/models.py
// when they have been generated.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "graph_builders.h"
#include "loader/npy.h"
#include "onnx/onnx_io.h"
#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"
#include "runtime/compiled_model.h"

namespace brink::passes {
namespace {

using ops::make_attr;

using test::ModelBuilder;

int count_ops(const ir::Model& m, const std::string& op, const std::string& domain = "") {
  int n = 0;
  for (const ir::Node& node : m.graph.nodes) n += node.op_type == op && node.domain == domain;
  return n;
}

const ir::Node* find_op(const ir::Model& m, const std::string& op, const std::string& domain) {
  for (const ir::Node& node : m.graph.nodes)
    if (node.op_type == op && node.domain == domain) return &node;
  return nullptr;
}

Tensor random_tensor(DataType dtype, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  if (dtype == DataType::kFloat32) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = dist(rng);
    return Tensor::from_vector<float>(shape, v);
  }
  std::uniform_int_distribution<int64_t> dist(0, 1);
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(shape)));
  for (int64_t& x : v) x = dist(rng);
  return Tensor::from_vector<int64_t>(shape, v);
}

std::vector<NamedTensor> random_feeds(const ir::Model& m, uint32_t seed = 1) {
  std::vector<NamedTensor> feeds;
  for (int v : m.graph.inputs) {
    const ir::Value& val = m.graph.value(v);
    feeds.push_back({val.name, random_tensor(val.type.dtype, val.type.static_shape(), seed++)});
  }
  return feeds;
}

Result<std::vector<Tensor>> run(const ir::Model& m, const std::vector<NamedTensor>& feeds) {
  SessionOptions options;
  options.optimization_level = 0;  // the model as given: the passes are what is tested
  BRINK_ASSIGN_OR_RETURN(auto cm, CompiledModel::compile(m, options));
  return cm->run(feeds);
}

// Same outputs up to float rounding: |a - b| <= tol * (max |a| + 1) per output.
void expect_same_results(const ir::Model& before, const ir::Model& after,
                         const std::vector<NamedTensor>& feeds, double tol = 1e-4) {
  ASSERT_TRUE(ir::verify(after).is_ok()) << ir::verify(after).message();
  auto want = run(before, feeds);
  ASSERT_TRUE(want.is_ok()) << want.status().message();
  auto got = run(after, feeds);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  ASSERT_EQ(want->size(), got->size());
  for (size_t k = 0; k < want->size(); ++k) {
    const Tensor &a = (*want)[k], &b = (*got)[k];
    ASSERT_EQ(a.dtype(), b.dtype()) << "output " << k;
    ASSERT_EQ(a.shape(), b.shape()) << "output " << k;
    double scale = 1.0;
    for (int64_t i = 0; i < a.numel(); ++i)
      scale = std::max(scale, std::fabs(a.element_as_double(i)));
    double worst = 0.0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double d = std::fabs(a.element_as_double(i) - b.element_as_double(i));
      if (!(d <= worst)) {
        worst = d;
        worst_i = i;
      }
    }
    EXPECT_LE(worst, tol * scale) << "output " << k << " element " << worst_i << ": "
                                  << a.element_as_double(worst_i) << " vs "
                                  << b.element_as_double(worst_i);
  }
}

// Graph inputs and outputs keep their names and types.
void expect_same_interface(const ir::Model& before, const ir::Model& after) {
  ASSERT_EQ(before.graph.inputs.size(), after.graph.inputs.size());
  ASSERT_EQ(before.graph.outputs.size(), after.graph.outputs.size());
  for (size_t k = 0; k < before.graph.inputs.size(); ++k) {
    const ir::Value &a = before.graph.value(before.graph.inputs[k]),
                    &b = after.graph.value(after.graph.inputs[k]);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type.to_string(), b.type.to_string());
  }
  for (size_t k = 0; k < before.graph.outputs.size(); ++k)
    EXPECT_EQ(before.graph.value(before.graph.outputs[k]).name,
              after.graph.value(after.graph.outputs[k]).name);
}

#define REQUIRE_BRINK_OP(op)                                                           \
  do {                                                                                 \
    if (!brink_op_available(op)) GTEST_SKIP() << "brink." op " is not registered yet"; \
  } while (0)

// ---------------------------------------------------------------------------------------
// Cleanup

TEST(Passes, RemovesIdentityDropoutAndDeadNodes) {
  ModelBuilder b(13);
  b.input("x", {2, 3})
      .node("Identity", {"x"}, {"i1"})
      .node("Relu", {"i1"}, {"r"})
      .node("Dropout", {"r"}, {"d", "mask"})
      .node("Sigmoid", {"x"}, {"dead"})
      .node("Tanh", {"dead"}, {"dead2"})
      .node("Identity", {"d"}, {"y"})  // a graph output: its producer writes it instead
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(remove_identities(m, report).is_ok());
  ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "Identity"), 0);
  EXPECT_EQ(count_ops(m, "Dropout"), 0);
  EXPECT_EQ(count_ops(m, "Sigmoid"), 0);
  EXPECT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(report.removed_nodes, 5);
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, MergesConsecutiveReshapes) {
  // Reshape -> Flatten -> Reshape: one Reshape to the last static shape; the data is the same.
  ModelBuilder b(13);
  b.input("x", {2, 3, 4, 1})
      .init("s1", Tensor::from_vector<int64_t>({4}, {2, 12, 1, 1}))
      .init("s2", Tensor::from_vector<int64_t>({2}, {4, -1}))
      .node("Reshape", {"x", "s1"}, {"a"})
      .node("Flatten", {"a"}, {"f"}, {make_attr("axis", int64_t{1})})
      .node("Reshape", {"f", "s2"}, {"r"})
      .node("Relu", {"r"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(merge_reshapes(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "Flatten"), 0);
  ASSERT_EQ(count_ops(m, "Reshape"), 1);
  const ir::Node* r = find_op(m, "Reshape", "");
  const Tensor* shape =
      m.graph.value(r->inputs[1]).constant ? &*m.graph.value(r->inputs[1]).constant : nullptr;
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(std::vector<int64_t>(shape->data<int64_t>(), shape->data<int64_t>() + 2),
            (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(m.graph.value(r->inputs[0]).name, "x");
  EXPECT_EQ(report.removed_nodes, 2);
  EXPECT_EQ(m.graph.initializers.size(), 1u);  // s1 and s2 are read by nothing now
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, KeepsReshapesWhoseMiddleIsReadOrDynamic) {
  {  // The middle value is a graph output too: both views stay.
    ModelBuilder b(13);
    b.input("x", {2, 6})
        .init("s1", Tensor::from_vector<int64_t>({3}, {2, 3, 2}))
        .node("Reshape", {"x", "s1"}, {"a"})
        .node("Flatten", {"a"}, {"y"}, {make_attr("axis", int64_t{2})})
        .output("a")
        .output("y");
    ir::Model m = b.build();
    OptimizeReport report;
    ASSERT_TRUE(merge_reshapes(m, report).is_ok());
    EXPECT_EQ(count_ops(m, "Reshape"), 1);
    EXPECT_EQ(count_ops(m, "Flatten"), 1);
  }
  {  // A symbolic batch: the final shape is not static, so it is not written out.
    ModelBuilder b(13);
    b.symbolic_input("x", {ir::Dim::symbol("N"), 6})
        .init("s1", Tensor::from_vector<int64_t>({3}, {0, 3, 2}))
        .node("Reshape", {"x", "s1"}, {"a"})
        .node("Flatten", {"a"}, {"y"}, {make_attr("axis", int64_t{1})})
        .output("y");
    ir::Model m = b.build();
    OptimizeReport report;
    ASSERT_TRUE(merge_reshapes(m, report).is_ok());
    EXPECT_EQ(count_ops(m, "Reshape"), 1);
    EXPECT_EQ(count_ops(m, "Flatten"), 1);
  }
}

TEST(Passes, KeepsTrainingDropoutAndUsedMasks) {
  ModelBuilder b(13);
  b.input("x", {4})
      .init("train", Tensor::scalar<bool>(true))
      .scalar("ratio", 0.5f)
      .node("Dropout", {"x", "ratio", "train"}, {"a"})
      .node("Dropout", {"a"}, {"y", "mask"})
      .output("y")
      .output("mask");
  ir::Model m = b.build();
  OptimizeReport report;
  ASSERT_TRUE(remove_identities(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "Dropout"), 2);
}

TEST(Passes, FoldsConstantSubgraphs) {
  // Reshape target computed from Shape -> Gather -> Unsqueeze -> Concat, as exporters write.
  ModelBuilder b(13);
  b.input("x", {2, 3, 4})
      .init("idx", Tensor::scalar<int64_t>(0))
      .init("axes", Tensor::from_vector<int64_t>({1}, {0}))
      .init("minus1", Tensor::from_vector<int64_t>({1}, {-1}))
      .node("Shape", {"x"}, {"shape"})
      .node("Gather", {"shape", "idx"}, {"n"}, {make_attr("axis", int64_t{0})})
      .node("Unsqueeze", {"n", "axes"}, {"n1"})
      .node("Concat", {"n1", "minus1"}, {"target"}, {make_attr("axis", int64_t{0})})
      .node("Reshape", {"x", "target"}, {"y"})
      .node("Constant", {}, {"c"}, {make_attr("value", Tensor::scalar<float>(2.0f))})
      .node("Mul", {"y", "c"}, {"z"})
      .output("z");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fold_constants(m, report).is_ok());
  ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
  EXPECT_EQ(m.graph.nodes.size(), 2u);  // Reshape, Mul
  EXPECT_EQ(count_ops(m, "Constant"), 0);
  EXPECT_EQ(report.removed_nodes, 5);
  expect_same_results(before, m, random_feeds(before));
}

// ---------------------------------------------------------------------------------------
// BatchNorm folding

ModelBuilder conv_bn_model(bool conv_bias) {
  ModelBuilder b(13);
  b.input("x", {1, 3, 7, 6}).uniform_init("w", {5, 3, 3, 3});
  if (conv_bias) b.uniform_init("b", {5});
  b.uniform_init("scale", {5}, 0.5f, 1.5f)
      .uniform_init("shift", {5})
      .uniform_init("mean", {5})
      .uniform_init("var", {5}, 0.5f, 2.0f)
      .node("Conv", {"x", "w", conv_bias ? "b" : ""}, {"c"},
            {make_attr("pads", std::vector<int64_t>{1, 0, 1, 2})})
      .node("BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"y"},
            {make_attr("epsilon", 1e-3f)})
      .output("y");
  return b;
}

TEST(Passes, FoldsBatchNormIntoConv) {
  for (bool bias : {true, false}) {
    const ir::Model before = conv_bn_model(bias).build();
    ir::Model m = before;
    OptimizeReport report;
    ASSERT_TRUE(fold_batchnorms(m, report).is_ok());
    ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
    EXPECT_EQ(report.folded_batchnorms, 1);
    EXPECT_EQ(count_ops(m, "BatchNormalization"), 0);
    EXPECT_EQ(m.graph.nodes.size(), 1u);
    expect_same_results(before, m, random_feeds(before));
  }
}

TEST(Passes, KeepsBatchNormWhenConvOutputIsShared) {
  ModelBuilder b = conv_bn_model(true);
  b.output("c");
  ir::Model m = b.build();
  OptimizeReport report;
  ASSERT_TRUE(fold_batchnorms(m, report).is_ok());
  EXPECT_EQ(report.folded_batchnorms, 0);
  EXPECT_EQ(count_ops(m, "BatchNormalization"), 1);
}

// ---------------------------------------------------------------------------------------
// Conv fusion

struct ActivationCase {
  const char* label;
  int64_t opset;
  std::function<void(ModelBuilder&)> add;  // "c" -> ... -> "y"
  std::string activation;                  // expected `activation` attribute
};

std::vector<ActivationCase> activation_cases() {
  auto unary = [](const char* op, std::vector<ir::Attribute> attrs = {}) {
    return [op, attrs](ModelBuilder& b) { b.node(op, {"c"}, {"y"}, attrs); };
  };
  return {
      {"relu", 13, unary("Relu"), "Relu"},
      {"relu6", 13,
       [](ModelBuilder& b) {
         b.node("Constant", {}, {"lo"}, {make_attr("value", Tensor::scalar<float>(0))})
             .node("Constant", {}, {"hi"}, {make_attr("value", Tensor::scalar<float>(6))})
             .node("Clip", {"c", "lo", "hi"}, {"y"});
       },
       "Clip"},
      {"clip_min_only", 13,
       [](ModelBuilder& b) {
         b.scalar("lo", 0.0f).node("Clip", {"c", "lo"}, {"y"});
       },
       "Relu"},
      {"clip6", 10, unary("Clip", {make_attr("min", -1.0f), make_attr("max", 2.0f)}), "Clip"},
      {"leaky_relu", 13, unary("LeakyRelu", {make_attr("alpha", 0.2f)}), "LeakyRelu"},
      {"hard_sigmoid", 13, unary("HardSigmoid", {make_attr("alpha", 0.3f)}), "HardSigmoid"},
      {"hard_swish_op", 14, unary("HardSwish"), "HardSwish"},
      {"sigmoid", 13, unary("Sigmoid"), "Sigmoid"},
      {"tanh", 13, unary("Tanh"), "Tanh"},
      {"gelu_op", 20, unary("Gelu"), "Gelu"},
      {"gelu_tanh_op", 20, unary("Gelu", {make_attr("approximate", std::string("tanh"))}),
       "GeluTanh"},
      {"silu", 13,
       [](ModelBuilder& b) {
         b.node("Sigmoid", {"c"}, {"s"}).node("Mul", {"s", "c"}, {"y"});
       },
       "SiLU"},
      {"hard_swish_hardsigmoid", 13,
       [](ModelBuilder& b) {
         b.node("HardSigmoid", {"c"}, {"s"}, {make_attr("alpha", 1.0f / 6.0f)})
             .node("Mul", {"c", "s"}, {"y"});
       },
       "HardSwish"},
      {"hard_swish_relu6_div", 13,
       [](ModelBuilder& b) {
         b.scalar("three", 3)
             .scalar("zero", 0)
             .scalar("six", 6)
             .node("Add", {"c", "three"}, {"t"})
             .node("Clip", {"t", "zero", "six"}, {"r"})
             .node("Mul", {"c", "r"}, {"m"})
             .node("Div", {"m", "six"}, {"y"});
       },
       "HardSwish"},
      {"hard_swish_relu6_scaled_gate", 13,
       [](ModelBuilder& b) {
         b.scalar("three", 3)
             .scalar("zero", 0)
             .scalar("six", 6)
             .scalar("sixth", 1.0f / 6.0f)
             .node("Add", {"three", "c"}, {"t"})
             .node("Clip", {"t", "zero", "six"}, {"r"})
             .node("Mul", {"r", "sixth"}, {"g"})
             .node("Mul", {"g", "c"}, {"y"});
       },
       "HardSwish"},
  };
}

TEST(Passes, FusesConvBiasAndActivation) {
  REQUIRE_BRINK_OP("Conv");
  for (const ActivationCase& ac : activation_cases()) {
    SCOPED_TRACE(ac.label);
    ModelBuilder b(ac.opset);
    b.input("x", {1, 4, 6, 5})
        .uniform_init("w", {6, 4, 3, 3})
        .uniform_init("b", {6})
        .uniform_init("bias", {6, 1, 1})
        .node("Conv", {"x", "w", "b"}, {"c0"},
              {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1}),
               make_attr("strides", std::vector<int64_t>{1, 2})})
        .node("Add", {"c0", "bias"}, {"c"});
    ac.add(b);
    b.output("y");
    const ir::Model before = b.build();
    ir::Model m = before;
    OptimizeReport report;
    ASSERT_TRUE(fold_constants(m, report).is_ok());
    ASSERT_TRUE(fuse_conv(m, report).is_ok());
    ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
    ASSERT_EQ(m.graph.nodes.size(), 1u);
    const ir::Node& conv = m.graph.nodes[0];
    EXPECT_EQ(conv.domain, "brink");
    EXPECT_EQ(conv.attr_string("activation", ""), ac.activation);
    EXPECT_EQ(report.fused_activations, 1);
    expect_same_interface(before, m);
    expect_same_results(before, m, random_feeds(before));
  }
}

// A QDQ block as quantizers write it: x -> Q -> DQ -> Conv(DQ(int8 W), DQ(int32 B)) -> Relu ->
// Q -> DQ, and a residual Add of two dequantized values -> Q -> DQ. fuse_qdq makes brink.QConv
// and brink.QAdd that read and write the uint8 values; the result stays within one output
// quantization step of the float QDQ graph (integer accumulation rounds once).
TEST(Passes, FusesQdqConvAndAddIntoIntegerOps) {
  REQUIRE_BRINK_OP("QConv");
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> wd(-127, 127);
  std::vector<int8_t> w(static_cast<size_t>(6 * 4 * 3 * 3));
  for (int8_t& v : w) v = static_cast<int8_t>(wd(rng));
  std::vector<float> ws = {0.004f, 0.006f, 0.005f, 0.003f, 0.007f, 0.002f};
  const float sx = 0.02f, sy = 0.03f;
  std::vector<float> bs(6);
  std::vector<int32_t> bq(6);
  for (size_t i = 0; i < 6; ++i) {
    bs[i] = sx * ws[i];
    bq[i] = static_cast<int32_t>(i) * 50 - 120;
  }
  ModelBuilder b(13);
  b.input("x", {1, 4, 6, 5})
      .init("sx", Tensor::scalar<float>(sx))
      .init("zx", Tensor::scalar<uint8_t>(128))
      .init("wq", Tensor::from_vector<int8_t>({6, 4, 3, 3}, w))
      .init("ws", Tensor::from_vector<float>({6}, ws))
      .init("wz", Tensor::from_vector<int8_t>({6}, std::vector<int8_t>(6, 0)))
      .init("bq", Tensor::from_vector<int32_t>({6}, bq))
      .init("bs", Tensor::from_vector<float>({6}, bs))
      .init("sy", Tensor::scalar<float>(sy))
      .init("zy", Tensor::scalar<uint8_t>(0))
      .node("QuantizeLinear", {"x", "sx", "zx"}, {"xq"})
      .node("DequantizeLinear", {"xq", "sx", "zx"}, {"xd"})
      .node("DequantizeLinear", {"wq", "ws", "wz"}, {"wd"}, {make_attr("axis", int64_t{0})})
      .node("DequantizeLinear", {"bq", "bs"}, {"bd"}, {make_attr("axis", int64_t{0})})
      .node("Conv", {"xd", "wd", "bd"}, {"c"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Relu", {"c"}, {"r"})
      .node("QuantizeLinear", {"r", "sy", "zy"}, {"rq"})
      .node("DequantizeLinear", {"rq", "sy", "zy"}, {"rd"})
      .node("Add", {"rd", "rd"}, {"s"})
      .node("QuantizeLinear", {"s", "sy", "zy"}, {"sq"})
      .node("DequantizeLinear", {"sq", "sy", "zy"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_qdq(m, report).is_ok());
  EXPECT_EQ(report.fused_qdq, 2);
  std::vector<std::string> ops;
  for (const ir::Node& n : m.graph.nodes) ops.push_back(n.domain + "." + n.op_type);
  EXPECT_EQ(ops, (std::vector<std::string>{".QuantizeLinear", "brink.QConv", "brink.QAdd",
                                           ".DequantizeLinear"}));
  EXPECT_EQ(m.graph.nodes[1].attr_string("activation", ""), "Relu");
  expect_same_interface(before, m);
  // Within one step of the 2 * sy-spaced sums (two rounded addends: at most 2 steps).
  expect_same_results(before, m, random_feeds(before), 2.0 * sy + 1e-6);
}

TEST(Passes, FusesResidualAddThenActivation) {
  REQUIRE_BRINK_OP("Conv");
  // a = relu(conv1(x)); y = relu(conv2(a) + a): conv1 takes the first Relu, conv2 the Add
  // (Z = a) and the second Relu.
  ModelBuilder b(13);
  b.input("x", {1, 8, 5, 5})
      .uniform_init("w1", {8, 8, 1, 1})
      .uniform_init("w2", {8, 8, 3, 3})
      .uniform_init("b2", {8})
      .node("Conv", {"x", "w1"}, {"c1"})
      .node("Relu", {"c1"}, {"a"})
      .node("Conv", {"a", "w2", "b2"}, {"c2"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Add", {"a", "c2"}, {"s"})
      .node("Relu", {"s"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_conv(m, report).is_ok());
  ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
  EXPECT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(count_ops(m, "Conv", "brink"), 2);
  EXPECT_EQ(report.fused_residual_adds, 1);
  EXPECT_EQ(report.fused_activations, 2);
  EXPECT_EQ(m.graph.nodes[1].inputs.size(), 4u);  // X, W, B, Z
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, DoesNotFuseSharedOrOutputIntermediates) {
  REQUIRE_BRINK_OP("Conv");
  // The conv output is a graph output, and the Relu output feeds two consumers.
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4})
      .uniform_init("w", {3, 2, 1, 1})
      .uniform_init("w2", {3, 3, 1, 1})
      .node("Conv", {"x", "w"}, {"c"})
      .node("Relu", {"c"}, {"r"})
      .node("Conv", {"r", "w2"}, {"c2"})
      .node("Sigmoid", {"c2"}, {"s"})
      .node("Mul", {"s", "c2"}, {"y"})
      .node("Add", {"c2", "r"}, {"y2"})  // c2 has a third use: no SiLU, no residual
      .output("c")
      .output("y")
      .output("y2");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_conv(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "Conv", "brink"), 2);
  EXPECT_EQ(count_ops(m, "Relu"), 1);
  EXPECT_EQ(count_ops(m, "Sigmoid"), 1);
  EXPECT_EQ(report.fused_activations + report.fused_residual_adds, 0);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, LeavesValuesReadBySubgraphs) {
  REQUIRE_BRINK_OP("Conv");
  // The If's then-branch reads c (the conv output) by name: Conv + Relu must not fuse, and
  // the layout pass must keep c in NCHW under its name.
  auto branch = [](const std::string& name, const std::string& outer) {
    auto g = std::make_shared<ir::Graph>();
    g->name = name;
    const int in = g->add_value(outer);  // read from the enclosing graph
    const int out = g->add_value(name + "_out");
    ir::Node n;
    n.name = name + "_neg";
    n.op_type = "Neg";
    n.inputs = {in};
    n.outputs = {out};
    g->nodes.push_back(n);
    g->outputs.push_back(out);
    return g;
  };
  auto graph_attr = [](const std::string& name, std::shared_ptr<ir::Graph> g) {
    ir::Attribute a;
    a.name = name;
    a.type = ir::AttrType::kGraph;
    a.g = std::move(g);
    return a;
  };
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4})
      .input("cond", {}, DataType::kBool)
      .uniform_init("w", {3, 2, 3, 3})
      .node("Conv", {"x", "w"}, {"c"}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Relu", {"c"}, {"r"})
      .node("If", {"cond"}, {"y"},
            {graph_attr("then_branch", branch("then", "c")),
             graph_attr("else_branch", branch("else", "r"))})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  auto report = optimize(m, {});
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(count_ops(m, "Relu"), 1);
  EXPECT_EQ(report->fused_activations, 0);
  for (bool cond : {true, false}) {
    std::vector<NamedTensor> feeds = {{"x", random_tensor(DataType::kFloat32, {1, 2, 4, 4}, 3)},
                                      {"cond", Tensor::scalar<bool>(cond)}};
    expect_same_results(before, m, feeds);
  }
}

// ---------------------------------------------------------------------------------------
// MatMul / Gemm fusion

TEST(Passes, FusesMatMulBiasActivation) {
  REQUIRE_BRINK_OP("MatMul");
  ModelBuilder b(13);
  b.input("x", {2, 5, 8})
      .uniform_init("w", {8, 6})
      .uniform_init("bias", {6})
      .node("MatMul", {"x", "w"}, {"mm"})
      .node("Add", {"bias", "mm"}, {"a"})
      .node("Relu", {"a"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_matmul(m, report).is_ok());
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(m.graph.nodes[0].op_type, "MatMul");
  EXPECT_EQ(m.graph.nodes[0].domain, "brink");
  EXPECT_EQ(m.graph.nodes[0].inputs.size(), 3u);
  EXPECT_EQ(report.fused_matmul_bias, 1);
  EXPECT_EQ(report.fused_activations, 1);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, FusesGemm) {
  REQUIRE_BRINK_OP("MatMul");
  ModelBuilder b(13);
  b.input("x", {3, 8})
      .uniform_init("w", {6, 8})
      .uniform_init("c", {6})
      .uniform_init("w2", {6, 4})
      .uniform_init("c2", {1, 4})
      .uniform_init("w3", {4, 2})
      .uniform_init("c3", {3, 2})  // a full [M, N] C is not a bias: stays Gemm
      .node("Gemm", {"x", "w", "c"}, {"g"}, {make_attr("transB", int64_t{1})})
      .node("Tanh", {"g"}, {"t"})
      .node("Gemm", {"t", "w2", "c2"}, {"g2"}, {make_attr("alpha", 0.5f), make_attr("beta", 2.0f)})
      .node("Gemm", {"g2", "w3", "c3"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_matmul(m, report).is_ok());
  ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "MatMul", "brink"), 2);
  EXPECT_EQ(count_ops(m, "Gemm"), 1);
  EXPECT_EQ(count_ops(m, "Tanh"), 0);
  EXPECT_EQ(find_op(m, "MatMul", "brink")->attr_int("trans_b", 0), 1);
  EXPECT_EQ(report.fused_matmul_bias, 2);
  expect_same_results(before, m, random_feeds(before));
}

// ---------------------------------------------------------------------------------------
// Transformer patterns

// LayerNorm over the last axis as torch.onnx exports it below opset 17.
void add_decomposed_layernorm(ModelBuilder& b, const std::string& x, const std::string& y,
                              int64_t d, bool pow) {
  const std::string p = y + "_";
  b.uniform_init(p + "scale", {d}, 0.5f, 1.5f)
      .uniform_init(p + "bias", {d})
      .scalar(p + "two", 2.0f)
      .scalar(p + "eps", 1e-5f)
      .node("ReduceMean", {x}, {p + "mean"}, {make_attr("axes", std::vector<int64_t>{-1})})
      .node("Sub", {x, p + "mean"}, {p + "d"});
  if (pow)
    b.node("Pow", {p + "d", p + "two"}, {p + "sq"});
  else
    b.node("Mul", {p + "d", p + "d"}, {p + "sq"});
  b.node("ReduceMean", {p + "sq"}, {p + "var"}, {make_attr("axes", std::vector<int64_t>{-1})})
      .node("Add", {p + "var", p + "eps"}, {p + "ve"})
      .node("Sqrt", {p + "ve"}, {p + "std"})
      .node("Div", {p + "d", p + "std"}, {p + "n"})
      .node("Mul", {p + "n", p + "scale"}, {p + "sc"})
      .node("Add", {p + "sc", p + "bias"}, {y});
}

TEST(Passes, FusesDecomposedLayerNorm) {
  REQUIRE_BRINK_OP("LayerNormalization");
  for (bool pow : {true, false}) {
    ModelBuilder b(13);
    b.input("x", {2, 3, 16});
    add_decomposed_layernorm(b, "x", "y", 16, pow);
    b.output("y");
    const ir::Model before = b.build();
    ir::Model m = before;
    OptimizeReport report;
    ASSERT_TRUE(fuse_layernorm(m, report).is_ok());
    ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
    ASSERT_EQ(m.graph.nodes.size(), 1u);
    EXPECT_EQ(m.graph.nodes[0].domain, "brink");
    EXPECT_FLOAT_EQ(m.graph.nodes[0].attr_float("epsilon", 0), 1e-5f);
    EXPECT_EQ(report.fused_layernorms, 1);
    expect_same_results(before, m, random_feeds(before));
  }
}

TEST(Passes, ConvertsOnnxLayerNorm) {
  REQUIRE_BRINK_OP("LayerNormalization");
  ModelBuilder b(17);
  b.input("x", {4, 10})
      .uniform_init("s", {10})
      .uniform_init("bias", {10})
      .node("LayerNormalization", {"x", "s", "bias"}, {"y"}, {make_attr("epsilon", 1e-3f)})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_layernorm(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "LayerNormalization", "brink"), 1);
  expect_same_results(before, m, random_feeds(before));
}

struct GeluCase {
  const char* label;
  std::function<void(ModelBuilder&)> add;  // "x" -> "y"
  bool tanh;
};

std::vector<GeluCase> gelu_cases() {
  auto erf_part = [](ModelBuilder& b) {
    b.scalar("sqrt2", std::sqrt(2.0f))
        .scalar("one", 1)
        .scalar("half", 0.5f)
        .node("Div", {"x", "sqrt2"}, {"xs"})
        .node("Erf", {"xs"}, {"e"})
        .node("Add", {"e", "one"}, {"a"});
  };
  return {
      {"torch_order",
       [=](ModelBuilder& b) {
         erf_part(b);
         b.node("Mul", {"x", "a"}, {"m"}).node("Mul", {"m", "half"}, {"y"});
       },
       false},
      {"half_first",
       [=](ModelBuilder& b) {
         erf_part(b);
         b.node("Mul", {"x", "half"}, {"h"}).node("Mul", {"h", "a"}, {"y"});
       },
       false},
      {"gate_half",
       [=](ModelBuilder& b) {
         erf_part(b);
         b.node("Mul", {"a", "half"}, {"h"}).node("Mul", {"x", "h"}, {"y"});
       },
       false},
      {"tanh_form",
       [](ModelBuilder& b) {
         b.scalar("kappa", 0.044715f)
             .scalar("beta", std::sqrt(2.0f / 3.14159265f))
             .scalar("one", 1)
             .scalar("half", 0.5f)
             .node("Mul", {"x", "x"}, {"x2"})
             .node("Mul", {"x", "x2"}, {"x3"})
             .node("Mul", {"kappa", "x3"}, {"k"})
             .node("Add", {"x", "k"}, {"s"})
             .node("Mul", {"beta", "s"}, {"i"})
             .node("Tanh", {"i"}, {"t"})
             .node("Add", {"one", "t"}, {"a"})
             .node("Mul", {"x", "a"}, {"m"})
             .node("Mul", {"half", "m"}, {"y"});
       },
       true},
  };
}

TEST(Passes, FusesGelu) {
  REQUIRE_BRINK_OP("Gelu");
  for (const GeluCase& gc : gelu_cases()) {
    SCOPED_TRACE(gc.label);
    ModelBuilder b(13);
    b.input("x", {3, 7});
    gc.add(b);
    b.output("y");
    const ir::Model before = b.build();
    ir::Model m = before;
    OptimizeReport report;
    ASSERT_TRUE(fuse_gelu(m, report).is_ok());
    ASSERT_TRUE(eliminate_dead_code(m, report).is_ok());
    ASSERT_EQ(m.graph.nodes.size(), 1u);
    EXPECT_EQ(m.graph.nodes[0].domain, "brink");
    EXPECT_EQ(m.graph.nodes[0].attr_string("approximate", ""), gc.tanh ? "tanh" : "none");
    EXPECT_EQ(report.fused_gelus, 1);
    expect_same_results(before, m, random_feeds(before));
  }
}

TEST(Passes, GeluAfterMatMulBecomesItsActivation) {
  REQUIRE_BRINK_OP("Gelu");
  REQUIRE_BRINK_OP("MatMul");
  ModelBuilder b(13);
  b.input("in", {4, 6}).uniform_init("w", {6, 7}).uniform_init("bias", {7});
  b.node("MatMul", {"in", "w"}, {"mm"}).node("Add", {"mm", "bias"}, {"x"});
  gelu_cases()[0].add(b);
  b.output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  auto report = optimize(m, {});
  ASSERT_TRUE(report.is_ok());
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(m.graph.nodes[0].attr_string("activation", ""), "Gelu");
  EXPECT_EQ(report->fused_gelus, 1);
  EXPECT_EQ(report->fused_matmul_bias, 1);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, FusesAttention) {
  REQUIRE_BRINK_OP("Attention");
  // [batch 2, heads 3, seq 5, dim 4]; K transposed by swapping its last two axes.
  ModelBuilder b(13);
  b.input("q", {2, 3, 5, 4})
      .input("k", {2, 3, 6, 4})
      .input("v", {2, 3, 6, 4})
      .input("mask", {2, 1, 1, 6})
      .scalar("d", 2.0f)
      .node("Transpose", {"k"}, {"kt"}, {make_attr("perm", std::vector<int64_t>{0, 1, 3, 2})})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Div", {"s", "d"}, {"ss"})
      .node("Add", {"ss", "mask"}, {"sm"})
      .node("Softmax", {"sm"}, {"p"}, {make_attr("axis", int64_t{-1})})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_attention(m, report).is_ok());
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  const ir::Node& att = m.graph.nodes[0];
  EXPECT_EQ(att.op_type, "Attention");
  EXPECT_EQ(att.attr_int("k_transposed", -1), 0);
  EXPECT_FLOAT_EQ(att.attr_float("scale", 0), 0.5f);
  EXPECT_EQ(att.inputs.size(), 4u);
  EXPECT_EQ(report.fused_attentions, 1);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, FusesAttentionWithPrescaledQueryAndTransposedKey) {
  REQUIRE_BRINK_OP("Attention");
  // ViT-style: Q / sqrt(d) before the MatMul; Kt = Transpose(K [S, H, D], [1, 2, 0]).
  ModelBuilder b(14);
  b.input("q", {3, 5, 4})
      .input("k", {6, 3, 4})
      .input("v", {3, 6, 4})
      .scalar("c", 2.0f)
      .node("Div", {"q", "c"}, {"qs"})
      .node("Transpose", {"k"}, {"kt"}, {make_attr("perm", std::vector<int64_t>{1, 2, 0})})
      .node("MatMul", {"qs", "kt"}, {"s"})
      .node("Softmax", {"s"}, {"p"}, {make_attr("axis", int64_t{-1})})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_attention(m, report).is_ok());
  ASSERT_EQ(count_ops(m, "Attention", "brink"), 1);
  const ir::Node* att = find_op(m, "Attention", "brink");
  EXPECT_EQ(att->attr_int("k_transposed", -1), 1);
  EXPECT_FLOAT_EQ(att->attr_float("scale", 0), 0.5f);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, LeavesSoftmaxOverOtherAxesAlone) {
  ModelBuilder b(13);
  b.input("q", {2, 5, 4})
      .input("kt", {2, 4, 5})
      .input("v", {2, 5, 4})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Softmax", {"s"}, {"p"}, {make_attr("axis", int64_t{1})})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  ir::Model m = b.build();
  OptimizeReport report;
  ASSERT_TRUE(fuse_attention(m, report).is_ok());
  EXPECT_EQ(report.fused_attentions, 0);
  EXPECT_EQ(m.graph.nodes.size(), 3u);
}

// ---------------------------------------------------------------------------------------
// NHWC layout

TEST(Passes, CancelsAndMergesTransposes) {
  ModelBuilder b(13);
  b.input("x", {2, 3, 4, 5})
      .node("Transpose", {"x"}, {"a"}, {make_attr("perm", std::vector<int64_t>{0, 2, 3, 1})})
      .node("Transpose", {"a"}, {"b"}, {make_attr("perm", std::vector<int64_t>{0, 3, 1, 2})})
      .node("Relu", {"b"}, {"y"})
      .node("Transpose", {"a"}, {"c"}, {make_attr("perm", std::vector<int64_t>{3, 0, 1, 2})})
      .node("Transpose", {"x"}, {"i"}, {make_attr("perm", std::vector<int64_t>{0, 1, 2, 3})})
      .node("Neg", {"i"}, {"z"})
      .output("y")
      .output("c")
      .output("z");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(cancel_transposes(m, report).is_ok());
  EXPECT_EQ(count_ops(m, "Transpose"), 1);  // c = Transpose(x, [1, 0, 2, 3])
  EXPECT_EQ(find_op(m, "Transpose", "")->attr_ints("perm"), (std::vector<int64_t>{1, 0, 2, 3}));
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

// A small CNN: conv, relu, max pool, residual block, channel concat, SE-style gate, global
// pool, flatten, gemm; plus an intermediate as a second graph output.
ir::Model small_cnn() {
  ModelBuilder b(13);
  b.input("x", {1, 3, 12, 10})
      .uniform_init("w1", {8, 3, 3, 3})
      .uniform_init("b1", {8})
      .uniform_init("w2", {8, 8, 3, 3})
      .uniform_init("w3", {4, 16, 1, 1})
      .uniform_init("chan", {4, 1, 1})
      .uniform_init("fc1", {4, 4, 1, 1})
      .uniform_init("fc", {5, 4})
      .uniform_init("fcb", {5})
      .node("Conv", {"x", "w1", "b1"}, {"c1"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1}),
             make_attr("strides", std::vector<int64_t>{2, 2})})
      .node("Relu", {"c1"}, {"r1"})
      .node("MaxPool", {"r1"}, {"p1"},
            {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
             make_attr("strides", std::vector<int64_t>{1, 1})})
      .node("Conv", {"p1", "w2"}, {"c2"}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Add", {"c2", "p1"}, {"s2"})
      .node("Relu", {"s2"}, {"r2"})
      .node("Concat", {"r2", "p1"}, {"cat"}, {make_attr("axis", int64_t{1})})
      .node("Conv", {"cat", "w3"}, {"c3"})
      .node("Mul", {"c3", "chan"}, {"m3"})
      .node("GlobalAveragePool", {"m3"}, {"g"})
      .node("Conv", {"g", "fc1"}, {"g1"})
      .node("Sigmoid", {"g1"}, {"gate"})
      .node("Mul", {"m3", "gate"}, {"se"})
      .node("GlobalAveragePool", {"se"}, {"g2"})
      .node("Flatten", {"g2"}, {"f"})
      .node("Gemm", {"f", "fc", "fcb"}, {"y"}, {make_attr("transB", int64_t{1})})
      .output("y")
      .output("r2");
  return b.build();
}

TEST(Passes, ConvertsConvolutionsToNhwc) {
  REQUIRE_BRINK_OP("Conv");
  const ir::Model before = small_cnn();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_conv(m, report).is_ok());
  ASSERT_TRUE(convert_to_nhwc(m, report).is_ok());
  for (const ir::Node& n : m.graph.nodes)
    if (n.op_type == "Conv") {
      EXPECT_EQ(n.attr_string("layout", ""), "NHWC") << n.name;
    }
  // In: x. Out: r2 (a graph output) and the squeeze before Flatten (a Reshape, H = W = 1).
  EXPECT_EQ(report.transposes_inserted, 3);
  EXPECT_EQ(count_ops(m, "Transpose"), 2);
  if (brink_op_available("GlobalAveragePool")) {
    EXPECT_EQ(count_ops(m, "Reshape"), 1);
    EXPECT_EQ(count_ops(m, "GlobalAveragePool", "brink"), 2);
  }
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, NhwcKeepsValuesReadBothWays) {
  REQUIRE_BRINK_OP("Conv");
  // c feeds a conv (NHWC) and a Softmax over channels (NCHW): converted once, both read it.
  ModelBuilder b(13);
  b.input("x", {2, 4, 5, 5})
      .uniform_init("w", {4, 4, 3, 3})
      .uniform_init("w2", {6, 4, 1, 1})
      .node("Conv", {"x", "w"}, {"c"}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Conv", {"c", "w2"}, {"y"})
      .node("Softmax", {"c"}, {"s"}, {make_attr("axis", int64_t{1})})
      .output("y")
      .output("s");
  const ir::Model before = b.build();
  ir::Model m = before;
  auto report = optimize(m, {});
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(count_ops(m, "Transpose"), 3);  // x in, c out for Softmax, y out
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, NhwcCarriesShuffleSliceResizeAndReduce) {
  REQUIRE_BRINK_OP("Conv");
  // ShuffleNet's channel shuffle and channel split, a nearest 2x Resize, a spatial mean.
  ModelBuilder b(13);
  b.input("x", {1, 3, 8, 8})
      .uniform_init("w1", {8, 3, 3, 3})
      .uniform_init("w2", {4, 4, 1, 1})
      .init("split_shape", Tensor::from_vector<int64_t>({5}, {1, 2, 4, 8, 8}))
      .init("merge_shape", Tensor::from_vector<int64_t>({4}, {1, 8, 8, 8}))
      .init("starts", Tensor::from_vector<int64_t>({1}, {4}))
      .init("ends", Tensor::from_vector<int64_t>({1}, {8}))
      .init("axes", Tensor::from_vector<int64_t>({1}, {1}))
      .init("roi", Tensor::from_vector<float>({0}, {}))
      .init("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 2}))
      .node("Conv", {"x", "w1"}, {"c1"}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Reshape", {"c1", "split_shape"}, {"r1"})
      .node("Transpose", {"r1"}, {"t1"}, {make_attr("perm", std::vector<int64_t>{0, 2, 1, 3, 4})})
      .node("Reshape", {"t1", "merge_shape"}, {"shuffled"})
      .node("Slice", {"shuffled", "starts", "ends", "axes"}, {"half"})
      .node("Conv", {"half", "w2"}, {"c2"})
      .node("Resize", {"c2", "roi", "scales"}, {"up"}, {make_attr("mode", std::string("nearest"))})
      .node("ReduceMean", {"up"}, {"y"},
            {make_attr("axes", std::vector<int64_t>{2, 3}), make_attr("keepdims", int64_t{0})})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  OptimizeReport report;
  ASSERT_TRUE(fuse_conv(m, report).is_ok());
  ASSERT_TRUE(convert_to_nhwc(m, report).is_ok());
  EXPECT_EQ(report.layout_converted_nodes, 8);
  EXPECT_EQ(report.transposes_inserted, 1);  // only the input: y is [N, C] in both layouts
  EXPECT_EQ(count_ops(m, "Transpose"), 2);   // that and the shuffle's own
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, NhwcAbsorbsTheModelsOwnPermutes) {
  REQUIRE_BRINK_OP("Conv");
  // ConvNeXt: conv -> permute to NHWC -> ... -> permute back -> scale -> residual Add.
  ModelBuilder b(13);
  b.input("x", {1, 4, 5, 5})
      .uniform_init("w0", {4, 4, 1, 1})
      .uniform_init("dw", {4, 1, 3, 3})
      .uniform_init("fc", {4, 4})
      .uniform_init("gamma", {4, 1, 1})
      .uniform_init("w3", {6, 4, 1, 1})
      .node("Conv", {"x", "w0"}, {"c0"})
      .node("Conv", {"c0", "dw"}, {"d"},
            {make_attr("group", int64_t{4}), make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Transpose", {"d"}, {"p"}, {make_attr("perm", std::vector<int64_t>{0, 2, 3, 1})})
      .node("MatMul", {"p", "fc"}, {"f"})
      .node("Transpose", {"f"}, {"q"}, {make_attr("perm", std::vector<int64_t>{0, 3, 1, 2})})
      .node("Mul", {"q", "gamma"}, {"s"})
      .node("Add", {"s", "c0"}, {"r"})
      .node("Conv", {"r", "w3"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  auto report = optimize(m, {});
  ASSERT_TRUE(report.is_ok());
  EXPECT_EQ(count_ops(m, "Transpose"), 2);  // x in, y out; the model's permutes are gone
  expect_same_interface(before, m);
  expect_same_results(before, m, random_feeds(before));
}

TEST(Passes, LevelZeroAndOneLeaveLayoutAlone) {
  REQUIRE_BRINK_OP("Conv");
  ir::Model m0 = small_cnn(), m1 = small_cnn();
  OptimizeOptions o0, o1;
  o0.level = 0;
  o1.level = 1;
  auto r0 = optimize(m0, o0);
  ASSERT_TRUE(r0.is_ok());
  EXPECT_EQ(m0.graph.nodes.size(), small_cnn().graph.nodes.size());
  auto r1 = optimize(m1, o1);
  ASSERT_TRUE(r1.is_ok());
  EXPECT_EQ(r1->layout_converted_nodes, 0);
  EXPECT_EQ(count_ops(m1, "Transpose"), 0);
  EXPECT_GT(r1->fused_activations, 0);
  expect_same_results(small_cnn(), m1, random_feeds(m1));
}

TEST(Passes, SymbolicBatchIsKept) {
  REQUIRE_BRINK_OP("Conv");
  ModelBuilder b(13);
  b.symbolic_input("x", {ir::Dim::symbol("batch"), 3, 6, 6})
      .uniform_init("w", {4, 3, 3, 3})
      .node("Conv", {"x", "w"}, {"c"})
      .node("Relu", {"c"}, {"r"})
      .node("GlobalAveragePool", {"r"}, {"g"})
      .node("Flatten", {"g"}, {"y"})
      .output("y");
  const ir::Model before = b.build();
  ir::Model m = before;
  auto report = optimize(m, {});
  ASSERT_TRUE(report.is_ok());
  expect_same_interface(before, m);
  std::vector<NamedTensor> feeds = {{"x", random_tensor(DataType::kFloat32, {3, 3, 6, 6}, 5)}};
  expect_same_results(before, m, feeds);
}

// ---------------------------------------------------------------------------------------
// The pipeline on exported models (tests/python/models.py; skipped when not generated)

std::string generated_dir(const std::string& name) {
  return std::string(BRINK_SOURCE_DIR) + "/tests/python/.generated/v1/" + name;
}

std::string report_string(const OptimizeReport& r) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "bn=%d act=%d residual=%d ln=%d gelu=%d attention=%d matmul_bias=%d "
                "nhwc_nodes=%d conversions=%d removed=%d",
                r.folded_batchnorms, r.fused_activations, r.fused_residual_adds, r.fused_layernorms,
                r.fused_gelus, r.fused_attentions, r.fused_matmul_bias, r.layout_converted_nodes,
                r.transposes_inserted, r.removed_nodes);
  return buf;
}

class PassesOnModel : public ::testing::TestWithParam<const char*> {};

TEST_P(PassesOnModel, OptimizedModelComputesTheSame) {
  const std::string dir = generated_dir(GetParam());
  if (!std::filesystem::exists(dir + "/model.onnx"))
    GTEST_SKIP() << dir << " not generated (tests/python/models.py)";
  auto loaded = onnx_io::load_onnx_file(dir + "/model.onnx");
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  const ir::Model before = std::move(loaded).value();
  std::vector<NamedTensor> feeds;
  for (int v : before.graph.inputs) {
    const std::string& name = before.graph.value(v).name;
    auto t = npy::read_npy(dir + "/inputs/" + name + ".npy");
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    feeds.push_back({name, *t});
  }
  // Every pass alone must succeed (the pipeline would undo a failing one silently).
  {
    ir::Model m = before;
    OptimizeReport r;
    using PassFn = Status (*)(ir::Model&, OptimizeReport&, const OptimizeOptions&);
    for (PassFn pass :
         {fuse_qdq, fold_constants, remove_identities, merge_reshapes, eliminate_dead_code,
          fold_batchnorms, fuse_layernorm, fuse_gelu, fuse_attention, fuse_conv, fuse_matmul,
          convert_to_nhwc, cancel_transposes}) {
      Status s = pass(m, r, {});
      ASSERT_TRUE(s.is_ok()) << s.message();
    }
  }
  for (int level : {1, 2}) {
    SCOPED_TRACE("level " + std::to_string(level));
    ir::Model m = before;
    OptimizeOptions options;
    options.level = level;
    const auto start = std::chrono::steady_clock::now();
    auto report = optimize(m, options);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(report.is_ok()) << report.status().message();
    std::printf("[ passes ] %s level %d: %zu -> %zu nodes in %.1f ms; %s\n", GetParam(), level,
                before.graph.nodes.size(), m.graph.nodes.size(), ms,
                report_string(*report).c_str());
    // BRINK_PASSES_DUMP=dir writes the optimized models there, to inspect them.
    if (const char* dump = std::getenv("BRINK_PASSES_DUMP")) {
      const std::string path =
          std::string(dump) + "/" + GetParam() + ".level" + std::to_string(level) + ".onnx";
      EXPECT_TRUE(onnx_io::save_onnx_file(m, path).is_ok()) << path;
    }
    expect_same_interface(before, m);
    expect_same_results(before, m, feeds, 2e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Generated, PassesOnModel,
                         ::testing::Values("squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small",
                                           "shufflenet_v2_x0_5", "resnet18", "efficientnet_b0",
                                           "regnet_y_400mf", "resnet50", "convnext_tiny",
                                           "bert_tiny", "bert_tiny_opset17", "vit_tiny",
                                           "lstm_bidir", "gru", "yolo_tiny"));

}  // namespace
}  // namespace brink::passes

namespace brink::passes {
namespace {

// Weights that kernels keep packed are freed at load; weights a kernel reads at run time,
// graph outputs and a weight shared with such a reader stay; results do not change, on
// repeated runs too.
TEST(Passes, PackedWeightsAreFreedAtLoadAndResultsStay) {
  ModelBuilder b(13);
  b.input("x", {2, 3, 9, 9})
      .uniform_init("w", {8, 3, 3, 3})
      .uniform_init("bias", {8})
      .uniform_init("w2", {8, 8, 1, 1})
      .uniform_init("fc", {8, 5})
      .uniform_init("shared", {5})
      .node("Conv", {"x", "w", "bias"}, {"c"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Relu", {"c"}, {"r"})
      .node("Conv", {"r", "w2"}, {"c2"})
      .node("GlobalAveragePool", {"c2"}, {"p"})
      .node("Flatten", {"p"}, {"f"})
      .node("MatMul", {"f", "fc"}, {"m"})
      .node("Add", {"m", "shared"}, {"y"})
      .node("Mul", {"shared", "shared"}, {"sq"})
      .output("y")
      .output("sq")
      .output("w2");  // a weight that is also a graph output must stay
  const ir::Model model = b.build();
  const auto feeds = random_feeds(model);
  auto want = run(model, feeds);  // the model as given, optimization level 0
  ASSERT_TRUE(want.is_ok()) << want.status().message();

  SessionOptions options;  // level 2: fused brink.Conv / brink.MatMul with packed weights
  auto cm = CompiledModel::compile(model, options);
  ASSERT_TRUE(cm.is_ok()) << cm.status().message();
  // w (3*3*3*8 floats) and fc (8*5) are packed and freed; w2 is a graph output; `shared` is
  // read by Add/Mul (or a fused bias) at run time.
  EXPECT_GE((*cm)->released_constant_bytes(), static_cast<int64_t>((216 + 40) * sizeof(float)));
  EXPECT_LT((*cm)->released_constant_bytes(),
            static_cast<int64_t>((216 + 40 + 64 + 5) * sizeof(float)));
  for (int round = 0; round < 2; ++round) {
    auto got = (*cm)->run(feeds);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    ASSERT_EQ(got->size(), want->size());
    for (size_t k = 0; k < got->size(); ++k) {
      const Tensor &a = (*want)[k], &g = (*got)[k];
      ASSERT_EQ(a.shape(), g.shape());
      for (int64_t i = 0; i < a.numel(); ++i)
        EXPECT_NEAR(a.element_as_double(i), g.element_as_double(i), 1e-4) << "output " << k;
    }
  }
}

}  // namespace
}  // namespace brink::passes
