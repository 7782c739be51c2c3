// LayerNormalization (ONNX-17 and brink.LayerNormalization), brink.Gelu and brink.Attention:
// the fast float32 kernels against the reference kernels and, for attention, against a
// naive double-precision implementation, for every ISA this machine runs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
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

Tensor random_tensor(DataType dt, const Shape& shape, uint32_t seed, float lo = -1.0f,
                     float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(dt, shape);
  visit_dtype(dt, [&]<typename T>() {
    if constexpr (is_float_v<T>)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(dist(rng));
  });
  return t;
}
Tensor random_f32(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return random_tensor(DataType::kFloat32, shape, seed, lo, hi);
}

// |got - want| <= tol * (1 + |want|) everywhere (NaN-aware).
void expect_near_all(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int failures = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.element_as_double(i), w = want.element_as_double(i);
    const bool ok =
        (std::isnan(g) && std::isnan(w)) || std::fabs(g - w) <= tol * (1 + std::fabs(w));
    if (!ok && failures++ < 5) ADD_FAILURE() << what << " [" << i << "]: " << g << " vs " << w;
  }
}

// ---- LayerNormalization ------------------------------------------------------------------------

struct LnCase {
  Shape x, scale;
  int64_t axis;
  bool bias;
};

std::vector<LnCase> ln_cases() {
  std::vector<LnCase> c = {
      {{128, 384}, {384}, -1, true},                                    // BERT-like, threaded
      {{2, 3, 70}, {70}, -1, true},    {{2, 3, 70}, {3, 70}, 1, true},  // two normalized dims
      {{4, 5, 16}, {1, 16}, -1, true},                                  // Scale with a leading 1
      {{4, 5, 16}, {5, 16}, -1, true},  // Scale varies across rows: reference
      {{6, 33}, {33}, -1, false},      {{1, 1}, {1}, -1, true},        {{3, 0}, {0}, -1, true},
  };
  for (int64_t n = 1; n <= 70; n += 4) c.push_back({{3, n}, {n}, -1, true});
  return c;
}

TEST(TransformerOps, LayerNormalizationMatchesReference) {
  uint32_t seed = 1;
  for (const LnCase& c : ln_cases()) {
    Tensor x = random_f32(c.x, seed++, -3, 7);
    const Tensor scale = random_f32(c.scale, seed++), bias = random_f32(c.scale, seed++);
    std::vector<const Tensor*> inputs = {&x, &scale};
    if (c.bias) inputs.push_back(&bias);
    for (size_t outputs : {1, 3}) {
      const ir::Node node = make_node("LayerNormalization", inputs.size(), outputs,
                                      {make_attr("axis", c.axis), make_attr("epsilon", 1e-5f)});
      auto want = eval(node, 17, inputs, best_isa(), 1, false);
      ASSERT_TRUE(want.is_ok()) << want.status().message();
      for (Isa isa : supported_isas()) {
        const std::string what = std::string(isa_name(isa)) + " LayerNorm " + shape_to_string(c.x) +
                                 " axis " + std::to_string(c.axis);
        auto got = eval(node, 17, inputs, isa, x.numel() > 10000 ? 2 : 1, true);
        ASSERT_TRUE(got.is_ok()) << got.status().message();
        for (size_t i = 0; i < outputs; ++i)
          expect_near_all((*got)[i], (*want)[i], 2e-6, what + " output " + std::to_string(i));
      }
    }
  }
}

TEST(TransformerOps, BrinkLayerNormalizationIsOnnxLayerNormalization) {
  const Tensor x = random_f32({5, 24}, 1, -2, 2), scale = random_f32({24}, 2),
               bias = random_f32({24}, 3);
  const ir::Node onnx = make_node("LayerNormalization", 3, 1, {make_attr("epsilon", 1e-6f)});
  const ir::Node fused =
      make_node("LayerNormalization", 3, 1, {make_attr("epsilon", 1e-6f)}, "brink");
  auto want = eval(onnx, 17, {&x, &scale, &bias}, best_isa(), 1, false);
  ASSERT_TRUE(want.is_ok());
  for (bool fast : {true, false}) {
    auto got = eval(fused, 1, {&x, &scale, &bias}, best_isa(), 1, fast);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    expect_near_all((*got)[0], (*want)[0], 2e-6, "brink.LayerNormalization");
  }
  // Other float types run the reference.
  const Tensor xh = random_tensor(DataType::kFloat16, {5, 24}, 1, -2, 2);
  const Tensor sh = random_tensor(DataType::kFloat16, {24}, 2);
  auto half = eval(fused, 1, {&xh, &sh}, best_isa(), 1, true);
  ASSERT_TRUE(half.is_ok()) << half.status().message();
  EXPECT_EQ((*half)[0].dtype(), DataType::kFloat16);
}

TEST(TransformerOps, LayerNormalizationInPlace) {
  const Tensor x = random_f32({7, 40}, 4, -3, 3), scale = random_f32({40}, 5),
               bias = random_f32({40}, 6);
  const ir::Node node = make_node("LayerNormalization", 3, 1);
  for (bool fast : {true, false}) {
    std::optional<ReferenceKernels> ref;
    if (!fast) ref.emplace();
    for (Isa isa : supported_isas()) {
      auto want = eval(node, 17, {&x, &scale, &bias}, isa, 1, fast);
      ASSERT_TRUE(want.is_ok());
      const OpDef* def = OpRegistry::global().find("", "LayerNormalization", 17);
      std::vector<TensorType> types = {TensorType::of(DataType::kFloat32, x.shape()),
                                       TensorType::of(DataType::kFloat32, scale.shape()),
                                       TensorType::of(DataType::kFloat32, bias.shape())};
      KernelCreateContext cctx{node, 17, {&types[0], &types[1], &types[2]}, {}, {}, {}};
      cctx.isa = isa;
      auto kernel = def->create(cctx);
      ASSERT_TRUE(kernel.is_ok());
      Tensor buffer = x.clone();
      std::vector<const Tensor*> ptrs = {&buffer, &scale, &bias};
      std::vector<Tensor> outputs = {buffer};
      KernelContext kctx(std::span<const Tensor* const>(ptrs), &outputs, 1);
      ASSERT_TRUE((*kernel)->run(kctx).is_ok());
      for (int64_t i = 0; i < x.numel(); ++i)
        ASSERT_EQ(buffer.data<float>()[i], (*want)[0].data<float>()[i])
            << isa_name(isa) << (fast ? " fast" : " reference") << " at " << i;
    }
  }
}

// ---- Gelu -----------------------------------------------------------------------------------

TEST(TransformerOps, BrinkGeluIsOnnxGelu) {
  const Tensor x = random_f32({3, 1536}, 7, -6, 6);
  for (const std::string approx : {"none", "tanh"}) {
    const std::vector<ir::Attribute> attrs = {make_attr("approximate", approx)};
    auto want = eval(make_node("Gelu", 1, 1, attrs), 20, {&x}, best_isa(), 1, false);
    ASSERT_TRUE(want.is_ok());
    for (Isa isa : supported_isas()) {
      auto got = eval(make_node("Gelu", 1, 1, attrs, "brink"), 1, {&x}, isa, 2, true);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      expect_near_all((*got)[0], (*want)[0], 1e-6, std::string(isa_name(isa)) + " " + approx);
    }
  }
  auto bad = evaluate_node(
      make_node("Gelu", 1, 1, {make_attr("approximate", std::string("erf"))}, "brink"), 1, {&x});
  EXPECT_FALSE(bad.is_ok());
}

// ---- Attention ------------------------------------------------------------------------------

// Flat offset of batch item `b` (over `batch`, row-major) in a tensor whose last `inner`
// dims form one item, its other dims right-aligned and broadcast against `batch`.
int64_t item_offset(const Shape& t, int64_t inner, const Shape& batch, int64_t b) {
  const int64_t t_batch = std::max<int64_t>(0, static_cast<int64_t>(t.size()) - inner);
  int64_t item = 1;
  for (size_t i = static_cast<size_t>(t_batch); i < t.size(); ++i) item *= t[i];
  int64_t off = 0, stride = item;
  for (int64_t i = static_cast<int64_t>(batch.size()) - 1; i >= 0; --i) {
    const int64_t idx = b % batch[static_cast<size_t>(i)];
    b /= batch[static_cast<size_t>(i)];
    const int64_t ti = i - (static_cast<int64_t>(batch.size()) - t_batch);
    if (ti < 0) continue;
    const int64_t d = t[static_cast<size_t>(ti)];
    if (d != 1) off += idx * stride;
    stride *= d;
  }
  return off;
}

// softmax(scale Q Kᵀ + mask) V in double, straight from the definition.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                       bool kt, double scale) {
  Shape batch;
  auto lead = [](const Tensor& t, int64_t inner) {
    return Shape(t.shape().begin(), t.shape().end() - std::min<int64_t>(inner, t.rank()));
  };
  for (const Shape& s :
       {lead(q, 2), lead(k, 2), lead(v, 2), mask != nullptr ? lead(*mask, 2) : Shape{}}) {
    Shape out;
    EXPECT_TRUE(broadcast_shapes(batch, s, &out));
    batch = out;
  }
  const int64_t sq = q.dim(q.rank() - 2), d = q.dim(q.rank() - 1);
  const int64_t sk = v.dim(v.rank() - 2), dv = v.dim(v.rank() - 1);
  Shape out_shape = batch;
  out_shape.push_back(sq);
  out_shape.push_back(dv);
  Tensor y = Tensor::empty(DataType::kFloat64, out_shape);
  const int64_t items = shape_numel(batch);
  const int64_t mr = mask ? mask->rank() : 0;
  const int64_t mq = mr >= 2 ? mask->dim(mr - 2) : 1, mk = mr >= 1 ? mask->dim(mr - 1) : 1;
  std::vector<double> s(static_cast<size_t>(sk));
  for (int64_t b = 0; b < items; ++b) {
    const int64_t qo = item_offset(q.shape(), 2, batch, b),
                  ko = item_offset(k.shape(), 2, batch, b);
    const int64_t vo = item_offset(v.shape(), 2, batch, b);
    const int64_t mo = mask ? item_offset(mask->shape(), std::min<int64_t>(mr, 2), batch, b) : 0;
    for (int64_t i = 0; i < sq; ++i) {
      double m = -INFINITY;
      for (int64_t j = 0; j < sk; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c)
          dot += q.element_as_double(qo + i * d + c) *
                 k.element_as_double(ko + (kt ? c * sk + j : j * d + c));
        s[static_cast<size_t>(j)] = scale * dot;
        if (mask)
          s[static_cast<size_t>(j)] +=
              mask->element_as_double(mo + (mq == 1 ? 0 : i) * mk + (mk == 1 ? 0 : j));
        m = std::max(m, s[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - m));
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < sk; ++j)
          acc += s[static_cast<size_t>(j)] * v.element_as_double(vo + j * dv + c);
        y.data<double>()[(b * sq + i) * dv + c] = sk == 0 ? 0.0 : acc / sum;  // empty sum
      }
    }
  }
  return y;
}

struct AttnCase {
  Shape q, k, v;
  std::optional<Shape> mask;
  bool kt = false;
  std::optional<float> scale = std::nullopt;
  std::string describe() const {
    // Appended piece by piece: GCC 12's -Wrestrict misfires on "literal" + std::string here.
    std::string s = "Q";
    s += shape_to_string(q);
    s += " K";
    s += shape_to_string(k);
    s += " V";
    s += shape_to_string(v);
    if (mask) {
      s += " mask";
      s += shape_to_string(*mask);
    }
    if (kt) s += " k_transposed";
    if (scale) {
      s += " scale ";
      s += std::to_string(*scale);
    }
    return s;
  }
};

std::vector<AttnCase> attention_cases() {
  std::vector<AttnCase> c = {
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, std::nullopt},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{7}},           // per key (padding)
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{5, 7}},        // causal-like
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{2, 1, 1, 7}},  // BERT padding mask
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{2, 1, 5, 7}},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{1, 3, 5, 7}},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{5, 1}},  // one value per query
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{}},      // a scalar
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, Shape{2, 3, 5, 7}},
      {{2, 3, 5, 8}, {2, 3, 8, 7}, {2, 3, 7, 6}, Shape{2, 1, 1, 7}, true},
      {{2, 3, 5, 8}, {1, 3, 7, 8}, {3, 7, 6}, Shape{7}},     // K, V shared over batch
      {{3, 5, 8}, {3, 7, 8}, {3, 7, 6}, Shape{2, 1, 5, 7}},  // mask adds a batch dim
      {{5, 8}, {7, 8}, {7, 6}, std::nullopt},                // no batch dims
      {{5, 8}, {8, 7}, {7, 6}, Shape{5, 7}, true, 0.3f},
      {{1, 1}, {1, 1}, {1, 1}, std::nullopt},
      {{2, 1, 3}, {2, 1, 3}, {2, 1, 1}, Shape{1}},
      {{1, 2, 33, 17}, {1, 2, 300, 17}, {1, 2, 300, 19}, Shape{1, 1, 1, 300}},  // long keys
      {{1, 2, 200, 16}, {1, 2, 200, 16}, {1, 2, 200, 16}, Shape{200, 200}},     // row blocks
      {{1, 2, 64, 16}, {1, 2, 16, 64}, {1, 2, 64, 16}, std::nullopt, true},
      {{2, 3, 5, 0}, {2, 3, 7, 0}, {2, 3, 7, 6}, std::nullopt},  // D = 0
      {{2, 3, 5, 8}, {2, 3, 0, 8}, {2, 3, 0, 6}, std::nullopt},  // no keys
  };
  return c;
}

// A mask with large negative entries (masked keys) but never a whole row masked.
Tensor make_mask(DataType dt, const Shape& shape, uint32_t seed) {
  Tensor m = random_tensor(dt, shape, seed, -2, 2);
  // Not when each row has one value: adding -10000 to a whole row changes nothing but the
  // rounding of its scores, which a float implementation cannot avoid.
  if (m.numel() > 2 && !shape.empty() && shape.back() > 1) {
    visit_dtype(dt, [&]<typename T>() {
      if constexpr (is_float_v<T>)
        for (int64_t i = 1; i < m.numel(); i += 3) m.data<T>()[i] = static_cast<T>(-10000.0f);
    });
  }
  return m;
}

ir::Node attention_node(const AttnCase& c) {
  std::vector<ir::Attribute> attrs;
  if (c.kt) attrs.push_back(make_attr("k_transposed", int64_t{1}));
  if (c.scale) attrs.push_back(make_attr("scale", *c.scale));
  return make_node("Attention", c.mask ? 4 : 3, 1, attrs, "brink");
}

TEST(TransformerOps, AttentionMatchesNaive) {
  uint32_t seed = 100;
  for (const AttnCase& c : attention_cases()) {
    const Tensor q = random_f32(c.q, seed++), k = random_f32(c.k, seed++),
                 v = random_f32(c.v, seed++);
    const Tensor mask = c.mask ? make_mask(DataType::kFloat32, *c.mask, seed++) : Tensor();
    std::vector<const Tensor*> inputs = {&q, &k, &v};
    if (c.mask) inputs.push_back(&mask);
    const double scale = c.scale ? *c.scale : 1.0 / std::sqrt(static_cast<double>(c.q.back()));
    const Tensor want = naive_attention(q, k, v, c.mask ? &mask : nullptr, c.kt, scale);
    const ir::Node node = attention_node(c);
    for (Isa isa : supported_isas()) {
      for (int threads : {1, 2}) {
        auto got = eval(node, 1, inputs, isa, threads, true);
        ASSERT_TRUE(got.is_ok()) << c.describe() << ": " << got.status().message();
        expect_near_all((*got)[0], want, 1e-5,
                        std::string(isa_name(isa)) + " " + c.describe() + " threads " +
                            std::to_string(threads));
      }
    }
    // The reference chain (ONNX reference operators) agrees too.
    auto ref = eval(node, 1, inputs, best_isa(), 1, false);
    ASSERT_TRUE(ref.is_ok()) << c.describe() << ": " << ref.status().message();
    expect_near_all((*ref)[0], want, 1e-5, "reference " + c.describe());
  }
}

TEST(TransformerOps, AttentionBertSizeWithThreads) {
  // 6 heads, sequence 128, head size 64, padding mask: the encoder's shape.
  const Tensor q = random_f32({1, 6, 128, 64}, 1, -2, 2), k = random_f32({1, 6, 128, 64}, 2, -2, 2),
               v = random_f32({1, 6, 128, 64}, 3);
  Tensor mask = Tensor::zeros(DataType::kFloat32, {1, 1, 1, 128});
  for (int64_t j = 100; j < 128; ++j) mask.data<float>()[j] = -10000.0f;
  const Tensor want = naive_attention(q, k, v, &mask, false, 0.125);
  const ir::Node node = make_node("Attention", 4, 1, {}, "brink");
  for (Isa isa : supported_isas()) {
    auto got = eval(node, 1, {&q, &k, &v, &mask}, isa, 2, true);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    expect_near_all((*got)[0], want, 1e-5, isa_name(isa));
  }
}

TEST(TransformerOps, AttentionOtherFloatTypesUseTheReference) {
  const AttnCase c{{2, 3, 5, 8}, {2, 3, 8, 7}, {2, 3, 7, 6}, Shape{2, 1, 1, 7}, true};
  for (DataType dt : {DataType::kFloat64, DataType::kFloat16}) {
    const Tensor q = random_tensor(dt, c.q, 1), k = random_tensor(dt, c.k, 2),
                 v = random_tensor(dt, c.v, 3), mask = make_mask(dt, *c.mask, 4);
    const Tensor want = naive_attention(q, k, v, &mask, true, 1.0 / std::sqrt(8.0));
    auto got = evaluate_node(attention_node(c), 1, {&q, &k, &v, &mask});
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    EXPECT_EQ((*got)[0].dtype(), dt);
    expect_near_all((*got)[0], want, dt == DataType::kFloat64 ? 1e-12 : 5e-3, dtype_name(dt));
  }
}

TEST(TransformerOps, AttentionRejectsMismatchedShapes) {
  const Tensor q = random_f32({2, 5, 8}, 1), k = random_f32({2, 7, 8}, 2),
               v = random_f32({2, 7, 6}, 3);
  const Tensor k_bad = random_f32({2, 7, 4}, 4), v_bad = random_f32({2, 6, 6}, 5);
  const Tensor mask_bad = random_f32({5, 6}, 6);
  const ir::Node node = make_node("Attention", 3, 1, {}, "brink");
  EXPECT_FALSE(evaluate_node(node, 1, {&q, &k_bad, &v}).is_ok());
  EXPECT_FALSE(evaluate_node(node, 1, {&q, &k, &v_bad}).is_ok());
  EXPECT_FALSE(
      evaluate_node(make_node("Attention", 4, 1, {}, "brink"), 1, {&q, &k, &v, &mask_bad}).is_ok());
  EXPECT_FALSE(
      evaluate_node(make_node("Attention", 3, 1, {make_attr("k_transposed", int64_t{2})}, "brink"),
                    1, {&q, &k, &v})
          .is_ok());
  const Tensor q1 = random_f32({8}, 7);
  EXPECT_FALSE(evaluate_node(node, 1, {&q1, &k, &v}).is_ok());
}

}  // namespace
}  // namespace brink::ops
