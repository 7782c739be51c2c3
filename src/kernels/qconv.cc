// QConvNhwcU8: weight packing, indirection tables and the tile schedule over the thread pool,
// on the INT8 micro-kernels of qgemm_ukernel.h (see qconv.h for the design).
#include "kernels/qconv.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "core/memory.h"
#include "kernels/qgemm_ukernel.h"

namespace brink::kernels {

using qgemm_detail::QTileArgs;
using qgemm_detail::QUkernel;

namespace {

constexpr size_t kMaxCachedPlans = 8;
// Input channels per group up to which a tile's taps are copied into one row (im2col).
constexpr int64_t kIm2colChannels = 8;  // the gather below has cases 1..8

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

struct QConvNhwcU8::Plan {
  Conv2dSpatial s;
  int64_t pixels = 0;  // out_h * out_w
  int64_t tiles = 0;   // ceil(pixels / mr)
  // 1x1 stride-1 unpadded: tile t's rows are input pixels t*mr.., no table needed.
  bool direct = false;
  std::vector<int32_t> offsets;  // [tile][tap][mr]; -1: the x_zero row
};

QConvNhwcU8::~QConvNhwcU8() = default;

namespace {

// The blob's header (the first 64 bytes).
struct QConvBlobHeader {
  uint32_t magic;    // kBlobMagic
  uint32_t version;  // kBlobVersion
  uint32_t x_zero;   // the zero point folded into the constants
  uint32_t exact;    // 1: some weight pair could saturate vpmaddubsw
  uint64_t weight_bytes, offset_bytes;
};
static_assert(sizeof(QConvBlobHeader) <= 64);
constexpr uint32_t kBlobMagic = 0x56435142;  // "BQCV"
constexpr uint32_t kBlobVersion = 1;
constexpr size_t kHeaderBytes = 64;

size_t round64(size_t n) {
  return (n + 63) / 64 * 64;
}

}  // namespace

Result<std::unique_ptr<QConvNhwcU8>> QConvNhwcU8::make_layout(const Conv2dParams& p, uint8_t x_zero,
                                                              QIsa isa) {
  if (p.group < 1 || p.in_channels < 1 || p.out_channels < 1 || p.in_channels % p.group != 0 ||
      p.out_channels % p.group != 0)
    return invalid_argument("qconv: channels " + std::to_string(p.in_channels) + " -> " +
                            std::to_string(p.out_channels) + " do not split into " +
                            std::to_string(p.group) + " groups");
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 ||
      p.dilation_w < 1)
    return invalid_argument("qconv: kernel, strides and dilations must be positive");
  if (!qisa_supported(isa))
    return unsupported(std::string("qconv: no kernels for int8 ISA ") + qisa_name(isa) + " here");

  std::unique_ptr<QConvNhwcU8> k(new QConvNhwcU8());
  k->p_ = p;
  k->isa_ = isa;
  k->uk_ = qgemm_detail::qukernel_for(isa);
  k->x_zero_ = x_zero;
  k->cg_ = p.in_channels / p.group;
  k->cg4_ = (k->cg_ + 3) / 4 * 4;
  k->mg_ = p.out_channels / p.group;
  k->ks_ = p.kernel_h * p.kernel_w;
  k->kdim_ = k->ks_ * k->cg_;
  if (k->ks_ * k->cg4_ > INT32_MAX / 64) return unsupported("qconv: the reduction is too long");
  k->im2col_ = k->ks_ > 1 && k->cg_ <= kIm2colChannels;
  const int nr = k->uk_->nr;
  k->nblocks_ = ceil_div(k->mg_, nr);
  // K of the packing: per tap cg rounded up to 4, or (im2col) all taps' channels in a row.
  k->kpacked_ = k->im2col_ ? (k->kdim_ + 3) / 4 * 4 : k->ks_ * k->cg4_;
  k->block_bytes_ = static_cast<size_t>(k->kpacked_ * nr);
  const size_t blocks = static_cast<size_t>(k->nblocks_ * p.group);
  k->weight_bytes_ = round64(k->block_bytes_ * blocks);
  k->offset_bytes_ = round64(blocks * static_cast<size_t>(nr) * sizeof(int32_t));
  k->blob_bytes_ = kHeaderBytes + k->weight_bytes_ + k->offset_bytes_;
  k->zero_row_.assign(static_cast<size_t>(k->cg4_ + 64), x_zero);
  return k;
}

void QConvNhwcU8::adopt_blob() {
  packed_ = reinterpret_cast<const int8_t*>(blob_.get() + kHeaderBytes);
  offset_ = reinterpret_cast<const int32_t*>(blob_.get() + kHeaderBytes + weight_bytes_);
  QConvBlobHeader h;
  std::memcpy(&h, blob_.get(), sizeof h);
  exact_ = h.exact != 0;
}

std::string QConvNhwcU8::packed_layout() const {
  return std::string("qconv-nhwc-u8-v") + std::to_string(kBlobVersion) + "/" + qisa_name(isa_) +
         "/mr" + std::to_string(uk_->mr) + "nr" + std::to_string(uk_->nr) + "/k" +
         std::to_string(kpacked_) + (im2col_ ? "/im2col" : "");
}

Result<std::unique_ptr<QConvNhwcU8>> QConvNhwcU8::create_prepacked(
    const Conv2dParams& p, const std::string& layout, const void* packed, size_t bytes,
    std::shared_ptr<const void> owner, uint8_t x_zero, QIsa isa) {
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, x_zero, isa));
  if (layout != k->packed_layout() || bytes != k->blob_bytes_)
    return unsupported("qconv: packed weights in layout " + layout + " (" + std::to_string(bytes) +
                       " bytes), this build packs " + k->packed_layout() + " (" +
                       std::to_string(k->blob_bytes_) + " bytes)");
  if (packed == nullptr || reinterpret_cast<uintptr_t>(packed) % 64 != 0)
    return invalid_argument("qconv: packed weights are not 64-byte aligned");
  QConvBlobHeader h;
  std::memcpy(&h, packed, sizeof h);
  if (h.magic != kBlobMagic || h.version != kBlobVersion || h.weight_bytes != k->weight_bytes_ ||
      h.offset_bytes != k->offset_bytes_ || h.exact > 1)
    return invalid_argument("qconv: packed weights have a damaged header");
  if (h.x_zero != x_zero)
    return invalid_argument("qconv: packed weights fold input zero point " +
                            std::to_string(h.x_zero) + ", the layer has " + std::to_string(x_zero));
  k->blob_ = std::shared_ptr<const uint8_t>(std::move(owner), static_cast<const uint8_t*>(packed));
  k->adopt_blob();
  return k;
}

Result<std::unique_ptr<QConvNhwcU8>> QConvNhwcU8::create(const Conv2dParams& p, const int8_t* w,
                                                         const int32_t* bias, uint8_t x_zero,
                                                         QIsa isa) {
  if (w == nullptr) return invalid_argument("qconv: no weights");
  BRINK_ASSIGN_OR_RETURN(auto k, make_layout(p, x_zero, isa));
  const int nr = k->uk_->nr;
  const size_t bytes = k->blob_bytes_;
  uint8_t* blob = static_cast<uint8_t*>(allocate_aligned(bytes));
  if (blob == nullptr) return internal_error("qconv: out of memory");
  std::memset(blob, 0, bytes);
  k->blob_ = std::shared_ptr<const uint8_t>(
      blob, [bytes](const uint8_t* q) { free_aligned(const_cast<uint8_t*>(q), bytes); });
  int8_t* data = reinterpret_cast<int8_t*>(blob + kHeaderBytes);
  int32_t* offsets = reinterpret_cast<int32_t*>(blob + kHeaderBytes + k->weight_bytes_);

  // Weight (m, c, tap) of group g is w[((g * mg + m) * cg + c) * ks + tap].
  const int64_t ks = k->ks_, cg = k->cg_, cg4 = k->cg4_, mg = k->mg_;
  const uint32_t zero_diff = static_cast<uint32_t>(static_cast<int32_t>(x_zero) - k->uk_->a_bias);
  bool exact = false;
  for (int64_t g = 0; g < p.group; ++g) {
    for (int64_t bi = 0; bi < k->nblocks_; ++bi) {
      int8_t* dst = data + static_cast<size_t>(g * k->nblocks_ + bi) * k->block_bytes_;
      int32_t* off = offsets + (g * k->nblocks_ + bi) * nr;
      for (int64_t j = 0; j < nr; ++j) {
        const int64_t m = bi * nr + j;
        if (m >= mg) break;
        const int8_t* wm = w + (g * mg + m) * cg * ks;
        int32_t sum = 0;
        int32_t prev = 0;
        for (int64_t t = 0; t < ks; ++t) {
          for (int64_t c = 0; c < cg; ++c) {
            const int8_t v = wm[c * ks + t];
            // Position along the packed K: per tap padded to 4, or im2col's t * cg + c.
            const int64_t kk = k->im2col_ ? t * cg + c : t * cg4 + c;
            dst[(kk / 4) * nr * 4 + j * 4 + kk % 4] = v;
            sum += v;
            // vpmaddubsw pairs K positions (2i, 2i + 1): an odd position's partner is the
            // weight just before it (padding only follows an odd count, at even positions).
            if (kk % 2 == 1 && qgemm_detail::pair_could_saturate(prev, v)) exact = true;
            prev = v;
          }
        }
        const uint32_t b = bias != nullptr ? static_cast<uint32_t>(bias[g * mg + m]) : 0;
        off[j] = static_cast<int32_t>(b - zero_diff * static_cast<uint32_t>(sum));
      }
    }
  }
  QConvBlobHeader h{kBlobMagic,      kBlobVersion,     x_zero,
                    exact ? 1u : 0u, k->weight_bytes_, k->offset_bytes_};
  std::memcpy(blob, &h, sizeof h);
  k->adopt_blob();
  return k;
}

Result<std::shared_ptr<const QConvNhwcU8::Plan>> QConvNhwcU8::make_plan(
    const Conv2dSpatial& s) const {
  if (s.in_h < 1 || s.in_w < 1 || s.out_h < 1 || s.out_w < 1)
    return invalid_argument("qconv: empty spatial size");
  if (s.in_h * s.in_w * p_.in_channels > INT32_MAX)
    return unsupported("qconv: an image of " + std::to_string(s.in_h) + "x" +
                       std::to_string(s.in_w) + "x" + std::to_string(p_.in_channels) +
                       " is too large for 32-bit offsets");
  auto plan = std::make_shared<Plan>();
  plan->s = s;
  const int64_t mr = uk_->mr;
  plan->pixels = s.out_h * s.out_w;
  plan->tiles = ceil_div(plan->pixels, mr);
  plan->direct = p_.kernel_h == 1 && p_.kernel_w == 1 && p_.stride_h == 1 && p_.stride_w == 1 &&
                 s.pad_top == 0 && s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
  if (plan->direct) return std::shared_ptr<const Plan>(std::move(plan));

  const int64_t c = p_.in_channels;
  plan->offsets.resize(static_cast<size_t>(plan->tiles * ks_ * mr));
  int32_t* o = plan->offsets.data();
  for (int64_t t = 0; t < plan->tiles; ++t) {
    for (int64_t ky = 0; ky < p_.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < p_.kernel_w; ++kx) {
        for (int64_t i = 0; i < mr; ++i) {
          // Past the last pixel (rows no kernel reads) repeat it, to keep the table defined.
          const int64_t pix = std::min(t * mr + i, plan->pixels - 1);
          const int64_t oy = pix / s.out_w, ox = pix % s.out_w;
          const int64_t iy = oy * p_.stride_h - s.pad_top + ky * p_.dilation_h;
          const int64_t ix = ox * p_.stride_w - s.pad_left + kx * p_.dilation_w;
          const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
          *o++ = inside ? static_cast<int32_t>((iy * s.in_w + ix) * c) : -1;
        }
      }
    }
  }
  return std::shared_ptr<const Plan>(std::move(plan));
}

Status QConvNhwcU8::prepare(const Conv2dSpatial& s) {
  BRINK_ASSIGN_OR_RETURN(prepared_, make_plan(s));
  return Status::ok();
}

Result<std::shared_ptr<const QConvNhwcU8::Plan>> QConvNhwcU8::plan_for(
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

size_t QConvNhwcU8::memory_bytes() const {
  size_t bytes = blob_bytes_ + zero_row_.size();
  if (prepared_ != nullptr) bytes += prepared_->offsets.size() * sizeof(int32_t);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& plan : cache_) bytes += plan->offsets.size() * sizeof(int32_t);
  return bytes;
}

Status QConvNhwcU8::run(const uint8_t* x, const QuantOutput& out, void* y, bool f32, int64_t batch,
                        const Conv2dSpatial& s, ThreadPool* pool) const {
  if (batch < 1) return Status::ok();
  if (out.scale == nullptr) return invalid_argument("qconv: the output stage has no scale");
  BRINK_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(s));
  const Plan& pl = *plan;
  const int64_t mr = uk_->mr, nr = uk_->nr;
  const int64_t c_in = p_.in_channels, m_out = p_.out_channels;
  const int64_t out_image = pl.pixels * m_out;
  const int64_t in_image = s.in_h * s.in_w * c_in;
  const int64_t outer = batch * p_.group;
  const size_t elem = f32 ? sizeof(float) : sizeof(uint8_t);
  const qgemm_detail::QTileFn* fns = exact_ ? uk_->exact : uk_->tile;

  // Tasks: (image, group) x ranges of pixel tiles x ranges of channel blocks, so that every
  // thread gets about the same work also when the pixels are few (7x7: split the channels).
  int64_t pixel_splits = 1, block_splits = 1;
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  if (threads > 1) {
    const double unit = static_cast<double>(mr * nr * ks_ * cg4_);
    constexpr double kTaskCost = 20000.0;
    double best = -1.0;
    const int64_t limit = 8 * static_cast<int64_t>(threads);
    for (int64_t ps = 1; ps <= std::min(pl.tiles, limit); ++ps)
      for (int64_t bs = 1; bs <= std::min(nblocks_, limit); ++bs) {
        const double t = static_cast<double>(ceil_div(pl.tiles, ps));
        const double b = static_cast<double>(ceil_div(nblocks_, bs));
        const double task = t * b * unit +
                            2.0 * static_cast<double>(ks_ * cg4_) *
                                (b * static_cast<double>(nr) + t * static_cast<double>(mr)) +
                            kTaskCost;
        const double cost = static_cast<double>(ceil_div(outer * ps * bs, threads)) * task;
        if (best < 0.0 || cost < best * 0.999) {
          best = cost;
          pixel_splits = ps;
          block_splits = bs;
        }
      }
  }
  const int64_t tiles_per_task = ceil_div(pl.tiles, pixel_splits);
  pixel_splits = ceil_div(pl.tiles, tiles_per_task);
  const int64_t blocks_per_task = ceil_div(nblocks_, block_splits);
  block_splits = ceil_div(nblocks_, blocks_per_task);
  const int64_t num_tasks = outer * pixel_splits * block_splits;
  const int8_t* packed = packed_;
  const uint8_t* zero = zero_row_.data();

  auto task = [&](int64_t index) {
    const int64_t bsi = index % block_splits;
    const int64_t psi = (index / block_splits) % pixel_splits;
    const int64_t og = index / (block_splits * pixel_splits);
    const int64_t n = og / p_.group, g = og % p_.group;
    const int64_t t_begin = psi * tiles_per_task;
    const int64_t t_end = std::min(pl.tiles, t_begin + tiles_per_task);
    const int64_t b_begin = bsi * blocks_per_task;
    const int64_t b_end = std::min(nblocks_, b_begin + blocks_per_task);
    const uint8_t* xg = x + n * in_image + g * cg_;
    char* yg = static_cast<char*>(y) + static_cast<size_t>(n * out_image + g * mg_) * elem;

    // This task's scales, [block][NR] (0 past the group's channels), and the tile's row
    // pointers, [tap][rows]. Both grow to the largest a thread has seen, then stay.
    thread_local std::vector<float> scale_buffer;
    thread_local std::vector<const uint8_t*> rows_buffer;
    thread_local std::vector<uint8_t> im2col_buffer;
    // One byte of slack past K: the 3-channel gather below copies 4 bytes per tap.
    const int64_t row_bytes = (kdim_ + 4) / 4 * 4;
    // Bytes of x readable from xg on (a 4-byte copy must stay inside x).
    const int64_t x_left = (batch - n) * in_image - g * cg_;
    if (im2col_ && im2col_buffer.size() < static_cast<size_t>(mr * row_bytes))
      im2col_buffer.resize(static_cast<size_t>(mr * row_bytes));
    const size_t nscale = static_cast<size_t>((b_end - b_begin) * nr);
    if (scale_buffer.size() < nscale) scale_buffer.resize(nscale);
    if (rows_buffer.size() < static_cast<size_t>(ks_ * mr))
      rows_buffer.resize(static_cast<size_t>(ks_ * mr));
    float* scale = scale_buffer.data();
    for (int64_t bi = b_begin; bi < b_end; ++bi)
      for (int64_t j = 0; j < nr; ++j) {
        const int64_t m = bi * nr + j;
        scale[(bi - b_begin) * nr + j] =
            m < mg_ ? out.scale[out.per_channel ? g * mg_ + m : 0] : 0.0f;
      }
    const uint8_t** a = rows_buffer.data();

    QTileArgs args;
    args.a = a;
    args.ks = pl.direct || im2col_ ? 1 : static_cast<size_t>(ks_);
    args.kc = static_cast<size_t>(im2col_ ? kdim_ : cg_);
    args.y_stride = static_cast<size_t>(m_out);
    args.f32 = f32;
    args.zp = out.zero_point;
    args.min = out.min;
    args.max = out.max;
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t p0 = t * mr;
      const int64_t rows = std::min(mr, pl.pixels - p0);
      if (pl.direct) {
        for (int64_t i = 0; i < rows; ++i) a[i] = xg + (p0 + i) * c_in;
      } else if (im2col_) {
        // Row i: the cg channels of every tap of pixel p0 + i, one after the other, copied
        // with a fixed size (inlined moves, not a memcpy call per 3 bytes).
        const int32_t* o = pl.offsets.data() + t * ks_ * mr;
        uint8_t* buf = im2col_buffer.data();
        // One tap (C bytes, or 4 for C = 3 where x has the 4th byte: the extra byte lands
        // where the next tap goes, or in the row's slack after the last).
        auto copy_tap = [&]<int64_t C>(std::integral_constant<int64_t, C>, uint8_t* dst,
                                       int32_t off) {
          if constexpr (C == 3) {
            if (off < 0)
              std::memcpy(dst, zero, 4);
            else if (off + 4 <= x_left)
              std::memcpy(dst, xg + off, 4);
            else
              std::memcpy(dst, xg + off, 3);
          } else {
            std::memcpy(dst, off >= 0 ? xg + off : zero, C);
          }
        };
        auto gather = [&]<int64_t C>(std::integral_constant<int64_t, C> tag) {
          const int64_t kw = p_.kernel_w, run = kw * C;
          // A kernel row whose kw taps are all inside x reads kw * C contiguous bytes (with
          // dilation 1): one copy (two overlapping 16-byte moves for 16..32 bytes).
          const bool merge = p_.dilation_w == 1 && kw > 1;
          for (int64_t ky = 0; ky < p_.kernel_h; ++ky) {
            const int32_t* ok = o + ky * kw * mr;
            for (int64_t i = 0; i < rows; ++i) {
              uint8_t* dst = buf + i * row_bytes + ky * run;
              const int32_t first = ok[i], last = ok[(kw - 1) * mr + i];
              if (merge && first >= 0 && last >= 0 && last - first == (kw - 1) * C) {
                const uint8_t* src = xg + first;
                if (run >= 16 && run <= 32) {
                  std::memcpy(dst, src, 16);
                  std::memcpy(dst + run - 16, src + run - 16, 16);
                } else {
                  std::memcpy(dst, src, static_cast<size_t>(run));
                }
                continue;
              }
              for (int64_t kx = 0; kx < kw; ++kx) copy_tap(tag, dst + kx * C, ok[kx * mr + i]);
            }
          }
        };
        switch (cg_) {
          case 1:
            gather(std::integral_constant<int64_t, 1>());
            break;
          case 2:
            gather(std::integral_constant<int64_t, 2>());
            break;
          case 3:
            gather(std::integral_constant<int64_t, 3>());
            break;
          case 4:
            gather(std::integral_constant<int64_t, 4>());
            break;
          case 5:
            gather(std::integral_constant<int64_t, 5>());
            break;
          case 6:
            gather(std::integral_constant<int64_t, 6>());
            break;
          case 7:
            gather(std::integral_constant<int64_t, 7>());
            break;
          default:
            gather(std::integral_constant<int64_t, 8>());
            break;
        }
        for (int64_t i = 0; i < rows; ++i) a[i] = buf + i * row_bytes;
      } else {
        const int32_t* o = pl.offsets.data() + t * ks_ * mr;
        for (int64_t tap = 0; tap < ks_; ++tap, o += mr)
          for (int64_t i = 0; i < rows; ++i) a[tap * rows + i] = o[i] >= 0 ? xg + o[i] : zero;
      }
      for (int64_t bi = b_begin; bi < b_end; ++bi) {
        const int64_t n0 = bi * nr;
        args.w = packed + static_cast<size_t>(g * nblocks_ + bi) * block_bytes_;
        args.offset = offset_ + (g * nblocks_ + bi) * nr;
        args.scale = scale + (bi - b_begin) * nr;
        args.n = static_cast<int>(std::min(nr, mg_ - n0));
        args.y = yg + static_cast<size_t>(p0 * m_out + n0) * elem;
        fns[rows](args);
      }
    }
  };
  parallel_for(pool, num_tasks, task);
  return Status::ok();
}

Status QConvNhwcU8::run_u8(const uint8_t* x, const QuantOutput& out, uint8_t* y, int64_t batch,
                           const Conv2dSpatial& s, ThreadPool* pool) const {
  return run(x, out, y, /*f32=*/false, batch, s, pool);
}

Status QConvNhwcU8::run_f32(const uint8_t* x, const QuantOutput& out, float* y, int64_t batch,
                            const Conv2dSpatial& s, ThreadPool* pool) const {
  return run(x, out, y, /*f32=*/true, batch, s, pool);
}

}  // namespace brink::kernels
