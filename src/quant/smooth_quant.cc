#include "quant/smooth_quant.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "passes/pass_util.h"
#include "quant/calibration.h"
#include "quant/graph_util.h"

namespace brink::quant {

namespace {

using passes::is_op;

struct Consumer {
  int node = -1;
  bool trans_b = false;  // Gemm with transB = 1: the weight is [N, K]
};

struct Candidate {
  int ln = -1;  // the LayerNormalization node
  int64_t k = 0;
  std::vector<Consumer> matmuls;
  bool other_readers = false;  // the output is read by something else too (or is an output)
  std::vector<float> xmax;     // max |X_j| over the calibration data
  bool ok = true;
};

// A constant this node alone may change: shared constants get a copy for this node.
float* own_constant(ir::Graph& g, ir::Node& n, size_t slot, const std::vector<int>& uses,
                    std::set<int>& owned) {
  int v = n.inputs[slot];
  if (!owned.count(v)) {
    if (uses[static_cast<size_t>(v)] > 1) {
      v = passes::add_initializer(g, g.value(v).name + "_smoothed", g.value(v).constant->clone());
      n.inputs[slot] = v;
    } else {
      g.value(v).constant = g.value(v).constant->clone();  // copies of a model share storage
    }
    owned.insert(v);
  }
  return g.value(v).constant->data<float>();
}

}  // namespace

Result<SmoothQuantStats> smooth_quant(ir::Model& model, const Dataset& data, double alpha,
                                      int64_t max_samples, int num_threads) {
  if (!(alpha >= 0.0 && alpha <= 1.0))
    return invalid_argument("SmoothQuant alpha must be in [0, 1], got " + std::to_string(alpha));
  ir::Graph& g = model.graph;
  SmoothQuantStats stats;
  if (has_subgraphs(g)) return stats;

  const std::vector<std::vector<passes::Use>> readers = value_readers(g);
  std::vector<int> uses(g.values.size(), 0);  // node input slots only
  for (size_t v = 0; v < readers.size(); ++v) uses[v] = static_cast<int>(readers[v].size());
  std::set<int> graph_outputs(g.outputs.begin(), g.outputs.end());

  std::vector<Candidate> cands;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& ln = g.nodes[i];
    if (!is_op(ln, "LayerNormalization") || ln.inputs.size() < 2 || ln.outputs.empty()) continue;
    const int y = ln.outputs[0];
    bool extra_outputs = false;
    for (size_t o = 1; o < ln.outputs.size(); ++o)
      extra_outputs =
          extra_outputs || (ln.outputs[o] >= 0 && uses[static_cast<size_t>(ln.outputs[o])]);
    const Tensor* gamma = f32_initializer(g, ln.inputs[1]);
    if (y < 0 || extra_outputs || !gamma || gamma->rank() != 1) continue;
    const int64_t k = gamma->dim(0);
    if (ln.inputs.size() > 2 && ln.inputs[2] >= 0) {
      const Tensor* beta = f32_initializer(g, ln.inputs[2]);
      if (!beta || beta->rank() != 1 || beta->dim(0) != k) continue;
    }
    Candidate c;
    c.ln = static_cast<int>(i);
    c.k = k;
    c.other_readers = graph_outputs.count(y) != 0;
    for (const auto& [node, slot] : readers[static_cast<size_t>(y)]) {
      const ir::Node& n = g.nodes[static_cast<size_t>(node)];
      if (is_op(n, "Shape")) continue;
      const bool gemm = is_op(n, "Gemm");
      const Tensor* w = n.inputs.size() > 1 ? f32_initializer(g, n.inputs[1]) : nullptr;
      const bool trans_b = gemm && n.attr_int("transB", 0) != 0;
      const bool ok = slot == 0 && (is_op(n, "MatMul") || (gemm && n.attr_int("transA", 0) == 0)) &&
                      w && w->rank() == 2 && (trans_b ? w->dim(1) : w->dim(0)) == k;
      if (ok) {
        c.matmuls.push_back({node, trans_b});
      } else {
        c.other_readers = true;
      }
    }
    if (!c.matmuls.empty()) cands.push_back(std::move(c));
  }
  if (cands.empty()) return stats;

  // max |X_j| per channel of each LayerNormalization's output (normalized over the last axis).
  std::vector<std::string> names;
  for (const Candidate& c : cands)
    names.push_back(g.value(g.nodes[static_cast<size_t>(c.ln)].outputs[0]).name);
  std::vector<std::vector<NamedTensor>> samples = data.samples;
  if (max_samples >= 0 && samples.size() > static_cast<size_t>(max_samples))
    samples.resize(static_cast<size_t>(max_samples));
  BRINK_RETURN_IF_ERROR(run_observing(
      model, names, samples, num_threads, [&](size_t, const std::vector<Tensor>& obs) -> Status {
        for (size_t i = 0; i < cands.size(); ++i) {
          Candidate& c = cands[i];
          const Tensor& x = obs[i];
          if (!c.ok) continue;
          const int64_t axis = g.nodes[static_cast<size_t>(c.ln)].attr_int("axis", -1);
          if (!x.defined() || x.dtype() != DataType::kFloat32 || x.rank() < 1 ||
              x.dim(x.rank() - 1) != c.k || (axis != -1 && axis != x.rank() - 1)) {
            c.ok = false;  // not a normalization over the channels the MatMuls reduce
            continue;
          }
          if (c.xmax.empty()) c.xmax.assign(static_cast<size_t>(c.k), 0.0f);
          const float* p = x.data<float>();
          for (int64_t r = 0, rows = x.numel() / c.k; r < rows; ++r)
            for (int64_t j = 0; j < c.k; ++j)
              c.xmax[static_cast<size_t>(j)] =
                  std::max(c.xmax[static_cast<size_t>(j)], std::fabs(p[r * c.k + j]));
        }
        return Status::ok();
      }));

  std::set<int> owned;
  std::vector<std::pair<int, ir::Node>> inserted;  // (after node, copy of a LayerNormalization)
  for (Candidate& c : cands) {
    if (!c.ok || c.xmax.empty()) continue;
    const size_t k = static_cast<size_t>(c.k);
    std::vector<float> wmax(k, 0.0f);
    for (const Consumer& m : c.matmuls) {
      const Tensor& w = *g.value(g.nodes[static_cast<size_t>(m.node)].inputs[1]).constant;
      const int64_t cols = m.trans_b ? w.dim(0) : w.dim(1);
      for (int64_t j = 0; j < c.k; ++j)
        for (int64_t n = 0; n < cols; ++n) {
          const float v = w.data<float>()[m.trans_b ? n * c.k + j : j * cols + n];
          wmax[static_cast<size_t>(j)] = std::max(wmax[static_cast<size_t>(j)], std::fabs(v));
        }
    }
    std::vector<float> s(k, 1.0f);
    for (size_t j = 0; j < k; ++j)
      if (c.xmax[j] > 0 && wmax[j] > 0)
        s[j] =
            static_cast<float>(std::clamp(std::pow(static_cast<double>(c.xmax[j]), alpha) /
                                              std::pow(static_cast<double>(wmax[j]), 1.0 - alpha),
                                          1e-5, 1e5));
    // gamma / s and beta / s: in place, or on a copy of the LayerNormalization.
    ir::Node* ln = &g.nodes[static_cast<size_t>(c.ln)];
    int x_smoothed = ln->outputs[0];
    if (c.other_readers) {
      ir::Node copy = *ln;
      copy.name = ln->name + "_smoothed";
      x_smoothed = passes::add_value(g, g.value(ln->outputs[0]).name + "_smoothed",
                                     g.value(ln->outputs[0]).type);
      copy.outputs = {x_smoothed};
      for (size_t slot = 1; slot < copy.inputs.size() && slot < 3; ++slot)
        if (copy.inputs[slot] >= 0)
          copy.inputs[slot] =
              passes::add_initializer(g, g.value(copy.inputs[slot]).name + "_smoothed",
                                      g.value(copy.inputs[slot]).constant->clone());
      for (size_t slot = 1; slot < copy.inputs.size() && slot < 3; ++slot)
        if (copy.inputs[slot] >= 0) {
          owned.insert(copy.inputs[slot]);
          float* p = g.value(copy.inputs[slot]).constant->data<float>();
          for (size_t j = 0; j < k; ++j) p[j] /= s[j];
        }
      inserted.push_back({c.ln, std::move(copy)});
      ++stats.duplicated;
    } else {
      for (size_t slot = 1; slot < ln->inputs.size() && slot < 3; ++slot)
        if (ln->inputs[slot] >= 0) {
          float* p = own_constant(g, *ln, slot, uses, owned);
          for (size_t j = 0; j < k; ++j) p[j] /= s[j];
        }
    }
    ++stats.layer_norms;
    for (const Consumer& m : c.matmuls) {
      ir::Node& n = g.nodes[static_cast<size_t>(m.node)];
      n.inputs[0] = x_smoothed;
      float* w = own_constant(g, n, 1, uses, owned);
      const Tensor& wt = *g.value(n.inputs[1]).constant;
      const int64_t cols = m.trans_b ? wt.dim(0) : wt.dim(1);
      for (int64_t j = 0; j < c.k; ++j)
        for (int64_t col = 0; col < cols; ++col)
          w[m.trans_b ? col * c.k + j : j * cols + col] *= s[static_cast<size_t>(j)];
      ++stats.matmuls;
    }
  }
  if (!inserted.empty()) {
    std::vector<ir::Node> nodes;
    nodes.reserve(g.nodes.size() + inserted.size());
    size_t next = 0;
    std::sort(inserted.begin(), inserted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      nodes.push_back(std::move(g.nodes[i]));
      for (; next < inserted.size() && inserted[next].first == static_cast<int>(i); ++next)
        nodes.push_back(std::move(inserted[next].second));
    }
    g.nodes = std::move(nodes);
    recompute_producers(g);
  }
  return stats;
}

}  // namespace brink::quant
