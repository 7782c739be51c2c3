#include "ops/op_util.h"

#include <algorithm>

namespace brink::ops {

Result<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return ctx.invalid("axis " + std::to_string(axis) + " is out of range for rank " +
                       std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t normalize_axis_unchecked(int64_t axis, int64_t rank) {
  return axis < 0 ? axis + rank : axis;
}

Status propagate_input_type(InferContext& ctx, size_t in, size_t out) {
  if (!ctx.has_input(in)) return ctx.invalid("input " + std::to_string(in) + " is required");
  ctx.set_output(out, ctx.input_type(in));
  return Status::ok();
}

Result<std::optional<std::vector<Dim>>> broadcast_dims(
    const InferContext& ctx, const std::vector<const TensorType*>& types) {
  size_t rank = 0;
  for (const TensorType* t : types) {
    if (!t->dims) return std::optional<std::vector<Dim>>();
    rank = std::max(rank, t->dims->size());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (const TensorType* t : types) {
    const auto& d = *t->dims;
    const size_t off = rank - d.size();
    for (size_t i = 0; i < d.size(); ++i) {
      Dim& o = out[off + i];
      const Dim& x = d[i];
      if (x.known() && x.value == 1) continue;
      if (o.known() && o.value == 1) {
        o = x;
      } else if (x.known() && o.known()) {
        if (x.value != o.value)
          return ctx.invalid("cannot broadcast dimension " + std::to_string(o.value) + " with " +
                             std::to_string(x.value));
      } else if (!x.known() && !o.known()) {
        if (x.param != o.param) o = Dim();  // two different symbols: unknown
      } else if (x.known()) {
        o = x;  // a symbol broadcast against a known size > 1 must equal it
      }
    }
  }
  return std::optional<std::vector<Dim>>(std::move(out));
}

bool broadcast_shapes(const Shape& a, const Shape& b, Shape* out) {
  const size_t rank = std::max(a.size(), b.size());
  Shape r(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x != y && x != 1 && y != 1) return false;
    r[i] = x == 1 ? y : x;
  }
  *out = std::move(r);
  return true;
}

std::vector<int64_t> tensor_to_int64s(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.element_as_int64(i);
  return v;
}

std::vector<double> tensor_to_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.element_as_double(i);
  return v;
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> s(out.size(), 0);
  const std::vector<int64_t> own = strides_of(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

StridedIterator::StridedIterator(Shape shape, std::vector<std::vector<int64_t>> operand_strides)
    : shape_(std::move(shape)), strides_(std::move(operand_strides)) {
  index_.assign(shape_.size(), 0);
  offsets_.assign(strides_.size(), 0);
  done_ = shape_numel(shape_) == 0;
}

void StridedIterator::next() {
  for (size_t d = shape_.size(); d-- > 0;) {
    ++index_[d];
    for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] += strides_[k][d];
    if (index_[d] < shape_[d]) return;
    for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] -= strides_[k][d] * shape_[d];
    index_[d] = 0;
  }
  done_ = true;
}

bool float_dtype_ok(DataType t, bool bf16) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 ||
         (bf16 && t == DataType::kBFloat16);
}

Status check_float_input(const InferContext& ctx, size_t i, const char* name, bool bf16) {
  if (!ctx.has_input(i)) return ctx.invalid(std::string("input ") + name + " is required");
  const DataType t = ctx.input_dtype(i);
  if (!float_dtype_ok(t, bf16))
    return ctx.unsupported_here(
        std::string("input ") + name + " has dtype " + dtype_name(t) +
        (bf16 ? ", expected f16, bf16, f32 or f64" : ", expected f16, f32 or f64"));
  return Status::ok();
}

std::vector<Dim> dims_of(const Shape& shape) {
  return std::vector<Dim>(shape.begin(), shape.end());
}

}  // namespace brink::ops
