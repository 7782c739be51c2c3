// brink eval REFERENCE CANDIDATE --data DATA [--labels L] [--samples N] [--json]: how far a
// candidate model (typically a quantized one) is from its reference, on real data.
//
// Both models (.onnx or .brink) run with Brink Sessions, sample by sample, on the samples of
// DATA (brink::quant::load_dataset: an .npz / .npy / folder; an [N, ...] array for an input with
// a batch dim of 1 or symbolic splits into N samples of batch 1; or a folder of images with a
// preprocessing spec, --preprocess SPEC.json or the folder's preprocess.json). The two models must
// have the same inputs (names, dtypes, ranks) and the same outputs (names); every mismatch is
// refused before anything runs.
//
// Per output (over all samples; computed in double):
//   cosine similarity  of the flattened output of each sample: its mean and its minimum
//                      (1 when both are all zeros, 0 when only one is);
//   SQNR (dB)          10 log10(sum ref^2 / sum (ref - cand)^2) over all samples; infinite
//                      (JSON null, "identical": true) when the outputs are identical;
//   max abs error      max |ref - cand|, and the mean abs error;
//   non-finite values  in the candidate's output (NaN / Inf; they make the metrics NaN).
// Classification, when the model has exactly one output and it is a float tensor of rank 2
// ([batch, classes], classes >= 2) or rank 1 ([classes]): each row is one prediction.
//   With --labels (.npy of integers, any shape, flattened; or .txt with one integer per line;
//   one label per row, in sample order): top-1 and top-5 accuracy (%) of both models and the
//   drop in points (reference - candidate). Top-k counts the label's rank: classes scoring
//   higher, plus equal-scoring classes with a smaller index (so top-1 is NumPy's argmax).
//   Always: top-1 agreement, the % of rows where both models' argmax is the same.
// --samples N evaluates the first N samples (and the first labels of those rows).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>

#include "cli_common.h"
#include "commands.h"
#include "quant/dataset.h"

namespace brink::cli {

namespace {

struct EvalOptions {
  std::string reference;
  std::string candidate;
  std::string data;
  std::string labels;
  std::string preprocess;
  int64_t samples = -1;
  int threads = 1;
  std::vector<std::string> dims;
  PackageLoadOptions package;
  bool json = false;
};

// Running sums for one output.
struct OutputStats {
  std::string name;
  Shape shape;  // of the first sample
  double cos_sum = 0;
  double cos_min = std::numeric_limits<double>::infinity();
  double ref_sq = 0;
  double err_sq = 0;
  double max_abs = 0;
  double abs_sum = 0;
  int64_t count = 0;      // elements seen
  int64_t nonfinite = 0;  // in the candidate
  int64_t samples = 0;
};

struct ClassStats {
  int64_t classes = 0;
  int64_t rows = 0;
  int64_t agree = 0;
  // The (reference, candidate) scores of each row, kept when there are labels.
  std::vector<std::vector<float>> ref_rows, cand_rows;
};

double value_at(const Tensor& t, int64_t i) {
  return t.dtype() == DataType::kFloat32 ? static_cast<double>(t.data<float>()[i])
                                         : t.element_as_double(i);
}

void accumulate(OutputStats* s, const Tensor& ref, const Tensor& cand) {
  double dot = 0, rr = 0, cc = 0, err = 0;
  const int64_t n = ref.numel();
  for (int64_t i = 0; i < n; ++i) {
    const double r = value_at(ref, i), c = value_at(cand, i);
    if (!std::isfinite(c)) ++s->nonfinite;
    dot += r * c;
    rr += r * r;
    cc += c * c;
    const double d = r - c;
    err += d * d;
    const double a = std::fabs(d);
    s->abs_sum += a;
    if (!(a <= s->max_abs)) s->max_abs = a;  // propagates NaN
  }
  double cos;
  if (rr == 0 && cc == 0)
    cos = 1;
  else if (rr == 0 || cc == 0)
    cos = 0;
  else
    cos = dot / (std::sqrt(rr) * std::sqrt(cc));
  s->cos_sum += cos;
  if (!(cos >= s->cos_min)) s->cos_min = cos;
  s->ref_sq += rr;
  s->err_sq += err;
  s->count += n;
  s->samples += 1;
}

// Rank of class `label` in `scores`: classes scoring higher, plus ties with a smaller index.
int64_t label_rank(const std::vector<float>& scores, int64_t label) {
  const float v = scores[static_cast<size_t>(label)];
  int64_t rank = 0;
  for (size_t j = 0; j < scores.size(); ++j)
    if (scores[j] > v || (scores[j] == v && static_cast<int64_t>(j) < label)) ++rank;
  return rank;
}

// First index of the largest score (NumPy's argmax).
int64_t argmax(const std::vector<float>& scores) {
  size_t best = 0;
  for (size_t j = 1; j < scores.size(); ++j)
    if (scores[j] > scores[best]) best = j;
  return static_cast<int64_t>(best);
}

std::string join_names(const std::vector<TensorInfo>& infos) {
  std::string s = "[";
  for (size_t i = 0; i < infos.size(); ++i) s += (i ? ", " : "") + infos[i].name;
  return s + "]";
}

// Both models must take the same inputs and give the same outputs (by name).
Status check_compatible(const EvalOptions& o, const Session& ref, const Session& cand) {
  const auto& ri = ref.inputs();
  const auto& ci = cand.inputs();
  auto differ = [&](const char* what, const std::string& r, const std::string& c) {
    return invalid_argument("the models differ in their " + std::string(what) + ": reference '" +
                            o.reference + "' has " + r + ", candidate '" + o.candidate + "' has " +
                            c);
  };
  if (ri.size() != ci.size()) return differ("inputs", join_names(ri), join_names(ci));
  for (const TensorInfo& r : ri) {
    auto it =
        std::find_if(ci.begin(), ci.end(), [&](const TensorInfo& c) { return c.name == r.name; });
    if (it == ci.end()) return differ("inputs", join_names(ri), join_names(ci));
    if (it->dtype != r.dtype)
      return differ(("input '" + r.name + "' dtype").c_str(), dtype_long_name(r.dtype),
                    dtype_long_name(it->dtype));
    if (r.rank_known && it->rank_known && r.shape.size() != it->shape.size())
      return differ(("input '" + r.name + "' shape").c_str(), r.shape_string(), it->shape_string());
  }
  const auto& ro = ref.outputs();
  const auto& co = cand.outputs();
  if (ro.size() != co.size()) return differ("outputs", join_names(ro), join_names(co));
  for (const TensorInfo& r : ro)
    if (std::none_of(co.begin(), co.end(), [&](const TensorInfo& c) { return c.name == r.name; }))
      return differ("outputs", join_names(ro), join_names(co));
  return Status::ok();
}

// nlohmann::json writes NaN and Inf as null; keep that explicit.
nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

int eval_command(const EvalOptions& o) {
  SessionOptions so;
  so.num_threads = o.threads;
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  so.dim_values = *dims;
  o.package.apply(&so);
  auto ref = Session::load(o.reference, so);
  if (!ref) return report_error(ref.status().with_context("reference '" + o.reference + "'"));
  auto cand = Session::load(o.candidate, so);
  if (!cand) return report_error(cand.status().with_context("candidate '" + o.candidate + "'"));
  if (Status s = check_compatible(o, **ref, **cand); !s.is_ok()) return report_error(s);

  std::vector<int64_t> labels;
  if (!o.labels.empty()) {
    auto l = quant::load_labels(o.labels);
    if (!l) return report_error(l.status());
    labels = std::move(*l);
  }
  auto data = quant::load_dataset(o.data, (*ref)->inputs(), o.samples, o.preprocess);
  if (!data) return report_error(data.status());
  if (data->samples.empty()) return report_error(invalid_argument(o.data + ": no samples"));

  const auto& out_infos = (*ref)->outputs();
  std::vector<size_t> cand_index;  // reference output i is candidate output cand_index[i]
  for (const TensorInfo& r : out_infos) {
    const auto& co = (*cand)->outputs();
    cand_index.push_back(static_cast<size_t>(
        std::find_if(co.begin(), co.end(), [&](const TensorInfo& c) { return c.name == r.name; }) -
        co.begin()));
  }
  std::vector<OutputStats> stats(out_infos.size());
  for (size_t i = 0; i < stats.size(); ++i) stats[i].name = out_infos[i].name;
  bool classify = out_infos.size() == 1;  // decided on the first sample's output shape
  ClassStats cls;

  const auto start = std::chrono::steady_clock::now();
  for (size_t si = 0; si < data->samples.size(); ++si) {
    const std::string where = "sample " + std::to_string(si) + " of '" + o.data + "'";
    auto r = (*ref)->run(data->samples[si]);
    if (!r) return report_error(r.status().with_context("reference on " + where));
    auto c = (*cand)->run(data->samples[si]);
    if (!c) return report_error(c.status().with_context("candidate on " + where));
    for (size_t oi = 0; oi < stats.size(); ++oi) {
      const Tensor& rt = (*r)[oi];
      const Tensor& ct = (*c)[cand_index[oi]];
      if (rt.shape() != ct.shape())
        return report_error(invalid_argument(
            "output '" + stats[oi].name + "' on " + where + ": the reference gives " +
            shape_to_string(rt.shape()) + ", the candidate " + shape_to_string(ct.shape())));
      if (si == 0) stats[oi].shape = rt.shape();
      accumulate(&stats[oi], rt, ct);
    }
    if (classify) {
      const Tensor& rt = (*r)[0];
      const Tensor& ct = (*c)[cand_index[0]];
      const bool shaped = dtype_is_float(rt.dtype()) && dtype_is_float(ct.dtype()) &&
                          (rt.rank() == 1 || rt.rank() == 2) && rt.dim(rt.rank() - 1) >= 2;
      if (!shaped || (cls.classes && rt.dim(rt.rank() - 1) != cls.classes)) {
        classify = false;
      } else {
        cls.classes = rt.dim(rt.rank() - 1);
        const int64_t rows = rt.numel() / cls.classes;
        for (int64_t row = 0; row < rows; ++row) {
          std::vector<float> rv(static_cast<size_t>(cls.classes)), cv(rv.size());
          for (int64_t k = 0; k < cls.classes; ++k) {
            rv[static_cast<size_t>(k)] = static_cast<float>(value_at(rt, row * cls.classes + k));
            cv[static_cast<size_t>(k)] = static_cast<float>(value_at(ct, row * cls.classes + k));
          }
          if (argmax(rv) == argmax(cv)) ++cls.agree;
          ++cls.rows;
          if (!labels.empty()) {
            cls.ref_rows.push_back(std::move(rv));
            cls.cand_rows.push_back(std::move(cv));
          }
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Labels: one per row; with --samples, the first labels of the rows evaluated.
  int64_t ref_top1 = 0, cand_top1 = 0, ref_top5 = 0, cand_top5 = 0;
  const int64_t k5 = std::min<int64_t>(5, cls.classes);
  if (!labels.empty()) {
    if (!classify)
      return report_error(invalid_argument(
          "--labels needs a classifier: one float output shaped [batch, classes] or [classes], "
          "but '" +
          o.reference + "' has " + std::to_string(out_infos.size()) + " output(s), the first " +
          shape_to_string(stats[0].shape)));
    const auto n_labels = static_cast<int64_t>(labels.size());
    if (n_labels < cls.rows || (o.samples < 0 && n_labels != cls.rows))
      return report_error(invalid_argument(
          o.labels + ": " + std::to_string(n_labels) + " labels, but the " +
          std::to_string(data->samples.size()) + " samples of '" + o.data + "' give " +
          std::to_string(cls.rows) + " predictions (one label per prediction expected)"));
    for (int64_t i = 0; i < cls.rows; ++i) {
      const int64_t label = labels[static_cast<size_t>(i)];
      if (label < 0 || label >= cls.classes)
        return report_error(invalid_argument(o.labels + ": label " + std::to_string(i) + " is " +
                                             std::to_string(label) + ", outside [0, " +
                                             std::to_string(cls.classes) + ")"));
      const int64_t rr = label_rank(cls.ref_rows[static_cast<size_t>(i)], label);
      const int64_t cr = label_rank(cls.cand_rows[static_cast<size_t>(i)], label);
      ref_top1 += rr < 1;
      cand_top1 += cr < 1;
      ref_top5 += rr < k5;
      cand_top5 += cr < k5;
    }
  }

  auto sqnr = [](const OutputStats& s) {
    return s.err_sq == 0 ? std::numeric_limits<double>::infinity()
                         : 10.0 * std::log10(s.ref_sq / s.err_sq);
  };
  if (o.json) {
    nlohmann::json outs = nlohmann::json::array();
    for (const OutputStats& s : stats) {
      const double q = sqnr(s);
      outs.push_back({{"name", s.name},
                      {"shape", s.shape},
                      {"cosine_mean", number(s.cos_sum / static_cast<double>(s.samples))},
                      {"cosine_min", number(s.cos_min)},
                      {"sqnr_db", number(q)},
                      {"identical", s.err_sq == 0 && s.nonfinite == 0},
                      {"max_abs_error", number(s.max_abs)},
                      {"mean_abs_error", number(s.abs_sum / static_cast<double>(s.count))},
                      {"candidate_nonfinite", s.nonfinite}});
    }
    nlohmann::json j = {{"reference", o.reference},
                        {"candidate", o.candidate},
                        {"data", o.data},
                        {"data_description", data->description},
                        {"samples", data->samples.size()},
                        {"seconds", seconds},
                        {"outputs", outs},
                        {"classification", nullptr}};
    if (classify) {
      nlohmann::json c = {{"output", stats[0].name},
                          {"classes", cls.classes},
                          {"rows", cls.rows},
                          {"top1_agreement", percent(cls.agree, cls.rows)},
                          {"labels", !labels.empty()}};
      if (!labels.empty()) {
        c["top5_k"] = k5;
        c["reference_top1"] = percent(ref_top1, cls.rows);
        c["candidate_top1"] = percent(cand_top1, cls.rows);
        c["top1_drop"] = percent(ref_top1, cls.rows) - percent(cand_top1, cls.rows);
        c["reference_top5"] = percent(ref_top5, cls.rows);
        c["candidate_top5"] = percent(cand_top5, cls.rows);
        c["top5_drop"] = percent(ref_top5, cls.rows) - percent(cand_top5, cls.rows);
      }
      j["classification"] = c;
    }
    std::cout << j.dump(2) << std::endl;
    return 0;
  }

  std::printf("reference: %s\ncandidate: %s\ndata:      %s (%zu evaluated in %.2f s)\n\n",
              o.reference.c_str(), o.candidate.c_str(), data->description.c_str(),
              data->samples.size(), seconds);
  std::printf("%-24s %-16s %10s %10s %10s %12s\n", "output", "shape", "cos mean", "cos min",
              "SQNR dB", "max |err|");
  for (const OutputStats& s : stats) {
    const double q = sqnr(s);
    char qs[32];
    if (std::isinf(q) && q > 0)
      std::snprintf(qs, sizeof qs, "inf");
    else
      std::snprintf(qs, sizeof qs, "%.2f", q);
    std::printf("%-24s %-16s %10.6f %10.6f %10s %12.4g\n", s.name.c_str(),
                shape_to_string(s.shape).c_str(), s.cos_sum / static_cast<double>(s.samples),
                s.cos_min, qs, s.max_abs);
    if (s.nonfinite)
      std::printf("  warning: %lld non-finite values in the candidate's '%s'\n",
                  static_cast<long long>(s.nonfinite), s.name.c_str());
  }
  if (classify) {
    std::printf("\nclassification ('%s', %lld classes, %lld predictions)\n", stats[0].name.c_str(),
                static_cast<long long>(cls.classes), static_cast<long long>(cls.rows));
    if (!labels.empty()) {
      std::printf("  %-10s %10s %10s %12s\n", "", "reference", "candidate", "drop (pts)");
      std::printf("  %-10s %9.2f%% %9.2f%% %12.2f\n", "top-1", percent(ref_top1, cls.rows),
                  percent(cand_top1, cls.rows),
                  percent(ref_top1, cls.rows) - percent(cand_top1, cls.rows));
      std::printf("  %-10s %9.2f%% %9.2f%% %12.2f\n", ("top-" + std::to_string(k5)).c_str(),
                  percent(ref_top5, cls.rows), percent(cand_top5, cls.rows),
                  percent(ref_top5, cls.rows) - percent(cand_top5, cls.rows));
    }
    std::printf("  top-1 agreement: %.2f%%\n", percent(cls.agree, cls.rows));
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Compare a candidate model (e.g. quantized) with its reference on real data");
  cmd->add_option("reference", o->reference, "Reference model (.onnx or .brink)")->required();
  cmd->add_option("candidate", o->candidate, "Candidate model (.onnx or .brink)")->required();
  cmd->add_option("--data,-d", o->data,
                  "Samples: .npz / .npy file, a folder of them, or a folder of images")
      ->required();
  cmd->add_option(
      "--preprocess", o->preprocess,
      "Preprocessing spec (JSON) for a folder of images (default: DIR/preprocess.json)");
  cmd->add_option("--labels,-l", o->labels,
                  "Class labels, one per prediction: .npy of integers or .txt, one per line");
  cmd->add_option("--samples,-n", o->samples, "Evaluate only the first N samples")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  cmd->add_option("--threads,-t", o->threads, "Threads per run (0: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--dim", o->dims, "Fix a symbolic dim: NAME=SIZE (repeatable)");
  add_package_load_options(cmd, &o->package);
  cmd->add_flag("--json", o->json, "Print a JSON object");
  cmd->callback([o, exit_code] { *exit_code = eval_command(*o); });
}

}  // namespace brink::cli
