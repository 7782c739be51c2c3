// CompiledModel: an imported model checked, typed and prepared for execution.
//
// Compilation walks the nodes in topological order and, for each one, finds its operator
// definition, infers its output types (symbolic dims allowed), folds it to a constant when
// all its inputs are constant, and otherwise runs the kernel's prepare step. Every problem
// found on the way is kept (not just the first), so a user learns all the reasons a model
// cannot run at once. It then plans intermediate tensors into one arena by liveness to
// report the exact memory need when shapes are static.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "brink/session.h"
#include "core/thread_pool.h"
#include "ir/graph.h"
#include "ops/op.h"
#include "passes/optimize.h"

namespace brink {

// One executed node, as reported by `brink info` and the profiler.
struct LayerInfo {
  int node_index = 0;
  std::string name;
  std::string op_type;
  std::string kernel;  // the kernel chosen at prepare when there was a choice (Kernel::kernel_note)
  int64_t macs = 0;    // multiply-accumulates, 0 when not a MAC-shaped op or unknown dims
  int64_t flops = 0;   // 2*macs for MAC ops, else one per output element
  std::vector<ir::TensorType> output_types;
};

// What a .brink package adds to a compile: the ISA its packed weights are for, and those
// weights by node index (the kernels adopt them instead of packing).
struct CompileExtras {
  std::optional<Isa> isa;
  std::map<int, ops::PackedWeights> prepacked;
};

class CompiledModel {
 public:
  ~CompiledModel();
  // With `keep_problems`, a model with problems still compiles (without kernels) so tools
  // can report on it; otherwise problems make compile fail with all of them in one Status.
  static Result<std::unique_ptr<CompiledModel>> compile(ir::Model model,
                                                        const SessionOptions& options,
                                                        bool keep_problems = false,
                                                        const CompileExtras* extras = nullptr);
  // Memory-bounded execution (a .brink package with --max-memory): the byte ranges of mapped
  // weights each node reads, by node index. After a step runs its ranges are dropped from
  // memory (madvise DONTNEED: the file's pages stay in the page cache and fault back in on
  // the next run), and the next step's ranges are prefetched, so resident weights stay near
  // one layer's. Call before the first run.
  void set_weight_paging(const std::map<int, std::vector<std::pair<const void*, size_t>>>& by_node);
  bool pages_weights() const { return !step_pages_.empty(); }
  // Progressive loading (a .brink package still streaming in, package/stream_loader.h):
  // called with a step's node index before its kernel runs; returns once the bytes that
  // node reads have arrived and been verified, or the error that ended the stream (the run
  // then fails with it). Call before the first run.
  using StepGate = std::function<Status(int node_index)>;
  void set_step_gate(StepGate gate) { step_gate_ = std::move(gate); }
  // Bytes of the largest step's weight ranges (what paging keeps resident at once).
  int64_t largest_step_weight_bytes() const;

  // Each kernel's packed weights, by node index, with the inputs it then never reads (what a
  // package stores instead of those inputs).
  struct NodePackedWeights {
    int node_index = 0;
    ops::PackedWeights weights;
    std::vector<int> unread_inputs;
  };
  std::vector<NodePackedWeights> packed_weights() const;

  const ir::Model& model() const { return model_; }
  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  const std::vector<Status>& problems() const { return problems_; }
  bool runnable() const { return problems_.empty(); }

  const std::vector<LayerInfo>& layers() const { return layers_; }
  // Bytes of the planned activation arena; nullopt when some intermediate shape is not
  // static (symbolic dims): compile with SessionOptions::dim_values to fix them.
  std::optional<int64_t> arena_bytes() const { return arena_bytes_; }
  // Sum of all intermediate tensor sizes, i.e. what allocating each separately would take.
  std::optional<int64_t> unplanned_bytes() const { return unplanned_bytes_; }
  int64_t parameter_count() const { return parameter_count_; }
  int64_t parameter_bytes() const { return parameter_bytes_; }
  // Bytes of constants freed after load because their kernels hold packed copies.
  int64_t released_constant_bytes() const { return released_constant_bytes_; }
  int64_t folded_nodes() const { return folded_nodes_; }
  const ir::TensorType& value_type(int value) const {
    return value_types_[static_cast<size_t>(value)];
  }

  // Runs the model. With `step_seconds`, also times every step (index = layers() index).
  Result<std::vector<Tensor>> run(const std::vector<NamedTensor>& feeds,
                                  std::vector<double>* step_seconds = nullptr) const;

  // True when every intermediate shape is static, so runs use the planned arena: no
  // allocation in run() except the returned outputs.
  bool uses_arena() const { return static_plan_ != nullptr; }
  int num_threads() const { return num_threads_; }
  // What the graph passes did, and the model as they left it (what actually runs).
  const passes::OptimizeReport& optimize_report() const { return optimize_report_; }
  int optimization_level() const { return optimization_level_; }
  // Steps that run no kernel because their output is a view of their input (Reshape and
  // friends) and outputs written over their dead input (in place).
  int64_t view_steps() const { return view_steps_; }
  int64_t in_place_steps() const { return in_place_steps_; }

  // What a subgraph sees of a value of an enclosing graph at load time.
  struct OuterValue {
    const ir::TensorType* type = nullptr;
    const Tensor* constant = nullptr;  // set when the value is constant
  };
  using OuterTypes = std::function<std::optional<OuterValue>(const std::string& name)>;

  // Compiles a subgraph (If branch, Loop / Scan body) with the opsets of `parent`, the
  // given types for its graph inputs, and `outer` resolving the values it reads from
  // enclosing graphs. Outer values that are constant become constants of the subgraph.
  static Result<std::unique_ptr<CompiledModel>> compile_subgraph(
      const ir::Model& parent, const ir::Graph& graph,
      const std::vector<ir::TensorType>& input_types, const SessionOptions& options,
      OuterTypes outer);
  // Runs the graph on its inputs (in graph-input order); `outer` gives the live values of
  // enclosing graphs (nullptr for a model's main graph).
  Result<std::vector<Tensor>> run_graph(const std::vector<const Tensor*>& inputs,
                                        const ops::OuterScope* outer) const;
  const std::vector<ir::TensorType>& output_types() const { return output_types_; }

 private:
  CompiledModel();  // defined where RunState is complete (arena_executor.cc)
  struct Step {
    int node_index = 0;
    int64_t opset = 0;
    const ops::OpDef* def = nullptr;
    std::unique_ptr<ops::Kernel> kernel;
    std::vector<int> release_after;  // values whose last use is this step
  };

  Status check_opsets();
  void infer_and_prepare(const SessionOptions& options,
                         const std::vector<ir::TensorType>* subgraph_input_types = nullptr);
  ops::SubgraphCompileFn subgraph_compiler(const ir::Node& node, const SessionOptions& options);
  // Plans every intermediate tensor into one arena (arena_executor.cc): views and in-place
  // outputs share their input's block, the rest are placed by liveness.
  void plan_memory();
  Result<std::vector<Tensor>> run_dynamic(const std::vector<const Tensor*>& inputs,
                                          const ops::OuterScope* outer,
                                          std::vector<double>* step_seconds) const;
  Result<std::vector<Tensor>> run_static(const std::vector<const Tensor*>& inputs,
                                         std::vector<double>* step_seconds) const;

  // Where each value lives when the model runs from the arena.
  enum class Home : uint8_t { kAbsent, kConstant, kGraphInput, kArena, kGraphOutput };
  struct StaticPlan {
    std::vector<Home> home;                     // by value
    std::vector<int64_t> offset;                // by value: arena byte offset for kArena
    std::vector<uint8_t> is_view;               // by step: no kernel, output views the input
    std::vector<std::pair<int, int>> producer;  // by value: (step, output slot) or (-1, -1)
    int64_t arena_bytes = 0;
  };
  // The arena of one run and the tensors viewing it, built once and reused; one per
  // concurrent run (runs on several threads each take their own).
  struct RunState;
  std::unique_ptr<RunState> make_run_state() const;
  Status validate_feeds(const std::vector<NamedTensor>& feeds,
                        std::vector<const Tensor*>* by_input) const;

  ir::Model model_;
  int num_threads_ = 1;
  std::vector<Status> problems_;
  std::vector<ir::TensorType> value_types_;
  std::vector<bool> value_poisoned_;  // type unknown because an earlier node failed
  std::vector<Step> steps_;
  std::vector<LayerInfo> layers_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::vector<ir::TensorType> output_types_;
  // Subgraphs only: how enclosing values are typed while compiling, and the values read
  // from enclosing graphs at run time (those that are not constants).
  OuterTypes outer_types_;
  std::vector<int> outer_values_;
  // Subgraphs compiled while inferring a node, reused when its kernel is prepared.
  std::map<std::pair<const ir::Graph*, std::string>, std::shared_ptr<const ops::SubgraphProgram>>
      subgraph_cache_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<StaticPlan> static_plan_;
  mutable std::mutex run_states_mutex_;
  mutable std::vector<std::unique_ptr<RunState>> free_run_states_;
  const CompileExtras* extras_ = nullptr;  // during compile only
  // By step: page-aligned ranges of mapped weights (memory-bounded execution), else empty.
  std::vector<std::vector<std::pair<uint8_t*, size_t>>> step_pages_;
  StepGate step_gate_;
  void page_in_weights(size_t step) const;
  void page_out_weights(size_t step) const;
  passes::OptimizeReport optimize_report_;
  int optimization_level_ = 0;
  int64_t view_steps_ = 0;
  int64_t in_place_steps_ = 0;
  std::optional<int64_t> arena_bytes_;
  std::optional<int64_t> unplanned_bytes_;
  int64_t parameter_count_ = 0;
  int64_t parameter_bytes_ = 0;
  int64_t released_constant_bytes_ = 0;
  int64_t folded_nodes_ = 0;
};

// Multiply-accumulate count of one node from its input/output types (0 if not MAC-shaped
// or dims are not all known).
int64_t estimate_macs(const ir::Node& node, const std::vector<const ir::TensorType*>& inputs,
                      const std::vector<ir::TensorType>& outputs);

// The domain of Brink's internal fused operators (docs/INTERNAL_OPS.md).
inline constexpr const char* kBrinkDomain = "brink";

// Newest default-domain opset Brink claims to support.
inline constexpr int64_t kMaxSupportedOpset = 21;

}  // namespace brink
