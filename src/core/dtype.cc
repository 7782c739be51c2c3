#include "brink/dtype.h"

#include <cmath>

namespace brink {

namespace {
struct DTypeInfo {
  DataType type;
  size_t size;
  const char* short_name;
  const char* long_name;
};
constexpr DTypeInfo kDTypes[] = {
    {DataType::kFloat32, 4, "f32", "float32"}, {DataType::kUInt8, 1, "u8", "uint8"},
    {DataType::kInt8, 1, "i8", "int8"},        {DataType::kUInt16, 2, "u16", "uint16"},
    {DataType::kInt16, 2, "i16", "int16"},     {DataType::kInt32, 4, "i32", "int32"},
    {DataType::kInt64, 8, "i64", "int64"},     {DataType::kString, 0, "string", "string"},
    {DataType::kBool, 1, "bool", "bool"},      {DataType::kFloat16, 2, "f16", "float16"},
    {DataType::kFloat64, 8, "f64", "float64"}, {DataType::kUInt32, 4, "u32", "uint32"},
    {DataType::kUInt64, 8, "u64", "uint64"},   {DataType::kBFloat16, 2, "bf16", "bfloat16"},
};
const DTypeInfo* find(DataType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return &d;
  return nullptr;
}
}  // namespace

size_t dtype_size(DataType t) {
  const DTypeInfo* d = find(t);
  return d ? d->size : 0;
}
const char* dtype_name(DataType t) {
  const DTypeInfo* d = find(t);
  return d ? d->short_name : "undefined";
}
const char* dtype_long_name(DataType t) {
  const DTypeInfo* d = find(t);
  return d ? d->long_name : "undefined";
}
std::optional<DataType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypes)
    if (name == d.short_name || name == d.long_name) return d.type;
  if (name == "float") return DataType::kFloat32;
  if (name == "double") return DataType::kFloat64;
  return std::nullopt;
}
bool dtype_is_supported(DataType t) {
  return dtype_size(t) != 0;
}
bool dtype_is_float(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 ||
         t == DataType::kBFloat16;
}
bool dtype_is_integer(DataType t) {
  switch (t) {
    case DataType::kInt8:
    case DataType::kUInt8:
    case DataType::kInt16:
    case DataType::kUInt16:
    case DataType::kInt32:
    case DataType::kUInt32:
    case DataType::kInt64:
    case DataType::kUInt64:
      return true;
    default:
      return false;
  }
}

// Round-to-nearest-even conversion handling subnormals, infinities and NaN.
uint16_t Float16::from_float(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (x < 0x38800000u) {                                               // subnormal or zero
    if (x < 0x33000000u) return static_cast<uint16_t>(sign);           // rounds to zero
    const uint32_t exp = x >> 23;
    const uint32_t mant = (x & 0x7fffffu) | 0x800000u;
    // The value in units of 2^-24 (the half subnormal step) is mant * 2^(exp - 126).
    const uint32_t shift = 126 - exp;  // 14..24 bits dropped
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t h = ((x >> 13) - (112u << 10));
  const uint32_t rem = x & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float Float16::to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace brink
