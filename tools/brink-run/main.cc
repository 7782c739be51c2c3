// brink-run: the device-side runner. Loads a .brink package (verify, map, compile with its
// packed weights) and runs it, with nothing but the runtime: no protobuf, no ONNX, no CLI
// framework. What a device image ships next to its packages.
//
//   brink-run MODEL.brink [--input NAME=FILE.npy ...] [--output-dir DIR] [--threads N]
//             [--pubkey K.pub] [--key K.enckey] [--max-memory MiB] [--repeat N]
//             [--stream [--progress]]
//   brink-run tcp://HOST:PORT [--progress] ...
//   brink-run --ops        what this build runs: its operators ("domain:OpType", as a
//                          selective build lists them), its kernel variants and whether it
//                          can stream packages
//
// --stream (implied by tcp://) loads the package progressively as `brink run --stream` does
// (package/stream_loader.h, load_streamed): verified before any chunk is accepted, each
// chunk verified as it arrives, the first run started once the session compiles; --progress
// prints a line to stderr per verified chunk. The whole stream must verify before the
// outputs are reported.
//
// A build configured with -DBRINK_RUN_STREAMING=OFF leaves the streaming loader out and
// refuses --stream and tcp:// in one line.
//
// Inputs not given get seeded random data. Prints load time, first and median run time, and
// each output's shape; writes outputs as .npy with --output-dir. Errors: one line on stderr,
// exit 1 (2 for a wrong command line).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "brink/session.h"
#include "core/cpu_features.h"
#include "loader/npy.h"
#include "ops/op.h"
#include "package/package.h"
#include "package/stream_loader.h"

#ifndef BRINK_RUN_STREAMING
#define BRINK_RUN_STREAMING 1
#endif

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "error: %s (usage: brink-run MODEL.brink [--input NAME=FILE.npy] [--output-dir DIR] "
               "[--threads N] [--pubkey K] [--key K] [--max-memory MiB] [--repeat N] "
               "[--stream] [--progress]; MODEL may be tcp://HOST:PORT; or brink-run --ops)\n",
               why);
  return 2;
}

int fail(const brink::Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

bool parse_int(const char* text, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// The operators this runtime registers (all of them, or a selective build's) and the kernel
// variants it contains, so a device image can be checked against the packages it will run.
int print_ops() {
  std::printf("# kernels:%s%s%s%s%s\n", BRINK_BUILD_PORTABLE ? " portable" : "",
              BRINK_BUILD_AVX2 ? " avx2" : "", BRINK_BUILD_AVX512 ? " avx512" : "",
              BRINK_BUILD_AVX512VNNI ? " avx512vnni" : "", BRINK_BUILD_NEON ? " neon" : "");
  std::printf("# loading: file%s\n", BRINK_RUN_STREAMING ? " stream" : "");
  for (const auto& [key, defs] : brink::ops::OpRegistry::global().all())
    std::printf("%s%s\n", key.first.empty() ? "" : (key.first + ":").c_str(), key.second.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--ops") == 0) return print_ops();
  using namespace brink;
  std::string model, output_dir, pubkey, key;
  std::vector<std::pair<std::string, std::string>> input_files;
  long long threads = 1, max_memory = 0, repeat = 10;
  bool stream = false, progress = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--input" && has_value) {
      const std::string spec = argv[++i];
      const auto eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) return usage("--input takes NAME=FILE.npy");
      input_files.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
    } else if (a == "--output-dir" && has_value) {
      output_dir = argv[++i];
    } else if (a == "--pubkey" && has_value) {
      pubkey = argv[++i];
    } else if (a == "--key" && has_value) {
      key = argv[++i];
    } else if (a == "--threads" && has_value) {
      if (!parse_int(argv[++i], 0, 1024, &threads)) return usage("--threads takes 0..1024");
    } else if (a == "--max-memory" && has_value) {
      if (!parse_int(argv[++i], 1, 1 << 30, &max_memory))
        return usage("--max-memory takes MiB >= 1");
    } else if (a == "--repeat" && has_value) {
      if (!parse_int(argv[++i], 1, 1000000, &repeat)) return usage("--repeat takes 1..1000000");
    } else if (a == "--stream") {
      stream = true;
    } else if (a == "--progress") {
      progress = true;
    } else if (!a.empty() && a[0] != '-' && model.empty()) {
      model = a;
    } else {
      return usage(("unexpected argument '" + a + "'").c_str());
    }
  }
  if (model.empty()) return usage("no model given");
  stream = stream || package::is_stream_url(model);
  if (stream && !BRINK_RUN_STREAMING)
    return fail(unsupported(model +
                            ": this brink-run was built without streaming "
                            "(-DBRINK_RUN_STREAMING=OFF): --stream and tcp:// are not available"));
  if (progress && !stream) return usage("--progress needs --stream or a tcp:// model");
  if (stream && max_memory > 0)
    return usage("--max-memory does not apply to a streamed package (held in memory)");
  if (!stream && !package::is_package_file(model))
    return fail(Status(StatusCode::kInvalidModel,
                       model + ": not a .brink package (brink-run runs packages; make one with "
                               "brink pack)"));

  SessionOptions options;
  options.num_threads = static_cast<int>(threads);
  options.max_memory_bytes = max_memory << 20;
  const auto t0 = std::chrono::steady_clock::now();
  // The package loader directly: Session::load would also link the ONNX importer.
  package::VerifyOptions verify;
  if (!pubkey.empty()) {
    auto k = package::load_public_key(pubkey);
    if (!k.is_ok()) return fail(k.status());
    verify.trusted_key = *k;
  }
  if (!key.empty()) {
    auto k = package::load_encryption_key(key);
    if (!k.is_ok()) return fail(k.status());
    verify.decryption_key = *k;
  }
#if BRINK_RUN_STREAMING
  package::StreamedPackage streamed;
  auto session = stream ? package::load_streamed(model, verify, options, progress, &streamed)
                        : package::load_package_session(model, options, verify);
#else
  auto session = package::load_package_session(model, options, verify);
#endif
  if (!session.is_ok()) return fail(session.status());
  const double load_ms = ms_since(t0);

  std::vector<NamedTensor> feeds;
  std::mt19937 rng(0);
  for (const TensorInfo& in : (*session)->inputs()) {
    auto given = std::find_if(input_files.begin(), input_files.end(),
                              [&](const auto& f) { return f.first == in.name; });
    if (given != input_files.end()) {
      auto t = npy::read_npy(given->second);
      if (!t.is_ok()) return fail(t.status());
      feeds.emplace_back(in.name, std::move(*t));
      continue;
    }
    Shape shape;
    for (int64_t d : in.shape) shape.push_back(d < 0 ? 1 : d);
    Tensor t = Tensor::zeros(in.dtype, shape);
    if (in.dtype == DataType::kFloat32) {
      std::uniform_real_distribution<float> u(0.0f, 1.0f);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
    }
    feeds.emplace_back(in.name, std::move(t));
  }
  for (const auto& f : input_files)
    if (std::none_of(feeds.begin(), feeds.end(), [&](const auto& x) { return x.first == f.first; }))
      return fail(Status(StatusCode::kInvalidArgument,
                         "--input '" + f.first + "': the model has no input of that name"));

  std::vector<double> times;
  [[maybe_unused]] double first_result_ms = 0;  // from the start of the stream
  std::vector<Tensor> outputs;
  for (long long r = 0; r < repeat; ++r) {
    const auto t = std::chrono::steady_clock::now();
    auto out = (*session)->run(feeds);
    if (!out.is_ok()) return fail(out.status());
    times.push_back(ms_since(t));
    if (r == 0) {
      outputs = std::move(*out);
#if BRINK_RUN_STREAMING
      if (stream) first_result_ms = streamed.ms_to(std::chrono::steady_clock::now());
#endif
    }
  }
  std::string stream_summary;
#if BRINK_RUN_STREAMING
  if (stream) {
    // The whole stream must verify (and end where the package ends), not only what ran.
    Status s = streamed.loader->finish();
    if (!s.is_ok()) return fail(s);
    stream_summary = streamed.summary(first_result_ms);
  }
#endif
  std::vector<double> sorted(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  std::sort(sorted.begin(), sorted.end());
  std::printf("%s: load %.2f ms, first run %.2f ms, median of %zu more %.2f ms\n", model.c_str(),
              load_ms, times[0], times.size() - 1, sorted[sorted.size() / 2]);
  if (stream) std::printf("%s\n", stream_summary.c_str());
  const auto& infos = (*session)->outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::printf("output '%s': %s\n", infos[i].name.c_str(),
                shape_to_string(outputs[i].shape()).c_str());
    if (!output_dir.empty()) {
      std::string name = infos[i].name;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
          c = '_';
      Status s = npy::write_npy(output_dir + "/" + name + ".npy", outputs[i]);
      if (!s.is_ok()) return fail(s);
    }
  }
  return 0;
}
