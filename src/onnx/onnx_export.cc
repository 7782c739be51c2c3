// ir::Model -> ModelProto.
//
// Writes back everything import keeps, so export(import(export(import(x)))) has the same
// bytes as export(import(x)). Tensors are written as raw_data (little-endian), never as
// external data. Optional string fields are only set when non-empty, so an absent field
// and an empty one serialize alike.
#include <climits>
#include <cstring>
#include <fstream>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace brink::onnx_io {
namespace {

using detail::quote;

constexpr int kMaxGraphDepth = 64;

class Exporter {
 public:
  Status graph(const ir::Graph& g, onnx::GraphProto* gp, const std::string& ctx, int depth);

 private:
  Result<std::string> name_of(const ir::Graph& g, int idx, const std::string& where);
  Status value_info(const ir::Graph& g, int idx, onnx::ValueInfoProto* vi,
                    const std::string& where);
  Status attribute(const ir::Attribute& a, onnx::AttributeProto* ap, const std::string& ctx,
                   int depth);
};

Result<std::string> Exporter::name_of(const ir::Graph& g, int idx, const std::string& where) {
  if (idx == ir::kNoValue) return std::string();
  if (idx < 0 || static_cast<size_t>(idx) >= g.values.size())
    return invalid_argument(where + ": value index " + std::to_string(idx) +
                            " is out of range [0, " + std::to_string(g.values.size()) + ")");
  return g.value(idx).name;
}

Status Exporter::value_info(const ir::Graph& g, int idx, onnx::ValueInfoProto* vi,
                            const std::string& where) {
  if (idx == ir::kNoValue) return invalid_argument(where + ": refers to no value");
  BRINK_ASSIGN_OR_RETURN(std::string name, name_of(g, idx, where));
  const ir::Value& v = g.value(idx);
  vi->set_name(name);
  if (!v.doc_string.empty()) vi->set_doc_string(v.doc_string);
  if (v.type.dtype == DataType::kUndefined && !v.type.dims) return Status::ok();
  onnx::TypeProto::Tensor* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.type.dtype));
  if (!v.type.dims) return Status::ok();
  onnx::TensorShapeProto* shape = tt->mutable_shape();
  for (const ir::Dim& d : *v.type.dims) {
    onnx::TensorShapeProto::Dimension* pd = shape->add_dim();
    if (d.known()) {
      pd->set_dim_value(d.value);
    } else if (!d.param.empty()) {
      pd->set_dim_param(d.param);
    }
  }
  return Status::ok();
}

Status Exporter::attribute(const ir::Attribute& a, onnx::AttributeProto* ap, const std::string& ctx,
                           int depth) {
  using A = onnx::AttributeProto;
  const std::string what = ctx + ": attribute " + quote(a.name);
  ap->set_name(a.name);
  if (!a.doc_string.empty()) ap->set_doc_string(a.doc_string);
  if (!a.ref_attr_name.empty()) ap->set_ref_attr_name(a.ref_attr_name);
  switch (a.type) {
    case ir::AttrType::kFloat:
      ap->set_type(A::FLOAT);
      ap->set_f(a.f);
      break;
    case ir::AttrType::kInt:
      ap->set_type(A::INT);
      ap->set_i(a.i);
      break;
    case ir::AttrType::kString:
      ap->set_type(A::STRING);
      ap->set_s(a.s);
      break;
    case ir::AttrType::kTensor:
      ap->set_type(A::TENSOR);
      BRINK_RETURN_IF_ERROR(detail::tensor_to_proto(a.t, ap->mutable_t(), what));
      break;
    case ir::AttrType::kGraph:
      ap->set_type(A::GRAPH);
      if (!a.g) return invalid_argument(what + " has type graph but no graph");
      BRINK_RETURN_IF_ERROR(graph(*a.g, ap->mutable_g(), what, depth + 1));
      break;
    case ir::AttrType::kFloats:
      ap->set_type(A::FLOATS);
      ap->mutable_floats()->Add(a.floats.begin(), a.floats.end());
      break;
    case ir::AttrType::kInts:
      ap->set_type(A::INTS);
      ap->mutable_ints()->Add(a.ints.begin(), a.ints.end());
      break;
    case ir::AttrType::kStrings:
      ap->set_type(A::STRINGS);
      for (const std::string& s : a.strings) ap->add_strings(s);
      break;
    case ir::AttrType::kTensors:
      ap->set_type(A::TENSORS);
      for (size_t k = 0; k < a.tensors.size(); ++k)
        BRINK_RETURN_IF_ERROR(detail::tensor_to_proto(a.tensors[k], ap->add_tensors(),
                                                      what + " tensor #" + std::to_string(k)));
      break;
    case ir::AttrType::kGraphs:
      ap->set_type(A::GRAPHS);
      for (size_t k = 0; k < a.graphs.size(); ++k) {
        if (!a.graphs[k])
          return invalid_argument(what + " graph #" + std::to_string(k) + " is null");
        BRINK_RETURN_IF_ERROR(
            graph(*a.graphs[k], ap->add_graphs(), what + "[" + std::to_string(k) + "]", depth + 1));
      }
      break;
  }
  return Status::ok();
}

Status Exporter::graph(const ir::Graph& g, onnx::GraphProto* gp, const std::string& ctx,
                       int depth) {
  if (depth > kMaxGraphDepth)
    return invalid_argument(ctx + ": subgraphs are nested more than " +
                            std::to_string(kMaxGraphDepth) + " deep");
  if (!g.name.empty()) gp->set_name(g.name);
  if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
  for (const ir::Node& n : g.nodes) {
    const std::string where = ctx + ": node " + quote(n.name) + " (" + n.op_type + ")";
    onnx::NodeProto* np = gp->add_node();
    for (int in : n.inputs) {
      BRINK_ASSIGN_OR_RETURN(std::string name, name_of(g, in, where));
      np->add_input(std::move(name));
    }
    for (int out : n.outputs) {
      BRINK_ASSIGN_OR_RETURN(std::string name, name_of(g, out, where));
      np->add_output(std::move(name));
    }
    if (!n.name.empty()) np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const ir::Attribute& a : n.attributes)
      BRINK_RETURN_IF_ERROR(attribute(a, np->add_attribute(), where, depth));
    if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
  }
  // Inputs that are not initializers first, then initializers the file also listed as inputs.
  for (int idx : g.inputs)
    BRINK_RETURN_IF_ERROR(value_info(g, idx, gp->add_input(), ctx + ": graph input"));
  for (int idx : g.initializer_inputs)
    BRINK_RETURN_IF_ERROR(value_info(g, idx, gp->add_input(), ctx + ": initializer input"));
  for (int idx : g.outputs)
    BRINK_RETURN_IF_ERROR(value_info(g, idx, gp->add_output(), ctx + ": graph output"));
  for (int idx : g.initializers) {
    BRINK_ASSIGN_OR_RETURN(std::string name, name_of(g, idx, ctx + ": initializer"));
    const ir::Value& v = g.value(idx);
    const std::string what = ctx + ": initializer " + quote(name);
    if (!v.constant) return invalid_argument(what + " has no constant value");
    onnx::TensorProto* tp = gp->add_initializer();
    BRINK_RETURN_IF_ERROR(detail::tensor_to_proto(*v.constant, tp, what));
    tp->set_name(name);
    if (!v.doc_string.empty()) tp->set_doc_string(v.doc_string);
  }
  for (int idx : g.value_infos)
    BRINK_RETURN_IF_ERROR(value_info(g, idx, gp->add_value_info(), ctx + ": value_info"));
  return Status::ok();
}

Result<onnx::ModelProto> to_proto(const ir::Model& m) {
  onnx::ModelProto mp;
  mp.set_ir_version(m.ir_version);
  for (const ir::OperatorSetId& o : m.opset_imports) {
    onnx::OperatorSetIdProto* op = mp.add_opset_import();
    op->set_domain(o.domain == "ai.onnx" ? "" : o.domain);
    op->set_version(o.version);
  }
  if (!m.producer_name.empty()) mp.set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) mp.set_producer_version(m.producer_version);
  if (!m.domain.empty()) mp.set_domain(m.domain);
  if (m.model_version != 0) mp.set_model_version(m.model_version);
  if (!m.doc_string.empty()) mp.set_doc_string(m.doc_string);
  for (const auto& [key, value] : m.metadata_props) {
    onnx::StringStringEntryProto* kv = mp.add_metadata_props();
    kv->set_key(key);
    kv->set_value(value);
  }
  BRINK_RETURN_IF_ERROR(
      Exporter().graph(m.graph, mp.mutable_graph(), "graph " + quote(m.graph.name), 0));
  return mp;
}

}  // namespace

Result<std::string> serialize_onnx(const ir::Model& model) {
  BRINK_ASSIGN_OR_RETURN(onnx::ModelProto mp, to_proto(model));
  const size_t size = mp.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    return invalid_argument(
        "the model is " + std::to_string(size) +
        " bytes serialized, more than protobuf's 2 GiB limit for one ONNX file");
  std::string out;
  if (!mp.SerializeToString(&out)) return internal_error("ModelProto serialization failed");
  return out;
}

Status save_onnx_file(const ir::Model& model, const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(std::string bytes, serialize_onnx(model));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return io_error(path + ": cannot open for writing: " + std::strerror(errno));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return io_error(path + ": write failed: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace brink::onnx_io
