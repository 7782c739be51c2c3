// brink.QConv / brink.QAdd (fused_quantized.cc) on their integer kernels against the
// reference (ONNX QLinearConv / com.microsoft QLinearAdd's reference kernels, then the clamp),
// and the QDQ pass (fuse_qdq) against the float QDQ graph it replaces.
//
// The integer kernels requantize exactly like the reference (nearbyint(acc * scale) + zero
// point with the same float scale), so QConv must match it byte for byte on every ISA, in
// NCHW and NHWC, on awkward shapes, per-tensor and per-channel, with clamps. QAdd rounds
// after adding the zero point in the reference (ORT's formula) and before it in the kernel,
// which may differ by one on a tie.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/qgemm.h"
#include "op_test_util.h"
#include "ops/evaluate.h"
#include "passes/passes.h"
#include "runtime/compiled_model.h"

namespace brink::ops {
namespace {

Tensor random_u8(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<uint8_t> v(static_cast<size_t>(shape_numel(shape)));
  for (uint8_t& x : v) x = static_cast<uint8_t>(dist(rng));
  return Tensor::from_vector<uint8_t>(shape, v);
}

Tensor random_s8(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-127, 127);
  std::vector<int8_t> v(static_cast<size_t>(shape_numel(shape)));
  for (int8_t& x : v) x = static_cast<int8_t>(dist(rng));
  return Tensor::from_vector<int8_t>(shape, v);
}

Tensor nchw_to_nhwc_u8(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), hw = t.dim(2) * t.dim(3);
  Tensor out = Tensor::empty(DataType::kUInt8, {n, t.dim(2), t.dim(3), c});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p)
        out.data<uint8_t>()[(i * hw + p) * c + ch] = t.data<uint8_t>()[(i * c + ch) * hw + p];
  return out;
}

// Runs `node` on the reference kernels, then on the fast kernels of every supported ISA (two
// threads), and expects the same output bytes (`what` names the case in a failure).
void expect_fast_bytes_equal_reference(const ir::Node& node, const std::vector<const Tensor*>& in,
                                       const std::string& what) {
  std::vector<Tensor> want;
  {
    ReferenceKernels ref;
    auto r = evaluate_node(node, 1, in, EvaluateOptions{});
    ASSERT_TRUE(r.is_ok()) << what << ": " << r.status().message();
    want = std::move(*r);
  }
  for (Isa isa : supported_isas()) {
    EvaluateOptions o;
    o.isa = isa;
    o.num_threads = 2;
    auto got = evaluate_node(node, 1, in, o);
    ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().message();
    ASSERT_EQ((*got)[0].shape(), want[0].shape()) << what;
    ASSERT_EQ((*got)[0].dtype(), want[0].dtype()) << what;
    ASSERT_EQ(std::memcmp((*got)[0].raw_data(), want[0].raw_data(), want[0].nbytes()), 0)
        << what << " " << isa_name(isa);
  }
}

struct QConvCase {
  int64_t n = 1, c = 8, h = 7, w = 7, m = 16, kh = 3, kw = 3, group = 1;
  std::vector<int64_t> strides{1, 1}, dilations{1, 1}, pads{1, 1, 1, 1};
  bool per_channel = true, bias = true;
  uint8_t x_zero = 128, y_zero = 3;
  std::string activation;  // "", "Relu" or "Clip" (0, 6)
  std::string describe() const {
    return "n" + std::to_string(n) + " c" + std::to_string(c) + " " + std::to_string(h) + "x" +
           std::to_string(w) + " m" + std::to_string(m) + " k" + std::to_string(kh) + "x" +
           std::to_string(kw) + " g" + std::to_string(group) + " s" + std::to_string(strides[0]) +
           " d" + std::to_string(dilations[0]) + " p" + std::to_string(pads[0]) +
           (per_channel ? " per-channel" : " per-tensor") + " act=" + activation;
  }
};

ir::Node qconv_node(const QConvCase& c, bool nhwc, size_t inputs = 9) {
  std::vector<ir::Attribute> a = {make_attr("strides", c.strides),
                                  make_attr("dilations", c.dilations), make_attr("pads", c.pads),
                                  make_attr("group", c.group),
                                  make_attr("layout", std::string(nhwc ? "NHWC" : "NCHW"))};
  if (!c.activation.empty()) a.push_back(make_attr("activation", c.activation));
  if (c.activation == "Clip") a.push_back(make_attr("activation_params", std::vector<float>{0, 6}));
  return make_node("QConv", inputs, 1, a, "brink");
}

// `kernels`: kInteger must match the reference byte for byte; the float kernels (kFloat, and
// kWhereFaster where it picks them) compute in float like the unfused QDQ graph and round
// once, so they may differ by one step where a value lies within float error of a tie.
void check_qconv(const QConvCase& c, Int8Kernels kernels = Int8Kernels::kInteger) {
  const int max_diff = kernels == Int8Kernels::kInteger ? 0 : 1;
  const Tensor x = random_u8({c.n, c.c, c.h, c.w}, 11);
  const Tensor w = random_s8({c.m, c.c / c.group, c.kh, c.kw}, 12);
  std::vector<float> ws(static_cast<size_t>(c.per_channel ? c.m : 1));
  for (size_t i = 0; i < ws.size(); ++i) ws[i] = 0.002f + 0.0005f * static_cast<float>(i % 7);
  const Tensor x_scale = Tensor::scalar<float>(0.05f);
  const Tensor x_zero = Tensor::scalar<uint8_t>(c.x_zero);
  const Tensor w_scale =
      c.per_channel ? Tensor::from_vector<float>({c.m}, ws) : Tensor::scalar<float>(ws[0]);
  const Tensor w_zero = Tensor::scalar<int8_t>(0);
  const Tensor y_scale = Tensor::scalar<float>(0.04f);
  const Tensor y_zero = Tensor::scalar<uint8_t>(c.y_zero);
  std::vector<int32_t> bv(static_cast<size_t>(c.m));
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<int32_t>(i * 37 % 2001) - 1000;
  const Tensor b = Tensor::from_vector<int32_t>({c.m}, bv);
  for (bool nhwc : {false, true}) {
    const Tensor xl = nhwc ? nchw_to_nhwc_u8(x) : x;
    std::vector<const Tensor*> in = {&xl,      &x_scale, &x_zero,  &w,
                                     &w_scale, &w_zero,  &y_scale, &y_zero};
    if (c.bias) in.push_back(&b);
    const ir::Node node = qconv_node(c, nhwc, in.size());
    EvaluateOptions ref_options;
    std::vector<Tensor> want;
    {
      ReferenceKernels ref;
      auto r = evaluate_node(node, 1, in, ref_options);
      ASSERT_TRUE(r.is_ok()) << c.describe() << ": " << r.status().message();
      want = std::move(*r);
    }
    for (Isa isa : supported_isas()) {
      for (int threads : {1, 3}) {
        EvaluateOptions o;
        o.isa = isa;
        o.num_threads = threads;
        o.int8_kernels = kernels;
        auto got = evaluate_node(node, 1, in, o);  // constant inputs: the fast path
        ASSERT_TRUE(got.is_ok()) << c.describe() << ": " << got.status().message();
        ASSERT_EQ((*got)[0].shape(), want[0].shape()) << c.describe();
        const auto* g = (*got)[0].data<uint8_t>();
        const auto* e = want[0].data<uint8_t>();
        int64_t mismatches = 0;
        for (int64_t i = 0; i < want[0].numel(); ++i)
          mismatches += std::abs(static_cast<int>(g[i]) - static_cast<int>(e[i])) > max_diff;
        ASSERT_EQ(mismatches, 0) << c.describe() << (nhwc ? " NHWC " : " NCHW ") << isa_name(isa)
                                 << " threads " << threads << " int8 kernels "
                                 << int8_kernels_name(kernels);
      }
    }
  }
}

TEST(QConvFast, MatchesReferenceOnAwkwardShapes) {
  std::vector<QConvCase> cases;
  cases.push_back({});
  QConvCase c1;  // 1x1, odd channels, no padding
  c1.c = 13, c1.m = 17, c1.kh = c1.kw = 1, c1.pads = {0, 0, 0, 0};
  cases.push_back(c1);
  QConvCase c2;  // stem-like: 3 channels, 7x7 stride 2
  c2.c = 3, c2.m = 24, c2.h = 19, c2.w = 17, c2.kh = c2.kw = 7, c2.strides = {2, 2};
  c2.pads = {3, 3, 3, 3};
  c2.activation = "Relu";
  cases.push_back(c2);
  QConvCase c3;  // depthwise 3x3 stride 2, ReLU6
  c3.c = c3.m = c3.group = 35, c3.strides = {2, 2}, c3.activation = "Clip";
  cases.push_back(c3);
  QConvCase c4;  // depthwise stride 1, per tensor, batch 2
  c4.n = 2, c4.c = c4.m = c4.group = 20, c4.per_channel = false, c4.x_zero = 0;
  cases.push_back(c4);
  QConvCase c5;  // grouped, dilated, no bias
  c5.c = 12, c5.m = 8, c5.group = 4, c5.dilations = {2, 2}, c5.pads = {2, 2, 2, 2};
  c5.bias = false, c5.y_zero = 250;
  cases.push_back(c5);
  QConvCase c6;  // more channels than a tile, large K
  c6.c = 67, c6.m = 70, c6.h = 9, c6.w = 11, c6.x_zero = 255, c6.y_zero = 0;
  c6.activation = "Relu";
  cases.push_back(c6);
  for (const QConvCase& c : cases) check_qconv(c);
}

TEST(QConvFast, FloatKernelsMatchReferenceWithinOneStep) {
  // The same awkward shapes on the float path ("INT8 only where faster" falls back to it),
  // and under kWhereFaster, which measures both on these small layers and keeps either.
  std::vector<QConvCase> cases;
  cases.push_back({});
  QConvCase c1;
  c1.c = 13, c1.m = 17, c1.kh = c1.kw = 1, c1.pads = {0, 0, 0, 0}, c1.bias = false;
  cases.push_back(c1);
  QConvCase c2;
  c2.c = 3, c2.m = 24, c2.h = 19, c2.w = 17, c2.kh = c2.kw = 7, c2.strides = {2, 2};
  c2.pads = {3, 3, 3, 3}, c2.activation = "Relu", c2.n = 2;
  cases.push_back(c2);
  QConvCase c5;
  c5.c = 12, c5.m = 8, c5.group = 4, c5.dilations = {2, 2}, c5.pads = {2, 2, 2, 2};
  c5.per_channel = false, c5.y_zero = 250, c5.activation = "Clip";
  cases.push_back(c5);
  for (const QConvCase& c : cases) {
    check_qconv(c, Int8Kernels::kFloat);
    check_qconv(c, Int8Kernels::kWhereFaster);
  }
}

TEST(QAddFast, MatchesReferenceWithinOneStep) {
  const Shape shape{2, 5, 7, 9};
  const Tensor a = random_u8(shape, 1), b = random_u8(shape, 2);
  const Tensor as = Tensor::scalar<float>(0.031f), bs = Tensor::scalar<float>(0.017f),
               ys = Tensor::scalar<float>(0.05f);
  const Tensor az = Tensor::scalar<uint8_t>(120), bz = Tensor::scalar<uint8_t>(7),
               yz = Tensor::scalar<uint8_t>(30);
  for (const std::string act : {"", "Relu"}) {
    std::vector<ir::Attribute> attrs;
    if (!act.empty()) attrs.push_back(make_attr("activation", act));
    const ir::Node node = make_node("QAdd", 8, 1, attrs, "brink");
    std::vector<const Tensor*> in = {&a, &as, &az, &b, &bs, &bz, &ys, &yz};
    std::vector<Tensor> want;
    {
      ReferenceKernels ref;
      auto r = evaluate_node(node, 1, in, EvaluateOptions{});
      ASSERT_TRUE(r.is_ok()) << r.status().message();
      want = std::move(*r);
    }
    for (Isa isa : supported_isas()) {
      EvaluateOptions o;
      o.isa = isa;
      auto got = evaluate_node(node, 1, in, o);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      for (int64_t i = 0; i < want[0].numel(); ++i) {
        const int g = (*got)[0].data<uint8_t>()[i], e = want[0].data<uint8_t>()[i];
        ASSERT_LE(std::abs(g - e), 1) << "element " << i << " " << isa_name(isa) << " act=" << act;
        if (act == "Relu") {
          ASSERT_GE(g, 30);
        }
      }
    }
  }
}

TEST(QConvFast, RejectsNonClampActivation) {
  QConvCase c;
  ir::Node node = qconv_node(c, true, 8);
  node.attributes.push_back(make_attr("activation", std::string("Sigmoid")));
  const Tensor x = random_u8({1, 7, 7, 8}, 1);
  const Tensor w = random_s8({16, 8, 3, 3}, 2);
  const Tensor s = Tensor::scalar<float>(0.1f);
  const Tensor z = Tensor::scalar<uint8_t>(0);
  const Tensor wz = Tensor::scalar<int8_t>(0);
  auto r = evaluate_node(node, 1, {&x, &s, &z, &w, &s, &wz, &s, &z}, EvaluateOptions{});
  ASSERT_FALSE(r.is_ok());
}

TEST(MatMulIntegerToFloatFast, MatchesReferenceBitForBit) {
  for (int64_t k : {1, 7, 37, 300}) {
    for (int64_t n : {1, 19, 64}) {
      const Tensor a = random_u8({2, 5, k}, 3);
      const Tensor b = random_s8({k, n}, 4);
      std::vector<float> sv(static_cast<size_t>(n));
      for (size_t i = 0; i < sv.size(); ++i) sv[i] = 0.001f * static_cast<float>(1 + i % 5);
      const Tensor a_scale = Tensor::scalar<float>(0.021f);
      const Tensor b_scale = Tensor::from_vector<float>({n}, sv);
      const Tensor a_zero = Tensor::scalar<uint8_t>(97);
      const Tensor b_zero = Tensor::scalar<int8_t>(0);
      const Tensor bias = random_tensor({n}, 5);
      const ir::Node node = make_node("MatMulIntegerToFloat", 7, 1, {}, "com.microsoft");
      const std::vector<const Tensor*> in = {&a, &b, &a_scale, &b_scale, &a_zero, &b_zero, &bias};
      ASSERT_NO_FATAL_FAILURE(expect_fast_bytes_equal_reference(
          node, in, "k" + std::to_string(k) + " n" + std::to_string(n)));
    }
  }
}

TEST(QGemmFast, MatchesReferenceBitForBit) {
  // com.microsoft QGemm as the QDQ pass makes it (a CNN's classifier): uint8 A, constant int8
  // B ([N, K] with transB, else [K, N]), per-channel or per-tensor scales, int32 C, uint8 or
  // float output. The fast kernel computes the reference's float operations: equal bytes.
  for (int64_t m : {1, 3}) {
    for (int64_t k : {1, 7, 37, 300}) {
      for (int64_t n : {1, 19, 70}) {
        for (bool trans_b : {false, true}) {
          for (bool quantized : {false, true}) {
            const bool per_channel = (k + n) % 2 == 0;
            const Tensor a = random_u8({m, k}, 6);
            const Tensor b = random_s8(trans_b ? Shape{n, k} : Shape{k, n}, 7);
            std::vector<float> sv(static_cast<size_t>(per_channel ? n : 1));
            for (size_t i = 0; i < sv.size(); ++i) sv[i] = 0.002f * static_cast<float>(1 + i % 3);
            std::vector<int32_t> cv(static_cast<size_t>(n));
            for (size_t i = 0; i < cv.size(); ++i) cv[i] = static_cast<int32_t>(i * 53 % 901) - 450;
            const Tensor a_scale = Tensor::scalar<float>(0.03f);
            const Tensor a_zero = Tensor::scalar<uint8_t>(11);
            const Tensor b_scale =
                per_channel ? Tensor::from_vector<float>({n}, sv) : Tensor::scalar<float>(sv[0]);
            const Tensor b_zero = Tensor::scalar<int8_t>(0);
            const Tensor c = Tensor::from_vector<int32_t>({n}, cv);
            const Tensor y_scale = Tensor::scalar<float>(0.05f);
            const Tensor y_zero = Tensor::scalar<uint8_t>(120);
            std::vector<const Tensor*> in = {&a, &a_scale, &a_zero, &b, &b_scale, &b_zero, &c};
            if (quantized) in.insert(in.end(), {&y_scale, &y_zero});
            const ir::Node node = make_node(
                "QGemm", in.size(), 1, {make_attr("transB", int64_t{trans_b})}, "com.microsoft");
            const std::string what = "m" + std::to_string(m) + " k" + std::to_string(k) + " n" +
                                     std::to_string(n) + (trans_b ? " transB" : "") +
                                     (quantized ? " u8" : " f32");
            ASSERT_NO_FATAL_FAILURE(expect_fast_bytes_equal_reference(node, in, what));
          }
        }
      }
    }
  }
}

TEST(QLinearGlobalAveragePoolFast, ChannelsLastMatchesReferenceBitForBit) {
  for (int64_t n : {1, 2}) {
    for (int64_t hw : {1, 7, 49}) {
      for (int64_t c : {1, 13, 64, 2048}) {
        const Tensor x = random_u8({n, hw, 1, c}, 8);
        const Tensor xs = Tensor::scalar<float>(0.07f), ys = Tensor::scalar<float>(0.05f);
        const Tensor xz = Tensor::scalar<uint8_t>(9), yz = Tensor::scalar<uint8_t>(131);
        const ir::Node node = make_node("QLinearGlobalAveragePool", 5, 1,
                                        {make_attr("channels_last", int64_t{1})}, "com.microsoft");
        const std::vector<const Tensor*> in = {&x, &xs, &xz, &ys, &yz};
        ASSERT_NO_FATAL_FAILURE(expect_fast_bytes_equal_reference(
            node, in,
            "n" + std::to_string(n) + " hw" + std::to_string(hw) + " c" + std::to_string(c)));
      }
    }
  }
}

}  // namespace
}  // namespace brink::ops
