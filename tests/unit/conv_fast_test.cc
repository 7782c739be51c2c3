// brink.Conv (fused convolution) and its fast kernels (kernels::ConvNhwcF32) against the
// reference: ONNX Conv's reference kernel, then + Z and the activation computed here. Every
// ISA variant this machine runs is prepared explicitly (KernelCreateContext::isa), in NHWC
// and NCHW, on awkward shapes, with 1 to 3 threads.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv.h"
#include "op_test_util.h"
#include "ops/evaluate.h"
#include "ops/op_util.h"

namespace brink::ops {
namespace {

using kernels::Activation;
using kernels::ActivationKind;

struct FusedCase {
  int64_t n = 1, c = 3, h = 5, w = 5, m = 4, kh = 3, kw = 3;
  std::vector<int64_t> strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0};
  std::string auto_pad;  // empty: NOTSET with `pads`
  int64_t group = 1;
  bool bias = true, z = false;
  std::string activation;
  std::vector<float> activation_params;
  bool nhwc = true;
  int threads = 1;

  std::string describe() const {
    auto ints = [](const std::vector<int64_t>& v) {
      std::string s;
      for (int64_t x : v) s += std::to_string(x) + ",";
      return s;
    };
    return "n" + std::to_string(n) + " c" + std::to_string(c) + " " + std::to_string(h) + "x" +
           std::to_string(w) + " m" + std::to_string(m) + " k" + std::to_string(kh) + "x" +
           std::to_string(kw) + " s" + ints(strides) + " d" + ints(dilations) + " p" + ints(pads) +
           " auto_pad=" + auto_pad + " g" + std::to_string(group) + (bias ? " bias" : "") +
           (z ? " z" : "") + " act=" + activation + (nhwc ? " NHWC" : " NCHW") + " threads " +
           std::to_string(threads);
  }
};

std::vector<ir::Attribute> onnx_attrs(const FusedCase& c) {
  std::vector<ir::Attribute> a = {make_attr("strides", c.strides),
                                  make_attr("dilations", c.dilations), make_attr("group", c.group)};
  if (c.auto_pad.empty())
    a.push_back(make_attr("pads", c.pads));
  else
    a.push_back(make_attr("auto_pad", c.auto_pad));
  return a;
}

ir::Node fused_node(const FusedCase& c) {
  std::vector<ir::Attribute> a = onnx_attrs(c);
  a.push_back(make_attr("layout", std::string(c.nhwc ? "NHWC" : "NCHW")));
  if (!c.activation.empty()) {
    a.push_back(make_attr("activation", c.activation));
    if (!c.activation_params.empty())
      a.push_back(make_attr("activation_params", c.activation_params));
  }
  return make_node("Conv", 4, 1, a, "brink");
}

Tensor to_nhwc(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), hw = t.dim(2) * t.dim(3);
  Tensor out = Tensor::empty(DataType::kFloat32, {n, t.dim(2), t.dim(3), c});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p)
        out.data<float>()[(i * hw + p) * c + ch] = t.data<float>()[(i * c + ch) * hw + p];
  return out;
}

Tensor abs_tensor(const Tensor& t) {
  Tensor out = t.clone();
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = std::fabs(out.data<float>()[i]);
  return out;
}

// The inputs of one case in NCHW (the reference's layout); Z is shaped like Y.
struct Inputs {
  Tensor x, w, b, z;
};

// y = act(Conv(x, w) + b + z) by the reference, and the magnitude sum |x||w| + |b| + |z| per
// output for the tolerance; both NCHW.
void reference(const FusedCase& c, const Inputs& in, Tensor* y, Tensor* mag) {
  std::vector<const Tensor*> args{&in.x, &in.w};
  if (c.bias) args.push_back(&in.b);
  auto out = evaluate_node(make_node("Conv", args.size(), 1, onnx_attrs(c)), 13, args);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  *y = (*out)[0];
  Tensor ax = abs_tensor(in.x), aw = abs_tensor(in.w), ab = abs_tensor(in.b);
  std::vector<const Tensor*> abs_args{&ax, &aw};
  if (c.bias) abs_args.push_back(&ab);
  auto m = evaluate_node(make_node("Conv", abs_args.size(), 1, onnx_attrs(c)), 13, abs_args);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  *mag = (*m)[0];
  Activation act;
  if (!c.activation.empty()) {
    ASSERT_TRUE(kernels::activation_from_name(c.activation, &act.kind));
    if (!c.activation_params.empty()) act.alpha = c.activation_params[0];
    if (c.activation_params.size() > 1) act.beta = c.activation_params[1];
  }
  for (int64_t i = 0; i < y->numel(); ++i) {
    float v = y->data<float>()[i];
    if (c.z) {
      v += in.z.data<float>()[i];
      mag->data<float>()[i] += std::fabs(in.z.data<float>()[i]);
    }
    y->data<float>()[i] = kernels::apply_activation_scalar(act, v);
  }
}

// Prepares brink.Conv as the runtime does (X's type as at load, W and B constant) for `isa`
// and runs it on `runs` inputs in turn with a pool of `threads`.
struct Prepared {
  const OpDef* def = nullptr;
  ir::Node node;
  std::unique_ptr<Kernel> kernel;
};

Prepared prepare(const FusedCase& c, const Tensor& w, const Tensor* b, const TensorType& x_type,
                 bool z, Isa isa, bool weights_constant = true) {
  Prepared p;
  p.node = fused_node(c);
  p.def = OpRegistry::global().find("brink", "Conv", 1);
  EXPECT_NE(p.def, nullptr);
  if (p.def == nullptr) return p;
  TensorType wt = TensorType::of(DataType::kFloat32, w.shape());
  TensorType bt = b ? TensorType::of(DataType::kFloat32, b->shape()) : TensorType();
  TensorType zt;
  std::vector<const TensorType*> types{&x_type, &wt, b ? &bt : nullptr, nullptr};
  if (z) {
    // Z's type as inference of Y gives it.
    InferContext ictx(p.node, 1, types, {nullptr, &w, b, nullptr});
    Status s = p.def->infer(ictx);
    EXPECT_TRUE(s.is_ok()) << s.message();
    zt = ictx.outputs()[0];
    types[3] = &zt;
  }
  KernelCreateContext cctx{p.node, 1, types, {}, {}, {}};
  cctx.constant_inputs = {nullptr, weights_constant ? &w : nullptr, weights_constant ? b : nullptr,
                          nullptr};
  cctx.isa = isa;
  {
    InferContext ictx(p.node, 1, types, cctx.constant_inputs);
    Status s = p.def->infer(ictx);
    EXPECT_TRUE(s.is_ok()) << s.message();
    cctx.output_types = ictx.outputs();
  }
  auto k = p.def->create(cctx);
  EXPECT_TRUE(k.is_ok()) << k.status().message();
  if (k.is_ok()) p.kernel = std::move(*k);
  return p;
}

Result<Tensor> run_prepared(Prepared& p, const std::vector<const Tensor*>& inputs,
                            ThreadPool* pool) {
  std::vector<TensorType> types(inputs.size());
  std::vector<const TensorType*> type_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    types[i] = TensorType::of(inputs[i]->dtype(), inputs[i]->shape());
    type_ptrs[i] = &types[i];
  }
  InferContext ictx(p.node, 1, type_ptrs, inputs);
  BRINK_RETURN_IF_ERROR(p.def->infer(ictx));
  std::vector<Tensor> outputs{Tensor::empty(DataType::kFloat32, ictx.outputs()[0].static_shape())};
  KernelContext kctx(inputs, &outputs, pool == nullptr ? 1 : pool->num_threads());
  kctx.set_thread_pool(pool);
  BRINK_RETURN_IF_ERROR(p.kernel->run(kctx));
  return outputs[0];
}

Inputs make_inputs(const FusedCase& c, uint32_t seed) {
  Inputs in;
  in.x = random_tensor({c.n, c.c, c.h, c.w}, seed);
  in.w = random_tensor({c.m, c.c / c.group, c.kh, c.kw}, seed + 1);
  in.b = random_tensor({c.m}, seed + 2);
  return in;
}

// Checks `got` (in the case's layout) against the NCHW reference `want`, within 1e-5 of
// the dot product's magnitude (a little more after activations with slopes above 1).
void expect_matches(const FusedCase& c, const Tensor& got, const Tensor& want, const Tensor& mag) {
  const Tensor want_l = c.nhwc ? to_nhwc(want) : want;
  const Tensor mag_l = c.nhwc ? to_nhwc(mag) : mag;
  ASSERT_EQ(got.shape(), want_l.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float g = got.data<float>()[i], e = want_l.data<float>()[i];
    const float tol = 2e-5f * mag_l.data<float>()[i] + 1e-6f;
    ASSERT_NEAR(g, e, tol) << "element " << i << " of " << shape_to_string(got.shape());
  }
}

// One case on one ISA: reference, prepare with static shapes, run, compare.
void check_case(const FusedCase& c, Isa isa, uint32_t seed) {
  SCOPED_TRACE(c.describe() + " isa " + isa_name(isa));
  Inputs in = make_inputs(c, seed);
  Tensor want, mag;
  if (c.z) {
    // Z needs Y's shape: the reference without Z tells it.
    FusedCase plain = c;
    plain.z = false;
    plain.activation.clear();
    plain.activation_params.clear();
    Tensor y0, m0;
    reference(plain, in, &y0, &m0);
    in.z = random_tensor(y0.shape(), seed + 3);
  }
  reference(c, in, &want, &mag);
  if (::testing::Test::HasFatalFailure()) return;
  const Tensor x = c.nhwc ? to_nhwc(in.x) : in.x;
  const Tensor z = c.z ? (c.nhwc ? to_nhwc(in.z) : in.z) : Tensor();
  Prepared p = prepare(c, in.w, c.bias ? &in.b : nullptr,
                       TensorType::of(DataType::kFloat32, x.shape()), c.z, isa);
  ASSERT_NE(p.kernel, nullptr);
  ThreadPool pool(c.threads);
  auto got = run_prepared(p, {&x, &in.w, c.bias ? &in.b : nullptr, c.z ? &z : nullptr},
                          c.threads > 1 ? &pool : nullptr);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  expect_matches(c, *got, want, mag);
}

// Output size of one dim, or 0 when the kernel does not fit.
int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  const int64_t dk = (k - 1) * d + 1;
  return in + pb + pe < dk ? 0 : (in + pb + pe - dk) / s + 1;
}

TEST(FusedConv, AwkwardShapesEveryIsa) {
  std::vector<FusedCase> cases;
  auto add = [&](FusedCase c) { cases.push_back(c); };
  // Odd, small channel counts on both sides, every kernel shape, 1x1 images.
  for (int64_t ch : {1, 3, 5, 17, 33}) {
    FusedCase c;
    c.c = ch;
    c.m = ch == 33 ? 5 : ch + 16;
    c.h = 6;
    c.w = 7;
    c.pads = {1, 1, 1, 1};
    add(c);
    c.m = ch;
    c.kh = c.kw = 1;
    c.pads = {0, 0, 0, 0};
    add(c);  // pointwise: the direct (no table) path
    c.h = c.w = 1;
    add(c);
  }
  for (auto [kh, kw] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 3}, {5, 5}, {7, 7}, {1, 7}, {7, 1}}) {
    FusedCase c;
    c.c = 5;
    c.m = 33;
    c.kh = kh;
    c.kw = kw;
    c.h = 9;
    c.w = 10;
    c.pads = {kh / 2, kw / 2, kh / 2, kw / 2};
    add(c);
  }
  // Few input channels (kernel rows merged into one tap): rows reaching into the left and
  // right padding, kernels wider than the image, and strides past the kernel.
  for (auto [c, h, w, k, s, pl, pr] : std::vector<std::array<int64_t, 7>>{{3, 1, 1, 7, 2, 3, 3},
                                                                          {2, 6, 4, 5, 3, 4, 4},
                                                                          {8, 5, 9, 3, 1, 2, 0},
                                                                          {1, 3, 11, 4, 5, 0, 3}}) {
    FusedCase fc;
    fc.c = c;
    fc.m = 9;
    fc.h = h;
    fc.w = w;
    fc.kh = 3;
    fc.kw = k;
    fc.strides = {1, s};
    fc.pads = {1, pl, 1, pr};
    add(fc);
  }
  {
    // 1x1 image with a 3x3 padded kernel: every tap but the centre reads the zero row.
    FusedCase c;
    c.h = c.w = 1;
    c.pads = {1, 1, 1, 1};
    c.c = 17;
    c.m = 17;
    add(c);
  }
  // Strides 1/2/3 and strides larger than the kernel; dilations.
  for (int64_t s : {2, 3, 5}) {
    FusedCase c;
    c.c = 3;
    c.m = 17;
    c.h = 13;
    c.w = 11;
    c.strides = {s, s == 5 ? 2 : s};
    c.pads = {1, 0, 2, 1};
    add(c);
    c.kh = c.kw = 1;
    c.pads = {0, 0, 0, 0};
    add(c);  // strided 1x1: needs the table
  }
  {
    FusedCase c;
    c.c = 4;
    c.m = 6;
    c.h = 12;
    c.w = 11;
    c.dilations = {2, 3};
    c.pads = {2, 3, 1, 0};
    add(c);
  }
  // Asymmetric padding on each side in turn, and pads larger than the kernel.
  for (int side = 0; side < 4; ++side) {
    FusedCase c;
    c.c = 5;
    c.m = 7;
    c.h = 6;
    c.w = 5;
    c.pads = {0, 0, 0, 0};
    c.pads[static_cast<size_t>(side)] = 2;
    add(c);
  }
  {
    FusedCase c;
    c.pads = {4, 3, 5, 4};
    add(c);
  }
  // auto_pad, with odd sizes and strides so that SAME_UPPER and SAME_LOWER differ.
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    FusedCase c;
    c.auto_pad = mode;
    c.h = 8;
    c.w = 7;
    c.strides = {2, 3};
    c.kh = 4;
    c.kw = 3;
    add(c);
  }
  // Groups, batch 2, no bias, Z.
  for (int64_t g : {2, 4}) {
    FusedCase c;
    c.group = g;
    c.c = 4 * g;
    c.m = 3 * g;
    c.n = 2;
    c.pads = {1, 1, 1, 1};
    c.bias = false;
    c.z = true;
    add(c);
    c.c = g;
    c.m = 2 * g;
    add(c);  // one input channel per group (not depthwise: multiplier 2)
  }
  // Depthwise (group == C == M): the depthwise kernel, reached through brink.Conv.
  for (int64_t k : {3, 5}) {
    FusedCase c;
    c.group = c.c = c.m = 19;
    c.kh = c.kw = k;
    c.h = 9;
    c.w = 8;
    c.pads = {k / 2, k / 2, k / 2, 0};
    c.z = true;
    c.activation = "Relu";
    add(c);
    c.strides = {2, 2};
    c.z = false;
    c.activation.clear();
    add(c);
  }
  // Output channels across block boundaries (remainders of 8, 16, 32 and the narrow block).
  for (int64_t m : {8, 15, 16, 24, 31, 32, 40, 48, 63, 64, 65, 96, 100}) {
    FusedCase c;
    c.c = 7;
    c.m = m;
    c.h = 5;
    c.w = 9;
    c.pads = {1, 1, 1, 1};
    add(c);
  }

  uint32_t seed = 100;
  for (Isa isa : supported_isas()) {
    for (FusedCase c : cases) {
      for (bool nhwc : {true, false}) {
        c.nhwc = nhwc;
        check_case(c, isa, seed += 4);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(FusedConv, EveryActivationWithResidual) {
  struct Act {
    const char* name;
    std::vector<float> params;
  };
  const std::vector<Act> acts = {{"", {}},
                                 {"Relu", {}},
                                 {"Clip", {0.0f, 6.0f}},
                                 {"Clip", {-0.5f, 0.25f}},
                                 {"LeakyRelu", {0.1f}},
                                 {"HardSigmoid", {0.2f, 0.5f}},
                                 {"HardSwish", {}},
                                 {"Sigmoid", {}},
                                 {"SiLU", {}},
                                 {"Tanh", {}},
                                 {"Gelu", {}},
                                 {"GeluTanh", {}}};
  uint32_t seed = 7000;
  for (Isa isa : supported_isas()) {
    for (const Act& a : acts) {
      for (bool z : {false, true}) {
        FusedCase c;
        c.c = 6;
        c.m = 37;
        c.h = 7;
        c.w = 6;
        c.pads = {1, 1, 1, 1};
        c.activation = a.name;
        c.activation_params = a.params;
        c.z = z;
        c.nhwc = (seed & 4) == 0;
        check_case(c, isa, seed += 4);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(FusedConv, ThreadCountsGiveTheSameResult) {
  uint32_t seed = 9000;
  std::vector<FusedCase> cases;
  {
    FusedCase c;  // many pixels, few channels: split by pixels
    c.c = 16;
    c.m = 24;
    c.h = c.w = 23;
    c.pads = {1, 1, 1, 1};
    c.z = true;
    c.activation = "Relu";
    cases.push_back(c);
  }
  {
    FusedCase c;  // 7x7 pixels, many channels: split by channel blocks
    c.c = 64;
    c.m = 160;
    c.h = c.w = 7;
    c.pads = {1, 1, 1, 1};
    cases.push_back(c);
  }
  {
    FusedCase c;  // batch and groups
    c.n = 2;
    c.group = 2;
    c.c = 8;
    c.m = 70;
    c.h = 9;
    c.w = 8;
    c.kh = c.kw = 1;
    cases.push_back(c);
  }
  for (Isa isa : supported_isas())
    for (FusedCase c : cases)
      for (int threads : {1, 2, 3})
        for (bool nhwc : {true, false}) {
          c.threads = threads;
          c.nhwc = nhwc;
          check_case(c, isa, seed += 4);
          if (HasFatalFailure()) return;
        }
}

// Random configurations, all parameters at once.
TEST(FusedConv, RandomConfigurations) {
  std::mt19937 rng(1234);
  auto pick = [&](std::initializer_list<int64_t> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
  };
  const char* acts[] = {"", "Relu", "Sigmoid", "HardSwish"};
  uint32_t seed = 20000;
  for (Isa isa : supported_isas()) {
    for (int iter = 0; iter < 60; ++iter) {
      FusedCase c;
      c.group = pick({1, 1, 1, 2, 3});
      c.c = c.group * pick({1, 2, 3, 5, 8, 11, 17});
      c.m = c.group * pick({1, 3, 8, 13, 16, 17, 32, 33, 47});
      c.kh = pick({1, 2, 3, 5});
      c.kw = pick({1, 3, 4, 7});
      c.strides = {pick({1, 2, 3, 4}), pick({1, 2, 3})};
      c.dilations = {pick({1, 1, 2}), pick({1, 1, 3})};
      c.h = pick({1, 2, 5, 9, 14, 17});
      c.w = pick({1, 3, 6, 11, 16});
      c.pads = {pick({0, 1, 2}), pick({0, 1, 3}), pick({0, 1, 2}), pick({0, 2})};
      c.n = pick({1, 1, 2});
      c.bias = pick({0, 1, 1}) == 1;
      c.z = pick({0, 1}) == 1;
      c.activation = acts[pick({0, 1, 2, 3})];
      c.nhwc = pick({0, 1}) == 1;
      c.threads = static_cast<int>(pick({1, 2, 3}));
      if (out_dim(c.h, c.kh, c.strides[0], c.dilations[0], c.pads[0], c.pads[2]) < 1 ||
          out_dim(c.w, c.kw, c.strides[1], c.dilations[1], c.pads[1], c.pads[3]) < 1)
        continue;
      check_case(c, isa, seed += 4);
      if (HasFatalFailure()) return;
    }
  }
}

// X's spatial dims symbolic at load; several sizes at run time on one prepared kernel, in
// both layouts, then back to the first size (the cached table). Also a static load shape
// that differs at run time.
TEST(FusedConv, RunTimeShapesDifferFromLoadTime) {
  for (Isa isa : supported_isas()) {
    for (bool nhwc : {true, false}) {
      for (bool symbolic : {true, false}) {
        FusedCase c;
        c.c = 5;
        c.m = 19;
        c.pads = {1, 2, 1, 0};
        c.strides = {2, 1};
        c.z = true;
        c.activation = "Relu";
        c.nhwc = nhwc;
        SCOPED_TRACE(std::string(isa_name(isa)) + (nhwc ? " NHWC" : " NCHW") +
                     (symbolic ? " symbolic" : " static 8x8"));
        const Inputs in0 = make_inputs(c, 31);
        TensorType xt;
        if (symbolic) {
          std::vector<Dim> d = {Dim::symbol("N"), Dim::symbol("H"), Dim::symbol("W"), Dim(c.c)};
          if (!nhwc) d = {Dim::symbol("N"), Dim(c.c), Dim::symbol("H"), Dim::symbol("W")};
          xt = TensorType(DataType::kFloat32, d);
        } else {
          xt = TensorType::of(DataType::kFloat32, nhwc ? Shape{1, 8, 8, c.c} : Shape{1, c.c, 8, 8});
        }
        Prepared p = prepare(c, in0.w, &in0.b, xt, true, isa);
        ASSERT_NE(p.kernel, nullptr);
        ThreadPool pool(2);
        uint32_t seed = 50;
        for (auto [n, h, w] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
                 {1, 8, 8}, {2, 5, 11}, {1, 1, 1}, {1, 17, 3}, {1, 8, 8}, {2, 5, 11}}) {
          FusedCase r = c;
          r.n = n;
          r.h = h;
          r.w = w;
          SCOPED_TRACE(r.describe());
          Inputs in = make_inputs(r, seed += 4);
          in.w = in0.w;
          in.b = in0.b;
          FusedCase plain = r;
          plain.z = false;
          plain.activation.clear();
          Tensor y0, m0;
          reference(plain, in, &y0, &m0);
          in.z = random_tensor(y0.shape(), seed + 3);
          Tensor want, mag;
          reference(r, in, &want, &mag);
          ASSERT_FALSE(HasFatalFailure());
          const Tensor x = nhwc ? to_nhwc(in.x) : in.x;
          const Tensor z = nhwc ? to_nhwc(in.z) : in.z;
          auto got = run_prepared(p, {&x, &in.w, &in.b, &z}, &pool);
          ASSERT_TRUE(got.is_ok()) << got.status().message();
          expect_matches(r, *got, want, mag);
        }
      }
    }
  }
}

// Two threads running one prepared kernel at once on different sizes (two sessions).
TEST(FusedConv, ConcurrentRunsOnOneKernel) {
  FusedCase c;
  c.c = 8;
  c.m = 40;
  c.pads = {1, 1, 1, 1};
  const Inputs in0 = make_inputs(c, 77);
  const TensorType xt(DataType::kFloat32,
                      std::vector<Dim>{Dim(1), Dim::symbol("H"), Dim::symbol("W"), Dim(c.c)});
  Prepared p = prepare(c, in0.w, &in0.b, xt, false, best_isa());
  ASSERT_NE(p.kernel, nullptr);
  auto worker = [&](int64_t size, bool* ok) {
    FusedCase r = c;
    r.h = r.w = size;
    Inputs in = make_inputs(r, static_cast<uint32_t>(size));
    in.w = in0.w;
    in.b = in0.b;
    Tensor want, mag;
    reference(r, in, &want, &mag);
    const Tensor x = to_nhwc(in.x);
    const Tensor want_l = to_nhwc(want);
    *ok = true;
    for (int iter = 0; iter < 30; ++iter) {
      auto got = run_prepared(p, {&x, &in.w, &in.b, nullptr}, nullptr);
      if (!got.is_ok()) {
        *ok = false;
        return;
      }
      for (int64_t i = 0; i < got->numel(); ++i)
        if (std::fabs(got->data<float>()[i] - want_l.data<float>()[i]) > 1e-3f) *ok = false;
    }
  };
  bool ok1 = false, ok2 = false;
  std::thread t1(worker, 9, &ok1), t2(worker, 13, &ok2);
  t1.join();
  t2.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
}

// Paths outside the fast kernel: weights known only at run time, f64, 1-D convolutions.
TEST(FusedConv, ReferencePathCases) {
  {
    FusedCase c;
    c.c = 5;
    c.m = 9;
    c.pads = {1, 1, 1, 1};
    c.activation = "Relu";
    for (bool nhwc : {true, false}) {
      c.nhwc = nhwc;
      Inputs in = make_inputs(c, 5);
      Tensor want, mag;
      reference(c, in, &want, &mag);
      const Tensor x = nhwc ? to_nhwc(in.x) : in.x;
      Prepared p = prepare(c, in.w, &in.b, TensorType::of(DataType::kFloat32, x.shape()), false,
                           best_isa(), /*weights_constant=*/false);
      ASSERT_NE(p.kernel, nullptr);
      auto got = run_prepared(p, {&x, &in.w, &in.b, nullptr}, nullptr);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      expect_matches(c, *got, want, mag);
    }
  }
  {
    // f64 NCHW with Z and Relu: y = relu(conv + z).
    Tensor x = Tensor::from_vector<double>({1, 1, 2, 2}, {1.0, -2.0, 3.0, -4.0});
    Tensor w = Tensor::from_vector<double>({1, 1, 1, 1}, {2.0});
    Tensor z = Tensor::from_vector<double>({1, 1, 2, 2}, {0.5, 0.5, -7.0, 9.0});
    ir::Node node =
        make_node("Conv", 4, 1, {make_attr("activation", std::string("Relu"))}, "brink");
    auto out = evaluate_node(node, 1, {&x, &w, nullptr, &z});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    const std::vector<double> want = {2.5, 0.0, 0.0, 1.0};
    for (int64_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ((*out)[0].data<double>()[i], want[i]);
  }
  {
    // 1-D NCHW brink.Conv.
    Tensor x = random_tensor({1, 3, 10}, 3), w = random_tensor({4, 3, 3}, 4);
    std::vector<ir::Attribute> a = {make_attr("pads", std::vector<int64_t>{1, 1})};
    auto want = evaluate_node(make_node("Conv", 2, 1, a), 13, {&x, &w});
    auto got = evaluate_node(make_node("Conv", 2, 1, a, "brink"), 1, {&x, &w});
    ASSERT_TRUE(want.is_ok() && got.is_ok());
    for (int64_t i = 0; i < (*want)[0].numel(); ++i)
      EXPECT_NEAR((*got)[0].data<float>()[i], (*want)[0].data<float>()[i], 1e-5);
  }
}

TEST(FusedConv, InvalidNodesAreRejected) {
  Tensor x3 = random_tensor({1, 3, 10}, 3), w3 = random_tensor({4, 3, 3}, 4);
  auto r = evaluate_node(
      make_node("Conv", 2, 1, {make_attr("layout", std::string("NHWC"))}, "brink"), 1, {&x3, &w3});
  EXPECT_FALSE(r.is_ok());
  Tensor x = random_tensor({1, 5, 5, 3}, 3), w = random_tensor({4, 3, 3, 3}, 4);
  r = evaluate_node(make_node("Conv", 2, 1, {make_attr("layout", std::string("NWHC"))}, "brink"), 1,
                    {&x, &w});
  EXPECT_FALSE(r.is_ok());
  r = evaluate_node(make_node("Conv", 2, 1,
                              {make_attr("layout", std::string("NHWC")),
                               make_attr("activation", std::string("Swish"))},
                              "brink"),
                    1, {&x, &w});
  EXPECT_FALSE(r.is_ok());
  // Z not shaped like Y.
  Tensor z = random_tensor({1, 3, 3, 5}, 1);
  r = evaluate_node(make_node("Conv", 4, 1, {make_attr("layout", std::string("NHWC"))}, "brink"), 1,
                    {&x, &w, nullptr, &z});
  EXPECT_FALSE(r.is_ok());
  // Channels of X do not match W.
  Tensor x5 = random_tensor({1, 5, 5, 5}, 3);
  r = evaluate_node(make_node("Conv", 2, 1, {make_attr("layout", std::string("NHWC"))}, "brink"), 1,
                    {&x5, &w});
  EXPECT_FALSE(r.is_ok());
}

// The kernel layer directly: a residual added in place (z == y), as a memory plan that
// reuses the skip connection's buffer for the output does.
TEST(FusedConv, KernelResidualInPlace) {
  kernels::Conv2dParams p;
  p.in_channels = 6;
  p.out_channels = 40;
  p.kernel_h = p.kernel_w = 3;
  p.activation.kind = ActivationKind::kSilu;
  kernels::Conv2dSpatial s{9, 7, 9, 7, 1, 1};
  const Tensor w = random_tensor({40, 6, 3, 3}, 1), b = random_tensor({40}, 2);
  const Tensor x = random_tensor({2, 9, 7, 6}, 3), z = random_tensor({2, 9, 7, 40}, 4);
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    auto conv = kernels::ConvNhwcF32::create(p, w.data<float>(), b.data<float>(), isa);
    ASSERT_TRUE(conv.is_ok()) << conv.status().message();
    std::vector<float> separate(static_cast<size_t>(z.numel()));
    ASSERT_TRUE(
        (*conv)->run(x.data<float>(), z.data<float>(), separate.data(), 2, s, &pool).is_ok());
    Tensor in_place = z.clone();
    ASSERT_TRUE(
        (*conv)
            ->run(x.data<float>(), in_place.data<float>(), in_place.data<float>(), 2, s, &pool)
            .is_ok());
    for (int64_t i = 0; i < z.numel(); ++i)
      ASSERT_EQ(in_place.data<float>()[i], separate[static_cast<size_t>(i)]) << i;
  }
}

// The kernel layer directly: the transposes used around the NHWC kernel.
TEST(FusedConv, LayoutTransposesRoundTrip) {
  ThreadPool pool(2);
  for (auto [n, c, hw] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {2, 3, 5}, {1, 64, 3136}, {3, 33, 49}}) {
    Tensor x = random_tensor({n, c, hw}, 9);
    std::vector<float> t(static_cast<size_t>(x.numel())), back(t.size());
    kernels::nchw_to_nhwc(x.data<float>(), t.data(), n, c, hw, &pool);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p)
          ASSERT_EQ(t[static_cast<size_t>((i * hw + p) * c + ch)],
                    x.data<float>()[(i * c + ch) * hw + p]);
    kernels::nhwc_to_nchw(t.data(), back.data(), n, c, hw, nullptr);
    for (int64_t i = 0; i < x.numel(); ++i)
      ASSERT_EQ(back[static_cast<size_t>(i)], x.data<float>()[i]);
  }
}

}  // namespace
}  // namespace brink::ops
