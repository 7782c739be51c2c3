// ConvNhwcF32: weight packing, indirection tables, the tile schedule over the thread pool,
// and the portable micro-kernels (conv_ukernel.h has the contract they share with the
// per-ISA files).
#include "kernels/conv.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/memory.h"
#include "kernels/conv_ukernel.h"
#include "kernels/transpose.h"

namespace brink::kernels {

using conv_internal::IgemmArgs;
using conv_internal::IgemmConfig;
using conv_internal::IgemmFn;

namespace conv_internal {
namespace {

// Plain C++ that g++ vectorizes for the baseline ISA (SSE2 on x86-64): MR x NR accumulators
// of fixed size, the inner loop over NR contiguous packed weights.
template <int MR, int NR>
void igemm_portable(size_t nc, const float* const* ap, const float* w, float* c, const float* z,
                    const IgemmArgs& args) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = w[j];
  w += NR;
  for (size_t t = 0; t < args.ks; ++t) {
    const float* a[MR];
    for (int i = 0; i < MR; ++i) a[i] = ap[i];
    ap += MR;
    for (size_t k = 0; k < args.kc; ++k) {
      for (int i = 0; i < MR; ++i) {
        const float av = a[i][k];
        for (int j = 0; j < NR; ++j) acc[i][j] += av * w[j];
      }
      w += NR;
    }
  }
  const size_t n = std::min<size_t>(nc, NR);
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * args.c_stride;
    const float* zi = z == nullptr ? nullptr : z + i * args.c_stride;
    for (size_t j = 0; j < n; ++j) {
      float v = acc[i][j] + (zi != nullptr ? zi[j] : 0.0f);
      // Written so that a NaN passes through, as the vector kernels do.
      v = v < args.min ? args.min : (v > args.max ? args.max : v);
      ci[j] = v;
    }
  }
}

template <int NR, size_t... M>
constexpr void fill_portable(IgemmFn* table, std::index_sequence<M...>) {
  ((table[M + 1] = &igemm_portable<static_cast<int>(M) + 1, NR>), ...);
}

IgemmConfig make_portable_config() {
  IgemmConfig cfg;
  cfg.mr = 4;
  cfg.nr = 8;
  cfg.nr_half = 0;
  fill_portable<8>(cfg.full, std::make_index_sequence<4>());
  return cfg;
}

}  // namespace

const IgemmConfig* igemm_config_portable() {
  static const IgemmConfig cfg = make_portable_config();
  return &cfg;
}

// The ISA files exist only on their architecture; elsewhere their kernels are absent.
#if !BRINK_BUILD_AVX512
const IgemmConfig* igemm_config_avx512() {
  return nullptr;
}
#endif
#if !BRINK_BUILD_AVX2
const IgemmConfig* igemm_config_avx2() {
  return nullptr;
}
#endif
#if !BRINK_BUILD_NEON
const IgemmConfig* igemm_config_neon() {
  return nullptr;
}
#endif

}  // namespace conv_internal

namespace {

// Weight panels used together should stay in L2 while a range of pixel tiles streams past
// them: about half of a typical per-core L2 (1-2 MB on current x86, 512 KB-1 MB on ARM).
constexpr size_t kL2PanelBudget = 384 * 1024;
// Input channels up to which the taps of a kernel row are merged (see create()).
constexpr int64_t kMergeChannels = 8;
// Cached indirection tables for input sizes other than the prepared one.
constexpr size_t kMaxCachedPlans = 8;

const IgemmConfig* config_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return conv_internal::igemm_config_avx512();
    case Isa::kAvx2:
      return conv_internal::igemm_config_avx2();
    case Isa::kNeon:
      return conv_internal::igemm_config_neon();
    case Isa::kPortable:
      return BRINK_BUILD_PORTABLE ? conv_internal::igemm_config_portable() : nullptr;
  }
  return nullptr;
}

std::shared_ptr<float> aligned_floats(size_t n) {
  const size_t bytes = (std::max<size_t>(n, 1) * sizeof(float) + 63) / 64 * 64;
  float* p = static_cast<float*>(allocate_aligned(bytes));
  std::memset(p, 0, bytes);
  return std::shared_ptr<float>(p, [bytes](float* q) { free_aligned(q, bytes); });
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

struct ConvNhwcF32::Block {
  int64_t n0 = 0;     // first output channel, within the group
  int64_t nc = 0;     // valid output channels
  bool half = false;  // panel width cfg.nr_half instead of cfg.nr
  size_t offset = 0;  // floats from the group's first panel
};

struct ConvNhwcF32::Plan {
  Conv2dSpatial s;
  int64_t pixels = 0;  // out_h * out_w
  int64_t tiles = 0;   // ceil(pixels / mr)
  // 1x1 stride-1 unpadded: tile t's rows are input pixels t*mr.., no table needed.
  bool direct = false;
  // Row-merged (ConvNhwcF32::merge_rows_): the output columns whose kernel rows reach into
  // the left or right padding. Their rows are copied per run, zero-padded, into a border
  // buffer [image][in_h][border_ox][kw * C]; offsets into it are encoded as -2 - offset.
  std::vector<int64_t> border_ox;
  std::vector<int32_t> offsets;  // [tile][tap][mr]; -1: the zero row
};

ConvNhwcF32::~ConvNhwcF32() = default;

Result<std::unique_ptr<ConvNhwcF32>> ConvNhwcF32::make_layout(const Conv2dParams& p, Isa isa) {
  if (p.group < 1 || p.in_channels < 1 || p.out_channels < 1 || p.in_channels % p.group != 0 ||
      p.out_channels % p.group != 0)
    return invalid_argument("conv: channels " + std::to_string(p.in_channels) + " -> " +
                            std::to_string(p.out_channels) + " do not split into " +
                            std::to_string(p.group) + " groups");
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 ||
      p.dilation_w < 1)
    return invalid_argument("conv: kernel, strides and dilations must be positive");
  const IgemmConfig* cfg = isa_supported(isa) ? config_for(isa) : nullptr;
  if (cfg == nullptr)
    return unsupported(std::string("conv: no kernels for ISA ") + isa_name(isa) + " here");

  std::unique_ptr<ConvNhwcF32> k(new ConvNhwcF32());
  k->p_ = p;
  k->isa_ = isa;
  k->cfg_ = cfg;
  k->cg_ = p.in_channels / p.group;
  k->mg_ = p.out_channels / p.group;
  k->ks_ = p.kernel_h * p.kernel_w;
  const int64_t kdim = k->ks_ * k->cg_;
  // With few input channels a tap is a handful of multiply-adds per row pointer: merge the
  // kw taps of a kernel row into one of kw*C channels (kw*C contiguous floats of the input,
  // or of a zero-padded copy for the few output columns at the left and right border).
  // The packed weights are the same: tap-major then channel is row-major then (kx, c).
  k->merge_rows_ = p.group == 1 && p.dilation_w == 1 && p.kernel_w > 1 && k->cg_ <= kMergeChannels;
  k->taps_ = k->merge_rows_ ? p.kernel_h : k->ks_;
  k->tap_channels_ = k->merge_rows_ ? p.kernel_w * k->cg_ : k->cg_;
  if (kdim > INT32_MAX / 64) return unsupported("conv: the reduction is too long");

  // Full-width blocks, and a narrow one for a remainder it covers (48 channels: 32 + 16).
  size_t offset = 0;
  for (int64_t n0 = 0; n0 < k->mg_;) {
    Block blk;
    blk.n0 = n0;
    const int64_t rest = k->mg_ - n0;
    blk.half = rest < cfg->nr && cfg->nr_half > 0 && rest <= cfg->nr_half;
    const int64_t nr = blk.half ? cfg->nr_half : cfg->nr;
    blk.nc = std::min(rest, nr);
    blk.offset = offset;
    offset += static_cast<size_t>(nr * (1 + kdim));
    k->blocks_.push_back(blk);
    n0 += blk.nc;
  }
  k->group_floats_ = offset;
  const size_t full_panel_bytes = static_cast<size_t>(cfg->nr * (1 + kdim)) * sizeof(float);
  k->blocks_per_chunk_ =
      std::max<int64_t>(1, static_cast<int64_t>(kL2PanelBudget / full_panel_bytes));

  k->zero_ = aligned_floats(static_cast<size_t>(k->tap_channels_) + 16);
  if (k->zero_ == nullptr) return internal_error("conv: out of memory");
  return k;
}

std::string ConvNhwcF32::packed_layout() const {
  return std::string("igemm-f32-v1/") + isa_name(isa_) + "/nr" + std::to_string(cfg_->nr) + "." +
         std::to_string(cfg_->nr_half) + (merge_rows_ ? "/merged-rows" : "");
}

Result<std::unique_ptr<ConvNhwcF32>> ConvNhwcF32::create_prepacked(
    const Conv2dParams& p, const std::string& layout, const float* packed, size_t floats,
    std::shared_ptr<const void> owner, Isa isa) {
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, isa));
  if (layout != k->packed_layout() || floats != k->packed_floats())
    return unsupported("conv: packed weights in layout " + layout + " (" + std::to_string(floats) +
                       " floats), this build packs " + k->packed_layout() + " (" +
                       std::to_string(k->packed_floats()) + " floats)");
  if (reinterpret_cast<uintptr_t>(packed) % 64 != 0)
    return invalid_argument("conv: packed weights are not 64-byte aligned");
  k->packed_ =
      std::shared_ptr<float>(std::const_pointer_cast<void>(owner), const_cast<float*>(packed));
  return k;
}

Result<std::unique_ptr<ConvNhwcF32>> ConvNhwcF32::create(const Conv2dParams& p, const float* w,
                                                         const float* b, Isa isa) {
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, isa));
  const IgemmConfig* cfg = k->cfg_;
  k->packed_ = aligned_floats(k->packed_floats());
  if (k->packed_ == nullptr) return internal_error("conv: out of memory packing the weights");
  float* packed = k->packed_.get();
  const int64_t kh = p.kernel_h, kw = p.kernel_w;
  for (int64_t g = 0; g < p.group; ++g) {
    for (const Block& blk : k->blocks_) {
      const int64_t nr = blk.half ? cfg->nr_half : cfg->nr;
      float* panel = packed + static_cast<size_t>(g) * k->group_floats_ + blk.offset;
      for (int64_t j = 0; j < blk.nc; ++j) {
        const int64_t m = g * k->mg_ + blk.n0 + j;
        panel[j] = b != nullptr ? b[m] : 0.0f;
        for (int64_t c = 0; c < k->cg_; ++c)
          for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x) {
              const int64_t tap = y * kw + x;
              panel[nr + (tap * k->cg_ + c) * nr + j] = w[((m * k->cg_ + c) * kh + y) * kw + x];
            }
      }
    }
  }
  return k;
}

Result<std::shared_ptr<const ConvNhwcF32::Plan>> ConvNhwcF32::make_plan(
    const Conv2dSpatial& s) const {
  if (s.in_h < 1 || s.in_w < 1 || s.out_h < 1 || s.out_w < 1)
    return invalid_argument("conv: empty spatial size");
  auto plan = std::make_shared<Plan>();
  plan->s = s;
  std::vector<int64_t> border_index;  // output column -> its row in the border buffer
  if (merge_rows_) {
    border_index.assign(static_cast<size_t>(s.out_w), -1);
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      const int64_t ix = ox * p_.stride_w - s.pad_left;
      if (ix < 0 || ix + p_.kernel_w > s.in_w) {
        border_index[static_cast<size_t>(ox)] = static_cast<int64_t>(plan->border_ox.size());
        plan->border_ox.push_back(ox);
      }
    }
  }
  const int64_t row_floats = p_.kernel_w * p_.in_channels;
  const int64_t border_floats = s.in_h * static_cast<int64_t>(plan->border_ox.size()) * row_floats;
  if (s.in_h * s.in_w * p_.in_channels > INT32_MAX || border_floats > INT32_MAX / 2)
    return unsupported("conv: an image of " + std::to_string(s.in_h) + "x" +
                       std::to_string(s.in_w) + "x" + std::to_string(p_.in_channels) +
                       " is too large for 32-bit offsets");
  const int64_t mr = cfg_->mr;
  plan->pixels = s.out_h * s.out_w;
  plan->tiles = ceil_div(plan->pixels, mr);
  plan->direct = p_.kernel_h == 1 && p_.kernel_w == 1 && p_.stride_h == 1 && p_.stride_w == 1 &&
                 s.pad_top == 0 && s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
  if (plan->direct) return std::shared_ptr<const Plan>(std::move(plan));

  const int64_t c = p_.in_channels;
  const int64_t taps_w = merge_rows_ ? 1 : p_.kernel_w;
  plan->offsets.resize(static_cast<size_t>(plan->tiles * taps_ * mr));
  int32_t* o = plan->offsets.data();
  for (int64_t t = 0; t < plan->tiles; ++t) {
    for (int64_t ky = 0; ky < p_.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < taps_w; ++kx) {
        for (int64_t i = 0; i < mr; ++i) {
          // Past the last pixel (rows no kernel reads) repeat it, to keep the table defined.
          const int64_t pix = std::min(t * mr + i, plan->pixels - 1);
          const int64_t oy = pix / s.out_w, ox = pix % s.out_w;
          const int64_t iy = oy * p_.stride_h - s.pad_top + ky * p_.dilation_h;
          if (merge_rows_) {
            const int64_t border = border_index[static_cast<size_t>(ox)];
            const int64_t nb = static_cast<int64_t>(plan->border_ox.size());
            const int64_t ix = ox * p_.stride_w - s.pad_left;
            if (iy < 0 || iy >= s.in_h)
              *o++ = -1;
            else if (border >= 0)
              *o++ = static_cast<int32_t>(-2 - (iy * nb + border) * row_floats);
            else
              *o++ = static_cast<int32_t>((iy * s.in_w + ix) * c);
            continue;
          }
          const int64_t ix = ox * p_.stride_w - s.pad_left + kx * p_.dilation_w;
          const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
          *o++ = inside ? static_cast<int32_t>((iy * s.in_w + ix) * c) : -1;
        }
      }
    }
  }
  return std::shared_ptr<const Plan>(std::move(plan));
}

Status ConvNhwcF32::prepare(const Conv2dSpatial& s) {
  BRINK_ASSIGN_OR_RETURN(prepared_, make_plan(s));
  return Status::ok();
}

Result<std::shared_ptr<const ConvNhwcF32::Plan>> ConvNhwcF32::plan_for(
    const Conv2dSpatial& s) const {
  if (prepared_ != nullptr && prepared_->s == s) return prepared_;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& plan : cache_)
    if (plan->s == s) return plan;
  BRINK_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, make_plan(s));
  if (cache_.size() >= kMaxCachedPlans) cache_.erase(cache_.begin());
  cache_.push_back(plan);
  return plan;
}

size_t ConvNhwcF32::memory_bytes() const {
  size_t bytes = group_floats_ * static_cast<size_t>(p_.group) * sizeof(float);
  if (prepared_ != nullptr) bytes += prepared_->offsets.size() * sizeof(int32_t);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& plan : cache_) bytes += plan->offsets.size() * sizeof(int32_t);
  return bytes;
}

void ConvNhwcF32::choose_splits(int threads, int64_t outer, int64_t tiles, int64_t nblocks,
                                int64_t* pixel_splits, int64_t* block_splits) const {
  // The task grid is (image, group) x ranges of pixel tiles x ranges of channel blocks. Its
  // cost model, in cycles at roughly AVX-512 speed (only the comparison matters): the busiest
  // thread's tasks, each its tiles x blocks of FMAs plus what it loads (every task reads
  // its blocks' weight panels and its tiles' input rows once), plus half a task for the
  // noise of a shared machine and a fixed cost per task. So 2 threads get equal shares also
  // when the pixels are few (7x7: split the channels), large weights are not re-read for
  // every small group of pixels, and tiny convolutions run on the calling thread.
  const double k = static_cast<double>(ks_ * cg_);
  const double mr = cfg_->mr, nr = cfg_->nr;
  const double unit_cycles = mr * nr * k / 16.0;
  const double panel_cycles = nr * k * 4.0 / 16.0;
  const double rows_cycles = mr * k * 4.0 / 16.0;
  constexpr double kTaskCycles = 3000.0;
  const int64_t limit = 8 * static_cast<int64_t>(threads);
  double best = -1.0;
  for (int64_t ps = 1; ps <= std::min(tiles, limit); ++ps) {
    for (int64_t bs = 1; bs <= std::min(nblocks, limit); ++bs) {
      const double t = static_cast<double>(ceil_div(tiles, ps));
      const double b = static_cast<double>(ceil_div(nblocks, bs));
      const double task =
          t * b * unit_cycles + 0.5 * (b * panel_cycles + t * rows_cycles) + kTaskCycles;
      const double rounds = static_cast<double>(ceil_div(outer * ps * bs, threads));
      // Handing the loop to the pool at all costs about as much as a small task.
      const double cost = (rounds + 0.5) * task + (outer * ps * bs > 1 ? 2.0 * kTaskCycles : 0.0);
      if (best < 0.0 || cost < best) {
        best = cost;
        *pixel_splits = ps;
        *block_splits = bs;
      }
    }
  }
}

Status ConvNhwcF32::run(const float* x, const float* z, float* y, int64_t batch,
                        const Conv2dSpatial& s, ThreadPool* pool) const {
  if (batch < 1) return Status::ok();
  BRINK_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(s));
  const Plan& pl = *plan;
  const IgemmConfig& cfg = *cfg_;
  const int64_t mr = cfg.mr;
  const int64_t c_in = p_.in_channels, m_out = p_.out_channels;
  const int64_t out_image = pl.pixels * m_out;
  const int64_t in_image = s.in_h * s.in_w * c_in;
  // Row-merged: the kernel rows of the border columns, zero-padded (see Plan::border_ox).
  // The calling thread's buffer grows to the largest it has needed, after which runs do
  // not allocate.
  const float* border = nullptr;
  const int64_t nb = static_cast<int64_t>(pl.border_ox.size());
  const int64_t row_floats = p_.kernel_w * c_in, border_image = s.in_h * nb * row_floats;
  if (nb > 0) {
    thread_local std::vector<float> border_buffer;
    if (border_buffer.size() < static_cast<size_t>(batch * border_image))
      border_buffer.resize(static_cast<size_t>(batch * border_image));
    float* dst = border_buffer.data();
    for (int64_t r = 0; r < batch * s.in_h; ++r) {
      const float* xrow = x + r * s.in_w * c_in;
      for (int64_t bi = 0; bi < nb; ++bi) {
        const int64_t ix0 = pl.border_ox[static_cast<size_t>(bi)] * p_.stride_w - s.pad_left;
        for (int64_t kx = 0; kx < p_.kernel_w; ++kx, dst += c_in) {
          const int64_t ix = ix0 + kx;
          if (ix < 0 || ix >= s.in_w)
            std::fill(dst, dst + c_in, 0.0f);
          else
            std::copy(xrow + ix * c_in, xrow + (ix + 1) * c_in, dst);
        }
      }
    }
    border = border_buffer.data();
  }
  const int64_t nblocks = static_cast<int64_t>(blocks_.size());
  const int64_t outer = batch * p_.group;

  int64_t pixel_splits = 1, block_splits = 1;
  if (pool != nullptr && pool->num_threads() > 1)
    choose_splits(pool->num_threads(), outer, pl.tiles, nblocks, &pixel_splits, &block_splits);
  const int64_t tiles_per_task = ceil_div(pl.tiles, pixel_splits);
  pixel_splits = ceil_div(pl.tiles, tiles_per_task);
  const int64_t blocks_per_task = ceil_div(nblocks, block_splits);
  block_splits = ceil_div(nblocks, blocks_per_task);
  const int64_t num_tasks = outer * pixel_splits * block_splits;

  const bool post_activation = !p_.activation.none() && !p_.activation.is_clamp();
  const float lo = p_.activation.is_clamp() ? p_.activation.clamp_min() : -INFINITY;
  const float hi = p_.activation.is_clamp() ? p_.activation.clamp_max() : INFINITY;
  const float* packed = packed_.get();
  const float* zero = zero_.get();

  auto task = [&](int64_t index) {
    const int64_t bsi = index % block_splits;
    const int64_t psi = (index / block_splits) % pixel_splits;
    const int64_t og = index / (block_splits * pixel_splits);
    const int64_t n = og / p_.group, g = og % p_.group;
    const int64_t t_begin = psi * tiles_per_task;
    const int64_t t_end = std::min(pl.tiles, t_begin + tiles_per_task);
    const int64_t b_begin = bsi * blocks_per_task;
    const int64_t b_end = std::min(nblocks, b_begin + blocks_per_task);

    IgemmArgs args;
    args.kc = static_cast<size_t>(tap_channels_);
    args.ks = static_cast<size_t>(taps_);
    args.c_stride = static_cast<size_t>(m_out);
    args.min = lo;
    args.max = hi;
    const float* xg = x + n * in_image + g * cg_;
    const float* bg = border + n * border_image;
    const float* wg = packed + static_cast<size_t>(g) * group_floats_;
    float* yg = y + n * out_image + g * mg_;
    const float* zg = z == nullptr ? nullptr : z + n * out_image + g * mg_;

    // The tile's row pointers, [tap][rows], shared by all its blocks. Grows to the largest
    // kh*kw*mr a thread has seen, after which runs do not allocate.
    thread_local std::vector<const float*> rows_buffer;
    if (rows_buffer.size() < static_cast<size_t>(taps_ * mr))
      rows_buffer.resize(static_cast<size_t>(taps_ * mr));
    const float** a = rows_buffer.data();
    for (int64_t c0 = b_begin; c0 < b_end; c0 += blocks_per_chunk_) {
      const int64_t c1 = std::min(b_end, c0 + blocks_per_chunk_);
      for (int64_t t = t_begin; t < t_end; ++t) {
        const int64_t p0 = t * mr;
        const int64_t rows = std::min(mr, pl.pixels - p0);
        if (pl.direct) {
          for (int64_t i = 0; i < rows; ++i) a[i] = xg + (p0 + i) * c_in;
        } else {
          const int32_t* o = pl.offsets.data() + t * taps_ * mr;
          for (int64_t tap = 0; tap < taps_; ++tap, o += mr)
            for (int64_t i = 0; i < rows; ++i)
              a[tap * rows + i] = o[i] >= 0 ? xg + o[i] : o[i] == -1 ? zero : bg + (-2 - o[i]);
        }
        for (int64_t bi = c0; bi < c1; ++bi) {
          const Block& blk = blocks_[static_cast<size_t>(bi)];
          const IgemmFn fn = blk.half ? cfg.half[rows] : cfg.full[rows];
          const int64_t at = p0 * m_out + blk.n0;
          fn(static_cast<size_t>(blk.nc), a, wg + blk.offset, yg + at,
             zg == nullptr ? nullptr : zg + at, args);
        }
        if (post_activation) {
          const Block& first = blocks_[static_cast<size_t>(c0)];
          const Block& last = blocks_[static_cast<size_t>(c1 - 1)];
          const size_t width = static_cast<size_t>(last.n0 + last.nc - first.n0);
          for (int64_t i = 0; i < rows; ++i)
            apply_activation(p_.activation, yg + (p0 + i) * m_out + first.n0, width, isa_);
        }
      }
    }
  };
  parallel_for(pool, num_tasks, task);
  return Status::ok();
}

void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw,
                  ThreadPool* pool) {
  transpose_planes_f32(src, dst, n, c, hw, pool);
}

void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t hw,
                  ThreadPool* pool) {
  transpose_planes_f32(src, dst, n, hw, c, pool);
}

}  // namespace brink::kernels
