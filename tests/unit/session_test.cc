// Session / CompiledModel on small hand-built graphs: load-time checks, feed validation,
// constant folding and the memory plan.
#include <gtest/gtest.h>

#include "brink/session.h"
#include "ir/graph.h"
#include "runtime/compiled_model.h"

namespace brink {
namespace {

// x[batch, 4] -> Relu -> Add(bias) -> y, and a constant subgraph Add(c, c) feeding a second Add.
ir::Model relu_add_model() {
  ir::Model m;
  m.opset_imports.push_back({"", 17});
  ir::Graph& g = m.graph;
  const int x = g.add_value(
      "x", ir::TensorType(DataType::kFloat32, std::vector<ir::Dim>{ir::Dim::symbol("batch"), 4}));
  g.inputs.push_back(x);
  const int bias = g.add_value("bias");
  g.value(bias).constant = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  g.initializers.push_back(bias);
  const int r = g.add_value("r"), s = g.add_value("s"), c2 = g.add_value("c2"),
            y = g.add_value("y");
  auto node = [&](const char* name, const char* op, std::vector<int> in, std::vector<int> out) {
    ir::Node n;
    n.name = name;
    n.op_type = op;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    g.nodes.push_back(n);
  };
  node("relu", "Relu", {x}, {r});
  node("double_bias", "Add", {bias, bias}, {c2});  // all-constant: folded at load
  node("add1", "Add", {r, bias}, {s});
  node("add2", "Add", {s, c2}, {y});
  g.outputs.push_back(y);
  return m;
}

TEST(Session, RunsAndFoldsConstants) {
  SessionOptions no_passes;  // the compile step's own folding, not the graph passes'
  no_passes.optimization_level = 0;
  auto session = Session::from_model(relu_add_model(), no_passes);
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_EQ((*session)->compiled().folded_nodes(), 1);
  ASSERT_EQ((*session)->inputs().size(), 1u);
  EXPECT_EQ((*session)->inputs()[0].shape_string(), "[batch, 4]");
  Tensor x = Tensor::from_vector<float>({2, 4}, {-1, 1, -2, 2, 0, 5, -5, 0.5f});
  auto out = (*session)->run({{"x", x}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const std::vector<float> expect{3, 7, 9, 14, 3, 11, 9, 12.5f};  // relu(x) + 3 * bias
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 4}));
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], expect[i]);
}

TEST(Session, RejectsBadFeedsWithAllReasons) {
  auto session = Session::from_model(relu_add_model());
  ASSERT_TRUE(session.is_ok());
  const Session& s = **session;
  auto wrong_name = s.run({{"X", Tensor::zeros(DataType::kFloat32, {1, 4})}});
  ASSERT_FALSE(wrong_name.is_ok());
  EXPECT_NE(wrong_name.status().message().find("unknown input 'X'"), std::string::npos);
  EXPECT_NE(wrong_name.status().message().find("missing input 'x'"), std::string::npos);
  auto wrong_dtype = s.run({{"x", Tensor::zeros(DataType::kInt64, {1, 4})}});
  ASSERT_FALSE(wrong_dtype.is_ok());
  EXPECT_NE(wrong_dtype.status().message().find("expected float32"), std::string::npos);
  auto wrong_shape = s.run({{"x", Tensor::zeros(DataType::kFloat32, {1, 5})}});
  ASSERT_FALSE(wrong_shape.is_ok());
  EXPECT_NE(wrong_shape.status().message().find("expected [batch, 4]"), std::string::npos);
  EXPECT_EQ(wrong_shape.status().code(), StatusCode::kInvalidArgument);
}

TEST(Session, ReportsEveryUnsupportedOpAtLoad) {
  ir::Model m = relu_add_model();
  m.graph.nodes[0].op_type = "FancyOp";
  m.graph.nodes[2].op_type = "OtherOp";
  auto session = Session::from_model(m);
  ASSERT_FALSE(session.is_ok());
  EXPECT_EQ(session.status().code(), StatusCode::kUnsupported);
  const std::string& msg = session.status().message();
  EXPECT_NE(msg.find("'relu' (FancyOp)"), std::string::npos) << msg;
  // add1 consumes relu's output and is reported too: every unsupported op is a reason.
  EXPECT_NE(msg.find("'add1' (OtherOp)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 problems"), std::string::npos) << msg;
}

TEST(Session, RejectsNewerOpsetsAndPlansTheArena) {
  ir::Model m = relu_add_model();
  m.opset_imports[0].version = 99;
  auto newer = Session::from_model(m);
  ASSERT_FALSE(newer.is_ok());
  EXPECT_NE(newer.status().message().find("opset 99"), std::string::npos);

  SessionOptions o;
  o.dim_values = {{"batch", 8}};
  o.optimization_level = 0;
  auto compiled = CompiledModel::compile(relu_add_model(), o);
  ASSERT_TRUE(compiled.is_ok());
  // r and s are 8x4 floats (128 bytes each) in the arena; y, the graph output, is handed
  // to the caller and not planned. Add writes s over r (r is dead after it): one block.
  ASSERT_TRUE((*compiled)->arena_bytes().has_value());
  EXPECT_EQ(*(*compiled)->arena_bytes(), 128);
  EXPECT_EQ(*(*compiled)->unplanned_bytes(), 256);
  EXPECT_EQ((*compiled)->in_place_steps(), 1);
}

}  // namespace
}  // namespace brink
