// Depthwise 2-D convolution (group == channels, channel multiplier 1) in NHWC, float32.
//
// The layout MobileNet/EfficientNet depthwise layers want: every output pixel is, per
// channel, a dot product of kh*kw input pixels with that channel's taps, so the kernel
// vectorizes over channels (16 per vector on AVX-512, 8 on AVX2, 4 on NEON; the portable
// variant is scalar) and walks taps with FMA. Weights are packed once at create() into
// channel blocks, tap-major, zero-padded, so every vector load of weights is full.
//
// Interior output pixels (all taps inside the image) take unrolled fast paths for 3x3 and
// 5x5 at strides 1 and 2; border pixels and every other kernel/stride/dilation take a
// general path in which padding contributes nothing. Bias, residual (a skip connection added
// before the activation) and the activation are applied in registers for none, Relu, Clip,
// HardSwish, Sigmoid and SiLU (compact device builds: Sigmoid and SiLU over each output row as
// it is finished, still in L1), any other activation by apply_activation over the finished
// tile. See
// depthwise_conv_impl.h for the loop structure.
//
// Limits: float32 only; channel multiplier 1 only (group == C == M); 2-D only.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace brink::kernels {

// True when a 2-D convolution runs on DepthwiseConvNhwc: one input and one output channel
// per group (ops/fused_conv.cc; `brink info --ops` asks the same).
constexpr bool is_depthwise(int64_t group, int64_t in_channels, int64_t out_channels) {
  return group > 1 && group == in_channels && out_channels == in_channels;
}

// The unrolled row a layer's interior output pixels take, chosen by the kernel's width,
// stride and dilation along W; every other shape takes the general row. `brink info --ops`
// lists a package's rows by name ("brink.depthwise:k3s1") so that a selective build keeps
// only those (ops::depthwise_path_selected).
enum class DepthwiseRow : uint8_t { kGeneral, k3s1, k3s2, k5s1, k5s2 };

constexpr DepthwiseRow depthwise_row(int64_t kernel_w, int64_t stride_w, int64_t dilation_w) {
  if (dilation_w != 1) return DepthwiseRow::kGeneral;
  if (kernel_w == 3 && stride_w == 1) return DepthwiseRow::k3s1;
  if (kernel_w == 3 && stride_w == 2) return DepthwiseRow::k3s2;
  if (kernel_w == 5 && stride_w == 1) return DepthwiseRow::k5s1;
  if (kernel_w == 5 && stride_w == 2) return DepthwiseRow::k5s2;
  return DepthwiseRow::kGeneral;
}

constexpr std::string_view depthwise_row_name(DepthwiseRow row) {
  switch (row) {
    case DepthwiseRow::k3s1:
      return "k3s1";
    case DepthwiseRow::k3s2:
      return "k3s2";
    case DepthwiseRow::k5s1:
      return "k5s1";
    case DepthwiseRow::k5s2:
      return "k5s2";
    case DepthwiseRow::kGeneral:
      break;
  }
  return "general";
}

// Every row, for listings that cannot tell which a layer takes (weights of unknown shape).
inline constexpr DepthwiseRow kDepthwiseRows[] = {DepthwiseRow::k3s1, DepthwiseRow::k3s2,
                                                  DepthwiseRow::k5s1, DepthwiseRow::k5s2,
                                                  DepthwiseRow::kGeneral};

// Channels are packed in blocks of the ISA's vector lanes (16 on AVX-512, 8 on AVX2, 4 on
// NEON). A channel count that is not a multiple of the block leaves a partial last block,
// which takes the partial-block row (masked loads and stores), listed as "partial". A
// multiple of 16 fills whole blocks on every ISA.
inline constexpr std::string_view kDepthwisePartialRow = "partial";
inline constexpr int64_t kDepthwiseWidestBlock = 16;

struct DepthwiseConvShape {  // NHWC, channel multiplier 1
  int64_t batch, in_h, in_w, channels, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
      dilation_h, dilation_w, pad_top, pad_left;  // bottom/right padding follows from out_h/out_w
};

class DepthwiseConvNhwc {
 public:
  // weights: ONNX layout [C, 1, kh, kw]; bias: [C] or nullptr. Packs at prepare.
  // Returns nullptr when the shape is not handled (caller falls back to reference): no
  // channels, an empty kernel, or an `isa` this machine cannot run.
  static std::unique_ptr<DepthwiseConvNhwc> create(int64_t channels, int64_t kernel_h,
                                                   int64_t kernel_w, const float* weights,
                                                   const float* bias, const Activation& act,
                                                   Isa isa);

  // The row that a layer of this shape needs and this build left out (a selective build keeps
  // those its list names: ops::depthwise_path_selected), "" when it has them all. Callers
  // check before create(): run() assumes the rows are there.
  static std::string_view missing_row(int64_t channels, int64_t kernel_w, int64_t stride_w,
                                      int64_t dilation_w, Isa isa);

  // x: [N, in_h, in_w, C]; residual: nullptr or [N, out_h, out_w, C] added before the
  // activation; y: [N, out_h, out_w, C]. Must not heap-allocate; const and thread-safe.
  // shape.channels/kernel_h/kernel_w must equal create()'s. Work is split over `pool`
  // (nullptr: the calling thread) in bands of output rows over batch x out_h, and also in
  // channel blocks when there are fewer rows than tasks (7x7 layers).
  void run(const DepthwiseConvShape& shape, const float* x, const float* residual, float* y,
           ThreadPool* pool) const;

  Isa isa() const { return isa_; }
  int64_t channels() const { return channels_; }
  int64_t kernel_h() const { return kernel_h_; }
  int64_t kernel_w() const { return kernel_w_; }

 private:
  DepthwiseConvNhwc() = default;

  Isa isa_ = Isa::kPortable;
  int64_t channels_ = 0, kernel_h_ = 0, kernel_w_ = 0;
  int64_t block_ = 1;           // channels per packed block: the ISA's vector lanes
  std::vector<float> weights_;  // [blocks][kh*kw][block], zero past `channels`
  std::vector<float> bias_;     // [blocks*block], zeros without a bias
  Activation act_;
};

}  // namespace brink::kernels
