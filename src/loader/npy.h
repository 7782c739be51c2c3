// NumPy .npy and .npz files: how users hand tensors to `brink run` and get them back.
//
// Supports little-endian (or byte-order-free) numeric and bool arrays in C order, format
// versions 1-3; .npz archives stored or deflated, with or without zip64 records (NumPy
// writes zip64 headers). Fortran-order, big-endian, object and string arrays are refused
// with an error naming the file and what was found.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "brink/status.h"
#include "brink/tensor.h"

namespace brink::npy {

Result<Tensor> parse_npy(const void* data, size_t size, const std::string& what);
Result<Tensor> read_npy(const std::string& path);
std::string serialize_npy(const Tensor& tensor);
Status write_npy(const std::string& path, const Tensor& tensor);

// Arrays of an .npz archive in archive order, named without the ".npy" suffix.
Result<std::vector<std::pair<std::string, Tensor>>> parse_npz(const void* data, size_t size,
                                                              const std::string& what);
Result<std::vector<std::pair<std::string, Tensor>>> read_npz(const std::string& path);

// Reads a whole file; errors name the path.
Result<std::string> read_file(const std::string& path);

}  // namespace brink::npy
