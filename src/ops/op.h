// What an operator is in Brink: one OpDef per (domain, op type, opset range), declared
// once, holding
//   - infer:  output dtypes and shapes from input types (dims may be symbolic) and, when
//             known, input values. The same function gives concrete shapes at run time,
//             so kernels never compute output shapes themselves;
//   - create: the prepare step. It validates attributes and input types, parses them once,
//             and may pre-compute from constant inputs. It returns the Kernel;
//   - Kernel::run: compute only. Outputs arrive allocated with the inferred shapes.
//
// The reference kernels registered here are written for clarity: they are the oracle that
// every optimized kernel is tested against.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "brink/tensor.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "ir/graph.h"

namespace brink::ops {

using ir::Dim;
using ir::TensorType;

// Values of the enclosing graph(s) that a subgraph (If branch, Loop / Scan body) reads by
// name, as the executor holds them while the node owning the subgraph runs.
class OuterScope {
 public:
  virtual ~OuterScope() = default;
  // The live value called `name`, or nullptr when no enclosing graph has it.
  virtual const Tensor* find(const std::string& name) const = 0;
};

// A subgraph compiled by the runtime (typed, folded, kernels prepared), kept by the kernel
// of the node that owns it and run once per branch taken or iteration.
class SubgraphProgram {
 public:
  virtual ~SubgraphProgram() = default;
  // Output types as inferred when compiled (dims may be unknown).
  virtual const std::vector<TensorType>& output_types() const = 0;
  // Runs the subgraph on its graph inputs, reading outer values through `outer`.
  virtual Result<std::vector<Tensor>> run(const std::vector<const Tensor*>& inputs,
                                          const OuterScope* outer) const = 0;
};

// Compiles `graph` (a subgraph of the node being inferred or prepared) with the given types
// for its graph inputs, in the scope of the graph that holds the node. Only the runtime
// provides one: outside a compiled model (evaluate_node) there is none.
using SubgraphCompileFn = std::function<Result<std::shared_ptr<const SubgraphProgram>>(
    const ir::Graph& graph, const std::vector<TensorType>& input_types)>;

// Shape/type inference for one node. Inputs past num_inputs() or absent optional inputs
// report has_input(i) == false.
class InferContext {
 public:
  InferContext(const ir::Node& node, int64_t opset, std::vector<const TensorType*> input_types,
               std::vector<const Tensor*> input_values)
      : node_(node),
        opset_(opset),
        types_(std::move(input_types)),
        values_(std::move(input_values)) {
    outputs_.resize(node.outputs.size());
  }

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return types_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_input(size_t i) const { return i < types_.size() && types_[i] != nullptr; }
  const TensorType& input_type(size_t i) const { return *types_[i]; }
  DataType input_dtype(size_t i) const { return types_[i]->dtype; }
  // The input's value when known at this point (initializer, folded constant, or any
  // input at run time); nullptr otherwise.
  const Tensor* input_value(size_t i) const { return i < values_.size() ? values_[i] : nullptr; }

  void set_output(size_t i, TensorType type) {
    if (i < outputs_.size()) outputs_[i] = std::move(type);
  }
  void set_output(size_t i, DataType dtype, std::vector<Dim> dims) {
    set_output(i, TensorType(dtype, std::move(dims)));
  }
  void set_output(size_t i, DataType dtype, const Shape& shape) {
    set_output(i, TensorType::of(dtype, shape));
  }
  const std::vector<TensorType>& outputs() const { return outputs_; }

  // Set at load time by the runtime; nullptr at run time and in evaluate_node, where ops
  // with subgraphs leave output shapes to their kernel.
  const SubgraphCompileFn* compile_subgraph() const { return compile_subgraph_; }
  void set_compile_subgraph(const SubgraphCompileFn* fn) { compile_subgraph_ = fn; }

  // Errors with the node as context: "node 'x' (Op): <msg>".
  Status invalid(const std::string& msg) const {
    return invalid_model(node_.describe() + ": " + msg);
  }
  Status unsupported_here(const std::string& msg) const {
    return unsupported(node_.describe() + ": " + msg);
  }

 private:
  const ir::Node& node_;
  int64_t opset_;
  std::vector<const TensorType*> types_;
  std::vector<const Tensor*> values_;
  std::vector<TensorType> outputs_;
  const SubgraphCompileFn* compile_subgraph_ = nullptr;
};

// What the prepare step sees: the node, its opset, input types (shapes as inferred at load,
// possibly symbolic) and constant input values (weights) for pre-packing.
// Weights a kernel packed for its micro-kernel at prepare. A .brink package stores them, so
// that a later load maps them instead of packing again: `layout` names the packing exactly
// (kernel, ISA, tile sizes, version), and a kernel given packed weights whose layout is not
// the one it would make refuses them.
struct PackedWeights {
  std::string layout;
  const float* data = nullptr;
  size_t floats = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive (the package's mapping)
};

struct KernelCreateContext {
  const ir::Node& node;
  int64_t opset;
  std::vector<const TensorType*> input_types;  // nullptr for absent inputs
  std::vector<const Tensor*> constant_inputs;  // nullptr unless the input is constant
  std::vector<TensorType> output_types;
  // Empty outside a compiled model: ops with subgraphs then report them unsupported.
  SubgraphCompileFn compile_subgraph;
  // The kernel variant to prepare (tests set it to check every variant against the
  // reference), and how many threads run() will have, for choosing tile sizes.
  Isa isa = best_isa();
  int num_threads = 1;
  // Set when loading a package that holds this node's packed weights: the kernel uses them
  // in place (and its packed constant inputs then hold no data) or fails to create.
  const PackedWeights* prepacked = nullptr;
  // Quantized layers with both kernels (brink.QConv): which to use. Integer unless a session
  // says otherwise (tests creating kernels directly get the integer kernels).
  Int8Kernels int8_kernels = Int8Kernels::kInteger;

  bool has_input(size_t i) const { return i < input_types.size() && input_types[i] != nullptr; }
  DataType input_dtype(size_t i) const { return input_types[i]->dtype; }
  Status invalid(const std::string& msg) const {
    return invalid_model(node.describe() + ": " + msg);
  }
  Status unsupported_here(const std::string& msg) const {
    return unsupported(node.describe() + ": " + msg);
  }
};

class KernelContext {
 public:
  // `inputs` must outlive the context (the executor keeps them per step so that running a
  // step allocates nothing).
  KernelContext(std::span<const Tensor* const> inputs, std::vector<Tensor>* outputs,
                int num_threads)
      : inputs_(inputs), outputs_(outputs), num_threads_(num_threads) {}

  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_->size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& input(size_t i) const { return *inputs_[i]; }
  // Allocated by the executor with the inferred shape, unless inference could not know it
  // (data-dependent shapes such as NonZero): then it is undefined until allocate_output.
  Tensor& output(size_t i) { return (*outputs_)[i]; }
  Tensor& allocate_output(size_t i, DataType dtype, Shape shape) {
    (*outputs_)[i] = Tensor::empty(dtype, std::move(shape));
    return (*outputs_)[i];
  }
  int num_threads() const { return pool_ != nullptr ? pool_->num_threads() : num_threads_; }
  // The pool to split work over; nullptr means run on the calling thread (see
  // brink::parallel_for, which accepts nullptr).
  ThreadPool* thread_pool() const { return pool_; }
  void set_thread_pool(ThreadPool* pool) { pool_ = pool; }
  // Values of the enclosing graphs, for the subgraphs this node runs; nullptr when the
  // node is not run by a graph executor.
  const OuterScope* outer_scope() const { return outer_; }
  void set_outer_scope(const OuterScope* outer) { outer_ = outer; }

 private:
  std::span<const Tensor* const> inputs_;
  std::vector<Tensor>* outputs_;
  int num_threads_;
  ThreadPool* pool_ = nullptr;
  const OuterScope* outer_ = nullptr;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual Status run(KernelContext& ctx) = 0;
  // False when run() never reads the elements of input `i` (only, at most, its dtype and
  // shape): the kernel kept what it needs from that constant input at prepare (packed
  // weights). The runtime then frees the constant's storage after load.
  virtual bool reads_input_data(size_t i) const { return true; }
  // The weights this kernel packed (or adopted) at prepare, for a package to store; nullopt
  // when it keeps none.
  virtual std::optional<PackedWeights> packed_weights() const { return std::nullopt; }
  // Which of several kernels this node runs when that is a choice made at prepare (e.g.
  // "fp32: 2.1 us vs int8 3.9 us"); empty when there is no choice. Shown by profiles.
  virtual std::string kernel_note() const { return {}; }
};

using InferFn = std::function<Status(InferContext&)>;
using CreateFn = std::function<Result<std::unique_ptr<Kernel>>(const KernelCreateContext&)>;

struct OpDef {
  std::string op_type;
  std::string domain;     // "" for ai.onnx, "com.microsoft" for ORT contrib ops
  int since_version = 1;  // first opset this definition applies to
  int max_version = 21;   // last opset it applies to (inclusive)
  InferFn infer;
  CreateFn create;
};

// Every operator Brink can run. Populated once by register_all_ops() in op_list.cc.
class OpRegistry {
 public:
  static const OpRegistry& global();

  void add(OpDef def);
  // The definition for `op_type` in `domain` at `opset`, or nullptr.
  const OpDef* find(const std::string& domain, const std::string& op_type, int64_t opset) const;
  // True when some opset of this op is known (to tell "unknown op" from "wrong opset").
  bool knows(const std::string& domain, const std::string& op_type) const;
  const std::map<std::pair<std::string, std::string>, std::vector<OpDef>>& all() const {
    return defs_;
  }

 private:
  std::map<std::pair<std::string, std::string>, std::vector<OpDef>> defs_;
};

// Helper for the common kernel shape: a lambda run with the node's parsed state.
template <typename Fn>
class LambdaKernel final : public Kernel {
 public:
  explicit LambdaKernel(Fn fn) : fn_(std::move(fn)) {}
  Status run(KernelContext& ctx) override { return fn_(ctx); }

 private:
  Fn fn_;
};
template <typename Fn>
std::unique_ptr<Kernel> make_kernel(Fn fn) {
  return std::make_unique<LambdaKernel<Fn>>(std::move(fn));
}

}  // namespace brink::ops
