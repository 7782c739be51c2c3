#include "cli_common.h"

#include <sys/resource.h>

#include <cstdio>
#include <random>
#include <set>

#include "loader/npy.h"

namespace brink::cli {

int report_error(const Status& status) {
  std::string msg = status.message();
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return kExitError;
}

Tensor random_tensor(const TensorInfo& info, uint64_t seed) {
  Shape shape;
  for (int64_t d : info.shape) shape.push_back(d >= 0 ? d : 1);
  Tensor t = Tensor::empty(info.dtype, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  visit_dtype(info.dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_floating_point_v<compute_t<T>>) {
        p[i] = static_cast<T>(uniform(rng));
      } else {
        p[i] = static_cast<T>(rng() % 2);
      }
    }
  });
  return t;
}

Result<std::vector<NamedTensor>> load_feeds(const Session& session, const FeedOptions& options) {
  std::vector<NamedTensor> feeds;
  std::set<std::string> given;
  if (!options.inputs_npz.empty()) {
    BRINK_ASSIGN_OR_RETURN(auto arrays, npy::read_npz(options.inputs_npz));
    for (auto& [name, tensor] : arrays) {
      given.insert(name);
      feeds.emplace_back(name, std::move(tensor));
    }
  }
  for (const std::string& spec : options.input_specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      return invalid_argument("--input '" + spec + "' is not of the form NAME=FILE.npy");
    const std::string name = spec.substr(0, eq);
    BRINK_ASSIGN_OR_RETURN(Tensor t, npy::read_npy(spec.substr(eq + 1)));
    if (!given.insert(name).second)
      return invalid_argument("input '" + name + "' is given more than once");
    feeds.emplace_back(name, std::move(t));
  }
  if (options.random) {
    uint64_t k = 0;
    for (const TensorInfo& info : session.inputs()) {
      ++k;
      if (given.count(info.name)) continue;
      feeds.emplace_back(info.name, random_tensor(info, options.seed * 7919 + k));
    }
  }
  return feeds;
}

Result<std::vector<std::pair<std::string, int64_t>>> parse_dim_values(
    const std::vector<std::string>& specs) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    const std::string value = eq == std::string::npos ? "" : spec.substr(eq + 1);
    if (eq == std::string::npos || eq == 0 || value.empty() || value.size() > 12 ||
        value.find_first_not_of("0123456789") != std::string::npos)
      return invalid_argument("--dim '" + spec + "' is not of the form NAME=SIZE");
    out.emplace_back(spec.substr(0, eq), std::stoll(value));
  }
  return out;
}

std::string output_file_name(const std::string& output_name) {
  std::string s = output_name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (s.empty() || s == "." || s == "..") s = "output";
  return s;
}

nlohmann::json tensor_info_json(const TensorInfo& info) {
  nlohmann::json shape = nlohmann::json::array();
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (info.shape[i] >= 0)
      shape.push_back(info.shape[i]);
    else
      shape.push_back(info.dim_names[i].empty() ? "?" : info.dim_names[i]);
  }
  return {{"name", info.name},
          {"dtype", dtype_long_name(info.dtype)},
          {"shape", info.rank_known ? shape : nlohmann::json(nullptr)}};
}

void add_package_load_options(CLI::App* cmd, PackageLoadOptions* o) {
  cmd->add_option("--pubkey", o->pubkey,
                  "For a .brink package: the public key it must be signed by");
  cmd->add_option("--key", o->key, "For an encrypted .brink package: its key file");
  cmd->add_option("--max-memory", o->max_memory_mb,
                  "For a .brink package: MiB for weights + activations (layer by layer if needed)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
}

void add_int8_kernels_option(CLI::App* cmd, std::string* value) {
  cmd->add_option("--int8-kernels", *value,
                  "Quantized layers: faster (integer kernels, or float ones where measured "
                  "faster on small layers; default), integer, float")
      ->check(CLI::IsMember({"faster", "integer", "float"}));
}

int64_t peak_rss_bytes() {
  // VmHWM, not getrusage's ru_maxrss: after fork + exec Linux reports the parent's peak in
  // ru_maxrss when that was higher (a benchmark script holding models would hide ours).
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    std::fclose(f);
    if (kib >= 0) return kib * 1024;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

std::string human_count(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string human_bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

}  // namespace brink::cli
