// INT8 2-D convolution in NHWC layout (u8 input, s8 weights, exact int32 accumulation), as an
// indirect GEMM on the INT8 GEMM micro-kernels (qgemm.h, qgemm_ukernel.h): the design of
// ConvNhwcF32 (conv.h), XNNPACK's igemm.
//
// Create (QConvNhwcU8::create): the weights [M, C/group, kh, kw] are packed, per group, into
// blocks of NR output channels, each [taps][C/group rounded up to 4, in groups of 4][NR][4]
// (tap-major, then input channel: the K order of the micro-kernel, each tap's channels
// zero-padded to a multiple of 4); the per-channel constant bias - (x_zero - a_bias) * colsum
// is folded once. Prepare builds the indirection table for the load-time input size: for
// each tile of MR output pixels and each tap, the offset of the input pixel that tap reads,
// or -1 for padding, which reads a row filled with x_zero (contributing exactly 0, as
// (x_zero - x_zero) * w). Run computes tiles of MR pixels x NR channels with the
// requantization (QuantOutput) fused into the kernel's epilogue.
//
// A 1x1 stride-1 unpadded convolution needs no table: its A rows are the input pixels.
// Grouped convolutions run one GEMM per group at a channel offset; depthwise convolutions
// work too but waste most of each vector (they belong to a depthwise kernel). Input sizes
// other than the prepared one get their own table, built on first use and cached.
//
// With few input channels per group (a network's first layer: C = 3; depthwise) a tap is too
// little work per row pointer (and would be padded from 3 to 4): the kernel then runs with one
// "tap" of K = kh*kw*C bytes per pixel, which each tile copies from the input (im2col of
// MR pixels, a few hundred bytes, reused by all blocks of output channels; a kernel row
// inside the image is one copy of kw*C contiguous bytes, with group 1 and dilation 1).
//
// Everything create() computes from the weights lives in one 64-byte aligned blob, so that a
// .brink package can store it and a later load adopt it in place (create_prepacked):
//   [64-byte header: magic, version, x_zero, exact flag, sizes]
//   [packed weights, rounded up to 64 bytes][folded per-channel constants (int32), to 64]
// packed_layout() names the packing exactly (ISA, MR x NR, packed K, im2col); adopting a blob
// of another layout, size, or x_zero is refused.
//
// Limits: each image (H*W*C bytes) must be addressable with 32-bit offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "brink/status.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/qgemm.h"

namespace brink::kernels {

namespace qgemm_detail {
struct QUkernel;
}

class QConvNhwcU8 {
 public:
  // Packs `w` ([M, C/group, kh, kw] s8, ONNX layout) and `bias` ([M] int32 or nullptr) for
  // `isa` (which must be supported). p.activation is ignored (clamping is QuantOutput's).
  // x_zero is the input zero point: padding reads it.
  static Result<std::unique_ptr<QConvNhwcU8>> create(const Conv2dParams& p, const int8_t* w,
                                                     const int32_t* bias, uint8_t x_zero, QIsa isa);
  // Adopts a blob packed earlier by create() (a .brink package's, kept alive by `owner`):
  // `layout` and `bytes` must be exactly what create() makes for `p`, `x_zero` and `isa`, and
  // `packed` 64-byte aligned, else an error naming the difference.
  static Result<std::unique_ptr<QConvNhwcU8>> create_prepacked(const Conv2dParams& p,
                                                               const std::string& layout,
                                                               const void* packed, size_t bytes,
                                                               std::shared_ptr<const void> owner,
                                                               uint8_t x_zero, QIsa isa);
  ~QConvNhwcU8();

  // Names the blob's layout exactly: kernel, int8 ISA, MR x NR, packed K per block, im2col.
  std::string packed_layout() const;
  const void* packed_data() const { return blob_.get(); }
  size_t packed_bytes() const { return blob_bytes_; }

  // Builds the indirection table for `s` now (the load-time input size), so that runs with
  // that size never take the cache's lock.
  Status prepare(const Conv2dSpatial& s);

  // y [batch, out_h, out_w, M] from x [batch, in_h, in_w, C] (u8, zero point x_zero), with
  // the output stage `out` (scale per output channel or per tensor). Splits the work over
  // `pool` (nullptr: the calling thread).
  Status run_u8(const uint8_t* x, const QuantOutput& out, uint8_t* y, int64_t batch,
                const Conv2dSpatial& s, ThreadPool* pool) const;
  Status run_f32(const uint8_t* x, const QuantOutput& out, float* y, int64_t batch,
                 const Conv2dSpatial& s, ThreadPool* pool) const;

  QIsa isa() const { return isa_; }
  const Conv2dParams& params() const { return p_; }
  uint8_t x_zero() const { return x_zero_; }
  // Bytes held: packed weights, folded constants and the indirection tables built so far.
  size_t memory_bytes() const;

  struct Plan;

 private:
  QConvNhwcU8() = default;
  // Validates `p` and sets the sizes of the packing (no blob yet).
  static Result<std::unique_ptr<QConvNhwcU8>> make_layout(const Conv2dParams& p, uint8_t x_zero,
                                                          QIsa isa);
  // Points packed_ and offset_ into blob_.
  void adopt_blob();
  Result<std::shared_ptr<const Plan>> make_plan(const Conv2dSpatial& s) const;
  Result<std::shared_ptr<const Plan>> plan_for(const Conv2dSpatial& s) const;
  Status run(const uint8_t* x, const QuantOutput& out, void* y, bool f32, int64_t batch,
             const Conv2dSpatial& s, ThreadPool* pool) const;

  Conv2dParams p_;
  QIsa isa_ = QIsa::kPortable;
  const qgemm_detail::QUkernel* uk_ = nullptr;
  uint8_t x_zero_ = 0;
  int64_t cg_ = 0, cg4_ = 0, mg_ = 0, ks_ = 0;  // cg4_: K bytes per tap in the packing
  int64_t nblocks_ = 0;                         // blocks of NR output channels per group
  size_t block_bytes_ = 0;                      // packed bytes per block: ks * cg4 * NR
  bool exact_ = false;                          // some weight pair could saturate vpmaddubsw
  // Few input channels (a first layer's 3): the taps of a pixel are copied per tile into one
  // row of kdim_ = ks * cg bytes (im2col of one tile), K = kdim_ padded to 4 once.
  bool im2col_ = false;
  int64_t kdim_ = 0;
  int64_t kpacked_ = 0;                         // K bytes per column of a block
  size_t weight_bytes_ = 0, offset_bytes_ = 0;  // the blob's two parts, each rounded to 64
  size_t blob_bytes_ = 0;                       // header + both parts
  std::shared_ptr<const uint8_t> blob_;         // owned, or the package's mapping
  const int8_t* packed_ = nullptr;   // [group][block][tap][cg4 / 4][NR][4] (im2col: one tap)
  const int32_t* offset_ = nullptr;  // [group][block][NR]: bias - (x_zero - a_bias) * colsum
  std::vector<uint8_t> zero_row_;    // cg4 + 64 bytes of x_zero
  std::shared_ptr<const Plan> prepared_;
  mutable std::mutex mu_;
  mutable std::vector<std::shared_ptr<const Plan>> cache_;
};

}  // namespace brink::kernels
