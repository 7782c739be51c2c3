#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <utility>

#include "brink/session.h"

namespace brink::quant {

Result<CalibrationMethod> parse_calibration_method(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::kMinMax;
  if (name == "percentile") return CalibrationMethod::kPercentile;
  if (name == "entropy") return CalibrationMethod::kEntropy;
  if (name == "mse") return CalibrationMethod::kMse;
  return invalid_argument("unknown calibration method '" + name +
                          "' (expected minmax, percentile, entropy or mse)");
}

const char* calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kEntropy:
      return "entropy";
    case CalibrationMethod::kMse:
      return "mse";
  }
  return "?";
}

void Histogram::add(const float* x, int64_t n, bool absolute) {
  const double width = bin_width();
  const double inv = width > 0 ? 1.0 / width : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = absolute ? std::fabs(x[i]) : x[i];
    int64_t b = width > 0 ? static_cast<int64_t>((v - lo) * inv) : 0;
    b = std::clamp<int64_t>(b, 0, kBins - 1);
    counts[static_cast<size_t>(b)] += 1;
  }
}

namespace {

// The value below which `fraction` of the histogram's mass lies (linear within a bin).
double quantile(const Histogram& h, double fraction) {
  double total = 0;
  for (double c : h.counts) total += c;
  if (total <= 0) return h.lo;
  const double target = fraction * total;
  double acc = 0;
  for (int b = 0; b < Histogram::kBins; ++b) {
    const double c = h.counts[static_cast<size_t>(b)];
    if (acc + c >= target && c > 0) {
      const double within = (target - acc) / c;
      return h.lo + (b + std::clamp(within, 0.0, 1.0)) * h.bin_width();
    }
    acc += c;
  }
  return h.hi;
}

// TensorRT's entropy calibration on a histogram of |x|: the number of bins i (>= levels) whose
// clipped distribution P (outliers folded into the last bin) is closest in KL divergence to
// its quantization Q into `levels` levels. Returns the threshold (upper edge of bin i - 1).
double entropy_threshold(const Histogram& hist, int levels) {
  const int n = Histogram::kBins;
  // The first bin holds the exact zeros a ReLU makes; like NVIDIA's pytorch-quantization, give
  // it its neighbour's count, or thresholds of `levels` bins (where Q copies P bin for bin)
  // would always win.
  Histogram h = hist;
  h.counts[0] = h.counts[1];
  std::vector<double> suffix(static_cast<size_t>(n) + 1, 0.0);
  for (int b = n - 1; b >= 0; --b)
    suffix[static_cast<size_t>(b)] =
        suffix[static_cast<size_t>(b) + 1] + h.counts[static_cast<size_t>(b)];
  if (suffix[0] <= 0) return h.hi;
  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = n;
  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
  for (int i = levels; i <= n; ++i) {
    for (int b = 0; b < i; ++b) p[static_cast<size_t>(b)] = h.counts[static_cast<size_t>(b)];
    p[static_cast<size_t>(i) - 1] += suffix[static_cast<size_t>(i)];
    // Q: merge the first i bins (unclipped) into `levels` groups, then spread each group's
    // mass evenly over the bins of the group that P has non-zero.
    for (int j = 0; j < levels; ++j) {
      const int start = static_cast<int>(static_cast<int64_t>(j) * i / levels);
      const int end = static_cast<int>(static_cast<int64_t>(j + 1) * i / levels);
      double sum = 0;
      int nonzero = 0;
      for (int b = start; b < end; ++b) {
        sum += h.counts[static_cast<size_t>(b)];
        if (p[static_cast<size_t>(b)] > 0) ++nonzero;
      }
      for (int b = start; b < end; ++b)
        q[static_cast<size_t>(b)] = p[static_cast<size_t>(b)] > 0 && nonzero ? sum / nonzero : 0.0;
    }
    double psum = 0, qsum = 0;
    for (int b = 0; b < i; ++b) {
      psum += p[static_cast<size_t>(b)];
      qsum += q[static_cast<size_t>(b)];
    }
    if (psum <= 0) continue;
    if (qsum <= 0) qsum = 1;
    double kl = 0;
    constexpr double kEps = 1e-10;
    for (int b = 0; b < i; ++b) {
      const double pb = p[static_cast<size_t>(b)] / psum;
      if (pb <= 0) continue;
      const double qb = std::max(q[static_cast<size_t>(b)] / qsum, kEps);
      kl += pb * std::log(pb / qb);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return h.lo + best_i * h.bin_width();
}

// Expected squared error of quantizing the histogram's mass to 255 steps over [lo, hi]
// (each bin's mass placed at its center).
double quantization_mse(const Histogram& h, double lo, double hi, int steps) {
  const double scale = (hi - lo) / steps;
  if (scale <= 0) return std::numeric_limits<double>::infinity();
  double err = 0;
  const double width = h.bin_width();
  for (int b = 0; b < Histogram::kBins; ++b) {
    const double c = h.counts[static_cast<size_t>(b)];
    if (c == 0) continue;
    const double v = h.lo + (b + 0.5) * width;
    const double clipped = std::clamp(v, lo, hi);
    const double q = lo + std::round((clipped - lo) / scale) * scale;
    err += c * (v - q) * (v - q);
  }
  return err;
}

Range mse_range(const Histogram& h, double lo0, double hi0, bool symmetric) {
  constexpr int kSteps = 255;
  constexpr int kCandidates = 100;
  if (symmetric) {
    const double a0 = std::max(-lo0, hi0);
    double best = std::numeric_limits<double>::infinity(), best_a = a0;
    for (int k = 1; k <= kCandidates; ++k) {
      const double a = a0 * k / kCandidates;
      const double e = quantization_mse(h, -a, a, 254);
      if (e < best) best = e, best_a = a;
    }
    return {static_cast<float>(-best_a), static_cast<float>(best_a)};
  }
  // A common shrink of both ends first, then each end alone with the other fixed.
  double lo = lo0, hi = hi0, best = quantization_mse(h, lo, hi, kSteps);
  for (int k = 1; k <= kCandidates; ++k) {
    const double f = static_cast<double>(k) / kCandidates;
    const double e = quantization_mse(h, lo0 * f, hi0 * f, kSteps);
    if (e < best) best = e, lo = lo0 * f, hi = hi0 * f;
  }
  const double lo1 = lo, hi1 = hi;
  for (int k = 1; k <= kCandidates; ++k) {
    const double f = static_cast<double>(k) / kCandidates;
    const double e = quantization_mse(h, lo1 * f, hi, kSteps);
    if (e < best) best = e, lo = lo1 * f;
  }
  for (int k = 1; k <= kCandidates; ++k) {
    const double f = static_cast<double>(k) / kCandidates;
    const double e = quantization_mse(h, lo, hi1 * f, kSteps);
    if (e < best) best = e, hi = hi1 * f;
  }
  return {static_cast<float>(lo), static_cast<float>(hi)};
}

bool uses_histogram(CalibrationMethod m) {
  return m != CalibrationMethod::kMinMax;
}

}  // namespace

Range choose_range(CalibrationMethod method, double percentile, bool symmetric, float min,
                   float max, const Histogram* hist) {
  double lo = std::min(0.0f, min), hi = std::max(0.0f, max);
  if (hist && max > min) {
    switch (method) {
      case CalibrationMethod::kMinMax:
        break;
      case CalibrationMethod::kPercentile: {
        const double f = percentile / 100.0;
        lo = std::min(0.0, std::max<double>(min, quantile(*hist, 1.0 - f)));
        hi = std::max(0.0, std::min<double>(max, quantile(*hist, f)));
        break;
      }
      case CalibrationMethod::kEntropy: {
        // One-sided data (a ReLU's output) and unsigned activations use all 256 levels.
        const bool one_sided = min >= 0 || max <= 0;
        const double t = entropy_threshold(*hist, one_sided && !symmetric ? 256 : 128);
        lo = std::min(0.0, std::max<double>(min, -t));
        hi = std::max(0.0, std::min<double>(max, t));
        break;
      }
      case CalibrationMethod::kMse: {
        const Range r = mse_range(*hist, lo, hi, symmetric);
        return r;
      }
    }
  }
  if (symmetric) {
    const double a = std::max(-lo, hi);
    return {static_cast<float>(-a), static_cast<float>(a)};
  }
  return {static_cast<float>(lo), static_cast<float>(hi)};
}

Observer::~Observer() = default;

Result<std::unique_ptr<Observer>> Observer::create(const ir::Model& model,
                                                   const std::vector<std::string>& tensors,
                                                   int num_threads) {
  ir::Model copy = model;
  ir::Graph& g = copy.graph;
  // Each tensor becomes a graph output, except graph inputs (read from the feed).
  for (const std::string& name : tensors) {
    const int v = g.find_value(name);
    if (v == ir::kNoValue) return not_found("tensor '" + name + "' is not in the model");
    if (std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end()) continue;
    if (std::find(g.outputs.begin(), g.outputs.end(), v) == g.outputs.end()) g.outputs.push_back(v);
  }
  SessionOptions so;
  so.num_threads = num_threads;
  so.optimization_level = 1;  // the passes keep graph outputs as they are
  std::unique_ptr<Observer> o(new Observer());
  BRINK_ASSIGN_OR_RETURN(o->session_, Session::from_model(std::move(copy), so));
  o->tensors_ = tensors;
  o->output_index_.assign(tensors.size(), -1);
  const auto& outs = o->session_->outputs();
  for (size_t k = 0; k < tensors.size(); ++k)
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].name == tensors[k]) o->output_index_[k] = static_cast<int>(i);
  return o;
}

Result<std::vector<Tensor>> Observer::observe(const std::vector<NamedTensor>& feed) const {
  BRINK_ASSIGN_OR_RETURN(auto outputs, session_->run(feed));
  std::vector<Tensor> observed(tensors_.size());
  for (size_t k = 0; k < tensors_.size(); ++k) {
    if (output_index_[k] >= 0) {
      observed[k] = outputs[static_cast<size_t>(output_index_[k])];
    } else {
      for (const auto& [name, t] : feed)
        if (name == tensors_[k]) observed[k] = t;
    }
  }
  return observed;
}

Status run_observing(const ir::Model& model, const std::vector<std::string>& tensors,
                     const std::vector<std::vector<NamedTensor>>& samples, int num_threads,
                     const std::function<Status(size_t, const std::vector<Tensor>&)>& visit,
                     const std::string& progress_label) {
  BRINK_ASSIGN_OR_RETURN(auto observer, Observer::create(model, tensors, num_threads));
  const bool progress = !progress_label.empty();
  auto end_line = [&] {
    if (progress) std::fprintf(stderr, "\n");
  };
  for (size_t s = 0; s < samples.size(); ++s) {
    if (progress) {
      std::fprintf(stderr, "\r%s: %zu/%zu", progress_label.c_str(), s + 1, samples.size());
      std::fflush(stderr);
    }
    auto observed = observer->observe(samples[s]);
    if (!observed.is_ok()) {
      end_line();
      return observed.status().with_context("sample " + std::to_string(s));
    }
    Status st = visit(s, *observed);
    if (!st.is_ok()) {
      end_line();
      return st;
    }
  }
  end_line();
  return Status::ok();
}

Result<std::map<std::string, Range>> calibrate(const ir::Model& model,
                                               const std::vector<std::string>& tensors,
                                               const Dataset& data,
                                               const CalibrationOptions& options) {
  if (data.samples.empty()) return invalid_argument("calibration needs at least one sample");
  const size_t n = tensors.size();
  std::vector<float> mins(n, std::numeric_limits<float>::infinity());
  std::vector<float> maxs(n, -std::numeric_limits<float>::infinity());
  auto check_float = [&](size_t k, const Tensor& t) -> Status {
    if (!t.defined() || t.dtype() != DataType::kFloat32)
      return internal_error("calibration: tensor '" + tensors[k] + "' is not float32");
    return Status::ok();
  };
  const bool two_pass = uses_histogram(options.method);
  BRINK_RETURN_IF_ERROR(run_observing(
      model, tensors, data.samples, options.num_threads,
      [&](size_t, const std::vector<Tensor>& obs) -> Status {
        for (size_t k = 0; k < n; ++k) {
          BRINK_RETURN_IF_ERROR(check_float(k, obs[k]));
          const float* p = obs[k].data<float>();
          float lo = mins[k], hi = maxs[k];
          for (int64_t i = 0, e = obs[k].numel(); i < e; ++i) {
            // An infinity is kept (an attention mask's "minus infinity": the range is then not
            // finite and the quantizer leaves the tensor float); a NaN is an error.
            if (std::isnan(p[i]))
              return invalid_argument("calibration: tensor '" + tensors[k] +
                                      "' has a NaN value on this data");
            lo = std::min(lo, p[i]);
            hi = std::max(hi, p[i]);
          }
          mins[k] = lo;
          maxs[k] = hi;
        }
        return Status::ok();
      },
      options.progress ? (two_pass ? "calibrating (pass 1/2)" : "calibrating") : ""));
  for (size_t k = 0; k < n; ++k)
    if (mins[k] > maxs[k]) mins[k] = maxs[k] = 0;  // an empty tensor
  auto finite = [&](size_t k) { return std::isfinite(mins[k]) && std::isfinite(maxs[k]); };
  std::vector<Histogram> hists;
  const bool absolute = options.method == CalibrationMethod::kEntropy;
  if (two_pass) {
    hists.resize(n);
    for (size_t k = 0; k < n; ++k) {
      if (absolute) {
        hists[k].lo = 0;
        hists[k].hi = std::max(std::fabs(mins[k]), std::fabs(maxs[k]));
      } else {
        hists[k].lo = mins[k];
        hists[k].hi = maxs[k];
      }
    }
    BRINK_RETURN_IF_ERROR(run_observing(
        model, tensors, data.samples, options.num_threads,
        [&](size_t, const std::vector<Tensor>& obs) -> Status {
          for (size_t k = 0; k < n; ++k)
            if (finite(k)) hists[k].add(obs[k].data<float>(), obs[k].numel(), absolute);
          return Status::ok();
        },
        options.progress ? "calibrating (pass 2/2)" : ""));
  }
  // The model's outputs keep their whole range under entropy calibration: it fits the bulk of a
  // distribution and may clip its tail hard, and the tail of a classifier's logits is the
  // answer (on one random CNN the clipped logits collapsed to +-0.23, cosine 0.85 to FP32).
  std::set<std::string> outputs;
  for (int v : model.graph.outputs) outputs.insert(model.graph.value(v).name);
  std::map<std::string, Range> ranges;
  for (size_t k = 0; k < n; ++k) {
    const CalibrationMethod method =
        options.method == CalibrationMethod::kEntropy && outputs.count(tensors[k]) > 0
            ? CalibrationMethod::kMinMax
            : options.method;
    ranges[tensors[k]] = !finite(k)
                             ? Range{mins[k], maxs[k]}
                             : choose_range(method, options.percentile, options.symmetric, mins[k],
                                            maxs[k], two_pass ? &hists[k] : nullptr);
  }
  return ranges;
}

}  // namespace brink::quant
