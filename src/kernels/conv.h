// Fast FP32 2-D convolution in NHWC layout, as an indirect GEMM (XNNPACK's igemm design).
//
// Prepare (ConvNhwcF32::create): the weights [M, C/group, kh, kw] are packed into panels of
// NR output channels (bias first, then K = kh*kw*C/group ordered tap-major, then input
// channel), the micro-kernel set for the ISA is chosen, and for a static input size the
// indirection table is built: for each tile of MR output pixels and each tap, the offset
// of the input pixel that tap reads (-1 for padding, which reads a row of zeros). Run
// computes only: tiles of MR pixels x NR channels, bias, residual z and the activation
// applied to the tile while it is in registers (Relu/Clip) or in L1 (the others).
//
// A 1x1 stride-1 unpadded convolution needs no table: its A rows are the input pixels. With
// few input channels (a network's first layer: C = 3) the kw taps of a kernel row merge into
// one row of kw*C floats (copied with zeros, per run, for the few output columns whose
// kernel rows reach into the left or right padding), so that a row pointer serves 21
// multiply-adds (7x7, C = 3) instead of 3.
// Grouped convolutions run one GEMM per group at a channel offset; depthwise convolutions
// work too (kc = 1) but waste most of each vector: they belong to depthwise_conv.h.
//
// Input sizes other than the prepared one get their own table, built on first use and
// cached (a handful of sizes), so a dynamic-shape model pays for it once per size.
//
// Limits: each image (H*W*C floats) must be addressable with 32-bit offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brink/status.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace brink::kernels {

namespace conv_internal {
struct IgemmConfig;
}

// Everything about a 2-D convolution except the input's spatial size.
struct Conv2dParams {
  int64_t in_channels = 0;   // C
  int64_t out_channels = 0;  // M
  int64_t group = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  Activation activation;
};

// The spatial problem of one run: input and output sizes and the leading pads (the
// trailing pads follow from them).
struct Conv2dSpatial {
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0, pad_top = 0, pad_left = 0;
  bool operator==(const Conv2dSpatial&) const = default;
};

class ConvNhwcF32 {
 public:
  // Packs `w` ([M, C/group, kh, kw], ONNX layout) and `b` ([M] or nullptr) for `isa` (which
  // must be supported). An error for parameters the kernel cannot run (the caller then
  // uses the reference).
  static Result<std::unique_ptr<ConvNhwcF32>> create(const Conv2dParams& p, const float* w,
                                                     const float* b, Isa isa);
  // Adopts weights packed earlier (a .brink package's, kept alive by `owner`): `layout` and
  // `floats` must be exactly what create() would make for `p` and `isa`, else an error.
  static Result<std::unique_ptr<ConvNhwcF32>> create_prepacked(const Conv2dParams& p,
                                                               const std::string& layout,
                                                               const float* packed, size_t floats,
                                                               std::shared_ptr<const void> owner,
                                                               Isa isa);
  ~ConvNhwcF32();

  // Names the packed weights' layout exactly: kernel, ISA, panel widths, row merging.
  std::string packed_layout() const;
  const float* packed_data() const { return packed_.get(); }
  size_t packed_floats() const { return group_floats_ * static_cast<size_t>(p_.group); }

  // Builds the indirection table for `s` now (the load-time input size), so that runs with
  // that size never take the cache's lock.
  Status prepare(const Conv2dSpatial& s);

  // y [batch, out_h, out_w, M] = act(conv(x [batch, in_h, in_w, C]) + b + z), z nullptr or
  // shaped like y; z may be y itself (a residual added in place), x may not. Splits the work
  // over `pool` (nullptr: the calling thread).
  Status run(const float* x, const float* z, float* y, int64_t batch, const Conv2dSpatial& s,
             ThreadPool* pool) const;

  Isa isa() const { return isa_; }
  const Conv2dParams& params() const { return p_; }
  // Bytes held: packed weights plus the indirection tables built so far.
  size_t memory_bytes() const;

  struct Plan;
  struct Block;

 private:
  ConvNhwcF32() = default;
  // Everything but the packed weights: blocks, panel sizes, the zero row.
  static Result<std::unique_ptr<ConvNhwcF32>> make_layout(const Conv2dParams& p, Isa isa);
  Result<std::shared_ptr<const Plan>> make_plan(const Conv2dSpatial& s) const;
  Result<std::shared_ptr<const Plan>> plan_for(const Conv2dSpatial& s) const;
  void choose_splits(int threads, int64_t outer, int64_t tiles, int64_t nblocks,
                     int64_t* pixel_splits, int64_t* block_splits) const;

  Conv2dParams p_;
  Isa isa_ = Isa::kPortable;
  const conv_internal::IgemmConfig* cfg_ = nullptr;
  int64_t cg_ = 0, mg_ = 0, ks_ = 0;
  bool merge_rows_ = false;       // the taps of a kernel row read as one (few input channels)
  int64_t taps_ = 0;              // row pointers per output pixel: ks_, or kernel_h if merged
  int64_t tap_channels_ = 0;      // floats read per row pointer: cg_, or kernel_w * cg_
  std::vector<Block> blocks_;     // one group's blocks of output channels
  size_t group_floats_ = 0;       // packed floats per group
  int64_t blocks_per_chunk_ = 1;  // blocks whose panels fit in the L2 budget together
  std::shared_ptr<float> packed_;
  std::shared_ptr<float> zero_;
  std::shared_ptr<const Plan> prepared_;
  mutable std::mutex mu_;
  mutable std::vector<std::shared_ptr<const Plan>> cache_;
};

// Layout changes for the NCHW entry points: [n, c, hw] <-> [n, hw, c].
void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw, ThreadPool* pool);
void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t hw, ThreadPool* pool);

}  // namespace brink::kernels
