// Runs the ONNX backend node tests (Debian's libonnx-testdata) through Brink.
//
// Each test folder holds model.onnx and test_data_set_N/{input,output}_K.pb. A test whose
// model Brink reports as unsupported (an op, dtype or attribute it does not implement) is
// counted as such, with the reason; every other test must load, run and match the expected
// outputs (rtol 1e-3, atol 1e-7, as ONNX's own backend runner), or be on the skip list
// with a written reason. Each test runs in a forked child so a crash is reported against
// the test that caused it instead of ending the run.
//
// Usage: onnx_node_tests --data DIR [--skip-list FILE] [--filter SUBSTR] [--json OUT] [--no-fork]
// [-v]
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "brink/session.h"
#include "loader/npy.h"
#include "onnx/onnx_io.h"
#include "runtime/compiled_model.h"

namespace fs = std::filesystem;
using namespace brink;

namespace {

enum class Outcome { kPass, kFail, kUnsupported, kSkipped };
const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kFail:
      return "fail";
    case Outcome::kUnsupported:
      return "unsupported";
    case Outcome::kSkipped:
      return "skipped";
  }
  return "?";
}

struct TestResult {
  Outcome outcome = Outcome::kFail;
  std::string detail;
  std::vector<std::string> ops;
};

std::string compare(const Tensor& got, const Tensor& want, const std::string& name) {
  if (got.dtype() != want.dtype())
    return "output '" + name + "' has type " + dtype_name(got.dtype()) + ", expected " +
           dtype_name(want.dtype());
  if (got.shape() != want.shape())
    return "output '" + name + "' has shape " + shape_to_string(got.shape()) + ", expected " +
           shape_to_string(want.shape());
  const bool is_float = dtype_is_float(got.dtype());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (is_float) {
      const double g = got.element_as_double(i), w = want.element_as_double(i);
      if (std::isnan(w) && std::isnan(g)) continue;
      if (std::isinf(w) && g == w) continue;
      if (!(std::fabs(g - w) <= 1e-7 + 1e-3 * std::fabs(w)))
        return "output '" + name + "' element " + std::to_string(i) + " is " + std::to_string(g) +
               ", expected " + std::to_string(w);
    } else if (got.element_as_int64(i) != want.element_as_int64(i)) {
      return "output '" + name + "' element " + std::to_string(i) + " is " +
             std::to_string(got.element_as_int64(i)) + ", expected " +
             std::to_string(want.element_as_int64(i));
    }
  }
  return "";
}

// ONNX 1.12's test data stores bfloat16 tensors with data type UINT16; read them as the
// bfloat16 the model declares.
Tensor as_bfloat16_if(const Tensor& t, DataType wanted) {
  if (t.dtype() != DataType::kUInt16 || wanted != DataType::kBFloat16) return t;
  Tensor copy = t.clone();
  return Tensor::wrap(DataType::kBFloat16, copy.shape(), copy.raw_data(),
                      std::make_shared<Tensor>(copy));
}

Result<Tensor> read_pb(const fs::path& p, std::string* name) {
  BRINK_ASSIGN_OR_RETURN(std::string bytes, npy::read_file(p.string()));
  return onnx_io::parse_tensor_proto(bytes.data(), bytes.size(), name);
}

TestResult run_test(const fs::path& dir) {
  TestResult r;
  auto model = onnx_io::load_onnx_file((dir / "model.onnx").string());
  if (!model) {
    r.outcome =
        model.status().code() == StatusCode::kUnsupported ? Outcome::kUnsupported : Outcome::kFail;
    r.detail = model.status().message();
    return r;
  }
  for (const auto& n : model->graph.nodes)
    r.ops.push_back((n.domain.empty() ? "" : n.domain + ".") + n.op_type);
  auto session = Session::from_model(std::move(model).value());
  if (!session) {
    r.outcome = session.status().code() == StatusCode::kUnsupported ? Outcome::kUnsupported
                                                                    : Outcome::kFail;
    r.detail = session.status().message();
    return r;
  }
  const Session& s = **session;
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const fs::path& set : sets) {
    std::vector<NamedTensor> feeds;
    for (size_t k = 0;; ++k) {
      const fs::path p = set / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) break;
      std::string name;
      auto t = read_pb(p, &name);
      if (!t) return {Outcome::kFail, t.status().message(), r.ops};
      // Test data names its tensors; fall back to input order when a name is missing.
      if (name.empty() && k < s.inputs().size()) name = s.inputs()[k].name;
      Tensor value = std::move(t).value();
      for (const TensorInfo& info : s.inputs())
        if (info.name == name) value = as_bfloat16_if(value, info.dtype);
      feeds.emplace_back(name, std::move(value));
    }
    auto outputs = s.run(feeds);
    if (!outputs) return {Outcome::kFail, outputs.status().message(), r.ops};
    for (size_t k = 0; k < outputs->size(); ++k) {
      const fs::path p = set / ("output_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) break;
      std::string name;
      auto want = read_pb(p, &name);
      if (!want) return {Outcome::kFail, want.status().message(), r.ops};
      std::string diff =
          compare((*outputs)[k], as_bfloat16_if(*want, (*outputs)[k].dtype()), s.outputs()[k].name);
      if (!diff.empty()) return {Outcome::kFail, set.filename().string() + ": " + diff, r.ops};
    }
  }
  r.outcome = Outcome::kPass;
  return r;
}

// Runs run_test in a child process; a crash or a hang becomes a failure of that test.
TestResult run_isolated(const fs::path& dir, int timeout_s) {
  int fds[2];
  if (pipe(fds) != 0) return run_test(dir);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(static_cast<unsigned>(timeout_s));
    TestResult r = run_test(dir);
    nlohmann::json j = {
        {"outcome", static_cast<int>(r.outcome)}, {"detail", r.detail}, {"ops", r.ops}};
    const std::string s = j.dump();
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = write(fds[1], s.data() + off, s.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return {Outcome::kFail,
            std::string("crashed with signal ") + std::to_string(WTERMSIG(status)) +
                (WTERMSIG(status) == SIGALRM ? " (timeout)" : ""),
            {}};
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded())
    return {Outcome::kFail, "child exited with status " + std::to_string(WEXITSTATUS(status)), {}};
  return {static_cast<Outcome>(j["outcome"].get<int>()), j["detail"].get<std::string>(),
          j["ops"].get<std::vector<std::string>>()};
}

std::map<std::string, std::string> read_skip_list(const std::string& path) {
  std::map<std::string, std::string> skips;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.find_first_of(" \t");
    skips[line.substr(0, sp)] =
        sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", sp));
  }
  return skips;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/libonnx-testdata/data/node", skip_list, filter, json_out;
  bool fork_tests = true, verbose = false;
  int timeout_s = 120;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data")
      data = next();
    else if (a == "--skip-list")
      skip_list = next();
    else if (a == "--filter")
      filter = next();
    else if (a == "--json")
      json_out = next();
    else if (a == "--timeout")
      timeout_s = std::stoi(next());
    else if (a == "--no-fork")
      fork_tests = false;
    else if (a == "-v" || a == "--verbose")
      verbose = true;
    else {
      std::fprintf(stderr, "error: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (!fs::is_directory(data)) {
    std::fprintf(stderr, "error: %s: no such directory (install Debian's libonnx-testdata)\n",
                 data.c_str());
    return 1;
  }
  const auto skips =
      skip_list.empty() ? std::map<std::string, std::string>() : read_skip_list(skip_list);
  std::vector<fs::path> tests;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx") &&
        (filter.empty() || e.path().filename().string().find(filter) != std::string::npos))
      tests.push_back(e.path());
  std::sort(tests.begin(), tests.end());

  std::map<Outcome, int> counts;
  nlohmann::json results = nlohmann::json::array();
  for (const fs::path& dir : tests) {
    const std::string name = dir.filename().string();
    TestResult r = fork_tests ? run_isolated(dir, timeout_s) : run_test(dir);
    if (auto it = skips.find(name); it != skips.end() && r.outcome != Outcome::kPass) {
      r.outcome = Outcome::kSkipped;
      r.detail = "skip list: " + it->second;
    }
    counts[r.outcome]++;
    results.push_back({{"test", name},
                       {"outcome", outcome_name(r.outcome)},
                       {"detail", r.detail},
                       {"ops", r.ops}});
    if (r.outcome == Outcome::kFail || (verbose && r.outcome != Outcome::kPass))
      std::printf("%-11s %s: %s\n", outcome_name(r.outcome), name.c_str(), r.detail.c_str());
  }
  if (!json_out.empty()) {
    std::ofstream f(json_out);
    f << nlohmann::json{{"data", data},
                        {"passed", counts[Outcome::kPass]},
                        {"failed", counts[Outcome::kFail]},
                        {"unsupported", counts[Outcome::kUnsupported]},
                        {"skipped", counts[Outcome::kSkipped]},
                        {"tests", results}}
             .dump(1);
  }
  std::printf("ONNX node tests: %zu total, %d unsupported by Brink\n", tests.size(),
              counts[Outcome::kUnsupported]);
  std::printf("%d passed, %d failed, %d skipped\n", counts[Outcome::kPass], counts[Outcome::kFail],
              counts[Outcome::kSkipped]);
  return counts[Outcome::kFail] == 0 ? 0 : 1;
}
