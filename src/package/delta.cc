#include "package/delta.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include <zlib.h>

#include "core/memory.h"
#include "package/atomic_file.h"
#include "package/package.h"
#include "package/signing.h"

namespace brink::package {
namespace {

constexpr char kDeltaMagic[8] = {'B', 'R', 'I', 'N', 'K', 'D', 'L', 'T'};
constexpr uint16_t kDeltaMajor = 2;  // 1 when the delta holds no patch (readers of 1 read it)
constexpr size_t kDeltaHeader = 16 + 32 + 32 + 8 + 8;

Result<std::vector<uint8_t>> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, path + ": cannot open");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

Status write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  return write_file_atomically(path, [&](std::FILE* f) {
    return std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  });
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

enum OpKind : uint8_t { kCopy = 0, kLiteral = 1, kPatch = 2 };

struct Op {
  OpKind kind;
  uint64_t offset, size;        // copy: range of OLD; literal: range of NEW; patch: range of OLD
  std::vector<uint8_t> packed;  // patch: the compressed differences
};

// A patch's payload: NEW - OLD in little-endian 32-bit words (mod 2^32), split into four byte
// planes (every word's byte 0, then every byte 1, ...), then the size % 4 trailing bytes as
// byte differences, all deflated. A retrained float weight keeps its sign and exponent and
// most of its high mantissa bits, so the high planes are nearly all zero and deflate well.
std::vector<uint8_t> word_differences(const uint8_t* old_bytes, const uint8_t* new_bytes,
                                      size_t size) {
  const size_t words = size / 4;
  std::vector<uint8_t> planes(size);
  for (size_t i = 0; i < words; ++i) {
    uint32_t a, b;
    std::memcpy(&a, old_bytes + 4 * i, 4);
    std::memcpy(&b, new_bytes + 4 * i, 4);
    const uint32_t d = b - a;
    for (size_t k = 0; k < 4; ++k) planes[k * words + i] = static_cast<uint8_t>(d >> (8 * k));
  }
  for (size_t i = 4 * words; i < size; ++i)
    planes[i] = static_cast<uint8_t>(new_bytes[i] - old_bytes[i]);
  return planes;
}

// The inverse: `out` (size bytes) = OLD + the differences.
void add_differences(const uint8_t* old_bytes, const uint8_t* planes, size_t size, uint8_t* out) {
  const size_t words = size / 4;
  for (size_t i = 0; i < words; ++i) {
    uint32_t a, d = 0;
    std::memcpy(&a, old_bytes + 4 * i, 4);
    for (size_t k = 0; k < 4; ++k) d |= static_cast<uint32_t>(planes[k * words + i]) << (8 * k);
    const uint32_t b = a + d;
    std::memcpy(out + 4 * i, &b, 4);
  }
  for (size_t i = 4 * words; i < size; ++i) out[i] = static_cast<uint8_t>(old_bytes[i] + planes[i]);
}

// Deflated patch payload, or empty when it would not be smaller than the bytes themselves.
std::vector<uint8_t> make_patch(const uint8_t* old_bytes, const uint8_t* new_bytes, size_t size) {
  const std::vector<uint8_t> planes = word_differences(old_bytes, new_bytes, size);
  uLongf packed_size = compressBound(static_cast<uLong>(size));
  std::vector<uint8_t> packed(packed_size);
  if (compress2(packed.data(), &packed_size, planes.data(), static_cast<uLong>(size), 6) != Z_OK ||
      packed_size + 24 >= size)
    return {};
  packed.resize(packed_size);
  return packed;
}

// Inflates exactly `size` bytes from `packed`, all of it; false when it is not that.
bool inflate_exactly(const uint8_t* packed, size_t packed_size, uint8_t* out, size_t size) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return false;
  z.next_in = const_cast<Bytef*>(packed);
  z.avail_in = static_cast<uInt>(packed_size);
  z.next_out = out;
  z.avail_out = static_cast<uInt>(size);
  const int rc = inflate(&z, Z_FINISH);
  const bool ok = rc == Z_STREAM_END && z.avail_in == 0 && z.avail_out == 0;
  inflateEnd(&z);
  return ok;
}

// Verifies exactly the bytes the delta is made from (read once; the reader wants them
// 64-byte aligned, as a mapping is).
Result<std::unique_ptr<Package>> open_checked(const std::vector<uint8_t>& bytes,
                                              const std::string& path) {
  std::shared_ptr<void> aligned = shared_aligned(std::max<size_t>(bytes.size(), 1));
  if (!bytes.empty()) std::memcpy(aligned.get(), bytes.data(), bytes.size());
  VerifyOptions v;
  v.check_target = false;
  v.all_chunks = true;  // fallback chunks too: a delta is made from and checked against all
  return open_package_memory(std::move(aligned), bytes.size(), path, v);
}

}  // namespace

Result<DeltaSummary> make_delta(const std::string& old_path, const std::string& new_path,
                                const std::string& delta_path) {
  BRINK_ASSIGN_OR_RETURN(auto old_bytes, read_all(old_path));
  BRINK_ASSIGN_OR_RETURN(auto new_bytes, read_all(new_path));
  BRINK_ASSIGN_OR_RETURN(auto old_pkg, open_checked(old_bytes, old_path));
  BRINK_ASSIGN_OR_RETURN(auto new_pkg, open_checked(new_bytes, new_path));

  std::map<std::pair<std::string, uint64_t>, uint64_t> old_chunks;  // (hash, size) -> offset
  for (const ChunkInfo& c : old_pkg->info().chunks) old_chunks[{c.sha256_hex, c.size}] = c.offset;
  const std::vector<ChunkInfo>& old_list = old_pkg->info().chunks;

  DeltaSummary s;
  std::vector<Op> ops;
  auto literal = [&](uint64_t begin, uint64_t end) {
    if (end <= begin) return;
    if (!ops.empty() && ops.back().kind == kLiteral && ops.back().offset + ops.back().size == begin)
      ops.back().size += end - begin;
    else
      ops.push_back({kLiteral, begin, end - begin, {}});
  };
  uint64_t pos = 0;
  bool patched = false;
  const std::vector<ChunkInfo>& new_list = new_pkg->info().chunks;
  for (size_t ci = 0; ci < new_list.size(); ++ci) {
    const ChunkInfo& c = new_list[ci];
    literal(pos, c.offset);
    ++s.total_chunks;
    auto it = old_chunks.find({c.sha256_hex, c.size});
    if (it != old_chunks.end() && c.size > 0) {
      ops.push_back({kCopy, it->second, c.size, {}});
    } else {
      ++s.changed_chunks;
      // A changed chunk whose place OLD has too, with the same kind and size (a layer's
      // weights, retrained): its differences from that chunk, when they deflate smaller. Not
      // for encrypted chunks: ciphertexts share nothing.
      std::vector<uint8_t> packed;
      if (ci < old_list.size() && old_list[ci].size == c.size && old_list[ci].kind == c.kind &&
          !new_pkg->info().encrypted && !old_pkg->info().encrypted)
        packed = make_patch(old_bytes.data() + old_list[ci].offset, new_bytes.data() + c.offset,
                            static_cast<size_t>(c.size));
      if (!packed.empty()) {
        ops.push_back({kPatch, old_list[ci].offset, c.size, std::move(packed)});
        patched = true;
        ++s.patched_chunks;
      } else {
        literal(c.offset, c.offset + c.size);
      }
    }
    pos = c.offset + c.size;
  }
  literal(pos, new_bytes.size());

  std::vector<uint8_t> out(kDeltaMagic, kDeltaMagic + 8);
  const uint16_t major = patched ? kDeltaMajor : 1;
  out.push_back(static_cast<uint8_t>(major & 0xff));
  out.push_back(static_cast<uint8_t>(major >> 8));
  out.insert(out.end(), 6, 0);  // minor 0, reserved
  const Sha256 old_hash = sha256(old_bytes.data(), old_bytes.size());
  const Sha256 new_hash = sha256(new_bytes.data(), new_bytes.size());
  out.insert(out.end(), old_hash.begin(), old_hash.end());
  out.insert(out.end(), new_hash.begin(), new_hash.end());
  put_u64(out, new_bytes.size());
  put_u64(out, ops.size());
  for (const Op& op : ops) {
    out.push_back(op.kind);
    if (op.kind == kCopy) {
      put_u64(out, op.offset);
      put_u64(out, op.size);
      s.copied_bytes += static_cast<int64_t>(op.size);
    } else if (op.kind == kPatch) {
      put_u64(out, op.offset);
      put_u64(out, op.size);
      put_u64(out, op.packed.size());
      out.insert(out.end(), op.packed.begin(), op.packed.end());
      s.patched_bytes += static_cast<int64_t>(op.size);
      s.literal_bytes += static_cast<int64_t>(op.packed.size());
    } else {
      put_u64(out, op.size);
      out.insert(out.end(), new_bytes.begin() + static_cast<std::ptrdiff_t>(op.offset),
                 new_bytes.begin() + static_cast<std::ptrdiff_t>(op.offset + op.size));
      s.literal_bytes += static_cast<int64_t>(op.size);
    }
  }
  BRINK_RETURN_IF_ERROR(write_atomically(delta_path, out));
  s.delta_bytes = static_cast<int64_t>(out.size());
  s.new_bytes = static_cast<int64_t>(new_bytes.size());
  return s;
}

Result<std::vector<uint8_t>> apply_delta_bytes(const std::vector<uint8_t>& old_bytes,
                                               const std::vector<uint8_t>& delta,
                                               const std::string& what) {
  auto bad = [&](const std::string& m) {
    return Status(StatusCode::kInvalidModel, what + ": " + m);
  };
  if (delta.size() < kDeltaHeader || std::memcmp(delta.data(), kDeltaMagic, 8) != 0)
    return bad("not a Brink delta (no BRINKDLT header)");
  const uint16_t major = static_cast<uint16_t>(delta[8] | (delta[9] << 8));
  if (major != 1 && major != kDeltaMajor)
    return Status(StatusCode::kUnsupported, what + ": delta format " + std::to_string(major) +
                                                " is not one this reader knows (1 or 2)");
  const uint8_t* old_hash = delta.data() + 16;
  const uint8_t* new_hash = delta.data() + 48;
  const uint64_t new_size = get_u64(delta.data() + 80);
  const uint64_t count = get_u64(delta.data() + 88);
  const Sha256 have = sha256(old_bytes.data(), old_bytes.size());
  if (std::memcmp(have.data(), old_hash, 32) != 0)
    return bad("made for another base package (SHA-256 " + to_hex(old_hash, 8) +
               "..., this one is " + to_hex(have.data(), 8) + "...)");
  if (new_size > (uint64_t{1} << 40)) return bad("the result's size is implausible");
  std::vector<uint8_t> out;
  // Reserve no more than the inputs could plausibly hold; a lying size only costs regrowth.
  out.reserve(static_cast<size_t>(std::min<uint64_t>(new_size, old_bytes.size() + delta.size())));
  size_t p = kDeltaHeader;
  for (uint64_t i = 0; i < count; ++i) {
    if (p >= delta.size()) return bad("truncated (operation " + std::to_string(i) + ")");
    const uint8_t kind = delta[p++];
    if (kind == 0) {
      if (delta.size() - p < 16) return bad("truncated copy operation");
      const uint64_t off = get_u64(delta.data() + p), size = get_u64(delta.data() + p + 8);
      p += 16;
      if (off > old_bytes.size() || size > old_bytes.size() - off || size > new_size - out.size())
        return bad("a copy operation is out of range");
      out.insert(out.end(), old_bytes.begin() + static_cast<std::ptrdiff_t>(off),
                 old_bytes.begin() + static_cast<std::ptrdiff_t>(off + size));
    } else if (kind == 1) {
      if (delta.size() - p < 8) return bad("truncated literal");
      const uint64_t size = get_u64(delta.data() + p);
      p += 8;
      if (size > delta.size() - p || size > new_size - out.size())
        return bad("a literal runs past the end");
      out.insert(out.end(), delta.begin() + static_cast<std::ptrdiff_t>(p),
                 delta.begin() + static_cast<std::ptrdiff_t>(p + size));
      p += size;
    } else if (kind == kPatch && major >= 2) {
      if (delta.size() - p < 24) return bad("truncated patch operation");
      const uint64_t off = get_u64(delta.data() + p), size = get_u64(delta.data() + p + 8);
      const uint64_t packed = get_u64(delta.data() + p + 16);
      p += 24;
      if (off > old_bytes.size() || size > old_bytes.size() - off || size > new_size - out.size())
        return bad("a patch operation is out of range");
      if (packed > delta.size() - p) return bad("a patch runs past the end");
      if (size > UINT32_MAX || packed > UINT32_MAX) return bad("a patch is too large");
      std::vector<uint8_t> planes(static_cast<size_t>(size));
      if (!inflate_exactly(delta.data() + p, static_cast<size_t>(packed), planes.data(),
                           planes.size()))
        return bad("a patch does not inflate to its " + std::to_string(size) + " bytes");
      p += packed;
      const size_t at = out.size();
      out.resize(at + static_cast<size_t>(size));
      add_differences(old_bytes.data() + off, planes.data(), static_cast<size_t>(size),
                      out.data() + at);
    } else {
      return bad("unknown operation " + std::to_string(kind));
    }
  }
  if (p != delta.size()) return bad("has bytes after its last operation");
  const Sha256 got = sha256(out.data(), out.size());
  if (out.size() != new_size || std::memcmp(got.data(), new_hash, 32) != 0)
    return bad("the rebuilt package does not match the SHA-256 the delta promises");
  return out;
}

Result<DeltaSummary> apply_delta(const std::string& old_path, const std::string& delta_path,
                                 const std::string& out_path) {
  BRINK_ASSIGN_OR_RETURN(auto old_bytes, read_all(old_path));
  BRINK_ASSIGN_OR_RETURN(auto delta, read_all(delta_path));
  BRINK_ASSIGN_OR_RETURN(auto rebuilt, apply_delta_bytes(old_bytes, delta, delta_path));
  BRINK_RETURN_IF_ERROR(write_atomically(out_path, rebuilt));
  DeltaSummary s;
  s.delta_bytes = static_cast<int64_t>(delta.size());
  s.new_bytes = static_cast<int64_t>(rebuilt.size());
  return s;
}

}  // namespace brink::package
