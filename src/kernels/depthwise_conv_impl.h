// The depthwise kernel, written once against the vector vocabulary of elementwise_simd.h and
// compiled per ISA: depthwise_conv.cc (portable, plus packing and threading) and
// depthwise_conv_{avx512,avx2,neon}.cc define their BRINK_SIMD_* target and include this
// header, which lands in that target's namespace (brink::kernels::<isa>), so copies built
// with different instruction sets are never merged by the linker.
//
// Layout: weights packed per block of kLanes channels, tap-major ([blocks][kh*kw][kLanes]),
// zero past the last channel; bias likewise ([blocks*kLanes]).
//
// Loop order: a tile (a band of output rows) goes channel blocks outside, rows inside, so
// that one block's slice of the kh input rows an output row reads (kh x in_w x 64 bytes on
// AVX-512) stays in L1 for the next output rows. Along a row, interior pixels (every horizontal tap
// inside the image) go kPixels at a time: kPixels independent FMA chains (more per pixel for small
// groups, one per kernel row) hide the FMA latency, each weight load feeds kPixels FMAs, and for
// the 3x3/5x5 stride 1/2 fast paths the (P-1)*stride+kw input vectors a kernel row touches are
// loaded once each. Border pixels read a zero vector for taps left or right of the image; rows
// above and below the image are skipped (the valid kernel-row range is computed per output row).
// The last, partial channel block uses load_partial/store_partial and never touches memory
// past the tensor.
//
// Epilogue: bias + taps (+ residual), then the activation in registers for none/Relu/Clip,
// HardSwish, Sigmoid and SiLU (activation_math.h, the same approximations the elementwise
// kernels use); the other activations run apply_activation over the finished rows.
//
// The portable variant (one lane, the fallback) is compiled with the general row and the
// clamp epilogue only: specializing it per kernel size and activation would triple its code for
// a path no SIMD CPU takes, and size matters where the portable kernels ship.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/activation.h"
#include "kernels/activation_math.h"  // needs one BRINK_SIMD_* target defined
#include "kernels/depthwise_conv.h"
#include "kernels/elementwise.h"
#include "ops/op_selection.h"  // a selective build keeps the epilogues its packages use

namespace brink::kernels {
namespace depthwise_internal {

// What every ISA variant reads: the packed weights and the activation (the shape comes with
// each run).
struct Packed {
  const float* weights;  // [blocks][kh*kw][lanes], zero past `channels`
  const float* bias;     // [blocks*lanes], zeros without a bias
  Activation act;
  Isa isa;
};

// Output rows [row_begin, row_end) counted over batch x out_h, channel blocks
// [block_begin, block_end).
struct Tile {
  int64_t row_begin, row_end, block_begin, block_end;
};

inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

// A row DepthwiseConvNhwc::missing_row should have refused was asked for: says which on
// stderr and aborts.
[[noreturn]] void row_not_built(std::string_view row);

}  // namespace depthwise_internal

BRINK_DECLARE_PER_ISA(void depthwise_conv_tile(const depthwise_internal::Packed& p,
                                               const DepthwiseConvShape& s, const float* x,
                                               const float* residual, float* y,
                                               const depthwise_internal::Tile& t))

namespace BRINK_SIMD_NS {
namespace depthwise {

using depthwise_internal::ceil_div;
using depthwise_internal::floor_div;
using depthwise_internal::Packed;
using depthwise_internal::Tile;

constexpr int64_t W = static_cast<int64_t>(kLanes);

// Interior pixels per group, FMA chains that keep the FMA units busy (latency x ports), and
// vector registers, per target.
#if defined(BRINK_SIMD_AVX512)
constexpr int kPixels = 8, kChains = 8, kRegisters = 32;
#elif defined(BRINK_SIMD_AVX2)
constexpr int kPixels = 4, kChains = 8, kRegisters = 16;
#elif defined(BRINK_SIMD_NEON)
constexpr int kPixels = 4, kChains = 8, kRegisters = 32;
#else
constexpr int kPixels = 4, kChains = 4, kRegisters = 16;
#endif

// Keeps v in a register: GCC otherwise folds loads shared by several FMAs back into each FMA
// as a memory operand, and the kernel becomes load-bound.
BRINK_SIMD_INLINE void pin(Vf& v) {
#if defined(BRINK_SIMD_AVX512)
  __asm__("" : "+v"(v.v));
#elif defined(BRINK_SIMD_AVX2)
  __asm__("" : "+x"(v.v));
#elif defined(BRINK_SIMD_NEON)
  __asm__("" : "+w"(v.v));
#else
  (void)v;
#endif
}

// Independent accumulators per pixel for a group of P pixels.
template <int P>
constexpr int accumulators() {
  return std::clamp((kChains + P - 1) / P, 1, 3);
}

// ---- Epilogues: the activation applied in registers -------------------------------------------
// Relu, Clip and none clamp in registers, and so does HardSwish. Sigmoid and SiLU do too, except
// in compact builds (BRINK_COMPACT_KERNELS: device builds, and the sanitizer build so that CI
// tests both), where they run over each row right after it is written (activate_row), while it
// is in L1: the rows are then not kept a third and fourth time (241 KiB of the AVX-512 and AVX2
// kernels), for about 2% of those layers' time (bench/depthwise_bench --activation silu;
// EfficientNet-B0 end to end 11.77 -> 12.02 ms). A second pass for HardSwish cost its 3x3
// layers 10-30%, so it stays in registers everywhere.
#if defined(BRINK_COMPACT_KERNELS)
inline constexpr bool kRowActivations = true;
#else
inline constexpr bool kRowActivations = false;
#endif

struct EpiClamp {  // none, Relu, Clip
  Vf lo, hi;
  BRINK_SIMD_INLINE Vf operator()(Vf v) const { return max(lo, min(hi, v)); }  // keeps NaN
};

template <UnaryOp Op>
struct EpiUnary {  // HardSwish; Sigmoid and SiLU unless kRowActivations
  BRINK_SIMD_INLINE Vf operator()(Vf v) const { return apply_unary<Op>(Unary{Op}, v); }
};

// ---- One output row of one channel block ----------------------------------------------------

struct RowCtx {
  const float* x_img;  // image of this row, offset to the channel block
  const float* res;    // residual row (offset to the block), or nullptr
  float* y;            // output row, offset to the channel block
  const float* w;      // this block's packed taps, [kh*kw][W]
  const float* bias;   // this block's bias, [W]
  int64_t c;           // channels: the pixel stride
  int64_t in_w, kw, sw, dw, pad_left;
  int64_t ih0, dh, kh_lo, kh_hi;  // first input row, vertical dilation, valid kernel rows
  size_t tail;                    // lanes in use in the partial block (kTail only)
};

template <bool kTail>
BRINK_SIMD_INLINE Vf ld(const RowCtx& r, const float* p) {
  if constexpr (kTail)
    return load_partial(p, r.tail);
  else
    return load(p);
}

template <bool kTail, class E>
BRINK_SIMD_INLINE void finish(const RowCtx& r, const E& epi, int64_t ow, Vf acc) {
  if (r.res != nullptr) acc = acc + ld<kTail>(r, r.res + ow * r.c);
  acc = epi(acc);
  if constexpr (kTail)
    store_partial(r.y + ow * r.c, acc, r.tail);
  else
    store(r.y + ow * r.c, acc);
}

// y = op(y) over one finished row of one channel block (r.y: out_w pixels, r.c apart).
template <bool kTail, UnaryOp Op>
void activate_row_with(const RowCtx& r, int64_t out_w) {
  for (int64_t ow = 0; ow < out_w; ++ow) {
    float* p = r.y + ow * r.c;
    const Vf v = apply_unary<Op>(Unary{Op}, ld<kTail>(r, p));
    if constexpr (kTail)
      store_partial(p, v, r.tail);
    else
      store(p, v);
  }
}

// The row activations, Sigmoid and SiLU (those a selective build kept).
template <bool kTail>
void activate_row(const RowCtx& r, int64_t out_w, UnaryOp op) {
  switch (op) {
    case UnaryOp::kSigmoid:
      if constexpr (unary_selected(UnaryOp::kSigmoid))
        return activate_row_with<kTail, UnaryOp::kSigmoid>(r, out_w);
      break;
    case UnaryOp::kSilu:
      if constexpr (unary_selected(UnaryOp::kSilu))
        return activate_row_with<kTail, UnaryOp::kSilu>(r, out_w);
      break;
    default:
      break;
  }
}

// Runs row(kh, acc[j]) for kh in [kh_lo, kh_hi), rotating over the A accumulators with every
// index known at compile time, so that the accumulators stay in registers.
template <int A, class Acc, class Row>
BRINK_SIMD_INLINE void rotate_rows(int64_t kh_lo, int64_t kh_hi, Acc* acc, const Row& row) {
  int64_t kh = kh_lo;
  for (; kh + A <= kh_hi; kh += A)
    for (int j = 0; j < A; ++j) row(kh + j, acc[j]);
  if (A > 1 && kh < kh_hi) row(kh++, acc[0]);
  if (A > 2 && kh < kh_hi) row(kh++, acc[1]);
}

// A pixel near the left or right edge. With compile-time KW every tap column is visited and
// the columns outside the image read a zero vector; otherwise only the valid columns are.
template <bool kTail, class E, int KW>
BRINK_SIMD_INLINE void pixel_border(const RowCtx& r, const E& epi, int64_t ow) {
  constexpr int A = accumulators<1>();
  alignas(64) static constexpr float kZeros[W] = {};
  const int64_t iw0 = ow * r.sw - r.pad_left;
  const int64_t kw_lo = iw0 >= 0 ? 0 : ceil_div(-iw0, r.dw);
  const int64_t kw_hi = std::min(r.kw, floor_div(r.in_w - 1 - iw0, r.dw) + 1);
  Vf acc[A];
  acc[0] = load(r.bias);
  for (int j = 1; j < A; ++j) acc[j] = set1(0.0f);
  const float* base = r.x_img + (r.ih0 * r.in_w + iw0) * r.c;
  const int64_t row_stride = r.dh * r.in_w * r.c;
  rotate_rows<A>(r.kh_lo, r.kh_hi, acc, [&](int64_t kh, Vf& a) BRINK_SIMD_INLINE_LAMBDA {
    const float* row = base + kh * row_stride;
    const float* wk = r.w + kh * r.kw * W;
    if constexpr (KW != 0) {
      for (int kw = 0; kw < KW; ++kw) {
        const float* src = kw >= kw_lo && kw < kw_hi ? row + kw * r.c : kZeros;
        a = fma(ld<kTail>(r, src), load(wk + kw * W), a);
      }
    } else {
      for (int64_t kw = kw_lo; kw < kw_hi; ++kw)
        a = fma(ld<kTail>(r, row + kw * r.dw * r.c), load(wk + kw * W), a);
    }
  });
  for (int j = 1; j < A; ++j) acc[0] = acc[0] + acc[j];
  finish<kTail>(r, epi, ow, acc[0]);
}

// One kernel row's taps for P interior pixels. KW and SW are compile-time for the fast paths
// (horizontal dilation 1): each input vector the row touches is loaded once and, while
// inputs, accumulators and a weight fit the register file, pinned there.
template <bool kTail, int KW, int SW, int P>
BRINK_SIMD_INLINE void kernel_row(const RowCtx& r, const float* row, const float* wk, Vf* acc) {
  const int64_t c = r.c;
  if constexpr (KW != 0) {
    constexpr int kInputs = (P - 1) * SW + KW;
    constexpr bool kPin = kInputs + P * accumulators<P>() + 1 <= kRegisters;
    Vf xv[kInputs];
    for (int i = 0; i < kInputs; ++i) {
      xv[i] = ld<kTail>(r, row + i * c);
      if constexpr (kPin) pin(xv[i]);
    }
    for (int kw = 0; kw < KW; ++kw) {
      const Vf wv = load(wk + kw * W);
      for (int p = 0; p < P; ++p) acc[p] = fma(xv[p * SW + kw], wv, acc[p]);
    }
  } else {
    for (int64_t kw = 0; kw < r.kw; ++kw) {
      const Vf wv = load(wk + kw * W);
      const float* xp = row + kw * r.dw * c;
      for (int p = 0; p < P; ++p) acc[p] = fma(ld<kTail>(r, xp + p * r.sw * c), wv, acc[p]);
    }
  }
}

// P interior pixels starting at ow; KW and SW are 0 for the general path.
template <bool kTail, class E, int KW, int SW, int P>
BRINK_SIMD_INLINE void pixels_interior(const RowCtx& r, const E& epi, int64_t ow) {
  constexpr int A = accumulators<P>();
  const int64_t kw_n = KW != 0 ? KW : r.kw;
  const int64_t sw = SW != 0 ? SW : r.sw;
  Vf acc[A][P];
  const Vf b = load(r.bias);
  for (int p = 0; p < P; ++p) {
    acc[0][p] = b;
    for (int j = 1; j < A; ++j) acc[j][p] = set1(0.0f);
  }
  const float* base = r.x_img + (r.ih0 * r.in_w + ow * sw - r.pad_left) * r.c;
  const int64_t row_stride = r.dh * r.in_w * r.c;
  rotate_rows<A>(r.kh_lo, r.kh_hi, acc, [&](int64_t kh, Vf(&a)[P]) BRINK_SIMD_INLINE_LAMBDA {
    kernel_row<kTail, KW, SW, P>(r, base + kh * row_stride, r.w + kh * kw_n * W, a);
  });
  for (int p = 0; p < P; ++p) {
    for (int j = 1; j < A; ++j) acc[0][p] = acc[0][p] + acc[j][p];
    finish<kTail>(r, epi, ow + p, acc[0][p]);
  }
}

template <bool kTail, class E, int KW, int SW>
void block_row(const RowCtx& r, const E& epi, int64_t ow_lo, int64_t ow_hi, int64_t out_w) {
  constexpr int P = kPixels;
  int64_t ow = 0;
  for (; ow < ow_lo; ++ow) pixel_border<kTail, E, KW>(r, epi, ow);
  for (; ow + P <= ow_hi; ow += P) pixels_interior<kTail, E, KW, SW, P>(r, epi, ow);
  if constexpr (P > 4) {
    if (ow + 4 <= ow_hi) {
      pixels_interior<kTail, E, KW, SW, 4>(r, epi, ow);
      ow += 4;
    }
  }
  if (ow + 2 <= ow_hi) {
    pixels_interior<kTail, E, KW, SW, 2>(r, epi, ow);
    ow += 2;
  }
  if (ow < ow_hi) pixels_interior<kTail, E, KW, SW, 1>(r, epi, ow++);
  for (; ow < out_w; ++ow) pixel_border<kTail, E, KW>(r, epi, ow);
}

// Whether this build keeps `row` (a selective build keeps those its packages list).
constexpr bool row_kept(DepthwiseRow row) {
  return ops::depthwise_path_selected(depthwise_row_name(row));
}

// The last block when the channels do not fill it (kept when listed as "partial").
template <class E>
BRINK_SIMD_INLINE void partial_row(const RowCtx& r, const E& epi, int64_t ow_lo, int64_t ow_hi,
                                   int64_t out_w) {
  if constexpr (ops::depthwise_path_selected(kDepthwisePartialRow))
    block_row<true, E, 0, 0>(r, epi, ow_lo, ow_hi, out_w);
  else
    depthwise_internal::row_not_built(kDepthwisePartialRow);
}

// The row of a full block that no fast path takes (kept when listed as "general"; a fast
// row a selective build left out takes it too).
template <class E>
BRINK_SIMD_INLINE void general_row(const RowCtx& r, const E& epi, int64_t ow_lo, int64_t ow_hi,
                                   int64_t out_w) {
  if constexpr (row_kept(DepthwiseRow::kGeneral))
    block_row<false, E, 0, 0>(r, epi, ow_lo, ow_hi, out_w);
  else
    depthwise_internal::row_not_built(depthwise_row_name(DepthwiseRow::kGeneral));
}

#if defined(BRINK_SIMD_PORTABLE)
inline constexpr bool kSpecialize = false;
#else
inline constexpr bool kSpecialize = true;
#endif

// One tile with the clamp `epi` in registers, then `row_op` over each finished row
// (kIdentity: none), or with `activation_after` the packed activation over the whole tile.
template <class E>
void tile_with(const Packed& p, const DepthwiseConvShape& s, const float* x, const float* residual,
               float* y, const Tile& t, const E& epi, UnaryOp row_op, bool activation_after) {
  const int64_t c = s.channels;
  // The fast row (when this build kept it: row_kept).
  const DepthwiseRow fast = depthwise_row(s.kernel_w, s.stride_w, s.dilation_w);

  // Output columns whose horizontal taps all lie inside the image.
  const int64_t ow_lo = std::min(s.out_w, ceil_div(s.pad_left, s.stride_w));
  const int64_t ow_hi = std::clamp<int64_t>(
      floor_div(s.in_w - 1 + s.pad_left - (s.kernel_w - 1) * s.dilation_w, s.stride_w) + 1, ow_lo,
      s.out_w);

  RowCtx r;
  r.c = c;
  r.in_w = s.in_w;
  r.kw = s.kernel_w;
  r.sw = s.stride_w;
  r.dw = s.dilation_w;
  r.pad_left = s.pad_left;
  r.dh = s.dilation_h;
  const int64_t num_blocks = (c + W - 1) / W;
  r.tail = static_cast<size_t>(c - (num_blocks - 1) * W);
  const int64_t taps = s.kernel_h * s.kernel_w;

  for (int64_t cb = t.block_begin; cb < t.block_end; ++cb) {
    const bool tail = cb == num_blocks - 1 && r.tail != static_cast<size_t>(W);
    r.w = p.weights + cb * taps * W;
    r.bias = p.bias + cb * W;
    for (int64_t row = t.row_begin; row < t.row_end; ++row) {
      const int64_t n = row / s.out_h, oh = row % s.out_h;
      r.ih0 = oh * s.stride_h - s.pad_top;
      r.kh_lo = r.ih0 >= 0 ? 0 : ceil_div(-r.ih0, s.dilation_h);
      r.kh_hi = std::min(s.kernel_h, floor_div(s.in_h - 1 - r.ih0, s.dilation_h) + 1);
      r.x_img = x + n * s.in_h * s.in_w * c + cb * W;
      r.y = y + row * s.out_w * c + cb * W;
      r.res = residual != nullptr ? residual + row * s.out_w * c + cb * W : nullptr;
      if constexpr (!kSpecialize) {
        // One lane: there is no partial block, and every shape takes the general row.
        (void)tail;
        (void)fast;
        block_row<false, E, 0, 0>(r, epi, ow_lo, ow_hi, s.out_w);
      } else if (tail) {
        partial_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
      } else {
        switch (fast) {
          case DepthwiseRow::k3s1:
            if constexpr (row_kept(DepthwiseRow::k3s1))
              block_row<false, E, 3, 1>(r, epi, ow_lo, ow_hi, s.out_w);
            else
              general_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
            break;
          case DepthwiseRow::k3s2:
            if constexpr (row_kept(DepthwiseRow::k3s2))
              block_row<false, E, 3, 2>(r, epi, ow_lo, ow_hi, s.out_w);
            else
              general_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
            break;
          case DepthwiseRow::k5s1:
            if constexpr (row_kept(DepthwiseRow::k5s1))
              block_row<false, E, 5, 1>(r, epi, ow_lo, ow_hi, s.out_w);
            else
              general_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
            break;
          case DepthwiseRow::k5s2:
            if constexpr (row_kept(DepthwiseRow::k5s2))
              block_row<false, E, 5, 2>(r, epi, ow_lo, ow_hi, s.out_w);
            else
              general_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
            break;
          case DepthwiseRow::kGeneral:
            general_row<E>(r, epi, ow_lo, ow_hi, s.out_w);
            break;
        }
      }
      if constexpr (kSpecialize && kRowActivations) {
        if (row_op != UnaryOp::kIdentity) {
          if (tail)
            activate_row<true>(r, s.out_w, row_op);
          else
            activate_row<false>(r, s.out_w, row_op);
        }
      }
    }
  }
  if (activation_after) {
    const int64_t c0 = t.block_begin * W, c1 = std::min(c, t.block_end * W);
    for (int64_t row = t.row_begin; row < t.row_end; ++row)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        apply_activation(p.act, y + (row * s.out_w + ow) * c + c0, static_cast<size_t>(c1 - c0),
                         p.isa);
  }
}

}  // namespace depthwise

// The per-ISA entry point: picks the epilogue for the activation.
inline void depthwise_conv_tile_impl(const depthwise_internal::Packed& p,
                                     const DepthwiseConvShape& s, const float* x,
                                     const float* residual, float* y,
                                     const depthwise_internal::Tile& t) {
  using namespace depthwise;
  const Activation& a = p.act;
  const EpiClamp none{set1(-__builtin_inff()), set1(__builtin_inff())};
  if constexpr (kSpecialize) {
    // The activation in registers, or for Sigmoid and SiLU in compact builds over each
    // finished row while it is in L1 (activate_row). Those a selective build kept.
    switch (a.kind) {
      case ActivationKind::kHardSwish:
        if constexpr (ops::activation_selected("HardSwish"))
          return tile_with(p, s, x, residual, y, t, EpiUnary<UnaryOp::kHardSwish>{},
                           UnaryOp::kIdentity, false);
        break;
      case ActivationKind::kSigmoid:
        if constexpr (ops::activation_selected("Sigmoid")) {
          if constexpr (kRowActivations)
            return tile_with(p, s, x, residual, y, t, none, UnaryOp::kSigmoid, false);
          else
            return tile_with(p, s, x, residual, y, t, EpiUnary<UnaryOp::kSigmoid>{},
                             UnaryOp::kIdentity, false);
        }
        break;
      case ActivationKind::kSilu:
        if constexpr (ops::activation_selected("SiLU")) {
          if constexpr (kRowActivations)
            return tile_with(p, s, x, residual, y, t, none, UnaryOp::kSilu, false);
          else
            return tile_with(p, s, x, residual, y, t, EpiUnary<UnaryOp::kSilu>{},
                             UnaryOp::kIdentity, false);
        }
        break;
      default:
        break;
    }
  }
  if (a.kind == ActivationKind::kNone || a.kind == ActivationKind::kRelu ||
      a.kind == ActivationKind::kClip) {
    const bool clamp = a.is_clamp();
    const EpiClamp e{set1(clamp ? a.clamp_min() : -__builtin_inff()),
                     set1(clamp ? a.clamp_max() : __builtin_inff())};
    return tile_with(p, s, x, residual, y, t, e, UnaryOp::kIdentity, false);
  }
  // Any other activation: a pass over the finished tile.
  return tile_with(p, s, x, residual, y, t, none, UnaryOp::kIdentity, true);
}

}  // namespace BRINK_SIMD_NS
}  // namespace brink::kernels
