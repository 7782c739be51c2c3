// libFuzzer target for the .brink reader and the delta reader (src/package): any bytes must
// either open or fail with a one-line error. Hashes would stop nearly every mutation at the seal,
// so before opening, the target re-seals what it can (each chunk's SHA-256 in the manifest, then
// the header-and-manifest seal): mutations then reach the manifest and graph decoders behind the
// hashes, which is where a parser bug would hide. The corpus holds unsigned packages (a signature
// cannot be re-made here). The same bytes are then applied as a delta to a fixed base package-sized
// buffer, with the delta's base hash set to match so the operations are parsed, and streamed
// through the progressive loader (StreamLoader), which must agree with open_package_memory:
// both open the bytes or both refuse them. The corpus holds packages of both layouts (format
// 1, manifest last; format 2, manifest first).
//
// Each input is also opened with a fixed decryption key (kFuzzKey: bytes 0, 1, ..., 31), so
// that encrypted packages reach the XChaCha20-Poly1305 path: the nonces and the ciphertext
// sizes in the manifest, the tag check and decrypting into memory. The corpus holds a package
// encrypted with that key (encrypted.brink; the key file is tests/fuzz/fuzz_package.key), so
// the fuzzer starts from bytes that decrypt. Hashes are of the ciphertext, so the re-sealing
// still lets mutations through to the tag check; a mutation inside a chunk then fails there,
// one in the manifest reaches the nonce and size checks. With the right key, an encrypted
// package must open, or fail with a one-line error, like any other.
//
// Build: CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DBRINK_FUZZ=ON -DBRINK_TESTS=OFF
// Run:   ./build-fuzz/fuzz_package_loader tests/fuzz/corpus_package_loader
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/memory.h"
#include "package/delta.h"
#include "package/package.h"
#include "package/package_generated.h"
#include "package/stream_loader.h"

namespace {

using brink::package::FixedHeader;

// The key of corpus_package_loader/encrypted.brink (tests/fuzz/fuzz_package.key).
brink::package::EncryptionKey fuzz_key() {
  brink::package::EncryptionKey k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(i);
  return k;
}

void check_one_line(const char* what, const brink::Status& s) {
  if (s.is_ok()) return;
  if (s.message().empty()) {
    std::fprintf(stderr, "fuzz_package_loader: %s: an empty error message\n", what);
    std::abort();
  }
  for (char c : s.message())
    if (c == '\n' || c == '\r') {
      std::fprintf(stderr, "fuzz_package_loader: %s: error message spans lines: %s\n", what,
                   s.message().c_str());
      std::abort();
    }
}

void fail(const char* what, const brink::Status& s) {
  std::fprintf(stderr, "fuzz_package_loader: %s: %s\n", what, s.message().c_str());
  std::abort();
}

// Recomputes the chunk hashes and the seal when the layout lets it; leaves the bytes as
// they are otherwise (the reader must then refuse them).
void reseal(uint8_t* p, size_t size) {
  namespace pk = brink::package;
  if (size < pk::kHeaderBytes) return;
  FixedHeader h;
  std::memcpy(&h, p, sizeof h);
  if (h.manifest_offset > size || h.manifest_size > size - h.manifest_offset ||
      h.manifest_offset < pk::kHeaderBytes || h.manifest_offset % pk::kAlignment != 0 ||
      size - h.manifest_offset - h.manifest_size < pk::kSealBytes)
    return;
  uint8_t* manifest = p + h.manifest_offset;
  flatbuffers::Verifier v(manifest, h.manifest_size);
  if (v.VerifyBuffer<brink::fb::Manifest>(nullptr)) {
    const auto* m = flatbuffers::GetRoot<brink::fb::Manifest>(manifest);
    if (m->chunks())
      for (const auto* c : *m->chunks())
        if (c->sha256() && c->sha256()->size() == 32 && c->offset() <= size &&
            c->size() <= size - c->offset()) {
          const auto hash = pk::sha256(p + c->offset(), c->size());
          std::memcpy(const_cast<uint8_t*>(c->sha256()->data()), hash.data(), 32);
        }
  }
  const auto seal = pk::sha256(p, pk::kHeaderBytes, manifest, h.manifest_size);
  std::memcpy(p + h.manifest_offset + h.manifest_size, seal.data(), seal.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace brink;
  // The reader wants 64-byte aligned memory, as a mapping gives it.
  std::shared_ptr<void> buffer = shared_aligned(size == 0 ? 1 : size);
  if (size > 0) std::memcpy(buffer.get(), data, size);
  reseal(static_cast<uint8_t*>(buffer.get()), size);
  {
    std::vector<uint8_t> base(4096);
    for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<uint8_t>(i * 7);
    std::vector<uint8_t> delta(data, data + size);
    if (delta.size() >= 48) {
      const auto h = package::sha256(base.data(), base.size());
      std::memcpy(delta.data() + 16, h.data(), 32);
    }
    auto rebuilt = package::apply_delta_bytes(base, delta, "fuzz delta");
    if (!rebuilt.is_ok())
      for (char c : rebuilt.status().message())
        if (c == '\n') fail("delta error message spans lines", rebuilt.status());
  }
  package::VerifyOptions options;
  options.check_target = false;
  options.num_threads = 1;
  options.all_chunks = true;  // fallback chunks too, as the stream (which hashes every chunk)
  auto pkg = package::open_package_memory(buffer, size, "fuzz input", options);
  {
    // A package's fallback (format 2.1): its constants replace the elided ones.
    package::VerifyOptions fallback = options;
    fallback.target = "portable";
    auto f = package::open_package_memory(buffer, size, "fuzz input (fallback)", fallback);
    check_one_line("as its fallback", f.status());
  }
  {
    auto bytes =
        std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(buffer.get()),
                                               static_cast<const uint8_t*>(buffer.get()) + size);
    auto loader =
        package::StreamLoader::open(package::memory_source(bytes, 4096), "fuzz stream", options);
    Status streamed = loader.is_ok() ? (*loader)->finish() : loader.status();
    for (char c : streamed.message())
      if (c == '\n' || c == '\r') fail("stream error message spans lines", streamed);
    if (streamed.is_ok() != pkg.is_ok())
      fail("the stream and the buffer disagree", pkg.is_ok() ? streamed : pkg.status());
  }
  {
    // The same bytes as an encrypted package with the corpus's key (ignored when the manifest
    // says the package is not encrypted: then it must open exactly as without a key).
    package::VerifyOptions with_key = options;
    with_key.decryption_key = fuzz_key();
    auto decrypted = package::open_package_memory(buffer, size, "fuzz input (key)", with_key);
    check_one_line("with the key", decrypted.status());
    if (decrypted.is_ok()) {
      if (pkg.is_ok() && (*decrypted)->info().encrypted)
        fail("an encrypted package opened without its key", pkg.status());
      for (const auto& v : (*decrypted)->model().graph.values)
        if (v.constant && v.constant->nbytes() > 0) {
          const auto* b = static_cast<const uint8_t*>(v.constant->raw_data());
          volatile uint8_t sink = b[0] ^ b[v.constant->nbytes() - 1];
          (void)sink;
        }
    } else if (pkg.is_ok() && !(*pkg)->info().encrypted) {
      fail("a plain package refused with a key", decrypted.status());
    }
  }
  if (!pkg.is_ok()) {
    const std::string& m = pkg.status().message();
    if (m.empty()) fail("error with an empty message", pkg.status());
    for (char c : m)
      if (c == '\n' || c == '\r') fail("error message spans lines", pkg.status());
    return 0;
  }
  // What opened must be self-consistent: every constant readable within the buffer.
  for (const auto& v : (*pkg)->model().graph.values)
    if (v.constant && v.constant->nbytes() > 0) {
      const auto* b = static_cast<const uint8_t*>(v.constant->raw_data());
      volatile uint8_t sink = b[0] ^ b[v.constant->nbytes() - 1];
      (void)sink;
    }
  return 0;
}
