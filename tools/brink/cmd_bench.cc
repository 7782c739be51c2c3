// brink bench MODEL: load time, first inference, then steady-state latency percentiles.
// The JSON it prints (--json) is documented in docs/BENCH_JSON.md and kept stable.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include "cli_common.h"
#include "commands.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/peak.h"

namespace brink::cli {

namespace {

struct BenchOptions {
  std::string model;
  FeedOptions feeds;
  int threads = 1;
  int warmup = 5;
  int iterations = 0;
  double seconds = 2.0;
  bool json = false;
  bool peak = false;
  bool profile = false;
  std::vector<std::string> dims;
  int opt_level = 2;
  PackageLoadOptions package;
  std::string int8_kernels = "faster";
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank =
      static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// FP32 peak of this machine as measured by a register-only FMA loop, for 1 thread and for
// `threads` (0: one per physical core).
int peak_command(const BenchOptions& o) {
  const Isa isa = best_isa();
  const int threads = o.threads > 1 ? o.threads : ThreadPool::default_num_threads();
  const double one = kernels::measure_fp32_peak_gflops(1, isa);
  const double all = threads == 1 ? one : kernels::measure_fp32_peak_gflops(threads, isa);
  const CpuFeatures& f = cpu_features();
  nlohmann::json j = {{"schema_version", 1},
                      {"isa", isa_name(isa)},
                      {"cpu", f.brand},
                      {"physical_cores", f.physical_cores},
                      {"logical_cores", f.logical_cores},
                      {"threads", threads},
                      {"fp32_peak_gflops_1_thread", one},
                      {"fp32_peak_gflops", all}};
  if (o.json) {
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("FP32 peak (%s, %s)\n", isa_name(isa), f.brand.c_str());
  std::printf("  1 thread   %10.1f GFLOP/s\n", one);
  if (threads != 1) std::printf("  %d threads %10.1f GFLOP/s\n", threads, all);
  return 0;
}

struct LayerProfile {
  size_t step = 0;
  double median_ms = 0;
};

// Per-layer time: the median over the timed runs of each step's wall time.
nlohmann::json profile_json(const CompiledModel& cm, const std::vector<std::vector<double>>& runs,
                            double peak_gflops, double total_median_ms) {
  nlohmann::json layers = nlohmann::json::array();
  const auto& infos = cm.layers();
  for (size_t s = 0; s < infos.size(); ++s) {
    std::vector<double> t;
    for (const auto& r : runs) t.push_back(r[s] * 1000.0);
    std::sort(t.begin(), t.end());
    const double ms = t.empty() ? 0.0 : t[t.size() / 2];
    const LayerInfo& l = infos[s];
    const double gflops = l.macs > 0 && ms > 0 ? static_cast<double>(l.flops) / (ms * 1e6) : 0.0;
    layers.push_back(
        {{"index", s},
         {"name", l.name},
         {"op_type", l.op_type},
         {"kernel", l.kernel},
         {"median_ms", ms},
         {"percent_of_total", total_median_ms > 0 ? 100.0 * ms / total_median_ms : 0.0},
         {"flops", l.flops},
         {"gflops", gflops},
         {"percent_of_peak", peak_gflops > 0 ? 100.0 * gflops / peak_gflops : 0.0}});
  }
  return layers;
}

// The op type, and the kernel when the runtime chose one at load ("QConv [fp32]").
std::string op_label(const nlohmann::json& layer) {
  std::string op = layer["op_type"].get<std::string>();
  const std::string kernel = layer["kernel"].get<std::string>();
  if (!kernel.empty()) op += " [" + kernel.substr(0, kernel.find(' ')) + "]";
  return op;
}

int bench_command(BenchOptions o) {
  if (o.peak && o.model.empty()) return peak_command(o);
  if (o.model.empty()) return report_error(invalid_argument("bench needs a MODEL (or --peak)"));
  o.feeds.random = true;  // inputs not given are filled with seeded data
  SessionOptions so;
  so.num_threads = o.threads;
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  so.dim_values = *dims;
  so.optimization_level = o.opt_level;
  o.package.apply(&so);
  so.int8_kernels = parse_int8_kernels(o.int8_kernels).value();  // checked by the option
  const auto t0 = Clock::now();
  auto session = Session::load(o.model, so);
  if (!session) return report_error(session.status());
  const double load_ms = ms_since(t0);
  auto feeds = load_feeds(**session, o.feeds);
  if (!feeds) return report_error(feeds.status());

  const auto t1 = Clock::now();
  auto first = (*session)->run(*feeds);
  if (!first) return report_error(first.status());
  const double first_ms = ms_since(t1);
  for (int i = 0; i < o.warmup; ++i)
    if (auto r = (*session)->run(*feeds); !r) return report_error(r.status());

  std::vector<double> samples;
  std::vector<std::vector<double>> step_runs;
  const CompiledModel& cm = (*session)->compiled();
  const auto bench_start = Clock::now();
  while (true) {
    if (o.iterations > 0 ? static_cast<int>(samples.size()) >= o.iterations
                         : (ms_since(bench_start) >= o.seconds * 1000.0 && samples.size() >= 3))
      break;
    const auto t = Clock::now();
    std::vector<double> steps;
    auto r = o.profile ? cm.run(*feeds, &steps) : (*session)->run(*feeds);
    samples.push_back(ms_since(t));
    if (!r) return report_error(r.status());
    if (o.profile) step_runs.push_back(std::move(steps));
  }
  const double total_ms = ms_since(bench_start);
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double s : samples) sum += s;
  const double mean = sum / static_cast<double>(samples.size());
  const int threads = cm.num_threads();
  int64_t model_flops = 0;
  for (const LayerInfo& l : cm.layers()) model_flops += l.macs > 0 ? l.flops : 0;
  const double p50 = percentile(sorted, 50);
  double peak = 0;
  if (o.peak || o.profile) peak = kernels::measure_fp32_peak_gflops(threads, best_isa());

  nlohmann::json j = {
      {"schema_version", 1},
      {"model", o.model},
      {"threads", threads},
      {"iterations", samples.size()},
      {"load_ms", load_ms},
      {"first_inference_ms", first_ms},
      {"latency_ms",
       {{"p50", percentile(sorted, 50)},
        {"p90", percentile(sorted, 90)},
        {"p99", percentile(sorted, 99)},
        {"mean", mean},
        {"min", sorted.front()},
        {"max", sorted.back()}}},
      {"throughput_per_s", 1000.0 * static_cast<double>(samples.size()) / total_ms},
      {"peak_rss_bytes", peak_rss_bytes()},
      {"model_flops", model_flops},
      {"gflops", p50 > 0 ? static_cast<double>(model_flops) / (p50 * 1e6) : 0.0},
      {"isa", isa_name(best_isa())},
  };
  if (peak > 0) {
    j["fp32_peak_gflops"] = peak;
    j["percent_of_peak"] = 100.0 * j["gflops"].get<double>() / peak;
  }
  if (o.profile) j["layers"] = profile_json(cm, step_runs, peak, p50);
  if (o.json) {
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("%s (%d thread%s, %zu iterations)\n", o.model.c_str(), threads,
              threads == 1 ? "" : "s", samples.size());
  std::printf("  load            %10.3f ms\n", load_ms);
  std::printf("  first inference %10.3f ms\n", first_ms);
  std::printf("  latency p50     %10.3f ms\n", percentile(sorted, 50));
  std::printf("  latency p90     %10.3f ms\n", percentile(sorted, 90));
  std::printf("  latency p99     %10.3f ms\n", percentile(sorted, 99));
  std::printf("  latency mean    %10.3f ms (min %.3f)\n", mean, sorted.front());
  std::printf("  throughput      %10.2f inferences/s\n", j["throughput_per_s"].get<double>());
  std::printf("  peak RSS        %10.1f MiB\n", static_cast<double>(peak_rss_bytes()) / (1 << 20));
  if (model_flops > 0)
    std::printf("  compute         %10.2f GFLOP/s (%.3f GFLOP per inference)\n",
                j["gflops"].get<double>(), static_cast<double>(model_flops) / 1e9);
  if (peak > 0)
    std::printf("  of FP32 peak    %10.1f %% (peak %.1f GFLOP/s, %s, %d thread%s)\n",
                j["percent_of_peak"].get<double>(), peak, isa_name(best_isa()), threads,
                threads == 1 ? "" : "s");
  if (o.profile) {
    std::printf("\n  %-4s %-36s %-20s %9s %6s %9s %6s\n", "#", "layer", "op", "ms", "%", "GFLOP/s",
                "%peak");
    for (const auto& l : j["layers"]) {
      std::string name = l["name"].get<std::string>();
      if (name.size() > 36) name = name.substr(0, 33) + "...";
      std::printf("  %-4zu %-36s %-20s %9.4f %6.1f %9.1f %6.1f\n", l["index"].get<size_t>(),
                  name.c_str(), op_label(l).c_str(), l["median_ms"].get<double>(),
                  l["percent_of_total"].get<double>(), l["gflops"].get<double>(),
                  l["percent_of_peak"].get<double>());
    }
    // Time by operator type, largest first: where the time goes at a glance.
    std::map<std::string, double> by_op;
    for (const auto& l : j["layers"])
      by_op[l["op_type"].get<std::string>()] += l["median_ms"].get<double>();
    std::vector<std::pair<double, std::string>> ops;
    for (const auto& [op, ms] : by_op) ops.push_back({ms, op});
    std::sort(ops.rbegin(), ops.rend());
    std::printf("\n  by operator type:\n");
    for (const auto& [ms, op] : ops)
      std::printf("  %-24s %9.3f ms %6.1f %%\n", op.c_str(), ms, p50 > 0 ? 100.0 * ms / p50 : 0.0);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Measure load time, first inference and latency percentiles");
  cmd->add_option("model", o->model, "Model file (.onnx or .brink); optional with --peak");
  cmd->add_option("--threads,-t", o->threads, "Threads (0: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--warmup", o->warmup, "Untimed runs before measuring")
      ->check(CLI::Range(0, 1000000));
  auto* iters = cmd->add_option("--iterations,-n", o->iterations, "Timed runs")
                    ->check(CLI::Range(1, 100000000));
  cmd->add_option("--seconds", o->seconds, "Time to measure for (default 2)")
      ->check(CLI::Range(0.0, 86400.0))
      ->excludes(iters);
  cmd->add_option("--input,-i", o->feeds.input_specs,
                  "An input as NAME=FILE.npy (others are random)");
  cmd->add_option("--inputs", o->feeds.inputs_npz, "An .npz file whose arrays are inputs, by name");
  cmd->add_option("--seed", o->feeds.seed, "Seed for the random inputs");
  cmd->add_option("--dim", o->dims, "Fix a symbolic dim: NAME=SIZE (others become 1)");
  add_package_load_options(cmd, &o->package);
  add_int8_kernels_option(cmd, &o->int8_kernels);
  cmd->add_option("--opt-level,-O", o->opt_level,
                  "Graph optimization: 0 none, 1 fusion, 2 fusion + NHWC layout (default)")
      ->check(CLI::Range(0, 2));
  cmd->add_flag("--json", o->json, "Print JSON (schema: docs/BENCH_JSON.md)");
  cmd->add_flag("--peak", o->peak,
                "Measure this machine's FP32 peak (alone, or to report a model's % of it)");
  cmd->add_flag("--profile", o->profile, "Time every layer: ms, GFLOP/s and % of FP32 peak");
  cmd->callback([o, exit_code] { *exit_code = bench_command(*o); });
}

}  // namespace brink::cli
