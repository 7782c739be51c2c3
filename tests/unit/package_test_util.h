// What the package tests share: the model they pack, scratch paths, and reading a package
// back as bytes (to damage it, or to open it from memory the way a mapping would be).
#pragma once

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
#include "package/package.h"

namespace brink::package::test {

// The small CNN every package test packs (the repository's default model).
inline const std::string kDigits = std::string(BRINK_SOURCE_DIR) + "/models/digits_cnn.onnx";

// A path in the temporary directory, unique per process and `suite`.
inline std::string temp_path(const std::string& suite, const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("brink_" + suite + "_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Opens bytes held in memory (64-byte aligned, as a mapping is).
inline Result<std::unique_ptr<Package>> open_bytes(const std::vector<uint8_t>& bytes,
                                                   const VerifyOptions& options = {}) {
  std::shared_ptr<void> buffer = shared_aligned(bytes.size());
  std::memcpy(buffer.get(), bytes.data(), bytes.size());
  return open_package_memory(buffer, bytes.size(), "pkg", options);
}

}  // namespace brink::package::test
