// Depthwise convolution: packing, tiling over threads, dispatch, and the portable variant
// of depthwise_conv_impl.h (one lane of plain C++: the fallback, not a fast path).
#define BRINK_SIMD_PORTABLE
#include "kernels/depthwise_conv.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kernels/depthwise_conv_impl.h"

namespace brink::kernels {

namespace portable {
void depthwise_conv_tile(const depthwise_internal::Packed& p, const DepthwiseConvShape& s,
                         const float* x, const float* residual, float* y,
                         const depthwise_internal::Tile& t) {
  depthwise_conv_tile_impl(p, s, x, residual, y, t);
}
}  // namespace portable

namespace {

// Channels per packed block: the lanes of the variant's vector.
int64_t block_width(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return 16;
    case Isa::kAvx2:
      return 8;
    case Isa::kNeon:
      return 4;
    case Isa::kPortable:
      return 1;
  }
  return 1;
}

void run_tile(Isa isa, const depthwise_internal::Packed& p, const DepthwiseConvShape& s,
              const float* x, const float* residual, float* y, const depthwise_internal::Tile& t) {
  BRINK_ISA_DISPATCH(isa, depthwise_conv_tile, p, s, x, residual, y, t)
}

}  // namespace

namespace depthwise_internal {
void row_not_built(std::string_view row) {
  std::fprintf(stderr,
               "fatal: the depthwise convolution's '%.*s' row was left out of this build "
               "(DepthwiseConvNhwc::missing_row should have refused the layer)\n",
               static_cast<int>(row.size()), row.data());
  std::abort();
}
}  // namespace depthwise_internal

std::string_view DepthwiseConvNhwc::missing_row(int64_t channels, int64_t kernel_w,
                                                int64_t stride_w, int64_t dilation_w, Isa isa) {
  const int64_t w = block_width(isa);
  if (w == 1) return {};  // one lane: every shape takes the general row, always built
  if (channels % w != 0 && !ops::depthwise_path_selected(kDepthwisePartialRow))
    return kDepthwisePartialRow;
  if (channels < w) return {};  // the partial block alone
  // Full blocks take their fast row, or the general row when this build left it out.
  const std::string_view fast = depthwise_row_name(depthwise_row(kernel_w, stride_w, dilation_w));
  const std::string_view general = depthwise_row_name(DepthwiseRow::kGeneral);
  if (ops::depthwise_path_selected(fast) || ops::depthwise_path_selected(general)) return {};
  return general;
}

std::unique_ptr<DepthwiseConvNhwc> DepthwiseConvNhwc::create(int64_t channels, int64_t kernel_h,
                                                             int64_t kernel_w, const float* weights,
                                                             const float* bias,
                                                             const Activation& act, Isa isa) {
  if (channels < 1 || kernel_h < 1 || kernel_w < 1 || weights == nullptr) return nullptr;
  if (!isa_supported(isa)) return nullptr;
  std::unique_ptr<DepthwiseConvNhwc> k(new DepthwiseConvNhwc());
  k->isa_ = isa;
  k->channels_ = channels;
  k->kernel_h_ = kernel_h;
  k->kernel_w_ = kernel_w;
  k->act_ = act;
  const int64_t w = block_width(isa);
  k->block_ = w;
  const int64_t blocks = (channels + w - 1) / w;
  const int64_t taps = kernel_h * kernel_w;
  k->weights_.assign(static_cast<size_t>(blocks * taps * w), 0.0f);
  k->bias_.assign(static_cast<size_t>(blocks * w), 0.0f);
  for (int64_t ch = 0; ch < channels; ++ch) {
    const int64_t b = ch / w, lane = ch % w;
    for (int64_t t = 0; t < taps; ++t)
      k->weights_[static_cast<size_t>((b * taps + t) * w + lane)] = weights[ch * taps + t];
    if (bias != nullptr) k->bias_[static_cast<size_t>(ch)] = bias[ch];
  }
  return k;
}

void DepthwiseConvNhwc::run(const DepthwiseConvShape& s, const float* x, const float* residual,
                            float* y, ThreadPool* pool) const {
  using depthwise_internal::Tile;
  if (s.batch <= 0 || s.out_h <= 0 || s.out_w <= 0) return;
  const depthwise_internal::Packed p{weights_.data(), bias_.data(), act_, isa_};
  const int64_t rows = s.batch * s.out_h;
  const int64_t blocks = (channels_ + block_ - 1) / block_;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  if (threads <= 1) {
    // Bands of output rows: the input rows a band reads, all channels, stay in L2 while the
    // band's channel blocks sweep them.
    constexpr int64_t kBand = 8;
    for (int64_t r = 0; r < rows; r += kBand)
      run_tile(isa_, p, s, x, residual, y, Tile{r, std::min(rows, r + kBand), 0, blocks});
    return;
  }
  // About 4 tasks per thread, so that dynamic claiming evens out unequal rows (borders),
  // but no task under ~32k multiply-adds, where the claim would cost more than it spreads.
  const int64_t macs = rows * s.out_w * channels_ * kernel_h_ * kernel_w_;
  const int64_t want = std::clamp<int64_t>(macs / 32768, 1, int64_t{4} * threads);
  int64_t row_tasks = std::min(rows, want);
  int64_t block_tasks = 1;
  if (row_tasks < want) block_tasks = std::min(blocks, (want + row_tasks - 1) / row_tasks);
  const int64_t tasks = row_tasks * block_tasks;
  parallel_for(pool, tasks, [&](int64_t task) {
    const int64_t rt = task / block_tasks, bt = task % block_tasks;
    const Tile t{rows * rt / row_tasks, rows * (rt + 1) / row_tasks, blocks * bt / block_tasks,
                 blocks * (bt + 1) / block_tasks};
    run_tile(isa_, p, s, x, residual, y, t);
  });
}

}  // namespace brink::kernels
