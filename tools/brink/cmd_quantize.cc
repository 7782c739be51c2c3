// brink quantize MODEL.onnx -o OUT.onnx --mode int8|int8-dynamic|fp16|int4 [--calib DATA] ...
//
// Quantizes an FP32 ONNX model into a standard ONNX model (src/quant/quantize.h,
// docs/QUANTIZATION.md), prints a per-layer table (SQNR and cosine against FP32, measured by
// running both models on a few samples) and optionally writes it as JSON (--report). Every
// check runs before anything is written: on an error, nothing is written and the input model
// is never touched; the output and the report are written all or nothing.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "onnx/onnx_io.h"
#include "package/atomic_file.h"
#include "quant/quantize.h"

namespace brink::cli {

namespace {

struct QuantizeCliOptions {
  std::string model, out, mode = "int8", calib, method = "minmax", activation_type = "u8", report;
  double percentile = 99.999;
  bool per_channel = false, per_tensor = false, progress = false;
  int64_t samples = -1;
  int64_t report_samples = 4;
  int threads = 0;
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
  auto mode = quant::parse_quant_mode(o.mode);
  if (!mode) return usage_error(mode.status());
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
  if (!o.report.empty() && (same_file(o.model, o.report) || o.report == o.out))
    return report_error(
        invalid_argument("the report '" + o.report + "' would overwrite the model or the output"));

  auto model = onnx_io::load_onnx_file(o.model);
  if (!model) return report_error(model.status());

  quant::QuantizeOptions qo;
  qo.mode = *mode;
  qo.per_channel = !o.per_tensor;
  qo.signed_activations = o.activation_type == "s8";
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
    auto d = quant::load_dataset(o.calib, quant::model_input_infos(*model), o.samples);
    if (!d) return report_error(d.status());
    data = std::make_unique<quant::Dataset>(std::move(*d));
  } else if (qo.mode == quant::QuantMode::kInt8) {
    return report_error(invalid_argument(
        "--mode int8 needs calibration data: --calib DATA (.npy, .npz or a folder of them)"));
  }

  auto result = quant::quantize_model(*model, data.get(), qo);
  if (!result) return report_error(result.status());

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
  std::fputs(quant::format_report_table(result->report).c_str(), stdout);
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Quantize an FP32 ONNX model to int8 (QDQ, ORT-compatible), fp16 or int4 weights");
  cmd->add_option("model", o->model, "Model file (.onnx, float32)")->required();
  cmd->add_option("-o,--out", o->out, "Quantized model to write (.onnx)")->required();
  cmd->add_option(
      "--mode", o->mode,
      "int8 (static, QDQ; default), int8-dynamic, fp16 or int4 (weight-only MatMulNBits)");
  cmd->add_option("--block-size", o->block_size, "int4: K values per scale, 16/32/64/128 (32)");
  cmd->add_flag("--int4-zero-point", o->int4_zero_point,
                "int4: asymmetric blocks with a 4-bit zero point (default symmetric)");
  cmd->add_flag("--int4-embeddings", o->int4_embeddings,
                "int4: embedding tables as 4-bit GatherBlockQuantized too (default int8 rows)");
  cmd->add_flag("--int4-rtn", o->int4_rtn,
                "int4: ORT's exact round-to-nearest scales (default, symmetric: least-squares "
                "scale per block)");
  cmd->add_option("--calib", o->calib,
                  "Calibration data: an .npz (one array per input), an .npy, or a folder of them");
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
  cmd->add_option("--threads,-t", o->threads, "Threads (0: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--progress", o->progress, "Show calibration progress even when not a terminal");
  cmd->callback([o, exit_code] { *exit_code = quantize_command(*o); });
}

}  // namespace brink::cli
