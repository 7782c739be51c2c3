// ONNX import and export: the bridge between ONNX protobuf files and the Brink IR.
//
// Import keeps everything the file carries (names, doc strings, metadata, value_info,
// initializer order) so export(import(m)) re-imports to an identical IR. External data
// (tensors stored beside the model) is read relative to the model file's folder, and
// rejected if its location escapes that folder or its range runs past the file's end.
//
// What the IR cannot hold is refused with kUnsupported: model-local functions, sequence /
// map / optional / sparse value types, string tensors, complex and float8 element types,
// sparse-tensor and type-proto attributes. Sparse initializers become dense initializers.
// training_info, quantization_annotation, type denotations and the names of tensors held
// in attributes are dropped (they do not change what the model computes).
//
// Subgraphs (If / Loop / Scan bodies) may use values of enclosing graphs by name, as ONNX
// allows: such a value appears in the subgraph's Graph as a Value with that name, no
// producer, and is neither an input nor an initializer; the executor resolves it in the
// enclosing scope. Import checks that every such name is defined in an enclosing graph
// before the node that owns the subgraph.
#pragma once

#include <cstddef>
#include <string>

#include "brink/status.h"
#include "brink/tensor.h"
#include "ir/graph.h"

namespace brink::onnx_io {

// Reads and converts a .onnx file. Errors name the file, and the offending node,
// tensor or field.
Result<ir::Model> load_onnx_file(const std::string& path);
// Converts serialized ModelProto bytes. `base_dir` resolves external data ("" = none allowed).
Result<ir::Model> parse_onnx_bytes(const void* data, size_t size, const std::string& base_dir = "");

// Serializes the model. Everything is stored inline.
Result<std::string> serialize_onnx(const ir::Model& model);
Status save_onnx_file(const ir::Model& model, const std::string& path);

// A serialized TensorProto (as in the ONNX test data's input_N.pb) to a Tensor;
// `name` receives the proto's name when non-null.
Result<Tensor> parse_tensor_proto(const void* data, size_t size, std::string* name = nullptr);
Result<std::string> serialize_tensor_proto(const Tensor& tensor, const std::string& name);

}  // namespace brink::onnx_io
