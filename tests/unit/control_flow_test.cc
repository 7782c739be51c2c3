// If / Loop / Scan run through a Session on hand-built models: subgraphs reading values of
// enclosing graphs, nesting, load-time types, and the Scan axis / direction attributes.
#include <gtest/gtest.h>

#include "brink/session.h"
#include "ir/graph.h"
#include "ops/evaluate.h"
#include "runtime/compiled_model.h"

namespace brink {
namespace {

using ir::Dim;
using ir::TensorType;

// Builds a graph by value names; "" is an absent input.
struct GraphBuilder {
  std::shared_ptr<ir::Graph> g = std::make_shared<ir::Graph>();

  explicit GraphBuilder(const std::string& name) { g->name = name; }
  int v(const std::string& name) {
    const int i = g->find_value(name);
    return i != ir::kNoValue ? i : g->add_value(name);
  }
  GraphBuilder& input(const std::string& name, DataType dt, std::vector<Dim> dims) {
    const int i = v(name);
    g->value(i).type = TensorType(dt, std::move(dims));
    g->inputs.push_back(i);
    return *this;
  }
  GraphBuilder& init(const std::string& name, const Tensor& t) {
    const int i = v(name);
    g->value(i).constant = t;
    g->initializers.push_back(i);
    return *this;
  }
  GraphBuilder& node(const std::string& op, const std::vector<std::string>& ins,
                     const std::vector<std::string>& outs, std::vector<ir::Attribute> attrs = {}) {
    ir::Node n;
    n.name = op + "_" + std::to_string(g->nodes.size());
    n.op_type = op;
    for (const auto& s : ins) n.inputs.push_back(s.empty() ? ir::kNoValue : v(s));
    for (const auto& s : outs) {
      n.outputs.push_back(v(s));
      g->value(n.outputs.back()).producer = static_cast<int>(g->nodes.size());
    }
    n.attributes = std::move(attrs);
    g->nodes.push_back(std::move(n));
    return *this;
  }
  GraphBuilder& output(const std::string& name) {
    g->outputs.push_back(v(name));
    return *this;
  }
};

ir::Attribute graph_attr(const std::string& name, const GraphBuilder& b) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kGraph;
  a.g = b.g;
  return a;
}

ir::Model model_of(const GraphBuilder& b, int64_t opset = 17) {
  ir::Model m;
  m.opset_imports.push_back({"", opset});
  m.graph = *b.g;
  return m;
}

std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

const std::vector<Dim> kScalar{};

// Loop body adding `w`, a value of the main graph computed by a node and explicitly used
// only before the Loop (so that it would be released too early if the Loop's use of it
// were not counted), to the loop-carried value.
TEST(ControlFlow, LoopBodyReadsOuterValue) {
  GraphBuilder body("body");
  body.input("i", DataType::kInt64, kScalar)
      .input("c", DataType::kBool, kScalar)
      .input("acc", DataType::kFloat32, {2})
      .node("Identity", {"c"}, {"c_out"})
      .node("Add", {"acc", "w"}, {"acc_out"})
      .node("Mul", {"acc_out", "acc_out"}, {"sq"})
      .output("c_out")
      .output("acc_out")
      .output("sq");
  GraphBuilder main("main");
  main.input("M", DataType::kInt64, kScalar)
      .input("x", DataType::kFloat32, {2})
      .input("w_in", DataType::kFloat32, {2})
      .node("Relu", {"w_in"}, {"w"})
      .node("Add", {"w", "w"}, {"w_twice"})  // w's last explicit use is before the Loop
      .node("Loop", {"M", "", "x"}, {"final", "squares"}, {graph_attr("body", body)})
      .output("final")
      .output("squares");

  auto session = Session::from_model(model_of(main));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  const auto& outs = (*session)->outputs();
  EXPECT_EQ(outs[0].shape_string(), "[2]");  // the body keeps the carried shape
  EXPECT_EQ(outs[1].shape_string(), "[?, 2]");
  auto out = (*session)->run({{"M", Tensor::scalar<int64_t>(3)},
                              {"x", Tensor::from_vector<float>({2}, {1, 2})},
                              {"w_in", Tensor::from_vector<float>({2}, {0.5f, -1})}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0]), (std::vector<float>{2.5f, 2}));  // w = relu(w_in) = [0.5, 0]
  ASSERT_EQ((*out)[1].shape(), (Shape{3, 2}));
  EXPECT_EQ(floats((*out)[1]), (std::vector<float>{2.25f, 4, 4, 4, 6.25f, 4}));

  auto none = (*session)->run({{"M", Tensor::scalar<int64_t>(0)},
                               {"x", Tensor::from_vector<float>({2}, {1, 2})},
                               {"w_in", Tensor::from_vector<float>({2}, {1, 1})}});
  ASSERT_TRUE(none.is_ok()) << none.status().message();
  EXPECT_EQ(floats((*none)[0]), (std::vector<float>{1, 2}));
  EXPECT_EQ((*none)[1].shape(), (Shape{0, 2}));
}

// An If inside a Loop body: its then branch reads a main-graph value and the body's
// loop-carried value, its else branch a body initializer. The loop stops on cond.
TEST(ControlFlow, NestedIfInsideLoop) {
  GraphBuilder then_b("then");
  then_b.node("Add", {"acc", "a"}, {"t"}).output("t");
  GraphBuilder else_b("else");
  else_b.node("Mul", {"acc", "two_f"}, {"e"}).output("e");
  GraphBuilder body("body");
  body.input("i", DataType::kInt64, kScalar)
      .input("c", DataType::kBool, kScalar)
      .input("acc", DataType::kFloat32, {1})
      .init("two", Tensor::scalar<int64_t>(2))
      .init("two_f", Tensor::scalar<float>(2))
      .init("limit", Tensor::scalar<int64_t>(3))
      .node("Less", {"i", "two"}, {"lt"})
      .node("If", {"lt"}, {"y"},
            {graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)})
      .node("Less", {"i", "limit"}, {"go_on"})
      .output("go_on")
      .output("y");
  GraphBuilder main("main");
  main.input("x", DataType::kFloat32, {1})
      .input("a_in", DataType::kFloat32, {1})
      .init("M", Tensor::scalar<int64_t>(100))
      .init("cond", Tensor::scalar<bool>(true))
      .node("Neg", {"a_in"}, {"a"})
      .node("Abs", {"a"}, {"a_abs"})  // a's last explicit use: the If must keep it alive
      .node("Loop", {"M", "cond", "x"}, {"final"}, {graph_attr("body", body)})
      .output("final");

  auto session = Session::from_model(model_of(main, 13));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto out = (*session)->run({{"x", Tensor::from_vector<float>({1}, {1})},
                              {"a_in", Tensor::from_vector<float>({1}, {1})}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // Iterations 0..3 run (cond is i < 3 after each): 1 - 1 - 1 = -1, then * 2 twice.
  EXPECT_EQ(floats((*out)[0]), (std::vector<float>{-4}));
}

TEST(ControlFlow, IfMergesBranchTypes) {
  GraphBuilder then_b("then");
  then_b.node("Identity", {"x"}, {"t"}).output("t");
  GraphBuilder else_b("else");
  else_b.node("Concat", {"x", "x"}, {"e"}, {ops::make_attr("axis", int64_t{0})}).output("e");
  GraphBuilder main("main");
  main.input("c", DataType::kBool, kScalar)
      .input("x", DataType::kFloat32, {2, 3})
      .node("If", {"c"}, {"y"},
            {graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)})
      .output("y");
  auto session = Session::from_model(model_of(main));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_EQ((*session)->outputs()[0].shape_string(), "[?, 3]");
  const Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto t = (*session)->run({{"c", Tensor::scalar<bool>(true)}, {"x", x}});
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)[0].shape(), (Shape{2, 3}));
  auto e = (*session)->run({{"c", Tensor::scalar<bool>(false)}, {"x", x}});
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  EXPECT_EQ((*e)[0].shape(), (Shape{4, 3}));
  EXPECT_EQ(floats((*e)[0])[7], 2.0f);
}

TEST(ControlFlow, IfBranchErrorsNameTheNode) {
  GraphBuilder then_b("then");
  then_b.node("NoSuchOp", {"x"}, {"t"}).output("t");
  GraphBuilder else_b("else");
  else_b.node("Identity", {"x"}, {"e"}).output("e");
  GraphBuilder main("main");
  main.input("c", DataType::kBool, kScalar)
      .input("x", DataType::kFloat32, {2})
      .node("If", {"c"}, {"y"},
            {graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)})
      .output("y");
  auto session = Session::from_model(model_of(main));
  ASSERT_FALSE(session.is_ok());
  EXPECT_EQ(session.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(session.status().message().find("(If): subgraph 'then'"), std::string::npos)
      << session.status().message();
  EXPECT_NE(session.status().message().find("NoSuchOp"), std::string::npos);
}

TEST(ControlFlow, IfOutsideACompiledModelIsUnsupported) {
  GraphBuilder b("b");
  b.node("Identity", {"x"}, {"t"}).output("t");
  ir::Node n =
      ops::make_node("If", 1, 1, {graph_attr("then_branch", b), graph_attr("else_branch", b)});
  const Tensor c = Tensor::scalar<bool>(true);
  auto r = ops::evaluate_node(n, 13, {&c});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

// Running sum over axis 1 of x[2, 3], read backwards, written to output axis 1 backwards
// (so the sums line up with the input positions) and to axis 0 forwards.
TEST(ControlFlow, ScanAxesAndDirections) {
  GraphBuilder body("body");
  body.input("s", DataType::kFloat32, {2})
      .input("col", DataType::kFloat32, {2})
      .node("Add", {"s", "col"}, {"s_out"})
      .node("Identity", {"s_out"}, {"o1"})
      .node("Identity", {"s_out"}, {"o2"})
      .output("s_out")
      .output("o1")
      .output("o2");
  GraphBuilder main("main");
  main.input("init", DataType::kFloat32, {2})
      .input("x", DataType::kFloat32, {2, 3})
      .node("Scan", {"init", "x"}, {"final", "rev", "fwd"},
            {graph_attr("body", body), ops::make_attr("num_scan_inputs", int64_t{1}),
             ops::make_attr("scan_input_axes", std::vector<int64_t>{-1}),
             ops::make_attr("scan_input_directions", std::vector<int64_t>{1}),
             ops::make_attr("scan_output_axes", std::vector<int64_t>{1, 0}),
             ops::make_attr("scan_output_directions", std::vector<int64_t>{1, 0})})
      .output("final")
      .output("rev")
      .output("fwd");
  auto session = Session::from_model(model_of(main));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_EQ((*session)->outputs()[1].shape_string(), "[2, 3]");
  EXPECT_EQ((*session)->outputs()[2].shape_string(), "[3, 2]");
  auto out = (*session)->run({{"init", Tensor::from_vector<float>({2}, {0, 100})},
                              {"x", Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0]), (std::vector<float>{6, 115}));
  EXPECT_EQ(floats((*out)[1]), (std::vector<float>{6, 5, 3, 115, 111, 106}));
  EXPECT_EQ(floats((*out)[2]), (std::vector<float>{3, 106, 5, 111, 6, 115}));
}

// Scan-8: batch on axis 0, sequence on axis 1, scan input read backwards.
TEST(ControlFlow, Scan8Batched) {
  GraphBuilder body("body");
  body.input("s", DataType::kFloat32, {1})
      .input("e", DataType::kFloat32, {1})
      .node("Add", {"s", "e"}, {"s_out"})
      .node("Identity", {"s_out"}, {"o"})
      .output("s_out")
      .output("o");
  GraphBuilder main("main");
  main.input("init", DataType::kFloat32, {2, 1})
      .input("x", DataType::kFloat32, {2, 3, 1})
      .node("Scan", {"", "init", "x"}, {"final", "partial"},
            {graph_attr("body", body), ops::make_attr("num_scan_inputs", int64_t{1}),
             ops::make_attr("directions", std::vector<int64_t>{1})})
      .output("final")
      .output("partial");
  auto session = Session::from_model(model_of(main, 8));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_EQ((*session)->outputs()[1].shape_string(), "[2, 3, 1]");
  auto out = (*session)->run({{"init", Tensor::from_vector<float>({2, 1}, {0, 10})},
                              {"x", Tensor::from_vector<float>({2, 3, 1}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0]), (std::vector<float>{6, 25}));
  EXPECT_EQ(floats((*out)[1]), (std::vector<float>{3, 5, 6, 16, 21, 25}));
}

// A loop-carried value that grows each iteration: load-time types keep only its rank.
TEST(ControlFlow, LoopCarriedShapeMayChange) {
  GraphBuilder body("body");
  body.input("i", DataType::kInt64, kScalar)
      .input("c", DataType::kBool, kScalar)
      .input("acc", DataType::kFloat32, {1})
      .node("Identity", {"c"}, {"c_out"})
      .node("Concat", {"acc", "acc"}, {"acc_out"}, {ops::make_attr("axis", int64_t{0})})
      .output("c_out")
      .output("acc_out");
  GraphBuilder main("main");
  main.input("M", DataType::kInt64, kScalar)
      .input("x", DataType::kFloat32, {1})
      .node("Loop", {"M", "", "x"}, {"final"}, {graph_attr("body", body)})
      .output("final");
  auto session = Session::from_model(model_of(main));
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_EQ((*session)->outputs()[0].shape_string(), "[?]");
  auto out = (*session)->run(
      {{"M", Tensor::scalar<int64_t>(3)}, {"x", Tensor::from_vector<float>({1}, {7})}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ((*out)[0].shape(), (Shape{8}));
}

}  // namespace
}  // namespace brink
