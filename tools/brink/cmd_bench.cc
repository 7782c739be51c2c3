// brink bench MODEL: load time, first inference, then steady-state latency percentiles.
// The JSON it prints (--json) is documented in docs/BENCH_JSON.md and kept stable.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli_common.h"
#include "commands.h"

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
  std::vector<std::string> dims;
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

int bench_command(BenchOptions o) {
  o.feeds.random = true;  // inputs not given are filled with seeded data
  SessionOptions so;
  so.num_threads = o.threads;
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  so.dim_values = *dims;
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
  const auto bench_start = Clock::now();
  while (true) {
    if (o.iterations > 0 ? static_cast<int>(samples.size()) >= o.iterations
                         : (ms_since(bench_start) >= o.seconds * 1000.0 && samples.size() >= 3))
      break;
    const auto t = Clock::now();
    auto r = (*session)->run(*feeds);
    samples.push_back(ms_since(t));
    if (!r) return report_error(r.status());
  }
  const double total_ms = ms_since(bench_start);
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double s : samples) sum += s;
  const double mean = sum / static_cast<double>(samples.size());
  const int threads =
      so.num_threads > 0 ? so.num_threads : static_cast<int>(std::thread::hardware_concurrency());

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
  };
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
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Measure load time, first inference and latency percentiles");
  cmd->add_option("model", o->model, "Model file (.onnx)")->required();
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
  cmd->add_flag("--json", o->json, "Print JSON (schema: docs/BENCH_JSON.md)");
  cmd->callback([o, exit_code] { *exit_code = bench_command(*o); });
}

}  // namespace brink::cli
