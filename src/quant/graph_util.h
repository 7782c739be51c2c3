// Small graph helpers shared by the quantization rewrites (quantize.cc, quantize_int4.cc,
// equalize.cc, smooth_quant.cc). They read and edit an ir::Graph directly, without the
// GraphInfo analysis of passes/pass_util.h: what a rewrite needs to recognise a stored weight,
// name and build the nodes it adds, and put the graph's producer links back afterwards.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "brink/tensor.h"
#include "ir/graph.h"
#include "ops/evaluate.h"
#include "passes/pass_util.h"

namespace brink::quant {

// `v` is an initializer of `g`: a stored constant that no node produces.
bool is_initializer(const ir::Graph& g, int v);
// The initializer `v` when it is float32, nullptr otherwise.
const Tensor* f32_initializer(const ir::Graph& g, int v);
// Bytes of the constant held by `v` (0 when `v` is absent or not constant).
int64_t tensor_bytes(const ir::Graph& g, int v);
// The name reports and --keep-float use for a node: its name, else its first output's name,
// else its op type.
std::string node_label(const ir::Graph& g, const ir::Node& n);
// True when some node holds a subgraph (If / Loop / Scan body): subgraphs read outer values by
// name, so the rewrites that move weights between nodes stay away from such models.
bool has_subgraphs(const ir::Graph& g);

// ops::make_attr for an int64 attribute, by a name that takes an int without ambiguity.
inline ir::Attribute int_attr(const std::string& name, int64_t v) {
  return ops::make_attr(name, v);
}
// A node of the default domain with no attributes.
ir::Node make_node(const std::string& op, const std::string& name, std::vector<int> inputs,
                   std::vector<int> outputs);
// The node input slots that read each value ({node index, input slot}, in node order); graph
// outputs are not among them.
std::vector<std::vector<passes::Use>> value_readers(const ir::Graph& g);
// Sets every value's producer from g.nodes (after nodes were added, removed or reordered).
void recompute_producers(ir::Graph& g);

// Names for new nodes that no node of the graph (old or new) has.
class NodeNames {
 public:
  explicit NodeNames(const ir::Graph& g);
  // `base`, or `base`_1, `base`_2, ... for the first one not taken yet.
  std::string operator()(const std::string& base);

 private:
  std::set<std::string> used_;
};

}  // namespace brink::quant
