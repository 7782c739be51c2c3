// The .brink package: one file per model that a device can verify, map and run at once.
//
//   [ fixed header, 64 bytes ]  magic "BRINKPKG", format version, where the rest is
//   [ manifest               ]  FlatBuffer: each chunk's offset, size and SHA-256; model card
//   [ seal: 32 bytes         ]  SHA-256 of header || manifest
//   [ signature: 96 bytes    ]  optional: Ed25519 public key (32) + signature of header || manifest
//   [ chunk 0: the Model     ]  the compiled graph (FlatBuffer, package.fbs), after passes
//   [ chunk 1..n: weights    ]  constants, 64-byte aligned: what loading reads first, then
//                               packed weights in order of first use
//   [ fallback chunks        ]  format 2.1, optional: the constants the packed weights
//                               replace, in ONNX layout, for the package's fallback targets
//                               (a load of the primary target never reads them)
//
// That is format 2: everything a reader checks before trusting a byte comes first, so a
// streaming reader (stream_loader.h) verifies the package before the first chunk arrives and
// each chunk as it completes. Format 1 put manifest, seal and signature after the chunks; it
// is still read (and written with PackOptions::format_major = 1).
//
// Every byte is covered: the header and manifest by the seal (and the signature when
// signed), each chunk by its hash, the padding between chunks must be zero, and the layout
// must be exact (nothing before, between or after these parts). docs/FORMAT.md is the
// full description and the compatibility rule.
//
// open_package() maps the file and checks everything — layout, seal, signature and trust,
// every chunk's hash, the target ISA — before it returns, so no kernel ever runs on a
// package that failed a check. Constants of the decoded model point into the mapping (no
// copy); the mapping lives as long as any of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "core/cpu_features.h"
#include "ir/graph.h"
#include "ops/op.h"
#include "package/signing.h"

namespace brink::package {

inline constexpr char kMagic[8] = {'B', 'R', 'I', 'N', 'K', 'P', 'K', 'G'};
// 2: manifest, seal and signature before the chunks (streamable); 1: after them (still read).
inline constexpr uint16_t kFormatMajor = 2;  // readers refuse a newer major version
// Minor 1 adds fallback targets (written only by packages that have them; others stay 2.0).
inline constexpr uint16_t kFormatMinor = 1;  // readers accept any minor of their major
inline constexpr size_t kHeaderBytes = 64;
inline constexpr size_t kAlignment = 64;
inline constexpr size_t kSealBytes = 32;
inline constexpr size_t kSignatureBytes = 96;  // public key + signature

// The fixed header, little-endian on disk (every supported target is little-endian).
struct FixedHeader {
  char magic[8];
  uint16_t format_major;
  uint16_t format_minor;
  uint32_t header_bytes;     // 64
  uint64_t manifest_offset;  // format 2: 64 (right after the header)
  uint64_t manifest_size;
  uint64_t trailer_offset;  // = manifest_offset + manifest_size: the seal, then the signature
  uint64_t signature_size;  // 0 (unsigned) or 96
  uint64_t file_size;
  uint64_t reserved;  // 0
};
static_assert(sizeof(FixedHeader) == kHeaderBytes);

// True when `path` starts with the package magic (how loaders tell .brink from .onnx).
bool is_package_file(const std::string& path);

// ---- Targets ----------------------------------------------------------------------------

// "x86-64-v4" (AVX-512 F/BW/VL/DQ), "x86-64-v3" (AVX2, FMA), "aarch64", "portable".
const std::vector<std::string>& known_targets();
// The best target this machine runs.
std::string host_target();
// The kernel ISA a target's packed weights are for.
Isa target_isa(const std::string& target);
// Ok when this machine can run packages for `target`; else why not.
Status check_target_runs_here(const std::string& target);
// Which of a package's targets (primary first, then its fallbacks in order of preference)
// this machine uses: the first that runs here and is within the BRINK_ISA cap (best_isa();
// BRINK_ISA=portable makes a package with a portable fallback use it), else the first that
// runs here. `forced` (non-empty) must be one of `targets` that runs here. Refuses with one
// line naming the package's targets and this CPU when none runs.
Result<std::string> choose_target(const std::vector<std::string>& targets,
                                  const std::string& forced = "");

// ---- Writing ----------------------------------------------------------------------------

struct PackOptions {
  std::string target;            // "" = host_target()
  size_t chunk_size = 4u << 20;  // weight bytes per chunk (a larger constant gets its own)
  std::string name;              // "" = the model file's stem
  std::string version = "0.0.0";
  std::string meta_json;  // stored as given (already checked to be JSON by the caller)
  std::vector<std::string> labels;
  std::optional<SecretKey> signing_key;
  // Encrypts every chunk (graph and weights) with XChaCha20-Poly1305; loading then needs the
  // key and decrypts into memory (the mapping is no longer used in place).
  std::optional<EncryptionKey> encryption_key;
  SessionOptions session;  // optimization level and dim values used to compile
  std::string created_by;  // "brink 0.1.0"
  // Store the kernels' packed weights (for the target's ISA) instead of the weights they
  // replace, so a load maps them in place. Needs a machine that runs the target's kernels;
  // otherwise, or when false, the ONNX-layout weights are stored and packed at load.
  bool prepack = true;
  // The layout to write: 2 (the current one, streamable) or 1 (manifest after the chunks,
  // for readers older than format 2; also how tests keep an old-layout package).
  uint16_t format_major = kFormatMajor;
  // Targets a CPU without `target`'s ISA runs instead (e.g. {"portable"}), in order of
  // preference. The package then also stores, after all of the target's data, the constants
  // its packed weights replace (ONNX layout, packed at load by the fallback's kernels).
  // Needs format 2; written as format 2.1.
  std::vector<std::string> fallback_targets;
};

struct PackSummary {
  int64_t file_bytes = 0;
  int64_t graph_bytes = 0;
  int64_t weight_bytes = 0;
  int64_t chunks = 0;
  std::optional<int64_t> arena_bytes;
  std::string signer_key_id;
  int64_t prepacked_nodes = 0;  // nodes whose packed weights are stored
  int64_t elided_bytes = 0;     // bytes of the weights those replace (not stored)
  int64_t fallback_bytes = 0;   // bytes of the fallback chunks (those weights, for fallbacks)
};

// Optimizes and compiles `model` (so a package that would not run is never written), then
// writes the package to `path` atomically: a temporary file renamed into place, so a
// failure leaves no file and never a partial one.
Result<PackSummary> write_package(ir::Model model, const PackOptions& options,
                                  const std::string& path);

// ---- Reading ----------------------------------------------------------------------------

struct VerifyOptions {
  // The key the package must be signed by; nullopt accepts an unsigned package and checks a
  // signed one against its own key (integrity, not trust).
  std::optional<PublicKey> trusted_key;
  bool check_target = true;    // refuse a package this CPU cannot run
  std::optional<int64_t> now;  // for key expiry; nullopt = the clock
  int num_threads = 0;         // for hashing chunks; 0 = the machine's cores
  // The key of an encrypted package (required for one, ignored otherwise).
  std::optional<EncryptionKey> decryption_key;
  // False: map the file without reading it all in at once, and drop each chunk's pages after
  // hashing it, so that opening never holds more than a few chunks in memory (what
  // --max-memory needs). Only files are affected, not open_package_memory's bytes.
  bool resident = true;
  // Use this target of the package ("" = choose_target's pick); for tests and for trying
  // a fallback on a machine that runs the primary target. Must be one the CPU runs.
  std::string target;
  // Hash every chunk, also those this load never reads: a primary-target load of a package
  // with fallback targets hashes the fallback chunks, and a fallback load the chunks of packed
  // weights, then drops their pages (so memory is as if they were not there). A 1-byte change
  // anywhere is refused whichever target runs. False skips them -- a faster cold start for
  // packages with fallbacks, but a damaged chunk this load does not read then goes unnoticed
  // (the sealed, signed manifest still holds its hash, checked by a load that uses it).
  bool all_chunks = true;
};

struct ChunkInfo {
  std::string kind;  // "graph" or "weights"
  uint64_t offset = 0, size = 0;
  std::string sha256_hex;
  bool fallback = false;  // holds only what fallback targets read (Manifest.fallback_chunk)
  // Holds only packed weights, which fallback targets do not read (Manifest.packed_chunk;
  // marked in packages with fallback targets only).
  bool packed = false;
};

struct PackageInfo {
  uint16_t format_major = 0, format_minor = 0;
  std::string name, version, target, created_by, meta_json;
  std::vector<std::string> labels;
  std::vector<TensorInfo> inputs, outputs;
  std::optional<int64_t> arena_bytes;
  int64_t parameter_bytes = 0;
  int64_t file_bytes = 0;
  std::vector<ChunkInfo> chunks;
  std::string signer_key_id;    // "" when unsigned
  bool signer_trusted = false;  // signed by VerifyOptions::trusted_key
  int64_t prepacked_nodes = 0;  // nodes whose kernels use packed weights from the file
  bool encrypted = false;
  std::string encryption_key_id;
  // The primary target (`target`) then the fallback targets, and the one this load's model
  // is for (its kernels compile it): choose_target's pick, or with check_target false (brink
  // info, verify) the primary unless VerifyOptions::target names another of the package's.
  std::vector<std::string> targets;
  std::string selected_target;
  bool uses_fallback() const { return !selected_target.empty() && selected_target != target; }
};

class Package {
 public:
  ~Package();
  const PackageInfo& info() const { return info_; }
  // The compiled graph; its constants view the mapping and keep it alive.
  const ir::Model& model() const { return model_; }
  // Optimization level the graph was compiled with (the loader does not run passes again).
  int optimization_level() const { return optimization_level_; }
  // Packed weights by main-graph node index, viewing the mapping.
  const std::map<int, ops::PackedWeights>& prepacked() const { return prepacked_; }
  // For each main-graph node, the byte ranges of the mapping it reads weights from (packed
  // weights and stored constants), for memory-bounded execution.
  std::map<int, std::vector<std::pair<const void*, size_t>>> weight_ranges() const;
  // Drops the weight chunks' pages from memory (file mappings only; they fault back in from
  // the page cache when read).
  void release_weight_pages() const;

 private:
  friend struct PackageAccess;  // the reader (package_reader.cc)
  Package() = default;
  PackageInfo info_;
  ir::Model model_;
  int optimization_level_ = 0;
  std::map<int, ops::PackedWeights> prepacked_;
  const uint8_t* base_ = nullptr;  // the mapping
  size_t size_ = 0;
  bool file_mapping_ = false;
};

// Maps and verifies `path` (see the top of this file). Errors name the file and the part
// that failed.
Result<std::unique_ptr<Package>> open_package(const std::string& path,
                                              const VerifyOptions& options = {});
// The same over bytes already in memory (64-byte aligned, kept alive by `owner`); `what`
// names them in errors.
Result<std::unique_ptr<Package>> open_package_memory(std::shared_ptr<const void> owner, size_t size,
                                                     const std::string& what,
                                                     const VerifyOptions& options = {});

// Opens, verifies and compiles a package into a Session (what Session::load does for .brink).
Result<std::unique_ptr<Session>> load_package_session(const std::string& path,
                                                      const SessionOptions& options,
                                                      const VerifyOptions& verify = {});

}  // namespace brink::package
