// One registration function per file of operator definitions. op_list.cc calls them all;
// that call list is the one place that says which operators Brink has.
#pragma once

#include "ops/op.h"

namespace brink::ops {

void register_elementwise_ops(
    OpRegistry& r);                     // elementwise.cc: unary, binary, variadic, Where, Cast
void register_conv_ops(OpRegistry& r);  // conv.cc: Conv, ConvTranspose
void register_pool_ops(OpRegistry& r);  // pool.cc: MaxPool, AveragePool, Global*, LpPool
void register_normalization_ops(
    OpRegistry& r);  // normalization.cc: BatchNorm, LayerNorm, InstanceNorm, ...
void register_linalg_ops(OpRegistry& r);  // linalg.cc: MatMul, Gemm, Einsum
void register_reduce_ops(
    OpRegistry& r);  // reduce.cc: Reduce*, ArgMax/Min, Softmax family, TopK, CumSum
void register_shape_ops(
    OpRegistry& r);  // shape_ops.cc: Reshape, Transpose, Concat, Slice, Gather, ...
void register_resize_ops(OpRegistry& r);  // resize.cc: Resize, Upsample, Pad
void register_rnn_ops(OpRegistry& r);     // rnn.cc: LSTM, GRU, RNN
void register_quantized_ops(
    OpRegistry& r);  // quantized.cc: Quantize/DequantizeLinear, QLinear*, *Integer
void register_loss_ops(
    OpRegistry& r);  // loss.cc: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss
void register_signal_ops(
    OpRegistry& r);  // signal.cc: DFT, STFT, window functions, MelWeightMatrix, Det
void register_detection_ops(
    OpRegistry& r);  // detection.cc: NonMaxSuppression, RoiAlign, GridSample
void register_control_flow_ops(OpRegistry& r);  // control_flow.cc: If, Loop, Scan
void register_fused_conv_ops(OpRegistry& r);    // fused_conv.cc: brink.Conv
void register_fused_matmul_ops(OpRegistry& r);  // fused_matmul.cc: brink.MatMul
void register_fused_transformer_ops(
    OpRegistry& r);  // fused_transformer.cc: brink.LayerNormalization, Gelu, Attention
void register_fused_pool_ops(OpRegistry& r);  // fused_pool.cc: brink.MaxPool, AveragePool, Global*
void register_fused_quantized_ops(OpRegistry& r);  // fused_quantized.cc: brink.QConv, QAdd
void register_matmul_nbits_ops(OpRegistry& r);     // matmul_nbits.cc: com.microsoft MatMulNBits

}  // namespace brink::ops
