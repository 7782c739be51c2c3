// SmoothQuant (--smooth-quant [ALPHA]; Xiao et al. 2022, "SmoothQuant: Accurate and Efficient
// Post-Training Quantization for Large Language Models") for `brink quantize --mode int8`.
//
// Transformer activations have a few channels with values far larger than the rest, so a
// static per-tensor int8 scale wastes almost all of its 256 levels on them. For Y = X W, the
// per-channel factor s_j moves the difficulty from the activation to the weight:
//     Y = (X diag(1/s)) (diag(s) W),
//     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)     (W_j: row j of W [K, N]; alpha in [0, 1])
// with max|X_j| measured by running the FP32 model on the calibration data. The 1/s must cost
// nothing at run time, so it is folded into what produces X: here, a LayerNormalization over the
// last axis whose scale (gamma) and bias (beta) are constants, which then computes
// LN(x) * gamma / s + beta / s. Every MatMul (and Gemm with transA = 0) reading X at input 0
// with a constant 2-D weight is smoothed with the same s (its weight rows multiplied by s_j;
// the row maxima are taken over all of them). When X has other readers (the residual Add of a
// post-LN block, a graph output), those keep the original LayerNormalization and the MatMuls
// read a copy with the folded gamma / beta (one more LayerNormalization: O(K) per row, against
// the MatMuls' O(K N)). Shape reads X's shape only and does not count.
//
// A MatMul whose input has no such producer is left alone: a separate Mul by 1/s would be
// quantized like every Mul of the QDQ layout, its own input (with the outliers) per tensor too,
// which is what SmoothQuant avoids. The float model computes the same function (up to float
// rounding).
#pragma once

#include <cstdint>

#include "brink/status.h"
#include "ir/graph.h"
#include "quant/dataset.h"

namespace brink::quant {

struct SmoothQuantStats {
  int layer_norms = 0;  // LayerNormalizations whose gamma / beta took 1/s
  int matmuls = 0;      // MatMul / Gemm weights scaled by s
  int duplicated = 0;   // LayerNormalizations copied because their output had other readers
};

// Smooths `model` (float, prepared) in place with activation maxima measured on `data` (at most
// `max_samples` samples; < 0: all). alpha outside [0, 1] is an error.
Result<SmoothQuantStats> smooth_quant(ir::Model& model, const Dataset& data, double alpha,
                                      int64_t max_samples, int num_threads);

}  // namespace brink::quant
