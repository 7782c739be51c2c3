// ModelBuilder: small models built by value name, for the unit tests of the graph passes and
// the quantizer (passes_test, quantize_test, equalize_test). node("Relu", {"x"}, {"y"}) creates
// value "y" when it is new; an empty name ("") is an absent optional input or output. Random
// initializers come from the builder's own generator (seeded at construction), so a test's
// weights are the same on every run and do not depend on other tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "brink/tensor.h"
#include "ir/graph.h"

namespace brink::test {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17, uint32_t seed = 7) : rng_(seed) {
    m_.opset_imports.push_back({"", opset});
  }

  ModelBuilder& input(const std::string& name, const Shape& shape,
                      DataType dtype = DataType::kFloat32) {
    const int v = m_.graph.add_value(name, ir::TensorType::of(dtype, shape));
    m_.graph.inputs.push_back(v);
    return *this;
  }
  ModelBuilder& symbolic_input(const std::string& name, std::vector<ir::Dim> dims) {
    const int v = m_.graph.add_value(name, ir::TensorType(DataType::kFloat32, std::move(dims)));
    m_.graph.inputs.push_back(v);
    return *this;
  }
  ModelBuilder& init(const std::string& name, const Tensor& t) {
    const int v = m_.graph.add_value(name, ir::TensorType::of(t.dtype(), t.shape()));
    m_.graph.value(v).constant = t;
    m_.graph.initializers.push_back(v);
    return *this;
  }
  ModelBuilder& scalar(const std::string& name, float v) { return init(name, Tensor::scalar(v)); }
  // Float values uniform in [lo, hi).
  ModelBuilder& uniform_init(const std::string& name, const Shape& shape, float lo = -1,
                             float hi = 1) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = dist(rng_);
    return init(name, Tensor::from_vector<float>(shape, v));
  }
  // Float values normal with mean 0 and standard deviation `scale`.
  ModelBuilder& normal_init(const std::string& name, const Shape& shape, float scale = 0.5f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = dist(rng_);
    return init(name, Tensor::from_vector<float>(shape, v));
  }
  // normal_init with each slice along axis 0 scaled by e^U(-channel_spread, channel_spread)
  // (channels of very different ranges). One uniform draw per slice, also for a spread of 0.
  ModelBuilder& spread_init(const std::string& name, const Shape& shape, float scale = 0.5f,
                            float channel_spread = 0.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::uniform_real_distribution<float> u(-channel_spread, channel_spread);
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    const size_t inner = v.size() / static_cast<size_t>(shape[0]);
    float f = 1.0f;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i % inner == 0) f = std::exp(u(rng_));
      v[i] = dist(rng_) * f;
    }
    return init(name, Tensor::from_vector<float>(shape, v));
  }
  ModelBuilder& node(const std::string& op, const std::vector<std::string>& ins,
                     const std::vector<std::string>& outs, std::vector<ir::Attribute> attrs = {},
                     const std::string& domain = "") {
    ir::Node n;
    n.name = op + "_" + std::to_string(m_.graph.nodes.size());
    n.op_type = op;
    n.domain = domain;
    for (const auto& s : ins) n.inputs.push_back(s.empty() ? ir::kNoValue : value(s));
    for (const auto& s : outs) n.outputs.push_back(s.empty() ? ir::kNoValue : value(s));
    n.attributes = std::move(attrs);
    m_.graph.nodes.push_back(std::move(n));
    return *this;
  }
  ModelBuilder& output(const std::string& name) {
    m_.graph.outputs.push_back(value(name));
    return *this;
  }
  ir::Model build() const { return m_; }

 private:
  int value(const std::string& name) {
    const int v = m_.graph.find_value(name);
    return v != ir::kNoValue ? v : m_.graph.add_value(name);
  }
  ir::Model m_;
  std::mt19937 rng_;
};

}  // namespace brink::test
