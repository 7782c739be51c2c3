// `brink quantize --mode int4`: weight-only, block-wise INT4 for MatMul / Gemm, in ONNX
// Runtime's com.microsoft MatMulNBits layout (quantize.h has the overview of all modes).
#pragma once

#include <cstdint>
#include <vector>

#include "brink/status.h"
#include "ir/graph.h"
#include "quant/quantize.h"

namespace brink::quant {

// Rewrites the prepared `model` in place: see quantize_int4.cc. Fills report->layers.
Status quantize_int4(ir::Model& model, const QuantizeOptions& options, QuantizeReport* report);

// ORT's blockwise 4-bit quantization (MlasQuantizeBlockwise, column-wise blocks) of one float
// matrix w [k][n] (row-major), in MatMulNBits' layout: b [n][k_blocks][block_size / 2] (k even
// in the low nibble; the padded tail of the last block holds the zero point), scales
// [n][k_blocks], zero_points [n][ceil(k_blocks / 2)] (block g of a column in byte g / 2, low
// nibble when g is even; left empty when symmetric, where the zero point is 8). With `search`
// (symmetric only), each block's scale is instead the one of smallest squared error among ORT's
// and a few that clip the extremes or map them to +7, as llama.cpp-style RTN searches do.
struct Int4Weights {
  std::vector<uint8_t> b, zero_points;
  std::vector<float> scales;
  int64_t k = 0, n = 0, block_size = 0, k_blocks = 0;
};
Int4Weights quantize_int4_blockwise(const float* w, int64_t k, int64_t n, int64_t block_size,
                                    bool zero_point, bool search);

}  // namespace brink::quant
