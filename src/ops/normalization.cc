// Normalization operators: BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization.
//
// Statistics (means, variances, norms) are accumulated in double whatever the input type,
// and variances are computed as the mean of squared deviations (two passes), which never
// goes negative; the elementwise part runs in float (double for f64).
//
// LayerNormalization of float32 with one Scale (and B) value per normalized element runs the
// fast kernel of src/kernels/layernorm.h (vectorized per ISA, rows split over threads; float
// statistics, two passes); other dtypes and parameter shapes run the reference below, its
// oracle in tests/unit/transformer_ops_test.cc.
//
// Limits: BatchNormalization in training mode is unsupported (Brink runs inference).
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/layernorm.h"
#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

// The elementwise compute type: double for f64, float for every other float type.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

Status check_same_dtype(const InferContext& ctx, size_t i, const char* name) {
  if (ctx.has_input(i) && ctx.input_dtype(i) != ctx.input_dtype(0))
    return ctx.invalid(std::string("input ") + name + " has dtype " +
                       dtype_name(ctx.input_dtype(i)) + ", expected " +
                       dtype_name(ctx.input_dtype(0)) + " like the first input");
  return Status::ok();
}

// Checks that input `i` is 1-D with `expected` elements (when both are known).
Status check_vector(const InferContext& ctx, size_t i, const char* name, const Dim& expected,
                    const char* what) {
  if (!ctx.has_input(i) || !ctx.input_type(i).has_rank()) return Status::ok();
  const TensorType& t = ctx.input_type(i);
  if (t.rank() != 1)
    return ctx.invalid(std::string("input ") + name + " has rank " + std::to_string(t.rank()) +
                       ", expected 1");
  const Dim& d = (*t.dims)[0];
  if (d.known() && expected.known() && d.value != expected.value)
    return ctx.invalid(std::string("input ") + name + " has " + std::to_string(d.value) +
                       " values, expected " + std::to_string(expected.value) + " (" + what + ")");
  return Status::ok();
}

// The channel dim of input 0, unknown when its rank is.
Dim channel_dim(const InferContext& ctx) {
  const TensorType& t = ctx.input_type(0);
  return t.has_rank() && t.rank() >= 2 ? (*t.dims)[1] : Dim();
}

Status check_min_rank(const InferContext& ctx, int64_t min_rank, const char* layout) {
  const TensorType& t = ctx.input_type(0);
  if (t.has_rank() && t.rank() < min_rank)
    return ctx.invalid("input X has rank " + std::to_string(t.rank()) + ", expected at least " +
                       std::to_string(min_rank) + " " + layout);
  return Status::ok();
}

// `t` (any float dtype) broadcast to `target` (right-aligned, NumPy rules) as doubles.
std::vector<double> broadcast_to(const Tensor& t, const Shape& target) {
  std::vector<double> out(static_cast<size_t>(shape_numel(target)));
  StridedIterator it(target, {broadcast_strides(t.shape(), target)});
  for (size_t i = 0; !it.done(); it.next(), ++i) out[i] = t.element_as_double(it.offset(0));
  return out;
}

// ---- BatchNormalization ----------------------------------------------------------------------

OpDef batch_norm_op(int since, int until) {
  OpDef d;
  d.op_type = "BatchNormalization";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    const bool bf16 = since >= 14;
    static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (size_t i = 0; i < 5; ++i) BRINK_RETURN_IF_ERROR(check_float_input(ctx, i, names[i], bf16));
    if (since < 15) {
      // 15 lets scale/B and mean/var each have their own float type; before, they follow X
      // (14: mean/var share a type U of their own).
      BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 1, "scale"));
      BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 2, "B"));
      if (since < 14) {
        BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 3, "input_mean"));
        BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 4, "input_var"));
      }
    }
    if (since >= 15 && ctx.input_dtype(1) != ctx.input_dtype(2))
      return ctx.invalid("inputs scale and B have different dtypes");
    if (since >= 14 && ctx.input_dtype(3) != ctx.input_dtype(4))
      return ctx.invalid("inputs input_mean and input_var have different dtypes");
    BRINK_RETURN_IF_ERROR(check_min_rank(ctx, 2, "(N, C, ...)"));
    const ir::Node& node = ctx.node();
    size_t extra_outputs = 0;
    for (size_t i = 1; i < node.outputs.size(); ++i)
      if (node.outputs[i] != ir::kNoValue) ++extra_outputs;
    if (since >= 14 && node.attr_int("training_mode", 0) != 0)
      return ctx.unsupported_here("training_mode=1 is not supported (inference only)");
    if (extra_outputs > 0)
      return ctx.unsupported_here(
          "the running mean/variance outputs are only computed in training mode, which is not "
          "supported");
    const bool spatial = since >= 9 || node.attr_int("spatial", 1) != 0;
    if (spatial) {
      const Dim c = channel_dim(ctx);
      for (size_t i = 1; i < 5; ++i)
        BRINK_RETURN_IF_ERROR(check_vector(ctx, i, names[i], c, "one per channel"));
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const double epsilon = c.node.attr_float("epsilon", 1e-5f);
    return make_kernel([epsilon](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t batch = x.dim(0), channels = x.dim(1);
      const int64_t plane = batch * channels > 0 ? x.numel() / (batch * channels) : 0;
      // Parameters hold one value per channel, or (opset 7 with spatial=0) one per channel
      // and spatial position.
      const int64_t params = ctx.input(1).numel();
      const int64_t per_param = params == channels ? plane : 1;
      if (params != channels && params != channels * plane)
        return invalid_argument("BatchNormalization: scale has " + std::to_string(params) +
                                " values, expected " + std::to_string(channels));
      for (size_t i = 2; i < 5; ++i)
        if (ctx.input(i).numel() != params)
          return invalid_argument("BatchNormalization: input " + std::to_string(i) + " has " +
                                  std::to_string(ctx.input(i).numel()) + " values, expected " +
                                  std::to_string(params) + " like scale");
      // y = x * a + b with a = scale / sqrt(var + eps), b = B - mean * a.
      std::vector<double> a(static_cast<size_t>(params)), b(static_cast<size_t>(params));
      for (int64_t i = 0; i < params; ++i) {
        const double s = ctx.input(1).element_as_double(i);
        const double bias = ctx.input(2).element_as_double(i);
        const double mean = ctx.input(3).element_as_double(i);
        const double var = ctx.input(4).element_as_double(i);
        a[static_cast<size_t>(i)] = s / std::sqrt(var + epsilon);
        b[static_cast<size_t>(i)] = bias - mean * a[static_cast<size_t>(i)];
      }
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          using A = acc_t<T>;
          const T* xd = x.data<T>();
          T* yd = y.data<T>();
          for (int64_t n = 0; n < batch; ++n) {
            for (int64_t ch = 0; ch < channels; ++ch) {
              const int64_t base = (n * channels + ch) * plane;
              for (int64_t i = 0; i < plane; i += per_param) {
                const size_t pi = static_cast<size_t>((ch * plane + i) / per_param);
                const A pa = static_cast<A>(a[pi]), pb = static_cast<A>(b[pi]);
                for (int64_t k = base + i; k < base + i + per_param; ++k)
                  yd[k] = static_cast<T>(static_cast<A>(xd[k]) * pa + pb);
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- Instance and group normalization --------------------------------------------------------

// Normalizes each of `groups` consecutive blocks of `block` elements of x to zero mean and
// unit variance, then applies a per-(sub)channel affine transform: element k of block g
// uses scale[param_of(g, k)]. Shared by InstanceNormalization and GroupNormalization.
template <typename T, typename ParamOf>
void normalize_blocks(const T* x, T* y, int64_t groups, int64_t block, double epsilon,
                      const std::vector<double>& scale, const std::vector<double>& bias,
                      ParamOf param_of) {
  using A = acc_t<T>;
  for (int64_t g = 0; g < groups; ++g) {
    const T* xb = x + g * block;
    T* yb = y + g * block;
    double sum = 0;
    for (int64_t k = 0; k < block; ++k) sum += static_cast<double>(xb[k]);
    const double mean = block > 0 ? sum / static_cast<double>(block) : 0.0;
    double sq = 0;
    for (int64_t k = 0; k < block; ++k) {
      const double dv = static_cast<double>(xb[k]) - mean;
      sq += dv * dv;
    }
    const double var = block > 0 ? sq / static_cast<double>(block) : 0.0;
    const A inv_std = static_cast<A>(1.0 / std::sqrt(var + epsilon));
    const A m = static_cast<A>(mean);
    for (int64_t k = 0; k < block; ++k) {
      const size_t p = param_of(g, k);
      const A normalized = (static_cast<A>(xb[k]) - m) * inv_std;
      yb[k] = static_cast<T>(normalized * static_cast<A>(scale[p]) + static_cast<A>(bias[p]));
    }
  }
}

OpDef instance_norm_op() {
  OpDef d;
  d.op_type = "InstanceNormalization";
  d.since_version = 6;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "input", false));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 1, "scale", false));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 2, "B", false));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 1, "scale"));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 2, "B"));
    BRINK_RETURN_IF_ERROR(check_min_rank(ctx, 3, "(N, C, D1, ...)"));
    BRINK_RETURN_IF_ERROR(check_vector(ctx, 1, "scale", channel_dim(ctx), "one per channel"));
    BRINK_RETURN_IF_ERROR(check_vector(ctx, 2, "B", channel_dim(ctx), "one per channel"));
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const double epsilon = c.node.attr_float("epsilon", 1e-5f);
    return make_kernel([epsilon](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t channels = x.dim(1), planes = x.dim(0) * channels;
      const int64_t plane = planes > 0 ? x.numel() / planes : 0;
      const std::vector<double> scale = tensor_to_doubles(ctx.input(1));
      const std::vector<double> bias = tensor_to_doubles(ctx.input(2));
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          normalize_blocks(
              x.data<T>(), y.data<T>(), planes, plane, epsilon, scale, bias,
              [channels](int64_t g, int64_t) { return static_cast<size_t>(g % channels); });
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// GroupNormalization-18 takes one scale/bias per group, -21 one per channel.
OpDef group_norm_op(int since, int until) {
  OpDef d;
  d.op_type = "GroupNormalization";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "X", true));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 1, "scale", true));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 2, "bias", true));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 1, "scale"));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 2, "bias"));
    BRINK_RETURN_IF_ERROR(check_min_rank(ctx, 2, "(N, C, ...)"));
    const ir::Attribute* ng = ctx.node().attr("num_groups");
    if (!ng) return ctx.invalid("attribute 'num_groups' is required");
    if (ng->i < 1) return ctx.invalid("num_groups is " + std::to_string(ng->i) + ", expected > 0");
    const Dim c = channel_dim(ctx);
    if (c.known() && c.value % ng->i != 0)
      return ctx.invalid("the " + std::to_string(c.value) +
                         " channels are not divisible by num_groups " + std::to_string(ng->i));
    const Dim per = since >= 21 ? c : Dim(ng->i);
    const char* what = since >= 21 ? "one per channel" : "one per group at opset 18";
    BRINK_RETURN_IF_ERROR(check_vector(ctx, 1, "scale", per, what));
    BRINK_RETURN_IF_ERROR(check_vector(ctx, 2, "bias", per, what));
    return propagate_input_type(ctx);
  };
  d.create = [since](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const double epsilon = c.node.attr_float("epsilon", 1e-5f);
    const int64_t groups = c.node.attr_int("num_groups", 1);
    const bool per_channel = since >= 21;
    return make_kernel([epsilon, groups, per_channel](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t channels = x.dim(1);
      const int64_t plane = x.dim(0) * channels > 0 ? x.numel() / (x.dim(0) * channels) : 0;
      const int64_t cpg = channels / groups;  // channels per group
      const std::vector<double> scale = tensor_to_doubles(ctx.input(1));
      const std::vector<double> bias = tensor_to_doubles(ctx.input(2));
      const size_t expected = static_cast<size_t>(per_channel ? channels : groups);
      if (scale.size() != expected || bias.size() != expected)
        return invalid_argument("GroupNormalization: scale and bias need " +
                                std::to_string(expected) + " values");
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          normalize_blocks(x.data<T>(), y.data<T>(), x.dim(0) * groups, cpg * plane, epsilon, scale,
                           bias, [&](int64_t g, int64_t k) {
                             const int64_t grp = g % groups;
                             return static_cast<size_t>(per_channel ? grp * cpg + k / plane : grp);
                           });
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- LayerNormalization ------------------------------------------------------------------------

// The float32 fast path of LayerNormalization; false when Scale or B is not one value per
// normalized element (they then broadcast over rows too: the reference handles that).
bool fast_layer_norm(KernelContext& ctx, int64_t axis_attr, float epsilon, bool want_mean,
                     bool want_inv_std, Isa isa) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DataType::kFloat32 || x.numel() == 0) return false;
  const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
  if (axis < 0 || axis > x.rank()) return false;
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < x.rank(); ++i) (i < axis ? rows : cols) *= x.dim(i);
  auto per_column = [&](const Tensor& p) {
    if (p.dtype() != DataType::kFloat32 || p.numel() != cols) return false;
    for (int64_t i = 0; i < p.rank() - (x.rank() - axis); ++i)
      if (p.dim(i) != 1) return false;
    return true;
  };
  const Tensor& scale = ctx.input(1);
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (!per_column(scale) || (bias != nullptr && !per_column(*bias))) return false;
  float* mean = nullptr;
  float* inv_std = nullptr;
  if (want_mean) {
    if (ctx.output(1).dtype() != DataType::kFloat32) return false;
    mean = ctx.output(1).data<float>();
  }
  if (want_inv_std) {
    if (ctx.output(2).dtype() != DataType::kFloat32) return false;
    inv_std = ctx.output(2).data<float>();
  }
  kernels::layernorm_rows_f32(x.data<float>(), ctx.output(0).data<float>(), rows, cols,
                              scale.data<float>(), bias ? bias->data<float>() : nullptr, epsilon,
                              mean, inv_std, isa, ctx.thread_pool());
  return true;
}

// True when `p` broadcasts unidirectionally to `x` (right-aligned, each dim equal or 1).
bool unidirectional(const TensorType& p, const TensorType& x) {
  if (!p.has_rank() || !x.has_rank()) return true;
  if (p.rank() > x.rank()) return false;
  const size_t off = static_cast<size_t>(x.rank() - p.rank());
  for (size_t i = 0; i < static_cast<size_t>(p.rank()); ++i) {
    const Dim& pd = (*p.dims)[i];
    const Dim& xd = (*x.dims)[off + i];
    if (pd.known() && xd.known() && pd.value != 1 && pd.value != xd.value) return false;
  }
  return true;
}

DataType stash_dtype(int64_t stash_type) {
  switch (stash_type) {
    case 1:
      return DataType::kFloat32;
    case 16:
      return DataType::kBFloat16;
    default:
      return DataType::kUndefined;
  }
}

OpDef layer_norm_op() {
  OpDef d;
  d.op_type = "LayerNormalization";
  d.since_version = 17;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "X", true));
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 1, "Scale", true));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 1, "Scale"));
    BRINK_RETURN_IF_ERROR(check_same_dtype(ctx, 2, "B"));
    const int64_t stash = ctx.node().attr_int("stash_type", 1);
    const DataType u = stash_dtype(stash);
    if (u == DataType::kUndefined)
      return ctx.unsupported_here("stash_type " + std::to_string(stash) +
                                  " is not supported (expected 1 for f32 or 16 for bf16)");
    const TensorType& xt = ctx.input_type(0);
    for (size_t i : {1, 2})
      if (ctx.has_input(i) && !unidirectional(ctx.input_type(i), xt))
        return ctx.invalid(std::string(i == 1 ? "Scale" : "B") + " of type " +
                           ctx.input_type(i).to_string() + " does not broadcast to X " +
                           xt.to_string());
    BRINK_RETURN_IF_ERROR(propagate_input_type(ctx));
    if (!xt.has_rank()) {
      ctx.set_output(1, TensorType(u, std::nullopt));
      ctx.set_output(2, TensorType(u, std::nullopt));
      return Status::ok();
    }
    BRINK_ASSIGN_OR_RETURN(const int64_t axis,
                           normalize_axis(ctx, ctx.node().attr_int("axis", -1), xt.rank()));
    std::vector<Dim> stat = *xt.dims;
    for (size_t i = static_cast<size_t>(axis); i < stat.size(); ++i) stat[i] = Dim(1);
    ctx.set_output(1, u, stat);
    ctx.set_output(2, u, stat);
    return Status::ok();
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const double epsilon = c.node.attr_float("epsilon", 1e-5f);
    const int64_t axis_attr = c.node.attr_int("axis", -1);
    auto present = [&](size_t i) {
      return i < c.node.outputs.size() && c.node.outputs[i] != ir::kNoValue;
    };
    const bool want_mean = present(1), want_inv_std = present(2);
    const bool fast =
        kernels::fast_kernels_enabled() && c.has_input(0) && c.input_dtype(0) == DataType::kFloat32;
    const Isa isa = kernels::usable_isa(c.isa);
    return make_kernel([=](KernelContext& ctx) -> Status {
      if (fast && fast_layer_norm(ctx, axis_attr, static_cast<float>(epsilon), want_mean,
                                  want_inv_std, isa))
        return Status::ok();
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      int64_t rows = 1, cols = 1;
      for (int64_t i = 0; i < x.rank(); ++i) (i < axis ? rows : cols) *= x.dim(i);
      // Scale and B usually cover the normalized dims only (one value per column); anything
      // else is expanded to X's full shape.
      auto expand = [&](const Tensor& p, bool* per_column) {
        *per_column = p.rank() <= x.rank() - axis;
        if (*per_column) return broadcast_to(p, Shape(x.shape().begin() + axis, x.shape().end()));
        return broadcast_to(p, x.shape());
      };
      bool scale_cols = true, bias_cols = true;
      const std::vector<double> scale = expand(ctx.input(1), &scale_cols);
      const std::vector<double> bias = ctx.has_input(2)
                                           ? expand(ctx.input(2), &bias_cols)
                                           : std::vector<double>(static_cast<size_t>(cols), 0.0);
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          using A = acc_t<T>;
          for (int64_t r = 0; r < rows; ++r) {
            const T* xr = x.data<T>() + r * cols;
            T* yr = y.data<T>() + r * cols;
            double sum = 0, sq = 0;
            for (int64_t k = 0; k < cols; ++k) sum += static_cast<double>(xr[k]);
            const double mean = sum / static_cast<double>(cols);
            for (int64_t k = 0; k < cols; ++k) {
              const double dv = static_cast<double>(xr[k]) - mean;
              sq += dv * dv;
            }
            const double inv_std = 1.0 / std::sqrt(sq / static_cast<double>(cols) + epsilon);
            const A m = static_cast<A>(mean), is = static_cast<A>(inv_std);
            const double* sr = scale.data() + (scale_cols ? 0 : r * cols);
            const double* br = bias.data() + (bias_cols ? 0 : r * cols);
            for (int64_t k = 0; k < cols; ++k)
              yr[k] = static_cast<T>((static_cast<A>(xr[k]) - m) * is * static_cast<A>(sr[k]) +
                                     static_cast<A>(br[k]));
            for (auto [want, out, value] :
                 {std::tuple{want_mean, 1, mean}, {want_inv_std, 2, inv_std}}) {
              if (!want) continue;
              Tensor& t = ctx.output(static_cast<size_t>(out));
              if (t.dtype() == DataType::kBFloat16)
                t.data<BFloat16>()[r] = BFloat16(static_cast<float>(value));
              else
                t.data<float>()[r] = static_cast<float>(value);
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- LRN
// -----------------------------------------------------------------------------------------

OpDef lrn_op(int since, int until) {
  OpDef d;
  d.op_type = "LRN";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "X", since >= 13));
    BRINK_RETURN_IF_ERROR(check_min_rank(ctx, 2, "(N, C, ...)"));
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const ir::Attribute* size_attr = c.node.attr("size");
    if (!size_attr) return c.invalid("attribute 'size' is required");
    const int64_t size = size_attr->i;
    if (size < 1) return c.invalid("size is " + std::to_string(size) + ", expected > 0");
    const double alpha = c.node.attr_float("alpha", 1e-4f);
    const double beta = c.node.attr_float("beta", 0.75f);
    const double bias = c.node.attr_float("bias", 1.0f);
    return make_kernel([=](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t batch = x.dim(0), channels = x.dim(1);
      const int64_t plane = batch * channels > 0 ? x.numel() / (batch * channels) : 0;
      // Channel c sums the squares of channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
      const int64_t before = (size - 1) / 2, after = size - 1 - before;
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          using A = acc_t<T>;
          std::vector<A> sq(static_cast<size_t>(x.numel())), sum(static_cast<size_t>(plane));
          const T* xd = x.data<T>();
          for (size_t i = 0; i < sq.size(); ++i)
            sq[i] = static_cast<A>(xd[i]) * static_cast<A>(xd[i]);
          for (int64_t n = 0; n < batch; ++n) {
            for (int64_t ch = 0; ch < channels; ++ch) {
              std::fill(sum.begin(), sum.end(), A(0));
              const int64_t lo = std::max<int64_t>(0, ch - before);
              const int64_t hi = std::min(channels - 1, ch + after);
              for (int64_t j = lo; j <= hi; ++j) {
                const A* s = sq.data() + (n * channels + j) * plane;
                for (int64_t k = 0; k < plane; ++k) sum[static_cast<size_t>(k)] += s[k];
              }
              const int64_t base = (n * channels + ch) * plane;
              for (int64_t k = 0; k < plane; ++k) {
                const A denom = static_cast<A>(
                    std::pow(bias + alpha / static_cast<double>(size) *
                                        static_cast<double>(sum[static_cast<size_t>(k)]),
                             beta));
                y.data<T>()[base + k] = static_cast<T>(static_cast<A>(xd[base + k]) / denom);
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- MeanVarianceNormalization
// ---------------------------------------------------------------------

OpDef mvn_op(int since, int until) {
  OpDef d;
  d.op_type = "MeanVarianceNormalization";
  d.since_version = since;
  d.max_version = until;
  d.infer = [since](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "X", since >= 13));
    const TensorType& xt = ctx.input_type(0);
    if (xt.has_rank()) {
      std::vector<int64_t> axes = ctx.node().attr_ints("axes");
      if (!ctx.node().attr("axes")) axes = {0, 2, 3};
      for (int64_t a : axes) BRINK_RETURN_IF_ERROR(normalize_axis(ctx, a, xt.rank()).status());
    }
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    std::vector<int64_t> axes = c.node.attr_ints("axes");
    if (!c.node.attr("axes")) axes = {0, 2, 3};
    return make_kernel([axes](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t rank = x.rank();
      // Each element belongs to the group given by its index with the reduced axes dropped;
      // `group_strides` maps an element's index to its group (0 along reduced axes).
      Shape kept = x.shape();
      for (int64_t a : axes) {
        const int64_t ax = normalize_axis_unchecked(a, rank);
        if (ax < 0 || ax >= rank)
          return invalid_argument("MeanVarianceNormalization: axis out of range");
        kept[static_cast<size_t>(ax)] = 1;
      }
      const std::vector<int64_t> group_strides = broadcast_strides(kept, x.shape());
      const int64_t groups = shape_numel(kept);
      const double count =
          groups > 0 ? static_cast<double>(x.numel()) / static_cast<double>(groups) : 1.0;
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          const T* xd = x.data<T>();
          std::vector<double> mean(static_cast<size_t>(groups), 0.0),
              var(static_cast<size_t>(groups), 0.0);
          StridedIterator it(x.shape(), {group_strides});
          for (int64_t i = 0; !it.done(); it.next(), ++i)
            mean[static_cast<size_t>(it.offset(0))] += static_cast<double>(xd[i]);
          for (double& m : mean) m /= count;
          StridedIterator it2(x.shape(), {group_strides});
          for (int64_t i = 0; !it2.done(); it2.next(), ++i) {
            const double dv = static_cast<double>(xd[i]) - mean[static_cast<size_t>(it2.offset(0))];
            var[static_cast<size_t>(it2.offset(0))] += dv * dv;
          }
          // ONNX's function body: (X - mean) / (sqrt(variance) + 1e-9).
          std::vector<double> inv(static_cast<size_t>(groups));
          for (size_t g = 0; g < inv.size(); ++g) inv[g] = 1.0 / (std::sqrt(var[g] / count) + 1e-9);
          StridedIterator it3(x.shape(), {group_strides});
          for (int64_t i = 0; !it3.done(); it3.next(), ++i) {
            const size_t g = static_cast<size_t>(it3.offset(0));
            y.data<T>()[i] = static_cast<T>((static_cast<double>(xd[i]) - mean[g]) * inv[g]);
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

// ---- LpNormalization ---------------------------------------------------------------------------

OpDef lp_norm_op() {
  OpDef d;
  d.op_type = "LpNormalization";
  d.since_version = 1;
  d.infer = [](InferContext& ctx) -> Status {
    BRINK_RETURN_IF_ERROR(check_float_input(ctx, 0, "input", false));
    const TensorType& xt = ctx.input_type(0);
    if (xt.has_rank())
      BRINK_RETURN_IF_ERROR(
          normalize_axis(ctx, ctx.node().attr_int("axis", -1), xt.rank()).status());
    return propagate_input_type(ctx);
  };
  d.create = [](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    const int64_t p = c.node.attr_int("p", 2);
    if (p != 1 && p != 2) return c.invalid("p is " + std::to_string(p) + ", expected 1 or 2");
    const int64_t axis_attr = c.node.attr_int("axis", -1);
    return make_kernel([p, axis_attr](KernelContext& ctx) -> Status {
      const Tensor& x = ctx.input(0);
      Tensor& y = ctx.output(0);
      const int64_t axis = normalize_axis_unchecked(axis_attr, x.rank());
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
      for (int64_t i = axis + 1; i < x.rank(); ++i) inner *= x.dim(i);
      const int64_t len = x.rank() > 0 ? x.dim(axis) : 1;
      visit_dtype(x.dtype(), [&]<typename T>() {
        if constexpr (is_float_v<T>) {
          const T* xd = x.data<T>();
          T* yd = y.data<T>();
          for (int64_t o = 0; o < outer; ++o) {
            for (int64_t in = 0; in < inner; ++in) {
              const int64_t base = o * len * inner + in;
              double norm = 0;
              for (int64_t k = 0; k < len; ++k) {
                const double v = static_cast<double>(xd[base + k * inner]);
                norm += p == 1 ? std::abs(v) : v * v;
              }
              if (p == 2) norm = std::sqrt(norm);
              // A zero vector stays zero (ONNX's reference), instead of 0/0.
              for (int64_t k = 0; k < len; ++k) {
                const int64_t i = base + k * inner;
                yd[i] = static_cast<T>(norm == 0 ? 0.0 : static_cast<double>(xd[i]) / norm);
              }
            }
          }
        }
      });
      return Status::ok();
    });
  };
  return d;
}

}  // namespace

void register_normalization_ops(OpRegistry& r) {
  // BatchNormalization: 7 drops is_test, 9 drops spatial, 14 adds training_mode and bf16,
  // 15 lets scale/B and mean/var have their own types.
  if constexpr (op_selected("", "BatchNormalization")) r.add(batch_norm_op(7, 8));
  if constexpr (op_selected("", "BatchNormalization")) r.add(batch_norm_op(9, 13));
  if constexpr (op_selected("", "BatchNormalization")) r.add(batch_norm_op(14, 14));
  if constexpr (op_selected("", "BatchNormalization")) r.add(batch_norm_op(15, 21));
  if constexpr (op_selected("", "InstanceNormalization")) r.add(instance_norm_op());
  if constexpr (op_selected("", "LayerNormalization")) r.add(layer_norm_op());
  if constexpr (op_selected("", "GroupNormalization")) r.add(group_norm_op(18, 20));
  if constexpr (op_selected("", "GroupNormalization")) r.add(group_norm_op(21, 21));
  if constexpr (op_selected("", "LRN")) r.add(lrn_op(1, 12));  // 13 adds bf16
  if constexpr (op_selected("", "LRN")) r.add(lrn_op(13, 21));
  if constexpr (op_selected("", "MeanVarianceNormalization")) r.add(mvn_op(9, 12));  // 13 adds bf16
  if constexpr (op_selected("", "MeanVarianceNormalization")) r.add(mvn_op(13, 21));
  if constexpr (op_selected("", "LpNormalization")) r.add(lp_norm_op());
}

}  // namespace brink::ops
