// ModelProto -> ir::Model.
//
// Bad input is expected here (files from anywhere, fuzzers): protobuf's parser is the
// first line of defence (it bounds nesting at 100 messages and never reads past the
// buffer), and everything it accepts is checked before use. Errors name the file, the
// graph, then the node / tensor / field, and say what was expected versus found.
//
// What the IR cannot hold is either rejected (model-local functions, sequence / map /
// optional types, sparse-tensor and type-proto attributes, string tensors) or dropped
// when it cannot change what the model computes (training_info, quantization
// annotations, type denotations, tensor names inside attributes).
#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace brink::onnx_io {
namespace {

namespace fs = std::filesystem;
using detail::quote;

constexpr int kMaxGraphDepth = 64;  // protobuf's own limit already stops deeper nesting

std::string describe(const ir::Node& n) {
  return "node " + quote(n.name) + " (" + (n.domain.empty() ? "" : n.domain + ".") + n.op_type +
         ")";
}

std::string subgraph_context(const std::string& ctx, const ir::Node& n, const std::string& attr,
                             int index) {
  std::string s = ctx + " > " + describe(n) + " attribute " + quote(attr);
  if (index >= 0) s += "[" + std::to_string(index) + "]";
  return s;
}

bool untyped(const ir::TensorType& t) {
  return t.dtype == DataType::kUndefined && !t.dims;
}

Result<ir::TensorType> value_type(const onnx::ValueInfoProto& vi, const std::string& what) {
  if (!vi.has_type()) return ir::TensorType{};
  const onnx::TypeProto& tp = vi.type();
  switch (tp.value_case()) {
    case onnx::TypeProto::VALUE_NOT_SET:
      return ir::TensorType{};
    case onnx::TypeProto::kTensorType:
      break;
    case onnx::TypeProto::kSequenceType:
      return unsupported(what + " has a sequence type; Brink supports tensors only");
    case onnx::TypeProto::kMapType:
      return unsupported(what + " has a map type; Brink supports tensors only");
    case onnx::TypeProto::kOptionalType:
      return unsupported(what + " has an optional type; Brink supports tensors only");
    case onnx::TypeProto::kSparseTensorType:
      return unsupported(what + " has a sparse tensor type; Brink supports dense tensors only");
    default:
      return unsupported(what + " has an opaque type; Brink supports tensors only");
  }
  const onnx::TypeProto::Tensor& tt = tp.tensor_type();
  BRINK_ASSIGN_OR_RETURN(const DataType dtype, detail::value_dtype_from_onnx(tt.elem_type(), what));
  ir::TensorType t;
  t.dtype = dtype;
  if (tt.has_shape()) {
    std::vector<ir::Dim> dims;
    dims.reserve(static_cast<size_t>(tt.shape().dim_size()));
    int64_t product = 1;  // keeps downstream element counts within int64
    for (int i = 0; i < tt.shape().dim_size(); ++i) {
      const onnx::TensorShapeProto::Dimension& d = tt.shape().dim(i);
      if (d.has_dim_value()) {
        const int64_t v = d.dim_value();
        if (v < 0)
          return invalid_model(what + ": dim " + std::to_string(i) + " is " + std::to_string(v) +
                               ", expected >= 0");
        if (__builtin_mul_overflow(product, v == 0 ? 1 : v, &product))
          return invalid_model(what + ": shape has more elements than fit in 64 bits (dim " +
                               std::to_string(i) + " is " + std::to_string(v) + ")");
        dims.emplace_back(v);
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        dims.push_back(ir::Dim::symbol(d.dim_param()));
      } else {
        dims.emplace_back();
      }
    }
    t.dims = std::move(dims);
  }
  return t;
}

// The first declaration with a type gives an (unset, non-constant) value its type; the
// first non-empty doc string is kept. Export writes the same type everywhere, so this
// choice is stable across round trips.
void declare(ir::Value& v, ir::TensorType type, const std::string& doc) {
  if (!v.constant && untyped(v.type)) v.type = std::move(type);
  if (v.doc_string.empty()) v.doc_string = doc;
}

int value_for(ir::Graph& g, const std::string& name) {
  if (name.empty()) return ir::kNoValue;
  const int idx = g.find_value(name);
  return idx != ir::kNoValue ? idx : g.add_value(name);
}

// Old files may leave AttributeProto.type unset (and proto2 maps an unknown enum value to
// unset); take the type from the one field that holds a value.
int infer_attribute_type(const onnx::AttributeProto& a) {
  using A = onnx::AttributeProto;
  if (a.has_f()) return A::FLOAT;
  if (a.has_i()) return A::INT;
  if (a.has_s()) return A::STRING;
  if (a.has_t()) return A::TENSOR;
  if (a.has_g()) return A::GRAPH;
  if (a.has_sparse_tensor()) return A::SPARSE_TENSOR;
  if (a.has_tp()) return A::TYPE_PROTO;
  if (a.floats_size()) return A::FLOATS;
  if (a.ints_size()) return A::INTS;
  if (a.strings_size()) return A::STRINGS;
  if (a.tensors_size()) return A::TENSORS;
  if (a.graphs_size()) return A::GRAPHS;
  if (a.sparse_tensors_size()) return A::SPARSE_TENSORS;
  if (a.type_protos_size()) return A::TYPE_PROTOS;
  return A::UNDEFINED;
}

class Importer {
 public:
  explicit Importer(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  // Converts `mp`, releasing initializer bytes as they are copied (keeps the peak low).
  Status model(onnx::ModelProto& mp, ir::Model& m);

 private:
  Status graph(onnx::GraphProto& gp, ir::Graph& g, const std::string& ctx, int depth);
  Result<ir::Attribute> attribute(onnx::AttributeProto& ap, const ir::Node& node,
                                  const std::string& ctx, int depth);
  Result<std::shared_ptr<ir::Graph>> subgraph(onnx::GraphProto& gp, const std::string& ctx,
                                              int depth);

  std::string base_dir_;
};

Status Importer::model(onnx::ModelProto& mp, ir::Model& m) {
  if (!mp.has_graph())
    return invalid_model("not an ONNX model: it has no graph (ir_version " +
                         std::to_string(mp.ir_version()) + ")");
  if (mp.functions_size() > 0) {
    const onnx::FunctionProto& f = mp.functions(0);
    return unsupported("model-local functions are not supported (the model defines " +
                       std::to_string(mp.functions_size()) + ", the first is " +
                       quote(f.domain() + "." + f.name()) + ")");
  }
  m.ir_version = mp.ir_version();
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  m.domain = mp.domain();
  m.model_version = mp.model_version();
  m.doc_string = mp.doc_string();
  std::unordered_map<std::string, int64_t> opset_seen;
  for (const onnx::OperatorSetIdProto& o : mp.opset_import()) {
    const std::string domain = o.domain() == "ai.onnx" ? "" : o.domain();
    if (o.version() < 1)
      return invalid_model("opset_import for domain " + quote(domain) + " has version " +
                           std::to_string(o.version()) + ", expected >= 1");
    auto [it, fresh] = opset_seen.emplace(domain, o.version());
    if (!fresh)
      return invalid_model("opset_import lists domain " + quote(domain) + " twice (versions " +
                           std::to_string(it->second) + " and " + std::to_string(o.version()) +
                           ")");
    m.opset_imports.push_back({domain, o.version()});
  }
  for (const onnx::StringStringEntryProto& kv : mp.metadata_props())
    m.metadata_props.emplace_back(kv.key(), kv.value());
  return graph(*mp.mutable_graph(), m.graph, "graph " + quote(mp.graph().name()), 0);
}

Result<std::shared_ptr<ir::Graph>> Importer::subgraph(onnx::GraphProto& gp, const std::string& ctx,
                                                      int depth) {
  auto g = std::make_shared<ir::Graph>();
  BRINK_RETURN_IF_ERROR(graph(gp, *g, ctx, depth + 1));
  return g;
}

Result<ir::Attribute> Importer::attribute(onnx::AttributeProto& ap, const ir::Node& node,
                                          const std::string& ctx, int depth) {
  using A = onnx::AttributeProto;
  const std::string what = ctx + ": " + describe(node) + ": attribute " + quote(ap.name());
  if (ap.name().empty())
    return invalid_model(ctx + ": " + describe(node) + ": an attribute has no name");
  ir::Attribute a;
  a.name = ap.name();
  a.doc_string = ap.doc_string();
  a.ref_attr_name = ap.ref_attr_name();
  const int type =
      ap.type() != A::UNDEFINED ? static_cast<int>(ap.type()) : infer_attribute_type(ap);
  switch (type) {
    case A::FLOAT:
      a.type = ir::AttrType::kFloat;
      a.f = ap.f();
      break;
    case A::INT:
      a.type = ir::AttrType::kInt;
      a.i = ap.i();
      break;
    case A::STRING:
      a.type = ir::AttrType::kString;
      a.s = ap.s();
      break;
    case A::TENSOR: {
      if (!ap.has_t()) return invalid_model(what + " has type TENSOR but holds no tensor");
      a.type = ir::AttrType::kTensor;
      BRINK_ASSIGN_OR_RETURN(a.t, detail::tensor_from_proto(ap.t(), base_dir_, what));
      break;
    }
    case A::GRAPH: {
      if (!ap.has_g()) return invalid_model(what + " has type GRAPH but holds no graph");
      a.type = ir::AttrType::kGraph;
      BRINK_ASSIGN_OR_RETURN(
          a.g, subgraph(*ap.mutable_g(), subgraph_context(ctx, node, ap.name(), -1), depth));
      break;
    }
    case A::FLOATS:
      a.type = ir::AttrType::kFloats;
      a.floats.assign(ap.floats().begin(), ap.floats().end());
      break;
    case A::INTS:
      a.type = ir::AttrType::kInts;
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      break;
    case A::STRINGS:
      a.type = ir::AttrType::kStrings;
      a.strings.assign(ap.strings().begin(), ap.strings().end());
      break;
    case A::TENSORS:
      a.type = ir::AttrType::kTensors;
      a.tensors.reserve(static_cast<size_t>(ap.tensors_size()));
      for (int k = 0; k < ap.tensors_size(); ++k) {
        BRINK_ASSIGN_OR_RETURN(Tensor t,
                               detail::tensor_from_proto(ap.tensors(k), base_dir_,
                                                         what + " tensor #" + std::to_string(k)));
        a.tensors.push_back(std::move(t));
      }
      break;
    case A::GRAPHS:
      a.type = ir::AttrType::kGraphs;
      a.graphs.reserve(static_cast<size_t>(ap.graphs_size()));
      for (int k = 0; k < ap.graphs_size(); ++k) {
        BRINK_ASSIGN_OR_RETURN(auto g, subgraph(*ap.mutable_graphs(k),
                                                subgraph_context(ctx, node, ap.name(), k), depth));
        a.graphs.push_back(std::move(g));
      }
      break;
    case A::SPARSE_TENSOR:
    case A::SPARSE_TENSORS:
      return unsupported(what + ": sparse tensor attributes are not supported");
    case A::TYPE_PROTO:
    case A::TYPE_PROTOS:
      return unsupported(what + ": type attributes (TYPE_PROTO) are not supported");
    default:
      return invalid_model(what + " has no type and no value");
  }
  return a;
}

Status Importer::graph(onnx::GraphProto& gp, ir::Graph& g, const std::string& ctx, int depth) {
  if (depth > kMaxGraphDepth)
    return invalid_model(ctx + ": subgraphs are nested more than " +
                         std::to_string(kMaxGraphDepth) + " deep");
  g.name = gp.name();
  g.doc_string = gp.doc_string();

  auto add_constant = [&](const std::string& name, Tensor t, const std::string& doc) {
    const int idx = g.add_value(name, ir::TensorType::of(t.dtype(), t.shape()));
    g.value(idx).constant = std::move(t);
    g.value(idx).doc_string = doc;
    g.initializers.push_back(idx);
  };
  for (int i = 0; i < gp.initializer_size(); ++i) {
    onnx::TensorProto& tp = *gp.mutable_initializer(i);
    if (tp.name().empty())
      return invalid_model(ctx + ": initializer #" + std::to_string(i) + " has no name");
    const std::string what = ctx + ": initializer " + quote(tp.name());
    if (g.find_value(tp.name()) != ir::kNoValue)
      return invalid_model(what + " is defined more than once");
    BRINK_ASSIGN_OR_RETURN(Tensor t, detail::tensor_from_proto(tp, base_dir_, what));
    std::string().swap(*tp.mutable_raw_data());  // clear() would keep the capacity
    add_constant(tp.name(), std::move(t), tp.doc_string());
  }
  // Sparse initializers become dense ones (export writes them dense).
  for (int i = 0; i < gp.sparse_initializer_size(); ++i) {
    const onnx::SparseTensorProto& sp = gp.sparse_initializer(i);
    const std::string& name = sp.values().name();
    if (name.empty())
      return invalid_model(ctx + ": sparse initializer #" + std::to_string(i) + " has no name");
    const std::string what = ctx + ": sparse initializer " + quote(name);
    if (g.find_value(name) != ir::kNoValue)
      return invalid_model(what + " is defined more than once");
    BRINK_ASSIGN_OR_RETURN(Tensor t, detail::tensor_from_sparse_proto(sp, base_dir_, what));
    add_constant(name, std::move(t), sp.values().doc_string());
  }

  std::unordered_set<int> listed_inputs;
  for (int i = 0; i < gp.input_size(); ++i) {
    const onnx::ValueInfoProto& vi = gp.input(i);
    if (vi.name().empty())
      return invalid_model(ctx + ": graph input #" + std::to_string(i) + " has no name");
    const std::string what = ctx + ": graph input " + quote(vi.name());
    BRINK_ASSIGN_OR_RETURN(ir::TensorType type, value_type(vi, what));
    int idx = g.find_value(vi.name());
    if (idx != ir::kNoValue && listed_inputs.count(idx))
      return invalid_model(what + " is listed more than once");
    if (idx != ir::kNoValue) {
      // An initializer also listed as an input (IR < 4 style): its type comes from the tensor.
      g.initializer_inputs.push_back(idx);
      if (!vi.doc_string().empty()) g.value(idx).doc_string = vi.doc_string();
    } else {
      idx = g.add_value(vi.name(), std::move(type));
      g.value(idx).doc_string = vi.doc_string();
      g.inputs.push_back(idx);
    }
    listed_inputs.insert(idx);
  }

  g.nodes.reserve(static_cast<size_t>(gp.node_size()));
  for (int n = 0; n < gp.node_size(); ++n) {
    onnx::NodeProto& np = *gp.mutable_node(n);
    ir::Node node;
    node.name = np.name();
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    node.doc_string = np.doc_string();
    if (node.op_type.empty())
      return invalid_model(ctx + ": node #" + std::to_string(n) + " " + quote(node.name) +
                           " has no op_type");
    node.inputs.reserve(static_cast<size_t>(np.input_size()));
    for (const std::string& name : np.input()) node.inputs.push_back(value_for(g, name));
    node.outputs.reserve(static_cast<size_t>(np.output_size()));
    for (const std::string& name : np.output()) node.outputs.push_back(value_for(g, name));
    std::unordered_set<std::string> attr_names;
    node.attributes.reserve(static_cast<size_t>(np.attribute_size()));
    for (onnx::AttributeProto& ap : *np.mutable_attribute()) {
      if (!attr_names.insert(ap.name()).second)
        return invalid_model(ctx + ": " + describe(node) + ": attribute " + quote(ap.name()) +
                             " is given more than once");
      BRINK_ASSIGN_OR_RETURN(ir::Attribute a, attribute(ap, node, ctx, depth));
      node.attributes.push_back(std::move(a));
    }
    g.nodes.push_back(std::move(node));
  }

  for (int i = 0; i < gp.output_size(); ++i) {
    const onnx::ValueInfoProto& vi = gp.output(i);
    if (vi.name().empty())
      return invalid_model(ctx + ": graph output #" + std::to_string(i) + " has no name");
    BRINK_ASSIGN_OR_RETURN(ir::TensorType type,
                           value_type(vi, ctx + ": graph output " + quote(vi.name())));
    const int idx = value_for(g, vi.name());
    declare(g.value(idx), std::move(type), vi.doc_string());
    g.outputs.push_back(idx);
  }
  std::unordered_set<int> annotated;
  for (int i = 0; i < gp.value_info_size(); ++i) {
    const onnx::ValueInfoProto& vi = gp.value_info(i);
    if (vi.name().empty())
      return invalid_model(ctx + ": value_info #" + std::to_string(i) + " has no name");
    const std::string what = ctx + ": value_info " + quote(vi.name());
    BRINK_ASSIGN_OR_RETURN(ir::TensorType type, value_type(vi, what));
    const int idx = value_for(g, vi.name());
    if (!annotated.insert(idx).second) return invalid_model(what + " is listed more than once");
    declare(g.value(idx), std::move(type), vi.doc_string());
    g.value_infos.push_back(idx);
  }
  return Status::ok();
}

Status sort_graphs(ir::Graph& g, const std::string& ctx) {
  for (const ir::Node& n : g.nodes)
    for (const ir::Attribute& a : n.attributes) {
      if (a.g) BRINK_RETURN_IF_ERROR(sort_graphs(*a.g, subgraph_context(ctx, n, a.name, -1)));
      for (size_t k = 0; k < a.graphs.size(); ++k)
        if (a.graphs[k])
          BRINK_RETURN_IF_ERROR(
              sort_graphs(*a.graphs[k], subgraph_context(ctx, n, a.name, static_cast<int>(k))));
    }
  return ir::topological_sort(g).with_context(ctx);
}

// Checks what ir::verify cannot see: subgraphs, whose nodes may use values of enclosing
// graphs by name (such a value appears in the subgraph as a value with no producer that
// is neither an input nor an initializer). A subgraph may only use an outer value that
// is defined before the node owning the subgraph.
class ScopeChecker {
 public:
  Status check(const ir::Graph& g, const std::string& ctx, bool top) {
    std::vector<char> defined(g.values.size(), 0);
    std::vector<const std::string*> added;
    auto define = [&](int v) {
      if (defined[static_cast<size_t>(v)]) return false;
      defined[static_cast<size_t>(v)] = 1;
      added.push_back(&g.value(v).name);
      ++visible_[g.value(v).name];
      return true;
    };
    auto available = [&](int v) {
      if (defined[static_cast<size_t>(v)]) return true;
      if (top || g.value(v).producer >= 0) return false;
      auto it = visible_.find(g.value(v).name);
      return it != visible_.end() && it->second > 0;
    };
    for (int v : g.inputs) define(v);
    for (int v : g.initializers) define(v);
    for (const ir::Node& n : g.nodes) {
      for (int in : n.inputs)
        if (in != ir::kNoValue && !available(in))
          return invalid_model(ctx + ": " + describe(n) + ": input " + quote(g.value(in).name) +
                               (g.value(in).producer >= 0
                                    ? " is used before the node that produces it"
                                    : " is not defined in this graph or an enclosing one"));
      for (const ir::Attribute& a : n.attributes) {
        if (a.g) BRINK_RETURN_IF_ERROR(check(*a.g, subgraph_context(ctx, n, a.name, -1), false));
        for (size_t k = 0; k < a.graphs.size(); ++k)
          if (a.graphs[k])
            BRINK_RETURN_IF_ERROR(
                check(*a.graphs[k], subgraph_context(ctx, n, a.name, static_cast<int>(k)), false));
      }
      for (int out : n.outputs)
        if (out != ir::kNoValue && !define(out))
          return invalid_model(ctx + ": " + describe(n) + ": output " + quote(g.value(out).name) +
                               " is defined more than once");
    }
    for (int out : g.outputs)
      if (!available(out))
        return invalid_model(ctx + ": graph output " + quote(g.value(out).name) +
                             " is never produced");
    for (const std::string* name : added) --visible_[*name];
    return Status::ok();
  }

 private:
  std::unordered_map<std::string, int> visible_;
};

// Imports a parsed ModelProto; tensors move out of it one at a time (import frees each
// initializer's raw bytes once copied), so the model is never held twice in full.
Result<ir::Model> import_parsed(onnx::ModelProto& mp, const std::string& base_dir,
                                const std::string& label) {
  ir::Model m;
  Importer importer(base_dir);
  Status s = importer.model(mp, m);
  if (s.is_ok()) s = sort_graphs(m.graph, "graph " + quote(m.graph.name));
  if (s.is_ok()) s = ir::verify(m).with_context("graph " + quote(m.graph.name));
  if (s.is_ok()) s = ScopeChecker().check(m.graph, "graph " + quote(m.graph.name), true);
  if (!s.is_ok()) return detail::one_line(s.with_context(label));
  return m;
}

Status parse_failed(const std::string& label, size_t size) {
  return invalid_model(label + ": not an ONNX model (protobuf parse failed on " +
                       std::to_string(size) + " bytes)");
}

Result<ir::Model> parse_model(const void* data, size_t size, const std::string& base_dir,
                              const std::string& label) {
  if (size > static_cast<size_t>(INT_MAX))
    return invalid_model(label + ": " + std::to_string(size) +
                         " bytes is more than protobuf's 2 GiB limit");
  if (!data && size > 0) return invalid_argument(label + ": null data");
  try {
    onnx::ModelProto mp;
    if (!mp.ParseFromArray(data, static_cast<int>(size))) return parse_failed(label, size);
    return import_parsed(mp, base_dir, label);
  } catch (const std::bad_alloc&) {
    return io_error(label + ": out of memory while loading the model");
  }
}

}  // namespace

Result<ir::Model> load_onnx_file(const std::string& path) {
  std::string file = detail::quote(path);  // escaped for the one-line rule, then unquoted
  file = file.substr(1, file.size() - 2);
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return not_found(file + ": file does not exist");
  if (!fs::is_regular_file(st)) return invalid_argument(file + ": not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return io_error(file + ": cannot read its size: " + ec.message());
  if (size > static_cast<uintmax_t>(INT_MAX))
    return invalid_model(file + ": " + std::to_string(size) +
                         " bytes is more than protobuf's 2 GiB limit for a model");
  std::string base_dir = fs::path(path).parent_path().string();
  if (base_dir.empty()) base_dir = ".";
  // Parsed straight from the file (no copy of its bytes next to the parsed message): with
  // the import moving tensors out one by one, loading peaks near one copy of the weights.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error(file + ": cannot open for reading: " + std::strerror(errno));
  try {
    onnx::ModelProto mp;
    bool parsed = false;
    {
      google::protobuf::io::FileInputStream stream(fd);
      stream.SetCloseOnDelete(true);
      parsed = mp.ParseFromZeroCopyStream(&stream) && stream.GetErrno() == 0;
      if (!parsed && stream.GetErrno() != 0)
        return io_error(file + ": read failed: " + std::strerror(stream.GetErrno()));
    }
    if (!parsed) return parse_failed(file, static_cast<size_t>(size));
    return import_parsed(mp, base_dir, file);
  } catch (const std::bad_alloc&) {
    return io_error(file + ": out of memory while loading the model");
  }
}

Result<ir::Model> parse_onnx_bytes(const void* data, size_t size, const std::string& base_dir) {
  return parse_model(data, size, base_dir, "<in-memory model>");
}

}  // namespace brink::onnx_io
