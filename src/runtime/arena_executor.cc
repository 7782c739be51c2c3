// The arena executor: when every intermediate shape is known at load, the compile step
// gives each intermediate tensor a fixed place in one arena, and a run only fills in the
// graph inputs, allocates the graph outputs it returns, and calls the kernels.
//
// Planning, in order of the steps:
//   - a view step (Reshape, Flatten, Squeeze, Unsqueeze, Identity) whose input lives in the
//     arena runs no kernel: its output is the same bytes with another shape;
//   - an elementwise step whose output has the shape and size of an input that nothing
//     reads afterwards writes over that input (in place); its kernel must be alias-safe,
//     which is why only the operators listed in kInPlaceOps qualify;
//   - any other output gets a block of its own. Blocks are then placed by liveness,
//     greedily by size (largest first, lowest free offset), as TFLite Micro's greedy
//     planner does: within a few percent of optimal on the CNNs measured.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include <sys/mman.h>
#include <unistd.h>

#include "ops/evaluate.h"
#include "runtime/compiled_model.h"

namespace brink {

namespace {

bool is_view_op(const ir::Node& node) {
  if (!node.domain.empty() || node.outputs.size() != 1) return false;
  static const std::set<std::string> ops = {"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                            "Identity"};
  return ops.count(node.op_type) > 0;
}

// Operators whose kernels read each input element before writing the output element at
// the same position, so an output may share memory with an input of its own shape.
bool is_in_place_op(const ir::Node& node) {
  static const std::set<std::string> onnx_ops = {
      "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Exp",
      "Erf",  "Abs",       "Neg",     "Sqrt", "Softplus",    "Elu",       "Selu", "Gelu",
      "Add",  "Sub",       "Mul",     "Div",  "Reciprocal",  "Floor",     "Ceil", "Round"};
  if (node.domain.empty()) return onnx_ops.count(node.op_type) > 0;
  if (node.domain == kBrinkDomain) return node.op_type == "Gelu";
  return false;
}

int64_t padded_bytes(const ir::TensorType& t) {
  return (shape_numel(t.static_shape()) * static_cast<int64_t>(dtype_size(t.dtype)) + 63) / 64 * 64;
}

void aligned_free(void* p) {
  std::free(p);
}

bool has_subgraph_attr(const ir::Node& node) {
  for (const ir::Attribute& a : node.attributes)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

}  // namespace

struct CompiledModel::RunState {
  std::unique_ptr<void, void (*)(void*)> arena{nullptr, aligned_free};
  // Per step: the input pointers a kernel sees and the output tensors it writes, built
  // once. Inputs point at constants, at other steps' outputs, or (patched per run) at
  // the caller's feeds.
  std::vector<std::vector<const Tensor*>> step_inputs;
  std::vector<std::vector<Tensor>> step_outputs;
  // For each graph input, the (step, slot) places that read it.
  std::vector<std::vector<std::pair<int, int>>> feed_uses;
};

void CompiledModel::set_weight_paging(
    const std::map<int, std::vector<std::pair<const void*, size_t>>>& by_node) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  step_pages_.assign(steps_.size(), {});
  for (size_t s = 0; s < steps_.size(); ++s) {
    auto it = by_node.find(steps_[s].node_index);
    if (it == by_node.end()) continue;
    for (const auto& [data, bytes] : it->second) {
      // Whole pages inside the range only: a page shared with a neighbour's weights stays.
      const auto begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
      const auto end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
      if (end > begin)
        step_pages_[s].emplace_back(reinterpret_cast<uint8_t*>(begin),
                                    static_cast<size_t>(end - begin));
    }
  }
}

int64_t CompiledModel::largest_step_weight_bytes() const {
  int64_t most = 0;
  for (const auto& ranges : step_pages_) {
    int64_t bytes = 0;
    for (const auto& r : ranges) bytes += static_cast<int64_t>(r.second);
    most = std::max(most, bytes);
  }
  return most;
}

void CompiledModel::page_in_weights(size_t step) const {
  for (const auto& [p, n] : step_pages_[step]) ::madvise(p, n, MADV_WILLNEED);
}

void CompiledModel::page_out_weights(size_t step) const {
  for (const auto& [p, n] : step_pages_[step]) ::madvise(p, n, MADV_DONTNEED);
}

CompiledModel::CompiledModel() = default;
CompiledModel::~CompiledModel() = default;

void CompiledModel::plan_memory() {
  if (!problems_.empty() || !outer_values_.empty()) return;
  const ir::Graph& g = model_.graph;
  const size_t nv = g.values.size();
  for (const ir::Node& n : g.nodes)
    if (has_subgraph_attr(n)) return;  // control flow runs on the dynamic path

  auto plan = std::make_unique<StaticPlan>();
  plan->home.assign(nv, Home::kAbsent);
  plan->offset.assign(nv, -1);
  plan->producer.assign(nv, {-1, -1});
  plan->is_view.assign(steps_.size(), false);
  for (size_t v = 0; v < nv; ++v)
    if (g.values[v].constant) plan->home[v] = Home::kConstant;
  for (int v : g.inputs) plan->home[static_cast<size_t>(v)] = Home::kGraphInput;

  std::vector<int> last_use(nv, -1);
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ir::Node& node = g.nodes[static_cast<size_t>(steps_[s].node_index)];
    for (int in : node.inputs)
      if (in != ir::kNoValue) last_use[static_cast<size_t>(in)] = static_cast<int>(s);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const int out = node.outputs[k];
      if (out == ir::kNoValue) continue;
      if (!value_types_[static_cast<size_t>(out)].is_static()) return;  // dynamic shapes
      plan->producer[static_cast<size_t>(out)] = {static_cast<int>(s), static_cast<int>(k)};
      if (plan->home[static_cast<size_t>(out)] == Home::kAbsent)
        plan->home[static_cast<size_t>(out)] = Home::kArena;
    }
  }
  for (int v : g.outputs) {
    if (plan->home[static_cast<size_t>(v)] == Home::kArena)
      plan->home[static_cast<size_t>(v)] = Home::kGraphOutput;
    last_use[static_cast<size_t>(v)] = static_cast<int>(steps_.size());
  }

  // Blocks of arena memory; several values may share one (views, in place).
  struct Block {
    int64_t bytes = 0, first = 0, last = 0, offset = 0;
  };
  std::vector<Block> blocks;
  std::vector<int> block_of(nv, -1);
  int64_t unplanned = 0;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ir::Node& node = g.nodes[static_cast<size_t>(steps_[s].node_index)];
    for (int out : node.outputs) {
      if (out == ir::kNoValue || plan->home[static_cast<size_t>(out)] != Home::kArena) continue;
      const ir::TensorType& ot = value_types_[static_cast<size_t>(out)];
      const int64_t bytes = padded_bytes(ot);
      unplanned += bytes;
      const int64_t out_last = last_use[static_cast<size_t>(out)] < 0
                                   ? static_cast<int64_t>(s)
                                   : last_use[static_cast<size_t>(out)];
      int shared = -1;
      if (is_view_op(node) && node.inputs[0] != ir::kNoValue &&
          block_of[static_cast<size_t>(node.inputs[0])] >= 0) {
        shared = block_of[static_cast<size_t>(node.inputs[0])];
        plan->is_view[s] = true;
        ++view_steps_;
      } else if (is_in_place_op(node)) {
        for (int in : node.inputs) {
          if (in == ir::kNoValue || block_of[static_cast<size_t>(in)] < 0) continue;
          const Block& b = blocks[static_cast<size_t>(block_of[static_cast<size_t>(in)])];
          const ir::TensorType& it = value_types_[static_cast<size_t>(in)];
          if (b.last == static_cast<int64_t>(s) && it.dtype == ot.dtype &&
              it.static_shape() == ot.static_shape()) {
            shared = block_of[static_cast<size_t>(in)];
            ++in_place_steps_;
            break;
          }
        }
      }
      if (shared >= 0) {
        Block& b = blocks[static_cast<size_t>(shared)];
        b.last = std::max(b.last, out_last);
        block_of[static_cast<size_t>(out)] = shared;
      } else {
        block_of[static_cast<size_t>(out)] = static_cast<int>(blocks.size());
        blocks.push_back({bytes, static_cast<int64_t>(s), out_last, 0});
      }
    }
  }

  std::vector<size_t> order(blocks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Largest first, ties in step order (std::sort with the tie-break: stable_sort's merge
  // machinery costs the device runtime 2 KiB).
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return blocks[a].bytes != blocks[b].bytes ? blocks[a].bytes > blocks[b].bytes : a < b;
  });
  int64_t arena = 0;
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of blocks alive meanwhile
  for (size_t i : order) {
    Block& b = blocks[i];
    busy.clear();
    for (size_t j : placed) {
      const Block& o = blocks[j];
      if (o.first <= b.last && b.first <= o.last) busy.push_back({o.offset, o.offset + o.bytes});
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [start, end] : busy) {
      if (offset + b.bytes <= start) break;
      offset = std::max(offset, end);
    }
    b.offset = offset;
    arena = std::max(arena, offset + b.bytes);
    placed.push_back(i);
  }
  for (size_t v = 0; v < nv; ++v)
    if (block_of[v] >= 0) plan->offset[v] = blocks[static_cast<size_t>(block_of[v])].offset;
  plan->arena_bytes = arena;
  arena_bytes_ = arena;
  unplanned_bytes_ = unplanned;
  static_plan_ = std::move(plan);
  // The first run's state is built now, its arena written once, so that the first inference
  // pays no page faults or allocation the later ones do not (first latency = steady latency).
  std::unique_ptr<RunState> first = make_run_state();
  if (first->arena) std::memset(first->arena.get(), 0, static_cast<size_t>(arena));
  free_run_states_.push_back(std::move(first));
}

std::unique_ptr<CompiledModel::RunState> CompiledModel::make_run_state() const {
  const ir::Graph& g = model_.graph;
  const StaticPlan& plan = *static_plan_;
  auto state = std::make_unique<RunState>();
  if (plan.arena_bytes > 0) {
    void* p = std::aligned_alloc(64, static_cast<size_t>(plan.arena_bytes));
    state->arena.reset(p);
  }
  auto* base = static_cast<uint8_t*>(state->arena.get());
  state->step_outputs.resize(steps_.size());
  state->step_inputs.resize(steps_.size());
  state->feed_uses.resize(g.inputs.size());
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ir::Node& node = g.nodes[static_cast<size_t>(steps_[s].node_index)];
    auto& outs = state->step_outputs[s];
    outs.resize(node.outputs.size());
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const int out = node.outputs[k];
      if (out == ir::kNoValue || plan.home[static_cast<size_t>(out)] != Home::kArena) continue;
      const ir::TensorType& t = value_types_[static_cast<size_t>(out)];
      outs[k] =
          Tensor::view(t.dtype, t.static_shape(), base + plan.offset[static_cast<size_t>(out)]);
    }
  }
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ir::Node& node = g.nodes[static_cast<size_t>(steps_[s].node_index)];
    auto& ins = state->step_inputs[s];
    ins.assign(node.inputs.size(), nullptr);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int in = node.inputs[k];
      if (in == ir::kNoValue) continue;
      switch (plan.home[static_cast<size_t>(in)]) {
        case Home::kConstant:
          ins[k] = &*g.value(in).constant;
          break;
        case Home::kGraphInput: {
          auto pos = std::find(g.inputs.begin(), g.inputs.end(), in) - g.inputs.begin();
          state->feed_uses[static_cast<size_t>(pos)].push_back(
              {static_cast<int>(s), static_cast<int>(k)});
          break;
        }
        case Home::kArena:
        case Home::kGraphOutput: {
          auto [ps, pk] = plan.producer[static_cast<size_t>(in)];
          ins[k] = &state->step_outputs[static_cast<size_t>(ps)][static_cast<size_t>(pk)];
          break;
        }
        case Home::kAbsent:
          break;
      }
    }
  }
  return state;
}

Result<std::vector<Tensor>> CompiledModel::run_static(const std::vector<const Tensor*>& fed,
                                                      std::vector<double>* step_seconds) const {
  const ir::Graph& g = model_.graph;
  const StaticPlan& plan = *static_plan_;
  std::unique_ptr<RunState> state;
  {
    std::lock_guard<std::mutex> lock(run_states_mutex_);
    if (!free_run_states_.empty()) {
      state = std::move(free_run_states_.back());
      free_run_states_.pop_back();
    }
  }
  if (!state) state = make_run_state();
  // Returns the state to the free list however this run ends.
  struct Release {
    const CompiledModel* cm;
    std::unique_ptr<RunState>* state;
    ~Release() {
      std::lock_guard<std::mutex> lock(cm->run_states_mutex_);
      cm->free_run_states_.push_back(std::move(*state));
    }
  } release{this, &state};

  for (size_t k = 0; k < fed.size(); ++k)
    for (auto [s, slot] : state->feed_uses[k])
      state->step_inputs[static_cast<size_t>(s)][static_cast<size_t>(slot)] = fed[k];
  // Graph outputs are handed to the caller, so each run gets fresh ones.
  for (int out : g.outputs) {
    if (plan.home[static_cast<size_t>(out)] != Home::kGraphOutput) continue;
    auto [s, k] = plan.producer[static_cast<size_t>(out)];
    Tensor& slot = state->step_outputs[static_cast<size_t>(s)][static_cast<size_t>(k)];
    if (slot.defined()) continue;  // listed twice as a graph output
    const ir::TensorType& t = value_types_[static_cast<size_t>(out)];
    slot = Tensor::empty(t.dtype, t.static_shape());
  }

  for (size_t s = 0; s < steps_.size(); ++s) {
    if (plan.is_view[s]) continue;
    const Step& step = steps_[s];
    if (step_gate_) BRINK_RETURN_IF_ERROR(step_gate_(step.node_index));
    const auto start =
        step_seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    ops::KernelContext ctx(state->step_inputs[s], &state->step_outputs[s], num_threads_);
    ctx.set_thread_pool(pool_.get());
    if (!step_pages_.empty() && s + 1 < steps_.size()) page_in_weights(s + 1);
    Status st = step.kernel->run(ctx);
    if (!step_pages_.empty()) page_out_weights(s);
    if (!st.is_ok()) return st;
    if (step_seconds)
      (*step_seconds)[s] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  std::vector<Tensor> result;
  result.reserve(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const int out = g.outputs[i];
    switch (plan.home[static_cast<size_t>(out)]) {
      case Home::kConstant:
        result.push_back(*g.value(out).constant);
        break;
      case Home::kGraphInput: {
        auto pos = std::find(g.inputs.begin(), g.inputs.end(), out) - g.inputs.begin();
        result.push_back(*fed[static_cast<size_t>(pos)]);
        break;
      }
      default: {
        auto [s, k] = plan.producer[static_cast<size_t>(out)];
        Tensor& slot = state->step_outputs[static_cast<size_t>(s)][static_cast<size_t>(k)];
        bool again = std::find(g.outputs.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                               g.outputs.end(), out) != g.outputs.end();
        result.push_back(again ? slot : std::move(slot));
        if (!again) slot = Tensor();
      }
    }
  }
  return result;
}

}  // namespace brink
