#include "brink/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/memory.h"

namespace brink {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {
std::shared_ptr<void> aligned_storage(size_t bytes) {
  // Rounded up to 64 bytes plus 64 more, so that no tensor asks for 0 bytes.
  return shared_aligned((bytes + 63) / 64 * 64 + 64);
}
}  // namespace

Tensor Tensor::empty(DataType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = aligned_storage(t.nbytes());
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::zeros(DataType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(DataType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::wrap(DataType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t = view(dtype, std::move(shape), data);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

double Tensor::element_as_double(int64_t i) const {
  double v = 0;
  visit_dtype(dtype_, [&]<typename T>() {
    v = static_cast<double>(static_cast<compute_t<T>>(data<T>()[i]));
  });
  return v;
}

int64_t Tensor::element_as_int64(int64_t i) const {
  int64_t v = 0;
  visit_dtype(dtype_, [&]<typename T>() {
    v = static_cast<int64_t>(static_cast<compute_t<T>>(data<T>()[i]));
  });
  return v;
}

}  // namespace brink
