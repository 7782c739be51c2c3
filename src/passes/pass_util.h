// What every graph pass needs: a typed view of the graph (GraphInfo), an editor that keeps
// the node order valid (Rewriter), and small matchers for constants and fused activations.
//
// Passes follow one discipline: analyze, match, rewrite, commit. A match only reads the
// GraphInfo computed before the round and claims its nodes in the Rewriter, so two matches
// of one round never overlap; a fused node is placed where the last node of its pattern
// was, which keeps every input defined before it and every consumer after it without a
// re-sort. (ir::topological_sort cannot be used here: it does not see the values that
// If / Loop / Scan bodies read from the enclosing graph.)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "brink/status.h"
#include "brink/tensor.h"
#include "ir/graph.h"

namespace brink::passes {

struct Use {
  int node = -1;
  int slot = -1;
};

// Types, constant values and uses of every value of a model's main graph, computed the
// way the runtime computes them at compile: the registered infer functions in node order,
// graph-input dims fixed by `dim_values`, nodes whose inputs are all constant evaluated
// (kept here, the graph is not changed). Values whose type cannot be inferred (unknown op,
// control flow, an earlier failure) have dtype kUndefined; passes leave them alone.
class GraphInfo {
 public:
  // max_folded_bytes >= 0: evaluate only nodes whose outputs are at most that large (a pass
  // that needs small constants only, and must not materialize e.g. every dequantized weight).
  static GraphInfo analyze(const ir::Model& model,
                           const std::map<std::string, int64_t>& dim_values = {},
                           int64_t max_folded_bytes = -1);

  // Values added after analyze() (a pass's new initializers) have an undefined type here.
  const ir::TensorType& type(int v) const {
    static const ir::TensorType kUnknown;
    return v >= 0 && static_cast<size_t>(v) < types_.size() ? types_[static_cast<size_t>(v)]
                                                            : kUnknown;
  }
  DataType dtype(int v) const { return type(v).dtype; }
  bool is_float32(int v) const { return dtype(v) == DataType::kFloat32; }
  int64_t rank(int v) const { return type(v).rank(); }
  // The value when known at compile time: an initializer or an all-constant subgraph.
  const Tensor* constant(int v) const;
  // True when constant(v) was computed here rather than stored in the graph.
  bool is_folded(int v) const { return folded_[static_cast<size_t>(v)].defined(); }
  const std::vector<Use>& uses(int v) const { return uses_[static_cast<size_t>(v)]; }
  int producer(int v) const { return producer_[static_cast<size_t>(v)]; }
  bool is_graph_output(int v) const { return graph_output_[static_cast<size_t>(v)] != 0; }
  bool is_graph_input(int v) const { return graph_input_[static_cast<size_t>(v)] != 0; }
  // Read by name from a subgraph (If / Loop / Scan body): must keep its name and meaning.
  bool pinned(int v) const { return pinned_[static_cast<size_t>(v)] != 0; }
  bool has_control_flow() const { return has_control_flow_; }
  int64_t opset(const ir::Node& node) const { return model_->opset(node.domain); }

  // A node output that only passes may see: produced by a node, not a graph output and not
  // read by a subgraph. Rewrites may remove or re-home such values.
  bool internal(int v) const;
  // The node using `v`, when `v` is internal and that node is its only use (one input slot).
  int sole_consumer(int v) const;
  // The distinct nodes using `v`, in node order.
  std::vector<int> consumer_nodes(int v) const;

  const ir::Model& model() const { return *model_; }
  const ir::Graph& graph() const { return model_->graph; }

 private:
  const ir::Model* model_ = nullptr;
  std::vector<ir::TensorType> types_;
  std::vector<Tensor> folded_;
  std::vector<std::vector<Use>> uses_;
  std::vector<int> producer_;
  std::vector<char> graph_output_, graph_input_, pinned_;
  bool has_control_flow_ = false;
};

// Collects node edits and applies them in one pass over the node list. A node index refers
// to graph.nodes as it was when the Rewriter was made.
class Rewriter {
 public:
  explicit Rewriter(ir::Graph& graph);

  // Whether a match of this round already claimed the node.
  bool claimed(int node) const { return claimed_[static_cast<size_t>(node)] != 0; }
  bool any_claimed(const std::vector<int>& nodes) const;
  void claim(int node) { claimed_[static_cast<size_t>(node)] = 1; }

  void remove(int node);
  // Puts `replacement` where `node` is.
  void replace(int node, ir::Node replacement);
  // Inserts right after `node` (-1: before every node), in call order.
  void insert_after(int node, ir::Node inserted);
  bool empty() const { return !changed_; }

  // Rebuilds graph.nodes and the values' producer fields.
  void commit();

 private:
  ir::Graph& graph_;
  std::vector<char> claimed_, removed_;
  std::vector<std::optional<ir::Node>> replacement_;
  std::vector<std::vector<ir::Node>> after_;  // index 0: before every node; i + 1: after node i
  bool changed_ = false;
};

// A value name not used in `graph`, from `base`.
std::string unique_value_name(const ir::Graph& graph, const std::string& base);
// Adds a fresh value (named from `base`) of type `type`.
int add_value(ir::Graph& graph, const std::string& base, ir::TensorType type);
// Adds a fresh initializer holding `t`.
int add_initializer(ir::Graph& graph, const std::string& base, const Tensor& t);
// Adds the `brink` opset import (version 1) if the model lacks it.
void import_brink_domain(ir::Model& model);
// True when the runtime registers `op_type` in the brink domain (the pass may emit it).
bool brink_op_available(const std::string& op_type);

bool is_op(const ir::Node& node, const char* op_type);  // default ONNX domain
bool is_brink_op(const ir::Node& node, const char* op_type);

// The single element of a constant of any rank, as double; nullopt otherwise.
std::optional<double> scalar_constant(const GraphInfo& info, int v);
// scalar_constant(v) within `rel_tol` of `expected`, and of rank <= `max_rank` (so that
// broadcasting against a tensor of that rank does not grow the result).
bool is_scalar_constant(const GraphInfo& info, int v, double expected, double rel_tol = 1e-6,
                        int64_t max_rank = 8);
// Copies a constant to float32 (any real dtype), nullopt for other dtypes.
std::optional<std::vector<float>> constant_as_floats(const Tensor& t);
// The other operand of a two-input node, given one of them; kNoValue when `v` is not one of
// its inputs or is both.
int other_input(const ir::Node& node, int v);
// Types equal dim by dim (symbolic dims by name; anonymous dims never equal).
bool same_shape(const ir::TensorType& a, const ir::TensorType& b);

// A fused activation recognised after a value: the nodes computing it, the value it ends
// in, and the attributes of docs/INTERNAL_OPS.md.
struct ActivationMatch {
  std::string name;  // "Relu", "Clip", ..., as brink's `activation` attribute holds it
  std::vector<float> params;
  std::vector<int> nodes;  // every node of the pattern
  int output = ir::kNoValue;
};
// Recognises an activation applied to internal value `v` (every node of the pattern
// unclaimed, every intermediate internal and used only inside the pattern): the ONNX
// activation ops, SiLU as x * Sigmoid(x), HardSwish as x * HardSigmoid(x) or as
// x * Clip(x + 3, 0, 6) / 6 in the orders torch exports, and Gelu (ONNX or brink).
std::optional<ActivationMatch> match_activation(const GraphInfo& info, const Rewriter& rw, int v);
// Sets `activation` / `activation_params` on a fused node.
void set_activation(ir::Node& node, const ActivationMatch& act);

// Replaces `from` by `to` in every node input (not in graph outputs).
void replace_uses(ir::Graph& graph, int from, int to);
// Checks the graph after a pass: ir::verify plus "a node's output is a fresh value".
Status check_graph(const ir::Model& model, const std::string& pass_name);

}  // namespace brink::passes
