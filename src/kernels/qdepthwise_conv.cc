// Quantized depthwise convolution: packing, the per-row tap addresses, threading, dispatch,
// and the portable variant (plain C++, one channel at a time: the fallback, not a fast path).
#include "kernels/qdepthwise_conv.h"

#include <algorithm>
#include <cmath>
#include <string>

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
#if defined(__x86_64__)
  if (vnni) return qdepthwise_internal::qdepthwise_row_avx512vnni(a);
#else
  (void)vnni;
#endif
  BRINK_ISA_DISPATCH(isa, qdepthwise_row, a)
}

}  // namespace

Result<std::unique_ptr<DepthwiseQConvNhwcU8>> DepthwiseQConvNhwcU8::create(
    const Conv2dParams& p, const int8_t* w, const int32_t* bias, uint8_t x_zero, Isa isa) {
  const int64_t c = p.in_channels;
  if (c < 1 || p.out_channels != c || p.group != c)
    return invalid_argument("quantized depthwise conv: expected group == in == out channels, got " +
                            std::to_string(p.group) + ", " + std::to_string(c) + ", " +
                            std::to_string(p.out_channels));
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 ||
      p.dilation_w < 1)
    return invalid_argument(
        "quantized depthwise conv: kernel, strides and dilations must be positive");
  if (w == nullptr) return invalid_argument("quantized depthwise conv: no weights");
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
  const size_t packed = static_cast<size_t>(k->blocks_ * k->groups_ * b * g);
  if (k->vnni_)
    k->w8_.assign(packed, 0);
  else
    k->w_.assign(packed, 0);
  k->bias_.assign(static_cast<size_t>(k->blocks_ * b), 0);
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
          k->w8_[at] = wt;
        else
          k->w_[at] = wt;
      }
      const int64_t folded = (bias != nullptr ? bias[ch] : 0) - int64_t{x_zero} * sum_w;
      k->bias_[static_cast<size_t>(blk * b + s)] = static_cast<int32_t>(folded);
    }
  k->zero_row_.assign(static_cast<size_t>(k->blocks_ * b + 64), x_zero);
  return k;
}

size_t DepthwiseQConvNhwcU8::memory_bytes() const {
  return w_.size() * sizeof(int16_t) + w8_.size() + bias_.size() * sizeof(int32_t) +
         zero_row_.size() + slot_channel_.size() * sizeof(int64_t);
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
    RowArgs a{addr.data(), w_.data(), w8_.data(), bias_.data(),   scale.data(), nullptr, s.out_w,
              c,           blocks_,   groups_,    out.zero_point, out.min,      out.max};
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
