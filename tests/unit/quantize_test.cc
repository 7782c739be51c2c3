// The quantizer (src/quant): calibration methods on known distributions, the QDQ layout of a
// small Conv + Relu + Add + Gemm model (what is quantized, how, and that Brink runs it close to
// FP32), bias scales, int8-dynamic and fp16 layouts, and the errors for unquantizable models.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "brink/session.h"
#include "graph_builders.h"
#include "ops/evaluate.h"
#include "quant/calibration.h"
#include "quant/quantize.h"

namespace brink::quant {
namespace {

using ops::make_attr;

using test::ModelBuilder;

// x[1,3,8,8] -> Conv(4) -> Relu -> a;  a -> Conv(4) -> b;  Add(a, b) -> Relu -> GAP -> Flatten
// -> Gemm(transB=1, 5) -> y
ir::Model small_cnn() {
  return ModelBuilder()
      .input("x", {1, 3, 8, 8})
      .normal_init("w1", {4, 3, 3, 3})
      .normal_init("b1", {4})
      .normal_init("w2", {4, 4, 3, 3})
      .normal_init("b2", {4})
      .normal_init("wf", {5, 4})
      .normal_init("bf", {5})
      .node("Conv", {"x", "w1", "b1"}, {"c1"},
            {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Relu", {"c1"}, {"a"})
      .node("Conv", {"a", "w2", "b2"}, {"b"}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})})
      .node("Add", {"a", "b"}, {"s"})
      .node("Relu", {"s"}, {"r"})
      .node("GlobalAveragePool", {"r"}, {"g"})
      .node("Flatten", {"g"}, {"f"})
      .node("Gemm", {"f", "wf", "bf"}, {"y"}, {make_attr("transB", int64_t{1})})
      .output("y")
      .build();
}

Dataset random_data(int n, const Shape& shape, uint32_t seed = 1) {
  Dataset d;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    Tensor t = Tensor::empty(DataType::kFloat32, shape);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = u(rng);
    d.samples.push_back({{"x", t}});
  }
  return d;
}

std::map<std::string, int> op_counts(const ir::Model& m) {
  std::map<std::string, int> c;
  for (const ir::Node& n : m.graph.nodes) ++c[n.op_type];
  return c;
}

const ir::Node* producer_of(const ir::Model& m, const std::string& value) {
  const int v = m.graph.find_value(value);
  if (v < 0) return nullptr;
  for (const ir::Node& n : m.graph.nodes)
    for (int o : n.outputs)
      if (o == v) return &n;
  return nullptr;
}

// ---- calibration methods ------------------------------------------------------------------

Histogram histogram_of(const std::vector<float>& x, bool absolute) {
  Histogram h;
  float lo = x[0], hi = x[0];
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  if (absolute) {
    h.lo = 0;
    h.hi = std::max(std::fabs(lo), std::fabs(hi));
  } else {
    h.lo = lo;
    h.hi = hi;
  }
  h.add(x.data(), static_cast<int64_t>(x.size()), absolute);
  return h;
}

std::vector<float> normal_with_outlier(float outlier) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(200000);
  for (float& v : x) v = dist(rng);
  x[17] = outlier;
  return x;
}

TEST(Calibration, MinMaxIsExactAndIncludesZero) {
  const Range r = choose_range(CalibrationMethod::kMinMax, 99.9, false, 0.5f, 3.25f, nullptr);
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_EQ(r.hi, 3.25f);
  const Range s = choose_range(CalibrationMethod::kMinMax, 99.9, true, -1.5f, 0.25f, nullptr);
  EXPECT_EQ(s.lo, -1.5f);
  EXPECT_EQ(s.hi, 1.5f);
}

TEST(Calibration, HistogramMethodsClipAnOutlier) {
  const std::vector<float> x = normal_with_outlier(1000.0f);
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  ASSERT_EQ(hi, 1000.0f);
  const Histogram signed_h = histogram_of(x, false);
  const Histogram abs_h = histogram_of(x, true);
  const Range p = choose_range(CalibrationMethod::kPercentile, 99.9, false, lo, hi, &signed_h);
  // N(0, 1): the 99.9th percentile is 3.09; bins are ~0.5 wide here.
  EXPECT_GT(p.hi, 2.5f);
  EXPECT_LT(p.hi, 4.0f);
  EXPECT_LT(p.lo, -2.5f);
  EXPECT_GT(p.lo, -4.0f);
  // Entropy (TensorRT) never goes below 128 of the 2048 bins: 1000 * 128 / 2048 = 62.5.
  const Range e = choose_range(CalibrationMethod::kEntropy, 0, false, lo, hi, &abs_h);
  EXPECT_LE(e.hi, 62.6f) << "entropy kept the outlier";
  EXPECT_GT(e.hi, 1.0f);
  // MSE weighs the outlier's squared error against the bulk's rounding error: one sample at
  // 1000 is worth keeping, but the long tail of a Laplace distribution is clipped.
  std::mt19937 rng(11);
  std::exponential_distribution<float> expo(1.0f);
  std::vector<float> laplace(200000);
  for (size_t i = 0; i < laplace.size(); ++i) laplace[i] = (i % 2 ? 1.0f : -1.0f) * expo(rng);
  float llo = 0, lhi = 0;
  for (float v : laplace) llo = std::min(llo, v), lhi = std::max(lhi, v);
  const Histogram lh = histogram_of(laplace, false);
  const Range m = choose_range(CalibrationMethod::kMse, 0, false, llo, lhi, &lh);
  EXPECT_LT(m.hi, 0.95f * lhi) << "mse did not clip the tail";
  EXPECT_GT(m.hi, 4.0f);
  EXPECT_LT(m.lo, -4.0f);
  EXPECT_GT(m.lo, 0.95f * llo);
  // Without outliers, percentile 100 is the max.
  const Range all = choose_range(CalibrationMethod::kPercentile, 100.0, false, lo, hi, &signed_h);
  EXPECT_NEAR(all.hi, 1000.0f, 1.0f);
}

TEST(Calibration, EntropyOnAFineHistogramTracksTheBulk) {
  // A uniform [0, 4] bulk: no clipping helps much, the threshold stays near 4.
  std::vector<float> x(100000);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 4.0f);
  for (float& v : x) v = u(rng);
  const Histogram h = histogram_of(x, true);
  const Range e = choose_range(CalibrationMethod::kEntropy, 0, false, 0.0f, 4.0f, &h);
  EXPECT_EQ(e.lo, 0.0f);
  EXPECT_GT(e.hi, 3.5f);
  EXPECT_LE(e.hi, 4.0f);
  // A ReLU's output: half exact zeros. The spike at 0 must not pull the threshold down.
  for (size_t i = 0; i < x.size(); i += 2) x[i] = 0.0f;
  const Histogram relu = histogram_of(x, true);
  const Range r = choose_range(CalibrationMethod::kEntropy, 0, false, 0.0f, 4.0f, &relu);
  EXPECT_GT(r.hi, 3.5f);
}

TEST(Calibration, CalibrateRunsTheModelOverSamples) {
  const ir::Model m = small_cnn();
  const Dataset d = random_data(3, {1, 3, 8, 8});
  CalibrationOptions o;
  auto ranges = calibrate(m, {"x", "a", "y"}, d, o);
  ASSERT_TRUE(ranges.is_ok()) << ranges.status().message();
  float lo = 0, hi = 0;
  for (const auto& s : d.samples)
    for (float v : s[0].second.values<float>()) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(ranges->at("x").lo, lo);
  EXPECT_EQ(ranges->at("x").hi, hi);
  EXPECT_EQ(ranges->at("a").lo, 0.0f);  // a Relu's output
  EXPECT_GT(ranges->at("a").hi, 0.0f);
  for (const char* method : {"percentile", "entropy", "mse"}) {
    o.method = *parse_calibration_method(method);
    auto r = calibrate(m, {"a"}, d, o);
    ASSERT_TRUE(r.is_ok()) << method << ": " << r.status().message();
    EXPECT_GT(r->at("a").hi, 0.0f) << method;
    EXPECT_LE(r->at("a").hi, ranges->at("a").hi * 1.0001f) << method;
  }
  EXPECT_FALSE(parse_calibration_method("kl").is_ok());
}

// Entropy fits the bulk of a distribution and may clip its tail; on a model output (logits)
// that tail is the answer, so outputs keep their exact range while inner tensors are clipped.
TEST(Calibration, EntropyKeepsTheModelOutputsWholeRange) {
  const ir::Model m = small_cnn();
  ASSERT_EQ(m.graph.value(m.graph.outputs[0]).name, "y");
  Dataset d = random_data(64, {1, 3, 8, 8});
  // One sample far out: the logits get a long tail, which entropy would clip.
  Tensor& far = d.samples.back()[0].second;
  for (int64_t k = 0; k < far.numel(); ++k) far.data<float>()[k] *= 40.0f;
  CalibrationOptions minmax;
  auto exact = calibrate(m, {"a", "y"}, d, minmax);
  ASSERT_TRUE(exact.is_ok()) << exact.status().message();
  CalibrationOptions entropy;
  entropy.method = CalibrationMethod::kEntropy;
  auto e = calibrate(m, {"a", "y"}, d, entropy);
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  EXPECT_EQ(e->at("y").lo, exact->at("y").lo);
  EXPECT_EQ(e->at("y").hi, exact->at("y").hi);
  EXPECT_LT(e->at("a").hi, exact->at("a").hi);  // an inner tensor: clipped as before
}

// ---- the QDQ layout -----------------------------------------------------------------------

TEST(Quantize, StaticInt8EmitsOrtQdqLayout) {
  const ir::Model m = small_cnn();
  const Dataset d = random_data(8, {1, 3, 8, 8});
  QuantizeOptions o;
  auto r = quantize_model(m, &d, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Model& q = r->quantized;
  const auto counts = op_counts(q);
  // Relus after a quantized tensor read once are removed (u8 Q/DQ clamps at 0).
  EXPECT_EQ(counts.count("Relu"), 0u);
  // Quantized activations: x, a (Conv1+Relu), b, r (Add+Relu), g, f (Flatten shares g's), y.
  EXPECT_EQ(counts.at("QuantizeLinear"), 7);
  // + 3 weights + 3 biases.
  EXPECT_EQ(counts.at("DequantizeLinear"), 13);
  // Weights: int8 per output channel, symmetric.
  const ir::Graph& g = q.graph;
  const int w1 = g.find_value("w1_quantized");
  ASSERT_GE(w1, 0);
  EXPECT_EQ(g.value(w1).constant->dtype(), DataType::kInt8);
  EXPECT_EQ(g.value(g.find_value("w1_scale")).constant->shape(), (Shape{4}));
  for (int8_t v : g.value(w1).constant->values<int8_t>()) EXPECT_GE(v, -127);
  const ir::Node* dq_wf = producer_of(q, "wf_DequantizeLinear_Output");
  ASSERT_NE(dq_wf, nullptr);
  EXPECT_EQ(dq_wf->attr_int("axis", -1), 0);  // Gemm transB = 1: axis 0
  // Bias: int32, scale = x_scale * w_scale[c].
  const int b1 = g.find_value("b1_quantized");
  ASSERT_GE(b1, 0);
  EXPECT_EQ(g.value(b1).constant->dtype(), DataType::kInt32);
  const float x_scale = g.value(g.find_value("x_scale")).constant->data<float>()[0];
  const Tensor& w_scale = *g.value(g.find_value("w1_scale")).constant;
  const Tensor& b_scale = *g.value(g.find_value("b1_quantized_scale")).constant;
  for (int c = 0; c < 4; ++c)
    EXPECT_FLOAT_EQ(b_scale.data<float>()[c], x_scale * w_scale.data<float>()[c]);
  const Tensor& b1f = *m.graph.value(m.graph.find_value("b1")).constant;
  for (int c = 0; c < 4; ++c)
    EXPECT_NEAR(g.value(b1).constant->data<int32_t>()[c] * b_scale.data<float>()[c],
                b1f.data<float>()[c], b_scale.data<float>()[c]);
  // Conv1 now writes the Relu's output "a", which goes through Q/DQ.
  const ir::Node* conv1 = producer_of(q, "a");
  ASSERT_NE(conv1, nullptr);
  EXPECT_EQ(conv1->op_type, "Conv");
  // The graph output keeps its name, on the DequantizeLinear.
  EXPECT_EQ(producer_of(q, "y")->op_type, "DequantizeLinear");
  // Activations u8 with a zero point from calibration; "a" (a Relu's output) has zp 0.
  EXPECT_EQ(g.value(g.find_value("a_zero_point")).constant->dtype(), DataType::kUInt8);
  EXPECT_EQ(g.value(g.find_value("a_zero_point")).constant->data<uint8_t>()[0], 0);
  // Flatten shares GlobalAveragePool's output parameters.
  EXPECT_EQ(producer_of(q, "f_QuantizeLinear_Output")->inputs[1], g.find_value("g_scale"));
  // Only standard ONNX ops.
  for (const ir::Node& n : g.nodes) EXPECT_TRUE(n.domain.empty()) << n.op_type;
  // The input model is unchanged.
  EXPECT_EQ(op_counts(m).at("Relu"), 2);
  EXPECT_EQ(op_counts(m).count("QuantizeLinear"), 0u);
  // Brink runs it, close to FP32.
  ASSERT_TRUE(compare_models(*r, d, 4, 1).is_ok());
  ASSERT_EQ(r->report.outputs.size(), 1u);
  EXPECT_GT(r->report.outputs[0].cosine, 0.99);
  EXPECT_GT(r->report.outputs[0].sqnr_db, 15.0);
  EXPECT_EQ(r->report.layers.size(), 5u);  // 2 Conv, Add, GlobalAveragePool, Gemm
  for (const LayerReport& l : r->report.layers) EXPECT_GT(l.cosine, 0.95) << l.name;
  EXPECT_LT(r->report.weight_bytes_after, r->report.weight_bytes_before);
  EXPECT_NE(report_json(r->report).find("\"sqnr_db\""), std::string::npos);
  EXPECT_NE(format_report_table(r->report).find("Conv"), std::string::npos);
}

TEST(Quantize, RaisesAWeightScaleWhoseBiasWouldOverflowInt32) {
  // Channel 1 has weights of 1e-9 and a bias of 5: x_scale * w_scale * 2^31 would be far below 5.
  std::vector<float> w(2 * 3 * 1 * 1, 0.5f);
  for (int i = 3; i < 6; ++i) w[static_cast<size_t>(i)] = 1e-9f;
  const ir::Model m = ModelBuilder()
                          .input("x", {1, 3, 2, 2})
                          .init("w", Tensor::from_vector<float>({2, 3, 1, 1}, w))
                          .init("b", Tensor::from_vector<float>({2}, {0.25f, 5.0f}))
                          .node("Conv", {"x", "w", "b"}, {"y"})
                          .output("y")
                          .build();
  const Dataset d = random_data(2, {1, 3, 2, 2});
  auto r = quantize_model(m, &d, {});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Graph& g = r->quantized.graph;
  const Tensor& bq = *g.value(g.find_value("b_quantized")).constant;
  const Tensor& bs = *g.value(g.find_value("b_quantized_scale")).constant;
  EXPECT_NEAR(bq.data<int32_t>()[1] * static_cast<double>(bs.data<float>()[1]), 5.0, 1e-3);
  EXPECT_NEAR(bq.data<int32_t>()[0] * static_cast<double>(bs.data<float>()[0]), 0.25, 1e-3);
  ASSERT_TRUE(compare_models(*r, d, 2, 1).is_ok());
  EXPECT_GT(r->report.outputs[0].cosine, 0.999);
}

TEST(Quantize, PerTensorAndSignedActivations) {
  const ir::Model m = small_cnn();
  const Dataset d = random_data(4, {1, 3, 8, 8});
  QuantizeOptions o;
  o.per_channel = false;
  o.signed_activations = true;
  auto r = quantize_model(m, &d, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Graph& g = r->quantized.graph;
  EXPECT_EQ(g.value(g.find_value("w1_scale")).constant->shape(), Shape{});
  EXPECT_EQ(g.value(g.find_value("x_zero_point")).constant->dtype(), DataType::kInt8);
  EXPECT_EQ(g.value(g.find_value("x_zero_point")).constant->data<int8_t>()[0], 0);
  // s8: the Relus stay (a symmetric range does not clamp at 0).
  EXPECT_EQ(op_counts(r->quantized).at("Relu"), 2);
  ASSERT_TRUE(compare_models(*r, d, 2, 1).is_ok());
  EXPECT_GT(r->report.outputs[0].cosine, 0.98);
}

TEST(Quantize, DynamicAndFp16Layouts) {
  const ir::Model mlp = ModelBuilder()
                            .input("x", {2, 6})
                            .normal_init("w", {6, 5})
                            .normal_init("c", {5})
                            .node("MatMul", {"x", "w"}, {"h"})
                            .node("Add", {"h", "c"}, {"y"})
                            .output("y")
                            .build();
  QuantizeOptions o;
  o.mode = QuantMode::kInt8Dynamic;
  auto r = quantize_model(mlp, nullptr, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  auto c = op_counts(r->quantized);
  EXPECT_EQ(c.at("DynamicQuantizeLinear"), 1);
  EXPECT_EQ(c.at("MatMulInteger"), 1);
  EXPECT_EQ(c.at("Cast"), 1);
  EXPECT_EQ(c.count("MatMul"), 0u);
  Dataset d;
  Tensor x = Tensor::empty(DataType::kFloat32, {2, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(static_cast<float>(i));
  d.samples.push_back({{"x", x}});
  ASSERT_TRUE(compare_models(*r, d, 1, 1).is_ok());
  EXPECT_GT(r->report.outputs[0].cosine, 0.99);

  o.mode = QuantMode::kFp16;
  auto h = quantize_model(small_cnn(), nullptr, o);
  ASSERT_TRUE(h.is_ok()) << h.status().message();
  const ir::Graph& g = h->quantized.graph;
  EXPECT_EQ(g.value(g.find_value("w1_fp16")).constant->dtype(), DataType::kFloat16);
  EXPECT_EQ(op_counts(h->quantized).at("Cast"), 3);  // w1, w2, wf (biases: < 16 elements)
  ASSERT_TRUE(compare_models(*h, random_data(1, {1, 3, 8, 8}), 1, 1).is_ok());
  EXPECT_GT(h->report.outputs[0].sqnr_db, 40.0);
}

// int8-dynamic also stores a large embedding table as int8 and dequantizes after the lookup.
TEST(Quantize, DynamicQuantizesEmbeddingTables) {
  const ir::Model m = ModelBuilder()
                          .input("ids", {1, 7}, DataType::kInt64)
                          .normal_init("table", {4096, 64})  // 1 MiB of float
                          .normal_init("w", {64, 8})
                          .node("Gather", {"table", "ids"}, {"e"})
                          .node("MatMul", {"e", "w"}, {"y"})
                          .output("y")
                          .build();
  QuantizeOptions o;
  o.mode = QuantMode::kInt8Dynamic;
  auto r = quantize_model(m, nullptr, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Graph& g = r->quantized.graph;
  const ir::Node* gather = producer_of(r->quantized, "e_quantized");
  ASSERT_NE(gather, nullptr);
  EXPECT_EQ(gather->op_type, "Gather");
  EXPECT_EQ(g.value(gather->inputs[0]).constant->dtype(), DataType::kInt8);
  EXPECT_EQ(producer_of(r->quantized, "e")->op_type, "DequantizeLinear");
  Dataset d;
  Tensor ids = Tensor::empty(DataType::kInt64, {1, 7});
  for (int64_t i = 0; i < 7; ++i) ids.data<int64_t>()[i] = i * 577 % 4096;
  d.samples.push_back({{"ids", ids}});
  ASSERT_TRUE(compare_models(*r, d, 1, 1).is_ok());
  EXPECT_GT(r->report.outputs[0].cosine, 0.99);
}

TEST(Quantize, LeavesNonFiniteMaskFloatAndLayerNormInputsFloat) {
  // scores = x @ w; masked = scores + [0, 0, -inf, 0]; Softmax; o = p @ w2;
  // res = o + x -> LayerNormalization. The mask and the masked scores cannot be quantized (a
  // non-finite range): they stay float with a warning. The residual Add feeding LayerNorm is
  // float and reads x itself, not its DequantizeLinear; the MatMuls stay int8.
  const float inf = std::numeric_limits<float>::infinity();
  const ir::Model m = ModelBuilder()
                          .input("x", {2, 4})
                          .normal_init("w", {4, 4})
                          .normal_init("w2", {4, 4})
                          .init("mask", Tensor::from_vector<float>({4}, {0, 0, -inf, 0}))
                          .init("gamma", Tensor::from_vector<float>({4}, {1, 1, 1, 1}))
                          .init("beta", Tensor::from_vector<float>({4}, {0, 0, 0, 0}))
                          .node("MatMul", {"x", "w"}, {"scores"})
                          .node("Add", {"scores", "mask"}, {"masked"})
                          .node("Softmax", {"masked"}, {"p"}, {make_attr("axis", int64_t{-1})})
                          .node("MatMul", {"p", "w2"}, {"o"})
                          .node("Add", {"o", "x"}, {"res"})
                          .node("LayerNormalization", {"res", "gamma", "beta"}, {"y"},
                                {make_attr("axis", int64_t{-1})})
                          .output("y")
                          .build();
  const Dataset d = random_data(4, {2, 4});
  auto r = quantize_model(m, &d, {});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ir::Graph& g = r->quantized.graph;
  std::set<std::string> quantized;
  for (const ir::Node& n : g.nodes)
    if (n.op_type == "QuantizeLinear") quantized.insert(g.value(n.inputs[0]).name);
  EXPECT_EQ(quantized, (std::set<std::string>{"x", "p"}));
  EXPECT_NE(g.find_value("w_quantized"), ir::kNoValue);
  EXPECT_NE(g.find_value("w2_quantized"), ir::kNoValue);
  std::string warnings;
  for (const std::string& w : r->report.warnings) warnings += w + "\n";
  EXPECT_NE(warnings.find("'mask' left float: its range [-inf, 0] is not finite"),
            std::string::npos)
      << warnings;
  EXPECT_NE(warnings.find("'masked' left float"), std::string::npos) << warnings;
  ASSERT_EQ(r->report.float_kept.size(), 1u);
  EXPECT_NE(r->report.float_kept[0].find("1 Adds feeding LayerNormalization"), std::string::npos);
  for (const ir::Node& n : g.nodes) {
    if (n.op_type == "Add" && g.value(n.outputs[0]).name == "res") {
      EXPECT_EQ(g.value(n.inputs[0]).name, "o");
      EXPECT_EQ(g.value(n.inputs[1]).name, "x");
    }
    if (n.op_type == "Add" && g.value(n.outputs[0]).name == "masked") {
      EXPECT_EQ(g.value(n.inputs[1]).name, "mask");
    }
  }
  ASSERT_TRUE(compare_models(*r, d, 4, 1).is_ok());
  EXPECT_GT(r->report.outputs[0].cosine, 0.99);
}

TEST(Quantize, RefusesModelsWithoutQuantizableLayers) {
  const ir::Model m =
      ModelBuilder().input("x", {1, 4}).node("Sigmoid", {"x"}, {"y"}).output("y").build();
  const Dataset d = random_data(1, {1, 4});
  auto r = quantize_model(m, &d, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no Conv/MatMul/Gemm with constant weights"),
            std::string::npos);
  QuantizeOptions o;
  o.mode = QuantMode::kInt8Dynamic;
  EXPECT_FALSE(quantize_model(m, nullptr, o).is_ok());
  EXPECT_FALSE(quantize_model(small_cnn(), nullptr, {}).is_ok());  // int8 needs data
  EXPECT_FALSE(parse_quant_mode("int3").is_ok());
  EXPECT_TRUE(parse_quant_mode("int4").is_ok());
  // Per-channel needs opset 13.
  ir::Model old = small_cnn();
  old.opset_imports[0].version = 11;
  auto r11 = quantize_model(old, &d, {});
  ASSERT_FALSE(r11.is_ok());
  EXPECT_NE(r11.status().message().find("opset"), std::string::npos);
}

}  // namespace
}  // namespace brink::quant
