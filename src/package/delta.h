// Delta updates between two .brink packages: only what changed travels.
//
// A delta rebuilds NEW from OLD byte for byte. It lists NEW's bytes in order as copies of
// ranges of OLD (a weight chunk whose SHA-256 OLD also has), patches (a changed chunk
// whose place OLD has at the same size: the differences from OLD's chunk, deflated) and
// literal bytes (the header, other changed chunks, the manifest, seal and signature). Since
// a layer's large weights own their chunk (package_writer.cc), a model whose last layer
// changed sends that layer's chunk as a patch, the graph chunk if the graph changed, and the
// manifest.
//
//   [ magic "BRINKDLT" | u16 major 2 (1 when there is no patch) | u16 minor 0 | u32 0 ]
//   [ SHA-256 of OLD (32) | SHA-256 of NEW (32) | NEW's size u64 | op count u64 ]
//   ops: u8 kind (0 copy, 1 literal, 2 patch), then copy: u64 offset, u64 size in OLD;
//        literal: u64 size, the bytes;
//        patch (major 2): u64 offset, u64 size in OLD, u64 n, n bytes of zlib stream that
//        inflate to exactly size bytes: NEW - OLD as little-endian u32 words (mod 2^32),
//        split in four byte planes (all words' byte 0, then byte 1, ...), then the size % 4
//        last bytes' differences (mod 256). A retrained float weight keeps its sign, exponent
//        and high mantissa bits, so the high planes are mostly zero.
//
// A delta with no patch is written as major 1, which readers of deltas before patches read.
//
// apply_delta refuses a delta made for another OLD (its hash), and checks the result's
// SHA-256 against NEW's before writing it: what it writes is NEW, or nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brink/status.h"

namespace brink::package {

struct DeltaSummary {
  int64_t delta_bytes = 0;
  int64_t new_bytes = 0;
  int64_t copied_bytes = 0;   // taken from OLD
  int64_t literal_bytes = 0;  // carried in the delta (literals and patches' deflated bytes)
  int64_t patched_bytes = 0;  // of NEW rebuilt by patches (OLD's bytes + differences)
  int64_t changed_chunks = 0, total_chunks = 0;
  int64_t patched_chunks = 0;  // changed chunks sent as a patch rather than as they are
};

// Both files must be valid packages (checked as open_package does, target aside).
Result<DeltaSummary> make_delta(const std::string& old_path, const std::string& new_path,
                                const std::string& delta_path);
// Writes NEW (atomically) from OLD and a delta.
Result<DeltaSummary> apply_delta(const std::string& old_path, const std::string& delta_path,
                                 const std::string& out_path);

// The same over bytes in memory (for tests and the fuzz target).
Result<std::vector<uint8_t>> apply_delta_bytes(const std::vector<uint8_t>& old_bytes,
                                               const std::vector<uint8_t>& delta,
                                               const std::string& what);

}  // namespace brink::package
