// Conv and ConvTranspose reference kernels against hand-computed values and against a naive
// loop-per-output-element implementation on awkward shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "op_test_util.h"
#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                  double tol = 1e-4) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.element_as_double(i), want[static_cast<size_t>(i)], tol) << "element " << i;
}

struct ConvCase {
  Shape x, w;  // X [N, C, spatial...], W [M, C/group, k...] (ConvTranspose: [C, M/group, k...])
  std::vector<int64_t> strides, dilations, pads;  // pads: begins then ends
  int64_t group = 1;
  bool bias = true;
};

// Iterates every multi-index below `shape` (row-major).
bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& shape) {
  for (size_t d = idx.size(); d-- > 0;) {
    if (++idx[d] < shape[d]) return true;
    idx[d] = 0;
  }
  return false;
}

int64_t flat_index(const std::vector<int64_t>& idx, const std::vector<int64_t>& shape) {
  int64_t f = 0;
  for (size_t d = 0; d < idx.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

// The textbook definition, one output element at a time.
std::vector<double> naive_conv(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor* b,
                               Shape* out_shape) {
  const size_t n = c.x.size() - 2;
  const int64_t m_total = c.w[0], cg = c.w[1], mg = m_total / c.group;
  std::vector<int64_t> in(c.x.begin() + 2, c.x.end()), k(c.w.begin() + 2, c.w.end()), out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] =
        (in[i] + c.pads[i] + c.pads[n + i] - (k[i] - 1) * c.dilations[i] - 1) / c.strides[i] + 1;
  *out_shape = {c.x[0], m_total};
  out_shape->insert(out_shape->end(), out.begin(), out.end());
  std::vector<double> y;
  for (int64_t ni = 0; ni < c.x[0]; ++ni) {
    for (int64_t m = 0; m < m_total; ++m) {
      std::vector<int64_t> o(n, 0);
      do {
        double s = b ? b->element_as_double(m) : 0.0;
        for (int64_t ci = 0; ci < cg; ++ci) {
          const int64_t channel = (m / mg) * cg + ci;
          std::vector<int64_t> kk(n, 0);
          do {
            std::vector<int64_t> pos(n);
            bool inside = true;
            for (size_t i = 0; i < n; ++i) {
              pos[i] = o[i] * c.strides[i] + kk[i] * c.dilations[i] - c.pads[i];
              if (pos[i] < 0 || pos[i] >= in[i]) inside = false;
            }
            if (!inside) continue;
            const int64_t xi = (ni * c.x[1] + channel) * shape_numel(in) + flat_index(pos, in);
            const int64_t wi = (m * cg + ci) * shape_numel(k) + flat_index(kk, k);
            s += x.element_as_double(xi) * w.element_as_double(wi);
          } while (next_index(kk, k));
        }
        y.push_back(s);
      } while (next_index(o, out));
    }
  }
  return y;
}

// Scatter form of the transposed convolution: every input element adds w * x to the outputs
// it reaches.
std::vector<double> naive_conv_transpose(const ConvCase& c,
                                         const std::vector<int64_t>& output_padding,
                                         const Tensor& x, const Tensor& w, const Tensor* b,
                                         Shape* out_shape) {
  const size_t n = c.x.size() - 2;
  const int64_t channels = c.x[1], mg = c.w[1], cg = channels / c.group, m_total = mg * c.group;
  std::vector<int64_t> in(c.x.begin() + 2, c.x.end()), k(c.w.begin() + 2, c.w.end()), out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = c.strides[i] * (in[i] - 1) + output_padding[i] + (k[i] - 1) * c.dilations[i] + 1 -
             c.pads[i] - c.pads[n + i];
  *out_shape = {c.x[0], m_total};
  out_shape->insert(out_shape->end(), out.begin(), out.end());
  const int64_t out_size = shape_numel(out);
  std::vector<double> y(static_cast<size_t>(c.x[0] * m_total * out_size));
  for (int64_t ni = 0; ni < c.x[0]; ++ni)
    for (int64_t m = 0; m < m_total; ++m)
      for (int64_t p = 0; p < out_size; ++p)
        y[static_cast<size_t>((ni * m_total + m) * out_size + p)] =
            b ? b->element_as_double(m) : 0.0;
  for (int64_t ni = 0; ni < c.x[0]; ++ni) {
    for (int64_t ch = 0; ch < channels; ++ch) {
      const int64_t grp = ch / cg;
      std::vector<int64_t> i_idx(n, 0);
      do {
        const double xv =
            x.element_as_double((ni * channels + ch) * shape_numel(in) + flat_index(i_idx, in));
        for (int64_t mi = 0; mi < mg; ++mi) {
          std::vector<int64_t> kk(n, 0);
          do {
            std::vector<int64_t> pos(n);
            bool inside = true;
            for (size_t i = 0; i < n; ++i) {
              pos[i] = i_idx[i] * c.strides[i] + kk[i] * c.dilations[i] - c.pads[i];
              if (pos[i] < 0 || pos[i] >= out[i]) inside = false;
            }
            if (!inside) continue;
            const int64_t m = grp * mg + mi;
            const double wv =
                w.element_as_double((ch * mg + mi) * shape_numel(k) + flat_index(kk, k));
            y[static_cast<size_t>((ni * m_total + m) * out_size + flat_index(pos, out))] += wv * xv;
          } while (next_index(kk, k));
        }
      } while (next_index(i_idx, in));
    }
  }
  return y;
}

std::vector<ir::Attribute> conv_attrs(const ConvCase& c) {
  return {make_attr("strides", c.strides), make_attr("dilations", c.dilations),
          make_attr("pads", c.pads), make_attr("group", c.group)};
}

void check_conv(const ConvCase& c, uint32_t seed) {
  SCOPED_TRACE("X " + shape_to_string(c.x) + " W " + shape_to_string(c.w) + " group " +
               std::to_string(c.group));
  Tensor x = random_tensor(c.x, seed), w = random_tensor(c.w, seed + 1),
         b = random_tensor({c.w[0]}, seed + 2);
  std::vector<const Tensor*> inputs{&x, &w};
  if (c.bias) inputs.push_back(&b);
  auto out = evaluate_node(make_node("Conv", inputs.size(), 1, conv_attrs(c)), 13, inputs);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  Shape shape;
  const std::vector<double> want = naive_conv(c, x, w, c.bias ? &b : nullptr, &shape);
  expect_close((*out)[0], shape, want);
}

TEST(Conv, MatchesOnnxDocExampleWithPadding) {
  std::vector<float> xv(25);
  for (int i = 0; i < 25; ++i) xv[static_cast<size_t>(i)] = static_cast<float>(i);
  Tensor x = Tensor::from_vector<float>({1, 1, 5, 5}, xv);
  Tensor w = Tensor::from_vector<float>({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  auto out = evaluate_node(make_node("Conv", 2, 1,
                                     {make_attr("kernel_shape", std::vector<int64_t>{3, 3}),
                                      make_attr("pads", std::vector<int64_t>{1, 1, 1, 1})}),
                           11, {&x, &w});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  expect_close((*out)[0], {1, 1, 5, 5},
               {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84});
}

TEST(Conv, AwkwardShapesMatchNaiveLoops) {
  const std::vector<ConvCase> cases = {
      // Odd channel counts; output channels that fill one block of 8 plus a remainder.
      {{1, 3, 7, 5}, {17, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}},
      // 1x1 image, kernel 1x1 (the pointwise path) and with padding.
      {{2, 5, 1, 1}, {9, 5, 1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}},
      {{1, 2, 1, 1}, {3, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}},
      // Large strides, asymmetric padding on every side.
      {{1, 2, 9, 8}, {4, 2, 3, 2}, {5, 4}, {1, 1}, {2, 0, 1, 3}},
      {{1, 1, 4, 4}, {1, 1, 2, 2}, {7, 7}, {1, 1}, {0, 1, 2, 0}},
      // Groups, depthwise, dilation.
      {{2, 6, 6, 7}, {9, 2, 3, 3}, {1, 2}, {2, 1}, {1, 2, 2, 1}, 3},
      {{1, 5, 8, 8}, {5, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 5},
      {{1, 4, 9, 9}, {8, 1, 3, 3}, {1, 1}, {3, 2}, {3, 2, 3, 2}, 4, false},
      // Pointwise with a stride (not the collapsed path).
      {{1, 16, 6, 6}, {24, 16, 1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}},
      // 1-D and 3-D.
      {{2, 3, 11}, {5, 3, 4}, {2}, {2}, {1, 2}},
      {{1, 2, 4, 5, 3}, {10, 2, 2, 3, 1}, {1, 2, 1}, {2, 1, 1}, {1, 0, 0, 0, 1, 2}},
      {{1, 4, 3, 3, 3}, {4, 2, 3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, 2},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) check_conv(c, seed += 3);
}

TEST(Conv, AutoPadSameAndValid) {
  Tensor x = random_tensor({1, 2, 7, 6}, 5), w = random_tensor({3, 2, 3, 2}, 6);
  struct Want {
    const char* mode;
    std::vector<int64_t> pads;  // the explicit pads this mode resolves to
    Shape out;
  };
  // Strides 2x3: SAME gives ceil(7/2)=4, ceil(6/3)=2; total pads 2 (rows) and 0 (cols);
  // dilated kernel rows 5: total (4-1)*2+5-7 = 4.
  for (const Want& want : {Want{"SAME_UPPER", {2, 0, 2, 0}, {1, 3, 4, 2}},
                           Want{"SAME_LOWER", {2, 0, 2, 0}, {1, 3, 4, 2}},
                           Want{"VALID", {0, 0, 0, 0}, {1, 3, 2, 2}}}) {
    SCOPED_TRACE(want.mode);
    std::vector<ir::Attribute> attrs{make_attr("auto_pad", std::string(want.mode)),
                                     make_attr("strides", std::vector<int64_t>{2, 3}),
                                     make_attr("dilations", std::vector<int64_t>{2, 1})};
    auto out = evaluate_node(make_node("Conv", 2, 1, attrs), 11, {&x, &w});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    ConvCase c{{1, 2, 7, 6}, {3, 2, 3, 2}, {2, 3}, {2, 1}, want.pads, 1, false};
    Shape shape;
    const std::vector<double> expect = naive_conv(c, x, w, nullptr, &shape);
    expect_close((*out)[0], want.out, expect);
  }
  // Odd total padding: SAME_UPPER puts the extra row at the end, SAME_LOWER at the start.
  Tensor x2 = random_tensor({1, 1, 4, 4}, 8), w2 = random_tensor({1, 1, 2, 2}, 9);
  for (auto [mode, pads] : {std::pair{"SAME_UPPER", std::vector<int64_t>{0, 0, 1, 1}},
                            std::pair{"SAME_LOWER", std::vector<int64_t>{1, 1, 0, 0}}}) {
    auto out = evaluate_node(make_node("Conv", 2, 1, {make_attr("auto_pad", std::string(mode))}),
                             11, {&x2, &w2});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    ConvCase c{{1, 1, 4, 4}, {1, 1, 2, 2}, {1, 1}, {1, 1}, pads, 1, false};
    Shape shape;
    expect_close((*out)[0], {1, 1, 4, 4}, naive_conv(c, x2, w2, nullptr, &shape));
  }
}

TEST(Conv, DoubleAndHalfPrecision) {
  ConvCase c{{1, 3, 5, 4}, {10, 3, 2, 3}, {1, 2}, {1, 1}, {1, 0, 0, 1}};
  Tensor xf = random_tensor(c.x, 21), wf = random_tensor(c.w, 22), bf = random_tensor({10}, 23);
  Shape shape;
  const std::vector<double> want = naive_conv(c, xf, wf, &bf, &shape);
  auto convert = [](const Tensor& t, DataType dt) {
    Tensor r = Tensor::empty(dt, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (dt == DataType::kFloat64)
        r.data<double>()[i] = t.data<float>()[i];
      else
        r.data<Float16>()[i] = Float16(t.data<float>()[i]);
    }
    return r;
  };
  for (DataType dt : {DataType::kFloat64, DataType::kFloat16}) {
    Tensor x = convert(xf, dt), w = convert(wf, dt), b = convert(bf, dt);
    auto out = evaluate_node(make_node("Conv", 3, 1, conv_attrs(c)), 11, {&x, &w, &b});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    EXPECT_EQ((*out)[0].dtype(), dt);
    // f16 inputs are rounded, so compare against the exact result loosely.
    expect_close((*out)[0], shape, want, dt == DataType::kFloat64 ? 1e-5 : 2e-2);
  }
}

TEST(Conv, RejectsMismatchedChannelsAndKernelShape) {
  Tensor x = Tensor::zeros(DataType::kFloat32, {1, 4, 5, 5});
  Tensor w = Tensor::zeros(DataType::kFloat32, {2, 3, 3, 3});
  auto out = evaluate_node(make_node("Conv", 2, 1), 11, {&x, &w});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("4 channels, expected 3"), std::string::npos)
      << out.status().message();

  Tensor w2 = Tensor::zeros(DataType::kFloat32, {2, 4, 3, 3});
  auto bad_kernel = evaluate_node(
      make_node("Conv", 2, 1, {make_attr("kernel_shape", std::vector<int64_t>{2, 2})}), 11,
      {&x, &w2});
  ASSERT_FALSE(bad_kernel.is_ok());
  EXPECT_NE(bad_kernel.status().message().find("kernel_shape"), std::string::npos);

  Tensor xi = Tensor::zeros(DataType::kInt32, {1, 4, 5, 5});
  Tensor wi = Tensor::zeros(DataType::kInt32, {2, 4, 3, 3});
  auto ints = evaluate_node(make_node("Conv", 2, 1), 11, {&xi, &wi});
  ASSERT_FALSE(ints.is_ok());
  EXPECT_EQ(ints.status().code(), StatusCode::kUnsupported);
}

TEST(Conv, InferKeepsSymbolicBatchAndComputesSpatialDims) {
  const OpDef* def = OpRegistry::global().find("", "Conv", 13);
  ASSERT_NE(def, nullptr);
  ir::Node node = make_node("Conv", 2, 1,
                            {make_attr("strides", std::vector<int64_t>{2, 2}),
                             make_attr("pads", std::vector<int64_t>{3, 3, 3, 3})});
  TensorType xt(DataType::kFloat32,
                std::vector<Dim>{Dim::symbol("batch"), Dim(3), Dim(224), Dim::symbol("w")});
  TensorType wt = TensorType::of(DataType::kFloat32, {64, 3, 7, 7});
  InferContext ctx(node, 13, {&xt, &wt}, {nullptr, nullptr});
  ASSERT_TRUE(def->infer(ctx).is_ok());
  const TensorType& y = ctx.outputs()[0];
  ASSERT_EQ(y.rank(), 4);
  EXPECT_EQ((*y.dims)[0], Dim::symbol("batch"));
  EXPECT_EQ((*y.dims)[1], Dim(64));
  EXPECT_EQ((*y.dims)[2], Dim(112));
  EXPECT_FALSE((*y.dims)[3].known());
}

// ---- ConvTranspose ---------------------------------------------------------------------------

TEST(ConvTranspose, MatchesOnnxDocExample) {
  std::vector<float> xv(9);
  for (int i = 0; i < 9; ++i) xv[static_cast<size_t>(i)] = static_cast<float>(i);
  Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, xv);
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 3}, std::vector<float>(18, 1.0f));
  auto out = evaluate_node(make_node("ConvTranspose", 2, 1), 11, {&x, &w});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const std::vector<double> plane{0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                  27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
  std::vector<double> want = plane;
  want.insert(want.end(), plane.begin(), plane.end());
  expect_close((*out)[0], {1, 2, 5, 5}, want);
}

TEST(ConvTranspose, AwkwardShapesMatchNaiveScatter) {
  struct Case {
    ConvCase c;
    std::vector<int64_t> output_padding;
  };
  const std::vector<Case> cases = {
      {{{1, 3, 3, 4}, {3, 5, 3, 3}, {2, 3}, {1, 1}, {1, 0, 0, 2}}, {1, 0}},
      {{{2, 4, 2, 3}, {4, 3, 2, 2}, {3, 1}, {2, 2}, {0, 1, 1, 0}, 2}, {2, 0}},
      {{{1, 6, 1, 1}, {6, 1, 3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 6, false}, {0, 0}},
      {{{1, 2, 5}, {2, 3, 4}, {3}, {2}, {2, 1}}, {1}},
      {{{1, 2, 2, 3, 2}, {2, 2, 2, 1, 3}, {2, 1, 2}, {1, 2, 1}, {0, 0, 1, 1, 0, 0}}, {1, 0, 1}},
  };
  uint32_t seed = 50;
  for (const Case& k : cases) {
    const ConvCase& c = k.c;
    SCOPED_TRACE("X " + shape_to_string(c.x) + " W " + shape_to_string(c.w));
    Tensor x = random_tensor(c.x, ++seed), w = random_tensor(c.w, ++seed),
           b = random_tensor({c.w[1] * c.group}, ++seed);
    std::vector<const Tensor*> inputs{&x, &w};
    if (c.bias) inputs.push_back(&b);
    std::vector<ir::Attribute> attrs = conv_attrs(c);
    attrs.push_back(make_attr("output_padding", k.output_padding));
    auto out = evaluate_node(make_node("ConvTranspose", inputs.size(), 1, attrs), 11, inputs);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    Shape shape;
    const std::vector<double> want =
        naive_conv_transpose(c, k.output_padding, x, w, c.bias ? &b : nullptr, &shape);
    expect_close((*out)[0], shape, want);
  }
}

TEST(ConvTranspose, OutputShapeAndSamePadsFollowTheSpec) {
  Tensor x = random_tensor({1, 1, 3, 3}, 70), w = random_tensor({1, 1, 3, 3}, 71);
  // Natural size with stride 2: 2*2 + 3 = 7; asking for 6 leaves a total padding of 1.
  // SAME_UPPER: pads (0 begin, 1 end); otherwise (1 begin, 0 end).
  for (auto [mode, pads] : {std::pair{"SAME_UPPER", std::vector<int64_t>{0, 0, 1, 1}},
                            std::pair{"SAME_LOWER", std::vector<int64_t>{1, 1, 0, 0}},
                            std::pair{"NOTSET", std::vector<int64_t>{1, 1, 0, 0}}}) {
    SCOPED_TRACE(mode);
    std::vector<ir::Attribute> attrs{make_attr("strides", std::vector<int64_t>{2, 2}),
                                     make_attr("auto_pad", std::string(mode))};
    if (std::string(mode) == "NOTSET")
      attrs.push_back(make_attr("output_shape", std::vector<int64_t>{6, 6}));
    auto out = evaluate_node(make_node("ConvTranspose", 2, 1, attrs), 11, {&x, &w});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    ConvCase c{{1, 1, 3, 3}, {1, 1, 3, 3}, {2, 2}, {1, 1}, pads, 1, false};
    Shape shape;
    const std::vector<double> want = naive_conv_transpose(c, {0, 0}, x, w, nullptr, &shape);
    expect_close((*out)[0], {1, 1, 6, 6}, want);
  }
  // output_shape given with the batch and channel dims too, as some exporters write it.
  auto full =
      evaluate_node(make_node("ConvTranspose", 2, 1,
                              {make_attr("strides", std::vector<int64_t>{2, 2}),
                               make_attr("output_shape", std::vector<int64_t>{1, 1, 7, 8})}),
                    11, {&x, &w});
  ASSERT_TRUE(full.is_ok()) << full.status().message();
  EXPECT_EQ((*full)[0].shape(), (Shape{1, 1, 7, 8}));
}

}  // namespace
}  // namespace brink::ops
