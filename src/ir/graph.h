// The intermediate representation: a Model owns a Graph of Nodes connected by Values.
//
// Values are referred to by index into Graph::values, and an absent optional input is
// kNoValue. The IR keeps everything an ONNX model carries (names, doc strings, metadata,
// value_info) so that import -> export -> import is the identity.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brink/dtype.h"
#include "brink/status.h"
#include "brink/tensor.h"

namespace brink::ir {

inline constexpr int kNoValue = -1;

// One dimension: a known size, or a symbol (`param`, possibly empty when anonymous).
struct Dim {
  int64_t value = -1;
  std::string param;

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: a number is a known dim
  static Dim symbol(std::string name) {
    Dim d;
    d.param = std::move(name);
    return d;
  }
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && param == o.param; }
  std::string to_string() const;  // "3", "batch", or "?"
};

// Element type plus shape; `dims` is nullopt when even the rank is unknown.
struct TensorType {
  DataType dtype = DataType::kUndefined;
  std::optional<std::vector<Dim>> dims;

  TensorType() = default;
  TensorType(DataType t, std::optional<std::vector<Dim>> d) : dtype(t), dims(std::move(d)) {}
  static TensorType of(DataType t, const Shape& shape);  // all dims known
  bool has_rank() const { return dims.has_value(); }
  int64_t rank() const { return dims ? static_cast<int64_t>(dims->size()) : -1; }
  bool is_static() const;         // rank known and every dim known
  Shape static_shape() const;     // requires is_static()
  std::string to_string() const;  // "f32[batch, 3, 224, 224]"
};

class Graph;

enum class AttrType {
  kFloat,
  kInt,
  kString,
  kTensor,
  kGraph,
  kFloats,
  kInts,
  kStrings,
  kTensors,
  kGraphs
};

struct Attribute {
  std::string name;
  AttrType type = AttrType::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  std::string doc_string;
  std::string ref_attr_name;  // kept for round trips (function attributes)
};

struct Value {
  std::string name;
  TensorType type;
  std::optional<Tensor> constant;  // set for initializers and folded constants
  int producer = -1;               // node index, -1 for graph inputs and initializers
  std::string doc_string;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;        // "" is the default ONNX domain ("ai.onnx" is normalised to "")
  std::vector<int> inputs;   // kNoValue for an absent optional input
  std::vector<int> outputs;  // kNoValue for an absent optional output
  std::vector<Attribute> attributes;
  std::string doc_string;

  const Attribute* attr(const std::string& attr_name) const;
  int64_t attr_int(const std::string& attr_name, int64_t fallback) const;
  float attr_float(const std::string& attr_name, float fallback) const;
  std::string attr_string(const std::string& attr_name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& attr_name) const;  // empty if absent
  std::vector<float> attr_floats(const std::string& attr_name) const;
  // "node 'conv1' (Conv)", used as the context of every error about this node.
  std::string describe() const;
};

class Graph {
 public:
  std::string name;
  std::string doc_string;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;  // graph inputs that are not initializers
  std::vector<int> outputs;
  std::vector<int> initializers;  // values with a constant, in file order
  // Initializers that the file also listed as graph inputs (IR < 4 style); kept for export.
  std::vector<int> initializer_inputs;
  std::vector<int> value_infos;  // values with a type annotation in the file, in file order

  // Index of the value called `name`, or kNoValue.
  int find_value(const std::string& value_name) const;
  // Adds a value (name must be unique; the empty name is allowed only for absent values).
  int add_value(const std::string& value_name, TensorType type = {});
  const Value& value(int index) const { return values[static_cast<size_t>(index)]; }
  Value& value(int index) { return values[static_cast<size_t>(index)]; }

 private:
  std::map<std::string, int> index_;
};

struct OperatorSetId {
  std::string domain;
  int64_t version = 0;
};

struct Model {
  int64_t ir_version = 8;
  std::vector<OperatorSetId> opset_imports;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  Graph graph;

  // Opset version imported for `domain` ("" or "ai.onnx" for the default), 0 if none.
  int64_t opset(const std::string& op_domain) const;
};

// Checks structural invariants: every node input is defined before use (graph inputs,
// initializers, or an earlier node's output), names are unique, outputs exist.
// Reports all problems in one Status.
Status verify(const Model& model);

// Reorders graph.nodes so every node comes after the producers of its inputs; fails on cycles.
Status topological_sort(Graph& graph);

}  // namespace brink::ir
