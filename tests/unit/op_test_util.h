// Helpers shared by the operator unit tests.
#pragma once

#include <random>
#include <vector>

#include "brink/tensor.h"

namespace brink::ops {

// f32 tensor of `shape` with values uniform in [-1, 1), reproducible from `seed`.
inline Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

}  // namespace brink::ops
