// Small helpers shared by operator definitions: axis handling, broadcasting (with symbolic
// dims), reading shape-like int tensors, and index arithmetic for reference kernels.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op.h"

namespace brink::ops {

// Maps axis in [-rank, rank) to [0, rank); an error naming the node if out of range.
Result<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);
int64_t normalize_axis_unchecked(int64_t axis, int64_t rank);

// Output type = input `in`'s type (dtype and dims) for output `out`.
Status propagate_input_type(InferContext& ctx, size_t in = 0, size_t out = 0);

// Multidirectional (NumPy) broadcasting of several types' dims. Unknown rank anywhere
// gives an unknown-rank result; incompatible known dims give an error.
Result<std::optional<std::vector<Dim>>> broadcast_dims(const InferContext& ctx,
                                                       const std::vector<const TensorType*>& types);
// Concrete-shape broadcasting; false if incompatible.
bool broadcast_shapes(const Shape& a, const Shape& b, Shape* out);

// Reads an integer tensor (i32 or i64, any shape) as int64 values.
std::vector<int64_t> tensor_to_int64s(const Tensor& t);
std::vector<double> tensor_to_doubles(const Tensor& t);

// Row-major strides of `shape` (in elements).
std::vector<int64_t> strides_of(const Shape& shape);
// Strides that read an input of shape `in` broadcast to `out` (0 on broadcast dims);
// `in` is right-aligned against `out`.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Iterates over every multi-index of `shape` in row-major order, keeping one flat offset
// per operand (each operand has its own strides). Used by reference kernels for
// broadcasting and strided access without recomputing offsets from scratch.
class StridedIterator {
 public:
  StridedIterator(Shape shape, std::vector<std::vector<int64_t>> operand_strides);
  bool done() const { return done_; }
  int64_t offset(size_t operand) const { return offsets_[operand]; }
  void next();

 private:
  Shape shape_;
  std::vector<std::vector<int64_t>> strides_;
  std::vector<int64_t> index_;
  std::vector<int64_t> offsets_;
  bool done_ = false;
};

// True for the element types whose arithmetic is floating point (f16/bf16 via float).
template <typename T>
inline constexpr bool is_float_v = std::is_floating_point_v<compute_t<T>>;

// f16, f32, f64, and bf16 when `bf16` (op versions differ on bf16).
bool float_dtype_ok(DataType t, bool bf16);
// Input `i` (called `name` in messages) must be present and of a float dtype accepted above.
Status check_float_input(const InferContext& ctx, size_t i, const char* name, bool bf16);

// Dims helpers.
std::vector<Dim> dims_of(const Shape& shape);
inline bool all_known(const std::vector<Dim>& dims) {
  for (const Dim& d : dims)
    if (!d.known()) return false;
  return true;
}

}  // namespace brink::ops
