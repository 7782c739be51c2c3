// Automatic fallback: quantize, measure the accuracy on evaluation data, and put the most
// sensitive layers back in float until an accuracy target holds (`brink quantize
// --accuracy-target T --eval DATA`, and `--mode mixed`).
//
// The metric compares the quantized model with the FP32 model (the quantizer's prepared model),
// both run by Brink on every sample of the evaluation data:
//   cosine  the mean over samples of the cosine similarity of each output (flattened) with
//           FP32's, the worst output when there are several; the target T is a floor, in (0, 1]
//           (0.99 or 0.999 are typical): met when cosine >= T;
//   top1    for a classifier (one float output, [batch, classes] or [classes]): the top-1 points
//           lost vs FP32, a ceiling T in [0, 100] (0.5 is typical): met when the loss <= T. With
//           labels it is FP32's top-1 accuracy minus the quantized model's (in %-points, as
//           `brink eval` prints it as "drop"); without labels FP32's own predictions serve as the
//           labels, so it is 100 - the top-1 agreement (%).
//
// The search (one quantize_model call per candidate model; calibration runs once, its ranges
// are reused):
//   1. Quantize every layer; if the metric meets the target, stop: nothing falls back.
//   2. Sensitivity: for each quantized layer (LayerReport), quantize all layers but that one and
//      measure the model output's SQNR vs FP32 (dB, over all samples; the worst output). The
//      layer's sensitivity is the gain over the all-quantized model's SQNR: what the model
//      gains from that one layer in float. This costs one evaluation per layer, so it is
//      affordable where "all quantized but one" runs are (digits CNN: 10 layers, well under a
//      second); it measures each layer in its real context, with every other layer's error.
//   3. Fall back the most sensitive layers first: the top k, k = 1, 2, 3, ... while there are at
//      most `linear_limit` candidates; for larger models k doubles (1, 2, 4, ...) until the
//      target holds, then a bisection finds the smallest k that meets it. The fallback stops at
//      all but one layer: if even that misses the target, the search fails with one line
//      saying the best it reached (no output is written).
//   mixed: the fallen-back layers first keep their weights as float16 + Cast (fp16's form;
//      layers without weights, such as Add, go to fp32); only if all but one layer in fp16 still
//      miss the target do the most sensitive of them go on to fp32, one by one.
// The returned report lists each fallen-back layer with precision "fp32 (fallback)" or
// "fp16 (fallback)", every measured layer's sensitivity, and AccuracySummary (metric before
// and after, counts, weight bytes before the fallback, evaluations, seconds).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brink/status.h"
#include "ir/graph.h"
#include "quant/dataset.h"
#include "quant/quantize.h"

namespace brink::quant {

enum class AccuracyMetric { kCosine, kTop1 };

// "cosine" or "top1"; anything else is an error naming the choices.
Result<AccuracyMetric> parse_accuracy_metric(const std::string& name);

// The target must be a number in the metric's range: cosine (0, 1], top1 [0, 100].
Status check_accuracy_target(AccuracyMetric metric, double target);

struct AccuracySearchOptions {
  AccuracyMetric metric = AccuracyMetric::kCosine;
  double target = 0.99;
  std::vector<int64_t> labels;  // top1: one per prediction row; empty: agreement with FP32
  bool mixed = false;           // fall back to float16 weights before float32
  int64_t linear_limit = 16;    // more candidates than this: doubling groups + bisection
  int num_threads = 0;
  bool progress = false;  // a `\r` progress line on stderr
};

// Quantizes `model` with `options` (int8 or int8-dynamic; `calibration` as quantize_model wants
// it), then falls back layers until `search.target` holds on `eval` (see the file comment).
// Errors: a target out of range, an empty eval set, top1 on a model that is not a classifier,
// a label count that does not match the predictions, and a target not reachable.
Result<QuantizeResult> quantize_to_accuracy(const ir::Model& model, const Dataset* calibration,
                                            const Dataset& eval, QuantizeOptions options,
                                            const AccuracySearchOptions& search);

}  // namespace brink::quant
