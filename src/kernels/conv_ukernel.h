// The indirect-GEMM micro-kernels behind ConvNhwcF32 (conv.h), one set per ISA, and the
// table the driver picks them from. Internal to src/kernels/conv*.cc.
//
// A micro-kernel computes one tile of mr output pixels x nc output channels:
//
//   c[i][j] = w.bias[j] + sum over taps t < ks, channels k < kc of
//             a[t * mr + i][k] * w[t][k][j]                                  (then + z, clamp)
//
// where a[t * mr + i] points at the input pixel that tap t of output pixel i reads, or at a
// row of zeros for a tap in the padding: XNNPACK's igemm. The driver builds these pointers
// per tile from the shape's indirection table (32-bit offsets, independent of where the
// input lives, so the table is built once per shape) and reuses them for every block of
// output channels.
//
// The packed panel `w` of one block of NR output channels is [NR] bias followed by
// [ks][kc][NR] weights, zero-padded past the block's valid channels, 64-byte aligned: the
// kernel may compute all NR columns and only the stores (and z loads) are masked to nc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brink::kernels::conv_internal {

constexpr int kMaxMr = 8;

struct IgemmArgs {
  size_t kc = 0;        // input channels per tap
  size_t ks = 0;        // taps
  size_t c_stride = 0;  // floats between two output pixels in c (and z)
  float min = 0.0f;     // clamp applied after z is added (-inf/+inf: none)
  float max = 0.0f;
};

// One function per mr (the kernel's row count); 1 <= nc <= the kernel's NR. `a` holds
// ks * mr row pointers, tap-major. `z` is nullptr or laid out like `c`.
using IgemmFn = void (*)(size_t nc, const float* const* a, const float* w, float* c, const float* z,
                         const IgemmArgs& args);

struct IgemmConfig {
  int mr = 0;       // pixels per full tile
  int nr = 0;       // output channels per block
  int nr_half = 0;  // channels of the narrow block used for a remainder <= nr_half (0: none)
  IgemmFn full[kMaxMr + 1] = {};  // full[m]: m pixels x nr channels, m = 1..mr
  IgemmFn half[kMaxMr + 1] = {};  // half[m]: m pixels x nr_half channels
};

// nullptr when the ISA's kernels are not built into this binary.
const IgemmConfig* igemm_config_avx512();
const IgemmConfig* igemm_config_avx2();
const IgemmConfig* igemm_config_neon();
const IgemmConfig* igemm_config_portable();

}  // namespace brink::kernels::conv_internal
