#include "loader/npy.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <limits>

namespace brink::npy {

namespace {

uint16_t read_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t read_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t read_u64(const uint8_t* p) {
  return read_u32(p) | (static_cast<uint64_t>(read_u32(p + 4)) << 32);
}

struct Descr {
  const char* code;
  DataType dtype;
};
constexpr Descr kDescrs[] = {
    {"f4", DataType::kFloat32}, {"f8", DataType::kFloat64}, {"f2", DataType::kFloat16},
    {"i1", DataType::kInt8},    {"u1", DataType::kUInt8},   {"i2", DataType::kInt16},
    {"u2", DataType::kUInt16},  {"i4", DataType::kInt32},   {"u4", DataType::kUInt32},
    {"i8", DataType::kInt64},   {"u8", DataType::kUInt64},  {"b1", DataType::kBool},
};

// Value of `key` in the header dict: the text after "'key':" up to the matching end.
bool find_field(const std::string& header, const std::string& key, std::string* value) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return false;
  size_t p = header.find(':', k);
  if (p == std::string::npos) return false;
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return false;
  size_t end;
  if (header[p] == '\'') {
    end = header.find('\'', p + 1);
    if (end == std::string::npos) return false;
    *value = header.substr(p + 1, end - p - 1);
  } else if (header[p] == '(') {
    end = header.find(')', p);
    if (end == std::string::npos) return false;
    *value = header.substr(p + 1, end - p - 1);
  } else {
    end = header.find_first_of(",}", p);
    if (end == std::string::npos) return false;
    *value = header.substr(p, end - p);
  }
  return true;
}

}  // namespace

Result<Tensor> parse_npy(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  auto bad = [&](const std::string& m) {
    return invalid_argument(what + ": not a valid .npy file: " + m);
  };
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) return bad("missing the \\x93NUMPY magic");
  const int major = p[6];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = read_u16(p + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return bad("truncated header");
    header_len = read_u32(p + 8);
    header_start = 12;
  } else {
    return bad("format version " + std::to_string(major) +
               " is not supported (expected 1, 2 or 3)");
  }
  if (header_len > size - header_start) return bad("header runs past the end of the file");
  const std::string header(reinterpret_cast<const char*>(p + header_start), header_len);
  std::string descr, fortran, shape_text;
  if (!find_field(header, "descr", &descr) || !find_field(header, "fortran_order", &fortran) ||
      !find_field(header, "shape", &shape_text))
    return bad("header lacks descr, fortran_order or shape");
  if (fortran.find("True") != std::string::npos)
    return invalid_argument(
        what + ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '='))
    return invalid_argument(what + ": array type '" + descr +
                            "' is not supported (expected a little-endian number or bool)");
  DataType dtype = DataType::kUndefined;
  for (const Descr& d : kDescrs)
    if (descr.compare(1, 2, d.code) == 0) dtype = d.dtype;
  if (dtype == DataType::kUndefined)
    return invalid_argument(what + ": array type '" + descr + "' is not supported");
  Shape shape;
  int64_t numel = 1;
  for (size_t begin = 0; begin <= shape_text.size();) {  // comma-separated items
    size_t end = shape_text.find(',', begin);
    if (end == std::string::npos) end = shape_text.size();
    std::string item = shape_text.substr(begin, end - begin);
    begin = end + 1;
    size_t a = item.find_first_not_of(" L");
    if (a == std::string::npos) continue;
    item = item.substr(a);
    if (item.empty() || item.find_first_not_of("0123456789 L") != std::string::npos ||
        item.size() > 15)
      return bad("shape '(" + shape_text + ")' is not a tuple of sizes");
    const int64_t d = std::stoll(item);
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / 16 / d)
      return bad("shape is too large");
    numel *= d;
    shape.push_back(d);
  }
  const size_t offset = header_start + header_len;
  const uint64_t bytes = static_cast<uint64_t>(numel) * dtype_size(dtype);
  if (bytes > size - offset)
    return bad("data is " + std::to_string(size - offset) + " bytes, the header's shape " +
               shape_to_string(shape) + " needs " + std::to_string(bytes));
  Tensor t = Tensor::empty(dtype, shape);
  if (bytes) std::memcpy(t.raw_data(), p + offset, bytes);
  if (dtype == DataType::kBool) {
    auto* b = t.data<uint8_t>();
    for (int64_t i = 0; i < numel; ++i) b[i] = b[i] ? 1 : 0;  // any nonzero byte is true
  }
  return t;
}

// <cstdio>, not iostreams, for files: this is in the device runtime (brink-run).
Result<std::string> read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return not_found(path + ": cannot open file");
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return io_error(path + ": read failed");
  return bytes;
}

Result<Tensor> read_npy(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::string serialize_npy(const Tensor& tensor) {
  const char* code = "f4";
  for (const Descr& d : kDescrs)
    if (d.dtype == tensor.dtype()) code = d.code;
  const char order = dtype_size(tensor.dtype()) == 1 ? '|' : '<';
  std::string shape;  // Python tuple syntax: "", "5,", "2, 3"
  for (size_t i = 0; i < tensor.shape().size(); ++i)
    shape += (i ? ", " : "") + std::to_string(tensor.shape()[i]);
  if (tensor.rank() == 1) shape += ",";
  std::string header = "{'descr': '" + std::string(1, order) + code +
                       "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Pad so the data starts 64-byte aligned, as NumPy does; the header ends with '\n'.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(tensor.raw_data()), tensor.nbytes());
  return out;
}

Status write_npy(const std::string& path, const Tensor& tensor) {
  const std::string bytes = serialize_npy(tensor);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return io_error(path + ": cannot open for writing");
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !written) return io_error(path + ": write failed");
  return Status::ok();
}

Result<std::vector<std::pair<std::string, Tensor>>> parse_npz(const void* data, size_t size,
                                                              const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  auto bad = [&](const std::string& m) {
    return invalid_argument(what + ": not a valid .npz file: " + m);
  };
  if (size < 22) return bad("too short for a zip archive");
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  size_t eocd = std::string::npos;
  for (size_t i = size - 22 + 1; i-- > 0 && size - i <= 22 + 65535;)
    if (read_u32(p + i) == 0x06054b50u) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) return bad("no end-of-central-directory record");
  uint64_t entries = read_u16(p + eocd + 10);
  uint64_t cd_offset = read_u32(p + eocd + 16);
  if (cd_offset == 0xffffffffu || entries == 0xffffu) {  // zip64 end record via its locator
    if (eocd < 20 || read_u32(p + eocd - 20) != 0x07064b50u) return bad("zip64 locator missing");
    const uint64_t z64 = read_u64(p + eocd - 20 + 8);
    if (size < 56 || z64 > size - 56 || read_u32(p + z64) != 0x06064b50u)
      return bad("zip64 end record missing");
    entries = read_u64(p + z64 + 32);
    cd_offset = read_u64(p + z64 + 48);
  }
  std::vector<std::pair<std::string, Tensor>> arrays;
  uint64_t pos = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (pos > size || size - pos < 46 || read_u32(p + pos) != 0x02014b50u)
      return bad("central directory is corrupt");
    const uint16_t method = read_u16(p + pos + 10);
    uint64_t csize = read_u32(p + pos + 20), usize = read_u32(p + pos + 24);
    const uint16_t name_len = read_u16(p + pos + 28), extra_len = read_u16(p + pos + 30),
                   comment_len = read_u16(p + pos + 32);
    uint64_t local = read_u32(p + pos + 42);
    if (size - pos - 46 < static_cast<uint64_t>(name_len) + extra_len + comment_len)
      return bad("central directory is corrupt");
    std::string name(reinterpret_cast<const char*>(p + pos + 46), name_len);
    // zip64 extra field: the 0xffffffff fields, in order usize, csize, local offset.
    const uint8_t* x = p + pos + 46 + name_len;
    for (size_t k = 0; k + 4 <= extra_len;) {
      const uint16_t id = read_u16(x + k), len = read_u16(x + k + 2);
      if (k + 4 + len > extra_len) break;
      if (id == 1) {
        size_t q = k + 4;
        if (usize == 0xffffffffu && q + 8 <= k + 4 + len) usize = read_u64(x + q), q += 8;
        if (csize == 0xffffffffu && q + 8 <= k + 4 + len) csize = read_u64(x + q), q += 8;
        if (local == 0xffffffffu && q + 8 <= k + 4 + len) local = read_u64(x + q);
      }
      k += 4 + len;
    }
    pos += 46 + static_cast<uint64_t>(name_len) + extra_len + comment_len;
    if (local > size || size - local < 30 || read_u32(p + local) != 0x04034b50u)
      return bad("entry '" + name + "' is corrupt");
    const uint64_t data_at = local + 30 + read_u16(p + local + 26) + read_u16(p + local + 28);
    if (data_at > size || csize > size - data_at)
      return bad("entry '" + name + "' runs past the end of the file");
    // Deflate expands at most ~1032:1, so a larger claimed size is a lie; checking it
    // before allocating keeps a hostile archive from asking for gigabytes.
    if (usize > (uint64_t{1} << 34) || (method == 8 && usize > csize * 1032 + 1024) ||
        (method == 0 && usize != csize))
      return bad("entry '" + name + "' claims an implausible size");
    std::string content;
    if (method == 0) {
      content.assign(reinterpret_cast<const char*>(p + data_at), csize);
    } else if (method == 8) {
      content.resize(usize);
      z_stream zs{};
      if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return internal_error("zlib init failed");
      zs.next_in = const_cast<Bytef*>(p + data_at);
      zs.avail_in = static_cast<uInt>(csize);
      zs.next_out = reinterpret_cast<Bytef*>(content.data());
      zs.avail_out = static_cast<uInt>(usize);
      const int rc = inflate(&zs, Z_FINISH);
      const uint64_t produced = zs.total_out;
      inflateEnd(&zs);
      if (rc != Z_STREAM_END || produced != usize)
        return bad("entry '" + name + "' does not decompress");
    } else {
      return bad("entry '" + name + "' uses compression method " + std::to_string(method) +
                 " (expected stored or deflate)");
    }
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0)
      name.resize(name.size() - 4);
    BRINK_ASSIGN_OR_RETURN(Tensor t, parse_npy(content.data(), content.size(), what + ":" + name));
    arrays.emplace_back(name, std::move(t));
  }
  return arrays;
}

Result<std::vector<std::pair<std::string, Tensor>>> read_npz(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_npz(bytes.data(), bytes.size(), path);
}

}  // namespace brink::npy
