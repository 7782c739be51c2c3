// brink run MODEL: one inference; outputs saved as .npy, a summary printed.
//
// With --stream (or a tcp://HOST:PORT model) a .brink package is read front to back as a
// stream and loaded progressively (package/stream_loader.h): verified before any chunk is
// accepted, each chunk verified as it arrives, and the inference started as soon as the
// session compiles, its layers waiting for their weights. --progress prints a line to stderr
// per verified chunk.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli_common.h"
#include "commands.h"
#include "loader/npy.h"
#include "package/signing.h"
#include "package/stream_loader.h"

namespace brink::cli {

namespace {

struct RunOptions {
  std::string model;
  FeedOptions feeds;
  std::string output_dir;
  int threads = 1;
  bool json = false;
  std::vector<std::string> dims;
  int opt_level = 2;
  PackageLoadOptions package;
  std::string int8_kernels = "faster";
  bool stream = false;
  bool progress = false;
};

// Loads a package progressively (package::load_streamed); the loader stays alive
// (receiving) while the session runs.
Result<std::unique_ptr<Session>> load_streamed(const RunOptions& o, const SessionOptions& so,
                                               package::StreamedPackage* st) {
  package::VerifyOptions verify;
  if (!o.package.pubkey.empty()) {
    BRINK_ASSIGN_OR_RETURN(verify.trusted_key, package::load_public_key(o.package.pubkey));
  }
  if (!o.package.key.empty()) {
    BRINK_ASSIGN_OR_RETURN(verify.decryption_key, package::load_encryption_key(o.package.key));
  }
  return package::load_streamed(o.model, verify, so, o.progress, st);
}

// Top-5 for outputs shaped like class scores: [N] or [1, N] floats with N >= 2.
void print_top5(const std::string& name, const Tensor& t) {
  if (t.dtype() != DataType::kFloat32 || t.numel() < 2) return;
  if (!(t.rank() == 1 || (t.rank() == 2 && t.dim(0) == 1))) return;
  std::vector<int64_t> idx(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  const float* v = t.data<float>();
  const size_t k = std::min<size_t>(5, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                    [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  std::printf("  top-%zu of %s:", k, name.c_str());
  for (size_t i = 0; i < k; ++i)
    std::printf(" %lld (%.4g)", static_cast<long long>(idx[i]), v[idx[i]]);
  std::printf("\n");
}

int run_command(const RunOptions& o) {
  SessionOptions so;
  so.num_threads = o.threads;
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  so.dim_values = *dims;
  so.optimization_level = o.opt_level;
  o.package.apply(&so);
  so.int8_kernels = parse_int8_kernels(o.int8_kernels).value();  // checked by the option
  const bool streamed = o.stream || package::is_stream_url(o.model);
  package::StreamedPackage st;
  if (streamed && o.package.max_memory_mb > 0)
    return report_error(
        Status(StatusCode::kInvalidArgument,
               "--max-memory does not apply to a streamed package (held in memory)"));
  auto session = streamed ? load_streamed(o, so, &st) : Session::load(o.model, so);
  if (!session) return report_error(session.status());
  auto feeds = load_feeds(**session, o.feeds);
  if (!feeds) return report_error(feeds.status());
  const auto start = std::chrono::steady_clock::now();
  auto outputs = (*session)->run(*feeds);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!outputs) return report_error(outputs.status());
  nlohmann::json stream_json;
  if (streamed) {
    // The whole stream must verify (and end where the package ends), not only what ran.
    if (Status s = st.loader->finish(); !s.is_ok()) return report_error(s);
    const double first = st.ms_to(st.loader->first_step_time());
    const double first_weighted = st.ms_to(st.loader->first_weighted_step_time());
    const double all = st.ms_to(st.loader->all_verified_time());
    const double done = st.ms_to(start) + ms;
    stream_json = {{"first_step_ms", first},
                   {"first_layer_ms", first_weighted},
                   {"all_verified_ms", all},
                   {"result_ms", done},
                   {"progressive", st.loader->progressive()},
                   {"target", st.loader->info().selected_target}};
    if (!o.json) std::printf("%s\n", st.summary(done).c_str());
  }

  nlohmann::json out_json = nlohmann::json::array();
  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec)
      return report_error(io_error(o.output_dir + ": cannot create directory: " + ec.message()));
  }
  const auto& infos = (*session)->outputs();
  for (size_t i = 0; i < outputs->size(); ++i) {
    const Tensor& t = (*outputs)[i];
    std::string file;
    if (!o.output_dir.empty()) {
      file = (std::filesystem::path(o.output_dir) / (output_file_name(infos[i].name) + ".npy"))
                 .string();
      if (Status s = npy::write_npy(file, t); !s.is_ok()) return report_error(s);
    }
    out_json.push_back({{"name", infos[i].name},
                        {"dtype", dtype_long_name(t.dtype())},
                        {"shape", t.shape()},
                        {"file", file}});
  }
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"outputs", out_json}, {"latency_ms", ms}};
    if (streamed) j["stream"] = stream_json;
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("%s: ran in %.3f ms\n", o.model.c_str(), ms);
  for (size_t i = 0; i < outputs->size(); ++i) {
    const Tensor& t = (*outputs)[i];
    std::printf("output '%s': %s %s%s%s\n", infos[i].name.c_str(), dtype_long_name(t.dtype()),
                shape_to_string(t.shape()).c_str(), o.output_dir.empty() ? "" : " -> ",
                out_json[i]["file"].get<std::string>().c_str());
    print_top5(infos[i].name, t);
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run one inference and save the outputs as .npy");
  cmd->add_option("model", o->model,
                  "Model file (.onnx or .brink), or tcp://HOST:PORT to stream a .brink package")
      ->required();
  cmd->add_flag("--stream", o->stream,
                "Load a .brink package progressively, reading it as a stream (implied by tcp://)");
  cmd->add_flag("--progress", o->progress,
                "With --stream: print a line to stderr as each chunk is verified");
  cmd->add_option("--input,-i", o->feeds.input_specs, "An input as NAME=FILE.npy (repeatable)");
  cmd->add_option("--inputs", o->feeds.inputs_npz, "An .npz file whose arrays are inputs, by name");
  cmd->add_flag("--random", o->feeds.random, "Fill inputs not given with seeded random data");
  cmd->add_option("--seed", o->feeds.seed, "Seed for --random");
  cmd->add_option("--output-dir,-o", o->output_dir, "Write each output to DIR/<name>.npy");
  cmd->add_option("--threads,-t", o->threads, "Threads (0: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--dim", o->dims, "Fix a symbolic dim: NAME=SIZE (repeatable)");
  add_package_load_options(cmd, &o->package);
  add_int8_kernels_option(cmd, &o->int8_kernels);
  cmd->add_option("--opt-level,-O", o->opt_level,
                  "Graph optimization: 0 none, 1 fusion, 2 fusion + NHWC layout (default)")
      ->check(CLI::Range(0, 2));
  cmd->add_flag("--json", o->json, "Print a JSON summary");
  cmd->callback([o, exit_code] { *exit_code = run_command(*o); });
}

}  // namespace brink::cli
