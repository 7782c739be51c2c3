#include "quant/accuracy_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "brink/session.h"

namespace brink::quant {

Result<AccuracyMetric> parse_accuracy_metric(const std::string& name) {
  if (name == "cosine") return AccuracyMetric::kCosine;
  if (name == "top1") return AccuracyMetric::kTop1;
  return invalid_argument("unknown accuracy metric '" + name + "' (expected cosine or top1)");
}

Status check_accuracy_target(AccuracyMetric metric, double target) {
  if (metric == AccuracyMetric::kCosine && !(target > 0.0 && target <= 1.0))
    return invalid_argument(
        "--accuracy-target for --metric cosine is a cosine floor in (0, 1], "
        "got " +
        std::to_string(target));
  if (metric == AccuracyMetric::kTop1 && !(target >= 0.0 && target <= 100.0))
    return invalid_argument(
        "--accuracy-target for --metric top1 is the top-1 points lost vs FP32, in [0, 100], got " +
        std::to_string(target));
  return Status::ok();
}

namespace {

// How close a candidate model is to FP32 on the evaluation data.
struct Score {
  double metric = 0;   // cosine (higher is better) or top-1 points lost (lower is better)
  double sqnr_db = 0;  // the worst output's SQNR vs FP32 (200 when identical)
};

// First index of the largest score (NumPy's argmax, as brink eval counts top-1).
int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (x[j] > x[best]) best = j;
  return best;
}

// Runs the FP32 model once over the evaluation data, keeps its outputs, and scores candidates.
class Evaluator {
 public:
  static Result<std::unique_ptr<Evaluator>> create(const ir::Model& fp32, const Dataset& eval,
                                                   const AccuracySearchOptions& o) {
    if (eval.samples.empty()) return invalid_argument("--eval: the evaluation data has no samples");
    std::unique_ptr<Evaluator> e(new Evaluator(eval, o));
    BRINK_ASSIGN_OR_RETURN(auto session, e->load(fp32));
    for (const TensorInfo& info : session->outputs()) e->outputs_.push_back(info.name);
    for (size_t s = 0; s < eval.samples.size(); ++s) {
      auto out = session->run(eval.samples[s]);
      if (!out.is_ok())
        return out.status().with_context("the FP32 model on eval sample " + std::to_string(s));
      e->reference_.push_back(std::move(*out));
    }
    bool any_float = false;
    for (const Tensor& t : e->reference_[0])
      any_float = any_float || t.dtype() == DataType::kFloat32;
    if (!any_float)
      return invalid_argument("--eval: the model has no float32 output to compare with FP32");
    if (o.metric == AccuracyMetric::kTop1) BRINK_RETURN_IF_ERROR(e->check_classifier());
    return e;
  }

  // The metric and SQNR of `candidate` (the same inputs and outputs as the FP32 model).
  Result<Score> score(const ir::Model& candidate) const {
    BRINK_ASSIGN_OR_RETURN(auto session, load(candidate));
    std::vector<double> cos_sum(outputs_.size(), 0.0), signal(outputs_.size(), 0.0),
        noise(outputs_.size(), 0.0);
    int64_t correct = 0, rows = 0;
    for (size_t s = 0; s < eval_.samples.size(); ++s) {
      auto out = session->run(eval_.samples[s]);
      if (!out.is_ok())
        return out.status().with_context("a quantized model on eval sample " + std::to_string(s));
      for (size_t k = 0; k < outputs_.size(); ++k) {
        const Tensor& r = reference_[s][k];
        const Tensor& c = (*out)[k];
        if (r.dtype() != DataType::kFloat32) continue;
        if (c.dtype() != DataType::kFloat32 || c.numel() != r.numel())
          return internal_error("output '" + outputs_[k] +
                                "' of a quantized model: " + shape_to_string(c.shape()) +
                                " vs FP32's " + shape_to_string(r.shape()));
        double dot = 0, rr = 0, cc = 0, err = 0;
        for (int64_t i = 0; i < r.numel(); ++i) {
          const double a = r.data<float>()[i], b = c.data<float>()[i];
          dot += a * b;
          rr += a * a;
          cc += b * b;
          err += (a - b) * (a - b);
        }
        cos_sum[k] +=
            rr == 0 && cc == 0 ? 1.0 : (rr == 0 || cc == 0 ? 0.0 : dot / std::sqrt(rr * cc));
        signal[k] += rr;
        noise[k] += err;
      }
      if (options_.metric == AccuracyMetric::kTop1) {
        const Tensor& c = (*out)[0];
        for (int64_t row = 0; row < c.numel() / classes_; ++row, ++rows) {
          const int64_t p = argmax(c.data<float>() + row * classes_, classes_);
          correct += p == truth_[static_cast<size_t>(rows)];
        }
      }
    }
    Score sc;
    sc.metric = 1.0;
    sc.sqnr_db = 200.0;
    const double n = static_cast<double>(eval_.samples.size());
    for (size_t k = 0; k < outputs_.size(); ++k) {
      if (reference_[0][k].dtype() != DataType::kFloat32) continue;
      const double db = noise[k] <= 0    ? 200.0
                        : signal[k] <= 0 ? 0.0
                                         : std::min(200.0, 10.0 * std::log10(signal[k] / noise[k]));
      sc.sqnr_db = std::min(sc.sqnr_db, db);
      if (options_.metric == AccuracyMetric::kCosine)
        sc.metric = std::min(sc.metric, cos_sum[k] / n);
    }
    if (options_.metric == AccuracyMetric::kTop1)
      sc.metric = 100.0 * static_cast<double>(reference_correct_ - correct) /
                  static_cast<double>(std::max<int64_t>(1, rows));
    return sc;
  }

  bool meets(double metric) const {
    return options_.metric == AccuracyMetric::kCosine ? metric >= options_.target
                                                      : metric <= options_.target;
  }
  int64_t samples() const { return static_cast<int64_t>(eval_.samples.size()); }

 private:
  Evaluator(const Dataset& eval, const AccuracySearchOptions& o) : eval_(eval), options_(o) {}

  Result<std::unique_ptr<Session>> load(const ir::Model& model) const {
    SessionOptions so;  // the defaults `brink eval` runs with, so its numbers match ours
    so.num_threads = options_.num_threads;
    return Session::from_model(model, so);
  }

  // top1: one float output [batch, classes] or [classes]; labels (or FP32's predictions).
  Status check_classifier() {
    const Tensor& first = reference_[0][0];
    if (outputs_.size() != 1 || first.dtype() != DataType::kFloat32 ||
        (first.rank() != 1 && first.rank() != 2) || first.dim(first.rank() - 1) < 2)
      return invalid_argument(
          "--metric top1 needs a classifier: one float output shaped [batch, classes] or "
          "[classes], but the model has " +
          std::to_string(outputs_.size()) + " output(s), the first " +
          shape_to_string(first.shape()));
    classes_ = first.dim(first.rank() - 1);
    std::vector<int64_t> predicted;
    for (const auto& out : reference_) {
      const Tensor& t = out[0];
      if (t.dim(t.rank() - 1) != classes_)
        return invalid_argument("--metric top1: the model's output changes its class count");
      for (int64_t row = 0; row < t.numel() / classes_; ++row)
        predicted.push_back(argmax(t.data<float>() + row * classes_, classes_));
    }
    const auto rows = static_cast<int64_t>(predicted.size());
    if (options_.labels.empty()) {
      truth_ = predicted;
      reference_correct_ = rows;
      return Status::ok();
    }
    if (static_cast<int64_t>(options_.labels.size()) != rows)
      return invalid_argument("--labels: " + std::to_string(options_.labels.size()) +
                              " labels, but the " + std::to_string(eval_.samples.size()) +
                              " eval samples give " + std::to_string(rows) +
                              " predictions (one label per prediction expected)");
    truth_ = options_.labels;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t label = truth_[static_cast<size_t>(i)];
      if (label < 0 || label >= classes_)
        return invalid_argument("--labels: label " + std::to_string(i) + " is " +
                                std::to_string(label) + ", outside [0, " +
                                std::to_string(classes_) + ")");
      reference_correct_ += predicted[static_cast<size_t>(i)] == label;
    }
    return Status::ok();
  }

  const Dataset& eval_;
  const AccuracySearchOptions& options_;
  std::vector<std::string> outputs_;
  std::vector<std::vector<Tensor>> reference_;  // per sample, per output
  int64_t classes_ = 0, reference_correct_ = 0;
  std::vector<int64_t> truth_;  // per prediction row: the label, or FP32's prediction
};

std::string metric_name(const AccuracySearchOptions& o) {
  if (o.metric == AccuracyMetric::kCosine) return "cosine";
  return o.labels.empty() ? "top1-disagreement" : "top1-drop";
}

// One fallback choice: the layers kept in float and, of those, the ones with float16 weights.
struct Choice {
  std::set<std::string> fp32, fp16;
};

}  // namespace

Result<QuantizeResult> quantize_to_accuracy(const ir::Model& model, const Dataset* calibration,
                                            const Dataset& eval, QuantizeOptions options,
                                            const AccuracySearchOptions& search) {
  BRINK_RETURN_IF_ERROR(check_accuracy_target(search.metric, search.target));
  if (options.mode == QuantMode::kFp16)
    return invalid_argument(
        "--accuracy-target applies to --mode int8, int8-dynamic and mixed, not fp16");
  const auto start = std::chrono::steady_clock::now();
  options.keep_float.clear();
  options.fp16_weights.clear();
  BRINK_ASSIGN_OR_RETURN(QuantizeResult base, quantize_model(model, calibration, options));
  BRINK_ASSIGN_OR_RETURN(auto evaluator, Evaluator::create(base.prepared, eval, search));
  const std::map<std::string, Range> ranges = base.ranges;
  options.ranges = &ranges;  // calibration runs once

  AccuracySummary summary;
  summary.searched = true;
  summary.metric = metric_name(search);
  summary.direction = search.metric == AccuracyMetric::kCosine ? ">=" : "<=";
  summary.target = search.target;
  summary.eval_samples = evaluator->samples();
  summary.weight_bytes_before_fallback = base.report.weight_bytes_after;
  const std::vector<LayerReport> layers = base.report.layers;
  summary.layers = static_cast<int64_t>(layers.size());
  auto finish = [&](QuantizeResult& r, const Score& before, const Score& after) {
    summary.before = before.metric;
    summary.after = after.metric;
    summary.met = evaluator->meets(after.metric);
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.report.accuracy = summary;
  };

  auto options_for = [&](const Choice& c) {
    QuantizeOptions o = options;
    o.keep_float = c.fp32;
    o.keep_float.insert(c.fp16.begin(), c.fp16.end());
    o.fp16_weights = c.fp16;
    return o;
  };
  auto evaluate = [&](const Choice& c) -> Result<std::pair<QuantizeResult, Score>> {
    BRINK_ASSIGN_OR_RETURN(QuantizeResult r, quantize_model(model, calibration, options_for(c)));
    ++summary.evaluations;
    BRINK_ASSIGN_OR_RETURN(Score s, evaluator->score(r.quantized));
    return std::make_pair(std::move(r), s);
  };

  ++summary.evaluations;
  BRINK_ASSIGN_OR_RETURN(const Score all_quantized, evaluator->score(base.quantized));
  if (evaluator->meets(all_quantized.metric)) {
    finish(base, all_quantized, all_quantized);
    return base;
  }

  // Sensitivity: the SQNR gain of the model output with only this layer left in float.
  std::vector<double> gain(layers.size(), 0.0);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (search.progress) {
      std::fprintf(stderr, "\rfallback: measuring layer sensitivity %zu/%zu", i + 1, layers.size());
      std::fflush(stderr);
    }
    Choice c;
    c.fp32.insert(layers[i].name);
    BRINK_ASSIGN_OR_RETURN(auto r, evaluate(c));
    gain[i] = r.second.sqnr_db - all_quantized.sqnr_db;
  }
  if (search.progress) std::fprintf(stderr, "\n");
  std::vector<size_t> order(layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return gain[a] > gain[b]; });

  // A layer with weights falls back to fp16 in mixed mode; Add, Concat, ... have none.
  auto has_weights = [&](size_t i) { return layers[i].weight_bytes_before > 0; };
  // The top k of `order` in float; in mixed mode with fp16 weights, except the top `fp32_first`.
  auto choice = [&](size_t k, size_t fp32_first) {
    Choice c;
    for (size_t j = 0; j < k; ++j) {
      const size_t i = order[j];
      if (search.mixed && has_weights(i) && j >= fp32_first)
        c.fp16.insert(layers[i].name);
      else
        c.fp32.insert(layers[i].name);
    }
    return c;
  };
  const size_t max_k = layers.empty() ? 0 : layers.size() - 1;  // all but one
  // Scores only: a big model's copies are not kept; the chosen one is quantized again at the end.
  std::map<std::pair<size_t, size_t>, Score> tried;
  auto attempt = [&](size_t k, size_t fp32_first) -> Result<bool> {
    auto key = std::make_pair(k, fp32_first);
    if (!tried.count(key)) {
      BRINK_ASSIGN_OR_RETURN(auto r, evaluate(choice(k, fp32_first)));
      tried.emplace(key, r.second);
    }
    return evaluator->meets(tried.at(key).metric);
  };
  // The smallest x in [1, hi] with pred(x) true (0 when none): one by one up to linear_limit
  // candidates; beyond, doubling then bisection (the metric assumed monotonic in x).
  auto smallest = [&](const std::function<Result<bool>(size_t)>& pred,
                      size_t hi) -> Result<size_t> {
    if (static_cast<int64_t>(hi) <= search.linear_limit) {
      for (size_t x = 1; x <= hi; ++x) {
        BRINK_ASSIGN_OR_RETURN(bool ok, pred(x));
        if (ok) return x;
      }
      return size_t{0};
    }
    size_t bad = 0, good = 0;
    for (size_t x = 1;; x = std::min(hi, x * 2)) {
      BRINK_ASSIGN_OR_RETURN(bool ok, pred(x));
      if (ok) {
        good = x;
        break;
      }
      bad = x;
      if (x == hi) return size_t{0};
    }
    while (good - bad > 1) {
      const size_t mid = bad + (good - bad) / 2;
      BRINK_ASSIGN_OR_RETURN(bool ok, pred(mid));
      (ok ? good : bad) = mid;
    }
    return good;
  };

  // Plain: the top k in fp32. Mixed: the top k in fp16 (fp32_first = 0); if all but one in fp16
  // miss the target, all but one fall back with the top fp32_first of them in fp32.
  size_t k = 0, fp32_first = search.mixed ? 0 : max_k;
  if (max_k >= 1) {
    BRINK_ASSIGN_OR_RETURN(k, smallest([&](size_t x) { return attempt(x, fp32_first); }, max_k));
    if (k == 0 && search.mixed) {
      BRINK_ASSIGN_OR_RETURN(size_t f,
                             smallest([&](size_t x) { return attempt(max_k, x); }, max_k));
      if (f > 0) {
        k = max_k;
        fp32_first = f;
      }
    }
  }
  if (k == 0) {
    double best = all_quantized.metric;
    for (const auto& entry : tried) {
      const double m = entry.second.metric;
      best = search.metric == AccuracyMetric::kCosine ? std::max(best, m) : std::min(best, m);
    }
    char line[640];
    std::snprintf(line, sizeof line,
                  "the accuracy target %s %s %g is not reachable on the eval data: %.6g with every "
                  "layer quantized, at best %.6g with up to all but one of the %zu quantized "
                  "layers (all but '%s') in float; no output was written",
                  summary.metric.c_str(), summary.direction.c_str(), search.target,
                  all_quantized.metric, best, layers.size(),
                  layers[order.empty() ? 0 : order.back()].name.c_str());
    return invalid_argument(line);
  }

  const Score after = tried.at({k, fp32_first});
  const Choice chosen = choice(k, fp32_first);
  BRINK_ASSIGN_OR_RETURN(QuantizeResult result,
                         quantize_model(model, calibration, options_for(chosen)));
  // The report, in the layers' order: quantized layers as quantize_model reported them, the
  // fallen-back ones marked, every layer with its sensitivity.
  std::map<std::string, LayerReport> now;
  for (const LayerReport& l : result.report.layers) now[l.name] = l;
  std::vector<LayerReport> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerReport l = layers[i];
    auto it = now.find(l.name);
    const bool fp16 =
        chosen.fp16.count(l.name) && it != now.end() && it->second.precision == "fp16";
    if (fp16) {
      // quantize_fp16's entry (its weights and output), named as the base report names it.
      l.precision = "fp16 (fallback)";
      l.weight_bytes_after =
          it->second.weight_bytes_after + (l.weight_bytes_before - it->second.weight_bytes_before);
      l.quant_tensor = l.fp32_tensor;
    } else if (chosen.fp32.count(l.name) || chosen.fp16.count(l.name)) {
      // In float (an fp16 candidate whose weights were too small to convert stays fp32).
      l.precision = "fp32 (fallback)";
      l.weight_bytes_after = l.weight_bytes_before;
      l.quant_tensor = l.fp32_tensor;
    } else if (it != now.end()) {
      l = it->second;
    }
    l.compared = false;
    l.sensitivity_measured = true;
    l.sensitivity_db = gain[i];
    summary.layers_fp32 += l.precision == "fp32 (fallback)";
    summary.layers_fp16 += l.precision == "fp16 (fallback)";
    out.push_back(std::move(l));
  }
  result.report.layers = std::move(out);
  finish(result, all_quantized, after);
  return result;
}

}  // namespace brink::quant
