#include "package/signing.h"

#include "package/atomic_file.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <vector>

namespace brink::package {
namespace {

constexpr const char* kSecretTag = "brink-ed25519-secret-key";
constexpr const char* kPublicTag = "brink-ed25519-public-key";

void ensure_sodium() {
  static const int ok = sodium_init();  // 0 first time, 1 when already done, -1 on failure
  if (ok < 0) {
    std::fprintf(stderr, "fatal: libsodium failed to initialise\n");
    std::abort();
  }
}

bool from_hex(const std::string& hex, uint8_t* out, size_t size) {
  if (hex.size() != 2 * size) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < size; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

Result<std::vector<std::string>> read_key_words(const std::string& path, const char* tag) {
  // The first line's whitespace-separated words. <cstdio>: this is in the device runtime.
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return Status(StatusCode::kNotFound, path + ": cannot open key file");
  std::vector<std::string> out;
  std::string word;
  for (int c; (c = std::fgetc(f)) != EOF && c != '\n';) {
    if (std::isspace(c)) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word += static_cast<char>(c);
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  std::fclose(f);
  if (out.empty() || out[0] != tag)
    return Status(
        StatusCode::kInvalidArgument,
        path + ": not a " + std::string(tag) + " file (expected a line starting '" + tag + " ')");
  return out;
}

Status write_text(const std::string& path, const std::string& text, mode_t mode) {
  return write_file_atomically(
      path,
      [&](std::FILE* f) { return std::fwrite(text.data(), 1, text.size(), f) == text.size(); },
      mode);
}

}  // namespace

Sha256 sha256(const void* data, size_t size) {
  return sha256(data, size, nullptr, 0);
}

Sha256 sha256(const void* a, size_t a_size, const void* b, size_t b_size) {
  Sha256 out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, a, a_size) != 1 ||
      (b_size > 0 && EVP_DigestUpdate(ctx, b, b_size) != 1) ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) {
    std::fprintf(stderr, "fatal: OpenSSL SHA-256 failed\n");
    std::abort();
  }
  EVP_MD_CTX_free(ctx);
  return out;
}

std::string to_hex(const uint8_t* data, size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    s[2 * i] = digits[data[i] >> 4];
    s[2 * i + 1] = digits[data[i] & 15];
  }
  return s;
}

std::string PublicKey::id() const {
  return to_hex(bytes.data(), 8);
}

PublicKey SecretKey::public_key() const {
  PublicKey pk;
  std::copy(bytes.begin() + 32, bytes.end(), pk.bytes.begin());
  return pk;
}

KeyPair generate_keypair() {
  ensure_sodium();
  KeyPair kp;
  crypto_sign_ed25519_keypair(kp.public_key.bytes.data(), kp.secret.bytes.data());
  return kp;
}

Result<int64_t> parse_expiry_date(const std::string& text) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || text.size() != 10 ||
      m < 1 || m > 12 || d < 1 || d > 31 || y < 1970)
    return Status(StatusCode::kInvalidArgument, "expiry date '" + text + "': expected YYYY-MM-DD");
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = d;
  tm.tm_hour = 23;
  tm.tm_min = 59;
  tm.tm_sec = 59;
  return static_cast<int64_t>(timegm(&tm));
}

std::string format_date(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

Status save_secret_key(const SecretKey& key, const std::string& path) {
  return write_text(path, std::string(kSecretTag) + " " + to_hex(key.bytes.data(), 64) + "\n",
                    0600);
}

Status save_public_key(const PublicKey& key, const std::string& path) {
  std::string line = std::string(kPublicTag) + " " + to_hex(key.bytes.data(), 32);
  if (key.expires) line += " expires=" + format_date(*key.expires);
  return write_text(path, line + "\n", 0644);
}

Result<SecretKey> load_secret_key(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(auto words, read_key_words(path, kSecretTag));
  SecretKey key;
  if (words.size() != 2 || !from_hex(words[1], key.bytes.data(), key.bytes.size()))
    return Status(StatusCode::kInvalidArgument,
                  path + ": expected '" + kSecretTag + "' and 128 hex digits");
  // The stored public half must be the one the seed derives, or signatures would not verify.
  ensure_sodium();
  std::array<uint8_t, 32> pk{};
  std::array<uint8_t, 64> sk{};
  crypto_sign_ed25519_seed_keypair(pk.data(), sk.data(), key.bytes.data());
  if (sk != key.bytes)
    return Status(StatusCode::kInvalidArgument,
                  path + ": the public half does not match the seed (corrupt key file)");
  return key;
}

Result<PublicKey> load_public_key(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(auto words, read_key_words(path, kPublicTag));
  PublicKey key;
  if (words.size() < 2 || words.size() > 3 ||
      !from_hex(words[1], key.bytes.data(), key.bytes.size()))
    return Status(
        StatusCode::kInvalidArgument,
        path + ": expected '" + kPublicTag + "', 64 hex digits and optionally expires=YYYY-MM-DD");
  if (words.size() == 3) {
    if (words[2].rfind("expires=", 0) != 0)
      return Status(StatusCode::kInvalidArgument,
                    path + ": unknown field '" + words[2] + "' (expected expires=YYYY-MM-DD)");
    auto when = parse_expiry_date(words[2].substr(8));
    if (!when.is_ok()) return when.status().with_context(path);
    key.expires = *when;
  }
  return key;
}

constexpr const char* kEncryptionTag = "brink-xchacha20-key";

std::string EncryptionKey::id() const {
  const Sha256 h = sha256(bytes.data(), bytes.size());
  return to_hex(h.data(), 8);
}

EncryptionKey generate_encryption_key() {
  ensure_sodium();
  EncryptionKey k;
  crypto_aead_xchacha20poly1305_ietf_keygen(k.bytes.data());
  return k;
}

Status save_encryption_key(const EncryptionKey& key, const std::string& path) {
  return write_text(path, std::string(kEncryptionTag) + " " + to_hex(key.bytes.data(), 32) + "\n",
                    0600);
}

Result<EncryptionKey> load_encryption_key(const std::string& path) {
  BRINK_ASSIGN_OR_RETURN(auto words, read_key_words(path, kEncryptionTag));
  EncryptionKey key;
  if (words.size() != 2 || !from_hex(words[1], key.bytes.data(), key.bytes.size()))
    return Status(StatusCode::kInvalidArgument,
                  path + ": expected '" + kEncryptionTag + "' and 64 hex digits");
  return key;
}

std::vector<uint8_t> encrypt_chunk(const EncryptionKey& key, const uint8_t* plain, size_t size,
                                   const uint8_t* ad, size_t ad_size,
                                   std::array<uint8_t, 24>* nonce) {
  ensure_sodium();
  randombytes_buf(nonce->data(), nonce->size());
  std::vector<uint8_t> out(size + kEncryptionTagBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &written, plain, size, ad, ad_size,
                                             nullptr, nonce->data(), key.bytes.data());
  out.resize(static_cast<size_t>(written));
  return out;
}

bool decrypt_chunk(const EncryptionKey& key, const uint8_t* cipher, size_t size,
                   const uint8_t* nonce, const uint8_t* ad, size_t ad_size, uint8_t* plain) {
  ensure_sodium();
  if (size < kEncryptionTagBytes) return false;
  unsigned long long written = 0;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &written, nullptr, cipher, size, ad,
                                                    ad_size, nonce, key.bytes.data()) == 0;
}

std::array<uint8_t, 64> sign(const SecretKey& key, const void* message, size_t size) {
  ensure_sodium();
  std::array<uint8_t, 64> sig{};
  crypto_sign_ed25519_detached(sig.data(), nullptr, static_cast<const unsigned char*>(message),
                               size, key.bytes.data());
  return sig;
}

bool verify_signature(const PublicKey& key, const uint8_t* signature, const void* message,
                      size_t size) {
  ensure_sodium();
  return crypto_sign_ed25519_verify_detached(signature, static_cast<const unsigned char*>(message),
                                             size, key.bytes.data()) == 0;
}

}  // namespace brink::package
