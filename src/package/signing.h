// Ed25519 keys for signing .brink packages (libsodium), and the SHA-256 the package's
// chunk hashes use (OpenSSL's libcrypto: it uses the CPU's SHA instructions, ~1.7 GB/s on
// this machine against ~0.26 GB/s for libsodium's portable SHA-256, and hashing every chunk
// at load is on the cold-start path).
//
// Key files are one line of text, so they can be read, diffed and provisioned by hand:
//   brink-ed25519-secret-key <128 hex digits>            (seed and public key; keep private)
//   brink-ed25519-public-key <64 hex digits> [expires=YYYY-MM-DD]
// A public key's expiry is the trust decision of whoever provisions it on a device: after
// that day (UTC) packages it signed are refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "brink/status.h"

namespace brink::package {

using Sha256 = std::array<uint8_t, 32>;
Sha256 sha256(const void* data, size_t size);
// SHA-256 of the concatenation a || b.
Sha256 sha256(const void* a, size_t a_size, const void* b, size_t b_size);

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  std::optional<int64_t> expires;  // seconds since the epoch (end of the expiry day, UTC)
  // First 8 bytes in hex: how errors and `brink info` name a key.
  std::string id() const;
};

struct SecretKey {
  std::array<uint8_t, 64> bytes{};  // libsodium's Ed25519 secret key: seed || public key
  PublicKey public_key() const;
};

struct KeyPair {
  SecretKey secret;
  PublicKey public_key;
};

KeyPair generate_keypair();

// "YYYY-MM-DD" to the last second of that day (UTC); an error for anything else.
Result<int64_t> parse_expiry_date(const std::string& text);
std::string format_date(int64_t seconds_since_epoch);

Status save_secret_key(const SecretKey& key, const std::string& path);  // mode 0600
Status save_public_key(const PublicKey& key, const std::string& path);
Result<SecretKey> load_secret_key(const std::string& path);
Result<PublicKey> load_public_key(const std::string& path);

// A symmetric key for XChaCha20-Poly1305 package encryption, in a file of one line:
//   brink-xchacha20-key <64 hex digits>
struct EncryptionKey {
  std::array<uint8_t, 32> bytes{};
  // First 8 bytes of SHA-256(key) in hex: names the key without revealing it.
  std::string id() const;
};
EncryptionKey generate_encryption_key();
Status save_encryption_key(const EncryptionKey& key, const std::string& path);  // mode 0600
Result<EncryptionKey> load_encryption_key(const std::string& path);

// XChaCha20-Poly1305: ciphertext (size + 16 bytes of tag) of `plain` with a fresh random
// nonce written to `nonce`, and `ad` as associated data.
std::vector<uint8_t> encrypt_chunk(const EncryptionKey& key, const uint8_t* plain, size_t size,
                                   const uint8_t* ad, size_t ad_size,
                                   std::array<uint8_t, 24>* nonce);
// Decrypts into `plain` (size - 16 bytes); false when the tag does not verify (wrong key or
// modified bytes).
bool decrypt_chunk(const EncryptionKey& key, const uint8_t* cipher, size_t size,
                   const uint8_t* nonce, const uint8_t* ad, size_t ad_size, uint8_t* plain);
inline constexpr size_t kEncryptionTagBytes = 16;

// Detached Ed25519 signature of `message`.
std::array<uint8_t, 64> sign(const SecretKey& key, const void* message, size_t size);
bool verify_signature(const PublicKey& key, const uint8_t* signature, const void* message,
                      size_t size);

std::string to_hex(const uint8_t* data, size_t size);

}  // namespace brink::package
