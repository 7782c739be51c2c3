// TensorProto <-> Tensor, including external data, plus the error-message helpers the
// importer shares.
//
// Every size is checked against the bytes that actually back the tensor (raw_data, the
// typed field's count, or the external file's range) before anything is allocated, so a
// hostile shape can never make us allocate more than the input carries. The one
// exception is a sparse tensor's dense form, which is capped at kMaxDenseSparseBytes.
#include <bit>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace brink::onnx_io {
namespace detail {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxShapeDimsShown = 8;

std::string shape_str(const google::protobuf::RepeatedField<int64_t>& dims) {
  std::string s = "[";
  for (int i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    if (i == kMaxShapeDimsShown) {
      s += "... (" + std::to_string(dims.size()) + " dims)";
      break;
    }
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

std::string type_str(DataType dtype, const google::protobuf::RepeatedField<int64_t>& dims) {
  return std::string(dtype_name(dtype)) + shape_str(dims);
}

// Element type of tensor data: only the dtypes a Brink Tensor can hold.
Result<DataType> tensor_dtype(int64_t code, const std::string& what) {
  switch (code) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
    case 9:
    case 10:
    case 11:
    case 12:
    case 13:
    case 16:
      return static_cast<DataType>(code);
    case 0:
      return invalid_model(what + ": data_type is not set");
    case 8:
      return unsupported(what + ": string tensors are not supported");
    default:
      break;
  }
  if (code >= 14 && code <= 24)
    return unsupported(what + ": element type " + onnx_type_name(code) + " is not supported");
  return invalid_model(what + ": unknown data_type " + std::to_string(code));
}

// Validates dims (non-negative, element count and byte size fit in 63 bits).
Result<Shape> checked_shape(const google::protobuf::RepeatedField<int64_t>& dims, size_t elem_size,
                            uint64_t* nbytes, const std::string& what) {
  Shape shape;
  shape.reserve(static_cast<size_t>(dims.size()));
  int64_t product = 1;  // of max(dim, 1): bounds every partial product downstream code forms
  bool has_zero = false;
  for (int i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    if (d < 0)
      return invalid_model(what + ": dims[" + std::to_string(i) + "] is " + std::to_string(d) +
                           ", expected >= 0");
    if (d == 0) has_zero = true;
    if (__builtin_mul_overflow(product, d == 0 ? 1 : d, &product))
      return invalid_model(what + ": shape " + shape_str(dims) +
                           " has more elements than fit in 64 bits");
    shape.push_back(d);
  }
  const uint64_t numel = has_zero ? 0 : static_cast<uint64_t>(product);
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(elem_size), &bytes) ||
      bytes > static_cast<uint64_t>(INT64_MAX))
    return invalid_model(what + ": shape " + shape_str(dims) +
                         " needs more bytes than fit in 63 bits");
  *nbytes = bytes;
  return shape;
}

// ONNX stores little-endian; a no-op on little-endian hosts.
void swap_if_big_endian(void* data, size_t nbytes, size_t elem_size) {
  if constexpr (std::endian::native == std::endian::big) {
    auto* p = static_cast<unsigned char*>(data);
    for (size_t i = 0; i + elem_size <= nbytes; i += elem_size)
      for (size_t a = 0, b = elem_size - 1; a < b; ++a, --b) std::swap(p[i + a], p[i + b]);
  }
}

// Copies little-endian file bytes into host order (and host order back out).
void copy_from_le(void* dst, const void* src, size_t nbytes, size_t elem_size) {
  if (nbytes == 0) return;
  std::memcpy(dst, src, nbytes);
  swap_if_big_endian(dst, nbytes, elem_size);
}

// A bool byte other than 0 or 1 is undefined behaviour once read as bool.
void normalise_bools(Tensor& t) {
  if (t.dtype() != DataType::kBool) return;
  auto* p = static_cast<unsigned char*>(t.raw_data());
  const size_t n = t.nbytes();
  for (size_t i = 0; i < n; ++i) p[i] = p[i] != 0 ? 1 : 0;
}

enum class TypedField { kFloat, kInt32, kInt64, kDouble, kUInt64 };

TypedField field_for(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return TypedField::kFloat;
    case DataType::kFloat64:
      return TypedField::kDouble;
    case DataType::kInt64:
      return TypedField::kInt64;
    case DataType::kUInt32:
    case DataType::kUInt64:
      return TypedField::kUInt64;
    default:
      return TypedField::kInt32;  // i32, i16, i8, u16, u8, bool, f16, bf16 (spec)
  }
}

const char* field_name(TypedField f) {
  switch (f) {
    case TypedField::kFloat:
      return "float_data";
    case TypedField::kInt32:
      return "int32_data";
    case TypedField::kInt64:
      return "int64_data";
    case TypedField::kDouble:
      return "double_data";
    case TypedField::kUInt64:
      return "uint64_data";
  }
  return "?";
}

int64_t field_count(const onnx::TensorProto& p, TypedField f) {
  switch (f) {
    case TypedField::kFloat:
      return p.float_data_size();
    case TypedField::kInt32:
      return p.int32_data_size();
    case TypedField::kInt64:
      return p.int64_data_size();
    case TypedField::kDouble:
      return p.double_data_size();
    case TypedField::kUInt64:
      return p.uint64_data_size();
  }
  return 0;
}

// The first typed field that holds values, or nullptr.
const char* first_typed_field_used(const onnx::TensorProto& p) {
  for (TypedField f : {TypedField::kFloat, TypedField::kInt32, TypedField::kInt64,
                       TypedField::kDouble, TypedField::kUInt64})
    if (field_count(p, f) > 0) return field_name(f);
  if (p.string_data_size() > 0) return "string_data";
  return nullptr;
}

template <typename Dst, typename Src>
void convert_values(Tensor& t, const google::protobuf::RepeatedField<Src>& src) {
  Dst* out = t.data<Dst>();
  for (int i = 0; i < src.size(); ++i) {
    if constexpr (std::is_same_v<Dst, bool>) {
      out[i] = src[i] != 0;
    } else if constexpr (std::is_same_v<Dst, Float16> || std::is_same_v<Dst, BFloat16>) {
      out[i].bits = static_cast<uint16_t>(src[i]);  // the spec stores the bit pattern
    } else {
      out[i] = static_cast<Dst>(src[i]);  // narrow ints keep their low bits, like NumPy's astype
    }
  }
}

Tensor from_typed_fields(const onnx::TensorProto& p, DataType dtype, Shape shape) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  switch (dtype) {
    case DataType::kFloat32:
      convert_values<float>(t, p.float_data());
      break;
    case DataType::kFloat64:
      convert_values<double>(t, p.double_data());
      break;
    case DataType::kInt64:
      convert_values<int64_t>(t, p.int64_data());
      break;
    case DataType::kUInt64:
      convert_values<uint64_t>(t, p.uint64_data());
      break;
    case DataType::kUInt32:
      convert_values<uint32_t>(t, p.uint64_data());
      break;
    case DataType::kInt32:
      convert_values<int32_t>(t, p.int32_data());
      break;
    case DataType::kInt16:
      convert_values<int16_t>(t, p.int32_data());
      break;
    case DataType::kUInt16:
      convert_values<uint16_t>(t, p.int32_data());
      break;
    case DataType::kInt8:
      convert_values<int8_t>(t, p.int32_data());
      break;
    case DataType::kUInt8:
      convert_values<uint8_t>(t, p.int32_data());
      break;
    case DataType::kBool:
      convert_values<bool>(t, p.int32_data());
      break;
    case DataType::kFloat16:
      convert_values<Float16>(t, p.int32_data());
      break;
    case DataType::kBFloat16:
      convert_values<BFloat16>(t, p.int32_data());
      break;
    default:
      break;  // tensor_dtype admitted nothing else
  }
  return t;
}

// Strict decimal: digits only, no sign, no overflow.
std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v))
      return std::nullopt;
  }
  return v;
}

// True when `path` is `base` or lies under it (both canonical).
bool is_within(const fs::path& base, const fs::path& path) {
  auto b = base.begin(), p = path.begin();
  for (; b != base.end(); ++b, ++p) {
    if (b->empty()) continue;  // a trailing separator yields an empty last component
    if (p == path.end() || *b != *p) return false;
  }
  return true;
}

Result<Tensor> load_external(const onnx::TensorProto& p, DataType dtype, Shape shape,
                             uint64_t nbytes, const std::string& base_dir,
                             const std::string& what) {
  std::string location;
  std::optional<uint64_t> offset, length;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      const std::optional<uint64_t> v = parse_u64(kv.value());
      if (!v)
        return invalid_model(what + ": external data " + kv.key() + " " + quote(kv.value()) +
                             " is not a non-negative integer");
      (kv.key() == "offset" ? offset : length) = v;
    }
    // "checksum" and unknown keys carry nothing we need.
  }
  if (location.empty())
    return invalid_model(what + ": data_location is EXTERNAL but external_data has no 'location'");
  const std::string loc = "external data location " + quote(location);
  if (base_dir.empty())
    return invalid_argument(what + ": " + loc +
                            " cannot be resolved: the model was not loaded from a file");
  if (location.find('\0') != std::string::npos)
    return invalid_model(what + ": " + loc + " contains a NUL byte");
  const bool drive =
      location.size() >= 2 && location[1] == ':' &&
      ((location[0] >= 'a' && location[0] <= 'z') || (location[0] >= 'A' && location[0] <= 'Z'));
  if (location[0] == '/' || location[0] == '\\' || drive)
    return invalid_model(what + ": " + loc +
                         " is an absolute path, expected a path relative to the model's folder");
  for (size_t start = 0; start <= location.size();) {
    size_t end = location.find_first_of("/\\", start);
    if (end == std::string::npos) end = location.size();
    if (location.compare(start, end - start, "..") == 0 && end - start == 2)
      return invalid_model(what + ": " + loc + " escapes the model's folder (contains '..')");
    start = end + 1;
  }
  // Symbolic links can still lead outside; compare the resolved paths.
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  if (ec)
    return io_error(what + ": cannot resolve the model's folder " + quote(base_dir) + ": " +
                    ec.message());
  const fs::path full = fs::weakly_canonical(fs::path(base_dir) / location, ec);
  if (ec) return io_error(what + ": cannot resolve " + loc + ": " + ec.message());
  if (!is_within(base, full))
    return invalid_model(what + ": " + loc + " resolves outside the model's folder");
  const fs::file_status st = fs::status(full, ec);
  if (ec || !fs::exists(st)) return not_found(what + ": " + loc + ": file does not exist");
  if (!fs::is_regular_file(st)) return invalid_model(what + ": " + loc + " is not a regular file");
  const uintmax_t file_size = fs::file_size(full, ec);
  if (ec) return io_error(what + ": " + loc + ": cannot read its size: " + ec.message());

  const uint64_t off = offset.value_or(0);
  if (off > file_size)
    return invalid_model(what + ": " + loc + " offset " + std::to_string(off) +
                         " is past the end of the file (" + std::to_string(file_size) + " bytes)");
  const uint64_t len = length.value_or(file_size - off);
  if (len != nbytes)
    return invalid_model(what + ": " + loc + " length is " + std::to_string(len) +
                         " bytes, expected " + std::to_string(nbytes) + " for " +
                         type_str(dtype, p.dims()));
  if (len > file_size - off)
    return invalid_model(what + ": " + loc + " range [" + std::to_string(off) + ", " +
                         std::to_string(off) + " + " + std::to_string(len) +
                         ") runs past the end of the file (" + std::to_string(file_size) +
                         " bytes)");

  std::ifstream in(full, std::ios::binary);
  if (!in) return io_error(what + ": cannot open " + loc);
  Tensor t = Tensor::empty(dtype, std::move(shape));
  if (len > 0) {
    in.seekg(static_cast<std::streamoff>(off));
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(len));
    if (!in || static_cast<uint64_t>(in.gcount()) != len)
      return io_error(what + ": reading " + loc + " failed");
  }
  swap_if_big_endian(t.raw_data(), len, dtype_size(dtype));
  normalise_bools(t);
  return t;
}

}  // namespace

std::string quote(const std::string& name) {
  constexpr size_t kMaxShown = 160;
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  const size_t n = std::min(name.size(), kMaxShown);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += "...(" + std::to_string(name.size()) + " bytes)";
  return out + "'";
}

Status one_line(const Status& s) {
  if (s.is_ok()) return s;
  constexpr size_t kMaxLength = 2000;
  static const char* hex = "0123456789abcdef";
  const std::string& m = s.message();
  std::string out;
  out.reserve(std::min(m.size(), kMaxLength) + 16);
  for (size_t i = 0; i < m.size() && out.size() < kMaxLength; ++i) {
    const auto c = static_cast<unsigned char>(m[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= kMaxLength && m.size() > kMaxLength) out += "...";
  return Status(s.code(), std::move(out));
}

std::string onnx_type_name(int64_t code) {
  static const char* names[] = {
      "undefined",      "float32",  "uint8",        "int8",           "uint16",
      "int16",          "int32",    "int64",        "string",         "bool",
      "float16",        "float64",  "uint32",       "uint64",         "complex64",
      "complex128",     "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
      "float8e5m2fnuz", "uint4",    "int4",         "float4e2m1",     "float8e8m0"};
  const char* n =
      code >= 0 && code < static_cast<int64_t>(std::size(names)) ? names[code] : "unknown";
  return std::string(n) + " (" + std::to_string(code) + ")";
}

Result<DataType> value_dtype_from_onnx(int64_t code, const std::string& what) {
  if (code == 0) return DataType::kUndefined;
  if (code == 8) return DataType::kString;
  auto t = tensor_dtype(code, what);
  if (!t && t.status().code() == StatusCode::kInvalidModel)
    return invalid_model(what + ": unknown elem_type " + std::to_string(code));
  return t;
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir,
                                 const std::string& what) {
  BRINK_ASSIGN_OR_RETURN(const DataType dtype, tensor_dtype(p.data_type(), what));
  if (p.has_segment())
    return unsupported(what + ": segmented tensors (field 'segment') are not supported");
  uint64_t nbytes = 0;
  BRINK_ASSIGN_OR_RETURN(Shape shape, checked_shape(p.dims(), dtype_size(dtype), &nbytes, what));
  const uint64_t numel = nbytes / dtype_size(dtype);
  const char* typed_used = first_typed_field_used(p);

  if (p.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    if (p.has_raw_data() || typed_used)
      return invalid_model(
          what + ": data_location is EXTERNAL but the tensor also has inline data (" +
          (p.has_raw_data() ? std::string("raw_data") : std::string(typed_used)) + ")");
    return load_external(p, dtype, std::move(shape), nbytes, base_dir, what);
  }
  if (p.has_raw_data()) {
    if (typed_used)
      return invalid_model(what + ": has both raw_data and " + typed_used + ", expected one");
    if (p.raw_data().size() != nbytes)
      return invalid_model(what + ": raw_data has " + std::to_string(p.raw_data().size()) +
                           " bytes, expected " + std::to_string(nbytes) + " for " +
                           type_str(dtype, p.dims()));
    Tensor t = Tensor::empty(dtype, std::move(shape));
    copy_from_le(t.raw_data(), p.raw_data().data(), nbytes, dtype_size(dtype));
    normalise_bools(t);
    return t;
  }
  const TypedField field = field_for(dtype);
  const int64_t count = field_count(p, field);
  if (count == 0 && typed_used)
    return invalid_model(what + ": a " + dtype_name(dtype) + " tensor stores its values in " +
                         typed_used + ", expected " + field_name(field) + " or raw_data");
  if (static_cast<uint64_t>(count) != numel) {
    if (count == 0)
      return invalid_model(what + ": has no data, expected " + std::to_string(numel) +
                           " values for " + type_str(dtype, p.dims()));
    return invalid_model(what + ": " + field_name(field) + " has " + std::to_string(count) +
                         " values, expected " + std::to_string(numel) + " for " +
                         type_str(dtype, p.dims()));
  }
  return from_typed_fields(p, dtype, std::move(shape));
}

Result<Tensor> tensor_from_sparse_proto(const onnx::SparseTensorProto& sp,
                                        const std::string& base_dir, const std::string& what) {
  if (!sp.has_values()) return invalid_model(what + ": sparse tensor has no values");
  BRINK_ASSIGN_OR_RETURN(Tensor values,
                         tensor_from_proto(sp.values(), base_dir, what + " (values)"));
  const DataType dtype = values.dtype();
  const size_t esize = dtype_size(dtype);
  uint64_t dense_bytes = 0;
  BRINK_ASSIGN_OR_RETURN(Shape dims, checked_shape(sp.dims(), esize, &dense_bytes, what));
  if (dense_bytes > kMaxDenseSparseBytes)
    return unsupported(what + ": the dense form of this sparse tensor is " +
                       std::to_string(dense_bytes) + " bytes, more than the " +
                       std::to_string(kMaxDenseSparseBytes >> 20) + " MiB Brink accepts");
  if (values.rank() != 1)
    return invalid_model(what + ": sparse values have rank " + std::to_string(values.rank()) +
                         ", expected 1");
  const int64_t nnz = values.dim(0);
  const int64_t rank = static_cast<int64_t>(dims.size());
  const int64_t numel = shape_numel(dims);
  Tensor indices;
  if (sp.has_indices()) {
    BRINK_ASSIGN_OR_RETURN(indices, tensor_from_proto(sp.indices(), base_dir, what + " (indices)"));
  } else if (nnz > 0) {
    return invalid_model(what + ": sparse tensor has " + std::to_string(nnz) +
                         " values but no indices");
  }
  const bool linear = nnz == 0 || (indices.rank() == 1 && indices.dim(0) == nnz);
  const bool coords =
      !linear && indices.rank() == 2 && indices.dim(0) == nnz && indices.dim(1) == rank;
  if (nnz > 0 && indices.dtype() != DataType::kInt64)
    return invalid_model(what + ": sparse indices have type " + dtype_name(indices.dtype()) +
                         ", expected i64");
  if (!linear && !coords)
    return invalid_model(what + ": sparse indices have shape " + shape_to_string(indices.shape()) +
                         ", expected [" + std::to_string(nnz) + "] or [" + std::to_string(nnz) +
                         ", " + std::to_string(rank) + "]");
  Tensor dense = Tensor::zeros(dtype, dims);
  auto* out = static_cast<unsigned char*>(dense.raw_data());
  const auto* in = static_cast<const unsigned char*>(values.raw_data());
  for (int64_t k = 0; k < nnz; ++k) {
    int64_t pos = 0;
    if (linear) {
      pos = indices.data<int64_t>()[k];
      if (pos < 0 || pos >= numel)
        return invalid_model(what + ": sparse index " + std::to_string(pos) + " is outside [0, " +
                             std::to_string(numel) + ")");
    } else {
      for (int64_t a = 0; a < rank; ++a) {
        const int64_t c = indices.data<int64_t>()[k * rank + a];
        if (c < 0 || c >= dims[static_cast<size_t>(a)])
          return invalid_model(what + ": sparse index " + std::to_string(c) + " on axis " +
                               std::to_string(a) + " is outside [0, " +
                               std::to_string(dims[static_cast<size_t>(a)]) + ")");
        pos = pos * dims[static_cast<size_t>(a)] + c;
      }
    }
    std::memcpy(out + static_cast<size_t>(pos) * esize, in + static_cast<size_t>(k) * esize, esize);
  }
  return dense;
}

Status tensor_to_proto(const Tensor& t, onnx::TensorProto* proto, const std::string& what) {
  if (!dtype_is_supported(t.dtype()))
    return invalid_argument(what + ": cannot export a tensor of type " + dtype_name(t.dtype()));
  for (int64_t d : t.shape()) {
    if (d < 0)
      return invalid_argument(what + ": cannot export a tensor with shape " +
                              shape_to_string(t.shape()));
    proto->add_dims(d);
  }
  proto->set_data_type(static_cast<int32_t>(t.dtype()));
  const size_t nbytes = t.nbytes();
  std::string* raw = proto->mutable_raw_data();
  raw->resize(nbytes);
  if (nbytes > 0) {
    if (!t.raw_data()) return invalid_argument(what + ": tensor has no data");
    // Host to little-endian is the same swap as little-endian to host.
    copy_from_le(raw->data(), t.raw_data(), nbytes, dtype_size(t.dtype()));
  }
  return Status::ok();
}

}  // namespace detail

Result<Tensor> parse_tensor_proto(const void* data, size_t size, std::string* name) {
  if (size > static_cast<size_t>(INT_MAX))
    return invalid_argument("TensorProto: " + std::to_string(size) +
                            " bytes is more than protobuf's 2 GiB limit");
  if (!data && size > 0) return invalid_argument("TensorProto: null data");
  onnx::TensorProto p;
  if (!p.ParseFromArray(data, static_cast<int>(size)))
    return invalid_model("TensorProto: not a valid serialized TensorProto (" +
                         std::to_string(size) + " bytes; protobuf parse failed)");
  auto t = detail::tensor_from_proto(p, "", "TensorProto " + detail::quote(p.name()));
  if (!t) return detail::one_line(t.status());
  if (name) *name = p.name();
  return t;
}

Result<std::string> serialize_tensor_proto(const Tensor& tensor, const std::string& name) {
  onnx::TensorProto p;
  BRINK_RETURN_IF_ERROR(detail::tensor_to_proto(tensor, &p, "tensor " + detail::quote(name)));
  p.set_name(name);
  if (p.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    return invalid_argument("tensor " + detail::quote(name) +
                            " is more than protobuf's 2 GiB limit");
  std::string out;
  if (!p.SerializeToString(&out))
    return internal_error("tensor " + detail::quote(name) + ": serialization failed");
  return out;
}

}  // namespace brink::onnx_io
