// Per-layer time of the FP32 and the quantized model as Brink's runtime executes them, for the
// quantize report (brink quantize prints it after the accuracy table; the JSON report has it
// under each layer's "time" and in "totals").
//
// Each model (the prepared FP32 reference and the quantized output, as they are: no extra
// outputs, so the runtime fuses exactly as it would in production) is loaded into a Session
// and run on the compared samples: one untimed warm-up run, then `runs` rounds over the
// samples, each run timing every step (CompiledModel::run with step_seconds, what
// `brink bench --profile` uses). A step's time is its median over all those runs; the model's
// latency is the p50 of the whole runs.
//
// The runtime's steps are the graph after its passes: Conv + Add + Relu became brink.Conv, a
// QDQ Conv became brink.QConv, and so on. A fused node keeps the name of the node it was built
// around (the Conv's, the Add's; int8-dynamic's MatMulInteger is "<layer>_quant"), so a report
// layer is mapped to a step by its node name first, then by its output tensor (the FP32 tensor in
// the reference, the DequantizeLinear's output or the FP32 name in the quantized model; each also
// as "<name>_nhwc", the name the NHWC layout pass gives a converted node's output). A step claimed
// by an earlier layer is not counted again: the later layer (e.g. an Add fused into the Conv before
// it) gets no time and a note naming the node it was fused into; a layer with no step at all says
// "fused away". Steps no layer claims (standalone QuantizeLinear / DequantizeLinear, layout
// transposes, unfused activations, reshapes) are summed as "other". The op column names the op the
// runtime actually ran ("brink.QConv", or "Conv" where the runtime kept a layer in FP32).
#pragma once

#include <cstdint>
#include <string>

#include "brink/status.h"
#include "quant/dataset.h"
#include "quant/quantize.h"

namespace brink::quant {

// Profiles both models of `result` on the first `num_samples` samples of `data` (`runs`
// rounds, >= 1) and fills each layer's fp32_time / quant_time and report.timing.
Status time_layers(QuantizeResult& result, const Dataset& data, int64_t num_samples, int runs,
                   int num_threads);

// The per-layer time table (empty when not measured).
std::string format_timing_table(const QuantizeReport& report);

}  // namespace brink::quant
