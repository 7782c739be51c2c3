// Operators used by object detectors: NonMaxSuppression, RoiAlign and GridSample.
//
// All three follow ONNX Runtime's CPU kernels, which the ONNX backend tests were generated
// against, including their floating-point evaluation order:
//   - NonMaxSuppression keeps a box when its score is strictly greater than score_threshold
//     and visits candidates by score descending, ties by lower box index. Per batch and
//     class, selections are listed in the order they were made.
//   - RoiAlign computes in the input's type (float for f16). Its max mode takes, per
//     sampling point, the largest of the four *weighted* bilinear corner terms and then the
//     largest over the sampling points (ORT's semantics, which the ONNX reference follows),
//     not the maximum of interpolated values. Opset 10 has no coordinate_transformation_mode
//     and behaves as output_half_pixel, as ORT does.
//   - GridSample computes coordinates in the grid's type (float for f16) and interpolates
//     separably, the last spatial axis first, as ORT's kernels order their sums; any number
//     of spatial dims at opset 20 (ORT: 2-D and 3-D, cubic 2-D only). Nearest and linear
//     pad the sampling coordinate (clamp or reflect it); cubic pads each of its taps
//     instead, as ORT and PyTorch do. (The ONNX reference implementation pads the cubic
//     coordinate too, which gives different values near the border; the node tests only
//     cover cubic with zeros padding, where the two agree.)
//
// Limits and choices where the spec is silent (ORT has undefined behaviour there):
//   - NonMaxSuppression orders NaN scores after every other score.
//   - RoiAlign treats NaN sampling positions as outside the feature map and RoIs of negative
//     or NaN size (half_pixel) as having no sampling points (output 0). A RoI needing more
//     than 2^24 sampling points (a huge RoI with adaptive sampling, or a huge
//     sampling_ratio) is refused at run time instead of running for hours.
//   - GridSample on integer or bool X interpolates in double and rounds half to even,
//     saturating (bool: nonzero after rounding); nearest mode copies elements exactly. A
//     NaN grid coordinate (or an infinite one under reflection padding) gives NaN, or 0 for
//     integer and bool X. Input spatial dims of size 0 give zeros in every padding mode.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

constexpr int kMaxOpset = 21;

OpDef def(const std::string& name, int since, int max) {
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = max;
  return d;
}

std::string rank_str(const TensorType& t) {
  return std::to_string(t.rank());
}

// Input `i` must be present with a dtype in `allowed` (described by `allowed_names`).
Status check_dtype(const InferContext& ctx, size_t i, const char* name,
                   std::initializer_list<DataType> allowed, const char* allowed_names) {
  if (!ctx.has_input(i)) return ctx.invalid(std::string("input ") + name + " is required");
  const DataType t = ctx.input_dtype(i);
  for (DataType a : allowed)
    if (t == a) return Status::ok();
  const std::string msg = std::string("input ") + name + " has dtype " + dtype_long_name(t) +
                          ", expected " + allowed_names + " at opset " +
                          std::to_string(ctx.opset());
  return dtype_is_supported(t) ? ctx.invalid(msg) : ctx.unsupported_here(msg);
}

Status check_rank(const InferContext& ctx, size_t i, const char* name, int64_t rank) {
  const TensorType& t = ctx.input_type(i);
  if (t.has_rank() && t.rank() != rank)
    return ctx.invalid(std::string("input ") + name + " has rank " + rank_str(t) + ", expected " +
                       std::to_string(rank));
  return Status::ok();
}

// Dim `axis` of input `i`, unknown when the rank is.
Dim dim_of(const InferContext& ctx, size_t i, size_t axis) {
  const TensorType& t = ctx.input_type(i);
  if (!t.has_rank() || axis >= t.dims->size()) return Dim();
  return (*t.dims)[axis];
}

// Two dims that must agree; an error when both are known and differ.
Status check_same_dim(const InferContext& ctx, const Dim& a, const Dim& b,
                      const std::string& what) {
  if (a.known() && b.known() && a.value != b.value)
    return ctx.invalid(what + " differ: " + std::to_string(a.value) + " versus " +
                       std::to_string(b.value));
  return Status::ok();
}

// The more informative of two dims that must be equal.
Dim merge_dims(const Dim& a, const Dim& b) {
  if (a.known()) return a;
  if (b.known()) return b;
  return a.param.empty() ? b : a;
}

// ---- NonMaxSuppression ----------------------------------------------------------------------

// A box as the IoU test sees it, computed as ORT does so the same boxes are kept.
struct NmsBox {
  float x_min, x_max, y_min, y_max;
};

// ORT's MaxMin: the first value is the max when they compare >=.
inline void max_min(float lhs, float rhs, float& mn, float& mx) {
  if (lhs >= rhs) {
    mn = rhs;
    mx = lhs;
  } else {
    mn = lhs;
    mx = rhs;
  }
}

NmsBox nms_box(const float* b, bool center_point_box) {
  NmsBox r;
  if (!center_point_box) {
    // [y1, x1, y2, x2], any diagonal pair of corners.
    max_min(b[1], b[3], r.x_min, r.x_max);
    max_min(b[0], b[2], r.y_min, r.y_max);
  } else {
    // [x_center, y_center, width, height].
    const float w_half = b[2] / 2, h_half = b[3] / 2;
    r.x_min = b[0] - w_half;
    r.x_max = b[0] + w_half;
    r.y_min = b[1] - h_half;
    r.y_max = b[1] + h_half;
  }
  return r;
}

// True when IoU(a, b) > iou_threshold; degenerate boxes never suppress.
bool suppressed_by_iou(const NmsBox& a, const NmsBox& b, float iou_threshold) {
  const float ix_min = std::max(a.x_min, b.x_min), ix_max = std::min(a.x_max, b.x_max);
  if (ix_max <= ix_min) return false;
  const float iy_min = std::max(a.y_min, b.y_min), iy_max = std::min(a.y_max, b.y_max);
  if (iy_max <= iy_min) return false;
  const float inter = (ix_max - ix_min) * (iy_max - iy_min);
  if (inter <= 0.0f) return false;
  const float area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
  const float area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
  const float uni = area_a + area_b - inter;
  if (area_a <= 0.0f || area_b <= 0.0f || uni <= 0.0f) return false;
  return inter / uni > iou_threshold;
}

Status nms_infer(InferContext& ctx) {
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 0, "boxes", {DataType::kFloat32}, "float32"));
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, "scores", {DataType::kFloat32}, "float32"));
  if (ctx.has_input(2))
    BRINK_RETURN_IF_ERROR(
        check_dtype(ctx, 2, "max_output_boxes_per_class", {DataType::kInt64}, "int64"));
  if (ctx.has_input(3))
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 3, "iou_threshold", {DataType::kFloat32}, "float32"));
  if (ctx.has_input(4))
    BRINK_RETURN_IF_ERROR(check_dtype(ctx, 4, "score_threshold", {DataType::kFloat32}, "float32"));
  BRINK_RETURN_IF_ERROR(check_rank(ctx, 0, "boxes", 3));
  BRINK_RETURN_IF_ERROR(check_rank(ctx, 1, "scores", 3));
  const Dim box_coords = dim_of(ctx, 0, 2);
  if (box_coords.known() && box_coords.value != 4)
    return ctx.invalid("input boxes has " + std::to_string(box_coords.value) +
                       " coordinates per box (dim 2), expected 4");
  BRINK_RETURN_IF_ERROR(check_same_dim(ctx, dim_of(ctx, 0, 0), dim_of(ctx, 1, 0),
                                       "batch sizes of boxes (dim 0) and scores (dim 0)"));
  BRINK_RETURN_IF_ERROR(check_same_dim(ctx, dim_of(ctx, 0, 1), dim_of(ctx, 1, 2),
                                       "box counts of boxes (dim 1) and scores (dim 2)"));
  for (size_t i = 2; i < 5; ++i) {
    if (!ctx.has_input(i)) continue;
    const TensorType& t = ctx.input_type(i);
    if (t.has_rank() && t.rank() > 1)
      return ctx.invalid("input " + std::to_string(i) + " has rank " + rank_str(t) +
                         ", expected a scalar or a 1-element tensor");
  }
  // The number of selected boxes depends on the data: the kernel allocates the output.
  ctx.set_output(0, DataType::kInt64, std::vector<Dim>{Dim(), Dim(3)});
  return Status::ok();
}

// The single value of an optional scalar input; false when absent or empty (both mean
// "use the default", as in ORT).
template <typename T>
Result<bool> optional_scalar(const KernelContext& ctx, size_t i, const std::string& where,
                             const char* name, T* out) {
  if (!ctx.has_input(i) || ctx.input(i).numel() == 0) return false;
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1)
    return invalid_argument(where + ": input " + name + " has " + std::to_string(t.numel()) +
                            " elements, expected 1");
  *out = t.data<T>()[0];
  return true;
}

Result<std::unique_ptr<Kernel>> nms_create(const KernelCreateContext& c) {
  const int64_t cpb = c.node.attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1)
    return c.invalid("attribute center_point_box is " + std::to_string(cpb) + ", expected 0 or 1");
  const bool center_point_box = cpb == 1;
  const std::string where = c.node.describe();
  return make_kernel([center_point_box, where](KernelContext& ctx) -> Status {
    const Tensor& boxes = ctx.input(0);
    const Tensor& scores = ctx.input(1);
    const int64_t num_batches = boxes.dim(0), num_boxes = boxes.dim(1);
    const int64_t num_classes = scores.dim(1);

    int64_t max_per_class = 0;
    float iou_threshold = 0.0f, score_threshold = 0.0f;
    // Absent max_output_boxes_per_class means 0 (select nothing); absent iou_threshold 0.
    BRINK_RETURN_IF_ERROR(
        optional_scalar<int64_t>(ctx, 2, where, "max_output_boxes_per_class", &max_per_class)
            .status());
    BRINK_RETURN_IF_ERROR(
        optional_scalar<float>(ctx, 3, where, "iou_threshold", &iou_threshold).status());
    BRINK_ASSIGN_OR_RETURN(
        bool has_score, optional_scalar<float>(ctx, 4, where, "score_threshold", &score_threshold));
    if (!(iou_threshold >= 0.0f && iou_threshold <= 1.0f))
      return invalid_argument(where + ": iou_threshold is " + std::to_string(iou_threshold) +
                              ", expected a value in [0, 1]");
    max_per_class = std::max<int64_t>(max_per_class, 0);

    struct Candidate {
      float score;
      int64_t index;
    };
    // Score descending, ties by lower index; NaN after everything so the order is total.
    auto before = [](const Candidate& a, const Candidate& b) {
      const bool an = std::isnan(a.score), bn = std::isnan(b.score);
      if (an != bn) return bn;
      if (!an && a.score != b.score) return a.score > b.score;
      return a.index < b.index;
    };

    std::vector<int64_t> selected;  // triples (batch, class, box)
    std::vector<NmsBox> batch_boxes(static_cast<size_t>(num_boxes));
    std::vector<Candidate> candidates;
    std::vector<int64_t> kept;  // box indices selected in the current class
    candidates.reserve(static_cast<size_t>(num_boxes));
    if (max_per_class > 0) {
      for (int64_t b = 0; b < num_batches; ++b) {
        const float* bp = boxes.data<float>() + b * num_boxes * 4;
        for (int64_t i = 0; i < num_boxes; ++i)
          batch_boxes[static_cast<size_t>(i)] = nms_box(bp + i * 4, center_point_box);
        for (int64_t c = 0; c < num_classes; ++c) {
          const float* sp = scores.data<float>() + (b * num_classes + c) * num_boxes;
          candidates.clear();
          for (int64_t i = 0; i < num_boxes; ++i)
            if (!has_score || sp[i] > score_threshold) candidates.push_back({sp[i], i});
          std::sort(candidates.begin(), candidates.end(), before);
          kept.clear();
          for (const Candidate& cand : candidates) {
            if (static_cast<int64_t>(kept.size()) >= max_per_class) break;
            const NmsBox& box = batch_boxes[static_cast<size_t>(cand.index)];
            bool keep = true;
            for (int64_t k : kept) {
              if (suppressed_by_iou(box, batch_boxes[static_cast<size_t>(k)], iou_threshold)) {
                keep = false;
                break;
              }
            }
            if (!keep) continue;
            kept.push_back(cand.index);
            selected.insert(selected.end(), {b, c, cand.index});
          }
        }
      }
    }
    const int64_t n = static_cast<int64_t>(selected.size() / 3);
    Tensor& out = ctx.allocate_output(0, DataType::kInt64, {n, 3});
    std::copy(selected.begin(), selected.end(), out.data<int64_t>());
    return Status::ok();
  });
}

OpDef nms_op(int since, int max) {
  OpDef d = def("NonMaxSuppression", since, max);
  d.infer = nms_infer;
  d.create = nms_create;
  return d;
}

// ---- RoiAlign -------------------------------------------------------------------------------

struct RoiAlignAttrs {
  bool max_mode = false;
  int64_t out_h = 1, out_w = 1, sampling_ratio = 0;
  float spatial_scale = 1.0f;
  bool half_pixel = false;
};

// Parses the attributes; an error message (empty when fine).
std::string parse_roi_align(const ir::Node& node, int64_t opset, RoiAlignAttrs* a) {
  const std::string mode = node.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max")
    return "attribute mode is '" + mode + "', expected 'avg' or 'max'";
  a->max_mode = mode == "max";
  a->out_h = node.attr_int("output_height", 1);
  a->out_w = node.attr_int("output_width", 1);
  if (a->out_h < 1 || a->out_w < 1)
    return "attributes output_height and output_width are " + std::to_string(a->out_h) + " and " +
           std::to_string(a->out_w) + ", expected positive values";
  a->sampling_ratio = node.attr_int("sampling_ratio", 0);
  if (a->sampling_ratio < 0)
    return "attribute sampling_ratio is " + std::to_string(a->sampling_ratio) +
           ", expected 0 (adaptive) or a positive value";
  a->spatial_scale = node.attr_float("spatial_scale", 1.0f);
  a->half_pixel = false;
  if (opset >= 16) {
    const std::string ctm = node.attr_string("coordinate_transformation_mode", "half_pixel");
    if (ctm != "half_pixel" && ctm != "output_half_pixel")
      return "attribute coordinate_transformation_mode is '" + ctm +
             "', expected 'half_pixel' or 'output_half_pixel'";
    a->half_pixel = ctm == "half_pixel";
  }
  return "";
}

Status roi_align_infer(InferContext& ctx) {
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 0, "X",
                                    {DataType::kFloat16, DataType::kFloat32, DataType::kFloat64},
                                    "float16, float32 or float64"));
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, "rois",
                                    {DataType::kFloat16, DataType::kFloat32, DataType::kFloat64},
                                    "float16, float32 or float64"));
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 2, "batch_indices", {DataType::kInt64}, "int64"));
  if (ctx.input_dtype(1) != ctx.input_dtype(0))
    return ctx.invalid(std::string("input rois has dtype ") + dtype_long_name(ctx.input_dtype(1)) +
                       ", expected the dtype of X, " + dtype_long_name(ctx.input_dtype(0)));
  BRINK_RETURN_IF_ERROR(check_rank(ctx, 0, "X", 4));
  BRINK_RETURN_IF_ERROR(check_rank(ctx, 1, "rois", 2));
  BRINK_RETURN_IF_ERROR(check_rank(ctx, 2, "batch_indices", 1));
  const Dim coords = dim_of(ctx, 1, 1);
  if (coords.known() && coords.value != 4)
    return ctx.invalid("input rois has " + std::to_string(coords.value) +
                       " values per RoI (dim 1), expected 4");
  const Dim n_rois = dim_of(ctx, 1, 0), n_idx = dim_of(ctx, 2, 0);
  BRINK_RETURN_IF_ERROR(
      check_same_dim(ctx, n_rois, n_idx, "RoI counts of rois (dim 0) and batch_indices (dim 0)"));
  RoiAlignAttrs a;
  if (std::string err = parse_roi_align(ctx.node(), ctx.opset(), &a); !err.empty())
    return ctx.invalid(err);
  ctx.set_output(
      0, ctx.input_dtype(0),
      std::vector<Dim>{merge_dims(n_rois, n_idx), dim_of(ctx, 0, 1), Dim(a.out_h), Dim(a.out_w)});
  return Status::ok();
}

// Where one sampling row (or column) falls: the two neighbouring input rows and their
// weights, as ORT's pre_calc_for_bilinear_interpolate computes them per axis. A sample is
// valid only when both its row and its column are within [-1, size]; invalid samples get
// positions 0 and weights 0, as in ORT, so max mode sees the same 0 * x[0] terms.
template <typename C>
struct RoiAxisSample {
  bool valid;
  int64_t low, high;
  C l, h;  // weight of `high` and of `low`
};

// Samples along one axis: bins of `bin` starting at `start`, `grid` points per bin.
template <typename C>
void roi_axis_samples(C start, C bin, int64_t bins, int64_t grid, int64_t size,
                      std::vector<RoiAxisSample<C>>& out) {
  out.resize(static_cast<size_t>(bins * grid));
  size_t i = 0;
  for (int64_t p = 0; p < bins; ++p) {
    for (int64_t g = 0; g < grid; ++g, ++i) {
      C v = start + static_cast<C>(p) * bin +
            static_cast<C>(static_cast<float>(g) + 0.5f) * bin / static_cast<C>(grid);
      RoiAxisSample<C>& s = out[i];
      // Written so that NaN counts as outside.
      s.valid = v >= C(-1) && v <= static_cast<C>(size);
      if (!s.valid) {
        s = RoiAxisSample<C>{false, 0, 0, C(0), C(0)};
        continue;
      }
      if (v <= C(0)) v = C(0);
      s.low = static_cast<int64_t>(v);
      if (s.low >= size - 1) {
        s.high = s.low = size - 1;
        v = static_cast<C>(s.low);
      } else {
        s.high = s.low + 1;
      }
      s.l = v - static_cast<C>(s.low);
      s.h = C(1) - s.l;
    }
  }
}

// The most sampling points one RoI may need (bins times points per bin); beyond it the RoI
// is refused rather than run for hours.
constexpr double kMaxRoiSamples = 1u << 24;

template <typename T>
Status roi_align_run(const RoiAlignAttrs& a, const std::string& where, const Tensor& xt,
                     const Tensor& rois_t, const int64_t* batch_idx, Tensor& yt) {
  using C = compute_t<T>;
  const int64_t channels = xt.dim(1), height = xt.dim(2), width = xt.dim(3);
  const int64_t num_rois = rois_t.dim(0);
  const int64_t ph_n = a.out_h, pw_n = a.out_w;
  const T* x = xt.data<T>();
  const T* rois = rois_t.data<T>();
  T* y = yt.data<T>();
  const C offset = a.half_pixel ? C(0.5) : C(0);
  const C scale = static_cast<C>(a.spatial_scale);
  std::vector<RoiAxisSample<C>> ys, xs;

  for (int64_t n = 0; n < num_rois; ++n) {
    const T* r = rois + n * 4;
    const C start_w = static_cast<C>(r[0]) * scale - offset;
    const C start_h = static_cast<C>(r[1]) * scale - offset;
    const C end_w = static_cast<C>(r[2]) * scale - offset;
    const C end_h = static_cast<C>(r[3]) * scale - offset;
    C roi_w = end_w - start_w, roi_h = end_h - start_h;
    if (!a.half_pixel) {
      // Malformed RoIs are forced to 1x1 in the legacy mode.
      roi_w = std::max(roi_w, C(1));
      roi_h = std::max(roi_h, C(1));
    }
    const C bin_h = roi_h / static_cast<C>(ph_n), bin_w = roi_w / static_cast<C>(pw_n);
    // Adaptive sampling: ceil(bin size) points per bin and axis. A RoI of negative or NaN
    // size samples nothing (ORT fails on those).
    auto grid_of = [&](C bin) -> double {
      if (a.sampling_ratio > 0) return static_cast<double>(a.sampling_ratio);
      const double g = std::ceil(static_cast<double>(bin));
      return g >= 1 ? g : 0;
    };
    const double gh = grid_of(bin_h), gw = grid_of(bin_w);
    if (gh * gw * static_cast<double>(ph_n) * static_cast<double>(pw_n) > kMaxRoiSamples) {
      char msg[160];
      std::snprintf(msg, sizeof msg,
                    ": RoI %lld needs %.0f x %.0f sampling points in each of %lld bins, more "
                    "than the 2^24 in all that Brink allows",
                    static_cast<long long>(n), gh, gw, static_cast<long long>(ph_n * pw_n));
      return invalid_argument(where + msg);
    }
    const int64_t grid_h = static_cast<int64_t>(gh), grid_w = static_cast<int64_t>(gw);
    const C count = static_cast<C>(std::max<int64_t>(grid_h * grid_w, 1));
    roi_axis_samples(start_h, bin_h, ph_n, grid_h, height, ys);
    roi_axis_samples(start_w, bin_w, pw_n, grid_w, width, xs);

    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = x + (batch_idx[n] * channels + c) * height * width;
      T* out = y + (n * channels + c) * ph_n * pw_n;
      for (int64_t ph = 0; ph < ph_n; ++ph) {
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          C acc = C(0);
          bool first = true;
          for (int64_t iy = 0; iy < grid_h; ++iy) {
            const RoiAxisSample<C>& sy = ys[static_cast<size_t>(ph * grid_h + iy)];
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              const RoiAxisSample<C>& sx = xs[static_cast<size_t>(pw * grid_w + ix)];
              C v0, v1, v2, v3;
              if (sy.valid && sx.valid) {
                v0 = sy.h * sx.h * static_cast<C>(plane[sy.low * width + sx.low]);
                v1 = sy.h * sx.l * static_cast<C>(plane[sy.low * width + sx.high]);
                v2 = sy.l * sx.h * static_cast<C>(plane[sy.high * width + sx.low]);
                v3 = sy.l * sx.l * static_cast<C>(plane[sy.high * width + sx.high]);
              } else {
                v0 = v1 = v2 = v3 = C(0) * static_cast<C>(plane[0]);
              }
              if (!a.max_mode) {
                acc += v0 + v1 + v2 + v3;
              } else {
                const C v = std::max(std::max(std::max(v0, v1), v2), v3);
                acc = first ? v : std::max(acc, v);
                first = false;
              }
            }
          }
          if (!a.max_mode) acc /= count;
          out[ph * pw_n + pw] = static_cast<T>(acc);
        }
      }
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<Kernel>> roi_align_create(const KernelCreateContext& c) {
  RoiAlignAttrs a;
  if (std::string err = parse_roi_align(c.node, c.opset, &a); !err.empty()) return c.invalid(err);
  const std::string where = c.node.describe();
  return make_kernel([a, where](KernelContext& ctx) -> Status {
    const Tensor& x = ctx.input(0);
    const Tensor& rois = ctx.input(1);
    const Tensor& bi = ctx.input(2);
    const int64_t batch = x.dim(0);
    const int64_t* idx = bi.data<int64_t>();
    for (int64_t i = 0; i < bi.numel(); ++i)
      if (idx[i] < 0 || idx[i] >= batch)
        return invalid_argument(where + ": batch_indices[" + std::to_string(i) + "] is " +
                                std::to_string(idx[i]) + ", expected a value in [0, " +
                                std::to_string(batch) + ")");
    Tensor& y = ctx.output(0);
    if (y.numel() == 0) return Status::ok();
    // A plane of size 0 has nothing to sample; with RoIs to fill, the output is zeros.
    if (x.dim(2) == 0 || x.dim(3) == 0) {
      std::memset(y.raw_data(), 0, y.nbytes());
      return Status::ok();
    }
    switch (x.dtype()) {
      case DataType::kFloat16:
        return roi_align_run<Float16>(a, where, x, rois, idx, y);
      case DataType::kFloat32:
        return roi_align_run<float>(a, where, x, rois, idx, y);
      default:
        return roi_align_run<double>(a, where, x, rois, idx, y);
    }
  });
}

OpDef roi_align_op(int since, int max) {
  OpDef d = def("RoiAlign", since, max);
  d.infer = roi_align_infer;
  d.create = roi_align_create;
  return d;
}

// ---- GridSample -----------------------------------------------------------------------------

enum class GsMode { kLinear, kNearest, kCubic };
enum class GsPadding { kZeros, kBorder, kReflection };

struct GridSampleAttrs {
  GsMode mode = GsMode::kLinear;
  GsPadding padding = GsPadding::kZeros;
  bool align_corners = false;
};

std::string parse_grid_sample(const ir::Node& node, int64_t opset, GridSampleAttrs* a) {
  const bool v20 = opset >= 20;
  const std::string mode = node.attr_string("mode", v20 ? "linear" : "bilinear");
  if (mode == (v20 ? "linear" : "bilinear"))
    a->mode = GsMode::kLinear;
  else if (mode == "nearest")
    a->mode = GsMode::kNearest;
  else if (mode == (v20 ? "cubic" : "bicubic"))
    a->mode = GsMode::kCubic;
  else
    return "attribute mode is '" + mode + "', expected " +
           (v20 ? "'linear', 'nearest' or 'cubic'" : "'bilinear', 'nearest' or 'bicubic'") +
           " at opset " + std::to_string(opset);
  const std::string pad = node.attr_string("padding_mode", "zeros");
  if (pad == "zeros")
    a->padding = GsPadding::kZeros;
  else if (pad == "border")
    a->padding = GsPadding::kBorder;
  else if (pad == "reflection")
    a->padding = GsPadding::kReflection;
  else
    return "attribute padding_mode is '" + pad + "', expected 'zeros', 'border' or 'reflection'";
  const int64_t ac = node.attr_int("align_corners", 0);
  if (ac != 0 && ac != 1)
    return "attribute align_corners is " + std::to_string(ac) + ", expected 0 or 1";
  a->align_corners = ac == 1;
  return "";
}

Status grid_sample_infer(InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.invalid("input X is required");
  const DataType xt = ctx.input_dtype(0);
  if (!dtype_is_supported(xt) || xt == DataType::kBFloat16) {
    const std::string msg = std::string("input X has dtype ") + dtype_long_name(xt) +
                            ", expected a numeric or bool type";
    return xt == DataType::kBFloat16 ? ctx.invalid(msg + " other than bfloat16")
                                     : ctx.unsupported_here(msg);
  }
  BRINK_RETURN_IF_ERROR(check_dtype(ctx, 1, "grid",
                                    {DataType::kFloat16, DataType::kFloat32, DataType::kFloat64},
                                    "float16, float32 or float64"));
  GridSampleAttrs a;
  if (std::string err = parse_grid_sample(ctx.node(), ctx.opset(), &a); !err.empty())
    return ctx.invalid(err);
  const TensorType& x = ctx.input_type(0);
  const TensorType& g = ctx.input_type(1);
  if (ctx.opset() < 20) {
    if (x.has_rank() && x.rank() != 4)
      return ctx.invalid("input X has rank " + rank_str(x) + ", expected 4 at opset " +
                         std::to_string(ctx.opset()) + " (N-D GridSample needs opset 20)");
    BRINK_RETURN_IF_ERROR(check_rank(ctx, 1, "grid", 4));
  } else {
    if (x.has_rank() && x.rank() < 3)
      return ctx.invalid("input X has rank " + rank_str(x) +
                         ", expected at least 3 (N, C, spatial...)");
    if (g.has_rank() && g.rank() < 3)
      return ctx.invalid("input grid has rank " + rank_str(g) +
                         ", expected at least 3 (N, spatial..., coordinates)");
  }
  if (x.has_rank() && g.has_rank() && x.rank() != g.rank())
    return ctx.invalid("inputs X and grid have ranks " + rank_str(x) + " and " + rank_str(g) +
                       ", expected equal ranks");
  const int64_t rank = x.has_rank() ? x.rank() : g.rank();
  if (rank < 0) {
    ctx.set_output(0, TensorType(xt, std::nullopt));
    return Status::ok();
  }
  // Linear and cubic read 2^r and 4^r taps per point; past 2^16 (16 linear or 8 cubic
  // spatial dims) that is refused rather than run.
  if (a.mode != GsMode::kNearest && (rank - 2) * (a.mode == GsMode::kCubic ? 2 : 1) > 16)
    return ctx.unsupported_here("input X has " + std::to_string(rank - 2) +
                                " spatial dims; more than " +
                                (a.mode == GsMode::kCubic ? "8 for cubic" : "16 for linear") +
                                " interpolation is not supported");
  const Dim coords = dim_of(ctx, 1, static_cast<size_t>(rank - 1));
  if (coords.known() && coords.value != rank - 2)
    return ctx.invalid("input grid has " + std::to_string(coords.value) +
                       " coordinates per point (last dim), expected " + std::to_string(rank - 2));
  const Dim nx = dim_of(ctx, 0, 0), ng = dim_of(ctx, 1, 0);
  BRINK_RETURN_IF_ERROR(check_same_dim(ctx, nx, ng, "batch sizes of X (dim 0) and grid (dim 0)"));
  std::vector<Dim> out{merge_dims(nx, ng), dim_of(ctx, 0, 1)};
  for (int64_t i = 1; i < rank - 1; ++i) out.push_back(dim_of(ctx, 1, static_cast<size_t>(i)));
  ctx.set_output(0, xt, std::move(out));
  return Status::ok();
}

// Keys' cubic convolution weights with alpha -0.75 (as PyTorch and ORT) for the four taps
// at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x).
template <typename C>
void cubic_coeffs(C t, C w[4]) {
  constexpr C A = C(-0.75);
  t = std::abs(t);
  w[0] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
  w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  w[2] = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
  w[3] = ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A;
}

// Reflects x into [lo, hi] by bouncing off both ends, as ORT's GsReflect. The result is
// clamped to [lo, hi] so that rounding on huge inputs cannot leave the range.
template <typename C>
C reflect(C x, C lo, C hi) {
  const C range = hi - lo;
  if (!(range > C(0))) return lo;
  C r;
  bool odd;
  if (x < lo) {
    const C dx = lo - x, n = std::trunc(dx / range);
    r = dx - n * range;
    odd = std::fmod(n, C(2)) != C(0);
    x = odd ? hi - r : lo + r;
  } else if (x > hi) {
    const C dx = x - hi, n = std::trunc(dx / range);
    r = dx - n * range;
    odd = std::fmod(n, C(2)) != C(0);
    x = odd ? lo + r : hi - r;
  }
  return std::clamp(x, lo, hi);
}

// Accumulator value -> element type: float types convert; integers and bool round half to
// even and saturate (NaN -> 0).
template <typename T, typename A>
T from_acc(A v) {
  if constexpr (std::is_same_v<T, bool>) {
    return !std::isnan(v) && std::nearbyint(v) != A(0);
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    const double d = std::nearbyint(static_cast<double>(v));
    if (d <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (d >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(d);
  } else {
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

// The value written for a point whose coordinates are undefined (NaN).
template <typename T>
T undefined_value() {
  if constexpr (std::is_integral_v<T>)
    return T(0);
  else
    return T(std::numeric_limits<compute_t<T>>::quiet_NaN());
}

// Where an output point reads from, for nearest mode: an element offset in X's plane, or one
// of these.
constexpr int64_t kGsZero = -1;       // outside the image, zero padding
constexpr int64_t kGsUndefined = -2;  // a NaN coordinate

// The coordinate and tap arithmetic of GridSample, which depends only on the grid's element
// type G and the accumulator A, not on X's element type: one instance per (G, A) rather than
// per (X type, G). Coordinates compute in C = compute_t<G>. Nearest mode records, per output
// point, where it reads from (`src`, [batch * out_points]); linear and cubic interpolate `xa`
// (X converted to A) into `ya` (the output in A; NaN for undefined points).
template <typename G, typename A>
void grid_sample_points(const GridSampleAttrs& a, const Shape& xs, const Tensor& gt, const A* xa,
                        int64_t* src, A* ya) {
  using C = compute_t<G>;
  const size_t r = xs.size() - 2;
  const int64_t batch = xs[0], channels = xs[1];
  int64_t in_points = 1, out_points = 1;
  for (size_t d = 0; d < r; ++d) in_points *= xs[2 + d];
  for (size_t d = 0; d < r; ++d) out_points *= gt.dim(static_cast<int64_t>(1 + d));
  const G* grid = gt.data<G>();

  const size_t k = a.mode == GsMode::kNearest ? 1 : a.mode == GsMode::kLinear ? 2 : 4;
  size_t combos = 1;
  for (size_t d = 0; d < r; ++d) combos *= k;

  std::vector<int64_t> in_strides(r);
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) {
    in_strides[d] = s;
    s *= xs[2 + d];
  }
  // Per spatial dim: the tap offsets (element offset, -1 = zero padding) and weights.
  std::vector<int64_t> tap_off(r * k);
  std::vector<A> tap_w(r * k);
  std::vector<int64_t> combo_off(combos);
  std::vector<A> buf(combos);

  // Maps an integer tap index on dim d to an in-range index, or -1 for a zero.
  auto pad_index = [&](int64_t i, int64_t size, C lo, C hi) -> int64_t {
    if (i >= 0 && i < size) return i;
    switch (a.padding) {
      case GsPadding::kZeros:
        return -1;
      case GsPadding::kBorder:
        return std::clamp<int64_t>(i, 0, size - 1);
      default: {
        const int64_t j = static_cast<int64_t>(reflect(static_cast<C>(i), lo, hi));
        return std::clamp<int64_t>(j, 0, size - 1);
      }
    }
  };

  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t p = 0; p < out_points; ++p) {
      const G* gp = grid + (n * out_points + p) * static_cast<int64_t>(r);
      bool undefined = false;
      for (size_t d = 0; d < r && !undefined; ++d) {
        const int64_t size = xs[2 + d];
        // The grid lists coordinates innermost axis first: (x, y, z, ...).
        const C g = static_cast<C>(gp[r - 1 - d]);
        const C lo = a.align_corners ? C(0) : C(-0.5);
        const C hi = a.align_corners ? static_cast<C>(size - 1) : static_cast<C>(size) - C(0.5);
        C c = a.align_corners ? (g + 1) / C(2) * static_cast<C>(size - 1)
                              : ((g + 1) * static_cast<C>(size) - 1) / C(2);
        if (a.mode == GsMode::kNearest) c = std::nearbyint(c);
        if (std::isnan(c)) {
          undefined = true;
          break;
        }
        if (c < lo || c > hi) {
          if (a.mode == GsMode::kCubic) {
            // Cubic pads each tap, not the coordinate (as ORT and PyTorch). The clamp far
            // outside only keeps the integer conversions below defined.
            if (a.padding == GsPadding::kReflection && std::isinf(c)) {
              undefined = true;
              break;
            }
            constexpr C kFar = C(1 << 24);
            c = std::clamp(c, lo - kFar, hi + kFar);
          } else if (a.padding == GsPadding::kBorder) {
            c = std::clamp(c, C(0), static_cast<C>(size - 1));
          } else if (a.padding == GsPadding::kReflection) {
            if (std::isinf(c)) {
              undefined = true;
              break;
            }
            c = reflect(c, lo, hi);
          } else {
            // Every tap is outside anyway; keeps the integer conversions below defined.
            c = std::clamp(c, C(-8), static_cast<C>(size) + C(8));
          }
        }
        int64_t* off = tap_off.data() + d * k;
        A* w = tap_w.data() + d * k;
        const int64_t stride = in_strides[d];
        auto set_tap = [&](size_t t, int64_t i) {
          const int64_t j = pad_index(i, size, lo, hi);
          off[t] = j < 0 ? -1 : j * stride;
        };
        if (a.mode == GsMode::kNearest) {
          set_tap(0, static_cast<int64_t>(c));
          w[0] = A(1);
        } else if (a.mode == GsMode::kLinear) {
          const C f = std::floor(c);
          const int64_t i0 = static_cast<int64_t>(f);
          set_tap(0, i0);
          set_tap(1, i0 + 1);
          w[0] = static_cast<A>(static_cast<C>(i0 + 1) - c);
          w[1] = static_cast<A>(c - static_cast<C>(i0));
        } else {
          const C f = std::floor(c);
          const int64_t i0 = static_cast<int64_t>(f) - 1;
          for (size_t t = 0; t < 4; ++t) set_tap(t, i0 + static_cast<int64_t>(t));
          C cw[4];
          cubic_coeffs<C>(c - static_cast<C>(i0) - C(1), cw);
          for (size_t t = 0; t < 4; ++t) w[t] = static_cast<A>(cw[t]);
        }
      }
      if (a.mode == GsMode::kNearest) {
        int64_t o = 0;
        for (size_t d = 0; d < r && o >= 0 && !undefined; ++d)
          o = tap_off[d] < 0 ? kGsZero : o + tap_off[d];
        src[n * out_points + p] = undefined ? kGsUndefined : o;
        continue;
      }
      A* yn = ya + n * channels * out_points;
      if (undefined) {
        for (int64_t ch = 0; ch < channels; ++ch)
          yn[ch * out_points + p] = std::numeric_limits<A>::quiet_NaN();
        continue;
      }
      // Offsets of every tap combination, row-major over (dim 0 tap, ..., dim r-1 tap).
      for (size_t ci = 0; ci < combos; ++ci) {
        size_t rest = ci;
        int64_t o = 0;
        for (size_t d = r; d-- > 0;) {
          const int64_t t = tap_off[d * k + rest % k];
          rest /= k;
          if (t < 0) {
            o = -1;
            break;
          }
          o += t;
        }
        combo_off[ci] = o;
      }
      const A* xn = xa + n * channels * in_points;
      for (int64_t ch = 0; ch < channels; ++ch) {
        const A* plane = xn + ch * in_points;
        for (size_t ci = 0; ci < combos; ++ci)
          buf[ci] = combo_off[ci] < 0 ? A(0) : plane[combo_off[ci]];
        // Contract the last dim first, in place: entry q gathers entries q*k .. q*k+k-1.
        size_t len = combos;
        for (size_t d = r; d-- > 0;) {
          const A* w = tap_w.data() + d * k;
          len /= k;
          for (size_t q = 0; q < len; ++q) {
            A v = w[0] * buf[q * k];
            for (size_t t = 1; t < k; ++t) v += w[t] * buf[q * k + t];
            buf[q] = v;
          }
        }
        yn[ch * out_points + p] = buf[0];
      }
    }
  }
}

// T: X's element type. Values accumulate in A: float for the 16/32-bit float types (as ORT
// does), double for f64 and integers. Only the conversions in and out depend on T; the rest
// is grid_sample_points.
template <typename T>
void grid_sample_run(const GridSampleAttrs& a, const Tensor& xt, const Tensor& gt, Tensor& yt) {
  using A = std::conditional_t<std::is_floating_point_v<compute_t<T>> && sizeof(compute_t<T>) == 4,
                               float, double>;
  const Shape& xs = xt.shape();
  const int64_t batch = xt.dim(0), channels = xt.dim(1);
  int64_t in_points = 1;
  for (size_t d = 2; d < xs.size(); ++d) in_points *= xs[d];
  const int64_t out_points = yt.numel() / (batch * channels);
  const T* x = xt.data<T>();
  T* y = yt.data<T>();
  if (in_points == 0) {
    std::fill_n(y, yt.numel(), T(0.0f));
    return;
  }
  auto points = [&](auto* xa, int64_t* src, auto* ya) {
    switch (gt.dtype()) {
      case DataType::kFloat16:
        return grid_sample_points<Float16, A>(a, xs, gt, xa, src, ya);
      case DataType::kFloat32:
        return grid_sample_points<float, A>(a, xs, gt, xa, src, ya);
      default:
        return grid_sample_points<double, A>(a, xs, gt, xa, src, ya);
    }
  };
  if (a.mode == GsMode::kNearest) {  // copies elements: exact for every type
    std::vector<int64_t> src(static_cast<size_t>(batch * out_points));
    points(static_cast<const A*>(nullptr), src.data(), static_cast<A*>(nullptr));
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t ch = 0; ch < channels; ++ch) {
        const T* plane = x + (n * channels + ch) * in_points;
        T* out = y + (n * channels + ch) * out_points;
        for (int64_t p = 0; p < out_points; ++p) {
          const int64_t o = src[static_cast<size_t>(n * out_points + p)];
          out[p] = o >= 0 ? plane[o] : o == kGsZero ? T(0.0f) : undefined_value<T>();
        }
      }
    return;
  }
  std::vector<A> xa(static_cast<size_t>(xt.numel())), ya(static_cast<size_t>(yt.numel()));
  for (size_t i = 0; i < xa.size(); ++i) xa[i] = static_cast<A>(static_cast<compute_t<T>>(x[i]));
  points(static_cast<const A*>(xa.data()), nullptr, ya.data());
  for (size_t i = 0; i < ya.size(); ++i) y[i] = from_acc<T>(ya[i]);
}

Result<std::unique_ptr<Kernel>> grid_sample_create(const KernelCreateContext& c) {
  GridSampleAttrs a;
  if (std::string err = parse_grid_sample(c.node, c.opset, &a); !err.empty()) return c.invalid(err);
  return make_kernel([a](KernelContext& ctx) -> Status {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.numel() == 0) return Status::ok();
    visit_dtype(x.dtype(), [&]<typename T>() { grid_sample_run<T>(a, x, ctx.input(1), y); });
    return Status::ok();
  });
}

OpDef grid_sample_op(int since, int max) {
  OpDef d = def("GridSample", since, max);
  d.infer = grid_sample_infer;
  d.create = grid_sample_create;
  return d;
}

}  // namespace

void register_detection_ops(OpRegistry& r) {
  // NonMaxSuppression 10 and 11 have the same inputs, attributes and semantics.
  if constexpr (op_selected("", "NonMaxSuppression")) r.add(nms_op(10, 10));
  if constexpr (op_selected("", "NonMaxSuppression")) r.add(nms_op(11, kMaxOpset));
  if constexpr (op_selected("", "RoiAlign")) r.add(roi_align_op(10, 15));
  if constexpr (op_selected("", "RoiAlign")) r.add(roi_align_op(16, kMaxOpset));
  if constexpr (op_selected("", "GridSample")) r.add(grid_sample_op(16, 19));
  if constexpr (op_selected("", "GridSample")) r.add(grid_sample_op(20, kMaxOpset));
}

}  // namespace brink::ops
