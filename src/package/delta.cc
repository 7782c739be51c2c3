#include "package/delta.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "core/memory.h"
#include "package/atomic_file.h"
#include "package/package.h"
#include "package/signing.h"

namespace brink::package {
namespace {

constexpr char kDeltaMagic[8] = {'B', 'R', 'I', 'N', 'K', 'D', 'L', 'T'};
constexpr uint16_t kDeltaMajor = 1;
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

struct Op {
  bool copy;
  uint64_t offset, size;  // copy: range of OLD; literal: range of NEW
};

// Verifies exactly the bytes the delta is made from (read once; the reader wants them
// 64-byte aligned, as a mapping is).
Result<std::unique_ptr<Package>> open_checked(const std::vector<uint8_t>& bytes,
                                              const std::string& path) {
  std::shared_ptr<void> aligned = shared_aligned(std::max<size_t>(bytes.size(), 1));
  if (!bytes.empty()) std::memcpy(aligned.get(), bytes.data(), bytes.size());
  VerifyOptions v;
  v.check_target = false;
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

  DeltaSummary s;
  std::vector<Op> ops;
  auto literal = [&](uint64_t begin, uint64_t end) {
    if (end <= begin) return;
    if (!ops.empty() && !ops.back().copy && ops.back().offset + ops.back().size == begin)
      ops.back().size += end - begin;
    else
      ops.push_back({false, begin, end - begin});
  };
  uint64_t pos = 0;
  for (const ChunkInfo& c : new_pkg->info().chunks) {
    literal(pos, c.offset);
    ++s.total_chunks;
    auto it = old_chunks.find({c.sha256_hex, c.size});
    if (it != old_chunks.end() && c.size > 0) {
      ops.push_back({true, it->second, c.size});
    } else {
      ++s.changed_chunks;
      literal(c.offset, c.offset + c.size);
    }
    pos = c.offset + c.size;
  }
  literal(pos, new_bytes.size());

  std::vector<uint8_t> out(kDeltaMagic, kDeltaMagic + 8);
  out.push_back(kDeltaMajor & 0xff);
  out.push_back(kDeltaMajor >> 8);
  out.insert(out.end(), 6, 0);  // minor 0, reserved
  const Sha256 old_hash = sha256(old_bytes.data(), old_bytes.size());
  const Sha256 new_hash = sha256(new_bytes.data(), new_bytes.size());
  out.insert(out.end(), old_hash.begin(), old_hash.end());
  out.insert(out.end(), new_hash.begin(), new_hash.end());
  put_u64(out, new_bytes.size());
  put_u64(out, ops.size());
  for (const Op& op : ops) {
    out.push_back(op.copy ? 0 : 1);
    if (op.copy) {
      put_u64(out, op.offset);
      put_u64(out, op.size);
      s.copied_bytes += static_cast<int64_t>(op.size);
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
  if (major != kDeltaMajor)
    return Status(StatusCode::kUnsupported, what + ": delta format " + std::to_string(major) +
                                                " is not the one this reader knows (1)");
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
