#include <gtest/gtest.h>

#include <limits>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

using ir::Dim;

template <typename T>
std::vector<T> vals(const Tensor& t) {
  if (!t.defined()) return {};
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

Tensor i64s(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

Tensor iota_f32(const Shape& shape) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector<float>(shape, v);
}

// Runs one node; fails the test (with the message) when it errors.
std::vector<Tensor> run(const ir::Node& node, int64_t opset,
                        const std::vector<const Tensor*>& inputs) {
  auto out = evaluate_node(node, opset, inputs);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return out.is_ok() ? std::move(out).value() : std::vector<Tensor>(node.outputs.size());
}

// Load-time inference only: input types (maybe symbolic) and the values known so far.
Result<std::vector<TensorType>> infer(const ir::Node& node, int64_t opset,
                                      const std::vector<TensorType>& types,
                                      const std::vector<const Tensor*>& values = {}) {
  const OpDef* def = OpRegistry::global().find(node.domain, node.op_type, opset);
  if (!def) return unsupported("no def");
  std::vector<const TensorType*> ptrs;
  for (const TensorType& t : types) ptrs.push_back(t.dtype == DataType::kUndefined ? nullptr : &t);
  std::vector<const Tensor*> v = values;
  v.resize(types.size(), nullptr);
  InferContext ctx(node, opset, ptrs, v);
  BRINK_RETURN_IF_ERROR(def->infer(ctx));
  return ctx.outputs();
}

TensorType sym(DataType t, std::vector<Dim> dims) {
  return TensorType(t, std::move(dims));
}
TensorType i64_vector(int64_t n) {
  return TensorType::of(DataType::kInt64, {n});
}

// ---- Reshape / Flatten / Squeeze / Unsqueeze ------------------------------------------

TEST(ShapeOps, ReshapeCopiesZeroAndInfersMinusOne) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor shape = i64s({0, -1});
  auto out = run(make_node("Reshape", 2, 1), 14, {&x, &shape});
  EXPECT_EQ(out[0].shape(), (Shape{2, 12}));
  EXPECT_EQ(vals<float>(out[0]), vals<float>(x));
}

TEST(ShapeOps, ReshapeAllowZeroKeepsZeroAsSize) {
  Tensor x = Tensor::zeros(DataType::kFloat32, {0, 3});
  Tensor shape = i64s({3, 0});
  auto out =
      run(make_node("Reshape", 2, 1, {make_attr("allowzero", int64_t{1})}), 14, {&x, &shape});
  EXPECT_EQ(out[0].shape(), (Shape{3, 0}));
  // Before opset 14 there is no allowzero: 0 copies the input dim.
  Tensor y = iota_f32({2, 3});
  Tensor s2 = i64s({3, 0});
  EXPECT_FALSE(evaluate_node(make_node("Reshape", 2, 1), 13, {&y, &s2}).is_ok());
}

TEST(ShapeOps, ReshapeRejectsWrongElementCount) {
  Tensor x = iota_f32({2, 3});
  Tensor shape = i64s({4, -1});
  auto out = evaluate_node(make_node("Reshape", 2, 1), 14, {&x, &shape});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("cannot reshape"), std::string::npos)
      << out.status().message();
}

TEST(ShapeOps, ReshapeSolvesMinusOneSymbolically) {
  Tensor shape = i64s({0, 0, 12, -1});
  auto t = infer(make_node("Reshape", 2, 1), 14,
                 {sym(DataType::kFloat32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(768)}),
                  i64_vector(4)},
                 {nullptr, &shape});
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)[0].to_string(), "f32[batch, seq, 12, 64]");

  Tensor back = i64s({0, -1, 768});
  t = infer(make_node("Reshape", 2, 1), 14,
            {sym(DataType::kFloat32, {Dim::symbol("batch"), Dim::symbol("seq"), Dim(12), Dim(64)}),
             i64_vector(3)},
            {nullptr, &back});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "f32[batch, seq, 768]");

  // Unknown shape value: only the rank is known.
  t = infer(make_node("Reshape", 2, 1), 14,
            {sym(DataType::kFloat32, {Dim::symbol("b")}), i64_vector(3)});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "f32[?, ?, ?]");
}

TEST(ShapeOps, FlattenKeepsBatchSymbolAndHandlesAxes) {
  auto t = infer(make_node("Flatten", 1, 1), 13,
                 {sym(DataType::kFloat32, {Dim::symbol("N"), Dim(2048), Dim(1), Dim(1)})});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "f32[N, 2048]");
  Tensor x = iota_f32({2, 3, 4});
  EXPECT_EQ(run(make_node("Flatten", 1, 1, {make_attr("axis", int64_t{0})}), 13, {&x})[0].shape(),
            (Shape{1, 24}));
  EXPECT_EQ(run(make_node("Flatten", 1, 1, {make_attr("axis", int64_t{-1})}), 13, {&x})[0].shape(),
            (Shape{6, 4}));
  EXPECT_EQ(run(make_node("Flatten", 1, 1, {make_attr("axis", int64_t{3})}), 13, {&x})[0].shape(),
            (Shape{24, 1}));
  EXPECT_FALSE(
      evaluate_node(make_node("Flatten", 1, 1, {make_attr("axis", int64_t{4})}), 13, {&x}).is_ok());
}

TEST(ShapeOps, SqueezeAxesAttributeBefore13InputFrom13) {
  Tensor x = iota_f32({1, 3, 1, 2});
  auto a = run(make_node("Squeeze", 1, 1, {make_attr("axes", std::vector<int64_t>{-2})}), 11, {&x});
  EXPECT_EQ(a[0].shape(), (Shape{1, 3, 2}));
  Tensor axes = i64s({0});
  auto b = run(make_node("Squeeze", 2, 1), 13, {&x, &axes});
  EXPECT_EQ(b[0].shape(), (Shape{3, 1, 2}));
  auto c = run(make_node("Squeeze", 1, 1), 13, {&x});
  EXPECT_EQ(c[0].shape(), (Shape{3, 2}));
  Tensor bad = i64s({1});
  EXPECT_FALSE(evaluate_node(make_node("Squeeze", 2, 1), 13, {&x, &bad}).is_ok());
}

TEST(ShapeOps, UnsqueezePropagatesSymbolsAndChecksAxes) {
  Tensor axes = i64s({0, -1});
  auto t = infer(make_node("Unsqueeze", 2, 1), 13,
                 {sym(DataType::kInt64, {Dim::symbol("batch"), Dim::symbol("seq")}), i64_vector(2)},
                 {nullptr, &axes});
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)[0].to_string(), "i64[1, batch, seq, 1]");
  Tensor x = Tensor::from_vector<bool>({2}, {true, false});
  auto out =
      run(make_node("Unsqueeze", 1, 1, {make_attr("axes", std::vector<int64_t>{1})}), 11, {&x});
  EXPECT_EQ(out[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(vals<bool>(out[0]), (std::vector<bool>{true, false}));
  Tensor dup = i64s({1, 1});
  EXPECT_FALSE(evaluate_node(make_node("Unsqueeze", 2, 1), 13, {&x, &dup}).is_ok());
}

// ---- Transpose / Concat / Split ---------------------------------------------------------

TEST(ShapeOps, TransposeDefaultReversesAndPermKeepsSymbols) {
  Tensor x = iota_f32({2, 3});
  auto out = run(make_node("Transpose", 1, 1), 13, {&x});
  EXPECT_EQ(out[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  auto t =
      infer(make_node("Transpose", 1, 1, {make_attr("perm", std::vector<int64_t>{0, 2, 1, 3})}), 13,
            {sym(DataType::kFloat16, {Dim::symbol("b"), Dim::symbol("s"), Dim(12), Dim(64)})});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "f16[b, 12, s, 64]");
}

// The batched 2-D fast path (NCHW <-> NHWC and friends, merged axes, size-1 axes anywhere)
// against index arithmetic, on 1 and 2 threads, for 32-bit types; other permutations and
// sizes take the general strided copy and must agree too.
TEST(ShapeOps, TransposeMatchesIndexArithmeticOnAwkwardShapes) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{1, 3, 224, 224}, {0, 2, 3, 1}}, {{1, 224, 224, 3}, {0, 3, 1, 2}},
      {{2, 17, 33, 5}, {0, 2, 3, 1}},   {{2, 5, 17, 33}, {0, 3, 1, 2}},
      {{1, 64, 56, 56}, {0, 2, 3, 1}},  {{3, 1, 1, 7}, {0, 2, 3, 1}},
      {{1, 1, 1, 1}, {0, 3, 1, 2}},     {{129, 257}, {1, 0}},
      {{4, 1000, 3}, {0, 2, 1}},        {{1, 4, 1, 6, 3}, {0, 3, 4, 1, 2}},
      {{2, 3, 4, 5}, {2, 0, 1, 3}},     {{2, 3, 4, 5}, {3, 2, 1, 0}},
      {{7, 300, 1, 9}, {2, 0, 3, 1}},
  };
  for (const Case& c : cases) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::PrintToString(c.shape) + " perm " + ::testing::PrintToString(c.perm) +
                   " threads " + std::to_string(threads));
      const Tensor x = iota_f32(c.shape);
      ir::Node node = make_node("Transpose", 1, 1, {make_attr("perm", c.perm)});
      EvaluateOptions options;
      options.num_threads = threads;
      auto out = evaluate_node(node, 13, {&x}, options);
      ASSERT_TRUE(out.is_ok()) << out.status().message();
      const Tensor& y = (*out)[0];
      const size_t r = c.shape.size();
      ASSERT_EQ(y.shape().size(), r);
      for (size_t i = 0; i < r; ++i) ASSERT_EQ(y.dim(static_cast<int64_t>(i)), c.shape[c.perm[i]]);
      // y[o] = x[index of o under the permutation]
      std::vector<int64_t> in_strides(r, 1);
      for (size_t i = r - 1; i > 0; --i) in_strides[i - 1] = in_strides[i] * c.shape[i];
      std::vector<int64_t> idx(r, 0);
      int mismatches = 0;
      for (int64_t o = 0; o < y.numel(); ++o) {
        int64_t src = 0;
        for (size_t i = 0; i < r; ++i) src += idx[i] * in_strides[static_cast<size_t>(c.perm[i])];
        if (y.data<float>()[o] != x.data<float>()[src] && mismatches++ < 3)
          ADD_FAILURE() << "element " << o << " is " << y.data<float>()[o] << ", expected "
                        << x.data<float>()[src];
        for (size_t i = r; i-- > 0;) {
          if (++idx[i] < y.dim(static_cast<int64_t>(i))) break;
          idx[i] = 0;
        }
      }
    }
  }
}

TEST(ShapeOps, TransposeMovesFloat16AndBool) {
  std::vector<Float16> h;
  for (int i = 0; i < 24; ++i) h.emplace_back(static_cast<float>(i));
  Tensor x = Tensor::from_vector<Float16>({2, 3, 4}, h);
  auto out = run(make_node("Transpose", 1, 1, {make_attr("perm", std::vector<int64_t>{2, 0, 1})}),
                 13, {&x});
  ASSERT_EQ(out[0].shape(), (Shape{4, 2, 3}));
  // out[k][i][j] = x[i][j][k] = 12i + 4j + k
  EXPECT_EQ(static_cast<float>(out[0].data<Float16>()[1 * 6 + 1 * 3 + 2]), 12.0f + 8.0f + 1.0f);
  Tensor b = Tensor::from_vector<bool>({2, 2}, {true, false, false, false});
  EXPECT_EQ(vals<bool>(run(make_node("Transpose", 1, 1), 13, {&b})[0]),
            (std::vector<bool>{true, false, false, false}));
}

TEST(ShapeOps, ConcatJoinsAlongAxisAndChecksOtherDims) {
  Tensor a = Tensor::from_vector<int64_t>({2, 1}, {1, 2});
  Tensor b = Tensor::from_vector<int64_t>({2, 2}, {3, 4, 5, 6});
  auto out = run(make_node("Concat", 2, 1, {make_attr("axis", int64_t{-1})}), 13, {&a, &b});
  EXPECT_EQ(out[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<int64_t>(out[0]), (std::vector<int64_t>{1, 3, 4, 2, 5, 6}));
  Tensor c = Tensor::zeros(DataType::kInt64, {3, 1});
  EXPECT_FALSE(
      evaluate_node(make_node("Concat", 2, 1, {make_attr("axis", int64_t{1})}), 13, {&a, &c})
          .is_ok());
  auto t = infer(make_node("Concat", 2, 1, {make_attr("axis", int64_t{1})}), 13,
                 {sym(DataType::kFloat32, {Dim::symbol("n"), Dim(2)}),
                  sym(DataType::kFloat32, {Dim::symbol("n"), Dim(3)})});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "f32[n, 5]");
}

TEST(ShapeOps, SplitByAttributeInputAndNumOutputs) {
  Tensor x = iota_f32({7});
  auto a =
      run(make_node("Split", 1, 2, {make_attr("split", std::vector<int64_t>{3, 4})}), 11, {&x});
  EXPECT_EQ(vals<float>(a[1]), (std::vector<float>{3, 4, 5, 6}));
  Tensor sizes = i64s({2, 0, 5});
  auto b = run(make_node("Split", 2, 3), 13, {&x, &sizes});
  EXPECT_EQ(b[1].shape(), (Shape{0}));
  EXPECT_EQ(b[2].shape(), (Shape{5}));
  // num_outputs with an uneven split: chunks of ceil(7/3) = 3, the last one smaller.
  auto c = run(make_node("Split", 1, 3, {make_attr("num_outputs", int64_t{3})}), 18, {&x});
  EXPECT_EQ(c[0].shape(), (Shape{3}));
  EXPECT_EQ(c[2].shape(), (Shape{1}));
  EXPECT_EQ(vals<float>(c[2]), (std::vector<float>{6}));
  // Without num_outputs an uneven equal split is an error.
  EXPECT_FALSE(evaluate_node(make_node("Split", 1, 3), 13, {&x}).is_ok());
  Tensor m = iota_f32({2, 4});
  auto d = run(make_node("Split", 1, 2, {make_attr("axis", int64_t{1})}), 13, {&m});
  EXPECT_EQ(vals<float>(d[0]), (std::vector<float>{0, 1, 4, 5}));
  EXPECT_EQ(vals<float>(d[1]), (std::vector<float>{2, 3, 6, 7}));
}

// ---- Slice ----------------------------------------------------------------------------

TEST(ShapeOps, SliceOpset1UsesAttributes) {
  Tensor x = iota_f32({3, 4});
  auto out = run(make_node("Slice", 1, 1,
                           {make_attr("starts", std::vector<int64_t>{1}),
                            make_attr("ends", std::vector<int64_t>{1000}),
                            make_attr("axes", std::vector<int64_t>{1})}),
                 9, {&x});
  EXPECT_EQ(out[0].shape(), (Shape{3, 3}));
  EXPECT_EQ(vals<float>(out[0])[0], 1.0f);
}

TEST(ShapeOps, SliceNegativeStepsClampingAndInt64Max) {
  Tensor x = iota_f32({10});
  const int64_t kMax = std::numeric_limits<int64_t>::max(),
                kMin = std::numeric_limits<int64_t>::min();
  Tensor s = i64s({-1}), e = i64s({kMin}), ax = i64s({0}), st = i64s({-3});
  auto out = run(make_node("Slice", 5, 1), 13, {&x, &s, &e, &ax, &st});
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{9, 6, 3, 0}));
  Tensor s2 = i64s({2}), e2 = i64s({kMax});
  out = run(make_node("Slice", 3, 1), 13, {&x, &s2, &e2});
  EXPECT_EQ(out[0].shape(), (Shape{8}));
  Tensor s3 = i64s({100}), e3 = i64s({200});
  out = run(make_node("Slice", 3, 1), 13, {&x, &s3, &e3});
  EXPECT_EQ(out[0].shape(), (Shape{0}));
  Tensor s4 = i64s({20}), e4 = i64s({-20}), st4 = i64s({-4});
  out = run(make_node("Slice", 5, 1), 13, {&x, &s4, &e4, nullptr, &st4});
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{9, 5, 1}));
  Tensor zero = i64s({0});
  EXPECT_FALSE(evaluate_node(make_node("Slice", 5, 1), 13, {&x, &s2, &e2, &ax, &zero}).is_ok());
}

TEST(ShapeOps, SliceInt32IndicesOnTwoAxes) {
  Tensor x = iota_f32({3, 4});
  Tensor s = Tensor::from_vector<int32_t>({2}, {0, 3}),
         e = Tensor::from_vector<int32_t>({2}, {2, 0});
  Tensor ax = Tensor::from_vector<int32_t>({2}, {0, -1}),
         st = Tensor::from_vector<int32_t>({2}, {1, -2});
  auto out = run(make_node("Slice", 5, 1), 13, {&x, &s, &e, &ax, &st});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{3, 1, 7, 5}));
}

TEST(ShapeOps, SliceInfersKnownStartsAndKeepsFullSymbolicRange) {
  Tensor s = i64s({0, 1}), e = i64s({std::numeric_limits<int64_t>::max(), 3}), ax = i64s({0, 1});
  auto t = infer(make_node("Slice", 4, 1), 13,
                 {sym(DataType::kFloat32, {Dim::symbol("b"), Dim(5)}), i64_vector(2), i64_vector(2),
                  i64_vector(2)},
                 {nullptr, &s, &e, &ax});
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)[0].to_string(), "f32[b, 2]");
}

// ---- Gather / Scatter -------------------------------------------------------------------

TEST(ShapeOps, GatherNegativeIndicesAndShapes) {
  Tensor x = iota_f32({3, 2});
  Tensor ind = Tensor::from_vector<int64_t>({2, 2}, {0, -1, 2, 1});
  auto out = run(make_node("Gather", 2, 1), 13, {&x, &ind});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{0, 1, 4, 5, 4, 5, 2, 3}));
  Tensor col = Tensor::scalar<int32_t>(1);
  out = run(make_node("Gather", 2, 1, {make_attr("axis", int64_t{1})}), 13, {&x, &col});
  EXPECT_EQ(out[0].shape(), (Shape{3}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{1, 3, 5}));
  Tensor bad = Tensor::scalar<int64_t>(3);
  auto err = evaluate_node(make_node("Gather", 2, 1), 13, {&x, &bad});
  ASSERT_FALSE(err.is_ok());
  EXPECT_NE(err.status().message().find("out of range"), std::string::npos);
}

TEST(ShapeOps, GatherElementsAlongAxis) {
  Tensor x = Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4});
  Tensor ind = Tensor::from_vector<int64_t>({2, 2}, {0, 0, -1, 0});
  auto out =
      run(make_node("GatherElements", 2, 1, {make_attr("axis", int64_t{1})}), 13, {&x, &ind});
  EXPECT_EQ(vals<int32_t>(out[0]), (std::vector<int32_t>{1, 1, 4, 3}));
}

TEST(ShapeOps, GatherNDWithBatchDims) {
  Tensor x = Tensor::from_vector<int32_t>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor ind = Tensor::from_vector<int64_t>({2, 1}, {1, 0});
  auto out =
      run(make_node("GatherND", 2, 1, {make_attr("batch_dims", int64_t{1})}), 13, {&x, &ind});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<int32_t>(out[0]), (std::vector<int32_t>{2, 3, 4, 5}));
  Tensor ind2 = Tensor::from_vector<int64_t>({2, 3}, {0, 1, 1, 1, 0, -1});
  out = run(make_node("GatherND", 2, 1), 11, {&x, &ind2});
  EXPECT_EQ(vals<int32_t>(out[0]), (std::vector<int32_t>{3, 5}));
}

TEST(ShapeOps, ScatterNDReductionsByOpset) {
  Tensor x = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  Tensor ind = Tensor::from_vector<int64_t>({3, 1}, {1, 1, 3});
  Tensor upd = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto add = run(make_node("ScatterND", 3, 1, {make_attr("reduction", std::string("add"))}), 16,
                 {&x, &ind, &upd});
  EXPECT_EQ(vals<float>(add[0]), (std::vector<float>{1, 32, 3, 34}));
  auto mx = run(make_node("ScatterND", 3, 1, {make_attr("reduction", std::string("min"))}), 18,
                {&x, &ind, &upd});
  EXPECT_EQ(vals<float>(mx[0]), (std::vector<float>{1, 2, 3, 4}));
  auto err =
      evaluate_node(make_node("ScatterND", 3, 1, {make_attr("reduction", std::string("max"))}), 16,
                    {&x, &ind, &upd});
  ASSERT_FALSE(err.is_ok());
  EXPECT_NE(err.status().message().find("reduction"), std::string::npos);
}

TEST(ShapeOps, ScatterElementsMulAndNone) {
  Tensor x = Tensor::from_vector<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor ind = Tensor::from_vector<int64_t>({1, 2}, {2, -3});
  Tensor upd = Tensor::from_vector<int64_t>({1, 2}, {10, 7});
  auto mul =
      run(make_node("ScatterElements", 3, 1,
                    {make_attr("axis", int64_t{1}), make_attr("reduction", std::string("mul"))}),
          16, {&x, &ind, &upd});
  EXPECT_EQ(vals<int64_t>(mul[0]), (std::vector<int64_t>{7, 2, 30, 4, 5, 6}));
  auto none = run(make_node("ScatterElements", 3, 1, {make_attr("axis", int64_t{1})}), 11,
                  {&x, &ind, &upd});
  EXPECT_EQ(vals<int64_t>(none[0]), (std::vector<int64_t>{7, 2, 10, 4, 5, 6}));
}

// ---- Shape, Size, Constant, ConstantOfShape -------------------------------------------

TEST(ShapeOps, ShapeWithStartAndEnd) {
  Tensor x = Tensor::zeros(DataType::kBool, {2, 3, 4, 5});
  auto out =
      run(make_node("Shape", 1, 1, {make_attr("start", int64_t{1}), make_attr("end", int64_t{-1})}),
          15, {&x});
  EXPECT_EQ(vals<int64_t>(out[0]), (std::vector<int64_t>{3, 4}));
  out = run(
      make_node("Shape", 1, 1, {make_attr("start", int64_t{-10}), make_attr("end", int64_t{10})}),
      15, {&x});
  EXPECT_EQ(vals<int64_t>(out[0]), (std::vector<int64_t>{2, 3, 4, 5}));
  // Before opset 15 start/end do not exist.
  out = run(make_node("Shape", 1, 1, {make_attr("start", int64_t{2})}), 13, {&x});
  EXPECT_EQ(out[0].numel(), 4);
  auto t =
      infer(make_node("Shape", 1, 1), 15, {sym(DataType::kFloat32, {Dim::symbol("b"), Dim(3)})});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "i64[2]");
}

TEST(ShapeOps, SizeCountsElements) {
  Tensor x = Tensor::zeros(DataType::kFloat16, {2, 3, 4});
  auto out = run(make_node("Size", 1, 1), 13, {&x});
  EXPECT_EQ(out[0].shape(), Shape{});
  EXPECT_EQ(out[0].data<int64_t>()[0], 24);
}

TEST(ShapeOps, ConstantFromEachAttributeKind) {
  auto a = run(make_node("Constant", 0, 1, {make_attr("value_ints", std::vector<int64_t>{4, 5})}),
               13, {});
  EXPECT_EQ(vals<int64_t>(a[0]), (std::vector<int64_t>{4, 5}));
  auto b = run(make_node("Constant", 0, 1, {make_attr("value_float", 2.5f)}), 13, {});
  EXPECT_EQ(b[0].shape(), Shape{});
  EXPECT_EQ(b[0].data<float>()[0], 2.5f);
  auto c = run(make_node("Constant", 0, 1,
                         {make_attr("value", Tensor::from_vector<bool>({2}, {true, false}))}),
               13, {});
  EXPECT_EQ(vals<bool>(c[0]), (std::vector<bool>{true, false}));
  ir::Attribute sparse = make_attr("sparse_value", Tensor::scalar<float>(1));
  auto d = evaluate_node(make_node("Constant", 0, 1, {sparse}), 13, {});
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(d.status().message().find("sparse_value"), std::string::npos);
}

TEST(ShapeOps, ConstantOfShapeFillsValueAndDefaultsToFloatZero) {
  Tensor shape = i64s({2, 3});
  auto a = run(make_node("ConstantOfShape", 1, 1), 9, {&shape});
  EXPECT_EQ(a[0].dtype(), DataType::kFloat32);
  EXPECT_EQ(vals<float>(a[0]), std::vector<float>(6, 0.0f));
  auto b = run(make_node("ConstantOfShape", 1, 1,
                         {make_attr("value", Tensor::from_vector<int32_t>({1}, {7}))}),
               9, {&shape});
  EXPECT_EQ(vals<int32_t>(b[0]), std::vector<int32_t>(6, 7));
  Tensor empty = Tensor::zeros(DataType::kInt64, {0});
  EXPECT_EQ(run(make_node("ConstantOfShape", 1, 1), 9, {&empty})[0].shape(), Shape{});
}

// ---- Expand, Tile, Range, Identity, Dropout ------------------------------------------

TEST(ShapeOps, ExpandBroadcastsBothWays) {
  Tensor x = Tensor::from_vector<float>({3, 1}, {1, 2, 3});
  Tensor shape = i64s({2, 1, 2});
  auto out = run(make_node("Expand", 2, 1), 13, {&x, &shape});
  EXPECT_EQ(out[0].shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  Tensor bad = i64s({4, 2});
  EXPECT_FALSE(evaluate_node(make_node("Expand", 2, 1), 13, {&x, &bad}).is_ok());
}

TEST(ShapeOps, TileRepeatsEachAxis) {
  Tensor x = Tensor::from_vector<int8_t>({2, 2}, {1, 2, 3, 4});
  Tensor reps = i64s({1, 2});
  auto out = run(make_node("Tile", 2, 1), 13, {&x, &reps});
  EXPECT_EQ(vals<int8_t>(out[0]), (std::vector<int8_t>{1, 2, 1, 2, 3, 4, 3, 4}));
  Tensor reps2 = i64s({2, 1});
  out = run(make_node("Tile", 2, 1), 13, {&x, &reps2});
  EXPECT_EQ(vals<int8_t>(out[0]), (std::vector<int8_t>{1, 2, 3, 4, 1, 2, 3, 4}));
}

TEST(ShapeOps, RangeCountsLikeCeil) {
  Tensor s = Tensor::scalar<int32_t>(10), l = Tensor::scalar<int32_t>(1),
         d = Tensor::scalar<int32_t>(-3);
  auto out = run(make_node("Range", 3, 1), 11, {&s, &l, &d});
  EXPECT_EQ(vals<int32_t>(out[0]), (std::vector<int32_t>{10, 7, 4}));
  Tensor fs = Tensor::scalar<float>(0), fl = Tensor::scalar<float>(1),
         fd = Tensor::scalar<float>(0.3f);
  out = run(make_node("Range", 3, 1), 11, {&fs, &fl, &fd});
  EXPECT_EQ(out[0].shape(), (Shape{4}));
  Tensor zero = Tensor::scalar<float>(0);
  EXPECT_FALSE(evaluate_node(make_node("Range", 3, 1), 11, {&fs, &fl, &zero}).is_ok());
}

TEST(ShapeOps, IdentityCopiesAnyDtype) {
  Tensor x = Tensor::from_vector<uint16_t>({3}, {1, 2, 65535});
  EXPECT_EQ(vals<uint16_t>(run(make_node("Identity", 1, 1), 16, {&x})[0]),
            (std::vector<uint16_t>{1, 2, 65535}));
}

TEST(ShapeOps, DropoutInInferenceIsIdentityWithTrueMask) {
  Tensor x = Tensor::from_vector<float>({3}, {1, -2, 3});
  auto a = run(make_node("Dropout", 1, 2, {make_attr("ratio", 0.5f)}), 10, {&x});
  EXPECT_EQ(vals<float>(a[0]), vals<float>(x));
  EXPECT_EQ(a[1].dtype(), DataType::kBool);
  EXPECT_EQ(vals<bool>(a[1]), (std::vector<bool>{true, true, true}));
  // Opset 7-9: the mask has the input's type.
  auto b = run(make_node("Dropout", 1, 2), 7, {&x});
  EXPECT_EQ(b[1].dtype(), DataType::kFloat32);
  EXPECT_EQ(vals<float>(b[1]), (std::vector<float>{1, 1, 1}));
  Tensor ratio = Tensor::scalar<float>(0.0f), train = Tensor::scalar<bool>(true);
  auto c = run(make_node("Dropout", 3, 2), 13, {&x, &ratio, &train});
  EXPECT_EQ(vals<float>(c[0]), vals<float>(x));
  Tensor ratio2 = Tensor::scalar<float>(0.3f);
  auto d = evaluate_node(make_node("Dropout", 3, 1), 13, {&x, &ratio2, &train});
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(d.status().message().find("training_mode"), std::string::npos);
  // Not known at load (graph inputs): the check happens at run.
  d = evaluate_node(make_node("Dropout", 3, 1), 13, {&x, &ratio2, &train},
                    /*inputs_are_constant=*/false);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnsupported);
}

// ---- NonZero, Trilu, DepthToSpace, SpaceToDepth, EyeLike ---------------------------------

TEST(ShapeOps, NonZeroListsIndicesPerDim) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 0, -0.0f, 3});
  auto out = run(make_node("NonZero", 1, 1), 13, {&x});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<int64_t>(out[0]), (std::vector<int64_t>{0, 1, 0, 1}));
  // Unknown at load: the count is data-dependent.
  auto t =
      infer(make_node("NonZero", 1, 1), 13, {sym(DataType::kBool, {Dim(3), Dim::symbol("n")})});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ((*t)[0].to_string(), "i64[2, ?]");
  Tensor s = Tensor::scalar<int32_t>(5);
  EXPECT_EQ(run(make_node("NonZero", 1, 1), 13, {&s})[0].shape(), (Shape{0, 1}));
  // Not constant: the kernel allocates the output itself.
  auto r = evaluate_node(make_node("NonZero", 1, 1), 13, {&x}, false);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 2}));
}

TEST(ShapeOps, TriluUpperAndLowerWithK) {
  Tensor x = Tensor::from_vector<int32_t>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto up = run(make_node("Trilu", 1, 1), 14, {&x});
  EXPECT_EQ(vals<int32_t>(up[0]), (std::vector<int32_t>{1, 2, 3, 0, 5, 6, 0, 0, 9}));
  Tensor k = Tensor::scalar<int64_t>(-1);
  auto low = run(make_node("Trilu", 2, 1, {make_attr("upper", int64_t{0})}), 14, {&x, &k});
  EXPECT_EQ(vals<int32_t>(low[0]), (std::vector<int32_t>{0, 0, 0, 4, 0, 0, 7, 8, 0}));
}

TEST(ShapeOps, DepthToSpaceModesAndSpaceToDepthRoundTrip) {
  Tensor x = iota_f32({1, 8, 1, 1});
  auto dcr = run(make_node("DepthToSpace", 1, 1, {make_attr("blocksize", int64_t{2})}), 13, {&x});
  EXPECT_EQ(dcr[0].shape(), (Shape{1, 2, 2, 2}));
  EXPECT_EQ(vals<float>(dcr[0]), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
  auto crd =
      run(make_node("DepthToSpace", 1, 1,
                    {make_attr("blocksize", int64_t{2}), make_attr("mode", std::string("CRD"))}),
          13, {&x});
  EXPECT_EQ(vals<float>(crd[0]), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  Tensor img = iota_f32({2, 3, 4, 6});
  auto s2d = run(make_node("SpaceToDepth", 1, 1, {make_attr("blocksize", int64_t{2})}), 13, {&img});
  EXPECT_EQ(s2d[0].shape(), (Shape{2, 12, 2, 3}));
  auto back =
      run(make_node("DepthToSpace", 1, 1, {make_attr("blocksize", int64_t{2})}), 13, {&s2d[0]});
  EXPECT_EQ(vals<float>(back[0]), vals<float>(img));
}

TEST(ShapeOps, EyeLikeWithOffsetAndDtype) {
  Tensor x = Tensor::zeros(DataType::kInt32, {2, 3});
  auto out =
      run(make_node("EyeLike", 1, 1, {make_attr("k", int64_t{1}), make_attr("dtype", int64_t{11})}),
          9, {&x});
  EXPECT_EQ(out[0].dtype(), DataType::kFloat64);
  EXPECT_EQ(vals<double>(out[0]), (std::vector<double>{0, 1, 0, 0, 0, 1}));
}

// ---- OneHot, Compress, ReverseSequence, Unique -------------------------------------------

TEST(ShapeOps, OneHotAxisAndNegativeIndices) {
  Tensor ind = Tensor::from_vector<int64_t>({3}, {0, -1, 7});
  Tensor depth = Tensor::scalar<int64_t>(3);
  Tensor values = Tensor::from_vector<float>({2}, {-1, 5});
  auto out = run(make_node("OneHot", 3, 1), 11, {&ind, &depth, &values});
  EXPECT_EQ(out[0].shape(), (Shape{3, 3}));
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{5, -1, -1, -1, -1, 5, -1, -1, -1}));
  auto t =
      run(make_node("OneHot", 3, 1, {make_attr("axis", int64_t{0})}), 11, {&ind, &depth, &values});
  EXPECT_EQ(vals<float>(t[0]), (std::vector<float>{5, -1, -1, -1, -1, -1, -1, 5, -1}));
  // Opset 9 has no negative indices: -1 is out of range.
  auto old = run(make_node("OneHot", 3, 1), 9, {&ind, &depth, &values});
  EXPECT_EQ(vals<float>(old[0])[5], -1.0f);
}

TEST(ShapeOps, CompressWithAndWithoutAxis) {
  Tensor x = iota_f32({3, 2});
  Tensor cond = Tensor::from_vector<bool>({2}, {false, true});
  auto a = run(make_node("Compress", 2, 1, {make_attr("axis", int64_t{0})}), 11, {&x, &cond});
  EXPECT_EQ(a[0].shape(), (Shape{1, 2}));
  EXPECT_EQ(vals<float>(a[0]), (std::vector<float>{2, 3}));
  auto b = run(make_node("Compress", 2, 1), 11, {&x, &cond});
  EXPECT_EQ(vals<float>(b[0]), (std::vector<float>{1}));
  auto c = evaluate_node(make_node("Compress", 2, 1, {make_attr("axis", int64_t{-1})}), 11,
                         {&x, &cond}, false);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(vals<float>((*c)[0]), (std::vector<float>{1, 3, 5}));
}

TEST(ShapeOps, ReverseSequenceTimeMajor) {
  Tensor x = Tensor::from_vector<float>({3, 2}, {0, 1, 2, 3, 4, 5});  // [time, batch]
  Tensor lens = i64s({3, 1});
  auto out = run(make_node("ReverseSequence", 2, 1), 10, {&x, &lens});
  EXPECT_EQ(vals<float>(out[0]), (std::vector<float>{4, 1, 2, 3, 0, 5}));
  Tensor bad = i64s({4, 1});
  EXPECT_FALSE(evaluate_node(make_node("ReverseSequence", 2, 1), 10, {&x, &bad}).is_ok());
}

TEST(ShapeOps, UniqueSortedAndInOrderOfAppearance) {
  Tensor x = Tensor::from_vector<float>({6}, {2, 1, 1, 3, 4, 3});
  auto s = run(make_node("Unique", 1, 4), 11, {&x});
  EXPECT_EQ(vals<float>(s[0]), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[1]), (std::vector<int64_t>{1, 0, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[2]), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
  EXPECT_EQ(vals<int64_t>(s[3]), (std::vector<int64_t>{2, 1, 2, 1}));
  auto u = run(make_node("Unique", 1, 4, {make_attr("sorted", int64_t{0})}), 11, {&x});
  EXPECT_EQ(vals<float>(u[0]), (std::vector<float>{2, 1, 3, 4}));
  EXPECT_EQ(vals<int64_t>(u[1]), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(vals<int64_t>(u[2]), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(vals<int64_t>(u[3]), (std::vector<int64_t>{1, 2, 2, 1}));
}

TEST(ShapeOps, UniqueAlongAxisComparesSlices) {
  Tensor x = Tensor::from_vector<int64_t>({2, 3}, {1, 0, 1, 2, 5, 2});
  ir::Node node = make_node("Unique", 1, 4, {make_attr("axis", int64_t{1})});
  node.outputs[1] = ir::kNoValue;  // an absent optional output
  auto out = run(node, 11, {&x});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<int64_t>(out[0]), (std::vector<int64_t>{0, 1, 5, 2}));
  EXPECT_EQ(vals<int64_t>(out[2]), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(vals<int64_t>(out[3]), (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace brink::ops
