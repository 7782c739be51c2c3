// MatMul, Gemm and Einsum reference kernels against naive triple loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "op_test_util.h"
#include "ops/evaluate.h"

namespace brink::ops {
namespace {

void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                  double tol = 1e-4) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.element_as_double(i), want[static_cast<size_t>(i)], tol) << "element " << i;
}

double at(const Tensor& t, int64_t i) {
  return t.element_as_double(i);
}

// Batched matmul with explicit (right-aligned, size-1) batch broadcasting, on shapes that
// are already at least 2-D.
std::vector<double> naive_batched_matmul(const Tensor& a, const Shape& as, const Tensor& b,
                                         const Shape& bs, Shape* batch) {
  const size_t rank = std::max(as.size(), bs.size());
  Shape ab(rank - 2, 1), bb(rank - 2, 1);
  for (size_t i = 0; i + 2 < as.size(); ++i) ab[rank - as.size() + i] = as[i];
  for (size_t i = 0; i + 2 < bs.size(); ++i) bb[rank - bs.size() + i] = bs[i];
  batch->clear();
  for (size_t i = 0; i + 2 < rank; ++i) batch->push_back(std::max(ab[i], bb[i]));
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  std::vector<double> y;
  std::vector<int64_t> idx(batch->size(), 0);
  for (int64_t flat = 0; flat < shape_numel(*batch); ++flat) {
    int64_t rem = flat, ao = 0, bo = 0, astride = 1, bstride = 1;
    for (size_t d = batch->size(); d-- > 0;) {
      const int64_t i = rem % (*batch)[d];
      rem /= (*batch)[d];
      ao += (ab[d] == 1 ? 0 : i) * astride;
      bo += (bb[d] == 1 ? 0 : i) * bstride;
      astride *= ab[d];
      bstride *= bb[d];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += at(a, (ao * m + i) * k + p) * at(b, (bo * k + p) * n + j);
        y.push_back(s);
      }
  }
  return y;
}

TEST(MatMul, BatchBroadcastingAndOneDimPromotion) {
  struct Case {
    Shape a, b, out;
  };
  const std::vector<Case> cases = {
      {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},  // batch dims broadcast both ways
      {{3, 7, 5}, {5, 9}, {3, 7, 9}},           // B shared by every batch
      {{7}, {7, 3}, {3}},                       // 1-D A: row vector, dim dropped
      {{2, 7, 3}, {3}, {2, 7}},                 // 1-D B: column vector, dim dropped
      {{6}, {6}, {}},                           // dot product: a scalar
      {{9, 17}, {17, 13}, {9, 13}},             // rows not a multiple of the 4-row block
      {{1, 1}, {1, 1}, {1, 1}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(shape_to_string(c.a) + " x " + shape_to_string(c.b));
    Tensor a = random_tensor(c.a, ++seed), b = random_tensor(c.b, ++seed);
    auto out = evaluate_node(make_node("MatMul", 2, 1), 13, {&a, &b});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    Shape as = c.a, bs = c.b, batch;
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    expect_close((*out)[0], c.out, naive_batched_matmul(a, as, b, bs, &batch));
  }
  Tensor a = random_tensor({2, 3}, 1), b = random_tensor({4, 2}, 2);
  auto bad = evaluate_node(make_node("MatMul", 2, 1), 13, {&a, &b});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("inner dims"), std::string::npos);
}

TEST(MatMul, IntegerTypesWrapAndAreGatedByOpset) {
  Tensor a = Tensor::from_vector<int32_t>({1, 2}, {2000000000, 2});
  Tensor b = Tensor::from_vector<int32_t>({2, 1}, {2, -3});
  auto out = evaluate_node(make_node("MatMul", 2, 1), 13, {&a, &b});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // 4e9 - 6 wraps around int32, as NumPy's int32 matmul does.
  EXPECT_EQ((*out)[0].data<int32_t>()[0],
            static_cast<int32_t>(static_cast<uint32_t>(4000000000u - 6u)));
  Tensor ua = Tensor::from_vector<uint64_t>({2, 2}, {1, 2, 3, 4}),
         ub = Tensor::from_vector<uint64_t>({2, 2}, {5, 6, 7, 8});
  auto u = evaluate_node(make_node("MatMul", 2, 1), 9, {&ua, &ub});
  ASSERT_TRUE(u.is_ok()) << u.status().message();
  expect_close((*u)[0], {2, 2}, {19, 22, 43, 50});
  auto old = evaluate_node(make_node("MatMul", 2, 1), 8, {&ua, &ub});
  ASSERT_FALSE(old.is_ok());
  EXPECT_EQ(old.status().code(), StatusCode::kUnsupported);
}

TEST(MatMul, HalfAndBFloat16AccumulateInFloat) {
  std::vector<Float16> av(64, Float16(0.01f)), bv(64, Float16(1.0f));
  Tensor a = Tensor::from_vector<Float16>({1, 64}, av),
         b = Tensor::from_vector<Float16>({64, 1}, bv);
  auto out = evaluate_node(make_node("MatMul", 2, 1), 13, {&a, &b});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_NEAR(static_cast<float>((*out)[0].data<Float16>()[0]), 0.64f, 1e-3f);
  Tensor ab = Tensor::from_vector<BFloat16>({1, 2}, {BFloat16(1.5f), BFloat16(2.0f)});
  Tensor bb = Tensor::from_vector<BFloat16>({2, 1}, {BFloat16(2.0f), BFloat16(0.25f)});
  auto bf = evaluate_node(make_node("MatMul", 2, 1), 13, {&ab, &bb});
  ASSERT_TRUE(bf.is_ok()) << bf.status().message();
  EXPECT_EQ(static_cast<float>((*bf)[0].data<BFloat16>()[0]), 3.5f);
  EXPECT_FALSE(evaluate_node(make_node("MatMul", 2, 1), 12, {&ab, &bb}).is_ok());
}

TEST(Gemm, TransposesAlphaBetaAndBroadcastBias) {
  const int64_t m = 5, n = 3, k = 4;
  uint32_t seed = 10;
  for (int ta : {0, 1})
    for (int tb : {0, 1})
      for (const Shape& cshape :
           {Shape{}, Shape{1}, Shape{n}, Shape{1, n}, Shape{m, 1}, Shape{m, n}}) {
        SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb) + " C " +
                     shape_to_string(cshape));
        Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, ++seed);
        Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, ++seed);
        Tensor c = random_tensor(cshape, ++seed);
        auto out = evaluate_node(
            make_node("Gemm", 3, 1,
                      {make_attr("transA", int64_t{ta}), make_attr("transB", int64_t{tb}),
                       make_attr("alpha", 0.5f), make_attr("beta", -2.0f)}),
            13, {&a, &b, &c});
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        std::vector<double> want;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p)
              s += at(a, ta ? p * m + i : i * k + p) * at(b, tb ? j * k + p : p * n + j);
            const int64_t ci = cshape.size() == 2
                                   ? (cshape[0] == 1 ? 0 : i) * cshape[1] + (cshape[1] == 1 ? 0 : j)
                                   : (cshape.empty() || cshape[0] == 1 ? 0 : j);
            want.push_back(0.5 * s - 2.0 * at(c, ci));
          }
        expect_close((*out)[0], {m, n}, want);
      }
}

TEST(Gemm, OptionalBiasIntegersAndErrors) {
  Tensor a = Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}),
         b = Tensor::from_vector<int64_t>({2, 2}, {1, 0, 0, 1});
  auto no_c = evaluate_node(make_node("Gemm", 2, 1), 11, {&a, &b});
  ASSERT_TRUE(no_c.is_ok()) << no_c.status().message();
  expect_close((*no_c)[0], {2, 2}, {1, 2, 3, 4});
  // C is required before opset 11.
  EXPECT_FALSE(evaluate_node(make_node("Gemm", 2, 1), 9, {&a, &b}).is_ok());
  Tensor c = Tensor::from_vector<int64_t>({2}, {10, 20});
  auto with_c = evaluate_node(make_node("Gemm", 3, 1), 9, {&a, &b, &c});
  ASSERT_TRUE(with_c.is_ok()) << with_c.status().message();
  expect_close((*with_c)[0], {2, 2}, {11, 22, 13, 24});
  // Integer types arrive at opset 9.
  EXPECT_FALSE(evaluate_node(make_node("Gemm", 3, 1), 7, {&a, &b, &c}).is_ok());

  Tensor fa = random_tensor({2, 3}, 1), fb = random_tensor({3, 4}, 2),
         bad_c = random_tensor({3}, 3);
  auto bad = evaluate_node(make_node("Gemm", 3, 1), 13, {&fa, &fb, &bad_c});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("broadcast"), std::string::npos) << bad.status().message();
}

TEST(Einsum, ExplicitImplicitEllipsisAndDiagonals) {
  Tensor a = random_tensor({2, 3}, 20), b = random_tensor({3, 4}, 21),
         sq = random_tensor({3, 3}, 22);
  auto run = [](const std::string& eq, std::vector<const Tensor*> in) {
    return evaluate_node(make_node("Einsum", in.size(), 1, {make_attr("equation", eq)}), 12, in);
  };
  {  // matrix product, explicit and implicit ("ij,jk" -> "ik")
    std::vector<double> want;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t k = 0; k < 4; ++k) {
        double s = 0;
        for (int64_t j = 0; j < 3; ++j) s += at(a, i * 3 + j) * at(b, j * 4 + k);
        want.push_back(s);
      }
    for (const char* eq : {"ij,jk->ik", "ij,jk", " i j , j k -> i k "}) {
      auto out = run(eq, {&a, &b});
      ASSERT_TRUE(out.is_ok()) << eq << ": " << out.status().message();
      expect_close((*out)[0], {2, 4}, want);
    }
  }
  {  // implicit output is alphabetical: "ji" means a transpose
    auto out = run("ji", {&a});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    expect_close((*out)[0], {3, 2}, {at(a, 0), at(a, 3), at(a, 1), at(a, 4), at(a, 2), at(a, 5)});
  }
  {  // trace and diagonal via repeated labels
    auto trace = run("ii", {&sq});
    ASSERT_TRUE(trace.is_ok()) << trace.status().message();
    expect_close((*trace)[0], {}, {at(sq, 0) + at(sq, 4) + at(sq, 8)});
    auto diag = run("ii->i", {&sq});
    ASSERT_TRUE(diag.is_ok());
    expect_close((*diag)[0], {3}, {at(sq, 0), at(sq, 4), at(sq, 8)});
  }
  {  // ellipsis with broadcasting batch dims: (2,1,2,3) x (4,3,2) -> (2,4,2,2)
    Tensor x = random_tensor({2, 1, 2, 3}, 23), y = random_tensor({4, 3, 2}, 24);
    auto out = run("...ij,...jk->...ik", {&x, &y});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    auto ref = evaluate_node(make_node("MatMul", 2, 1), 13, {&x, &y});
    ASSERT_TRUE(ref.is_ok());
    std::vector<double> want;
    for (int64_t i = 0; i < (*ref)[0].numel(); ++i) want.push_back(at((*ref)[0], i));
    expect_close((*out)[0], {2, 4, 2, 2}, want);
  }
  {  // sum over everything, outer product, integers
    Tensor v = Tensor::from_vector<int32_t>({3}, {1, 2, 3}),
           w = Tensor::from_vector<int32_t>({2}, {-1, 4});
    auto outer = run("i,j->ij", {&v, &w});
    ASSERT_TRUE(outer.is_ok()) << outer.status().message();
    expect_close((*outer)[0], {3, 2}, {-1, 4, -2, 8, -3, 12});
    auto total = run("i->", {&v});
    ASSERT_TRUE(total.is_ok());
    EXPECT_EQ((*total)[0].data<int32_t>()[0], 6);
  }
  EXPECT_FALSE(run("ij,jk->iq", {&a, &b}).is_ok());   // unknown output label
  EXPECT_FALSE(run("ij,jk->ik", {&a, &a}).is_ok());   // j is 3 and 2
  EXPECT_FALSE(run("ijk,jk->ik", {&a, &b}).is_ok());  // rank mismatch
  EXPECT_FALSE(run("ij->ii", {&a}).is_ok());          // repeated output label
}

}  // namespace
}  // namespace brink::ops
