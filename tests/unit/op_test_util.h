// Helpers shared by the operator unit tests.
#pragma once

#include <optional>
#include <random>
#include <vector>

#include "brink/tensor.h"
#include "kernels/elementwise.h"
#include "ops/evaluate.h"

namespace brink::ops {

// f32 tensor of `shape` with values uniform in [-1, 1), reproducible from `seed`.
inline Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

// Prepares kernels with the fast paths off while it lives: the reference kernels, which
// the fast ones are tested against.
class ReferenceKernels {
 public:
  ReferenceKernels() : previous_(kernels::fast_kernels_enabled()) {
    kernels::set_fast_kernels_enabled(false);
  }
  ~ReferenceKernels() { kernels::set_fast_kernels_enabled(previous_); }
  ReferenceKernels(const ReferenceKernels&) = delete;
  ReferenceKernels& operator=(const ReferenceKernels&) = delete;

 private:
  bool previous_;
};

// Runs `node` once with inputs that are not constants at prepare, as the runtime does for
// activations: the `isa` variant on `threads` threads, or the reference kernel (!fast).
inline Result<std::vector<Tensor>> eval(const ir::Node& node, int64_t opset,
                                        const std::vector<const Tensor*>& inputs, Isa isa,
                                        int threads, bool fast) {
  std::optional<ReferenceKernels> ref;
  if (!fast) ref.emplace();
  EvaluateOptions o;
  o.inputs_are_constant = false;
  o.isa = isa;
  o.num_threads = threads;
  return evaluate_node(node, opset, inputs, o);
}

}  // namespace brink::ops
