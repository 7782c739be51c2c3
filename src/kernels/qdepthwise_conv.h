// Quantized depthwise 2-D convolution in NHWC: u8 activations, s8 weights, exact int32
// accumulation, per-channel (or per-tensor) float requantization back to u8.
//
// What it computes, per output pixel and channel c (ONNX QLinearConv / ConvInteger + requant):
//   acc = bias[c] + sum over taps inside the image of (x - x_zero) * w[c][tap]   (exact int32)
//   y   = clamp(nearbyint(float(acc) * scale[c]) + zero_point, min, max)
// float(acc) is the int32 rounded to float (as static_cast<float>), the product is one float
// multiply, nearbyint rounds half to even. Padding contributes nothing (it reads as x_zero).
// Every ISA variant computes bit-identical results; the tests compare for equality.
//
// Design (the f32 kernel in depthwise_conv.h is the model): channels are vectorized, so
// every output pixel is a dot product over kh*kw taps per channel lane.
//   - The zero point is folded away at create(): bias'[c] = bias[c] - x_zero * sum_t w[c][t],
//     and padding taps point at a row of x_zero bytes, so the inner loop multiplies raw u8
//     inputs by the weights: sum_t x_t * w_t + bias' is exactly the formula above.
//   - Weights are widened to int16 and packed per block of B channels (B = 32 on AVX-512,
//     16 on AVX2, 8 on NEON, 1 portable) in pairs of taps: for pair p the block holds
//     (w[c][2p], w[c][2p+1]) per channel, zero for the odd kernel's missing last tap. On
//     x86 one vpmaddwd multiplies two taps of 16 (8) channels at once: the two taps' input
//     bytes are widened to int16 (vpmovzxbw) and interleaved (vpunpckl/hwd), which puts the
//     block's channels in a lane-permuted "slot" order; weights, bias' and the per-run
//     scales are laid out in that order, and the saturating int32->int16 pack undoes it.
//     NEON deinterleaves the pair with vld2q_s16 and uses widening vmlal_s16 in natural order.
//   - With AVX-512 VNNI (and at least 64 channels) four taps go through one vpdpbusd instead:
//     blocks of 64 channels, weights kept s8 in quads of taps; the four taps' input bytes are
//     interleaved in registers (vpunpckl/hbw then vpunpckl/hwd, per 128-bit lane) into four
//     vectors of 16 channels x 4 taps, so slot s = 16 r + 4 L + j holds channel 16 L + 4 r + j;
//     the two saturating packs (dword -> word -> byte) restore channel order. About half the
//     shuffles per multiply-accumulate of the pair path, and no widening of the inputs.
//   - Requantization happens in registers: acc -> float * scale -> round to nearest even
//     (cvtps2dq / fcvtns) -> saturating pack to int16 -> + zero_point (saturating) -> clamp
//     to [min, max] -> narrow to u8.
//   - A run builds, per output row, the address of every tap of every pixel (indirection;
//     padding taps address the x_zero row), so kernel size, stride, dilation and padding are
//     all handled by one loop, and input sizes may change from run to run with no cached
//     state. Work is split over `pool` in bands of output rows (batch x out_h).
//
// The packed weights and bias' are one 64-byte aligned blob ([64-byte header][weights,
// rounded to 64][bias', rounded to 64]), so that a .brink package can store it and a later
// load adopt it in place (create_prepacked); packed_layout() names the packing exactly.
//
// Limits: the int32 accumulator must not overflow (|bias| + kh*kw*255*128 < 2^31);
// zero_point must lie in [0, 255]; scales must be finite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brink/status.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"

namespace brink::kernels {

// Output requantization: y = clamp(nearbyint(acc * scale[c]) + zero_point, min, max).
struct QRequant {
  const float* scale = nullptr;  // [C] when per_channel, else scale[0] for every channel
  bool per_channel = true;
  int32_t zero_point = 0;  // in [0, 255]
  uint8_t min = 0, max = 255;
};

class DepthwiseQConvNhwcU8 {
 public:
  // p: group == in_channels == out_channels (channel multiplier 1), positive kernel, strides
  // and dilations; p.activation is ignored (fold it into QRequant's min/max). w: [C, 1, kh, kw]
  // (ONNX layout); bias: [C] or nullptr. An error names what does not fit.
  static Result<std::unique_ptr<DepthwiseQConvNhwcU8>> create(const Conv2dParams& p,
                                                              const int8_t* w, const int32_t* bias,
                                                              uint8_t x_zero, Isa isa);

  // Adopts a blob made by create() (a .brink package's, kept alive by `owner`): `layout` and
  // `bytes` must be exactly what create() makes for `p`, `x_zero` and `isa`, and `packed`
  // 64-byte aligned, else an error naming the difference.
  static Result<std::unique_ptr<DepthwiseQConvNhwcU8>> create_prepacked(
      const Conv2dParams& p, const std::string& layout, const void* packed, size_t bytes,
      std::shared_ptr<const void> owner, uint8_t x_zero, Isa isa);

  // Names the blob's layout exactly: kernel, ISA, channels per block, tap pairs.
  std::string packed_layout() const;
  const void* packed_data() const { return blob_.get(); }
  size_t packed_bytes() const { return blob_bytes_; }

  // x: [batch, in_h, in_w, C] u8; y: [batch, out_h, out_w, C] u8 (must not overlap x).
  // Const and thread-safe; allocates per-run scratch (scales in slot order, tap addresses).
  Status run(const uint8_t* x, const QRequant& out, uint8_t* y, int64_t batch,
             const Conv2dSpatial& s, ThreadPool* pool) const;

  Isa isa() const { return isa_; }
  const Conv2dParams& params() const { return p_; }
  size_t memory_bytes() const;

 private:
  DepthwiseQConvNhwcU8() = default;
  // Validates `p` and sets the sizes of the packing (no blob yet).
  static Result<std::unique_ptr<DepthwiseQConvNhwcU8>> make_layout(const Conv2dParams& p,
                                                                   uint8_t x_zero, Isa isa);

  Conv2dParams p_;
  Isa isa_ = Isa::kPortable;
  uint8_t x_zero_ = 0;
  int64_t block_ = 1;                    // channels per packed block (B)
  int64_t blocks_ = 0;                   // ceil(C / B)
  bool vnni_ = false;                    // the AVX-512 VNNI quad path (VNNI CPU, C >= 64)
  int64_t group_taps_ = 2;               // taps per packed group: 2 (pairs), 4 (VNNI quads)
  int64_t groups_ = 0;                   // ceil(kh * kw / group_taps)
  size_t w_bytes_ = 0, blob_bytes_ = 0;  // the weights (rounded to 64); the whole blob
  std::shared_ptr<const uint8_t> blob_;  // owned, or a package's mapping
  // [blocks][groups][B][group_taps] in slot order: int16 (pairs) or int8 (VNNI quads).
  const void* w_ = nullptr;
  const int32_t* bias_ = nullptr;      // [blocks][B], slot order, x_zero folded in
  std::vector<int64_t> slot_channel_;  // [B]: the channel (within its block) of each slot
  std::vector<uint8_t> zero_row_;      // blocks * B + 64 bytes of x_zero: the padding tap
};

namespace qdepthwise_internal {

// What one ISA variant needs to compute `count` output pixels of one row.
struct RowArgs {
  const uint8_t* const* taps;  // [count][groups * taps per group]: each tap's pixel address
  const int16_t* w;            // packed weights (pairs)
  const int8_t* w8;            // packed weights (VNNI quads)
  const int32_t* bias;         // [blocks][B]
  const float* scale;          // [blocks][B], slot order
  uint8_t* y;                  // first output pixel; pixels are `channels` apart
  int64_t count, channels, blocks, pairs;  // pairs: the groups (pairs, or quads for VNNI)
  int32_t zero_point;
  uint8_t min, max;
};

#if defined(__x86_64__)
// The VNNI quad variant (qdepthwise_conv_avx512vnni.cc): 64-channel blocks, `pairs` = quads.
void qdepthwise_row_avx512vnni(const RowArgs& a);
#endif

}  // namespace qdepthwise_internal

}  // namespace brink::kernels
