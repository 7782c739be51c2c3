// Quantized depthwise convolution: packing, the per-row tap addresses, threading, dispatch,
// and the portable variant (plain C++, one channel at a time: the fallback, not a fast path).
#include "kernels/qdepthwise_conv.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/memory.h"
#include "kernels/elementwise.h"  // BRINK_DECLARE_PER_ISA, BRINK_ISA_DISPATCH
#include "kernels/qgemm.h"        // qisa_for: whether this CPU has VNNI

namespace brink::kernels {

using qdepthwise_internal::RowArgs;

BRINK_DECLARE_PER_ISA(void qdepthwise_row(const RowArgs& a))

namespace portable {

void qdepthwise_row(const RowArgs& a) {
  const int64_t c_n = a.channels, pairs = a.pairs;
  for (int64_t i = 0; i < a.count; ++i) {
    const uint8_t* const* taps = a.taps + i * pairs * 2;
    uint8_t* y = a.y + i * c_n;
    for (int64_t c = 0; c < c_n; ++c) {
      // Unsigned arithmetic wraps like the SIMD lanes (the sum must fit int32 anyway).
      uint32_t acc = static_cast<uint32_t>(a.bias[c]);
      const int16_t* w = a.w + c * pairs * 2;
      for (int64_t p = 0; p < pairs; ++p) {
        acc += static_cast<uint32_t>(int32_t{taps[2 * p][c]} * w[2 * p]);
        acc += static_cast<uint32_t>(int32_t{taps[2 * p + 1][c]} * w[2 * p + 1]);
      }
      float f = static_cast<float>(static_cast<int32_t>(acc)) * a.scale[c];
      f = std::nearbyint(std::clamp(f, -65536.0f, 65536.0f));
      const int32_t v = static_cast<int32_t>(f) + a.zero_point;
      y[c] = static_cast<uint8_t>(std::clamp<int32_t>(v, a.min, a.max));
    }
  }
}

}  // namespace portable

namespace {

// Channels per block: the lanes of one variant's accumulators.
int64_t block_width(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return 32;
    case Isa::kAvx2:
      return 16;
    case Isa::kNeon:
      return 8;
    case Isa::kPortable:
      return 1;
  }
  return 1;
}

// The channel (within its block) that slot s holds. x86 interleaves two taps' int16 vectors
// with vpunpcklwd/vpunpckhwd, which work per 128-bit lane: the low half of the slots holds
// channels 0-3 of every group of 8, the high half channels 4-7.
int64_t slot_channel(Isa isa, bool vnni, int64_t b, int64_t s) {
  if (vnni) return 16 * ((s % 16) / 4) + 4 * (s / 16) + s % 4;  // b = 64: see the header
  if (isa != Isa::kAvx512 && isa != Isa::kAvx2) return s;
  const int64_t h = b / 2, half = s / h, j = s % h;
  return 8 * (j / 4) + 4 * half + j % 4;
}

void run_row(Isa isa, bool vnni, const RowArgs& a) {
#if BRINK_BUILD_AVX512VNNI
  if (vnni) return qdepthwise_internal::qdepthwise_row_avx512vnni(a);
#else
  (void)vnni;
#endif
  BRINK_ISA_DISPATCH(isa, qdepthwise_row, a)
}

}  // namespace

namespace {

// The blob's header (its first 64 bytes).
struct BlobHeader {
  uint32_t magic;    // kBlobMagic
  uint32_t version;  // kBlobVersion
  uint32_t x_zero;   // the zero point folded into bias'
  uint32_t block;
  uint64_t w_bytes;
};
static_assert(sizeof(BlobHeader) <= 64);
constexpr uint32_t kBlobMagic = 0x57445142;  // "BQDW"
constexpr uint32_t kBlobVersion = 1;
constexpr size_t kHeaderBytes = 64;

size_t round64(size_t n) {
  return (n + 63) / 64 * 64;
}

}  // namespace

Result<std::unique_ptr<DepthwiseQConvNhwcU8>> DepthwiseQConvNhwcU8::make_layout(
    const Conv2dParams& p, uint8_t x_zero, Isa isa) {
  const int64_t c = p.in_channels;
  if (c < 1 || p.out_channels != c || p.group != c)
    return invalid_argument("quantized depthwise conv: expected group == in == out channels, got " +
                            std::to_string(p.group) + ", " + std::to_string(c) + ", " +
                            std::to_string(p.out_channels));
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 ||
      p.dilation_w < 1)
    return invalid_argument(
        "quantized depthwise conv: kernel, strides and dilations must be positive");
  if (!isa_supported(isa))
    return invalid_argument(std::string("quantized depthwise conv: ISA ") + isa_name(isa) +
                            " is not supported on this machine");
  std::unique_ptr<DepthwiseQConvNhwcU8> k(new DepthwiseQConvNhwcU8());
  k->p_ = p;
  k->isa_ = isa;
  k->x_zero_ = x_zero;
  k->vnni_ = isa == Isa::kAvx512 && qisa_for(isa) == QIsa::kAvx512Vnni && c >= 64;
  const int64_t b = k->vnni_ ? 64 : block_width(isa);
  const int64_t taps = p.kernel_h * p.kernel_w;
  const int64_t g = k->vnni_ ? 4 : 2;
  k->block_ = b;
  k->blocks_ = (c + b - 1) / b;
  k->group_taps_ = g;
  k->groups_ = (taps + g - 1) / g;
  k->slot_channel_.resize(static_cast<size_t>(b));
  for (int64_t s = 0; s < b; ++s)
    k->slot_channel_[static_cast<size_t>(s)] = slot_channel(isa, k->vnni_, b, s);
  // Pairs: int16 weights; VNNI quads: int8.
  k->w_bytes_ = round64(static_cast<size_t>(k->blocks_ * k->groups_ * b * g) *
                        (k->vnni_ ? sizeof(int8_t) : sizeof(int16_t)));
  k->blob_bytes_ =
      kHeaderBytes + k->w_bytes_ + round64(static_cast<size_t>(k->blocks_ * b) * sizeof(int32_t));
  k->zero_row_.assign(static_cast<size_t>(k->blocks_ * b + 64), x_zero);
  return k;
}

std::string DepthwiseQConvNhwcU8::packed_layout() const {
  return "qdwconv-nhwc-u8-v" + std::to_string(kBlobVersion) + "/" + isa_name(isa_) + "/b" +
         std::to_string(block_) + (vnni_ ? "/vnni-quads" : "/pairs") + std::to_string(groups_);
}

Result<std::unique_ptr<DepthwiseQConvNhwcU8>> DepthwiseQConvNhwcU8::create_prepacked(
    const Conv2dParams& p, const std::string& layout, const void* packed, size_t bytes,
    std::shared_ptr<const void> owner, uint8_t x_zero, Isa isa) {
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, x_zero, isa));
  if (layout != k->packed_layout() || bytes != k->blob_bytes_)
    return unsupported("quantized depthwise conv: packed weights in layout " + layout + " (" +
                       std::to_string(bytes) + " bytes), this build packs " + k->packed_layout() +
                       " (" + std::to_string(k->blob_bytes_) + " bytes)");
  if (packed == nullptr || reinterpret_cast<uintptr_t>(packed) % 64 != 0)
    return invalid_argument("quantized depthwise conv: packed weights are not 64-byte aligned");
  BlobHeader h;
  std::memcpy(&h, packed, sizeof h);
  if (h.magic != kBlobMagic || h.version != kBlobVersion ||
      h.block != static_cast<uint32_t>(k->block_) || h.w_bytes != k->w_bytes_)
    return invalid_argument("quantized depthwise conv: packed weights have a damaged header");
  if (h.x_zero != x_zero)
    return invalid_argument("quantized depthwise conv: packed weights fold input zero point " +
                            std::to_string(h.x_zero) + ", the layer has " + std::to_string(x_zero));
  k->blob_ = std::shared_ptr<const uint8_t>(std::move(owner), static_cast<const uint8_t*>(packed));
  k->w_ = k->blob_.get() + kHeaderBytes;
  k->bias_ = reinterpret_cast<const int32_t*>(k->blob_.get() + kHeaderBytes + k->w_bytes_);
  return k;
}

Result<std::unique_ptr<DepthwiseQConvNhwcU8>> DepthwiseQConvNhwcU8::create(
    const Conv2dParams& p, const int8_t* w, const int32_t* bias, uint8_t x_zero, Isa isa) {
  if (w == nullptr) return invalid_argument("quantized depthwise conv: no weights");
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, x_zero, isa));
  const size_t bytes = k->blob_bytes_;
  auto* blob = static_cast<uint8_t*>(allocate_aligned(bytes));
  if (blob == nullptr) return internal_error("quantized depthwise conv: out of memory");
  std::memset(blob, 0, bytes);
  k->blob_ = std::shared_ptr<const uint8_t>(
      blob, [bytes](const uint8_t* q) { free_aligned(const_cast<uint8_t*>(q), bytes); });
  auto* wp = reinterpret_cast<int16_t*>(blob + kHeaderBytes);  // pairs
  auto* wq = reinterpret_cast<int8_t*>(blob + kHeaderBytes);   // VNNI quads
  auto* bp = reinterpret_cast<int32_t*>(blob + kHeaderBytes + k->w_bytes_);
  const int64_t c = p.in_channels, b = k->block_, taps = p.kernel_h * p.kernel_w;
  const int64_t g = k->group_taps_;
  for (int64_t blk = 0; blk < k->blocks_; ++blk)
    for (int64_t s = 0; s < b; ++s) {
      const int64_t ch = blk * b + k->slot_channel_[static_cast<size_t>(s)];
      if (ch >= c) continue;
      int64_t sum_w = 0;
      for (int64_t t = 0; t < taps; ++t) {
        const int8_t wt = w[ch * taps + t];
        sum_w += wt;
        const size_t at = static_cast<size_t>(((blk * k->groups_ + t / g) * b + s) * g + t % g);
        if (k->vnni_)
          wq[at] = wt;
        else
          wp[at] = wt;
      }
      const int64_t folded = (bias != nullptr ? bias[ch] : 0) - int64_t{x_zero} * sum_w;
      bp[static_cast<size_t>(blk * b + s)] = static_cast<int32_t>(folded);
    }
  const BlobHeader h{kBlobMagic, kBlobVersion, x_zero, static_cast<uint32_t>(b), k->w_bytes_};
  std::memcpy(blob, &h, sizeof h);
  k->w_ = blob + kHeaderBytes;
  k->bias_ = bp;
  return k;
}

size_t DepthwiseQConvNhwcU8::memory_bytes() const {
  return blob_bytes_ + zero_row_.size() + slot_channel_.size() * sizeof(int64_t);
}

Status DepthwiseQConvNhwcU8::run(const uint8_t* x, const QRequant& out, uint8_t* y, int64_t batch,
                                 const Conv2dSpatial& s, ThreadPool* pool) const {
  if (batch < 0 || s.in_h < 1 || s.in_w < 1 || s.out_h < 0 || s.out_w < 0)
    return invalid_argument("quantized depthwise conv: bad spatial size " + std::to_string(s.in_h) +
                            "x" + std::to_string(s.in_w) + " -> " + std::to_string(s.out_h) + "x" +
                            std::to_string(s.out_w));
  if (batch == 0 || s.out_h == 0 || s.out_w == 0) return Status::ok();
  if (x == nullptr || y == nullptr || out.scale == nullptr)
    return invalid_argument("quantized depthwise conv: null input, output or scale");
  if (out.zero_point < 0 || out.zero_point > 255)
    return invalid_argument(
        "quantized depthwise conv: output zero point must be in [0, 255], got " +
        std::to_string(out.zero_point));
  const int64_t c = p_.in_channels, b = block_;
  // Scales in slot order, zero past the last channel.
  std::vector<float> scale(static_cast<size_t>(blocks_ * b), 0.0f);
  for (int64_t blk = 0; blk < blocks_; ++blk)
    for (int64_t sl = 0; sl < b; ++sl) {
      const int64_t ch = blk * b + slot_channel_[static_cast<size_t>(sl)];
      if (ch < c) scale[static_cast<size_t>(blk * b + sl)] = out.scale[out.per_channel ? ch : 0];
    }
  const int64_t taps = p_.kernel_h * p_.kernel_w, slots = groups_ * group_taps_;
  const int64_t rows = batch * s.out_h;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  const int64_t macs = rows * s.out_w * c * taps;
  const int64_t tasks =
      threads <= 1 ? 1 : std::clamp<int64_t>(macs / 32768, 1, std::min(rows, int64_t{4} * threads));
  const uint8_t* zero = zero_row_.data();
  parallel_for(pool, tasks, [&](int64_t task) {
    std::vector<const uint8_t*> addr(static_cast<size_t>(s.out_w * slots));
    RowArgs a{addr.data(),
              reinterpret_cast<const int16_t*>(w_),
              reinterpret_cast<const int8_t*>(w_),
              bias_,
              scale.data(),
              nullptr,
              s.out_w,
              c,
              blocks_,
              groups_,
              out.zero_point,
              out.min,
              out.max};
    for (int64_t row = rows * task / tasks; row < rows * (task + 1) / tasks; ++row) {
      const int64_t n = row / s.out_h, oh = row % s.out_h;
      const uint8_t* img = x + n * s.in_h * s.in_w * c;
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const uint8_t** t = addr.data() + ow * slots;
        const int64_t ih0 = oh * p_.stride_h - s.pad_top, iw0 = ow * p_.stride_w - s.pad_left;
        for (int64_t kh = 0; kh < p_.kernel_h; ++kh) {
          const int64_t ih = ih0 + kh * p_.dilation_h;
          const bool row_in = ih >= 0 && ih < s.in_h;
          for (int64_t kw = 0; kw < p_.kernel_w; ++kw) {
            const int64_t iw = iw0 + kw * p_.dilation_w;
            *t++ = row_in && iw >= 0 && iw < s.in_w ? img + (ih * s.in_w + iw) * c : zero;
          }
        }
        for (int64_t k = taps; k < slots; ++k) *t++ = zero;  // the last group's padding: weight 0
      }
      a.y = y + row * s.out_w * c;
      run_row(isa_, vnni_, a);
    }
  });
  return Status::ok();
}

}  // namespace brink::kernels
