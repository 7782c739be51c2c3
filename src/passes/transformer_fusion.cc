// Transformer patterns: LayerNorm, GELU and scaled dot-product attention, as torch.onnx
// exports them, rewritten into brink.LayerNormalization, brink.Gelu and brink.Attention.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "ops/evaluate.h"
#include "passes/pass_util.h"
#include "passes/passes.h"

namespace brink::passes {

namespace {

// The producer of `v` when `v` is internal, read only by node `consumer`, and the producer
// is unclaimed and has one output.
int private_producer(const GraphInfo& info, const Rewriter& rw, int v, int consumer) {
  if (info.sole_consumer(v) != consumer) return -1;
  const int p = info.producer(v);
  if (p < 0 || rw.claimed(p) || info.graph().nodes[static_cast<size_t>(p)].outputs.size() != 1)
    return -1;
  return p;
}

int sole_unclaimed_consumer(const GraphInfo& info, const Rewriter& rw, int v) {
  const int n = info.sole_consumer(v);
  if (n < 0 || rw.claimed(n)) return -1;
  const ir::Node& node = info.graph().nodes[static_cast<size_t>(n)];
  if (node.outputs.size() != 1 || node.outputs[0] == ir::kNoValue) return -1;
  return n;
}

void place(Rewriter& rw, const std::vector<int>& nodes, ir::Node fused) {
  const int last = *std::max_element(nodes.begin(), nodes.end());
  for (int n : nodes)
    if (n != last) rw.remove(n);
  rw.replace(last, std::move(fused));
}

// ---------------------------------------------------------------------------------------
// LayerNorm

// The axes a ReduceMean reduces, normalized and sorted; nullopt when not constant, when
// keepdims is 0, or when they are empty.
std::optional<std::vector<int64_t>> reduce_axes(const GraphInfo& info, const ir::Node& node,
                                                int64_t rank) {
  if (node.attr_int("keepdims", 1) != 1) return std::nullopt;
  std::vector<int64_t> axes;
  if (info.opset(node) >= 18) {
    if (node.inputs.size() < 2 || node.inputs[1] == ir::kNoValue) return std::nullopt;
    const Tensor* t = info.constant(node.inputs[1]);
    if (!t) return std::nullopt;
    for (int64_t k = 0; k < t->numel(); ++k) axes.push_back(t->element_as_int64(k));
  } else {
    if (!node.attr("axes")) return std::nullopt;
    axes = node.attr_ints("axes");
  }
  if (axes.empty()) return std::nullopt;
  for (int64_t& a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) return std::nullopt;
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

// An affine parameter (scale or bias) as a float32 tensor of exactly the normalized shape.
std::optional<Tensor> affine_param(const Tensor& c, const Shape& normalized, int64_t rank) {
  const auto values = constant_as_floats(c);
  if (!values || c.rank() > rank) return std::nullopt;
  const int64_t count = shape_numel(normalized);
  if (c.numel() == 1)
    return Tensor::from_vector<float>(normalized, std::vector<float>(count, (*values)[0]));
  // Leading dims beyond the normalized ones must be 1; the rest must match exactly.
  const int64_t k = static_cast<int64_t>(normalized.size());
  for (int64_t d = 0; d < c.rank(); ++d) {
    const int64_t from_end = c.rank() - d;  // 1 = last
    const int64_t dim = c.dim(d);
    if (from_end > k) {
      if (dim != 1) return std::nullopt;
    } else if (dim != normalized[static_cast<size_t>(k - from_end)]) {
      return std::nullopt;
    }
  }
  if (c.numel() != count) return std::nullopt;
  return Tensor::from_vector<float>(normalized, *values);
}

bool fuse_decomposed_layernorm(const GraphInfo& info, Rewriter& rw, ir::Graph& g, int i) {
  const ir::Node& mean_node = g.nodes[static_cast<size_t>(i)];
  if (!is_op(mean_node, "ReduceMean") || mean_node.outputs.size() != 1) return false;
  const int x = mean_node.inputs[0];
  const int64_t r = info.rank(x);
  if (!info.is_float32(x) || r < 1) return false;
  const auto axes = reduce_axes(info, mean_node, r);
  if (!axes) return false;
  const int64_t k = static_cast<int64_t>(axes->size());
  for (int64_t j = 0; j < k; ++j)
    if ((*axes)[static_cast<size_t>(j)] != r - k + j) return false;
  const ir::TensorType& xt = info.type(x);
  Shape normalized;
  for (int64_t d = r - k; d < r; ++d) {
    const ir::Dim& dim = (*xt.dims)[static_cast<size_t>(d)];
    if (!dim.known()) return false;
    normalized.push_back(dim.value);
  }

  const int mean = mean_node.outputs[0];
  const int sub_i = sole_unclaimed_consumer(info, rw, mean);
  if (sub_i < 0) return false;
  const ir::Node& sub = g.nodes[static_cast<size_t>(sub_i)];
  if (!is_op(sub, "Sub") || sub.inputs.size() != 2 || sub.inputs[0] != x || sub.inputs[1] != mean)
    return false;
  const int d = sub.outputs[0];
  if (!info.internal(d)) return false;
  const std::vector<int> d_users = info.consumer_nodes(d);
  if (d_users.size() != 2 || rw.any_claimed(d_users)) return false;
  int sq_i = -1, div_i = -1;
  for (int n : d_users) {
    const ir::Node& u = g.nodes[static_cast<size_t>(n)];
    if (is_op(u, "Div") && u.inputs.size() == 2 && u.inputs[0] == d && u.inputs[1] != d) {
      div_i = n;
    } else if (is_op(u, "Pow") && u.inputs.size() == 2 && u.inputs[0] == d &&
               is_scalar_constant(info, u.inputs[1], 2.0, 0.0, r)) {
      sq_i = n;
    } else if (is_op(u, "Mul") && u.inputs.size() == 2 && u.inputs[0] == d && u.inputs[1] == d) {
      sq_i = n;
    }
  }
  if (sq_i < 0 || div_i < 0) return false;
  const size_t expected_uses = g.nodes[static_cast<size_t>(sq_i)].op_type == "Mul" ? 3 : 2;
  if (info.uses(d).size() != expected_uses) return false;
  const int var_i =
      sole_unclaimed_consumer(info, rw, g.nodes[static_cast<size_t>(sq_i)].outputs[0]);
  if (var_i < 0) return false;
  const ir::Node& var_node = g.nodes[static_cast<size_t>(var_i)];
  if (!is_op(var_node, "ReduceMean") || reduce_axes(info, var_node, r) != axes) return false;
  const int eps_i = sole_unclaimed_consumer(info, rw, var_node.outputs[0]);
  if (eps_i < 0) return false;
  const ir::Node& eps_node = g.nodes[static_cast<size_t>(eps_i)];
  const int eps_v =
      is_op(eps_node, "Add") ? other_input(eps_node, var_node.outputs[0]) : ir::kNoValue;
  const auto eps = eps_v != ir::kNoValue ? scalar_constant(info, eps_v) : std::nullopt;
  if (!eps || info.constant(eps_v)->rank() > r || *eps < 0) return false;
  const int sqrt_i = sole_unclaimed_consumer(info, rw, eps_node.outputs[0]);
  if (sqrt_i < 0 || !is_op(g.nodes[static_cast<size_t>(sqrt_i)], "Sqrt")) return false;
  const int s = g.nodes[static_cast<size_t>(sqrt_i)].outputs[0];
  if (info.sole_consumer(s) != div_i) return false;
  const ir::Node& div = g.nodes[static_cast<size_t>(div_i)];
  if (div.inputs[1] != s || div.outputs.size() != 1) return false;

  std::vector<int> chain = {i, sub_i, sq_i, var_i, eps_i, sqrt_i, div_i};
  int y = div.outputs[0];
  std::optional<Tensor> scale, bias;
  if (const int n = sole_unclaimed_consumer(info, rw, y);
      n >= 0 && is_op(g.nodes[static_cast<size_t>(n)], "Mul")) {
    const ir::Node& mul = g.nodes[static_cast<size_t>(n)];
    const int c = other_input(mul, y);
    const Tensor* ct = c != ir::kNoValue ? info.constant(c) : nullptr;
    if (ct && same_shape(info.type(mul.outputs[0]), info.type(y)))
      scale = affine_param(*ct, normalized, r);
    if (scale) {
      chain.push_back(n);
      y = mul.outputs[0];
    }
  }
  if (const int n = sole_unclaimed_consumer(info, rw, y);
      n >= 0 && is_op(g.nodes[static_cast<size_t>(n)], "Add")) {
    const ir::Node& add = g.nodes[static_cast<size_t>(n)];
    const int c = other_input(add, y);
    const Tensor* ct = c != ir::kNoValue ? info.constant(c) : nullptr;
    if (ct && same_shape(info.type(add.outputs[0]), info.type(y)))
      bias = affine_param(*ct, normalized, r);
    if (bias) {
      chain.push_back(n);
      y = add.outputs[0];
    }
  }
  if (!info.is_float32(y)) return false;
  if (!scale)
    scale = Tensor::from_vector<float>(
        normalized, std::vector<float>(static_cast<size_t>(shape_numel(normalized)), 1.0f));

  ir::Node fused;
  fused.name = mean_node.name;
  fused.op_type = "LayerNormalization";
  fused.domain = "brink";
  const std::string base = g.value(x).name.empty() ? std::string("layernorm") : fused.name;
  fused.inputs = {x, add_initializer(g, base + "_ln_scale", *scale)};
  if (bias) fused.inputs.push_back(add_initializer(g, base + "_ln_bias", *bias));
  fused.outputs = {y};
  fused.attributes = {ops::make_attr("axis", -k),
                      ops::make_attr("epsilon", static_cast<float>(*eps)),
                      ops::make_attr("stash_type", int64_t{1})};
  place(rw, chain, std::move(fused));
  return true;
}

bool convert_onnx_layernorm(const GraphInfo& info, Rewriter& rw, ir::Graph& g, int i) {
  const ir::Node& node = g.nodes[static_cast<size_t>(i)];
  if (!is_op(node, "LayerNormalization") || node.inputs.size() < 2 || node.outputs.empty() ||
      node.outputs[0] == ir::kNoValue)
    return false;
  for (size_t k = 1; k < node.outputs.size(); ++k) {
    const int v = node.outputs[k];
    if (v != ir::kNoValue && (!info.uses(v).empty() || info.is_graph_output(v) || info.pinned(v)))
      return false;
  }
  for (int in : node.inputs)
    if (in != ir::kNoValue && !info.is_float32(in)) return false;
  if (!info.is_float32(node.outputs[0])) return false;
  ir::Node fused = node;
  fused.domain = "brink";
  fused.outputs = {node.outputs[0]};
  rw.replace(i, std::move(fused));
  return true;
}

// ---------------------------------------------------------------------------------------
// GELU

// x * c or c * x, or x / d, by a scalar constant: returns x and the factor (c or 1/d).
struct Scaled {
  int x = ir::kNoValue;
  double factor = 1.0;
};
std::optional<Scaled> as_scaled(const GraphInfo& info, const ir::Node& node) {
  if (node.inputs.size() != 2 || node.outputs.size() != 1) return std::nullopt;
  if (is_op(node, "Div")) {
    const auto d = scalar_constant(info, node.inputs[1]);
    if (!d || *d == 0.0 || info.constant(node.inputs[1])->rank() > info.rank(node.inputs[0]))
      return std::nullopt;
    return Scaled{node.inputs[0], 1.0 / *d};
  }
  if (is_op(node, "Mul")) {
    for (int k = 0; k < 2; ++k) {
      const int c = node.inputs[static_cast<size_t>(1 - k)];
      const auto f = scalar_constant(info, c);
      if (f && info.constant(c)->rank() <= info.rank(node.inputs[static_cast<size_t>(k)]) &&
          !info.constant(node.inputs[static_cast<size_t>(k)]))
        return Scaled{node.inputs[static_cast<size_t>(k)], *f};
    }
  }
  return std::nullopt;
}

bool near(double a, double b, double rel = 1e-4) {
  return std::fabs(a - b) <= rel * std::fabs(b);
}

// 0.5 * x * a in the association orders torch exports: (x * a) * 0.5, (x * a) / 2,
// x * (a * 0.5)... Returns the nodes and the output.
std::optional<std::pair<std::vector<int>, int>> match_half_x_times(const GraphInfo& info,
                                                                   const Rewriter& rw, int x,
                                                                   int a) {
  const ir::Graph& g = info.graph();
  const int m1 = sole_unclaimed_consumer(info, rw, a);
  if (m1 < 0 || !is_op(g.nodes[static_cast<size_t>(m1)], "Mul")) return std::nullopt;
  const ir::Node& mul1 = g.nodes[static_cast<size_t>(m1)];
  const int o = other_input(mul1, a);
  if (o == ir::kNoValue) return std::nullopt;
  const int y1 = mul1.outputs[0];
  if (o == x) {  // (x * a) then * 0.5 or / 2
    const int m2 = sole_unclaimed_consumer(info, rw, y1);
    if (m2 < 0) return std::nullopt;
    const auto s = as_scaled(info, g.nodes[static_cast<size_t>(m2)]);
    if (!s || s->x != y1 || !near(s->factor, 0.5, 1e-6)) return std::nullopt;
    return std::pair{std::vector<int>{m1, m2}, g.nodes[static_cast<size_t>(m2)].outputs[0]};
  }
  if (is_scalar_constant(info, o, 0.5, 1e-6, info.rank(x))) {  // (a * 0.5) * x
    const int m2 = sole_unclaimed_consumer(info, rw, y1);
    if (m2 < 0 || other_input(g.nodes[static_cast<size_t>(m2)], y1) != x ||
        !is_op(g.nodes[static_cast<size_t>(m2)], "Mul"))
      return std::nullopt;
    return std::pair{std::vector<int>{m1, m2}, g.nodes[static_cast<size_t>(m2)].outputs[0]};
  }
  const int h = private_producer(info, rw, o, m1);  // (x * 0.5) * a
  if (h < 0) return std::nullopt;
  const auto s = as_scaled(info, g.nodes[static_cast<size_t>(h)]);
  if (!s || s->x != x || !near(s->factor, 0.5, 1e-6)) return std::nullopt;
  return std::pair{std::vector<int>{h, m1}, y1};
}

// 1 + t (either order) read only by the outer product.
int one_plus(const GraphInfo& info, const Rewriter& rw, int t, int* add_node) {
  const int n = sole_unclaimed_consumer(info, rw, t);
  if (n < 0) return ir::kNoValue;
  const ir::Node& add = info.graph().nodes[static_cast<size_t>(n)];
  if (!is_op(add, "Add")) return ir::kNoValue;
  const int c = other_input(add, t);
  if (c == ir::kNoValue || !is_scalar_constant(info, c, 1.0, 1e-6, info.rank(t)))
    return ir::kNoValue;
  *add_node = n;
  return add.outputs[0];
}

// x^3 as Pow(x, 3), x * (x * x) or (x * x) * x; the nodes computing it.
std::optional<std::vector<int>> match_cube(const GraphInfo& info, const Rewriter& rw, int cube,
                                           int consumer, int x) {
  const ir::Graph& g = info.graph();
  const int p = private_producer(info, rw, cube, consumer);
  if (p < 0) return std::nullopt;
  const ir::Node& node = g.nodes[static_cast<size_t>(p)];
  if (is_op(node, "Pow") && node.inputs.size() == 2 && node.inputs[0] == x &&
      is_scalar_constant(info, node.inputs[1], 3.0, 0.0, info.rank(x)))
    return std::vector<int>{p};
  if (!is_op(node, "Mul") || node.inputs.size() != 2) return std::nullopt;
  const int sq = other_input(node, x);
  if (sq == ir::kNoValue) return std::nullopt;
  const int q = private_producer(info, rw, sq, p);
  if (q < 0) return std::nullopt;
  const ir::Node& sq_node = g.nodes[static_cast<size_t>(q)];
  if (!is_op(sq_node, "Mul") || sq_node.inputs.size() != 2 || sq_node.inputs[0] != x ||
      sq_node.inputs[1] != x)
    return std::nullopt;
  return std::vector<int>{q, p};
}

struct GeluMatch {
  int x = ir::kNoValue;
  std::vector<int> nodes;
  int output = ir::kNoValue;
  bool tanh = false;
};

// x * 0.5 * (1 + erf(x / sqrt(2)))
std::optional<GeluMatch> match_erf_gelu(const GraphInfo& info, const Rewriter& rw, int erf_i) {
  const ir::Graph& g = info.graph();
  const ir::Node& erf = g.nodes[static_cast<size_t>(erf_i)];
  if (erf.inputs.size() != 1 || erf.outputs.size() != 1) return std::nullopt;
  const int p = private_producer(info, rw, erf.inputs[0], erf_i);
  if (p < 0) return std::nullopt;
  const auto s = as_scaled(info, g.nodes[static_cast<size_t>(p)]);
  if (!s || !near(s->factor, 1.0 / std::sqrt(2.0))) return std::nullopt;
  int add_i = -1;
  const int a = one_plus(info, rw, erf.outputs[0], &add_i);
  if (a == ir::kNoValue) return std::nullopt;
  const auto outer = match_half_x_times(info, rw, s->x, a);
  if (!outer) return std::nullopt;
  GeluMatch m{s->x, {p, erf_i, add_i}, outer->second, false};
  m.nodes.insert(m.nodes.end(), outer->first.begin(), outer->first.end());
  return m;
}

// x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
std::optional<GeluMatch> match_tanh_gelu(const GraphInfo& info, const Rewriter& rw, int tanh_i) {
  const ir::Graph& g = info.graph();
  const ir::Node& tanh = g.nodes[static_cast<size_t>(tanh_i)];
  if (tanh.inputs.size() != 1 || tanh.outputs.size() != 1) return std::nullopt;
  const int p = private_producer(info, rw, tanh.inputs[0], tanh_i);
  if (p < 0) return std::nullopt;
  const auto inner = as_scaled(info, g.nodes[static_cast<size_t>(p)]);
  if (!inner || !near(inner->factor, std::sqrt(2.0 / std::numbers::pi))) return std::nullopt;
  const int sum_i = private_producer(info, rw, inner->x, p);
  if (sum_i < 0 || !is_op(g.nodes[static_cast<size_t>(sum_i)], "Add")) return std::nullopt;
  const ir::Node& sum = g.nodes[static_cast<size_t>(sum_i)];
  if (sum.inputs.size() != 2) return std::nullopt;
  for (int k = 0; k < 2; ++k) {
    const int x = sum.inputs[static_cast<size_t>(k)], q = sum.inputs[static_cast<size_t>(1 - k)];
    const int kappa_i = private_producer(info, rw, q, sum_i);
    if (kappa_i < 0) continue;
    const auto kappa = as_scaled(info, g.nodes[static_cast<size_t>(kappa_i)]);
    if (!kappa || !near(kappa->factor, 0.044715)) continue;
    const auto cube = match_cube(info, rw, kappa->x, kappa_i, x);
    if (!cube) continue;
    int add_i = -1;
    const int a = one_plus(info, rw, tanh.outputs[0], &add_i);
    if (a == ir::kNoValue) return std::nullopt;
    const auto outer = match_half_x_times(info, rw, x, a);
    if (!outer) return std::nullopt;
    GeluMatch m{x, {p, sum_i, kappa_i, tanh_i, add_i}, outer->second, true};
    m.nodes.insert(m.nodes.end(), cube->begin(), cube->end());
    m.nodes.insert(m.nodes.end(), outer->first.begin(), outer->first.end());
    return m;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Attention

struct ScaleStrip {
  int inner = ir::kNoValue;
  int node = -1;
  double factor = 1.0;
};
// `v` = inner * c or inner / c, privately for `consumer`: the scale folds into attention.
std::optional<ScaleStrip> strip_scale(const GraphInfo& info, const Rewriter& rw, int v,
                                      int consumer) {
  const int p = private_producer(info, rw, v, consumer);
  if (p < 0) return std::nullopt;
  const auto s = as_scaled(info, info.graph().nodes[static_cast<size_t>(p)]);
  if (!s || !info.is_float32(s->x) || !std::isfinite(s->factor)) return std::nullopt;
  return ScaleStrip{s->x, p, s->factor};
}

bool fuse_one_attention(const GraphInfo& info, Rewriter& rw, ir::Graph& g, int sm_i) {
  const ir::Node& sm = g.nodes[static_cast<size_t>(sm_i)];
  if (!is_op(sm, "Softmax") || sm.inputs.size() != 1 || sm.outputs.size() != 1) return false;
  const int scores = sm.inputs[0];
  const int64_t r = info.rank(scores);
  if (!info.is_float32(scores) || r < 2) return false;
  int64_t axis = sm.attr_int("axis", info.opset(sm) >= 13 ? -1 : 1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return false;
  const int mm2_i = sole_unclaimed_consumer(info, rw, sm.outputs[0]);
  if (mm2_i < 0) return false;
  const ir::Node& mm2 = g.nodes[static_cast<size_t>(mm2_i)];
  if (!is_op(mm2, "MatMul") || mm2.inputs.size() != 2 || mm2.inputs[0] != sm.outputs[0])
    return false;
  const int v = mm2.inputs[1];
  if (!info.is_float32(v) || info.rank(v) < 2 || !info.is_float32(mm2.outputs[0])) return false;

  std::vector<int> chain = {sm_i, mm2_i};
  double scale = 1.0;
  int cur = scores, consumer = sm_i, mask = ir::kNoValue;
  // [Add mask]: the scores side is the operand computed by the pattern.
  if (const int p = private_producer(info, rw, cur, consumer);
      p >= 0 && is_op(g.nodes[static_cast<size_t>(p)], "Add")) {
    const ir::Node& add = g.nodes[static_cast<size_t>(p)];
    for (int k = 0; k < 2 && mask == ir::kNoValue && add.inputs.size() == 2; ++k) {
      const int cand = add.inputs[static_cast<size_t>(k)],
                other = add.inputs[static_cast<size_t>(1 - k)];
      // The scores side is MatMul(Q, Kt), possibly scaled; a mask may be scaled too.
      const int q = private_producer(info, rw, cand, p);
      if (q < 0 || cand == other) continue;
      const ir::Node& qn = g.nodes[static_cast<size_t>(q)];
      if (!is_op(qn, "MatMul")) {
        const auto s = as_scaled(info, qn);
        const int mm = s ? private_producer(info, rw, s->x, q) : -1;
        if (mm < 0 || !is_op(g.nodes[static_cast<size_t>(mm)], "MatMul")) continue;
      }
      if (!info.is_float32(other) || !same_shape(info.type(cand), info.type(add.outputs[0])))
        continue;
      mask = other;
      chain.push_back(p);
      cur = cand;
      consumer = p;
    }
    if (mask == ir::kNoValue) return false;
  }
  if (auto s = strip_scale(info, rw, cur, consumer)) {
    scale *= s->factor;
    chain.push_back(s->node);
    consumer = s->node;
    cur = s->inner;
  }
  const int mm1_i = private_producer(info, rw, cur, consumer);
  if (mm1_i < 0) return false;
  const ir::Node& mm1 = g.nodes[static_cast<size_t>(mm1_i)];
  if (!is_op(mm1, "MatMul") || mm1.inputs.size() != 2) return false;
  chain.push_back(mm1_i);
  int q = mm1.inputs[0], kt = mm1.inputs[1];
  if (q == kt || !info.is_float32(q) || !info.is_float32(kt) || info.rank(q) < 2 ||
      info.rank(kt) < 2)
    return false;
  if (auto s = strip_scale(info, rw, q, mm1_i)) {
    scale *= s->factor;
    chain.push_back(s->node);
    q = s->inner;
  }
  int kt_consumer = mm1_i;
  if (auto s = strip_scale(info, rw, kt, mm1_i)) {
    scale *= s->factor;
    chain.push_back(s->node);
    kt_consumer = s->node;
    kt = s->inner;
  }
  int k = kt;
  int64_t k_transposed = 1;
  if (const int t = private_producer(info, rw, kt, kt_consumer);
      t >= 0 && is_op(g.nodes[static_cast<size_t>(t)], "Transpose")) {
    const ir::Node& tr = g.nodes[static_cast<size_t>(t)];
    const int64_t tr_rank = info.rank(tr.inputs[0]);
    std::vector<int64_t> perm = tr.attr_ints("perm");
    if (perm.empty() && tr_rank >= 0)
      for (int64_t d = tr_rank - 1; d >= 0; --d) perm.push_back(d);
    std::vector<int64_t> swap(static_cast<size_t>(std::max<int64_t>(tr_rank, 0)));
    std::iota(swap.begin(), swap.end(), 0);
    if (tr_rank >= 2) std::swap(swap[swap.size() - 1], swap[swap.size() - 2]);
    if (tr_rank >= 2 && perm == swap && info.is_float32(tr.inputs[0])) {
      chain.push_back(t);
      k = tr.inputs[0];
      k_transposed = 0;
    }
  }
  for (int n : chain)
    if (rw.claimed(n)) return false;

  ir::Node fused;
  fused.name = mm1.name;
  fused.op_type = "Attention";
  fused.domain = "brink";
  fused.inputs = {q, k, v};
  if (mask != ir::kNoValue) fused.inputs.push_back(mask);
  fused.outputs = {mm2.outputs[0]};
  fused.attributes = {ops::make_attr("scale", static_cast<float>(scale)),
                      ops::make_attr("k_transposed", k_transposed)};
  place(rw, chain, std::move(fused));
  return true;
}

}  // namespace

Status fuse_layernorm(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("LayerNormalization")) return Status::ok();
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (rw.claimed(static_cast<int>(i))) continue;
    if (fuse_decomposed_layernorm(info, rw, g, static_cast<int>(i)) ||
        convert_onnx_layernorm(info, rw, g, static_cast<int>(i)))
      ++fused;
  }
  if (fused) import_brink_domain(model);
  report.fused_layernorms += fused;
  rw.commit();
  return check_graph(model, "fuse_layernorm");
}

Status fuse_gelu(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("Gelu")) return Status::ok();
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const int n = static_cast<int>(i);
    if (rw.claimed(n)) continue;
    const ir::Node& node = g.nodes[i];
    if (is_op(node, "Gelu")) {
      if (node.inputs.size() == 1 && node.outputs.size() == 1 && info.is_float32(node.inputs[0]) &&
          info.is_float32(node.outputs[0])) {
        ir::Node converted = node;
        converted.domain = "brink";
        rw.replace(n, std::move(converted));
        ++fused;
      }
      continue;
    }
    std::optional<GeluMatch> m;
    if (is_op(node, "Erf"))
      m = match_erf_gelu(info, rw, n);
    else if (is_op(node, "Tanh"))
      m = match_tanh_gelu(info, rw, n);
    if (!m || !info.is_float32(m->x) || !info.is_float32(m->output) || rw.any_claimed(m->nodes))
      continue;
    ir::Node gelu;
    gelu.name = node.name;
    gelu.op_type = "Gelu";
    gelu.domain = "brink";
    gelu.inputs = {m->x};
    gelu.outputs = {m->output};
    gelu.attributes = {ops::make_attr("approximate", std::string(m->tanh ? "tanh" : "none"))};
    place(rw, m->nodes, std::move(gelu));
    ++fused;
  }
  if (fused) import_brink_domain(model);
  report.fused_gelus += fused;
  rw.commit();
  return check_graph(model, "fuse_gelu");
}

Status fuse_attention(ir::Model& model, OptimizeReport& report, const OptimizeOptions& options) {
  if (!brink_op_available("Attention")) return Status::ok();
  ir::Graph& g = model.graph;
  const GraphInfo info = GraphInfo::analyze(model, options.dim_values);
  Rewriter rw(g);
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!rw.claimed(static_cast<int>(i)) && fuse_one_attention(info, rw, g, static_cast<int>(i)))
      ++fused;
  if (fused) import_brink_domain(model);
  report.fused_attentions += fused;
  rw.commit();
  return check_graph(model, "fuse_attention");
}

}  // namespace brink::passes
