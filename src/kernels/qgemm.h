// INT8 GEMM: y[M,N] = requantize(sum_k (a[m][k] - a_zero) * b[k][n] + bias[n]), u8
// activations times s8 weights into exact int32, with runtime ISA dispatch (QIsa below).
//
// B (weights) is packed once (pack_qb) into panels of NR columns with K grouped by 4: within
// a panel, group g holds for each column its 4 consecutive k bytes (k = 4g..4g+3) next to each
// other, [K/4][NR][4], K zero-padded to a multiple of 4 and the last panel zero-padded to NR
// columns. That is the operand layout of vpdpbusd (AVX-512 VNNI), of vpmaddubsw+vpmaddwd
// (AVX2 / AVX-512BW) and of sdot (NEON dotprod): one 32-bit lane = one column's 4 k. The
// column sums of B are kept with it, so the zero point of A costs one multiply-add per column
// in the epilogue: acc = sum a*b - a_zero * colsum[n] + bias[n].
//
// Micro-kernels (qgemm_ukernel.h: MR rows x NR columns, accumulators in registers across K):
//   AVX-512 VNNI  8x32 vpdpbusd, A broadcast 4 bytes a row
//   AVX-512BW     8x32 vpmaddubsw + vpmaddwd, or the exact int16 path (below)
//   AVX2          4x16 the same with ymm
//   NEON          4x8  widening multiply-accumulate on a^0x80        (aarch64 builds only)
//   NEON dotprod  4x16 sdot by lane on a^0x80, + 128 * colsum        (aarch64 builds only)
//   portable      4x8  plain C++, exact
// vpmaddubsw adds two u8*s8 products into int16 with saturation (255*127*2 > 32767). pack_qb
// checks every pair (b[2i][n], b[2i+1][n]): when |b0| + |b1| <= 128 nothing can saturate
// (255 * 128 < 32767) and the fast path runs; otherwise the packed B is marked exact and the
// kernel widens A and B to int16 and uses vpmaddwd alone (about half as fast, always exact).
//
// The kernels read A through row pointers (XNNPACK's indirect GEMM): qgemm passes the rows
// of A, QConvNhwcU8 (qconv.h) the input pixels of each tap. A row's last 1..3 bytes of a K
// tail are read one by one, so nothing past a row is ever read.
//
// Output stage (fused into the kernel's epilogue, in registers):
//   u8:  y = clamp(nearbyint(float(acc) * scale[n]) + zero_point, min, max)  (round half to
//        even, as ONNX QLinearConv / QLinearMatMul; min/max fuse Relu or Clip)
//   f32: y = float(acc) * scale[n] [+ bias[n]]  (an optional float bias, added after the
//        product is rounded: never fused into an FMA)
// float(acc), the product and the sum are single IEEE float operations, so a reference
// computing them the same way agrees bit for bit. |acc * scale| must stay below 2^31 - 256 (any
// sensible quantization does).
//
// The packed B and its column sums are one 64-byte aligned blob ([64-byte header][panels,
// rounded to 64][column sums, rounded to 64]), so that a .brink package can store it and a
// later load adopt it in place (adopt_qb): packed_layout() names the packing exactly, and a
// blob of another layout or size is refused.
//
// Threads: the M x N tile grid is split into tasks as gemm.cc does; one call is one
// parallel_for. int32 accumulation wraps (vpdpbusd, not vpdpbusds), so the result is exact
// whenever the true sum fits in int32, for any K.
//
// Usage:
//   PackedQB w = pack_qb(weights, K, N, N, /*b_transposed=*/false, best_qisa());   // prepare
//   qgemm_u8(M, a, K, a_zero, w, bias, out, y, N, pool);                            // run
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brink/status.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace brink::kernels {

// Int8 instruction sets, chosen at run time (capped by BRINK_ISA like best_isa(): portable
// caps all; avx2 caps to kAvx2; avx512 allows the VNNI kernel; neon allows dotprod).
enum class QIsa {
  kPortable,
  kAvx2,        // vpmaddubsw or vpmaddwd, ymm
  kAvx512,      // AVX-512BW without VNNI
  kAvx512Vnni,  // vpdpbusd
  kNeon,
  kNeonDot,
};
bool qisa_supported(QIsa isa);
QIsa best_qisa();
std::vector<QIsa> supported_qisas();  // narrowest first, starts with kPortable
const char* qisa_name(QIsa isa);
// The int8 ISA for a kernel prepared for `isa` (KernelCreateContext::isa): portable and AVX2
// cap it as they cap the float kernels; the widest ISAs take the best int8 one there is.
QIsa qisa_for(Isa isa);

// Output stage. acc[m][n] = sum_k (a[m][k] - a_zero) * b[k][n] + bias[n]   (exact int32)
//  u8 output:  y = clamp(nearbyint(acc * scale[n]) + zero_point, min, max)
//  f32 output: y = acc * scale[n] + float_bias[n]   (the product rounded, then the sum)
struct QuantOutput {
  const float* scale = nullptr;       // per output column/channel
  bool per_channel = true;            // false: scale[0] for every column
  const float* float_bias = nullptr;  // f32 output only: n floats, or nullptr for none
  int32_t zero_point = 0;             // u8 output only
  uint8_t min = 0, max = 255;         // u8 output only: fused Relu/Clip as a clamp
};

// The micro-kernel tile of a QIsa: MR rows by NR columns (= the panel width).
struct QGemmTile {
  int mr;
  int nr;
};
QGemmTile qgemm_tile(QIsa isa);

// s8 B [k x n] packed for one QIsa's micro-kernel, with its column sums (for the a_zero
// correction). Movable, not copyable, immutable once packed (any number of threads may read).
class PackedQB {
 public:
  PackedQB() = default;
  PackedQB(PackedQB&&) noexcept = default;
  PackedQB& operator=(PackedQB&&) noexcept = default;

  bool empty() const { return !packed_; }
  QIsa isa() const { return isa_; }
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int nr() const { return nr_; }
  int64_t num_panels() const { return num_panels_; }
  // K rounded up to a multiple of 4: bytes per column in a panel.
  int64_t k4() const { return (k_ + 3) / 4 * 4; }
  // True when some pair of B could saturate vpmaddubsw: the x86 kernels then take the exact
  // int16 path (VNNI and NEON never need it).
  bool exact() const { return exact_; }
  // Panel p: k4() x NR bytes, [k4/4][NR][4].
  const int8_t* panel(int64_t p) const { return data_ + p * k4() * nr_; }
  // Column sums of B, num_panels() * NR of them (0 past n).
  const int32_t* column_sums() const { return colsum_; }
  size_t memory_bytes() const { return bytes_; }

  // The blob (header, panels, column sums) for a package to store, and its exact layout:
  // kernel, int8 ISA, NR, K and N.
  std::string packed_layout() const;
  const void* blob() const { return blob_.get(); }
  size_t blob_bytes() const { return bytes_; }

 private:
  friend PackedQB pack_qb(const int8_t* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed,
                          QIsa isa);
  friend Result<PackedQB> adopt_qb(const std::string& layout, const void* blob, size_t bytes,
                                   std::shared_ptr<const void> owner, int64_t k, int64_t n,
                                   QIsa isa);
  // The sizes of the packing for k x n on `isa` (no blob yet).
  static PackedQB layout_for(int64_t k, int64_t n, QIsa isa);
  QIsa isa_ = QIsa::kPortable;
  int64_t k_ = 0, n_ = 0, num_panels_ = 0;
  int nr_ = 1;
  bool packed_ = false;
  bool exact_ = false;
  size_t bytes_ = 0, panel_bytes_ = 0;   // the whole blob; its panels (rounded to 64)
  std::shared_ptr<const uint8_t> blob_;  // owned, or a package's mapping
  const int8_t* data_ = nullptr;         // the panels, in blob_
  const int32_t* colsum_ = nullptr;      // the column sums, in blob_
};

// b: k x n with row stride ldb, or with b_transposed n x k (a Linear/Gemm [out,in] weight).
// An unsupported `isa` packs for the portable kernel (isa() says which); a negative k or n
// gives an empty PackedQB.
PackedQB pack_qb(const int8_t* b, int64_t k, int64_t n, int64_t ldb, bool b_transposed, QIsa isa);

// Adopts a blob packed earlier by pack_qb (a .brink package's, kept alive by `owner`): `layout`
// and `bytes` must be exactly what pack_qb makes for k x n on `isa`, and `blob` 64-byte
// aligned, else an error naming the difference.
Result<PackedQB> adopt_qb(const std::string& layout, const void* blob, size_t bytes,
                          std::shared_ptr<const void> owner, int64_t k, int64_t n, QIsa isa);

// y (m x n, row stride ldy) from a (m x k u8, row stride lda). bias: n int32 or nullptr;
// out.scale must hold n floats (per_channel) or one. y must not overlap a. Nothing happens for
// an empty b or m <= 0. Splits the work over `pool` (nullptr: the calling thread).
void qgemm_u8(int64_t m, const uint8_t* a, int64_t lda, uint8_t a_zero, const PackedQB& b,
              const int32_t* bias, const QuantOutput& out, uint8_t* y, int64_t ldy,
              ThreadPool* pool);
void qgemm_f32(int64_t m, const uint8_t* a, int64_t lda, uint8_t a_zero, const PackedQB& b,
               const int32_t* bias, const QuantOutput& out, float* y, int64_t ldy,
               ThreadPool* pool);

}  // namespace brink::kernels
