// Resize, Upsample and Pad.
//
// Resize follows the ONNX reference implementation (onnx/reference/ops/op_resize.py): each
// resized axis maps every output index to a source coordinate x_original, takes the n
// nearest input samples around it (edge-clamped) and weights them. Interpolation is
// separable, so linear and cubic resize one axis at a time over a double buffer; nearest is
// a single exact gather in the input type, so integers and bool pass through unchanged.
//
// Limits: Upsample and Resize-10 use ONNX Runtime's legacy nearest rounding (floor when
// upsampling, ceil when downsampling) with asymmetric coordinates, as those opsets did not
// define it. Output sizes from scales are floor(in * scale) computed in float, as ONNX shape
// inference and ONNX Runtime do; roi does not change the output size.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

template <typename T>
inline constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// double -> T as onnx.numpy_helper.saturate_cast: integers round half to even, then every
// type clips to its finite range.
template <typename T>
T saturate_from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (kIsInt<T>) {
    if (std::isnan(v)) return T(0);
    v = std::nearbyint(v);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    double hi;
    if constexpr (std::is_same_v<T, Float16>)
      hi = 65504.0;
    else if constexpr (std::is_same_v<T, BFloat16>)
      hi = 3.3895313892515355e38;
    else
      hi = static_cast<double>(std::numeric_limits<T>::max());
    if (v > hi) v = hi;
    if (v < -hi) v = -hi;
    return static_cast<T>(static_cast<compute_t<T>>(v));
  }
}

// double -> T as a C cast (Pad-2's float 'value' attribute): integers truncate.
template <typename T>
T truncate_from_double(double v) {
  if constexpr (kIsInt<T>) {
    if (!std::isnan(v)) v = std::trunc(v);
  }
  return saturate_from_double<T>(v);
}

// The first element of `t` (same dtype as T) as T, exactly.
template <typename T>
T first_element(const Tensor& t) {
  return t.data<T>()[0];
}

std::string join(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---- Resize / Upsample ----------------------------------------------------------------------

enum class InterpMode { kNearest, kLinear, kCubic };
enum class CoordMode {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize
};
// kLegacy: Upsample and Resize-10, floor when upsampling and ceil when downsampling.
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kLegacy };
enum class AspectPolicy { kStretch, kNotLarger, kNotSmaller };

struct ResizeParams {
  InterpMode mode = InterpMode::kNearest;
  CoordMode coord = CoordMode::kAsymmetric;
  NearestMode nearest = NearestMode::kLegacy;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0;
  bool antialias = false;
  AspectPolicy policy = AspectPolicy::kStretch;
  std::vector<int64_t> axes;  // as given (18+); empty means all axes
  bool upsample = false;      // Upsample: scales must be >= 1
};

// Parses and validates the attributes that exist at `opset`.
Result<ResizeParams> parse_resize_params(const ir::Node& node, int64_t opset, bool upsample) {
  ResizeParams p;
  p.upsample = upsample;
  const bool legacy = upsample || opset < 11;
  const std::string mode = node.attr_string("mode", "nearest");
  if (mode == "nearest")
    p.mode = InterpMode::kNearest;
  else if (mode == "linear")
    p.mode = InterpMode::kLinear;
  else if (mode == "cubic" && !legacy)
    p.mode = InterpMode::kCubic;
  else
    return invalid_model(node.describe() + ": attribute 'mode' is '" + mode +
                         "', expected nearest, linear" + (legacy ? "" : " or cubic"));
  if (legacy) return p;

  const std::string coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
  static const std::pair<const char*, CoordMode> kCoords[] = {
      {"half_pixel", CoordMode::kHalfPixel},
      {"half_pixel_symmetric", CoordMode::kHalfPixelSymmetric},
      {"pytorch_half_pixel", CoordMode::kPytorchHalfPixel},
      {"align_corners", CoordMode::kAlignCorners},
      {"asymmetric", CoordMode::kAsymmetric},
      {"tf_half_pixel_for_nn", CoordMode::kTfHalfPixelForNn},
      {"tf_crop_and_resize", CoordMode::kTfCropAndResize}};
  bool found = false;
  for (const auto& [name, m] : kCoords)
    if (coord == name) {
      p.coord = m;
      found = true;
    }
  if (!found)
    return invalid_model(node.describe() + ": attribute 'coordinate_transformation_mode' is '" +
                         coord + "', which ONNX does not define");

  const std::string nearest = node.attr_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor")
    p.nearest = NearestMode::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil")
    p.nearest = NearestMode::kRoundPreferCeil;
  else if (nearest == "floor")
    p.nearest = NearestMode::kFloor;
  else if (nearest == "ceil")
    p.nearest = NearestMode::kCeil;
  else
    return invalid_model(node.describe() + ": attribute 'nearest_mode' is '" + nearest +
                         "', expected round_prefer_floor, round_prefer_ceil, floor or ceil");

  p.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  p.extrapolation = node.attr_float("extrapolation_value", 0.0f);
  if (opset >= 18) {
    p.antialias = node.attr_int("antialias", 0) != 0;
    p.axes = node.attr_ints("axes");
    const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch")
      p.policy = AspectPolicy::kStretch;
    else if (policy == "not_larger")
      p.policy = AspectPolicy::kNotLarger;
    else if (policy == "not_smaller")
      p.policy = AspectPolicy::kNotSmaller;
    else
      return invalid_model(node.describe() + ": attribute 'keep_aspect_ratio_policy' is '" +
                           policy + "', expected stretch, not_larger or not_smaller");
  }
  return p;
}

// Per-axis geometry: output length, the scale used by the coordinate transform, the
// (possibly fractional) output width it implies, and the roi.
struct ResizeGeometry {
  Shape out;
  std::vector<double> scale, out_width, roi_start, roi_end;
};

// What the scales / sizes / roi inputs say, once known. At most one of scales and sizes.
struct ResizeInputs {
  std::optional<std::vector<double>> scales;
  std::optional<std::vector<int64_t>> sizes;
  std::vector<double> roi;  // empty: [0, 1] on every axis
};

Result<std::vector<int64_t>> resize_axes(const ir::Node& node, const ResizeParams& p,
                                         int64_t rank) {
  std::vector<int64_t> axes;
  if (p.axes.empty()) {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    return axes;
  }
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : p.axes) {
    if (a < -rank || a >= rank)
      return invalid_model(node.describe() + ": axis " + std::to_string(a) +
                           " is out of range for rank " + std::to_string(rank));
    const int64_t n = a < 0 ? a + rank : a;
    if (seen[static_cast<size_t>(n)])
      return invalid_model(node.describe() + ": axis " + std::to_string(a) +
                           " is repeated in 'axes'");
    seen[static_cast<size_t>(n)] = true;
    axes.push_back(n);
  }
  return axes;
}

Result<ResizeGeometry> resize_geometry(const ir::Node& node, const ResizeParams& p, const Shape& in,
                                       const ResizeInputs& ri) {
  const auto bad = [&](const std::string& m) { return invalid_model(node.describe() + ": " + m); };
  const int64_t rank = static_cast<int64_t>(in.size());
  BRINK_ASSIGN_OR_RETURN(std::vector<int64_t> axes, resize_axes(node, p, rank));
  const size_t na = axes.size();
  ResizeGeometry g;
  g.out = in;
  g.scale.assign(static_cast<size_t>(rank), 1.0);
  g.out_width.assign(static_cast<size_t>(rank), 0.0);
  for (int64_t d = 0; d < rank; ++d)
    g.out_width[static_cast<size_t>(d)] = static_cast<double>(in[static_cast<size_t>(d)]);
  g.roi_start.assign(static_cast<size_t>(rank), 0.0);
  g.roi_end.assign(static_cast<size_t>(rank), 1.0);
  if (!ri.roi.empty() && p.coord == CoordMode::kTfCropAndResize) {
    if (ri.roi.size() != 2 * na)
      return bad("input 'roi' has " + std::to_string(ri.roi.size()) + " elements, expected " +
                 std::to_string(2 * na));
    for (size_t i = 0; i < na; ++i) {
      g.roi_start[static_cast<size_t>(axes[i])] = ri.roi[i];
      g.roi_end[static_cast<size_t>(axes[i])] = ri.roi[na + i];
    }
  }
  if (ri.scales) {
    const std::vector<double>& s = *ri.scales;
    if (s.size() != na)
      return bad("input 'scales' has " + std::to_string(s.size()) + " elements, expected " +
                 std::to_string(na));
    for (size_t i = 0; i < na; ++i) {
      if (!(s[i] > 0)) return bad("scale " + std::to_string(s[i]) + " is not positive");
      if (p.upsample && s[i] < 1)
        return bad("Upsample scale " + std::to_string(s[i]) + " is less than 1");
      const size_t d = static_cast<size_t>(axes[i]);
      g.scale[d] = s[i];
      g.out[d] =
          static_cast<int64_t>(std::floor(static_cast<float>(in[d]) * static_cast<float>(s[i])));
      g.out_width[d] = s[i] * static_cast<double>(in[d]);
    }
  } else if (ri.sizes) {
    const std::vector<int64_t>& z = *ri.sizes;
    if (z.size() != na)
      return bad("input 'sizes' has " + std::to_string(z.size()) + " elements, expected " +
                 std::to_string(na));
    for (int64_t v : z)
      if (v < 0) return bad("input 'sizes' is " + join(z) + ", expected non-negative sizes");
    if (p.policy == AspectPolicy::kStretch) {
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(axes[i]);
        g.out[d] = z[i];
        g.scale[d] = in[d] == 0 ? 1.0 : static_cast<double>(z[i]) / static_cast<double>(in[d]);
        g.out_width[d] = static_cast<double>(z[i]);
      }
    } else {
      double scale =
          p.policy == AspectPolicy::kNotLarger ? std::numeric_limits<double>::infinity() : 0.0;
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(axes[i]);
        const double s = in[d] == 0 ? 1.0 : static_cast<double>(z[i]) / static_cast<double>(in[d]);
        scale = p.policy == AspectPolicy::kNotLarger ? std::min(scale, s) : std::max(scale, s);
      }
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(axes[i]);
        g.scale[d] = scale;
        g.out_width[d] = scale * static_cast<double>(in[d]);
        g.out[d] = static_cast<int64_t>(g.out_width[d] + 0.5);  // round half up
      }
    }
  } else {
    return bad("one of 'scales' and 'sizes' must be given");
  }
  return g;
}

// Source coordinate of output index x along one axis.
double source_coord(CoordMode m, double x, double scale, int64_t in_len, int64_t out_len,
                    double out_width, double roi_start, double roi_end) {
  const double in = static_cast<double>(in_len);
  switch (m) {
    case CoordMode::kHalfPixel:
      return (x + 0.5) / scale - 0.5;
    case CoordMode::kHalfPixelSymmetric: {
      const double adjustment = static_cast<double>(out_len) / out_width;
      const double offset = in / 2 * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case CoordMode::kPytorchHalfPixel:
      return out_len > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case CoordMode::kAlignCorners:
      return out_width == 1 ? 0.0 : x * (in - 1) / (out_width - 1);
    case CoordMode::kAsymmetric:
      return x / scale;
    case CoordMode::kTfHalfPixelForNn:
      return (x + 0.5) / scale;
    case CoordMode::kTfCropAndResize:
      return roi_start * (in - 1) + (out_width == 1
                                         ? (roi_end - roi_start) * (in - 1) / 2
                                         : x * (roi_end - roi_start) * (in - 1) / (out_width - 1));
  }
  return 0;
}

// Interpolation weights over `n` consecutive input samples starting at `start` (clamped to
// the axis when read). The ratio is in (0, 1]: an exact integer coordinate counts as ratio 1
// of the sample to its left, as in the reference.
struct Taps {
  int64_t n = 0;
  std::vector<int64_t> index;  // out_len * n, clamped into [0, in_len)
  std::vector<double> weight;  // out_len * n
  std::vector<bool> outside;   // out_len: tf_crop_and_resize extrapolation
};

std::vector<double> interp_coeffs(const ResizeParams& p, double ratio, double scale) {
  std::vector<double> c;
  if (p.mode == InterpMode::kLinear) {
    if (!p.antialias) return {1 - ratio, ratio};
    const double s = std::min(scale, 1.0);
    const int64_t start = static_cast<int64_t>(std::floor(-1 / s) + 1);
    const int64_t footprint = 2 - 2 * start;
    for (int64_t i = start; i < start + footprint; ++i)
      c.push_back(std::clamp(1 - std::fabs((static_cast<double>(i) - ratio) * s), 0.0, 1.0));
  } else {
    const double A = p.cubic_a;
    if (!p.antialias) {
      const double r = ratio, q = 1 - ratio;
      return {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
              ((A + 2) * r - (A + 3)) * r * r + 1, ((A + 2) * q - (A + 3)) * q * q + 1,
              ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A};
    }
    const double s = std::min(scale, 1.0);
    const int64_t i_start = static_cast<int64_t>(std::floor(-2 / s) + 1);
    const int64_t i_end = 2 - i_start;
    for (int64_t i = i_start; i < i_end; ++i) {
      const double x = std::fabs(s * (static_cast<double>(i) - ratio));
      if (x <= 1)
        c.push_back((A + 2) * x * x * x - (A + 3) * x * x + 1);
      else if (x < 2)
        c.push_back(A * x * x * x - 5 * A * x * x + 8 * A * x - 4 * A);
      else
        c.push_back(0);
    }
  }
  double sum = 0;
  for (double v : c) sum += v;
  for (double& v : c) v /= sum;  // the antialiased filters are normalised
  return c;
}

Taps make_taps(const ResizeParams& p, const ResizeGeometry& g, size_t d, int64_t in_len) {
  Taps t;
  const int64_t out_len = g.out[d];
  t.outside.assign(static_cast<size_t>(out_len), false);
  for (int64_t x = 0; x < out_len; ++x) {
    const double xo = source_coord(p.coord, static_cast<double>(x), g.scale[d], in_len, out_len,
                                   g.out_width[d], g.roi_start[d], g.roi_end[d]);
    if (p.coord == CoordMode::kTfCropAndResize && (xo < 0 || xo > static_cast<double>(in_len - 1)))
      t.outside[static_cast<size_t>(x)] = true;
    const double fl = std::floor(xo);
    const double ratio = xo == fl ? 1.0 : xo - fl;
    std::vector<double> c = interp_coeffs(p, ratio, g.scale[d]);
    const int64_t n = static_cast<int64_t>(c.size());
    if (x == 0) t.n = n;
    // The n samples nearest to xo, ties to the lower index (reference _get_neighbor).
    const double frac = xo - fl;
    int64_t offset;
    if (n % 2 == 0)
      offset = frac == 0 ? -(n / 2) : -(n / 2) + 1;
    else
      offset = frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1;
    const int64_t start = static_cast<int64_t>(fl) + offset;
    if (p.exclude_outside) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t idx = start + i;
        if (idx < 0 || idx >= in_len) c[static_cast<size_t>(i)] = 0;
        sum += c[static_cast<size_t>(i)];
      }
      if (sum != 0)
        for (double& v : c) v /= sum;
    }
    for (int64_t i = 0; i < n; ++i) {
      t.index.push_back(std::clamp<int64_t>(start + i, 0, in_len - 1));
      t.weight.push_back(c[static_cast<size_t>(i)]);
    }
  }
  return t;
}

// An axis that keeps its size at scale 1 (and full roi) is left alone, as the reference and
// ONNX Runtime do; tf_half_pixel_for_nn with ceil rounding would otherwise shift it by one.
bool identity_axis(const ResizeParams& p, const ResizeGeometry& g, size_t d, int64_t in_len) {
  return g.out[d] == in_len && g.scale[d] == 1.0 &&
         (p.coord != CoordMode::kTfCropAndResize || (g.roi_start[d] == 0 && g.roi_end[d] == 1));
}

// Input index for each output index along one axis in nearest mode (-1: extrapolate).
std::vector<int64_t> nearest_indices(const ResizeParams& p, const ResizeGeometry& g, size_t d,
                                     int64_t in_len) {
  const int64_t out_len = g.out[d];
  std::vector<int64_t> idx(static_cast<size_t>(out_len));
  if (identity_axis(p, g, d, in_len)) {
    for (int64_t x = 0; x < out_len; ++x) idx[static_cast<size_t>(x)] = x;
    return idx;
  }
  for (int64_t x = 0; x < out_len; ++x) {
    const double xo = source_coord(p.coord, static_cast<double>(x), g.scale[d], in_len, out_len,
                                   g.out_width[d], g.roi_start[d], g.roi_end[d]);
    if (p.coord == CoordMode::kTfCropAndResize &&
        (xo < 0 || xo > static_cast<double>(in_len - 1))) {
      idx[static_cast<size_t>(x)] = -1;
      continue;
    }
    const double fl = std::floor(xo);
    const double r = xo - fl;
    double v = fl;
    switch (p.nearest) {
      case NearestMode::kRoundPreferFloor:
        v = r <= 0.5 ? fl : fl + 1;
        break;
      case NearestMode::kRoundPreferCeil:
        v = r < 0.5 ? fl : fl + 1;
        break;
      case NearestMode::kFloor:
        v = fl;
        break;
      case NearestMode::kCeil:
        v = std::ceil(xo);
        break;
      case NearestMode::kLegacy:
        v = g.scale[d] < 1 ? std::ceil(xo) : fl;
        break;
    }
    idx[static_cast<size_t>(x)] =
        static_cast<int64_t>(std::clamp(v, 0.0, static_cast<double>(in_len - 1)));
  }
  return idx;
}

template <typename T>
void resize_nearest(const ResizeParams& p, const ResizeGeometry& g, const Tensor& x, Tensor& y) {
  const Shape& in = x.shape();
  const size_t rank = in.size();
  const T* src = x.data<T>();
  T* dst = y.data<T>();
  const T extrapolated = saturate_from_double<T>(p.extrapolation);
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  std::vector<std::vector<int64_t>> idx(rank);
  for (size_t d = 0; d < rank; ++d) idx[d] = nearest_indices(p, g, d, in[d]);
  const std::vector<int64_t> strides = strides_of(in);
  const int64_t row = g.out[rank - 1];
  const std::vector<int64_t>& last = idx[rank - 1];
  // Odometer over the output's leading dims; each step copies one output row.
  std::vector<int64_t> pos(rank - 1, 0);
  for (int64_t r = 0, rows = shape_numel(Shape(g.out.begin(), g.out.end() - 1)); r < rows; ++r) {
    int64_t off = 0;
    bool outside = false;
    for (size_t d = 0; d + 1 < rank; ++d) {
      const int64_t i = idx[d][static_cast<size_t>(pos[d])];
      if (i < 0) outside = true;
      off += i * strides[d];
    }
    T* out_row = dst + r * row;
    for (int64_t j = 0; j < row; ++j) {
      const int64_t i = last[static_cast<size_t>(j)];
      out_row[j] = outside || i < 0 ? extrapolated : src[off + i];
    }
    for (size_t d = rank - 1; d-- > 0;) {
      if (++pos[d] < g.out[d]) break;
      pos[d] = 0;
    }
  }
}

// Linear and cubic: one separable pass per resized axis over a double buffer.
template <typename T>
void resize_interp(const ResizeParams& p, const ResizeGeometry& g, const Tensor& x, Tensor& y) {
  const Shape& in = x.shape();
  const size_t rank = in.size();
  Shape cur = in;
  std::vector<double> buf(static_cast<size_t>(x.numel()));
  const T* src = x.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i)
    buf[static_cast<size_t>(i)] = static_cast<double>(static_cast<compute_t<T>>(src[i]));
  std::vector<double> next;
  for (size_t d = 0; d < rank; ++d) {
    if (identity_axis(p, g, d, in[d])) continue;
    const Taps t = make_taps(p, g, d, in[d]);
    int64_t outer = 1, inner = 1;
    for (size_t k = 0; k < d; ++k) outer *= cur[k];
    for (size_t k = d + 1; k < rank; ++k) inner *= cur[k];
    const int64_t in_len = cur[d], out_len = g.out[d];
    next.assign(static_cast<size_t>(outer * out_len * inner), 0.0);
    for (int64_t o = 0; o < outer; ++o) {
      const double* sb = buf.data() + o * in_len * inner;
      double* db = next.data() + o * out_len * inner;
      for (int64_t j = 0; j < out_len; ++j) {
        double* drow = db + j * inner;
        if (t.outside[static_cast<size_t>(j)]) {
          std::fill(drow, drow + inner, p.extrapolation);
          continue;
        }
        const double* w = t.weight.data() + j * t.n;
        const int64_t* idx = t.index.data() + j * t.n;
        if (inner == 1) {  // the last axis: a dot product per output element
          double acc = 0;
          for (int64_t k = 0; k < t.n; ++k) acc += w[k] * sb[idx[k]];
          drow[0] = acc;
          continue;
        }
        for (int64_t k = 0; k < t.n; ++k) {
          const double* srow = sb + idx[k] * inner;
          for (int64_t i = 0; i < inner; ++i) drow[i] += w[k] * srow[i];
        }
      }
    }
    buf.swap(next);
    cur[d] = out_len;
  }
  T* dst = y.data<T>();
  for (int64_t i = 0; i < y.numel(); ++i)
    dst[i] = saturate_from_double<T>(buf[static_cast<size_t>(i)]);
}

// Input slots: Upsample-7 (scales attribute), Upsample-9 / Resize-10 (X, scales),
// Resize-11+ (X, roi, scales, sizes).
struct ResizeSlots {
  int roi = -1, scales = -1, sizes = -1;
};
ResizeSlots resize_slots(bool upsample, int64_t opset) {
  if (upsample) return opset < 9 ? ResizeSlots{-1, -1, -1} : ResizeSlots{-1, 1, -1};
  if (opset < 11) return {-1, 1, -1};
  return {1, 2, 3};
}

bool slot_present(const InferContext& ctx, int slot) {
  return slot >= 0 && ctx.has_input(static_cast<size_t>(slot));
}

// Known-empty inputs count as absent (opset 11 passes an empty 'scales' beside 'sizes').
bool known_empty(const TensorType& t) {
  return t.is_static() && shape_numel(t.static_shape()) == 0;
}

// Gathers the scales/sizes/roi values; nullopt when some needed value is not known yet.
Result<std::optional<ResizeInputs>> gather_resize_inputs(const InferContext& ctx,
                                                         const ResizeSlots& s,
                                                         bool scales_from_attr) {
  ResizeInputs ri;
  const ir::Node& node = ctx.node();
  if (scales_from_attr) {
    if (!node.attr("scales"))
      return invalid_model(node.describe() + ": attribute 'scales' is required");
    ri.scales = std::vector<double>();
    for (float f : node.attr_floats("scales")) ri.scales->push_back(f);
    return std::optional<ResizeInputs>(ri);
  }
  const bool has_scales =
      slot_present(ctx, s.scales) && !known_empty(ctx.input_type(static_cast<size_t>(s.scales)));
  const bool has_sizes =
      slot_present(ctx, s.sizes) && !known_empty(ctx.input_type(static_cast<size_t>(s.sizes)));
  bool known = true;
  if (has_scales) {
    const size_t i = static_cast<size_t>(s.scales);
    if (!dtype_is_float(ctx.input_dtype(i)))
      return invalid_model(node.describe() + ": input 'scales' has dtype " +
                           dtype_name(ctx.input_dtype(i)) + ", expected f32");
    if (const Tensor* t = ctx.input_value(i)) {
      if (t->numel() > 0) ri.scales = tensor_to_doubles(*t);
    } else {
      known = false;
    }
  }
  if (has_sizes) {
    const size_t i = static_cast<size_t>(s.sizes);
    if (ctx.input_dtype(i) != DataType::kInt64)
      return invalid_model(node.describe() + ": input 'sizes' has dtype " +
                           dtype_name(ctx.input_dtype(i)) + ", expected i64");
    if (const Tensor* t = ctx.input_value(i)) {
      if (t->numel() > 0) ri.sizes = tensor_to_int64s(*t);
    } else {
      known = false;
    }
  }
  if (ri.scales && ri.sizes)
    return invalid_model(node.describe() +
                         ": both 'scales' and 'sizes' are given, expected only one");
  if (slot_present(ctx, s.roi)) {
    if (const Tensor* t = ctx.input_value(static_cast<size_t>(s.roi)))
      ri.roi = tensor_to_doubles(*t);
    else if (!known_empty(ctx.input_type(static_cast<size_t>(s.roi))))
      known = false;
  }
  if (!known) return std::optional<ResizeInputs>();
  if (!ri.scales && !ri.sizes)
    return invalid_model(node.describe() + ": one of 'scales' and 'sizes' must be given");
  return std::optional<ResizeInputs>(ri);
}

OpDef resize_op(const std::string& name, int since, int max_version) {
  const bool upsample = name == "Upsample";
  OpDef d;
  d.op_type = name;
  d.since_version = since;
  d.max_version = max_version;
  d.infer = [upsample](InferContext& ctx) -> Status {
    if (!ctx.has_input(0)) return ctx.invalid("input 0 is required");
    const DataType dt = ctx.input_dtype(0);
    if (!dtype_is_supported(dt))
      return ctx.unsupported_here(std::string("input dtype ") + dtype_name(dt) +
                                  " is not supported");
    BRINK_ASSIGN_OR_RETURN(ResizeParams p, parse_resize_params(ctx.node(), ctx.opset(), upsample));
    const ResizeSlots slots = resize_slots(upsample, ctx.opset());
    BRINK_ASSIGN_OR_RETURN(std::optional<ResizeInputs> ri,
                           gather_resize_inputs(ctx, slots, upsample && ctx.opset() < 9));
    const TensorType& xt = ctx.input_type(0);
    if (!xt.has_rank()) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    const int64_t rank = xt.rank();
    if (ri && xt.is_static()) {
      BRINK_ASSIGN_OR_RETURN(ResizeGeometry g,
                             resize_geometry(ctx.node(), p, xt.static_shape(), *ri));
      ctx.set_output(0, dt, g.out);
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(std::vector<int64_t> axes, resize_axes(ctx.node(), p, rank));
    std::vector<Dim> dims = *xt.dims;
    std::vector<bool> resized(static_cast<size_t>(rank), false);
    bool all_resized_known = true;
    for (int64_t a : axes) {
      resized[static_cast<size_t>(a)] = true;
      all_resized_known = all_resized_known && dims[static_cast<size_t>(a)].known();
    }
    if (!ri) {
      for (int64_t a : axes) dims[static_cast<size_t>(a)] = Dim();
      ctx.set_output(0, dt, dims);
      return Status::ok();
    }
    // Scales or sizes known, some input dims symbolic (a batch size): each known dim gets its
    // size, a symbolic dim at scale 1 keeps its symbol. Aspect-ratio policies need every
    // resized dim.
    Shape stand_in(static_cast<size_t>(rank));
    for (size_t i = 0; i < dims.size(); ++i) stand_in[i] = dims[i].known() ? dims[i].value : 1;
    BRINK_ASSIGN_OR_RETURN(ResizeGeometry g, resize_geometry(ctx.node(), p, stand_in, *ri));
    const bool policy = ri->sizes && p.policy != AspectPolicy::kStretch;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (!resized[i]) continue;
      if (policy && !all_resized_known)
        dims[i] = Dim();
      else if (dims[i].known() || ri->sizes)
        dims[i] = Dim(g.out[i]);
      else if (g.scale[i] != 1.0)
        dims[i] = Dim();
    }
    ctx.set_output(0, dt, dims);
    return Status::ok();
  };
  d.create = [upsample](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(ResizeParams p, parse_resize_params(c.node, c.opset, upsample));
    if (p.mode != InterpMode::kNearest && c.has_input(0) && c.input_dtype(0) == DataType::kBool)
      return c.unsupported_here("bool input with mode " + c.node.attr_string("mode", "nearest") +
                                " is not supported (only nearest)");
    const ResizeSlots slots = resize_slots(upsample, c.opset);
    const ir::Node node = c.node;
    const int64_t opset = c.opset;
    std::vector<double> attr_scales;
    for (float f : c.node.attr_floats("scales")) attr_scales.push_back(f);
    const bool scales_from_attr = upsample && opset < 9;
    return make_kernel(
        [p, slots, node, attr_scales, scales_from_attr](KernelContext& ctx) -> Status {
          const Tensor& x = ctx.input(0);
          Tensor& y = ctx.output(0);
          ResizeInputs ri;
          auto present = [&](int slot) {
            return slot >= 0 && ctx.has_input(static_cast<size_t>(slot)) &&
                   ctx.input(static_cast<size_t>(slot)).numel() > 0;
          };
          if (scales_from_attr) ri.scales = attr_scales;
          if (present(slots.scales))
            ri.scales = tensor_to_doubles(ctx.input(static_cast<size_t>(slots.scales)));
          else if (present(slots.sizes))
            ri.sizes = tensor_to_int64s(ctx.input(static_cast<size_t>(slots.sizes)));
          if (present(slots.roi))
            ri.roi = tensor_to_doubles(ctx.input(static_cast<size_t>(slots.roi)));
          BRINK_ASSIGN_OR_RETURN(ResizeGeometry g, resize_geometry(node, p, x.shape(), ri));
          if (y.numel() == 0) return Status::ok();
          if (x.numel() == 0)
            return invalid_argument(node.describe() +
                                    ": cannot resize an empty input to a non-empty output");
          visit_dtype(x.dtype(), [&]<typename T>() {
            if (p.mode == InterpMode::kNearest) {
              resize_nearest<T>(p, g, x, y);
            } else if constexpr (!std::is_same_v<T, bool>) {
              resize_interp<T>(p, g, x, y);
            }
          });
          return Status::ok();
        });
  };
  return d;
}

// ---- Pad -----------------------------------------------------------------------------------

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

Result<PadMode> parse_pad_mode(const ir::Node& node, int64_t opset) {
  const std::string m = node.attr_string("mode", "constant");
  if (m == "constant") return PadMode::kConstant;
  if (m == "reflect") return PadMode::kReflect;
  if (m == "edge") return PadMode::kEdge;
  if (m == "wrap" && opset >= 19) return PadMode::kWrap;
  return invalid_model(node.describe() + ": attribute 'mode' is '" + m +
                       "', expected constant, reflect, edge" + (opset >= 19 ? " or wrap" : ""));
}

// Pads per axis (begin, end) for every dim, from the pads (and axes) values.
Result<std::vector<std::pair<int64_t, int64_t>>> full_pads(
    const ir::Node& node, const std::vector<int64_t>& pads,
    const std::optional<std::vector<int64_t>>& axes, int64_t rank) {
  std::vector<int64_t> ax;
  if (axes) {
    for (int64_t a : *axes) {
      if (a < -rank || a >= rank)
        return invalid_model(node.describe() + ": axis " + std::to_string(a) +
                             " is out of range for rank " + std::to_string(rank));
      ax.push_back(a < 0 ? a + rank : a);
    }
  } else {
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  }
  if (pads.size() != 2 * ax.size())
    return invalid_model(node.describe() + ": 'pads' has " + std::to_string(pads.size()) +
                         " values, expected " + std::to_string(2 * ax.size()) +
                         (axes ? " (2 per axis in 'axes')" : " (2 * rank)"));
  std::vector<std::pair<int64_t, int64_t>> r(static_cast<size_t>(rank), {0, 0});
  for (size_t i = 0; i < ax.size(); ++i)
    r[static_cast<size_t>(ax[i])] = {pads[i], pads[ax.size() + i]};
  return r;
}

// Since opset 11 pads (input 1), constant_value (input 2) and, since 18, axes (input 3) are
// inputs; before, pads and value are attributes.
OpDef pad_op(int since, int max_version) {
  const bool from_inputs = since >= 11;
  OpDef d;
  d.op_type = "Pad";
  d.since_version = since;
  d.max_version = max_version;
  d.infer = [from_inputs](InferContext& ctx) -> Status {
    if (!ctx.has_input(0)) return ctx.invalid("input 0 is required");
    const DataType dt = ctx.input_dtype(0);
    if (!dtype_is_supported(dt))
      return ctx.unsupported_here(std::string("input dtype ") + dtype_name(dt) +
                                  " is not supported");
    BRINK_RETURN_IF_ERROR(parse_pad_mode(ctx.node(), ctx.opset()).status());
    std::optional<std::vector<int64_t>> pads, axes;
    bool known = true;
    if (!from_inputs) {
      if (!ctx.node().attr("pads")) return ctx.invalid("attribute 'pads' is required");
      pads = ctx.node().attr_ints("pads");
    } else {
      if (!ctx.has_input(1)) return ctx.invalid("input 'pads' is required");
      if (ctx.input_dtype(1) != DataType::kInt64)
        return ctx.invalid(std::string("input 'pads' has dtype ") + dtype_name(ctx.input_dtype(1)) +
                           ", expected i64");
      if (const Tensor* t = ctx.input_value(1))
        pads = tensor_to_int64s(*t);
      else
        known = false;
      if (ctx.has_input(2) && ctx.input_dtype(2) != dt)
        return ctx.invalid(std::string("input 'constant_value' has dtype ") +
                           dtype_name(ctx.input_dtype(2)) + ", expected " + dtype_name(dt) +
                           " as the data");
      if (ctx.has_input(3)) {
        if (ctx.input_dtype(3) != DataType::kInt64 && ctx.input_dtype(3) != DataType::kInt32)
          return ctx.invalid(std::string("input 'axes' has dtype ") +
                             dtype_name(ctx.input_dtype(3)) + ", expected i32 or i64");
        if (const Tensor* t = ctx.input_value(3))
          axes = tensor_to_int64s(*t);
        else
          known = false;
      }
    }
    const TensorType& xt = ctx.input_type(0);
    if (!xt.has_rank()) {
      ctx.set_output(0, TensorType(dt, std::nullopt));
      return Status::ok();
    }
    std::vector<Dim> dims = *xt.dims;
    if (!known) {
      for (Dim& x : dims) x = Dim();
      ctx.set_output(0, dt, dims);
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(auto pp, full_pads(ctx.node(), *pads, axes, xt.rank()));
    for (size_t i = 0; i < dims.size(); ++i) {
      if (!dims[i].known()) {
        if (pp[i].first != 0 || pp[i].second != 0) dims[i] = Dim();
        continue;
      }
      const int64_t n = dims[i].value + pp[i].first + pp[i].second;
      if (n < 0)
        return ctx.invalid("pads (" + std::to_string(pp[i].first) + ", " +
                           std::to_string(pp[i].second) + ") on axis " + std::to_string(i) +
                           " of size " + std::to_string(dims[i].value) + " give a negative size");
      dims[i] = Dim(n);
    }
    ctx.set_output(0, dt, dims);
    return Status::ok();
  };
  d.create = [from_inputs](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    BRINK_ASSIGN_OR_RETURN(PadMode mode, parse_pad_mode(c.node, c.opset));
    const ir::Node node = c.node;
    const std::vector<int64_t> attr_pads = c.node.attr_ints("pads");
    const double attr_value = c.node.attr_float("value", 0.0f);
    return make_kernel([mode, node, attr_pads, attr_value,
                        from_inputs](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t rank = x.rank();
      std::optional<std::vector<int64_t>> axes;
      if (from_inputs && ctx.has_input(3)) axes = tensor_to_int64s(ctx.input(3));
      BRINK_ASSIGN_OR_RETURN(
          auto pp,
          full_pads(node, from_inputs ? tensor_to_int64s(ctx.input(1)) : attr_pads, axes, rank));
      if (y.numel() == 0) return Status::ok();
      // Per axis: the input index each output index reads (-1: the constant). Negative pads
      // crop first; the other modes then pad the cropped range, as ONNX Runtime does.
      std::vector<std::vector<int64_t>> map(static_cast<size_t>(rank));
      for (int64_t a = 0; a < rank; ++a) {
        const auto [b, e] = pp[static_cast<size_t>(a)];
        const int64_t lo = std::max<int64_t>(0, -b);
        const int64_t n = x.dim(a) - lo - std::max<int64_t>(0, -e);
        const int64_t out_len = y.dim(a);
        if (n <= 0 && mode != PadMode::kConstant && out_len > 0)
          return invalid_argument(node.describe() + ": cannot pad axis " + std::to_string(a) +
                                  " in this mode: it has no elements left to read");
        auto& m = map[static_cast<size_t>(a)];
        m.resize(static_cast<size_t>(out_len));
        for (int64_t o = 0; o < out_len; ++o) {
          const int64_t q = o - std::max<int64_t>(0, b);  // position in the cropped range
          int64_t i = -1;
          if (q >= 0 && q < n) {
            i = q;
          } else {
            switch (mode) {
              case PadMode::kConstant:
                i = -1;
                break;
              case PadMode::kEdge:
                i = std::clamp<int64_t>(q, 0, n - 1);
                break;
              case PadMode::kWrap:
                i = ((q % n) + n) % n;
                break;
              case PadMode::kReflect: {
                if (n == 1) {
                  i = 0;
                } else {
                  const int64_t period = 2 * (n - 1);
                  const int64_t r = ((q % period) + period) % period;
                  i = r < n ? r : period - r;
                }
                break;
              }
            }
          }
          m[static_cast<size_t>(o)] = i < 0 ? -1 : lo + i;
        }
      }
      visit_dtype(x.dtype(), [&]<typename T>() {
        T value;
        if (from_inputs && ctx.has_input(2) && ctx.input(2).numel() > 0)
          value = first_element<T>(ctx.input(2));
        else if (from_inputs)
          value = T(0);
        else
          value = truncate_from_double<T>(attr_value);
        const T* src = x.data<T>();
        T* dst = y.data<T>();
        if (rank == 0) {
          dst[0] = src[0];
          return;
        }
        const std::vector<int64_t> strides = strides_of(x.shape());
        const std::vector<int64_t>& last = map[static_cast<size_t>(rank - 1)];
        const int64_t row = y.dim(rank - 1);
        std::vector<int64_t> pos(static_cast<size_t>(rank - 1), 0);
        const int64_t rows = y.numel() / row;
        for (int64_t r = 0; r < rows; ++r) {
          int64_t off = 0;
          bool constant = false;
          for (size_t a = 0; a + 1 < static_cast<size_t>(rank); ++a) {
            const int64_t i = map[a][static_cast<size_t>(pos[a])];
            if (i < 0) constant = true;
            off += i * strides[a];
          }
          T* out_row = dst + r * row;
          if (constant) {
            std::fill(out_row, out_row + row, value);
          } else {
            for (int64_t j = 0; j < row; ++j) {
              const int64_t i = last[static_cast<size_t>(j)];
              out_row[j] = i < 0 ? value : src[off + i];
            }
          }
          for (size_t a = static_cast<size_t>(rank - 1); a-- > 0;) {
            if (++pos[a] < y.dim(static_cast<int64_t>(a))) break;
            pos[a] = 0;
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  if constexpr (op_selected("", "Upsample")) r.add(resize_op("Upsample", 7, 8));
  if constexpr (op_selected("", "Upsample")) r.add(resize_op("Upsample", 9, 9));
  if constexpr (op_selected("", "Resize")) r.add(resize_op("Resize", 10, 10));
  if constexpr (op_selected("", "Resize")) r.add(resize_op("Resize", 11, 21));
  if constexpr (op_selected("", "Pad")) r.add(pad_op(2, 10));
  if constexpr (op_selected("", "Pad")) r.add(pad_op(11, 21));
}

}  // namespace brink::ops
