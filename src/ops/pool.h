// What pool.cc shares with brink's layout-aware pools (fused_pool.cc: brink.MaxPool,
// brink.AveragePool, brink.GlobalAveragePool, brink.GlobalMaxPool): attribute parsing,
// output sizes and the reference kernels, so that the brink pools have exactly the ONNX
// semantics and their reference path is the ONNX oracle itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/op.h"

namespace brink::ops {

enum class PoolKind { kMax, kAverage, kLp };

// What one opset version of a pooling op accepts.
struct PoolVersion {
  PoolKind kind = PoolKind::kMax;
  bool indices = false;            // MaxPool's second output and storage_order (8+)
  bool ceil_mode = false;          // 10+ (LpPool 18+)
  bool dilations = false;          // MaxPool 10+, AveragePool 19+, LpPool 18+
  bool count_include_pad = false;  // AveragePool 7+
  bool int8 = false;               // MaxPool 12+: int8 and uint8 inputs
};

struct PoolAttrs {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel, strides, dilations, pads;
  int64_t ceil_mode = 0, storage_order = 0, count_include_pad = 0, p = 2;
};

// Parses the attributes for `n` spatial dims; returns an error message, empty when valid.
std::string parse_pool_attrs(const ir::Node& node, size_t n, const PoolVersion& v, int64_t opset,
                             PoolAttrs* a);

// Output size and pads of spatial dim `i` for an input of size `in` (auto_pad and ceil_mode
// applied); an error message if the window does not fit.
std::string pool_output_dim(const PoolAttrs& a, size_t i, int64_t in, int64_t* out,
                            int64_t* pad_begin, int64_t* pad_end);

// Checks input X: a pool float type (or int8/uint8 when `int8`) of rank >= 3 when known.
Status check_pool_input(const InferContext& ctx, bool int8);

// The reference MaxPool / AveragePool / LpPool over x [N, C, spatial...] (1 to 3 spatial
// dims) into y, allocated with the output shape; `indices` (i64, y's shape) or nullptr.
Status pool_reference(PoolKind kind, const PoolAttrs& a, const Tensor& x, Tensor& y,
                      Tensor* indices);

// The reference global pool over x [N, C, spatial...] into y [N, C, 1, ...], summing in
// double; `p` is LpPool's exponent.
void global_pool_reference(PoolKind kind, int64_t p, const Tensor& x, Tensor& y);

}  // namespace brink::ops
