// The fast float32 paths of the elementwise, Softmax and Reduce operators against their
// reference kernels (the same ops prepared with kernels::set_fast_kernels_enabled(false)),
// for every ISA this machine runs: sizes 0..70 and large (threaded), every broadcast pattern
// with a fast path and some that fall back, NaN/inf inputs, and in-place execution (the
// output written over an input) for the fast and the reference kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <span>
#include <string>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "op_test_util.h"
#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Prepares kernels with the fast paths off while it lives.

// Runs `node` with its output 0 written over inputs[alias] (same shape and dtype), as the
// executor does in place; returns that output.
Result<Tensor> run_in_place(const ir::Node& node, int64_t opset, std::vector<Tensor> inputs,
                            size_t alias, Isa isa, ThreadPool* pool) {
  const OpDef* def = OpRegistry::global().find(node.domain, node.op_type, opset);
  if (def == nullptr) return unsupported("no op");
  std::vector<TensorType> types(inputs.size());
  std::vector<const Tensor*> ptrs;
  KernelCreateContext cctx{node, opset, {}, {}, {}, {}};
  cctx.isa = isa;
  for (size_t i = 0; i < inputs.size(); ++i) {
    types[i] = TensorType::of(inputs[i].dtype(), inputs[i].shape());
    ptrs.push_back(inputs[i].defined() ? &inputs[i] : nullptr);
    cctx.input_types.push_back(inputs[i].defined() ? &types[i] : nullptr);
    cctx.constant_inputs.push_back(nullptr);
  }
  InferContext ictx(node, opset, cctx.input_types, ptrs);
  BRINK_RETURN_IF_ERROR(def->infer(ictx));
  cctx.output_types = ictx.outputs();
  if (!(ictx.outputs()[0].static_shape() == inputs[alias].shape()))
    return invalid_argument("output shape differs from the aliased input's");
  BRINK_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, def->create(cctx));
  std::vector<Tensor> outputs(node.outputs.size());
  outputs[0] = inputs[alias];  // shares the storage
  for (size_t i = 1; i < outputs.size(); ++i)
    outputs[i] = Tensor::empty(ictx.outputs()[i].dtype, ictx.outputs()[i].static_shape());
  KernelContext kctx(std::span<const Tensor* const>(ptrs), &outputs, 1);
  kctx.set_thread_pool(pool);
  BRINK_RETURN_IF_ERROR(kernel->run(kctx));
  return outputs[0];
}

Tensor random_f32(const Shape& shape, uint32_t seed, float lo = -4.0f, float hi = 4.0f,
                  bool specials = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(DataType::kFloat32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = dist(rng);
    if (specials && i % 29 == 7) p[i] = kNaN;
    if (specials && i % 31 == 11) p[i] = kInf;
    if (specials && i % 37 == 13) p[i] = -kInf;
  }
  return t;
}

// Elementwise agreement: NaN where the reference has NaN, equal infinities, else within
// rel * |want| + abs * max(1, |x|) (x: the first input, when given).
void expect_close(const Tensor& got, const Tensor& want, double rel, double abs,
                  const std::string& what, const Tensor* x = nullptr) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), DataType::kFloat32) << what;
  int failures = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float g = got.data<float>()[i], w = want.data<float>()[i];
    bool ok;
    if (std::isnan(w) || std::isnan(g)) {
      ok = std::isnan(w) && std::isnan(g);
    } else if (std::isinf(w) || std::isinf(g) || (rel == 0 && abs == 0)) {
      ok = g == w;
    } else {
      const double xs = x != nullptr && x->numel() == got.numel()
                            ? std::max(1.0, std::fabs(static_cast<double>(x->data<float>()[i])))
                            : 1.0;
      const double slack = std::isfinite(xs) ? abs * xs : 0.0;  // x = +-inf: no slack
      ok = std::fabs(static_cast<double>(g) - w) <= rel * std::fabs(w) + slack;
    }
    if (!ok && failures++ < 5) ADD_FAILURE() << what << " [" << i << "]: " << g << " vs " << w;
  }
}

std::string name_of(Isa isa, const std::string& op, const Shape& s) {
  return std::string(isa_name(isa)) + " " + op + " " + shape_to_string(s);
}

std::vector<Shape> unary_shapes() {
  std::vector<Shape> shapes;
  for (int64_t n = 0; n <= 70; ++n) shapes.push_back({n});
  shapes.push_back({3, 5, 7});
  shapes.push_back({100003});  // threaded
  return shapes;
}

struct UnaryCase {
  std::string op;
  int64_t opset;
  std::vector<ir::Attribute> attrs;
  double rel, abs;  // tolerance against the reference (std:: functions in float)
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"Relu", 14, {}, 0, 0},
      {"Abs", 13, {}, 0, 0},
      {"Neg", 13, {}, 0, 0},
      {"Sqrt", 13, {}, 0, 0},
      {"Reciprocal", 13, {}, 0, 0},
      {"Exp", 13, {}, 5e-7, 0},
      {"Log", 13, {}, 5e-7, 0},
      {"Erf", 13, {}, 5e-7, 0},
      {"Sigmoid", 13, {}, 5e-7, 0},
      {"Tanh", 13, {}, 5e-7, 0},
      {"HardSwish", 14, {}, 3e-7, 1e-7},
      {"HardSigmoid", 6, {make_attr("alpha", 0.3f), make_attr("beta", 0.4f)}, 3e-7, 1e-7},
      {"LeakyRelu", 16, {make_attr("alpha", 0.2f)}, 0, 0},
      {"Softplus", 1, {}, 6e-7, 0},
      {"Softsign", 1, {}, 3e-7, 0},
      {"Mish", 18, {}, 8e-7, 1e-7},
      {"Gelu", 20, {}, 6e-7, 3e-7},
      {"Gelu", 20, {make_attr("approximate", std::string("tanh"))}, 6e-7, 2e-7},
      {"Clip", 6, {make_attr("min", -1.5f), make_attr("max", 2.5f)}, 0, 0},
      {"Clip", 6, {make_attr("max", 2.5f)}, 0, 0},
  };
}

TEST(ElementwiseFast, UnaryOpsMatchReference) {
  for (const UnaryCase& c : unary_cases()) {
    const ir::Node node = make_node(c.op, 1, 1, c.attrs);
    for (const Shape& shape : unary_shapes()) {
      const Tensor x =
          random_f32(shape, static_cast<uint32_t>(shape_numel(shape)), -9.0f, 9.0f, true);
      const int threads = shape_numel(shape) > 1000 ? 2 : 1;
      auto want = eval(node, c.opset, {&x}, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        auto got = eval(node, c.opset, {&x}, isa, threads, true);
        ASSERT_TRUE(got.is_ok()) << got.status().message();
        expect_close((*got)[0], (*want)[0], c.rel, c.abs, name_of(isa, c.op, shape), &x);
      }
    }
  }
}

TEST(ElementwiseFast, ClipWithBoundInputs) {
  const Tensor x = random_f32({67}, 5, -9, 9, true);
  const Tensor lo = Tensor::scalar<float>(-2.0f), hi = Tensor::scalar<float>(3.0f);
  const std::vector<std::vector<const Tensor*>> cases = {
      {&x, &lo, &hi}, {&x, &lo}, {&x, nullptr, &hi}, {&x}, {&x, &hi, &lo}};
  for (const auto& inputs : cases) {
    const ir::Node node = make_node("Clip", inputs.size(), 1);
    auto want = eval(node, 13, inputs, best_isa(), 1, false);
    ASSERT_TRUE(want.is_ok());
    for (Isa isa : supported_isas()) {
      auto got = eval(node, 13, inputs, isa, 1, true);
      ASSERT_TRUE(got.is_ok());
      expect_close((*got)[0], (*want)[0], 0, 0, name_of(isa, "Clip", x.shape()));
    }
  }
}

TEST(ElementwiseFast, PowWithConstantExponents) {
  const Tensor x = random_f32({5, 13}, 9, -3, 3, true);
  Tensor xp = random_f32({5, 13}, 9, 0, 3, true);
  xp.data<float>()[3] = -0.0f;
  xp.data<float>()[4] = -kInf;
  for (float e : {1.0f, 2.0f, 3.0f, 0.5f, 1.7f, -1.0f}) {
    const Tensor ef = Tensor::scalar<float>(e);
    const Tensor e1 = Tensor::from_vector<float>({1, 1, 1}, {e});  // broadcasts x to rank 3
    const Tensor ei = Tensor::scalar<int64_t>(static_cast<int64_t>(e));
    for (const Tensor* exponent : {&ef, &e1, &ei}) {
      if (exponent == &ei && e != std::floor(e)) continue;
      const Tensor& base = e == 0.5f ? xp : x;
      const ir::Node node = make_node("Pow", 2, 1);
      auto want = eval(node, 15, {&base, exponent}, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok());
      for (Isa isa : supported_isas()) {
        auto got = eval(node, 15, {&base, exponent}, isa, 1, true);
        ASSERT_TRUE(got.is_ok());
        const std::string what = name_of(isa, "Pow^" + std::to_string(e), base.shape()) +
                                 " exponent " + dtype_name(exponent->dtype());
        expect_close((*got)[0], (*want)[0], e == 3.0f ? 2.4e-7 : 0, 0, what);
        if (e == 0.5f) {
          EXPECT_FALSE(std::signbit((*got)[0].data<float>()[3])) << what;  // pow(-0, .5) = +0
        }
      }
    }
  }
}

// Shape pairs: every broadcast pattern with a fast path, and some odd ones.
std::vector<std::pair<Shape, Shape>> binary_shapes() {
  std::vector<std::pair<Shape, Shape>> s = {
      {{}, {}},
      {{2, 3, 5, 7}, {}},              // scalar
      {{}, {2, 3, 5, 7}},              // scalar first
      {{2, 3, 5, 7}, {1}},             // one-element tensor
      {{2, 3, 5, 7}, {1, 3, 1, 1}},    // [N,C,H,W] x [1,C,1,1]
      {{2, 3, 5, 7}, {3, 1, 1}},       // per channel, lower rank
      {{2, 5, 7, 19}, {19}},           // [N,H,W,C] x [C]
      {{3, 11, 24}, {24}},             // [B,S,D] x [D]
      {{2, 4, 4, 19}, {2, 1, 1, 19}},  // SE block in NHWC
      {{2, 19, 4, 4}, {2, 19, 1, 1}},  // SE block in NCHW
      {{1, 3, 1, 1}, {2, 3, 5, 7}},    // per channel first
      {{4, 1, 3}, {1, 5, 1}},          // both broadcast
      {{5, 1}, {1, 33}},
      {{2, 1, 3, 1, 2}, {1, 4, 1, 3, 1}},
      {{0, 3}, {3}},
      {{2, 64, 33, 17}, {1, 64, 1, 1}},  // large: threaded
      {{70, 300}, {70, 300}},
  };
  // Ten alternating broadcast dims: no plan, the reference runs.
  Shape a(10), b(10);
  for (size_t i = 0; i < 10; ++i) {
    a[i] = i % 2 == 0 ? 2 : 1;
    b[i] = i % 2 == 0 ? 1 : 2;
  }
  s.push_back({a, b});
  for (int64_t n = 1; n <= 70; n += 3) s.push_back({{n}, {n}});
  for (int64_t n = 1; n <= 70; n += 7) s.push_back({{3, n}, {n}});
  return s;
}

TEST(ElementwiseFast, BinaryOpsMatchReferenceExactly) {
  const std::vector<std::pair<std::string, int64_t>> ops = {
      {"Add", 14}, {"Sub", 14}, {"Mul", 14}, {"Div", 14}, {"Max", 13}, {"Min", 13}, {"Sum", 13}};
  uint32_t seed = 1;
  for (const auto& [sa, sb] : binary_shapes()) {
    const Tensor a = random_f32(sa, seed++, -4, 4, true), b = random_f32(sb, seed++, -4, 4, true);
    const int threads = std::max(shape_numel(sa), shape_numel(sb)) > 10000 ? 2 : 1;
    for (const auto& [op, opset] : ops) {
      const ir::Node node = make_node(op, 2, 1);
      auto want = eval(node, opset, {&a, &b}, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        auto got = eval(node, opset, {&a, &b}, isa, threads, true);
        ASSERT_TRUE(got.is_ok()) << got.status().message();
        expect_close((*got)[0], (*want)[0], 0, 0,
                     name_of(isa, op, sa) + " x " + shape_to_string(sb));
      }
    }
  }
}

TEST(ElementwiseFast, PReluMatchesReference) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 5, 7}, {3, 1, 1}}, {{2, 5, 7, 19}, {19}}, {{37}, {1}}, {{4, 9}, {4, 9}}};
  for (const auto& [sx, ss] : shapes) {
    const Tensor x = random_f32(sx, 3, -4, 4, true), s = random_f32(ss, 4, 0, 1);
    const ir::Node node = make_node("PRelu", 2, 1);
    auto want = eval(node, 16, {&x, &s}, best_isa(), 1, false);
    ASSERT_TRUE(want.is_ok());
    for (Isa isa : supported_isas()) {
      auto got = eval(node, 16, {&x, &s}, isa, 1, true);
      ASSERT_TRUE(got.is_ok());
      expect_close((*got)[0], (*want)[0], 0, 0, name_of(isa, "PRelu", sx));
    }
  }
}

TEST(ElementwiseFast, VariadicOpsMatchReference) {
  const Tensor a = random_f32({3, 1, 8}, 1, -4, 4, true), b = random_f32({4, 1}, 2, -4, 4, true),
               c = random_f32({3, 4, 8}, 3, -4, 4, true);
  for (const std::string op : {"Sum", "Mean", "Max", "Min"}) {
    for (const std::vector<const Tensor*>& inputs :
         std::vector<std::vector<const Tensor*>>{{&a}, {&a, &b, &c}, {&c, &a, &b, &c}}) {
      const ir::Node node = make_node(op, inputs.size(), 1);
      auto want = eval(node, 13, inputs, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        auto got = eval(node, 13, inputs, isa, 1, true);
        ASSERT_TRUE(got.is_ok());
        expect_close((*got)[0], (*want)[0], 0, 0,
                     name_of(isa, op, c.shape()) + " of " + std::to_string(inputs.size()));
      }
    }
  }
}

// Other dtypes keep the reference: f64 Add and Gelu give the double formulas exactly.
TEST(ElementwiseFast, OtherDtypesUseTheReference) {
  const Tensor a = Tensor::from_vector<double>({3}, {0.1, -2.5, 3.0});
  const Tensor b = Tensor::from_vector<double>({3}, {1e-17, 0.5, -1.0});
  auto sum = evaluate_node(make_node("Add", 2, 1), 14, {&a, &b});
  ASSERT_TRUE(sum.is_ok());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ((*sum)[0].data<double>()[i], a.data<double>()[i] + b.data<double>()[i]);
  auto gelu = evaluate_node(make_node("Gelu", 1, 1), 20, {&a});
  ASSERT_TRUE(gelu.is_ok());
  for (int i = 0; i < 3; ++i) {
    const double x = a.data<double>()[i];
    EXPECT_DOUBLE_EQ((*gelu)[0].data<double>()[i],
                     0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440)));
  }
}

TEST(ElementwiseFast, SoftmaxMatchesReference) {
  struct Case {
    Shape shape;
    int64_t opset, axis;
  };
  std::vector<Case> cases;
  for (int64_t n = 1; n <= 70; n += 3) cases.push_back({{3, n}, 13, -1});
  cases.push_back({{6, 128, 128}, 13, -1});  // attention scores, threaded
  cases.push_back({{2, 1000}, 13, 1});
  cases.push_back({{4, 5, 6}, 13, 1});  // middle axis: reference
  cases.push_back({{4, 5, 6}, 11, 1});  // coerced to [4, 30]: fast
  cases.push_back({{4, 5, 6}, 11, 0});  // coerced to [1, 120]
  cases.push_back({{0, 7}, 13, -1});
  for (const Case& c : cases) {
    Tensor x = random_f32(c.shape, static_cast<uint32_t>(shape_numel(c.shape)), -30, 30);
    if (x.numel() > 10) x.data<float>()[3] = -kInf;
    for (const std::string op : {"Softmax", "LogSoftmax"}) {
      const ir::Node node = make_node(op, 1, 1, {make_attr("axis", c.axis)});
      auto want = eval(node, c.opset, {&x}, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        auto got = eval(node, c.opset, {&x}, isa, x.numel() > 10000 ? 2 : 1, true);
        ASSERT_TRUE(got.is_ok());
        expect_close((*got)[0], (*want)[0], 2e-6, op == "Softmax" ? 1e-9 : 1e-6,
                     name_of(isa, op, c.shape) + " axis " + std::to_string(c.axis));
      }
    }
  }
}

TEST(ElementwiseFast, ReduceSumAndMeanMatchReference) {
  struct Case {
    Shape shape;
    std::vector<int64_t> axes;
    int64_t keepdims;
  };
  const std::vector<Case> cases = {
      {{128, 384}, {-1}, 1},      // LayerNorm's mean: rows
      {{3, 70}, {1}, 0},          // rows, keepdims 0
      {{2, 3, 5, 7}, {2, 3}, 1},  // global average pool: rows
      {{2, 1, 5, 7}, {2, 3}, 1},  // with a size-1 dim between
      {{7, 33}, {0}, 1},          // columns
      {{2, 49, 19}, {1}, 1},      // NHWC pool: [kept, reduced, kept]
      {{2, 3, 5, 7}, {}, 0},      // everything
      {{2, 3, 5, 7}, {0, 2}, 1},  // [reduced, kept, reduced, kept]: reference
      {{4, 5, 6}, {0, 2}, 0},     // [reduced, kept, reduced]: reference
      {{64, 1024}, {1}, 1},       // threaded rows
      {{1024, 64}, {0}, 1},       // threaded columns
  };
  for (const Case& c : cases) {
    const Tensor x = random_f32(c.shape, 17, -1, 3);
    const Tensor axes = Tensor::from_vector<int64_t>({static_cast<int64_t>(c.axes.size())}, c.axes);
    struct Variant {
      std::string op;
      int64_t opset;
      bool axes_input;
    };
    for (const Variant& v : {Variant{"ReduceSum", 13, true}, Variant{"ReduceMean", 13, false},
                             Variant{"ReduceMean", 18, true}, Variant{"ReduceSum", 11, false}}) {
      std::vector<ir::Attribute> attrs = {make_attr("keepdims", c.keepdims)};
      if (!v.axes_input && !c.axes.empty()) attrs.push_back(make_attr("axes", c.axes));
      const ir::Node node = make_node(v.op, v.axes_input ? 2 : 1, 1, attrs);
      std::vector<const Tensor*> inputs = {&x};
      if (v.axes_input) inputs.push_back(&axes);
      auto want = eval(node, v.opset, inputs, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        auto got = eval(node, v.opset, inputs, isa, x.numel() > 50000 ? 2 : 1, true);
        ASSERT_TRUE(got.is_ok());
        // Values in [-1, 3): sums stay within a few ulps of their magnitude.
        expect_close((*got)[0], (*want)[0], 2e-6, 1e-6,
                     name_of(isa, v.op, c.shape) + " opset " + std::to_string(v.opset));
      }
    }
  }
}

// In-place execution: the output written over an input (the first, or for binary ops one
// that has the output's shape) gives what a separate output gives, fast and reference.
TEST(ElementwiseFast, InPlaceMatchesSeparateOutput) {
  struct Case {
    std::string op;
    int64_t opset;
    std::vector<Tensor> inputs;
    size_t alias;
    std::vector<ir::Attribute> attrs = {};
    double rel = 0;  // folds that start from the aliased input add in another order
  };
  const Tensor big = random_f32({2, 64, 33, 17}, 1, -4, 4, true);
  const Tensor chan = random_f32({1, 64, 1, 1}, 2);
  const Tensor x = random_f32({3, 5, 70}, 3, -4, 4, true), y = random_f32({3, 5, 70}, 4);
  const Tensor row = random_f32({70}, 5);
  const Tensor half = Tensor::from_vector<Float16>(
      {2, 3},
      {Float16(0.5f), Float16(-1.0f), Float16(2.0f), Float16(0.0f), Float16(1.0f), Float16(3.0f)});
  std::vector<Case> cases = {
      {"Gelu", 20, {big}, 0},
      {"Relu", 14, {x}, 0},
      {"Sigmoid", 13, {x}, 0},
      {"Clip", 13, {x, Tensor::scalar<float>(-1.0f), Tensor::scalar<float>(1.0f)}, 0},
      {"Add", 14, {big, chan}, 0},
      {"Mul", 14, {chan, big}, 1},
      {"Sub", 14, {x, row}, 0},
      {"Div", 14, {row, x}, 1},
      {"Add", 14, {x, x}, 0},
      {"Add", 14, {x, y}, 1},
      {"Pow", 15, {x, Tensor::scalar<float>(2.0f)}, 0},
      {"PRelu", 16, {x, row}, 0},
      {"Sum", 13, {row, y, x}, 2, {}, 1e-6},  // the aliased input comes last
      {"Sum", 13, {x, row, x}, 0, {}, 1e-6},  // shared by two inputs
      {"Max", 13, {x, x, x}, 0},              // shared by three: through a temporary
      {"Mean", 13, {y, row, x, row}, 2, {}, 1e-6},
      {"Where", 16, {random_f32({3, 5, 70}, 6), x, y}, 1},
      {"Softmax", 13, {x}, 0},
      {"LogSoftmax", 13, {x}, 0},
      {"Softmax", 13, {half}, 0},
      {"Cast", 13, {x}, 0, {make_attr("to", int64_t{1})}},
  };
  // Where needs a bool condition.
  {
    Tensor cond = Tensor::empty(DataType::kBool, {3, 5, 70});
    for (int64_t i = 0; i < cond.numel(); ++i) cond.data<bool>()[i] = i % 3 == 0;
    for (Case& c : cases)
      if (c.op == "Where") c.inputs[0] = cond;
  }
  ThreadPool pool(2);
  for (const Case& c : cases) {
    const ir::Node node = make_node(c.op, c.inputs.size(), 1, c.attrs);
    std::vector<const Tensor*> ptrs;
    for (const Tensor& t : c.inputs) ptrs.push_back(&t);
    for (bool fast : {true, false}) {
      std::optional<ReferenceKernels> ref;
      if (!fast) ref.emplace();
      for (Isa isa : supported_isas()) {
        const std::string what = name_of(isa, c.op, c.inputs[c.alias].shape()) +
                                 (fast ? " fast" : " reference") + " in place over input " +
                                 std::to_string(c.alias);
        EvaluateOptions o;
        o.isa = isa;
        o.inputs_are_constant = false;
        auto want = evaluate_node(node, c.opset, ptrs, o);
        ASSERT_TRUE(want.is_ok()) << what << ": " << want.status().message();
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          // Fresh copies; inputs that are one tensor in the case stay one buffer.
          std::vector<Tensor> inputs;
          for (size_t i = 0; i < c.inputs.size(); ++i) {
            inputs.push_back(c.inputs[i].clone());
            for (size_t j = 0; j < i; ++j)
              if (c.inputs[i].raw_data() == c.inputs[j].raw_data()) inputs[i] = inputs[j];
          }
          auto got = run_in_place(node, c.opset, inputs, c.alias, isa, p);
          ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().message();
          ASSERT_EQ(got->raw_data(), inputs[c.alias].raw_data());
          if (got->dtype() == DataType::kFloat32) {
            expect_close(*got, (*want)[0], c.rel, c.rel, what);
          } else {
            for (int64_t i = 0; i < got->numel(); ++i)
              EXPECT_EQ(got->element_as_double(i), (*want)[0].element_as_double(i)) << what;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace brink::ops
