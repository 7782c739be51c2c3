// brink run MODEL: one inference; outputs saved as .npy, a summary printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_common.h"
#include "commands.h"
#include "loader/npy.h"

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
};

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
  auto session = Session::load(o.model, so);
  if (!session) return report_error(session.status());
  auto feeds = load_feeds(**session, o.feeds);
  if (!feeds) return report_error(feeds.status());
  const auto start = std::chrono::steady_clock::now();
  auto outputs = (*session)->run(*feeds);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!outputs) return report_error(outputs.status());

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
  cmd->add_option("model", o->model, "Model file (.onnx or .brink)")->required();
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
