// Quantization reference kernels: QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear,
// integer matmul and conv, and the com.microsoft QOperator ops. Several expected values come
// from the ONNX backend node tests and from ONNX Runtime 1.32, which these kernels match bit
// for bit.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/evaluate.h"

namespace brink::ops {
namespace {

const std::string kMs = "com.microsoft";

template <typename T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

template <typename T>
Tensor scalar(T v) {
  return Tensor::scalar<T>(v);
}

Result<std::vector<Tensor>> eval(const std::string& op, int64_t opset,
                                 const std::vector<const Tensor*>& in,
                                 std::vector<ir::Attribute> attrs = {},
                                 const std::string& domain = "", size_t outputs = 1) {
  return evaluate_node(make_node(op, in.size(), outputs, std::move(attrs), domain), opset, in);
}

// ---- QuantizeLinear / DequantizeLinear ----------------------------------------------------

TEST(Quantized, QuantizeSaturatesToUint8Range) {
  Tensor x = Tensor::from_vector<float>({6}, {-1000.f, -1.f, 0.f, 254.4f, 255.6f, 1000.f});
  Tensor s = scalar(1.0f);
  Tensor z = scalar<uint8_t>(0);
  auto out = eval("QuantizeLinear", 13, {&x, &s, &z});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{0, 0, 0, 254, 255, 255}));
}

TEST(Quantized, QuantizeSaturatesToInt8Range) {
  Tensor x = Tensor::from_vector<float>({6}, {-1000.f, -128.4f, -129.f, 126.6f, 127.4f, 1000.f});
  Tensor s = scalar(1.0f);
  Tensor z = scalar<int8_t>(0);
  auto out = eval("QuantizeLinear", 13, {&x, &s, &z});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int8_t>((*out)[0]), (std::vector<int8_t>{-128, -128, -128, 127, 127, 127}));
}

TEST(Quantized, QuantizeRoundsHalfToEvenBeforeAddingTheZeroPoint) {
  Tensor x = Tensor::from_vector<float>({7}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f});
  Tensor s = scalar(1.0f);
  Tensor z0 = scalar<int8_t>(0), z1 = scalar<int8_t>(1);
  auto out = eval("QuantizeLinear", 10, {&x, &s, &z0});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int8_t>((*out)[0]), (std::vector<int8_t>{0, 2, 2, 0, -2, -2, 4}));
  out = eval("QuantizeLinear", 10, {&x, &s, &z1});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int8_t>((*out)[0]), (std::vector<int8_t>{1, 3, 3, 1, -1, -1, 5}));
}

TEST(Quantized, QuantizeWithoutZeroPointDefaultsToUint8OrOutputDtype) {
  Tensor x = Tensor::from_vector<float>({3}, {-2.f, 0.f, 2.f});
  Tensor s = scalar(1.0f);
  auto out = eval("QuantizeLinear", 13, {&x, &s});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{0, 0, 2}));
  out = eval("QuantizeLinear", 21, {&x, &s}, {make_attr("output_dtype", int64_t{5})});  // int16
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int16_t>((*out)[0]), (std::vector<int16_t>{-2, 0, 2}));
}

TEST(Quantized, QuantizePerAxisAndBlocked) {
  Tensor x = Tensor::from_vector<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor s = Tensor::from_vector<float>({2}, {1.0f, 0.5f});
  Tensor z = Tensor::from_vector<uint8_t>({2}, {0, 10});
  auto out = eval("QuantizeLinear", 13, {&x, &s, &z}, {make_attr("axis", int64_t{0})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{1, 2, 3, 4, 20, 22, 24, 26}));

  // Blocks of 3 along axis 1: columns {0, 1, 2} and {3}.
  Tensor bs = Tensor::from_vector<float>({2, 2}, {1.0f, 0.25f, 2.0f, 4.0f});
  Tensor bz = Tensor::from_vector<int8_t>({2, 2}, {0, 1, -1, 2});
  out = eval("QuantizeLinear", 21, {&x, &bs, &bz},
             {make_attr("axis", int64_t{1}), make_attr("block_size", int64_t{3})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int8_t>((*out)[0]), (std::vector<int8_t>{1, 2, 3, 17, 1, 2, 3, 4}));

  // Per-axis scales do not exist before opset 13.
  out = eval("QuantizeLinear", 10, {&x, &s, &z});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("opset 13"), std::string::npos) << out.status().message();
}

TEST(Quantized, QuantizeRejectsInt4AndFloat8) {
  Tensor x = Tensor::from_vector<float>({2}, {1, 2});
  Tensor s = scalar(1.0f);
  for (int64_t code : {17, 22}) {
    auto out = eval("QuantizeLinear", 21, {&x, &s}, {make_attr("output_dtype", code)});
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(out.status().message().find(code == 22 ? "int4" : "float8"), std::string::npos)
        << out.status().message();
  }
}

TEST(Quantized, QuantizeFloat16Input) {
  Tensor x = Tensor::from_vector<Float16>({3}, {Float16(1.0f), Float16(-3.0f), Float16(0.75f)});
  Tensor s = Tensor::scalar<Float16>(Float16(0.5f));
  Tensor z = scalar<uint8_t>(128);
  auto out = eval("QuantizeLinear", 19, {&x, &s, &z});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{130, 122, 130}));  // 1.5 rounds to 2
}

TEST(Quantized, DequantizePerTensorPerAxisAndScaleDtype) {
  Tensor x = Tensor::from_vector<uint8_t>({4}, {0, 3, 128, 255});
  Tensor s = scalar(2.0f);
  Tensor z = scalar<uint8_t>(128);
  auto out = eval("DequantizeLinear", 10, {&x, &s, &z});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<float>((*out)[0]), (std::vector<float>{-256, -250, 0, 254}));  // ONNX node test

  Tensor xi = Tensor::from_vector<int8_t>({2, 2}, {-1, 2, -3, 4});
  Tensor sa = Tensor::from_vector<float>({2}, {0.5f, 2.0f});
  Tensor za = Tensor::from_vector<int8_t>({2}, {1, -1});
  out = eval("DequantizeLinear", 13, {&xi, &sa, &za}, {make_attr("axis", int64_t{-1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<float>((*out)[0]), (std::vector<float>{-1.0f, 6.0f, -2.0f, 10.0f}));

  // From opset 19 the output takes the scale's element type.
  Tensor sh = Tensor::scalar<Float16>(Float16(0.5f));
  out = eval("DequantizeLinear", 19, {&x, &sh, &z});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].dtype(), DataType::kFloat16);
  EXPECT_EQ(static_cast<float>((*out)[0].data<Float16>()[3]), 63.5f);

  Tensor x32 = Tensor::from_vector<int32_t>({2}, {-100000, 7});
  out = eval("DequantizeLinear", 13, {&x32, &s});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<float>((*out)[0]), (std::vector<float>{-200000.f, 14.f}));
}

TEST(Quantized, DynamicQuantizeLinear) {
  Tensor x = Tensor::from_vector<float>({6}, {0.f, 2.f, -3.f, -2.5f, 1.34f, 0.5f});
  auto out = eval("DynamicQuantizeLinear", 11, {&x}, {}, "", 3);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]),
            (std::vector<uint8_t>{153, 255, 0, 26, 221, 179}));  // ONNX node test
  EXPECT_FLOAT_EQ((*out)[1].data<float>()[0], 0.019607843f);
  EXPECT_EQ((*out)[2].data<uint8_t>()[0], 153);
}

// ---- integer matmul / conv ----------------------------------------------------------------

TEST(Quantized, MatMulIntegerWithZeroPointsAndBatchBroadcast) {
  Tensor a = Tensor::from_vector<uint8_t>({4, 3}, {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0});
  Tensor b = Tensor::from_vector<uint8_t>({3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor az = Tensor::from_vector<uint8_t>({1}, {12});
  Tensor bz = Tensor::from_vector<uint8_t>({1}, {0});
  auto out = eval("MatMulInteger", 10, {&a, &b, &az, &bz});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int32_t>((*out)[0]),
            (std::vector<int32_t>{-38, -83, -44, -98, -50, -113, -56, -128}));

  // Batched A [2, 1, 2] against a shared B [2, 2] with a per-column i8 zero point.
  Tensor a3 = Tensor::from_vector<int8_t>({2, 1, 2}, {1, 2, -3, 4});
  Tensor b2 = Tensor::from_vector<int8_t>({2, 2}, {1, 0, 0, 1});
  Tensor bzc = Tensor::from_vector<int8_t>({2}, {0, -1});
  out = eval("MatMulInteger", 10, {&a3, &b2, nullptr, &bzc});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(values<int32_t>((*out)[0]), (std::vector<int32_t>{1, 5, -3, 5}));
}

TEST(Quantized, QLinearMatMulMatchesNodeTest) {
  Tensor a = Tensor::from_vector<uint8_t>({2, 4}, {208, 236, 0, 238, 3, 214, 255, 29});
  Tensor as = Tensor::from_vector<float>({1}, {0.0066f});
  Tensor az = Tensor::from_vector<uint8_t>({1}, {113});
  Tensor b =
      Tensor::from_vector<uint8_t>({4, 3}, {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247});
  Tensor bs = Tensor::from_vector<float>({1}, {0.00705f});
  Tensor bz = Tensor::from_vector<uint8_t>({1}, {114});
  Tensor ys = Tensor::from_vector<float>({1}, {0.0107f});
  Tensor yz = Tensor::from_vector<uint8_t>({1}, {118});
  auto out = eval("QLinearMatMul", 10, {&a, &as, &az, &b, &bs, &bz, &ys, &yz});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{168, 115, 255, 1, 66, 151}));
}

TEST(Quantized, ConvIntegerWithPadding) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 3, 3}, {2, 3, 4, 5, 6, 7, 8, 9, 10});
  Tensor w = Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor xz = scalar<uint8_t>(1);
  auto out =
      eval("ConvInteger", 10, {&x, &w, &xz}, {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // Padding contributes the zero point, i.e. nothing after the zero point is subtracted.
  EXPECT_EQ(values<int32_t>((*out)[0]),
            (std::vector<int32_t>{1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9}));
}

TEST(Quantized, PerChannelQLinearConvMatchesFloatConv) {
  // x u8 [1, 2, 5, 5], w i8 [3, 2, 3, 3] with per-output-channel scales and zero points, pads 1.
  const int64_t C = 2, M = 3, H = 5, W = 5, K = 3;
  std::vector<uint8_t> xv(static_cast<size_t>(C * H * W));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  std::vector<int8_t> wv(static_cast<size_t>(M * C * K * K));
  for (size_t i = 0; i < wv.size(); ++i)
    wv[i] = static_cast<int8_t>(static_cast<int>((i * 53 + 7) % 255) - 127);
  const float sx = 0.02f, sy = 0.05f;
  const int32_t zx = 128, zy = 100;
  const std::vector<float> sw = {0.01f, 0.02f, 0.005f};
  const std::vector<int8_t> zw = {0, 1, -2};
  const std::vector<int32_t> bias = {100, -2000, 5000};
  Tensor x = Tensor::from_vector<uint8_t>({1, C, H, W}, xv);
  Tensor xs = scalar(sx), xz = scalar<uint8_t>(zx);
  Tensor w = Tensor::from_vector<int8_t>({M, C, K, K}, wv);
  Tensor ws = Tensor::from_vector<float>({M}, sw);
  Tensor wz = Tensor::from_vector<int8_t>({M}, zw);
  Tensor ys = scalar(sy), yz = scalar<uint8_t>(zy);
  Tensor b = Tensor::from_vector<int32_t>({M}, bias);
  auto out = eval("QLinearConv", 10, {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz, &b},
                  {make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const Tensor& y = (*out)[0];
  ASSERT_EQ(y.shape(), (Shape{1, M, H, W}));

  int saturated = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t oh = 0; oh < H; ++oh)
      for (int64_t ow = 0; ow < W; ++ow) {
        double acc =
            bias[static_cast<size_t>(m)] * static_cast<double>(sx) * sw[static_cast<size_t>(m)];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t kh = 0; kh < K; ++kh)
            for (int64_t kw = 0; kw < K; ++kw) {
              const int64_t ih = oh - 1 + kh, iw = ow - 1 + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const double xf = sx * (xv[static_cast<size_t>((c * H + ih) * W + iw)] - zx);
              const double wf = sw[static_cast<size_t>(m)] *
                                (wv[static_cast<size_t>(((m * C + c) * K + kh) * K + kw)] -
                                 zw[static_cast<size_t>(m)]);
              acc += xf * wf;
            }
        const double q = acc / sy;
        const double want = std::clamp(std::nearbyint(q) + zy, 0.0, 255.0);
        const int got = y.data<uint8_t>()[(m * H + oh) * W + ow];
        if (want == 0 || want == 255) ++saturated;
        // Float rounding may only disagree on values within a hair of a .5 tie.
        if (std::abs(std::abs(q - std::floor(q)) - 0.5) > 1e-3) {
          EXPECT_EQ(got, static_cast<int>(want)) << "m=" << m << " oh=" << oh << " ow=" << ow;
        } else {
          EXPECT_LE(std::abs(got - want), 1.0);
        }
      }
  EXPECT_GT(saturated, 0);  // the case exercises saturation too
}

TEST(Quantized, RejectsMismatchedPerChannelScale) {
  Tensor x = Tensor::zeros(DataType::kUInt8, {1, 1, 3, 3});
  Tensor w = Tensor::zeros(DataType::kUInt8, {2, 1, 1, 1});
  Tensor s = scalar(1.0f), z = scalar<uint8_t>(0);
  Tensor ws = Tensor::from_vector<float>({3}, {1, 1, 1});
  auto out = eval("QLinearConv", 10, {&x, &s, &z, &w, &ws, &z, &s, &z});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("w_scale"), std::string::npos) << out.status().message();
}

// ---- com.microsoft ------------------------------------------------------------------------

TEST(QuantizedContrib, QLinearAddSaturatesAndRoundsAfterZeroPointLikeOrt) {
  Tensor a = Tensor::from_vector<uint8_t>({3}, {10, 20, 1});
  Tensor b = Tensor::from_vector<uint8_t>({3}, {4, 255, 0});
  Tensor sa = scalar(0.5f), sb = scalar(1.0f), sc = scalar(1.0f);
  Tensor z0 = scalar<uint8_t>(0), z1 = scalar<uint8_t>(1);
  auto out = eval("QLinearAdd", 1, {&a, &sa, &z0, &b, &sb, &z0, &sc, &z1}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // 5 + 4 + 1; 10 + 255 saturates; 0.5 + 1 = 1.5 rounds to 2 (ORT adds the zero point first).
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{10, 255, 2}));
}

TEST(QuantizedContrib, QLinearMulBroadcasts) {
  Tensor a = Tensor::from_vector<int8_t>({2, 2}, {1, 2, 3, -4});
  Tensor b = Tensor::from_vector<int8_t>({2}, {10, -100});
  Tensor s = scalar(1.0f), sc = scalar(2.0f), z = scalar<int8_t>(0);
  auto out = eval("QLinearMul", 1, {&a, &s, &z, &b, &s, &z, &sc, &z}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<int8_t>((*out)[0]), (std::vector<int8_t>{5, -100, 15, 127}));
}

TEST(QuantizedContrib, QLinearSigmoidAndLeakyRelu) {
  Tensor x = Tensor::from_vector<uint8_t>({3}, {118, 128, 138});
  Tensor sx = scalar(0.1f), zx = scalar<uint8_t>(128);
  Tensor sy = scalar(1.0f / 256), zy = scalar<uint8_t>(0);
  auto out = eval("QLinearSigmoid", 1, {&x, &sx, &zx, &sy, &zy}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // sigmoid(-1) * 256 = 68.83, sigmoid(0) * 256 = 128, sigmoid(1) * 256 = 187.17
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{69, 128, 187}));

  Tensor sl = scalar(0.1f);
  out = eval("QLinearLeakyRelu", 1, {&x, &sx, &zx, &sl, &zx}, {make_attr("alpha", 0.5f)}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{123, 128, 138}));
}

TEST(QuantizedContrib, QLinearConcatRequantizesInputsWithOtherParameters) {
  Tensor ys = scalar(1.0f), yz = scalar<uint8_t>(10);
  Tensor a = Tensor::from_vector<uint8_t>({2, 1}, {11, 12});  // same parameters as Y: copied
  Tensor b = Tensor::from_vector<uint8_t>({2, 2}, {0, 4, 8, 255});
  Tensor sb = scalar(0.5f), zb = scalar<uint8_t>(0);
  auto out = eval("QLinearConcat", 1, {&ys, &yz, &a, &ys, &yz, &b, &sb, &zb},
                  {make_attr("axis", int64_t{1})}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{11, 10, 12, 12, 14, 138}));
}

TEST(QuantizedContrib, QLinearPools) {
  // [1, 1, 2, 2] NCHW and [1, 2, 2, 1] NHWC hold the same single channel.
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {10, 20, 30, 41});
  Tensor s = scalar(1.0f), z = scalar<uint8_t>(0), z5 = scalar<uint8_t>(5);
  auto out = eval("QLinearGlobalAveragePool", 1, {&x, &s, &z, &s, &z5}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ((*out)[0].data<uint8_t>()[0], 30);  // 25.25 + 5

  Tensor xl = x.reshaped({1, 2, 2, 1});
  out = eval("QLinearGlobalAveragePool", 1, {&xl, &s, &z, &s, &z5},
             {make_attr("channels_last", int64_t{1})}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ((*out)[0].data<uint8_t>()[0], 30);

  // 2x2 windows over a 1-padded 2x2 image: corners see one real value.
  std::vector<ir::Attribute> attrs = {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                      make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})};
  out = eval("QLinearAveragePool", 1, {&x, &s, &z, &s, &z}, attrs, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{10, 15, 20, 20, 25, 30, 30, 36, 41}));
  attrs.push_back(make_attr("count_include_pad", int64_t{1}));
  out = eval("QLinearAveragePool", 1, {&x, &s, &z, &s, &z}, attrs, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(values<uint8_t>((*out)[0]), (std::vector<uint8_t>{2, 8, 5, 10, 25, 15, 8, 18, 10}));
}

TEST(QuantizedContrib, QGemmQuantizedAndFloatOutputs) {
  Tensor a = Tensor::from_vector<uint8_t>({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from_vector<uint8_t>({2, 2}, {1, 0, 0, 1});
  Tensor sa = scalar(0.5f), sb = scalar(2.0f), za = scalar<uint8_t>(1), zb = scalar<uint8_t>(0);
  Tensor c = Tensor::from_vector<int32_t>({2}, {1, 100});
  auto out = eval("QGemm", 1, {&a, &sa, &za, &b, &sb, &zb, &c}, {make_attr("alpha", 2.0f)}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].dtype(), DataType::kFloat32);
  // ((A - 1) B + C) * alpha * a_scale * b_scale
  EXPECT_EQ(values<float>((*out)[0]), (std::vector<float>{2, 202, 6, 206}));

  Tensor ys = scalar(2.0f), yz = scalar<uint8_t>(250);
  out = eval("QGemm", 1, {&a, &sa, &za, &b, &sb, &zb, &c, &ys, &yz},
             {make_attr("transB", int64_t{1})}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_EQ((*out)[0].dtype(), DataType::kUInt8);
  EXPECT_EQ(values<uint8_t>((*out)[0]),
            (std::vector<uint8_t>{250, 255, 252, 255}));  // 0.5 -> 0, 50.5 -> saturated
}

TEST(QuantizedContrib, MatMulIntegerToFloatAndDynamicQuantizeMatMul) {
  Tensor a = Tensor::from_vector<uint8_t>({1, 2}, {3, 5});
  Tensor b = Tensor::from_vector<int8_t>({2, 2}, {1, -1, 2, 3});
  Tensor sa = scalar(0.5f), za = scalar<uint8_t>(1);
  Tensor sb = Tensor::from_vector<float>({2}, {1.0f, 0.25f});
  Tensor bias = Tensor::from_vector<float>({2}, {0.5f, -1.0f});
  auto out = eval("MatMulIntegerToFloat", 1, {&a, &b, &sa, &sb, &za, nullptr, &bias}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  // (A - 1) B = [2*1 + 4*2, -2 + 12] = [10, 10]; scaled by [0.5, 0.125] plus bias.
  EXPECT_EQ(values<float>((*out)[0]), (std::vector<float>{5.5f, 0.25f}));

  Tensor af = Tensor::from_vector<float>({2, 3}, {0.1f, -0.7f, 1.3f, 2.0f, 0.0f, -1.1f});
  Tensor bq = Tensor::from_vector<int8_t>({3, 2}, {10, -20, 30, 40, -50, 60});
  Tensor s = scalar(0.01f);
  out = eval("DynamicQuantizeMatMul", 1, {&af, &bq, &s}, {}, kMs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const std::vector<float> want = {0.1f * 0.1f - 0.7f * 0.3f - 1.3f * 0.5f,
                                   -0.1f * 0.2f - 0.7f * 0.4f + 1.3f * 0.6f, 0.2f + 1.1f * 0.5f,
                                   -0.4f - 1.1f * 0.6f};
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NEAR((*out)[0].data<float>()[i], want[i], 0.02f);  // A is quantized to u8
}

}  // namespace
}  // namespace brink::ops
