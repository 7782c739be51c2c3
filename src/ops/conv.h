// What conv.cc shares with the fused convolution (fused_conv.cc, brink.Conv): attribute
// parsing, output-shape inference and the reference kernel, so that brink.Conv has exactly
// the semantics of ONNX Conv and its reference path is the ONNX oracle itself.
#pragma once

#include <string>
#include <vector>

#include "ops/op.h"

namespace brink::ops {

// The attributes Conv and ConvTranspose share, with defaults filled in for `n` spatial dims.
struct ConvAttrs {
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
  std::vector<int64_t> kernel_shape;  // empty: taken from W
  std::vector<int64_t> strides, dilations, pads, output_padding, output_shape;
};

// Parses the attributes for `n` spatial dims; returns an error message, empty when valid.
std::string parse_conv_attrs(const ir::Node& node, size_t n, bool transpose, ConvAttrs* a);

// Output size and leading pad of spatial dim `i` of a Conv with input size `in` and kernel
// size `k`; an error message if the kernel does not fit.
std::string conv_output_dim(const ConvAttrs& a, size_t i, int64_t in, int64_t k, int64_t* out,
                            int64_t* pad_begin);

// Type checks of inputs X, W and B (one float dtype).
Status check_conv_types(const InferContext& ctx);

// The output type of Conv (or ConvTranspose) for X of type `xt` in NCHW order (which may
// differ from ctx.input_type(0): brink.Conv passes its NHWC input permuted) and W, B of the
// node's inputs 1 and 2.
Status infer_conv_output(const InferContext& ctx, const TensorType& xt, bool transpose,
                         TensorType* out);

// Prepare-time checks: the rank is one the reference handles and the attributes parse.
Result<ConvAttrs> prepare_conv(const KernelCreateContext& c, bool transpose);

// The reference Conv: y (allocated with the inferred NCHW shape) = Conv(x, w) + b, for
// x, w, b of one float dtype (f16, f32, f64) in ONNX layout.
Status conv_reference(const ConvAttrs& a, const Tensor& x, const Tensor& w, const Tensor* b,
                      Tensor& y);

// Whether brink.Conv's fast kernels (fused_conv.cc) take a convolution, from what is known
// before a kernel is made: float32 X, a constant 4-D W (nullptr: not a constant) and, when
// there is a B, a constant 1-D B of W's output channels. The others take its reference
// fallback, which a selective build keeps only when its list names "brink.conv:reference"
// (`brink info --ops` asks this function which packages need it).
bool fast_conv_applies(DataType x, const Shape* w, bool has_bias, const Shape* b);

}  // namespace brink::ops
