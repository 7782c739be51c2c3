// brink.MaxPool, brink.AveragePool, brink.GlobalAveragePool and brink.GlobalMaxPool (NHWC
// and NCHW; fused_pool.cc and the fast kernels of kernels/pool.h) against the reference ONNX
// pools, for every ISA this machine runs and on 1, 2 and 3 threads, on awkward shapes:
// odd channel counts, 1x1 and 2x3 images, large strides, dilation, padding on every side and
// larger than half the kernel, ceil_mode, count_include_pad, auto_pad, batch 2.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "op_test_util.h"
#include "ops/evaluate.h"

namespace brink::ops {
namespace {

// [N, C, spatial...] <-> [N, spatial..., C] (f32).
Tensor to_nhwc(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), pixels = t.numel() / std::max<int64_t>(1, n * c);
  Shape s{n};
  s.insert(s.end(), t.shape().begin() + 2, t.shape().end());
  s.push_back(c);
  Tensor r = Tensor::empty(DataType::kFloat32, s);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < pixels; ++p)
        r.data<float>()[(a * pixels + p) * c + ch] = t.data<float>()[(a * c + ch) * pixels + p];
  return r;
}

struct PoolCase {
  Shape x;  // NCHW
  std::vector<int64_t> kernel, strides, dilations, pads;
  int64_t ceil_mode = 0, count_include_pad = 0;
  std::string auto_pad;  // empty: NOTSET

  std::string describe() const {
    // Appends only: GCC 12 misreports `"literal" + std::string` chains (-Wrestrict).
    auto add = [](std::string& s, const char* name, const std::vector<int64_t>& v) {
      s += name;
      s += " [";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ",";
        s += std::to_string(v[i]);
      }
      s += "]";
    };
    std::string s = "X ";
    s += shape_to_string(x);
    add(s, " kernel", kernel);
    add(s, " strides", strides);
    add(s, " dilations", dilations);
    add(s, " pads", pads);
    s += ceil_mode ? " ceil_mode" : "";
    s += count_include_pad ? " count_include_pad" : "";
    s += auto_pad.empty() ? "" : " auto_pad ";
    s += auto_pad;
    return s;
  }
  std::vector<ir::Attribute> attrs(bool average) const {
    std::vector<ir::Attribute> a{make_attr("kernel_shape", kernel)};
    if (!strides.empty()) a.push_back(make_attr("strides", strides));
    if (!dilations.empty()) a.push_back(make_attr("dilations", dilations));
    if (!pads.empty()) a.push_back(make_attr("pads", pads));
    if (ceil_mode) a.push_back(make_attr("ceil_mode", ceil_mode));
    if (average && count_include_pad)
      a.push_back(make_attr("count_include_pad", count_include_pad));
    if (!auto_pad.empty()) a.push_back(make_attr("auto_pad", auto_pad));
    return a;
  }
};

Tensor run(const ir::Node& node, int64_t opset, const Tensor& x, Isa isa, int threads) {
  EvaluateOptions o;
  o.isa = isa;
  o.num_threads = threads;
  auto out = evaluate_node(node, opset, {&x}, o);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return out.is_ok() ? (*out)[0] : Tensor();
}

// Every ISA and thread count, NHWC (and NCHW, which runs the reference path for windowed
// pools) against the ONNX op at opset 19.
void check_pool(const PoolCase& c, bool average, uint32_t seed) {
  SCOPED_TRACE(average ? "AveragePool" : "MaxPool");
  SCOPED_TRACE(c.describe());
  const char* op = average ? "AveragePool" : "MaxPool";
  const Tensor x = random_tensor(c.x, seed);
  const Tensor want_nchw = run(make_node(op, 1, 1, c.attrs(average)), 19, x, best_isa(), 1);
  ASSERT_TRUE(want_nchw.defined());
  const Tensor want = to_nhwc(want_nchw);
  const Tensor x_nhwc = to_nhwc(x);
  for (const char* layout : {"NHWC", "NCHW"}) {
    const bool nhwc = std::string(layout) == "NHWC";
    auto attrs = c.attrs(average);
    attrs.push_back(make_attr("layout", std::string(layout)));
    const ir::Node node = make_node(op, 1, 1, attrs, "brink");
    for (Isa isa : supported_isas())
      for (int threads : {1, 2, 3}) {
        if (!nhwc && (isa != best_isa() || threads != 1)) continue;  // reference path only
        const Tensor got = run(node, 1, nhwc ? x_nhwc : x, isa, threads);
        const Tensor& w = nhwc ? want : want_nchw;
        ASSERT_EQ(got.shape(), w.shape()) << layout;
        for (int64_t i = 0; i < got.numel(); ++i) {
          const float g = got.data<float>()[i], e = w.data<float>()[i];
          // Same taps in the same order: the fast kernels match the reference exactly.
          if (!(g == e))
            FAIL() << layout << " " << isa_name(isa) << " threads " << threads << ": element " << i
                   << " is " << g << ", expected " << e;
        }
      }
  }
}

void check_both(const PoolCase& c, uint32_t seed) {
  check_pool(c, false, seed);
  check_pool(c, true, seed);
}

TEST(PoolFast, ChannelCountsKernelsAndStrides) {
  uint32_t seed = 1;
  const std::vector<std::vector<int64_t>> kernels = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {3, 1}};
  for (int64_t ch : {1, 3, 7, 16, 17, 33, 96, 145})
    for (const auto& k : kernels)
      for (int64_t s : {1, 2, 3}) {
        PoolCase c;
        c.x = {1, ch, 9, 11};
        c.kernel = k;
        c.strides = {s, s};
        c.pads = {k[0] / 2, k[1] / 2, (k[0] - 1) / 2, k[1] / 2};
        check_both(c, seed += 7);
      }
}

TEST(PoolFast, TinyImagesPaddingAndDilation) {
  uint32_t seed = 100;
  for (int64_t ch : {1, 17, 33}) {
    // 1x1 and 2x3 images, padded so that a 3x3 window fits.
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}})
      for (int64_t s : {1, 2}) {
        PoolCase c;
        c.x = {2, ch, h, w};
        c.kernel = {3, 3};
        c.strides = {s, s};
        c.pads = {1, 1, 1, 1};
        check_both(c, seed += 7);
        c.count_include_pad = 1;
        check_pool(c, true, seed += 7);
      }
    // Padding on one side at a time, padding past half the kernel (windows entirely in the
    // padding: MaxPool gives the lowest float, AveragePool 0 or 0/count), dilation.
    const std::vector<std::vector<int64_t>> pads = {{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 2, 0},
                                                    {0, 0, 0, 2}, {1, 0, 2, 1}, {3, 3, 3, 3}};
    for (const auto& p : pads)
      for (int64_t cip : {0, 1}) {
        PoolCase c;
        c.x = {1, ch, 6, 7};
        c.kernel = {3, 3};
        c.strides = {2, 1};
        c.pads = p;
        c.count_include_pad = cip;
        check_both(c, seed += 7);
        c.dilations = {2, 2};
        check_both(c, seed += 7);
      }
  }
}

TEST(PoolFast, CeilModeAutoPadAndLargeWindows) {
  uint32_t seed = 200;
  for (int64_t ch : {3, 16, 145})
    for (int64_t ceil_mode : {0, 1})
      for (int64_t cip : {0, 1}) {
        PoolCase c;
        c.x = {2, ch, 10, 13};
        c.kernel = {3, 3};
        c.strides = {2, 2};
        c.pads = {1, 0, 1, 1};
        c.ceil_mode = ceil_mode;
        c.count_include_pad = cip;
        check_both(c, seed += 7);
        c.kernel = {7, 7};
        c.strides = {3, 3};
        c.pads = {3, 3, 3, 3};
        check_both(c, seed += 7);
      }
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    PoolCase c;
    c.x = {1, 20, 9, 8};
    c.kernel = {2, 3};
    c.strides = {2, 2};
    c.auto_pad = mode;
    check_both(c, seed += 7);
  }
}

TEST(PoolFast, OneAndThreeSpatialDims) {
  uint32_t seed = 300;
  PoolCase c;
  c.x = {2, 17, 12};
  c.kernel = {3};
  c.strides = {2};
  c.pads = {1, 2};
  check_both(c, seed += 7);
  // Three spatial dims in NHWC take the reference path through a transpose.
  c.x = {1, 5, 4, 5, 6};
  c.kernel = {2, 3, 2};
  c.strides = {1, 2, 2};
  c.pads = {0, 1, 1, 1, 1, 0};
  check_both(c, seed += 7);
}

TEST(PoolFast, MaxPoolNaNsAsTheReference) {
  // A NaN as the first tap of a window wins; a NaN after the first is skipped.
  for (int64_t ch : {1, 16, 19}) {
    Tensor x = random_tensor({1, ch, 4, 4}, 7);
    for (int64_t k = 0; k < ch; ++k) {
      x.data<float>()[k * 16 + 0] = NAN;  // first tap of window (0, 0)
      x.data<float>()[k * 16 + 6] = NAN;  // second row of window (0, 0), first of (1, 1)
    }
    const ir::Node ref = make_node("MaxPool", 1, 1,
                                   {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                    make_attr("strides", std::vector<int64_t>{1, 1})});
    const Tensor want = to_nhwc(run(ref, 19, x, best_isa(), 1));
    const ir::Node node = make_node("MaxPool", 1, 1,
                                    {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                     make_attr("strides", std::vector<int64_t>{1, 1}),
                                     make_attr("layout", std::string("NHWC"))},
                                    "brink");
    for (Isa isa : supported_isas()) {
      const Tensor got = run(node, 1, to_nhwc(x), isa, 1);
      for (int64_t i = 0; i < got.numel(); ++i) {
        const float g = got.data<float>()[i], e = want.data<float>()[i];
        EXPECT_TRUE(g == e || (std::isnan(g) && std::isnan(e)))
            << isa_name(isa) << " element " << i << ": " << g << " vs " << e;
      }
    }
  }
}

TEST(PoolFast, GlobalMaxPoolSkipsNaNsAsTheReference) {
  for (int64_t ch : {1, 16, 19}) {
    Tensor x = random_tensor({1, ch, 9, 9}, 11);
    for (int64_t k = 0; k < ch; ++k) {
      for (int64_t p : {0, 8, 17, 40, 80}) x.data<float>()[k * 81 + p] = NAN;
    }
    const Tensor want = run(make_node("GlobalMaxPool", 1, 1), 13, x, best_isa(), 1);
    for (const char* layout : {"NHWC", "NCHW"}) {
      const bool nhwc = std::string(layout) == "NHWC";
      const ir::Node node =
          make_node("GlobalMaxPool", 1, 1, {make_attr("layout", std::string(layout))}, "brink");
      for (Isa isa : supported_isas()) {
        const Tensor got = run(node, 1, nhwc ? to_nhwc(x) : x, isa, 1);
        for (int64_t i = 0; i < got.numel(); ++i)
          EXPECT_EQ(got.data<float>()[i], want.data<float>()[i])
              << layout << " " << isa_name(isa) << " element " << i;
      }
    }
  }
}

TEST(PoolFast, GlobalPoolsBothLayouts) {
  uint32_t seed = 400;
  const std::vector<std::pair<int64_t, int64_t>> images = {{1, 1}, {2, 3}, {7, 7}, {56, 56}};
  for (int64_t ch : {1, 3, 7, 16, 17, 33, 96, 145})
    for (auto [h, w] : images) {
      if (h * w * ch > 56 * 56 * 33) continue;
      for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
        const Shape shape{2, ch, h, w};
        SCOPED_TRACE(op);
        SCOPED_TRACE(shape_to_string(shape));
        const Tensor x = random_tensor(shape, seed += 7);
        const Tensor want_nchw = run(make_node(op, 1, 1), 13, x, best_isa(), 1);
        const Tensor want_nhwc = to_nhwc(want_nchw);
        const Tensor x_nhwc = to_nhwc(x);
        for (const char* layout : {"NHWC", "NCHW"}) {
          const bool nhwc = std::string(layout) == "NHWC";
          const ir::Node node =
              make_node(op, 1, 1, {make_attr("layout", std::string(layout))}, "brink");
          for (Isa isa : supported_isas())
            for (int threads : {1, 2, 3}) {
              const Tensor got = run(node, 1, nhwc ? x_nhwc : x, isa, threads);
              const Tensor& want = nhwc ? want_nhwc : want_nchw;
              ASSERT_EQ(got.shape(), want.shape());
              for (int64_t i = 0; i < got.numel(); ++i) {
                // Float sums in blocks vs the reference's double sum; |x| < 1.
                const float g = got.data<float>()[i], e = want.data<float>()[i];
                if (!(std::fabs(g - e) <= 2e-6f))
                  FAIL() << layout << " " << isa_name(isa) << " threads " << threads << ": element "
                         << i << " is " << g << ", expected " << e;
              }
            }
        }
      }
    }
}

TEST(PoolFast, OtherDtypesTakeTheReferencePath) {
  const Tensor x = random_tensor({1, 3, 5, 4}, 9);
  std::vector<double> xd(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < xd.size(); ++i) xd[i] = x.data<float>()[i];
  const Tensor x64 = Tensor::from_vector<double>(x.shape(), xd);
  const std::vector<ir::Attribute> attrs = {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                            make_attr("pads", std::vector<int64_t>{1, 0, 0, 1})};
  auto want = evaluate_node(make_node("AveragePool", 1, 1, attrs), 19, {&x64});
  ASSERT_TRUE(want.is_ok()) << want.status().message();
  // NHWC f64: permute by hand (to_nhwc is f32-only).
  Tensor xn = Tensor::empty(DataType::kFloat64, {1, 5, 4, 3});
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t p = 0; p < 20; ++p)
      xn.data<double>()[p * 3 + ch] = xd[static_cast<size_t>(ch * 20 + p)];
  auto nhwc_attrs = attrs;
  nhwc_attrs.push_back(make_attr("layout", std::string("NHWC")));
  auto got = evaluate_node(make_node("AveragePool", 1, 1, nhwc_attrs, "brink"), 1, {&xn});
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  const Tensor& g = (*got)[0];
  const Tensor& w = (*want)[0];
  ASSERT_EQ(g.shape(), (Shape{1, w.dim(2), w.dim(3), 3}));
  const int64_t pixels = w.dim(2) * w.dim(3);
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t p = 0; p < pixels; ++p)
      EXPECT_EQ(g.data<double>()[p * 3 + ch], w.data<double>()[ch * pixels + p]);
}

TEST(PoolFast, RejectsBadAttributes) {
  const Tensor x = random_tensor({1, 4, 4, 3}, 1);
  auto bad_layout = evaluate_node(make_node("MaxPool", 1, 1,
                                            {make_attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                             make_attr("layout", std::string("NCWH"))},
                                            "brink"),
                                  1, {&x});
  EXPECT_FALSE(bad_layout.is_ok());
  auto two_outputs = evaluate_node(
      make_node("MaxPool", 1, 2, {make_attr("kernel_shape", std::vector<int64_t>{2, 2})}, "brink"),
      1, {&x});
  EXPECT_FALSE(two_outputs.is_ok());
}

}  // namespace
}  // namespace brink::ops
