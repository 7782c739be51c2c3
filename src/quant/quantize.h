// The quantizer behind `brink quantize`: FP32 ONNX model in, standard ONNX model out.
//
// Every mode first prepares the model with ONNX-standard rewrites only (passes/passes.h:
// fold_constants, remove_identities, fold_batchnorms, eliminate_dead_code; never the brink-
// domain fusions), so the output stays a model any ONNX runtime runs. Then:
//
// int8 (static, QDQ) emits the layout of ONNX Runtime's
//   quantize_static(quant_format=QDQ, per_channel=True, activation_type=QUInt8, weight_type=QInt8)
// so that runtimes fusing that pattern (Brink's, ORT's) treat both tools' models alike:
//   - Conv / Gemm / MatMul with a constant weight: the weight becomes an int8 initializer
//     ("W_quantized", symmetric, [-127, 127], per output channel: axis 0 for Conv [M, C, kh, kw]
//     and Gemm with transB = 1, axis 1 for MatMul / Gemm B [K, N]) read through a
//     DequantizeLinear; a constant bias becomes int32 with scale x_scale * w_scale[c], zero
//     point 0, through a DequantizeLinear (Gemm: only with alpha = beta = 1);
//   - every activation that feeds or leaves a quantized op gets one QuantizeLinear ->
//     DequantizeLinear pair (u8 asymmetric from calibration, or s8 symmetric), shared by all
//     consumers; a quantized graph output keeps its name on the DequantizeLinear's output;
//   - Add, Mul, Concat, GlobalAveragePool: inputs and output quantized (constant inputs become
//     u8 / s8 initializers through a DequantizeLinear, as ORT does);
//   - Relu / Clip after a quantized tensor read by nothing else: removed with u8 activations,
//     the producer writing the activation's output directly (the Q/DQ range clamps as the
//     activation did), as ORT does; kept with s8 activations;
//   - Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Slice, MaxPool, AveragePool: when their
//     input is quantized, their output is too, with the input's scale and zero point;
//   - everything else (Sigmoid, Softmax, Resize, ...) stays float (ORT quantizes some of those;
//     Brink leaves them to the float kernels), as do MatMuls without a constant operand;
//   - transformers: an Add whose output only feeds a layer normalization (LayerNormalization's
//     X, or ReduceMean(x) and Sub(x, mean) in the decomposed form of opset < 17 exports),
//     directly or through other such Adds (post-LN residuals, the embedding sums, the bias Add
//     of the projection into the residual), or feeds one and the next residual Add (pre-LN),
//     stays float and reads float tensors, as ORT's and Intel
//     Neural Compressor's transformer recipes keep LayerNorm and its inputs float: LayerNorm
//     divides by each row's own spread, so one per-tensor 8-bit scale for the residual stream
//     (set by its outlier rows and channels) leaves the ordinary rows a few levels. The MatMuls
//     with constant weights around it keep int8 inputs and weights.
//   After calibration, a tensor whose range 8 bits cannot carry is left float, and the nodes
//   reading or writing it run in float (reading float tensors); each one is a warning line
//   (QuantizeReport::warnings):
//   - a sentinel: a non-finite range, or a magnitude past 1e6 (kMaxActivationMagnitude). An
//     attention mask's "minus infinity" (-3.4e38, -1e9, -1e30) is one. A real activation does
//     not get there (normalized networks stay within +-1e4), and a u8 step of 1e6 / 255 ~ 4e3
//     would erase any real value sharing the tensor; a mask in float is exact.
//   - a swamped Add: when one input's whole range (from 0) is narrower than one 8-bit step of
//     the sum's range, the quantized sum cannot represent that input at all (a -1e4 mask added
//     to attention scores of a few units, older BERT exports). The dominant input and the sum
//     stay float. (A trained residual branch is never that small next to its sum.)
// int8-dynamic emits ORT's quantize_dynamic layout for MatMul / Gemm with a constant weight:
//   A -> DynamicQuantizeLinear -> MatMulInteger(A_q, W_q, A_zp, W_zp) -> Cast(float)
//     -> Mul(a_scale * w_scale) [-> Add(beta * C) for Gemm]; Conv stays float.
// int4 (weight-only) turns MatMul / Gemm with a constant weight into ONNX Runtime's
//   com.microsoft MatMulNBits (4-bit blocks of int4_block_size along K, symmetric or with
//   zero points), exactly as ORT's MatMul4BitsQuantizer does; see quantize_int4.cc.
// fp16 stores each float32 initializer of 16+ elements (within float16's range) as a float16
//   initializer followed by a Cast to float (Brink folds the Cast at load).
//
// int8 accuracy tools, run on the prepared float model before calibration (options below):
// --equalize and --bias-correction (quant/equalize.h), --smooth-quant (quant/smooth_quant.h).
//
// The input model is never modified. Errors (no quantizable layer, a model whose opset is too
// old for per-channel DequantizeLinear, missing calibration data) are one line each.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "brink/status.h"
#include "ir/graph.h"
#include "quant/calibration.h"
#include "quant/dataset.h"

namespace brink::quant {

enum class QuantMode { kInt8, kInt8Dynamic, kFp16, kInt4 };

// "int8", "int8-dynamic", "fp16", "int4"; anything else is an error naming the choices.
Result<QuantMode> parse_quant_mode(const std::string& name);
const char* quant_mode_name(QuantMode mode);

struct QuantizeOptions {
  QuantMode mode = QuantMode::kInt8;
  CalibrationOptions calibration;   // method, percentile, progress, threads (int8 only)
  bool per_channel = true;          // weights: one scale per output channel
  bool signed_activations = false;  // int8: s8 symmetric activations instead of u8
  // Layers (by LayerReport::name) that int8 and int8-dynamic leave in float: their weights and
  // outputs are not quantized on their account. A tensor such a layer shares with a quantized
  // neighbour keeps that neighbour's Q/DQ pair and the layer reads its DequantizeLinear (as
  // ORT's nodes_to_exclude does), so the neighbours still run as integer kernels.
  std::set<std::string> keep_float;
  // Of those, the layers whose float32 weights are stored as float16 + Cast (fp16's form).
  std::set<std::string> fp16_weights;
  // Activation ranges calibrated earlier with the same data and options (QuantizeResult::ranges
  // of an earlier call); int8 then calibrates only the tensors missing from it.
  const std::map<std::string, Range>* ranges = nullptr;
  // int8 only: accuracy tools applied to the prepared float model before calibration.
  bool equalize = false;            // cross-layer equalization of Conv pairs (quant/equalize.h)
  bool bias_correction = false;     // subtract the weight quantization's mean output error
  bool smooth_quant = false;        // SmoothQuant of LayerNorm -> MatMul (quant/smooth_quant.h)
  double smooth_quant_alpha = 0.5;  // migration strength, in [0, 1]
  int64_t int4_block_size = 32;     // int4: K values per scale (16, 32, 64 or 128)
  bool int4_zero_point = false;     // int4: asymmetric blocks with a uint4 zero point each
  bool int4_embeddings = false;     // int4: embedding tables as 4-bit GatherBlockQuantized
  bool int4_search = true;  // int4 symmetric: least-squares scale per block (false: ORT's RTN)
};

// How the runtime ran one side (FP32 or quantized) of a layer: filled by time_layers
// (quant/layer_timing.h) from Brink's per-node profile of each model.
struct LayerTime {
  bool measured = false;  // false: not profiled, or fused into another layer's node (see note)
  std::string node;       // the runtime node that ran it (fused nodes keep the main op's name)
  std::string op;         // its op type as run: "brink.Conv" (float), "brink.QConv"
  std::string kernel;     // the kernel chosen at load when there was one (LayerInfo::kernel)
  double ms = 0;          // median time per run
  std::string note;       // why there is no time: "fused into 'conv1' (brink.QConv)"
};

// One quantized layer (a node whose weights or activations were quantized).
struct LayerReport {
  std::string name;                       // node name (its first output's name when it has none)
  std::string op;                         // op type in the input model
  std::string precision;                  // "w8a8", "a8", "w8-dynamic", "fp16", "w4-b32"
  std::string fp32_tensor, quant_tensor;  // the output compared (in each model)
  bool compared = false;                  // sqnr_db / cosine measured
  double sqnr_db = 0, cosine = 0;
  int64_t weight_bytes_before = 0, weight_bytes_after = 0;
  // Set by the accuracy search (quant/accuracy_search.h) for each layer it measured: how much
  // the model output's SQNR vs FP32 gains (dB) when only this layer is left in float.
  bool sensitivity_measured = false;
  double sensitivity_db = 0;
  LayerTime fp32_time, quant_time;  // filled by time_layers
};

struct OutputReport {
  std::string name;
  double sqnr_db = 0, cosine = 0;
};

// What the accuracy search (quant/accuracy_search.h) did; `searched` false when it did not run.
struct AccuracySummary {
  bool searched = false;
  std::string metric;     // "cosine", "top1-drop" (with labels) or "top1-disagreement"
  std::string direction;  // ">=" (cosine) or "<=" (points lost)
  double target = 0;
  double before = 0, after = 0;  // the metric with every layer quantized, and as written
  bool met = false;
  int64_t layers = 0, layers_fp32 = 0, layers_fp16 = 0;  // candidates, and fallen back
  int64_t evaluations = 0, eval_samples = 0;
  int64_t weight_bytes_before_fallback = 0;  // weight bytes with every layer quantized
  double seconds = 0;
};

struct QuantizeReport {
  std::string mode, method, weights, activations;  // "int8", "minmax", "per-channel", "u8"
  std::vector<std::string> tools;  // what --equalize / --bias-correction / --smooth-quant did
  // int8: what the quantizer kept float by rule (LayerNorm inputs), one line each.
  std::vector<std::string> float_kept;
  // int8: tensors left float because 8 bits cannot carry their calibrated range, one line each
  // (the CLI prints each as a warning).
  std::vector<std::string> warnings;
  int64_t calibration_samples = 0, compared_samples = 0;
  int64_t quantize_nodes = 0, dequantize_nodes = 0;
  int64_t weight_bytes_before = 0, weight_bytes_after = 0;
  int64_t file_bytes_before = 0, file_bytes_after = 0;  // set by the caller that writes files
  std::vector<LayerReport> layers;
  std::vector<OutputReport> outputs;  // filled by compare_models
  AccuracySummary accuracy;
  // Whole-model latency (filled by time_layers): p50 over runs x samples of one run.
  struct Timing {
    bool measured = false;
    int64_t runs = 0, threads = 0;
    double fp32_p50_ms = 0, quant_p50_ms = 0;
    double fp32_other_ms = 0, quant_other_ms = 0;  // steps no layer claims (Q/DQ, Relu, ...)
  } timing;
};

struct QuantizeResult {
  ir::Model prepared;   // the float model after the standard rewrites (the FP32 reference;
                        // with --equalize / --smooth-quant, after those exact rewrites too)
  ir::Model quantized;  // the output model
  QuantizeReport report;
  std::map<std::string, Range> ranges;  // int8: the calibrated activation ranges, by name
};

// Quantizes `model` (left unchanged). `calibration` is required for kInt8 and unused otherwise.
Result<QuantizeResult> quantize_model(const ir::Model& model, const Dataset* calibration,
                                      const QuantizeOptions& options);

// Measures each layer's output and each model output of the quantized model against the
// prepared FP32 model on the first `num_samples` samples of `data` (both run by Brink):
// SQNR = 10 log10(sum ref^2 / sum (ref - q)^2) in dB (200 when identical), and the cosine.
Status compare_models(QuantizeResult& result, const Dataset& data, int64_t num_samples,
                      int num_threads);

// The report as a readable table (stdout) and as JSON (docs/QUANTIZATION.md).
std::string format_report_table(const QuantizeReport& report);
std::string report_json(const QuantizeReport& report);

}  // namespace brink::quant
