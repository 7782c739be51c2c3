// Helpers shared by the ONNX import and export files; not part of the public API.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

#include "brink/status.h"
#include "brink/tensor.h"
#include "ir/graph.h"

namespace brink::onnx_io::detail {

// 'name' quoted for an error message: control and non-ASCII bytes escaped as \xNN and
// long names cut short, so a hostile name cannot break the one-line error rule.
std::string quote(const std::string& name);

// Makes a final error message one bounded line (escapes whatever control bytes are left).
Status one_line(const Status& s);

// "complex64 (14)", "f32 (1)", "unknown (12345)": how an ONNX element type code is named.
std::string onnx_type_name(int64_t code);

// Checks an ONNX element type code from a value's type annotation. `kString` is accepted
// (ops reject it later with their own message); undefined (0) is accepted as "unknown".
Result<DataType> value_dtype_from_onnx(int64_t code, const std::string& what);

// Converts a TensorProto. `what` names it in errors ("initializer 'w'"). External data is
// resolved against `base_dir`; an empty base_dir rejects it.
Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                                 const std::string& what);
// Converts a SparseTensorProto to a dense tensor (bounded by kMaxDenseSparseBytes).
Result<Tensor> tensor_from_sparse_proto(const onnx::SparseTensorProto& proto,
                                        const std::string& base_dir, const std::string& what);
inline constexpr uint64_t kMaxDenseSparseBytes = uint64_t{256} << 20;

// Writes dtype, dims and raw_data (little-endian); name and doc_string are the caller's.
Status tensor_to_proto(const Tensor& tensor, onnx::TensorProto* proto, const std::string& what);

}  // namespace brink::onnx_io::detail
