// The fast float32 MatMul, Gemm and brink.MatMul kernels against their reference kernels
// (ops/linalg.h), for every ISA: awkward shapes, broadcast batch dims, 1-D operands,
// constant (packed at prepare) and non-constant B, every transA/transB/alpha/beta/C case,
// 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "op_test_util.h"
#include "ops/evaluate.h"
#include "ops/linalg.h"

namespace brink::ops {
namespace {

// |got - want| within 2e-5 of the magnitude of the values summed (estimated from the
// operand ranges: values are in [-1, 1)), elementwise.
void expect_near_ref(const Tensor& got, const Tensor& want, int64_t k, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  const double tol = 2e-5 * (static_cast<double>(k) + 2.0);
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_NEAR(g[i], w[i], tol) << what << " at " << i;
}

Shape promoted_out_shape(const Shape& as, const Shape& bs, bool trans_b) {
  Shape a = as, b = bs;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) {
    if (trans_b)
      b.insert(b.begin(), 1);
    else
      b.push_back(1);
  }
  const size_t rank = std::max(a.size(), b.size());
  Shape out;
  for (size_t i = 0; i + 2 < rank; ++i) {
    const int64_t ad = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t bd = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    out.push_back(std::max(ad, bd));
  }
  if (as.size() > 1) out.push_back(a[a.size() - 2]);
  if (bs.size() > 1) out.push_back(trans_b ? b[b.size() - 2] : b.back());
  return out;
}

struct MatMulCase {
  Shape a, b;
};

const MatMulCase kMatMulCases[] = {
    {{1, 1}, {1, 1}},
    {{3, 5}, {5, 7}},
    {{17, 33}, {33, 31}},
    {{64, 100}, {100, 257}},
    {{257, 17}, {17, 64}},
    {{9, 400}, {400, 45}},   // K blocks
    {{7}, {7, 13}},          // 1-D A
    {{13, 7}, {7}},          // 1-D B (N = 1)
    {{11}, {11}},            // both 1-D: a scalar
    {{2, 3, 5, 6}, {6, 9}},  // batched A, 2-D B: folded into one product
    {{5, 6}, {4, 6, 9}},     // 2-D A, batched B
    {{2, 1, 5, 6}, {3, 6, 33}},
    {{3, 1, 4, 3}, {1, 2, 3, 40}},
    {{2, 12, 9, 16}, {2, 12, 16, 9}},  // attention-like, batches spread over threads
    {{3, 8, 0}, {0, 5}},               // K = 0
    {{0, 4}, {4, 3}},                  // M = 0
    {{3, 4, 1, 17}, {17, 1}},          // N = 1 with batches
};

TEST(MatMulFast, MatchesReferenceEveryIsa) {
  const ir::Node node = make_node("MatMul", 2, 1);
  int seed = 1;
  for (Isa isa : supported_isas())
    for (const MatMulCase& c : kMatMulCases)
      for (bool constant_b : {true, false})
        for (int threads : {1, 2}) {
          const Tensor a = random_tensor(c.a, static_cast<uint32_t>(seed++));
          const Tensor b = random_tensor(c.b, static_cast<uint32_t>(seed++));
          const std::string what = std::string(isa_name(isa)) + " A" + shape_to_string(c.a) + " B" +
                                   shape_to_string(c.b) + (constant_b ? " const" : " dynamic") +
                                   " threads " + std::to_string(threads);
          EvaluateOptions opt;
          opt.inputs_are_constant = constant_b;
          opt.num_threads = threads;
          opt.isa = isa;
          auto got = evaluate_node(node, 13, {&a, &b}, opt);
          ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().message();
          Tensor want = Tensor::empty(DataType::kFloat32, promoted_out_shape(c.a, c.b, false));
          ASSERT_TRUE(matmul_reference(a, b, want).is_ok());
          expect_near_ref((*got)[0], want, c.a.back(), what);
        }
}

TEST(MatMulFast, OtherDtypesStayOnReference) {
  const ir::Node node = make_node("MatMul", 2, 1);
  const Tensor a = Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4});
  const Tensor b = Tensor::from_vector<int32_t>({2, 2}, {5, 6, 7, 8});
  auto got = evaluate_node(node, 13, {&a, &b});
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  const int32_t* y = (*got)[0].data<int32_t>();
  EXPECT_EQ(y[0], 19);
  EXPECT_EQ(y[1], 22);
  EXPECT_EQ(y[2], 43);
  EXPECT_EQ(y[3], 50);
}

TEST(FusedMatMul, MatchesReferenceEveryIsa) {
  struct Case {
    Shape a, b;
    bool trans_b;
    bool bias;
    kernels::Activation act;
    const char* act_name;
    std::vector<float> params;
  };
  const Case cases[] = {
      {{3, 5}, {5, 7}, false, true, {kernels::ActivationKind::kRelu}, "Relu", {}},
      {{17, 33},
       {31, 33},
       true,
       true,
       {kernels::ActivationKind::kClip, 0.0f, 0.5f},
       "Clip",
       {0.0f, 0.5f}},
      {{2, 9, 40}, {40, 65}, false, true, {kernels::ActivationKind::kGelu}, "Gelu", {}},
      {{2, 3, 9, 16}, {2, 3, 10, 16}, true, false, {kernels::ActivationKind::kSilu}, "SiLU", {}},
      {{100, 257}, {33, 257}, true, true, {kernels::ActivationKind::kHardSwish}, "HardSwish", {}},
      {{8, 390}, {390, 20}, false, true, {kernels::ActivationKind::kSigmoid}, "Sigmoid", {}},
      {{6}, {6, 9}, false, true, {kernels::ActivationKind::kTanh}, "Tanh", {}},
      {{6}, {9, 6}, true, true, {}, "", {}},
      {{4, 6}, {6}, true, false, {kernels::ActivationKind::kLeakyRelu, 0.1f}, "LeakyRelu", {0.1f}},
      {{5, 4, 6}, {6}, false, true, {kernels::ActivationKind::kRelu}, "Relu", {}},
  };
  int seed = 100;
  for (Isa isa : supported_isas())
    for (const Case& c : cases)
      for (bool constant_b : {true, false})
        for (int threads : {1, 2}) {
          std::vector<ir::Attribute> attrs;
          if (c.trans_b) attrs.push_back(make_attr("trans_b", int64_t{1}));
          if (c.act_name[0] != '\0')
            attrs.push_back(make_attr("activation", std::string(c.act_name)));
          if (!c.params.empty()) attrs.push_back(make_attr("activation_params", c.params));
          const ir::Node node = make_node("MatMul", c.bias ? 3 : 2, 1, attrs, "brink");
          const Tensor a = random_tensor(c.a, static_cast<uint32_t>(seed++));
          const Tensor b = random_tensor(c.b, static_cast<uint32_t>(seed++));
          const Shape out = promoted_out_shape(c.a, c.b, c.trans_b);
          const int64_t n = c.b.size() == 1 ? 1 : (c.trans_b ? c.b[c.b.size() - 2] : c.b.back());
          const Tensor bias = random_tensor({n}, static_cast<uint32_t>(seed++));
          std::vector<const Tensor*> inputs = {&a, &b};
          if (c.bias) inputs.push_back(&bias);
          const std::string what = std::string(isa_name(isa)) + " A" + shape_to_string(c.a) + " B" +
                                   shape_to_string(c.b) + " " + c.act_name +
                                   (constant_b ? " const" : " dynamic") + " threads " +
                                   std::to_string(threads);
          EvaluateOptions opt;
          opt.inputs_are_constant = constant_b;
          opt.num_threads = threads;
          opt.isa = isa;
          auto got = evaluate_node(node, 1, inputs, opt);
          ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().message();
          Tensor want = Tensor::empty(DataType::kFloat32, out);
          ASSERT_TRUE(fused_matmul_reference(a, b, c.bias ? &bias : nullptr, c.trans_b, c.act, want)
                          .is_ok());
          expect_near_ref((*got)[0], want, c.a.back(), what);
        }
}

TEST(FusedMatMul, RejectsBadInputs) {
  const Tensor a = random_tensor({3, 4}, 1);
  const Tensor b = random_tensor({4, 5}, 2);
  const Tensor bad_bias = random_tensor({4}, 3);
  auto r = evaluate_node(make_node("MatMul", 3, 1, {}, "brink"), 1, {&a, &b, &bad_bias});
  EXPECT_FALSE(r.is_ok());
  auto r2 = evaluate_node(
      make_node("MatMul", 2, 1, {make_attr("activation", std::string("Nope"))}, "brink"), 1,
      {&a, &b});
  EXPECT_FALSE(r2.is_ok());
  const Tensor bt = random_tensor({5, 3}, 4);  // K mismatch with trans_b
  auto r3 = evaluate_node(make_node("MatMul", 2, 1, {make_attr("trans_b", int64_t{1})}, "brink"), 1,
                          {&a, &bt});
  EXPECT_FALSE(r3.is_ok());
}

TEST(GemmFast, MatchesReferenceEveryIsa) {
  struct Case {
    int64_t m, n, k;
    Shape c;  // {} = no C; {0} = placeholder unused
    bool has_c;
  };
  const Case shapes[] = {
      {1, 1, 1, {}, false},     {3, 5, 7, {5}, true},        {17, 33, 31, {1, 33}, true},
      {64, 100, 257, {}, true}, {9, 45, 400, {9, 45}, true}, {13, 7, 5, {13, 1}, true},
      {5, 19, 3, {1}, true},    {5, 19, 3, {1, 1}, true},    {2, 40, 0, {40}, true},
  };
  int seed = 500;
  for (Isa isa : supported_isas())
    for (const Case& s : shapes)
      for (int variant = 0; variant < 8; ++variant) {
        const bool ta = variant & 1, tb = variant & 2, constant = variant & 4;
        const float alpha = variant % 3 == 0 ? 1.0f : 0.5f;
        const float beta = variant % 5 == 1 ? 0.0f : (variant % 2 ? 1.0f : -2.0f);
        const Tensor a =
            random_tensor(ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, static_cast<uint32_t>(seed++));
        const Tensor b =
            random_tensor(tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, static_cast<uint32_t>(seed++));
        const Tensor c = random_tensor(s.c, static_cast<uint32_t>(seed++));
        std::vector<const Tensor*> inputs = {&a, &b};
        if (s.has_c) inputs.push_back(&c);
        const ir::Node node =
            make_node("Gemm", inputs.size(), 1,
                      {make_attr("transA", int64_t{ta}), make_attr("transB", int64_t{tb}),
                       make_attr("alpha", alpha), make_attr("beta", beta)});
        const std::string what = std::string(isa_name(isa)) + " m" + std::to_string(s.m) + " n" +
                                 std::to_string(s.n) + " k" + std::to_string(s.k) + " C" +
                                 (s.has_c ? shape_to_string(s.c) : "none") + " variant " +
                                 std::to_string(variant);
        EvaluateOptions opt;
        opt.inputs_are_constant = constant;
        opt.num_threads = 1 + variant % 2;
        opt.isa = isa;
        auto got = evaluate_node(node, 13, inputs, opt);
        ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().message();
        Tensor want = Tensor::empty(DataType::kFloat32, {s.m, s.n});
        ASSERT_TRUE(
            gemm_reference(a, b, s.has_c ? &c : nullptr, ta, tb, alpha, beta, want).is_ok());
        expect_near_ref((*got)[0], want, s.k, what);
      }
}

}  // namespace
}  // namespace brink::ops
