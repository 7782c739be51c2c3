// Pieces shared by the brink subcommands: loading inputs, printing errors, JSON output.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "brink/session.h"
#include "runtime/compiled_model.h"

namespace brink::cli {

// Exit codes: 0 success, 1 the model or the data was refused, 2 the command line was wrong.
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Prints "error: <message>" on one line to stderr; returns kExitError.
int report_error(const Status& status);

struct FeedOptions {
  std::vector<std::string> input_specs;  // NAME=FILE.npy
  std::string inputs_npz;
  bool random = false;
  uint64_t seed = 0;
};

// Builds the feeds for `session` from --input/--inputs, or random data for inputs not given
// when `random` (symbolic dims become 1 unless fixed by --dim).
Result<std::vector<NamedTensor>> load_feeds(const Session& session, const FeedOptions& options);

// Seeded data for one input: floats uniform in [0, 1), integers in [0, 2), bools random.
Tensor random_tensor(const TensorInfo& info, uint64_t seed);

// The options that load a .brink package (run, bench): --pubkey, --key, --max-memory.
struct PackageLoadOptions {
  std::string pubkey;         // the public key the package must be signed by
  std::string key;            // the encryption key of an encrypted package
  int64_t max_memory_mb = 0;  // bound on weights + arena, 0 = none
  void apply(SessionOptions* so) const {
    so->package_public_key = pubkey;
    so->package_key = key;
    so->max_memory_bytes = max_memory_mb << 20;
  }
};
void add_package_load_options(CLI::App* cmd, PackageLoadOptions* o);

// --int8-kernels faster|integer|float (SessionOptions::int8_kernels) for run and bench.
void add_int8_kernels_option(CLI::App* cmd, std::string* value);

// "NAME=V" pairs for symbolic dims.
Result<std::vector<std::pair<std::string, int64_t>>> parse_dim_values(
    const std::vector<std::string>& specs);

// File name for an output: characters outside [A-Za-z0-9._-] become '_'.
std::string output_file_name(const std::string& output_name);

nlohmann::json tensor_info_json(const TensorInfo& info);

// "1.23 G", "512": counts with SI prefixes.
std::string human_count(double v);
// "1.5 MiB": bytes with binary prefixes.
std::string human_bytes(double v);

// Peak resident set size of this process, in bytes.
int64_t peak_rss_bytes();

}  // namespace brink::cli
