// time_layers (quant/layer_timing.h): the report's layers mapped onto the runtime's steps of
// the FP32 and the int8 model, with the op each ran, a time where the layer has its own step,
// and a "fused into" note (no number) where the runtime fused it into another layer's node.
#include "quant/layer_timing.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "ops/evaluate.h"

namespace brink::quant {
namespace {

using ops::make_attr;

// x[1,3,8,8] -> Conv_0 -> Relu_1 -> a;  a -> Conv_2 -> b;  Add_3(a, b) -> Relu_4 -> GAP_5
// -> Flatten_6 -> Gemm_7 -> y. In FP32 the runtime fuses Conv_2 + Add_3 + Relu_4 into one
// brink.Conv named Conv_2; in int8, Conv_2 becomes a brink.QConv and Add_3 a brink.QAdd.
ir::Model residual_cnn() {
  ir::Model m;
  m.opset_imports.push_back({"", 17});
  ir::Graph& g = m.graph;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  auto value = [&](const std::string& name) {
    const int v = g.find_value(name);
    return v != ir::kNoValue ? v : g.add_value(name);
  };
  auto init = [&](const std::string& name, const Shape& shape) {
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = dist(rng);
    const int id = g.add_value(name, ir::TensorType::of(DataType::kFloat32, shape));
    g.value(id).constant = Tensor::from_vector<float>(shape, v);
    g.initializers.push_back(id);
  };
  auto node = [&](const std::string& op, const std::vector<std::string>& ins,
                  const std::vector<std::string>& outs, std::vector<ir::Attribute> attrs = {}) {
    ir::Node n;
    n.name = op + "_" + std::to_string(g.nodes.size());
    n.op_type = op;
    for (const auto& s : ins) n.inputs.push_back(value(s));
    for (const auto& s : outs) n.outputs.push_back(value(s));
    n.attributes = std::move(attrs);
    g.nodes.push_back(std::move(n));
  };
  g.inputs.push_back(g.add_value("x", ir::TensorType::of(DataType::kFloat32, {1, 3, 8, 8})));
  init("w1", {4, 3, 3, 3});
  init("b1", {4});
  init("w2", {4, 4, 3, 3});
  init("b2", {4});
  init("wf", {5, 4});
  init("bf", {5});
  const auto pads = make_attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  node("Conv", {"x", "w1", "b1"}, {"c1"}, {pads});
  node("Relu", {"c1"}, {"a"});
  node("Conv", {"a", "w2", "b2"}, {"b"}, {pads});
  node("Add", {"a", "b"}, {"s"});
  node("Relu", {"s"}, {"r"});
  node("GlobalAveragePool", {"r"}, {"gp"});
  node("Flatten", {"gp"}, {"f"});
  node("Gemm", {"f", "wf", "bf"}, {"y"}, {make_attr("transB", int64_t{1})});
  g.outputs.push_back(value("y"));
  return m;
}

Dataset random_data(int n) {
  Dataset d;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    Tensor t = Tensor::empty(DataType::kFloat32, {1, 3, 8, 8});
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = u(rng);
    d.samples.push_back({{"x", t}});
  }
  return d;
}

const LayerReport& layer(const QuantizeReport& r, const std::string& name) {
  for (const LayerReport& l : r.layers)
    if (l.name == name) return l;
  ADD_FAILURE() << "no layer " << name;
  static LayerReport none;
  return none;
}

TEST(LayerTimingTest, MapsLayersToRuntimeStepsOfBothModels) {
  const Dataset data = random_data(4);
  auto result = quantize_model(residual_cnn(), &data, QuantizeOptions{});
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  ASSERT_TRUE(time_layers(*result, data, 2, 3, 1).is_ok());
  const QuantizeReport& r = result->report;
  ASSERT_TRUE(r.timing.measured);
  EXPECT_EQ(r.timing.runs, 6);  // 3 rounds over 2 samples
  EXPECT_EQ(r.timing.threads, 1);
  EXPECT_GT(r.timing.fp32_p50_ms, 0);
  EXPECT_GT(r.timing.quant_p50_ms, 0);

  for (const char* conv : {"Conv_0", "Conv_2"}) {
    const LayerReport& l = layer(r, conv);
    EXPECT_TRUE(l.fp32_time.measured) << conv << ": " << l.fp32_time.note;
    EXPECT_EQ(l.fp32_time.op, "brink.Conv") << conv;
    EXPECT_EQ(l.fp32_time.node, conv);
    EXPECT_GT(l.fp32_time.ms, 0) << conv;
    EXPECT_TRUE(l.quant_time.measured) << conv << ": " << l.quant_time.note;
    EXPECT_EQ(l.quant_time.op, "brink.QConv") << conv;
    EXPECT_GT(l.quant_time.ms, 0) << conv;
  }
  // The FP32 Add runs inside Conv_2's brink.Conv: no time of its own, and a note saying so.
  const LayerReport& add = layer(r, "Add_3");
  EXPECT_FALSE(add.fp32_time.measured);
  EXPECT_EQ(add.fp32_time.ms, 0);
  EXPECT_EQ(add.fp32_time.note, "fused into 'Conv_2' (brink.Conv)");
  EXPECT_TRUE(add.quant_time.measured) << add.quant_time.note;
  EXPECT_EQ(add.quant_time.op, "brink.QAdd");

  const std::string table = format_timing_table(r);
  EXPECT_NE(table.find("Add_3 (FP32): fused into 'Conv_2' (brink.Conv)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("latency p50: FP32"), std::string::npos) << table;
  const auto j = nlohmann::json::parse(report_json(r));
  EXPECT_GT(j["totals"]["latency_ms_p50_fp32"].get<double>(), 0);
  EXPECT_EQ(j["totals"]["timing_runs"], 6);
  for (const auto& l : j["layers"]) {
    ASSERT_TRUE(l.contains("time")) << l.dump();
    if (l["name"] == "Add_3") {
      EXPECT_TRUE(l["time"]["fp32"]["ms"].is_null());
      EXPECT_EQ(l["time"]["quantized"]["op"], "brink.QAdd");
    }
  }
}

TEST(LayerTimingTest, NoRunsMeansNoTiming) {
  const Dataset data = random_data(2);
  auto result = quantize_model(residual_cnn(), &data, QuantizeOptions{});
  ASSERT_TRUE(result.is_ok());
  ASSERT_TRUE(time_layers(*result, data, 2, 0, 1).is_ok());
  EXPECT_FALSE(result->report.timing.measured);
  EXPECT_EQ(format_timing_table(result->report), "");
  const auto j = nlohmann::json::parse(report_json(result->report));
  EXPECT_FALSE(j["layers"][0].contains("time"));
  EXPECT_FALSE(j["totals"].contains("latency_ms_p50_fp32"));
}

}  // namespace
}  // namespace brink::quant
