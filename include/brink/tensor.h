// Tensor: a typed, shaped, contiguous (row-major) block of memory.
//
// A Tensor either owns its storage (shared, so copies are cheap and alias) or views
// memory owned by someone else (an arena, a mapped file, a NumPy array) whose lifetime
// the caller guarantees. Data is always 64-byte aligned when Brink allocates it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "brink/dtype.h"
#include "brink/status.h"

namespace brink {

using Shape = std::vector<int64_t>;

// Product of dims (1 for a scalar). Negative dims are a caller bug.
int64_t shape_numel(const Shape& shape);
// "[1, 3, 224, 224]"
std::string shape_to_string(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Allocates zero-initialised, 64-byte aligned storage.
  static Tensor zeros(DataType dtype, Shape shape);
  // Allocates uninitialised storage (for outputs about to be fully written).
  static Tensor empty(DataType dtype, Shape shape);
  // A non-owning view; `data` must outlive every copy of the returned tensor.
  static Tensor view(DataType dtype, Shape shape, void* data);
  // Shares ownership of `owner` (which keeps `data` alive).
  static Tensor wrap(DataType dtype, Shape shape, void* data, std::shared_ptr<void> owner);
  // A tensor of `shape` copied from `values`.
  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector<T>({}, std::vector<T>{value});
  }

  bool defined() const { return dtype_ != DataType::kUndefined; }
  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t axis) const { return shape_[static_cast<size_t>(axis)]; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(numel())};
  }
  // Reads element `i` (flat index) converted to double / int64, whatever the dtype.
  double element_as_double(int64_t i) const;
  int64_t element_as_int64(int64_t i) const;

  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // An owning deep copy.
  Tensor clone() const;

 private:
  DataType dtype_ = DataType::kUndefined;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

template <typename T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t = empty(dtype_of<T>, std::move(shape));
  T* out = t.data<T>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i)
    out[i] = values[i];
  return t;
}

}  // namespace brink
