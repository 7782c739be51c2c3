// Element types. The numeric codes are ONNX's TensorProto.DataType values, so a dtype
// read from a model needs no translation table.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace brink {

enum class DataType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // recognised so errors can name it; no kernel supports it
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

// Bytes per element; 0 for kUndefined and kString.
size_t dtype_size(DataType t);
// Short lowercase name: "f32", "u8", "i64", "bool", ...
const char* dtype_name(DataType t);
// ONNX-style name as ORT and NumPy users know it: "float32", "int64", "float16", ...
const char* dtype_long_name(DataType t);
// Parses either name form; nullopt if unknown.
std::optional<DataType> dtype_from_name(std::string_view name);
// True for the element types Brink tensors can hold (everything but undefined/string).
bool dtype_is_supported(DataType t);
bool dtype_is_float(DataType t);  // f16, bf16, f32, f64
bool dtype_is_integer(DataType t);

// IEEE 754 half precision, stored as its bit pattern; arithmetic goes through float.
struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  Float16(float f) : bits(from_float(f)) {}          // NOLINT: implicit like a builtin float type
  operator float() const { return to_float(bits); }  // NOLINT
  static uint16_t from_float(float f);
  static float to_float(uint16_t h);
};

// bfloat16: the upper half of a float32, rounded to nearest even.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(from_float(f)) {}         // NOLINT
  operator float() const { return to_float(bits); }  // NOLINT
  static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }
  static float to_float(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <typename T>
struct DataTypeOf;
#define BRINK_DTYPE_OF(T, E)                       \
  template <>                                      \
  struct DataTypeOf<T> {                           \
    static constexpr DataType value = DataType::E; \
  };
BRINK_DTYPE_OF(float, kFloat32)
BRINK_DTYPE_OF(double, kFloat64)
BRINK_DTYPE_OF(Float16, kFloat16)
BRINK_DTYPE_OF(BFloat16, kBFloat16)
BRINK_DTYPE_OF(int8_t, kInt8)
BRINK_DTYPE_OF(uint8_t, kUInt8)
BRINK_DTYPE_OF(int16_t, kInt16)
BRINK_DTYPE_OF(uint16_t, kUInt16)
BRINK_DTYPE_OF(int32_t, kInt32)
BRINK_DTYPE_OF(uint32_t, kUInt32)
BRINK_DTYPE_OF(int64_t, kInt64)
BRINK_DTYPE_OF(uint64_t, kUInt64)
BRINK_DTYPE_OF(bool, kBool)
#undef BRINK_DTYPE_OF

template <typename T>
inline constexpr DataType dtype_of = DataTypeOf<T>::value;

// Calls `fn.template operator()<T>()` with T the C++ type of `t`, e.g.
//   visit_dtype(t, [&]<typename T>() { ... });
// Returns false (without calling) for undefined/string.
template <typename Fn>
bool visit_dtype(DataType t, Fn&& fn) {
  switch (t) {
    case DataType::kFloat32:
      fn.template operator()<float>();
      return true;
    case DataType::kFloat64:
      fn.template operator()<double>();
      return true;
    case DataType::kFloat16:
      fn.template operator()<Float16>();
      return true;
    case DataType::kBFloat16:
      fn.template operator()<BFloat16>();
      return true;
    case DataType::kInt8:
      fn.template operator()<int8_t>();
      return true;
    case DataType::kUInt8:
      fn.template operator()<uint8_t>();
      return true;
    case DataType::kInt16:
      fn.template operator()<int16_t>();
      return true;
    case DataType::kUInt16:
      fn.template operator()<uint16_t>();
      return true;
    case DataType::kInt32:
      fn.template operator()<int32_t>();
      return true;
    case DataType::kUInt32:
      fn.template operator()<uint32_t>();
      return true;
    case DataType::kInt64:
      fn.template operator()<int64_t>();
      return true;
    case DataType::kUInt64:
      fn.template operator()<uint64_t>();
      return true;
    case DataType::kBool:
      fn.template operator()<bool>();
      return true;
    default:
      return false;
  }
}

// The type arithmetic on T is done in: float for the 16-bit floats, T otherwise.
template <typename T>
struct ComputeTypeOf {
  using type = T;
};
template <>
struct ComputeTypeOf<Float16> {
  using type = float;
};
template <>
struct ComputeTypeOf<BFloat16> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeTypeOf<T>::type;

}  // namespace brink
