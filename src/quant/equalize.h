// Accuracy tools for depthwise convnets, applied by `brink quantize --mode int8` to the prepared
// FP32 model (after BatchNorm folding, before calibration):
//
// Cross-layer equalization (--equalize; Nagel et al. 2019, "Data-Free Quantization Through
// Weight Equalization and Bias Correction"). Folding BatchNorm into a depthwise conv gives its
// output channels weight ranges that differ by orders of magnitude, so one per-tensor int8 scale
// rounds the small channels to nothing. For two consecutive convolutions
//     Conv1 -> [Relu | LeakyRelu | nothing] -> Conv2
// where the tensors between them are read by nothing else, positive per-channel scaling commutes
// with the activation (relu(x / s) = relu(x) / s for s > 0), so dividing output channel i of
// Conv1 (its weights and bias) by s_i and multiplying input channel i of Conv2 by s_i computes
// the same function. s_i = sqrt(r1_i / r2_i), with r1_i the range (max |w|) of Conv1's output
// channel i and r2_i that of Conv2's input channel i, makes both ranges sqrt(r1_i * r2_i). Every
// pair of a chain (Conv -> depthwise -> pointwise -> depthwise ...) is equalized in turn, in
// sweeps, until the scales settle (at most `max_sweeps`). Clip (Relu6) is not crossed: its
// upper bound does not commute with scaling; nor are pairs whose weights other nodes share.
//
// Bias correction (--bias-correction; the same paper, section 4.2). Quantizing the weights adds
// an error dW = Wq - W whose effect on the output is biased: E[dW x] != 0 per output channel,
// and a per-tensor scale makes it large for the small channels. For each layer the quantizer
// will quantize (Conv / Gemm / MatMul with a constant float weight), the expected error over
// the calibration data, E[Wq x] - E[W x] = conv(dW, E[x]) averaged over the output positions
// (exact, padding included: the layer is linear in x), is subtracted from the bias. E[x] is the
// mean of the layer's FP32 input over the calibration samples; dW is computed with the same
// symmetric int8 scheme (per channel or per tensor) the quantizer then applies. A Conv or Gemm
// without a bias gets one; a MatMul is corrected through the Add of a constant bias that
// follows it (the usual Linear layer), and skipped otherwise.
#pragma once

#include <cstdint>

#include "brink/status.h"
#include "ir/graph.h"
#include "quant/dataset.h"

namespace brink::quant {

struct EqualizeStats {
  int pairs = 0;   // Conv -> Conv pairs equalized
  int sweeps = 0;  // sweeps over all pairs until the scales settled
};

// Cross-layer equalization of `model` (float, prepared), in place. The output of the model is
// unchanged up to float rounding. A model without any equalizable pair is left as it is.
Result<EqualizeStats> equalize_cross_layer(ir::Model& model, int max_sweeps = 16);

// Bias correction of `model` (float) in place, for int8 weights quantized per channel or per
// tensor, with the layer inputs' means measured on `data` (at most `max_samples` samples; < 0:
// all). Returns the number of layers corrected.
Result<int> correct_bias(ir::Model& model, const Dataset& data, bool per_channel,
                         int64_t max_samples, int num_threads);

}  // namespace brink::quant
