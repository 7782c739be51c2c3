#include "quant/equalize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "passes/pass_util.h"
#include "quant/calibration.h"
#include "quant/graph_util.h"

namespace brink::quant {

namespace {

using passes::is_op;

// ---- graph helpers ------------------------------------------------------------------------

// Uses of every value: node input slots, plus one for each graph output entry.
std::vector<int> use_counts(const ir::Graph& g) {
  std::vector<int> uses(g.values.size(), 0);
  for (const ir::Node& n : g.nodes)
    for (int in : n.inputs)
      if (in >= 0) ++uses[static_cast<size_t>(in)];
  for (int o : g.outputs)
    if (o >= 0) ++uses[static_cast<size_t>(o)];
  return uses;
}

std::vector<int> producers(const ir::Graph& g) {
  std::vector<int> p(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int o : g.nodes[i].outputs)
      if (o >= 0) p[static_cast<size_t>(o)] = static_cast<int>(i);
  return p;
}

// The constant of `v` as a tensor this model owns alone (copies of a model share tensor
// storage, so a constant is cloned once before it is first written).
float* writable(ir::Graph& g, int v, std::set<int>& cloned) {
  if (!cloned.count(v)) {
    g.value(v).constant = g.value(v).constant->clone();
    cloned.insert(v);
  }
  return g.value(v).constant->data<float>();
}

// ---- cross-layer equalization -------------------------------------------------------------

struct ConvPair {
  int first = -1, second = -1;  // node indices
};

// Conv with a constant float weight of rank >= 3 read only by it, and a bias that is absent
// or a constant float [M] read only by it.
bool owns_weights(const ir::Graph& g, const ir::Node& n, const std::vector<int>& uses) {
  if (!is_op(n, "Conv") || n.inputs.size() < 2) return false;
  const Tensor* w = f32_initializer(g, n.inputs[1]);
  if (!w || w->rank() < 3 || uses[static_cast<size_t>(n.inputs[1])] != 1) return false;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Tensor* b = f32_initializer(g, n.inputs[2]);
    if (!b || b->numel() != w->dim(0) || uses[static_cast<size_t>(n.inputs[2])] != 1) return false;
  }
  return true;
}

std::vector<ConvPair> find_pairs(const ir::Graph& g) {
  const std::vector<int> uses = use_counts(g);
  const std::vector<int> producer = producers(g);
  std::vector<ConvPair> pairs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& second = g.nodes[i];
    if (!owns_weights(g, second, uses) || second.inputs[0] < 0) continue;
    int x = second.inputs[0];
    if (uses[static_cast<size_t>(x)] != 1) continue;
    int p = producer[static_cast<size_t>(x)];
    if (p < 0) continue;
    const ir::Node* prev = &g.nodes[static_cast<size_t>(p)];
    // One activation that commutes with a positive per-channel scale.
    if (is_op(*prev, "Relu") || is_op(*prev, "LeakyRelu")) {
      if (prev->inputs.empty() || prev->inputs[0] < 0) continue;
      x = prev->inputs[0];
      if (uses[static_cast<size_t>(x)] != 1) continue;
      p = producer[static_cast<size_t>(x)];
      if (p < 0) continue;
      prev = &g.nodes[static_cast<size_t>(p)];
    }
    if (!owns_weights(g, *prev, uses) || prev->outputs.size() != 1) continue;
    const Tensor& w1 = *g.value(prev->inputs[1]).constant;
    const Tensor& w2 = *g.value(second.inputs[1]).constant;
    const int64_t group2 = second.attr_int("group", 1);
    if (group2 < 1 || w2.dim(1) * group2 != w1.dim(0) || w2.dim(0) % group2 != 0) continue;
    pairs.push_back({p, static_cast<int>(i)});
  }
  return pairs;
}

// Equalizes one pair; returns max |log s_i| (how far from settled it was).
double equalize_pair(ir::Graph& g, const ConvPair& pair, std::set<int>& cloned) {
  const ir::Node& n1 = g.nodes[static_cast<size_t>(pair.first)];
  const ir::Node& n2 = g.nodes[static_cast<size_t>(pair.second)];
  const Tensor& w1t = *g.value(n1.inputs[1]).constant;
  const Tensor& w2t = *g.value(n2.inputs[1]).constant;
  const int64_t m = w1t.dim(0), inner1 = w1t.numel() / m;
  const int64_t n_out = w2t.dim(0), cg = w2t.dim(1), k2 = w2t.numel() / (n_out * cg);
  const int64_t group2 = m / cg, out_per_group = n_out / group2;
  std::vector<double> r1(static_cast<size_t>(m), 0.0), r2(static_cast<size_t>(m), 0.0);
  const float* w1c = w1t.data<float>();
  const float* w2c = w2t.data<float>();
  for (int64_t c = 0; c < m; ++c)
    for (int64_t k = 0; k < inner1; ++k)
      r1[static_cast<size_t>(c)] =
          std::max(r1[static_cast<size_t>(c)], static_cast<double>(std::fabs(w1c[c * inner1 + k])));
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t l = 0; l < cg; ++l) {
      const int64_t c = (o / out_per_group) * cg + l;
      for (int64_t k = 0; k < k2; ++k)
        r2[static_cast<size_t>(c)] = std::max(
            r2[static_cast<size_t>(c)], static_cast<double>(std::fabs(w2c[(o * cg + l) * k2 + k])));
    }
  std::vector<float> s(static_cast<size_t>(m), 1.0f);
  double moved = 0;
  for (int64_t c = 0; c < m; ++c) {
    const double a = r1[static_cast<size_t>(c)], b = r2[static_cast<size_t>(c)];
    if (!(a > 0) || !(b > 0)) continue;  // a dead channel: nothing to balance
    const double sc = std::clamp(std::sqrt(a / b), 1e-8, 1e8);
    s[static_cast<size_t>(c)] = static_cast<float>(sc);
    moved = std::max(moved, std::fabs(std::log(sc)));
  }
  if (moved == 0) return 0;
  float* w1 = writable(g, n1.inputs[1], cloned);
  for (int64_t c = 0; c < m; ++c)
    for (int64_t k = 0; k < inner1; ++k) w1[c * inner1 + k] /= s[static_cast<size_t>(c)];
  if (n1.inputs.size() > 2 && n1.inputs[2] >= 0) {
    float* b1 = writable(g, n1.inputs[2], cloned);
    for (int64_t c = 0; c < m; ++c) b1[c] /= s[static_cast<size_t>(c)];
  }
  float* w2 = writable(g, n2.inputs[1], cloned);
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t l = 0; l < cg; ++l) {
      const float sc = s[static_cast<size_t>((o / out_per_group) * cg + l)];
      for (int64_t k = 0; k < k2; ++k) w2[(o * cg + l) * k2 + k] *= sc;
    }
  return moved;
}

// ---- bias correction ----------------------------------------------------------------------

// Wq - W for symmetric int8 weights ([-127, 127], zero point 0) per channel along `axis`
// (-1: per tensor), exactly as the quantizer computes them (quantize.cc: weight_params,
// quantize_tensor) and DequantizeLinear reads them back.
std::vector<float> weight_error(const Tensor& w, int axis) {
  const int64_t channels = axis < 0 ? 1 : w.dim(axis);
  int64_t inner = 1;
  if (axis >= 0)
    for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  const float* x = w.data<float>();
  const int64_t n = w.numel();
  auto channel = [&](int64_t i) {
    return static_cast<size_t>(axis < 0 ? 0 : (i / inner) % channels);
  };
  std::vector<float> absmax(static_cast<size_t>(channels), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    absmax[channel(i)] = std::max(absmax[channel(i)], std::fabs(x[i]));
  std::vector<float> scale(absmax.size());
  for (size_t c = 0; c < absmax.size(); ++c) {
    const float s = absmax[c] / 127.0f;
    scale[c] = s >= std::numeric_limits<float>::min() ? s : 1.0f;
  }
  std::vector<float> err(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float s = scale[channel(i)];
    const double q = std::clamp(std::rint(static_cast<double>(x[i]) / s), -128.0, 127.0);
    err[static_cast<size_t>(i)] = static_cast<float>(q) * s - x[i];
  }
  return err;
}

struct Layer {
  int node = -1;
  int input = -1;        // x
  int bias_node = -1;    // the node whose input `bias_slot` holds the bias (MatMul: the Add)
  int bias_slot = -1;    // -1: the layer has no bias yet (Conv / Gemm input 2 is added)
  int64_t channels = 0;  // output channels
  // The mean input: Conv, the mean [C, spatial...] map over samples and batch entries;
  // Gemm / MatMul, the mean of the last axis over every row.
  std::vector<double> sum;
  Shape shape;  // Conv: the input's shape (batch 1); others: {K}
  int64_t count = 0;
  bool ok = true;
};

// Conv(dW, mean x) averaged over the output positions, per output channel: the expected
// output error of a 1-D or 2-D convolution (exact: zero padding included).
std::vector<double> conv_error(const ir::Node& n, const Tensor& w, const std::vector<float>& dw,
                               const std::vector<double>& mean, const Shape& xs) {
  const bool one_d = w.rank() == 3;
  const int64_t m = w.dim(0), cg = w.dim(1);
  const int64_t kh = one_d ? 1 : w.dim(2), kw = one_d ? w.dim(2) : w.dim(3);
  const int64_t c = xs[1], h = one_d ? 1 : xs[2], wd = one_d ? xs[2] : xs[3];
  const int64_t group = n.attr_int("group", 1);
  std::vector<int64_t> strides = n.attr_ints("strides"), dil = n.attr_ints("dilations"),
                       pads = n.attr_ints("pads");
  const size_t sp = one_d ? 1 : 2;
  if (strides.size() != sp) strides.assign(sp, 1);
  if (dil.size() != sp) dil.assign(sp, 1);
  if (pads.size() != 2 * sp) pads.assign(2 * sp, 0);
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  const int64_t in_dims[2] = {h, wd};
  const int64_t k_dims[2] = {kh, kw};
  int64_t out[2], begin[2];
  for (size_t d = 0; d < 2; ++d) {
    const size_t a = one_d ? 0 : d;  // attribute index
    const int64_t s = (one_d && d == 0) ? 1 : strides[a];
    const int64_t di = (one_d && d == 0) ? 1 : dil[a];
    const int64_t span = (k_dims[d] - 1) * di + 1;
    if (one_d && d == 0) {
      out[d] = 1;
      begin[d] = 0;
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out[d] = (in_dims[d] + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out[d] - 1) * s + span - in_dims[d]);
      begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (auto_pad == "VALID") {
      out[d] = (in_dims[d] - span) / s + 1;
      begin[d] = 0;
    } else {
      out[d] = (in_dims[d] + pads[a] + pads[a + sp] - span) / s + 1;
      begin[d] = pads[a];
    }
  }
  const int64_t sh = one_d ? 1 : strides[0], sw = strides[sp - 1];
  const int64_t dh = one_d ? 1 : dil[0], dwl = dil[sp - 1];
  std::vector<double> corr(static_cast<size_t>(m), 0.0);
  const int64_t out_per_group = m / group;
  for (int64_t o = 0; o < m; ++o) {
    const int64_t g0 = (o / out_per_group) * cg;
    double acc = 0;
    for (int64_t oy = 0; oy < out[0]; ++oy)
      for (int64_t ox = 0; ox < out[1]; ++ox)
        for (int64_t ci = 0; ci < cg; ++ci)
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t iy = oy * sh - begin[0] + ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ox * sw - begin[1] + kx * dwl;
              if (ix < 0 || ix >= wd) continue;
              acc += static_cast<double>(
                         dw[static_cast<size_t>(((o * cg + ci) * kh + ky) * kw + kx)]) *
                     mean[static_cast<size_t>(((g0 + ci) * h + iy) * wd + ix)];
            }
          }
    corr[static_cast<size_t>(o)] =
        out[0] * out[1] > 0 ? acc / static_cast<double>(out[0] * out[1]) : 0;
  }
  (void)c;
  return corr;
}

}  // namespace

Result<EqualizeStats> equalize_cross_layer(ir::Model& model, int max_sweeps) {
  ir::Graph& g = model.graph;
  EqualizeStats stats;
  if (has_subgraphs(g)) return stats;
  const std::vector<ConvPair> pairs = find_pairs(g);
  stats.pairs = static_cast<int>(pairs.size());
  std::set<int> cloned;
  for (int sweep = 0; sweep < max_sweeps && !pairs.empty(); ++sweep) {
    double moved = 0;
    for (const ConvPair& p : pairs) moved = std::max(moved, equalize_pair(g, p, cloned));
    stats.sweeps = sweep + 1;
    if (moved < 1e-4) break;  // every scale within 0.01% of 1
  }
  return stats;
}

Result<int> correct_bias(ir::Model& model, const Dataset& data, bool per_channel,
                         int64_t max_samples, int num_threads) {
  ir::Graph& g = model.graph;
  if (has_subgraphs(g)) return 0;
  const std::vector<int> uses = use_counts(g);
  const std::vector<std::vector<passes::Use>> readers = value_readers(g);
  std::vector<Layer> layers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const bool conv = is_op(n, "Conv"), gemm = is_op(n, "Gemm"), matmul = is_op(n, "MatMul");
    if (!(conv || gemm || matmul) || n.inputs.size() < 2 || n.inputs[0] < 0) continue;
    const Tensor* w = f32_initializer(g, n.inputs[1]);
    if (!w || is_initializer(g, n.inputs[0]) || g.value(n.inputs[0]).constant) continue;
    Layer l;
    l.node = static_cast<int>(i);
    l.input = n.inputs[0];
    if (conv) {
      if (w->rank() != 3 && w->rank() != 4) continue;
      l.channels = w->dim(0);
    } else {
      if (w->rank() != 2) continue;
      l.channels = gemm && n.attr_int("transB", 0) != 0 ? w->dim(0) : w->dim(1);
    }
    if (conv || gemm) {
      if (gemm && (n.attr_int("transA", 0) != 0 || n.attr_float("alpha", 1.0f) != 1.0f ||
                   n.attr_float("beta", 1.0f) != 1.0f))
        continue;
      l.bias_node = l.node;
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        const Tensor* b = f32_initializer(g, n.inputs[2]);
        if (!b || b->rank() != 1 || b->dim(0) != l.channels) continue;
        l.bias_slot = 2;
      }
    } else {
      // MatMul -> Add(constant [N]): the Linear layer's bias.
      const int y = n.outputs.empty() ? -1 : n.outputs[0];
      if (y < 0 || uses[static_cast<size_t>(y)] != 1 || readers[static_cast<size_t>(y)].size() != 1)
        continue;
      const int a = readers[static_cast<size_t>(y)][0].node;
      const ir::Node& add = g.nodes[static_cast<size_t>(a)];
      if (!is_op(add, "Add") || add.inputs.size() != 2) continue;
      const int slot = add.inputs[0] == y ? 1 : 0;
      const Tensor* b = f32_initializer(g, add.inputs[static_cast<size_t>(slot)]);
      if (!b || b->rank() != 1 || b->dim(0) != l.channels) continue;
      l.bias_node = a;
      l.bias_slot = slot;
    }
    layers.push_back(std::move(l));
  }
  if (layers.empty()) return 0;

  // The mean of each layer's input over the calibration data.
  std::vector<std::string> names;
  for (const Layer& l : layers) names.push_back(g.value(l.input).name);
  std::vector<std::vector<NamedTensor>> samples = data.samples;
  if (max_samples >= 0 && samples.size() > static_cast<size_t>(max_samples))
    samples.resize(static_cast<size_t>(max_samples));
  BRINK_RETURN_IF_ERROR(run_observing(
      model, names, samples, num_threads, [&](size_t, const std::vector<Tensor>& obs) -> Status {
        for (size_t k = 0; k < layers.size(); ++k) {
          Layer& l = layers[k];
          const Tensor& x = obs[k];
          if (!l.ok) continue;
          if (!x.defined() || x.dtype() != DataType::kFloat32 || x.rank() < 1) {
            l.ok = false;
            continue;
          }
          const float* p = x.data<float>();
          const ir::Node& n = g.nodes[static_cast<size_t>(l.node)];
          if (n.op_type == "Conv") {
            // One [C, spatial...] map, summed over the batch entries.
            const int64_t per = x.rank() >= 2 ? x.numel() / x.dim(0) : 0;
            Shape s = x.shape();
            if (per == 0 || (x.rank() != 3 && x.rank() != 4)) {
              l.ok = false;
              continue;
            }
            s[0] = 1;
            if (l.sum.empty()) {
              l.sum.assign(static_cast<size_t>(per), 0.0);
              l.shape = s;
            } else if (s != l.shape) {
              l.ok = false;  // inputs of varying shapes: no single mean map
              continue;
            }
            for (int64_t b = 0; b < x.dim(0); ++b)
              for (int64_t i = 0; i < per; ++i) l.sum[static_cast<size_t>(i)] += p[b * per + i];
            l.count += x.dim(0);
          } else {
            const int64_t k_dim = x.dim(x.rank() - 1);
            if (k_dim <= 0) continue;
            if (l.sum.empty()) {
              l.sum.assign(static_cast<size_t>(k_dim), 0.0);
              l.shape = {k_dim};
            } else if (l.shape[0] != k_dim) {
              l.ok = false;
              continue;
            }
            const int64_t rows = x.numel() / k_dim;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t i = 0; i < k_dim; ++i) l.sum[static_cast<size_t>(i)] += p[r * k_dim + i];
            l.count += rows;
          }
        }
        return Status::ok();
      }));

  int corrected = 0;
  std::set<int> cloned;
  for (Layer& l : layers) {
    if (!l.ok || l.count == 0) continue;
    for (double& v : l.sum) v /= static_cast<double>(l.count);
    const ir::Node& n = g.nodes[static_cast<size_t>(l.node)];
    const Tensor& w = *g.value(n.inputs[1]).constant;
    std::vector<double> corr;
    if (n.op_type == "Conv") {
      if (static_cast<int64_t>(l.shape.size()) != w.rank()) continue;
      corr = conv_error(n, w, weight_error(w, per_channel ? 0 : -1), l.sum, l.shape);
    } else {
      const bool trans_b = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0;
      const int64_t k_dim = trans_b ? w.dim(1) : w.dim(0);
      if (k_dim != l.shape[0]) continue;
      const std::vector<float> dw = weight_error(w, per_channel ? (trans_b ? 0 : 1) : -1);
      corr.assign(static_cast<size_t>(l.channels), 0.0);
      for (int64_t k = 0; k < k_dim; ++k)
        for (int64_t c = 0; c < l.channels; ++c) {
          const size_t idx = static_cast<size_t>(trans_b ? c * k_dim + k : k * l.channels + c);
          corr[static_cast<size_t>(c)] += dw[idx] * l.sum[static_cast<size_t>(k)];
        }
    }
    ir::Node& bn = g.nodes[static_cast<size_t>(l.bias_node)];
    int bias;
    if (l.bias_slot < 0) {
      bias = passes::add_initializer(g, g.value(n.inputs[1]).name + "_bias",
                                     Tensor::zeros(DataType::kFloat32, {l.channels}));
      cloned.insert(bias);
      bn.inputs.resize(3, ir::kNoValue);
      bn.inputs[2] = bias;
    } else {
      bias = bn.inputs[static_cast<size_t>(l.bias_slot)];
      if (uses[static_cast<size_t>(bias)] > 1) {
        // A bias other nodes read too: this layer gets its own copy.
        bias = passes::add_initializer(g, g.value(bias).name + "_corrected",
                                       g.value(bias).constant->clone());
        cloned.insert(bias);
        bn.inputs[static_cast<size_t>(l.bias_slot)] = bias;
      }
    }
    float* b = writable(g, bias, cloned);
    for (int64_t c = 0; c < l.channels; ++c)
      b[c] = static_cast<float>(b[c] - corr[static_cast<size_t>(c)]);
    ++corrected;
  }
  return corrected;
}

}  // namespace brink::quant
