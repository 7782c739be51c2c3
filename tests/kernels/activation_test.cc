// The float32 unary functions (kernels/activation.h) against double-precision math over a
// dense sweep, the extremes and the special values, and the other elementwise kernels
// (broadcasting binary ops, row/column sums, softmax rows, LayerNorm rows) against naive
// double loops, for every ISA this machine (or qemu) runs. No ONNX: this file also runs in
// the aarch64 cross build, which is what checks the NEON variants.
//
// The error bounds asserted here are the ones documented at unary_f32 in activation.h; the
// measured maxima are printed (and recorded as test properties) so the comment can be kept
// honest.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/layernorm.h"
#include "kernels/softmax.h"

namespace brink::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

double sigmoid_d(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double softplus_d(double x) {
  return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

// The definition of each function, in double.
double reference(const Unary& u, double x) {
  switch (u.op) {
    case UnaryOp::kIdentity:
      return x;
    case UnaryOp::kRelu:
      return x < 0 ? 0.0 : x;
    case UnaryOp::kClip:
      return std::min<double>(std::max<double>(x, u.alpha), u.beta);
    case UnaryOp::kLeakyRelu:
      return x < 0 ? u.alpha * x : x;
    case UnaryOp::kHardSigmoid:
      return std::clamp(u.alpha * x + u.beta, 0.0, 1.0);
    case UnaryOp::kHardSwish:
      return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case UnaryOp::kSigmoid:
      return sigmoid_d(x);
    case UnaryOp::kSilu:
      return x * sigmoid_d(x);
    case UnaryOp::kTanh:
      return std::tanh(x);
    case UnaryOp::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kLog:
      return std::log(x);
    case UnaryOp::kErf:
      return std::erf(x);
    case UnaryOp::kAbs:
      return std::fabs(x);
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kPowHalf:
      return std::pow(x, 0.5);
    case UnaryOp::kReciprocal:
      return 1.0 / x;
    case UnaryOp::kSquare:
      return x * x;
    case UnaryOp::kCube:
      return x * x * x;
    case UnaryOp::kSoftplus:
      return softplus_d(x);
    case UnaryOp::kSoftsign:
      return x / (1.0 + std::fabs(x));
    case UnaryOp::kMish:
      return x * std::tanh(softplus_d(x));
  }
  return x;
}

// Allowed error: max(rel * |ref|, abs + abs_per_x * |x|, FLT_MIN): results in the denormal
// range have few significant bits whatever the method.
struct Bound {
  double rel;
  double abs = 0;
  double abs_per_x = 0;
};

struct Func {
  const char* name;
  Unary u;
  Bound bound;
  double lo = -100, hi = 100;  // dense sweep range
};

const std::vector<Func>& functions() {
  static const std::vector<Func> f = {
      {"Identity", {UnaryOp::kIdentity}, {0}},
      {"Relu", {UnaryOp::kRelu}, {0}},
      {"Clip", {UnaryOp::kClip, -1.5f, 6.0f}, {0}},
      {"LeakyRelu", {UnaryOp::kLeakyRelu, 0.1f}, {1.2e-7}},
      {"HardSigmoid", {UnaryOp::kHardSigmoid, 0.2f, 0.5f}, {2.4e-7, 1e-7}},
      {"HardSwish", {UnaryOp::kHardSwish}, {3e-7, 1e-7}},
      {"Sigmoid", {UnaryOp::kSigmoid}, {4e-7}},
      {"SiLU", {UnaryOp::kSilu}, {5e-7}},
      {"Tanh", {UnaryOp::kTanh}, {4e-7}},
      {"Gelu", {UnaryOp::kGelu}, {5e-7, 0, 2.5e-7}},
      // Its exp argument is computed, so its relative error grows with the argument where the
      // result is tiny: the absolute error is what stays small.
      {"GeluTanh", {UnaryOp::kGeluTanh}, {5e-7, 0, 1e-7}},
      {"Exp", {UnaryOp::kExp}, {2.4e-7}, -104, 89},
      {"Log", {UnaryOp::kLog}, {2.4e-7}, 0, 100},
      {"Erf", {UnaryOp::kErf}, {4e-7}},
      {"Abs", {UnaryOp::kAbs}, {0}},
      {"Neg", {UnaryOp::kNeg}, {0}},
      {"Sqrt", {UnaryOp::kSqrt}, {6e-8}, 0, 100},
      {"PowHalf", {UnaryOp::kPowHalf}, {6e-8}, 0, 100},
      {"Reciprocal", {UnaryOp::kReciprocal}, {6e-8}},
      {"Square", {UnaryOp::kSquare}, {6e-8}},
      {"Cube", {UnaryOp::kCube}, {1.8e-7}},
      {"Softplus", {UnaryOp::kSoftplus}, {5e-7}},
      {"Softsign", {UnaryOp::kSoftsign}, {1.8e-7}},
      {"Mish", {UnaryOp::kMish}, {5e-7}},
  };
  return f;
}

// Inputs: a dense sweep of [lo, hi], magnitudes 1e-40 .. 1e38 of both signs, and the values
// where the approximations change behaviour (clamps, overflow and denormal edges).
std::vector<float> inputs(const Func& f) {
  std::vector<float> x;
  const int dense = 100000;
  for (int i = 0; i <= dense; ++i)
    x.push_back(static_cast<float>(f.lo + (f.hi - f.lo) * i / dense));
  for (double e = -40; e <= 38; e += 0.05) {
    x.push_back(static_cast<float>(std::pow(10.0, e)));
    x.push_back(static_cast<float>(-std::pow(10.0, e)));
  }
  for (float v : {0.0f,          -0.0f,    FLT_MIN,  -FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN,
                  -FLT_TRUE_MIN, 88.72f,   88.7228f, 88.73f,   89.0f,   -87.33f,  -87.34f,
                  -103.9f,       -103.98f, -104.0f,  -105.0f,  9.0f,    -9.0f,    3.92f,
                  4.0f,          -4.0f,    0.5f,     1.0f,     -1.0f,   6.0f,     -3.0f})
    x.push_back(v);
  return x;
}

std::vector<float> run(const Unary& u, const std::vector<float>& x, Isa isa) {
  std::vector<float> y(x.size());
  unary_f32(u, x.data(), y.data(), x.size(), isa);
  return y;
}

TEST(ActivationKernels, ApproximationErrorsStayWithinDocumentedBounds) {
  for (Isa isa : supported_isas()) {
    for (const Func& f : functions()) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " " + f.name);
      const std::vector<float> x = inputs(f);
      const std::vector<float> y = run(f.u, x, isa);
      double worst_rel = 0, worst_at = 0;
      int failures = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double ref = reference(f.u, x[i]);
        const float got = y[i];
        if (std::isnan(ref)) {
          if (!std::isnan(got) && failures++ < 5) ADD_FAILURE() << "f(" << x[i] << ") = " << got;
          continue;
        }
        const double ref_f = static_cast<double>(static_cast<float>(ref));  // rounds to +-inf
        if (std::isinf(ref_f) || std::isinf(got)) {
          if (got != ref_f && failures++ < 5)
            ADD_FAILURE() << "f(" << x[i] << ") = " << got << ", expected " << ref;
          continue;
        }
        const double err = std::fabs(got - ref);
        const double allowed =
            std::max({f.bound.rel * std::fabs(ref),
                      f.bound.abs + f.bound.abs_per_x * std::fabs(x[i]), double{FLT_MIN}});
        if (std::fabs(ref) > 1e-30 && std::fabs(ref) >= FLT_MIN &&
            err / std::fabs(ref) > worst_rel) {
          worst_rel = err / std::fabs(ref);
          worst_at = x[i];
        }
        if (!(err <= allowed) && failures++ < 5)
          ADD_FAILURE() << "f(" << x[i] << ") = " << got << ", expected " << ref << " (error "
                        << err << " > " << allowed << ")";
      }
      if (isa == supported_isas().back())
        std::printf("  %-12s max relative error %.3g at x = %.9g\n", f.name, worst_rel, worst_at);
    }
  }
}

// Every lane position, tail length and in-place use must give what one element at a time
// gives (the vector body and the masked tail are the same computation).
TEST(ActivationKernels, TailsAndInPlaceMatchElementwise) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  for (Isa isa : supported_isas()) {
    for (const Func& f : functions()) {
      for (size_t n = 0; n <= 70; ++n) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " " + f.name + " n=" + std::to_string(n));
        std::vector<float> x(n + 2, 123.0f);  // guard values after the end
        for (size_t i = 0; i < n; ++i) x[i] = dist(rng);
        std::vector<float> y(n + 2, -7.0f);
        unary_f32(f.u, x.data(), y.data(), n, isa);
        std::vector<float> in_place = x;
        unary_f32(f.u, in_place.data(), in_place.data(), n, isa);
        for (size_t i = 0; i < n; ++i) {
          float one;
          unary_f32(f.u, &x[i], &one, 1, isa);
          ASSERT_EQ(std::isnan(y[i]), std::isnan(one));
          if (!std::isnan(one)) {
            ASSERT_EQ(y[i], one) << "i=" << i;
            ASSERT_EQ(in_place[i], one) << "i=" << i;
          }
        }
        EXPECT_EQ(y[n], -7.0f);
        EXPECT_EQ(y[n + 1], -7.0f);
        EXPECT_EQ(in_place[n], 123.0f);
      }
    }
  }
}

TEST(ActivationKernels, SpecialValues) {
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    auto f = [&](UnaryOp op, float x) {
      float y;
      unary_f32(Unary{op}, &x, &y, 1, isa);
      return y;
    };
    EXPECT_EQ(f(UnaryOp::kExp, -kInf), 0.0f);
    EXPECT_EQ(f(UnaryOp::kExp, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kExp, 88.73f), kInf);
    EXPECT_GT(f(UnaryOp::kExp, 88.72f), 3.3e38f);
    EXPECT_EQ(f(UnaryOp::kExp, -104.0f), 0.0f);
    EXPECT_GT(f(UnaryOp::kExp, -103.0f), 0.0f);  // denormal, not flushed
    EXPECT_EQ(f(UnaryOp::kExp, 0.0f), 1.0f);
    EXPECT_EQ(f(UnaryOp::kLog, 0.0f), -kInf);
    EXPECT_EQ(f(UnaryOp::kLog, 1.0f), 0.0f);
    EXPECT_EQ(f(UnaryOp::kLog, kInf), kInf);
    EXPECT_TRUE(std::isnan(f(UnaryOp::kLog, -1.0f)));
    EXPECT_TRUE(std::isnan(f(UnaryOp::kLog, -kInf)));
    EXPECT_EQ(f(UnaryOp::kTanh, kInf), 1.0f);
    EXPECT_EQ(f(UnaryOp::kTanh, -kInf), -1.0f);
    EXPECT_EQ(f(UnaryOp::kTanh, 0.0f), 0.0f);
    EXPECT_EQ(f(UnaryOp::kErf, kInf), 1.0f);
    EXPECT_EQ(f(UnaryOp::kErf, -kInf), -1.0f);
    EXPECT_EQ(f(UnaryOp::kSigmoid, kInf), 1.0f);
    EXPECT_EQ(f(UnaryOp::kSigmoid, -kInf), 0.0f);
    EXPECT_EQ(f(UnaryOp::kSigmoid, 0.0f), 0.5f);
    EXPECT_EQ(f(UnaryOp::kGelu, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kGeluTanh, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kSilu, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kSoftplus, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kSoftplus, -kInf), 0.0f);
    EXPECT_EQ(f(UnaryOp::kMish, kInf), kInf);
    EXPECT_EQ(f(UnaryOp::kPowHalf, -kInf), kInf);
    EXPECT_FALSE(std::signbit(f(UnaryOp::kPowHalf, -0.0f)));
    EXPECT_TRUE(std::signbit(f(UnaryOp::kSqrt, -0.0f)));
    EXPECT_TRUE(std::signbit(f(UnaryOp::kRelu, -0.0f)));  // as x < 0 ? 0 : x
    for (const Func& fn : functions())
      EXPECT_TRUE(std::isnan(run(fn.u, {kNaN}, isa)[0])) << fn.name;
  }
}

TEST(ActivationKernels, ApplyActivationIsTheUnaryFunction) {
  const ActivationKind kinds[] = {ActivationKind::kRelu,      ActivationKind::kClip,
                                  ActivationKind::kLeakyRelu, ActivationKind::kHardSigmoid,
                                  ActivationKind::kHardSwish, ActivationKind::kSigmoid,
                                  ActivationKind::kSilu,      ActivationKind::kTanh,
                                  ActivationKind::kGelu,      ActivationKind::kGeluTanh};
  std::vector<float> x(37);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -9.0f + 0.5f * static_cast<float>(i);
  for (Isa isa : supported_isas()) {
    for (ActivationKind kind : kinds) {
      Activation a{kind, 0.1f, 4.0f};
      std::vector<float> y = x;
      apply_activation(a, y.data(), y.size(), isa);
      for (size_t i = 0; i < x.size(); ++i) {
        const float s = apply_activation_scalar(a, x[i]);
        EXPECT_NEAR(y[i], s, 1e-6f * std::max(1.0f, std::fabs(s)))
            << isa_name(isa) << " " << activation_name(kind) << " x=" << x[i];
      }
    }
  }
}

// ---- binary broadcasting -------------------------------------------------------------------

Shape broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Flat index into `in` (right-aligned, broadcast) of output element `flat`.
int64_t source_index(const Shape& in, const Shape& out, int64_t flat) {
  int64_t idx = 0, stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    const int64_t coord = flat % out[k];
    flat /= out[k];
    const size_t off = out.size() - in.size();
    if (k >= off) {
      const int64_t d = in[k - off];
      if (d != 1) idx += coord * stride;
      stride *= d;
    }
  }
  return idx;
}

float binary_ref(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
    case BinaryOp::kMax:
      return std::isnan(a) ? a : std::isnan(b) ? b : (a < b ? b : a);
    case BinaryOp::kMin:
      return std::isnan(a) ? a : std::isnan(b) ? b : (b < a ? b : a);
    case BinaryOp::kPRelu:
      return a < 0 ? a * b : a;
  }
  return 0;
}

std::vector<float> random_floats(int64_t n, uint32_t seed, bool specials = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = dist(rng);
    if (specials && i % 13 == 5) v[i] = kNaN;
    if (specials && i % 17 == 3) v[i] = -kInf;
  }
  return v;
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    ASSERT_EQ(got[i], want[i]) << what << " at " << i;
  }
}

TEST(ElementwiseKernels, BinaryBroadcastPatternsMatchNaive) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{}, {}},
      {{37}, {37}},
      {{2, 3, 5, 7}, {}},              // scalar
      {{1}, {2, 3, 5, 7}},             // scalar first
      {{2, 3, 5, 7}, {1, 3, 1, 1}},    // per channel, NCHW
      {{2, 3, 5, 7}, {3, 1, 1}},       // per channel, lower rank
      {{2, 5, 7, 19}, {19}},           // per channel, NHWC
      {{3, 11, 24}, {24}},             // [B,S,D] x [D]
      {{2, 4, 4, 19}, {2, 1, 1, 19}},  // SE block, NHWC
      {{2, 19, 4, 4}, {2, 19, 1, 1}},  // SE block, NCHW
      {{4, 1, 3}, {1, 5, 1}},          // both broadcast
      {{1, 5, 1}, {4, 1, 3}},
      {{5, 1}, {1, 33}},  // outer product
      {{2, 1, 3, 1, 2}, {1, 4, 1, 3, 1}},
      {{0, 3}, {3}},  // empty
      {{3, 70}, {3, 1}},
      {{300, 300}, {300}},  // large, threaded
      {{2, 64, 33, 17}, {1, 64, 1, 1}},
  };
  ThreadPool pool(3);
  const BinaryOp ops[] = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul,  BinaryOp::kDiv,
                          BinaryOp::kMax, BinaryOp::kMin, BinaryOp::kPRelu};
  for (Isa isa : supported_isas()) {
    for (const auto& [sa, sb] : cases) {
      const Shape out = broadcast(sa, sb);
      const int64_t n = shape_numel(out);
      const std::vector<float> a = random_floats(shape_numel(sa), 1, true);
      const std::vector<float> b = random_floats(shape_numel(sb), 2, true);
      BinaryBroadcast plan;
      ASSERT_TRUE(plan_binary_broadcast(sa, sb, out, &plan));
      for (BinaryOp op : ops) {
        const std::string what = std::string(isa_name(isa)) + " " + shape_to_string(sa) + " op " +
                                 shape_to_string(sb) + " #" + std::to_string(static_cast<int>(op));
        std::vector<float> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          want[static_cast<size_t>(i)] =
              binary_ref(op, a[static_cast<size_t>(source_index(sa, out, i))],
                         b[static_cast<size_t>(source_index(sb, out, i))]);
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          std::vector<float> got(static_cast<size_t>(n) + 1, 99.0f);
          binary_broadcast_f32(op, plan, a.data(), b.data(), got.data(), isa, p);
          EXPECT_EQ(got.back(), 99.0f) << what;
          got.pop_back();
          expect_same(got, want, what);
          // In place over whichever operand has the output's shape.
          if (shape_numel(sa) == n) {
            std::vector<float> y = a;
            binary_broadcast_f32(op, plan, y.data(), b.data(), y.data(), isa, p);
            expect_same(y, want, what + " in place (a)");
          }
          if (shape_numel(sb) == n) {
            std::vector<float> y = b;
            binary_broadcast_f32(op, plan, a.data(), y.data(), y.data(), isa, p);
            expect_same(y, want, what + " in place (b)");
          }
        }
      }
    }
  }
}

TEST(ElementwiseKernels, BroadcastPlanMergesDimsAndRefusesWhatItCannotWalk) {
  BinaryBroadcast plan;
  ASSERT_TRUE(plan_binary_broadcast({2, 3, 5, 7}, {1, 3, 1, 1}, {2, 3, 5, 7}, &plan));
  EXPECT_EQ(plan.inner, 35);
  EXPECT_FALSE(plan.b_steps);
  EXPECT_EQ(plan.outer_rank, 2);
  ASSERT_TRUE(plan_binary_broadcast({4, 8, 16}, {16}, {4, 8, 16}, &plan));
  EXPECT_EQ(plan.inner, 16);
  EXPECT_EQ(plan.outer_rank, 1);
  EXPECT_EQ(plan.outer[0], 32);
  ASSERT_TRUE(plan_binary_broadcast({4, 8, 16}, {4, 8, 16}, {4, 8, 16}, &plan));
  EXPECT_EQ(plan.inner, 512);
  EXPECT_EQ(plan.outer_rank, 0);
  EXPECT_FALSE(plan_binary_broadcast({3}, {4}, {4}, &plan));
  // Ten alternating broadcast dims cannot be merged into kMaxBroadcastDims + 1.
  Shape a(10), b(10), out(10, 2);
  for (size_t i = 0; i < 10; ++i) {
    a[i] = i % 2 == 0 ? 2 : 1;
    b[i] = i % 2 == 0 ? 1 : 2;
  }
  EXPECT_FALSE(plan_binary_broadcast(a, b, out, &plan));
}

// ---- reductions, softmax, layer norm --------------------------------------------------------

TEST(ElementwiseKernels, RowAndColumnSumsMatchDouble) {
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 2, 7, 16, 17, 63, 64, 65, 100, 1000}) {
      for (int64_t rows : {1, 3, 70}) {
        const std::vector<float> x = random_floats(rows * n, static_cast<uint32_t>(n + rows));
        std::vector<float> y(static_cast<size_t>(rows));
        reduce_rows_f32(x.data(), y.data(), rows, n, static_cast<float>(n), isa, &pool);
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0, mag = 0;
          for (int64_t j = 0; j < n; ++j) {
            s += x[static_cast<size_t>(r * n + j)];
            mag += std::fabs(x[static_cast<size_t>(r * n + j)]);
          }
          EXPECT_NEAR(y[static_cast<size_t>(r)], s / n, 2e-6 * mag / n + 1e-7)
              << isa_name(isa) << " rows n=" << n;
        }
        // The same data as [rows, n] summed over rows, per column, and as [1, rows, n].
        std::vector<float> c(static_cast<size_t>(n));
        reduce_cols_f32(x.data(), c.data(), 1, rows, n, 1.0f, isa, &pool);
        for (int64_t k = 0; k < n; ++k) {
          double s = 0, mag = 0;
          for (int64_t r = 0; r < rows; ++r) {
            s += x[static_cast<size_t>(r * n + k)];
            mag += std::fabs(x[static_cast<size_t>(r * n + k)]);
          }
          EXPECT_NEAR(c[static_cast<size_t>(k)], s, 2e-6 * mag + 1e-7) << isa_name(isa);
        }
      }
    }
  }
}

TEST(ElementwiseKernels, SoftmaxRowsMatchDouble) {
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 2, 5, 16, 17, 31, 70, 128, 1000}) {
      for (bool log : {false, true}) {
        const int64_t rows = 5;
        std::vector<float> x = random_floats(rows * n, static_cast<uint32_t>(n));
        for (float& v : x) v *= 20.0f;
        if (n > 3) x[2] = -kInf;  // a masked position in row 0
        std::vector<float> y(x.size());
        softmax_rows_f32(x.data(), y.data(), rows, n, log, isa, &pool);
        std::vector<float> in_place = x;
        softmax_rows_f32(in_place.data(), in_place.data(), rows, n, log, isa, nullptr);
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = x.data() + r * n;
          double m = -INFINITY, s = 0;
          for (int64_t j = 0; j < n; ++j) m = std::max(m, static_cast<double>(xr[j]));
          for (int64_t j = 0; j < n; ++j) s += std::exp(xr[j] - m);
          for (int64_t j = 0; j < n; ++j) {
            const double want = log ? (xr[j] - m) - std::log(s) : std::exp(xr[j] - m) / s;
            const size_t i = static_cast<size_t>(r * n + j);
            if (std::isinf(want)) {
              EXPECT_EQ(y[i], want);
            } else {
              EXPECT_NEAR(y[i], want, 2e-6 * std::max(1.0, std::fabs(want)))
                  << isa_name(isa) << " n=" << n << " log=" << log;
            }
            EXPECT_EQ(y[i], in_place[i]);
          }
        }
      }
    }
  }
}

TEST(ElementwiseKernels, LayerNormRowsMatchDouble) {
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 2, 7, 16, 17, 33, 70, 384}) {
      for (bool with_bias : {false, true}) {
        const int64_t rows = 9;
        std::vector<float> x = random_floats(rows * n, static_cast<uint32_t>(n));
        for (float& v : x) v = v * 3.0f + 5.0f;  // an offset mean, as activations have
        const std::vector<float> scale = random_floats(n, 7), bias = random_floats(n, 8);
        std::vector<float> y(x.size()), mean(rows), inv(rows);
        layernorm_rows_f32(x.data(), y.data(), rows, n, scale.data(),
                           with_bias ? bias.data() : nullptr, 1e-5f, mean.data(), inv.data(), isa,
                           &pool);
        std::vector<float> in_place = x;
        layernorm_rows_f32(in_place.data(), in_place.data(), rows, n, scale.data(),
                           with_bias ? bias.data() : nullptr, 1e-5f, nullptr, nullptr, isa,
                           nullptr);
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = x.data() + r * n;
          double m = 0, v = 0;
          for (int64_t j = 0; j < n; ++j) m += xr[j];
          m /= n;
          for (int64_t j = 0; j < n; ++j) v += (xr[j] - m) * (xr[j] - m);
          const double is = 1.0 / std::sqrt(v / n + 1e-5);
          EXPECT_NEAR(mean[static_cast<size_t>(r)], m, 1e-5 * std::fabs(m));
          EXPECT_NEAR(inv[static_cast<size_t>(r)], is, 1e-5 * is);
          for (int64_t j = 0; j < n; ++j) {
            const size_t i = static_cast<size_t>(r * n + j);
            const double want = (xr[j] - m) * is * scale[static_cast<size_t>(j)] +
                                (with_bias ? bias[static_cast<size_t>(j)] : 0.0);
            EXPECT_NEAR(y[i], want, 2e-5 * (1 + std::fabs(want))) << isa_name(isa) << " n=" << n;
            EXPECT_EQ(y[i], in_place[i]);
          }
        }
      }
    }
  }
}

TEST(ElementwiseKernels, ParallelUnaryMatchesSerial) {
  ThreadPool pool(3);
  const std::vector<float> x = random_floats(200003, 11);
  for (Isa isa : supported_isas()) {
    std::vector<float> a(x.size()), b(x.size());
    unary_f32_parallel(Unary{UnaryOp::kGelu}, x.data(), a.data(), static_cast<int64_t>(x.size()),
                       isa, &pool);
    unary_f32(Unary{UnaryOp::kGelu}, x.data(), b.data(), x.size(), isa);
    expect_same(a, b, isa_name(isa));
  }
}

}  // namespace
}  // namespace brink::kernels
