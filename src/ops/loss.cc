// Loss operators: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opsets 12 and 13).
//
// Both gather one value per sample from an (N, C, d1..dk) input at the class named by the
// (N, d1..dk) target, negate it and weight it by weight[class] (1 without weights, 0 for
// targets equal to ignore_index). SoftmaxCrossEntropyLoss first takes the log-softmax over
// the class axis. Sums, the log-softmax and the per-sample products are computed in double.
//
// "mean" divides by the sum of the applied weights (ignored samples excluded), as the spec
// and PyTorch define it; when every sample is ignored that is 0/0, NaN, as in PyTorch and
// the ONNX reference implementation. A target outside [0, C) that is not ignore_index is
// an error at run time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_groups.h"
#include "ops/op_selection.h"
#include "ops/op_util.h"

namespace brink::ops {

namespace {

enum class Reduction { kNone, kSum, kMean };

std::optional<Reduction> parse_reduction(const std::string& s) {
  if (s == "none") return Reduction::kNone;
  if (s == "sum") return Reduction::kSum;
  if (s == "mean") return Reduction::kMean;
  return std::nullopt;
}

bool loss_dtype_ok(DataType t, bool bf16) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 ||
         (bf16 && t == DataType::kBFloat16);
}

// Shared by both ops. Inputs: 0 = scores/log-probabilities (N, C, d1..dk), 1 = target
// (N, d1..dk), 2 = optional weight (C). Outputs: 0 = loss, 1 = log_prob (SCE only).
Status infer_loss(InferContext& ctx, bool bf16) {
  const char* dtypes = bf16 ? "f16, bf16, f32 or f64" : "f16, f32 or f64";
  if (!ctx.has_input(0) || !ctx.has_input(1))
    return ctx.invalid("inputs 0 (scores) and 1 (target) are required");
  const DataType t = ctx.input_dtype(0);
  if (!loss_dtype_ok(t, bf16))
    return ctx.unsupported_here(std::string("input 0 has dtype ") + dtype_name(t) + ", expected " +
                                dtypes + " at opset " + std::to_string(ctx.opset()));
  const DataType ti = ctx.input_dtype(1);
  if (ti != DataType::kInt32 && ti != DataType::kInt64)
    return ctx.invalid(std::string("input 1 (target) has dtype ") + dtype_name(ti) +
                       ", expected i32 or i64");
  if (ctx.has_input(2) && ctx.input_dtype(2) != t)
    return ctx.invalid(std::string("input 2 (weight) has dtype ") + dtype_name(ctx.input_dtype(2)) +
                       ", expected " + dtype_name(t) + " like input 0");
  const std::string red = ctx.node().attr_string("reduction", "mean");
  const std::optional<Reduction> reduction = parse_reduction(red);
  if (!reduction) return ctx.invalid("reduction is '" + red + "', expected none, sum or mean");

  const TensorType& x = ctx.input_type(0);
  const TensorType& target = ctx.input_type(1);
  if (x.has_rank() && x.rank() < 2)
    return ctx.invalid("input 0 has rank " + std::to_string(x.rank()) +
                       ", expected at least 2 (N, C, d1, ..., dk)");
  if (x.has_rank() && target.has_rank() && target.rank() != x.rank() - 1)
    return ctx.invalid("input 1 (target) has rank " + std::to_string(target.rank()) +
                       ", expected " + std::to_string(x.rank() - 1) + " (input 0's rank - 1)");
  // The per-sample loss shape: (N, d1..dk), from whichever input knows each dim.
  std::optional<std::vector<Dim>> sample_dims;
  if (target.has_rank()) sample_dims = *target.dims;
  if (x.has_rank()) {
    std::vector<Dim> from_x;
    for (int64_t i = 0; i < x.rank(); ++i)
      if (i != 1) from_x.push_back((*x.dims)[static_cast<size_t>(i)]);
    if (!sample_dims) sample_dims = from_x;
    for (size_t i = 0; i < from_x.size(); ++i) {
      Dim& d = (*sample_dims)[i];
      if (from_x[i].known() && d.known() && from_x[i].value != d.value)
        return ctx.invalid("input 1 (target) has shape " + target.to_string() +
                           ", which does not match input 0's " + x.to_string() +
                           " without its class dim");
      if (!d.known() && (from_x[i].known() || d.param.empty())) d = from_x[i];
    }
    if (ctx.has_input(2)) {
      const TensorType& w = ctx.input_type(2);
      if (w.has_rank() && w.rank() != 1)
        return ctx.invalid("input 2 (weight) has rank " + std::to_string(w.rank()) +
                           ", expected 1");
      const Dim& c = (*x.dims)[1];
      if (w.has_rank() && c.known() && (*w.dims)[0].known() && (*w.dims)[0].value != c.value)
        return ctx.invalid("input 2 (weight) has " + std::to_string((*w.dims)[0].value) +
                           " values, expected " + std::to_string(c.value) + " (one per class)");
    }
  }
  if (*reduction == Reduction::kNone)
    ctx.set_output(0, TensorType(t, sample_dims));
  else
    ctx.set_output(0, t, std::vector<Dim>{});
  if (ctx.num_outputs() > 1) ctx.set_output(1, TensorType(t, x.dims));
  return Status::ok();
}

struct LossParams {
  bool softmax = false;  // SoftmaxCrossEntropyLoss: take the log-softmax of input 0 first
  Reduction reduction = Reduction::kMean;
  std::optional<int64_t> ignore_index;
  bool want_log_prob = false;
};

template <typename T>
Status run_loss(const LossParams& p, KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& target = ctx.input(1);
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t d = n * c > 0 ? x.numel() / (n * c) : 0;
  if (target.numel() != n * d)
    return invalid_argument("loss: target has shape " + shape_to_string(target.shape()) +
                            ", expected input 0's shape " + shape_to_string(x.shape()) +
                            " without its class dim");
  std::vector<double> weight;
  if (ctx.has_input(2)) {
    const Tensor& w = ctx.input(2);
    if (w.numel() != c)
      return invalid_argument("loss: weight has " + std::to_string(w.numel()) +
                              " values, expected " + std::to_string(c) + " (one per class)");
    weight = tensor_to_doubles(w);
  }
  const std::vector<int64_t> labels = tensor_to_int64s(target);
  const T* xd = x.data<T>();
  T* loss_out = p.reduction == Reduction::kNone ? ctx.output(0).data<T>() : nullptr;
  T* log_prob = p.want_log_prob ? ctx.output(1).data<T>() : nullptr;

  // Per sample position of the current batch row: max and log(sum(exp(x - max))) over C.
  std::vector<double> row_max, row_lse;
  if (p.softmax) {
    row_max.resize(static_cast<size_t>(d));
    row_lse.resize(static_cast<size_t>(d));
  }
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* xi = xd + i * c * d;
    if (p.softmax) {
      std::fill(row_max.begin(), row_max.end(), -std::numeric_limits<double>::infinity());
      std::fill(row_lse.begin(), row_lse.end(), 0.0);
      for (int64_t k = 0; k < c; ++k)
        for (int64_t j = 0; j < d; ++j)
          row_max[static_cast<size_t>(j)] =
              std::max(row_max[static_cast<size_t>(j)], static_cast<double>(xi[k * d + j]));
      for (int64_t k = 0; k < c; ++k)
        for (int64_t j = 0; j < d; ++j)
          row_lse[static_cast<size_t>(j)] +=
              std::exp(static_cast<double>(xi[k * d + j]) - row_max[static_cast<size_t>(j)]);
      for (double& s : row_lse) s = std::log(s);
      if (log_prob != nullptr) {
        T* lp = log_prob + i * c * d;
        for (int64_t k = 0; k < c; ++k)
          for (int64_t j = 0; j < d; ++j)
            lp[k * d + j] =
                static_cast<T>(static_cast<double>(xi[k * d + j]) -
                               row_max[static_cast<size_t>(j)] - row_lse[static_cast<size_t>(j)]);
      }
    }
    for (int64_t j = 0; j < d; ++j) {
      const int64_t label = labels[static_cast<size_t>(i * d + j)];
      double value = 0;
      if (!(p.ignore_index && label == *p.ignore_index)) {
        if (label < 0 || label >= c)
          return invalid_argument("loss: target value " + std::to_string(label) + " at position " +
                                  std::to_string(i * d + j) + " is outside [0, " +
                                  std::to_string(c) + ") and is not ignore_index");
        const double w = weight.empty() ? 1.0 : weight[static_cast<size_t>(label)];
        double v = static_cast<double>(xi[label * d + j]);
        if (p.softmax) v -= row_max[static_cast<size_t>(j)] + row_lse[static_cast<size_t>(j)];
        value = -v * w;
        weight_sum += w;
      }
      loss_sum += value;
      if (loss_out != nullptr) loss_out[i * d + j] = static_cast<T>(value);
    }
  }
  if (p.reduction == Reduction::kSum) ctx.output(0).data<T>()[0] = static_cast<T>(loss_sum);
  if (p.reduction == Reduction::kMean)
    ctx.output(0).data<T>()[0] = static_cast<T>(loss_sum / weight_sum);
  return Status::ok();
}

OpDef loss_op(const char* op_type, bool softmax, int since, int until, bool bf16) {
  OpDef def;
  def.op_type = op_type;
  def.since_version = since;
  def.max_version = until;
  def.infer = [bf16](InferContext& ctx) { return infer_loss(ctx, bf16); };
  def.create = [softmax](const KernelCreateContext& c) -> Result<std::unique_ptr<Kernel>> {
    LossParams p;
    p.softmax = softmax;
    const std::string red = c.node.attr_string("reduction", "mean");
    const std::optional<Reduction> reduction = parse_reduction(red);
    if (!reduction) return c.invalid("reduction is '" + red + "', expected none, sum or mean");
    p.reduction = *reduction;
    if (c.node.attr("ignore_index") != nullptr) p.ignore_index = c.node.attr_int("ignore_index", 0);
    p.want_log_prob = softmax && c.node.outputs.size() > 1 && c.node.outputs[1] != ir::kNoValue;
    const DataType t = c.input_dtype(0);
    return make_kernel([p, t](KernelContext& ctx) -> Status {
      Status status = internal_error("loss: unexpected dtype");
      visit_dtype(t, [&]<typename T>() {
        if constexpr (std::is_floating_point_v<compute_t<T>>) status = run_loss<T>(p, ctx);
      });
      return status;
    });
  };
  return def;
}

}  // namespace

void register_loss_ops(OpRegistry& r) {
  if constexpr (op_selected("", "NegativeLogLikelihoodLoss"))
    r.add(loss_op("NegativeLogLikelihoodLoss", false, 12, 12, false));
  // bf16 arrives for NegativeLogLikelihoodLoss only at opset 22.
  if constexpr (op_selected("", "NegativeLogLikelihoodLoss"))
    r.add(loss_op("NegativeLogLikelihoodLoss", false, 13, 21, false));
  if constexpr (op_selected("", "SoftmaxCrossEntropyLoss"))
    r.add(loss_op("SoftmaxCrossEntropyLoss", true, 12, 12, false));
  if constexpr (op_selected("", "SoftmaxCrossEntropyLoss"))
    r.add(loss_op("SoftmaxCrossEntropyLoss", true, 13, 21, true));
}

}  // namespace brink::ops
