// brink quantize MODEL.onnx -o OUT.onnx --mode int8|int8-dynamic|fp16|int4|mixed [--calib DATA]
//                [--accuracy-target T --eval DATA [--labels L] [--metric cosine|top1]] ...
//
// Quantizes an FP32 ONNX model into a standard ONNX model (src/quant/quantize.h,
// docs/QUANTIZATION.md), prints a per-layer table (SQNR and cosine against FP32, measured by
// running both models on a few samples), a per-layer time table (each model profiled as the
// runtime runs it, quant/layer_timing.h), and optionally writes the report as JSON (--report)
// and its SQNR as a PNG bar chart (--plot, quant/report_plot.h). DATA may be a folder of images
// with a preprocessing spec (--preprocess, quant/image_dataset.h). With --accuracy-target (and
// always with --mode mixed) the most sensitive layers fall back to float until the target
// holds on --eval (src/quant/accuracy_search.h). Every
// check runs before anything is written: on an error, nothing is written and the input model
// is never touched; the output and the report are written all or nothing.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "onnx/onnx_io.h"
#include "package/atomic_file.h"
#include "quant/accuracy_search.h"
#include "quant/layer_timing.h"
#include "quant/quantize.h"
#include "quant/report_plot.h"

namespace brink::cli {

namespace {

struct QuantizeCliOptions {
  std::string model, out, mode = "int8", calib, method = "minmax", activation_type = "u8", report;
  std::string float_out;  // --float-out: the FP32 reference the report compares against
  std::string preprocess, plot;
  double percentile = 99.999;
  double plot_threshold = 20.0;
  int time_runs = 3;
  bool per_channel = false, per_tensor = false, progress = false;
  bool equalize = false, bias_correction = false;
  std::string smooth_quant;  // --smooth-quant [ALPHA]: "" when given bare
  CLI::Option* smooth_quant_option = nullptr;
  int64_t samples = -1;
  int64_t report_samples = 4;
  int threads = 0;
  // Automatic fallback (quant/accuracy_search.h).
  double accuracy_target = std::numeric_limits<double>::quiet_NaN();
  std::string eval, labels, metric = "auto";
  int64_t linear_limit = 16;
  int64_t block_size = 0;  // int4; 0: not given (32)
  bool int4_zero_point = false, int4_rtn = false, int4_embeddings = false;
};

Status write_text(const std::string& path, const std::string& text) {
  return package::write_file_atomically(path, [&](std::FILE* f) {
    return std::fwrite(text.data(), 1, text.size(), f) == text.size();
  });
}

// A wrong command line: one line on stderr, exit code 2.
int usage_error(const Status& status) {
  report_error(status);
  return kExitUsage;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (!std::filesystem::exists(b, ec)) return false;
  return std::filesystem::equivalent(a, b, ec) && !ec;
}

int quantize_command(const QuantizeCliOptions& o) {
  // --mode mixed: int8 (static with --calib, dynamic without) whose sensitive layers fall back
  // to fp16 weights, then fp32, until --accuracy-target holds.
  const bool mixed = o.mode == "mixed";
  auto mode = mixed ? Result<quant::QuantMode>(o.calib.empty() ? quant::QuantMode::kInt8Dynamic
                                                               : quant::QuantMode::kInt8)
                    : quant::parse_quant_mode(o.mode);
  if (!mode)
    return usage_error(invalid_argument("unknown quantization mode '" + o.mode +
                                        "' (expected int8, int8-dynamic, fp16, int4 or mixed)"));
  const bool search = !std::isnan(o.accuracy_target);
  if (mixed && !search)
    return usage_error(invalid_argument(
        "--mode mixed needs --accuracy-target T and --eval DATA (the precision of each layer is "
        "chosen to meet T)"));
  if (search && o.eval.empty())
    return usage_error(invalid_argument(
        "--accuracy-target needs --eval DATA (.npy, .npz or a folder of them) to measure it on"));
  if (!search && !o.eval.empty())
    return usage_error(invalid_argument("--eval is used with --accuracy-target T only"));
  if (!search && !o.labels.empty())
    return usage_error(invalid_argument("--labels is used with --accuracy-target T only"));
  if (search && (*mode == quant::QuantMode::kFp16 || *mode == quant::QuantMode::kInt4))
    return usage_error(
        invalid_argument("--accuracy-target applies to --mode int8, int8-dynamic "
                         "and mixed, not " +
                         o.mode));
  const std::string metric_name =
      o.metric == "auto" ? (o.labels.empty() ? "cosine" : "top1") : o.metric;
  auto metric = quant::parse_accuracy_metric(metric_name);
  if (!metric)
    return usage_error(
        invalid_argument("unknown --metric '" + o.metric + "' (expected cosine, top1 or auto)"));
  if (*metric == quant::AccuracyMetric::kCosine && !o.labels.empty())
    return usage_error(invalid_argument("--labels is used by --metric top1 only"));
  if (search) {
    if (Status s = quant::check_accuracy_target(*metric, o.accuracy_target); !s.is_ok())
      return usage_error(s);
  }
  auto method = quant::parse_calibration_method(o.method);
  if (!method) return usage_error(method.status());
  if (o.activation_type != "u8" && o.activation_type != "s8")
    return usage_error(invalid_argument("unknown activation type '" + o.activation_type +
                                        "' (expected u8 or s8)"));
  if (o.per_channel && o.per_tensor)
    return usage_error(invalid_argument("--per-channel and --per-tensor exclude each other"));
  if (!(o.percentile > 50.0 && o.percentile <= 100.0))
    return usage_error(
        invalid_argument("--percentile must be in (50, 100], got " + std::to_string(o.percentile)));
  if (*mode != quant::QuantMode::kInt4 &&
      (o.block_size != 0 || o.int4_zero_point || o.int4_rtn || o.int4_embeddings))
    return usage_error(
        invalid_argument("--block-size and the --int4-* options apply to --mode int4 only"));
  if (*mode == quant::QuantMode::kInt4 && o.block_size != 0 && o.block_size != 16 &&
      o.block_size != 32 && o.block_size != 64 && o.block_size != 128)
    return usage_error(invalid_argument("--block-size must be 16, 32, 64 or 128, got " +
                                        std::to_string(o.block_size)));
  if (same_file(o.model, o.out))
    return report_error(invalid_argument("the output '" + o.out +
                                         "' is the input model; refusing to overwrite it"));
  if (!o.float_out.empty() &&
      (same_file(o.model, o.float_out) || o.float_out == o.out || o.float_out == o.report))
    return report_error(invalid_argument("--float-out '" + o.float_out +
                                         "' would overwrite the model, the output or the report"));
  if (!o.report.empty() && (same_file(o.model, o.report) || o.report == o.out))
    return report_error(
        invalid_argument("the report '" + o.report + "' would overwrite the model or the output"));
  if (!o.plot.empty() && (same_file(o.model, o.plot) || o.plot == o.out || o.plot == o.report))
    return report_error(invalid_argument("the plot '" + o.plot +
                                         "' would overwrite the model, the output or the report"));
  if (!o.preprocess.empty() && o.calib.empty())
    return usage_error(invalid_argument("--preprocess needs --calib DIR (a folder of images)"));

  double alpha = 0.5;
  const bool smooth = o.smooth_quant_option && o.smooth_quant_option->count() > 0;
  if (smooth && !o.smooth_quant.empty()) {
    char* end = nullptr;
    alpha = std::strtod(o.smooth_quant.c_str(), &end);
    if (end == o.smooth_quant.c_str() || *end != '\0' || !(alpha >= 0.0 && alpha <= 1.0))
      return usage_error(invalid_argument("--smooth-quant ALPHA must be a number in [0, 1], got '" +
                                          o.smooth_quant + "'"));
  }
  if ((o.equalize || o.bias_correction || smooth) && *mode != quant::QuantMode::kInt8)
    return usage_error(invalid_argument(
        std::string("--equalize, --bias-correction and --smooth-quant apply to --mode int8 "
                    "(static) only, not ") +
        quant::quant_mode_name(*mode)));

  auto model = onnx_io::load_onnx_file(o.model);
  if (!model) return report_error(model.status());

  quant::QuantizeOptions qo;
  qo.mode = *mode;
  qo.per_channel = !o.per_tensor;
  qo.signed_activations = o.activation_type == "s8";
  qo.equalize = o.equalize;
  qo.bias_correction = o.bias_correction;
  qo.smooth_quant = smooth;
  qo.smooth_quant_alpha = alpha;
  if (o.block_size != 0) qo.int4_block_size = o.block_size;
  qo.int4_zero_point = o.int4_zero_point;
  qo.int4_search = !o.int4_rtn;
  qo.int4_embeddings = o.int4_embeddings;
  if (qo.mode == quant::QuantMode::kInt4 && !o.calib.empty())
    std::fprintf(stderr,
                 "warning: --mode int4 is weight-only and needs no calibration; --calib is used "
                 "only for the report's comparison\n");
  qo.calibration.method = *method;
  qo.calibration.percentile = o.percentile;
  qo.calibration.num_threads = o.threads;
  qo.calibration.progress = o.progress || isatty(fileno(stderr));

  std::unique_ptr<quant::Dataset> data;
  if (!o.calib.empty()) {
    auto d =
        quant::load_dataset(o.calib, quant::model_input_infos(*model), o.samples, o.preprocess);
    if (!d) return report_error(d.status());
    data = std::make_unique<quant::Dataset>(std::move(*d));
  } else if (qo.mode == quant::QuantMode::kInt8) {
    return report_error(invalid_argument(
        "--mode int8 needs calibration data: --calib DATA (.npy, .npz, a folder of them, or a "
        "folder of images)"));
  }

  Result<quant::QuantizeResult> result = internal_error("not run");
  if (search) {
    quant::AccuracySearchOptions so;
    so.metric = *metric;
    so.target = o.accuracy_target;
    so.mixed = mixed;
    so.linear_limit = o.linear_limit;
    so.num_threads = o.threads;
    so.progress = qo.calibration.progress;
    if (!o.labels.empty()) {
      auto labels = quant::load_labels(o.labels);
      if (!labels) return report_error(labels.status());
      so.labels = std::move(*labels);
    }
    auto eval = quant::load_dataset(o.eval, quant::model_input_infos(*model));
    if (!eval) return report_error(eval.status());
    if (eval->samples.empty()) return report_error(invalid_argument(o.eval + ": no samples"));
    result = quant::quantize_to_accuracy(*model, data.get(), *eval, qo, so);
    if (result && mixed) result->report.mode = "mixed";
  } else {
    result = quant::quantize_model(*model, data.get(), qo);
  }
  if (!result) return report_error(result.status());
  for (const std::string& w : result->report.warnings)
    std::fprintf(stderr, "warning: %s\n", w.c_str());

  // The comparison runs on a few calibration samples, or on seeded random inputs when there
  // is no data (int8-dynamic, fp16).
  quant::Dataset compare_data;
  if (data) {
    compare_data.samples = data->samples;
  } else {
    for (uint64_t s = 0; s < 2; ++s) {
      std::vector<NamedTensor> feed;
      for (const TensorInfo& info : quant::model_input_infos(result->prepared))
        feed.emplace_back(info.name, random_tensor(info, 1234 + s));
      compare_data.samples.push_back(std::move(feed));
    }
  }
  if (Status s = quant::compare_models(*result, compare_data, o.report_samples, o.threads);
      !s.is_ok())
    return report_error(s);
  if (Status s =
          quant::time_layers(*result, compare_data, o.report_samples, o.time_runs, o.threads);
      !s.is_ok())
    return report_error(s);

  auto bytes = onnx_io::serialize_onnx(result->quantized);
  if (!bytes) return report_error(bytes.status());
  std::error_code ec;
  result->report.file_bytes_before = static_cast<int64_t>(std::filesystem::file_size(o.model, ec));
  result->report.file_bytes_after = static_cast<int64_t>(bytes->size());
  if (Status s = write_text(o.out, *bytes); !s.is_ok()) return report_error(s);
  if (!o.report.empty()) {
    if (Status s = write_text(o.report, quant::report_json(result->report)); !s.is_ok()) {
      std::filesystem::remove(o.out, ec);
      return report_error(s);
    }
  }
  if (!o.float_out.empty()) {
    auto fbytes = onnx_io::serialize_onnx(result->prepared);
    Status s = fbytes ? write_text(o.float_out, *fbytes) : fbytes.status();
    if (!s.is_ok()) {
      std::filesystem::remove(o.out, ec);
      if (!o.report.empty()) std::filesystem::remove(o.report, ec);
      return report_error(s);
    }
  }
  if (!o.plot.empty()) {
    if (Status s = quant::write_sqnr_plot(result->report, o.plot, o.plot_threshold); !s.is_ok()) {
      std::filesystem::remove(o.out, ec);
      if (!o.report.empty()) std::filesystem::remove(o.report, ec);
      if (!o.float_out.empty()) std::filesystem::remove(o.float_out, ec);
      return report_error(s);
    }
  }
  std::fputs(quant::format_report_table(result->report).c_str(), stdout);
  std::fputs(quant::format_timing_table(result->report).c_str(), stdout);
  if (!o.plot.empty()) std::printf("wrote %s\n", o.plot.c_str());
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Quantize an FP32 ONNX model to int8 (QDQ, ORT-compatible), fp16 or int4 weights, or mixed "
      "precision");
  cmd->add_option("model", o->model, "Model file (.onnx, float32)")->required();
  cmd->add_option("-o,--out", o->out, "Quantized model to write (.onnx)")->required();
  cmd->add_option("--mode", o->mode,
                  "int8 (static, QDQ; default), int8-dynamic, fp16, int4 (weight-only "
                  "MatMulNBits), or mixed (int8 with fp16 / fp32 layers chosen to meet "
                  "--accuracy-target)");
  cmd->add_option("--block-size", o->block_size, "int4: K values per scale, 16/32/64/128 (32)");
  cmd->add_flag("--int4-zero-point", o->int4_zero_point,
                "int4: asymmetric blocks with a 4-bit zero point (default symmetric)");
  cmd->add_flag("--int4-embeddings", o->int4_embeddings,
                "int4: embedding tables as 4-bit GatherBlockQuantized too (default int8 rows)");
  cmd->add_flag("--int4-rtn", o->int4_rtn,
                "int4: ORT's exact round-to-nearest scales (default, symmetric: least-squares "
                "scale per block)");
  cmd->add_option("--calib", o->calib,
                  "Calibration data: an .npz (one array per input), an .npy, a folder of them, or "
                  "a folder of images (PNG, BMP)");
  cmd->add_option(
      "--preprocess", o->preprocess,
      "Preprocessing spec (JSON) for a folder of images (default: DIR/preprocess.json)");
  cmd->add_option("--method", o->method, "Calibration: minmax (default), percentile, entropy, mse");
  cmd->add_option("--percentile", o->percentile, "Percentile for --method percentile (99.999)");
  cmd->add_flag("--per-channel", o->per_channel, "One weight scale per output channel (default)");
  cmd->add_flag("--per-tensor", o->per_tensor, "One weight scale per tensor");
  cmd->add_option("--activation-type", o->activation_type,
                  "u8 (asymmetric, default) or s8 (symmetric) activations");
  cmd->add_option("--samples", o->samples, "Use at most N calibration samples (default: all)");
  cmd->add_option("--report-samples", o->report_samples,
                  "Samples the report compares FP32 and quantized outputs on (default 4)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--report", o->report, "Write the per-layer report as JSON");
  cmd->add_option("--plot", o->plot, "Write a PNG bar chart of the per-layer SQNR");
  cmd->add_option("--plot-threshold", o->plot_threshold,
                  "SQNR (dB) the plot marks with a line; bars below it are red (default 20)")
      ->check(CLI::Range(0.0, 200.0));
  cmd->add_option("--time-runs", o->time_runs,
                  "Rounds over the report samples when timing each layer (default 3; 0: no timing)")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--threads,-t", o->threads, "Threads (0: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--accuracy-target", o->accuracy_target,
                  "Fall back the most sensitive layers to float until this holds on --eval: "
                  "cosine floor in (0, 1], or top-1 points lost in [0, 100]");
  cmd->add_option("--eval", o->eval, "Evaluation data for --accuracy-target (.npy, .npz, folder)");
  cmd->add_option("--labels", o->labels,
                  "Labels for --metric top1 (.npy of integers or .txt); without: agreement");
  cmd->add_option("--metric", o->metric,
                  "cosine (mean output cosine vs FP32) or top1 (points lost vs FP32); default: "
                  "top1 with --labels, else cosine");
  cmd->add_option("--fallback-linear-limit", o->linear_limit,
                  "Up to this many layers fall back one at a time; more: in doubling groups, then "
                  "a bisection (default 16)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--float-out", o->float_out,
                  "Also write the FP32 reference (prepared, after --equalize / --smooth-quant)");
  cmd->add_flag("--equalize", o->equalize,
                "int8: cross-layer equalization of consecutive Convs (depthwise convnets)");
  cmd->add_flag("--bias-correction", o->bias_correction,
                "int8: correct each layer's bias for the mean error of its int8 weights");
  o->smooth_quant_option =
      cmd->add_option("--smooth-quant", o->smooth_quant,
                      "int8: SmoothQuant LayerNorm -> MatMul with migration strength ALPHA in "
                      "[0, 1] (default 0.5)")
          ->expected(0, 1)
          ->type_name("[ALPHA]");
  cmd->add_flag("--progress", o->progress, "Show calibration progress even when not a terminal");
  cmd->callback([o, exit_code] { *exit_code = quantize_command(*o); });
}

}  // namespace brink::cli
