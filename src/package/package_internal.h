// The reader's checks as separate steps, shared by open_package (a whole file or buffer,
// package_reader.cc) and the streaming loader (stream_loader.cc), which runs them as the
// bytes arrive: header, then header || manifest || trailer, then each chunk, then the graph.
// Not part of the package API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brink/status.h"
#include "package/package.h"
#include "package/package_generated.h"

namespace brink::package::internal {

// Where the parts of a package are, from its fixed header and its size.
struct Layout {
  FixedHeader header{};
  uint64_t head_end = 0;      // format 2: end of the signature (chunks follow, aligned)
  uint64_t chunks_begin = 0;  // the chunks tile [chunks_begin, chunks_end) exactly
  uint64_t chunks_end = 0;
};

// Magic, version, sizes and the layout rule of the header's format major: 1 puts the
// manifest, seal and signature after the chunks, 2 puts them right after the header.
Status check_header(const uint8_t* header, uint64_t size, const std::string& what, Layout* out);

// What the seal, signature and manifest checks establish.
struct Head {
  const fb::Manifest* manifest = nullptr;
  std::string signer_id;
  bool trusted = false;
  std::string target;                // the primary target (Manifest.target)
  std::vector<std::string> targets;  // the primary, then the fallback targets
  // The target this load uses: choose_target's pick, or when the target is not checked
  // (VerifyOptions::check_target false) the primary unless VerifyOptions::target names
  // another of the package's targets.
  std::string selected;
  bool fallback = false;  // selected is a fallback target
  // Chunks [fallback_chunk, chunk count) hold only fallback constants (count when none).
  uint32_t fallback_chunk = 0;
  // Chunks [packed_chunk, fallback_chunk) hold only packed weights (= fallback_chunk when
  // the package has no fallback target).
  uint32_t packed_chunk = 0;
  // Whether chunk `i` is read by this load: the primary target reads the chunks before the
  // fallback ones, a fallback target every chunk but the packed weights.
  bool uses_chunk(uint32_t i) const {
    return fallback ? i < packed_chunk || i >= fallback_chunk : i < fallback_chunk;
  }
};

// The seal and the signature over header || manifest, trust and key expiry, the manifest's
// structure, its target, and the chunks' places (they tile the layout's chunk range).
// `manifest` and `trailer` point at those parts (the seal, then the signature if any).
Result<Head> check_head(const Layout& layout, const uint8_t* header, const uint8_t* manifest,
                        const uint8_t* trailer, const std::string& what,
                        const VerifyOptions& options);

// Zero padding after chunk `i` (up to the next 64-byte boundary); `base` is the file.
Status check_chunk_padding(const uint8_t* base, const fb::Manifest* m, uint32_t i,
                           const std::string& what);
// True when chunk `i`'s bytes (at `bytes`) have the SHA-256 the manifest gives.
bool chunk_hash_matches(const uint8_t* bytes, const fb::Manifest* m, uint32_t i);
// The one-line error for chunk `i` failing its hash.
Status chunk_hash_error(const fb::Manifest* m, uint32_t i, const std::string& what);

// Decodes the (checked) graph chunk into a Package whose constants view `base` (the file's
// bytes, kept alive by `owner`; chunk bytes need not have arrived yet for weight chunks).
Result<std::unique_ptr<Package>> decode_package(const Layout& layout, const Head& head,
                                                const uint8_t* base,
                                                std::shared_ptr<const void> owner,
                                                const std::string& what,
                                                const VerifyOptions& options, bool file_mapping);

}  // namespace brink::package::internal
