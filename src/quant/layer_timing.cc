#include "quant/layer_timing.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "runtime/compiled_model.h"

namespace brink::quant {

namespace {

// One runtime step: the node it runs and its median time.
struct StepTime {
  std::string node, op, kernel;
  std::vector<std::string> outputs;
  double median_ms = 0;
};

struct ModelProfile {
  std::vector<StepTime> steps;
  double p50_ms = 0;
  int threads = 1;  // as the session resolved them (0 asks for one per core)
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

Result<ModelProfile> profile_model(const ir::Model& model,
                                   const std::vector<std::vector<NamedTensor>>& samples, int runs,
                                   int num_threads) {
  SessionOptions so;
  so.num_threads = num_threads;
  BRINK_ASSIGN_OR_RETURN(auto session, Session::from_model(model, so));
  const CompiledModel& cm = session->compiled();
  const auto& layers = cm.layers();
  ModelProfile profile;
  profile.threads = cm.num_threads();
  for (const LayerInfo& l : layers) {
    StepTime st;
    const ir::Graph& g = cm.model().graph;
    const ir::Node& n = g.nodes[static_cast<size_t>(l.node_index)];
    st.node = n.name;
    st.op = n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type;
    // The kernel the runtime chose at load, when it had a choice ("INT8 only where faster":
    // "fp32 (2.1 us) faster than int8 (3.9 us)" for a brink.QConv on the float kernels).
    st.kernel = l.kernel;
    for (int v : n.outputs)
      if (v >= 0) st.outputs.push_back(g.value(v).name);
    profile.steps.push_back(std::move(st));
  }
  BRINK_RETURN_IF_ERROR(cm.run(samples[0]).status());  // warm-up: first-run allocations
  std::vector<std::vector<double>> per_step(layers.size());
  std::vector<double> totals;
  std::vector<double> steps;
  for (int r = 0; r < runs; ++r)
    for (const auto& feed : samples) {
      steps.clear();
      const auto t0 = std::chrono::steady_clock::now();
      BRINK_RETURN_IF_ERROR(cm.run(feed, &steps).status());
      totals.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      for (size_t s = 0; s < per_step.size() && s < steps.size(); ++s)
        per_step[s].push_back(steps[s] * 1000.0);
    }
  for (size_t s = 0; s < per_step.size(); ++s) profile.steps[s].median_ms = median(per_step[s]);
  profile.p50_ms = median(totals);
  return profile;
}

// Maps the report's layers onto one model's steps (see the file comment of layer_timing.h):
// `tensor_of(layer)` gives the candidate output tensor names. Fills `time_of(layer)` and
// returns the summed median time of the steps no layer claimed.
template <typename NamesOf, typename TensorsOf, typename TimeOf>
double map_layers(std::vector<LayerReport>& layers, const ModelProfile& profile, NamesOf names_of,
                  TensorsOf tensors_of, TimeOf time_of) {
  std::vector<int> claimed_by(profile.steps.size(), -1);
  std::vector<int> step_of(layers.size(), -1);
  // Node names first: fused nodes keep the name of the node they were built around.
  for (size_t k = 0; k < layers.size(); ++k)
    for (const std::string& name : names_of(layers[k]))
      for (size_t s = 0; s < profile.steps.size() && step_of[k] < 0; ++s)
        if (!name.empty() && profile.steps[s].node == name) step_of[k] = static_cast<int>(s);
  // Then output tensors, for the layers whose node name is gone.
  for (size_t k = 0; k < layers.size(); ++k) {
    if (step_of[k] >= 0) continue;
    for (const std::string& tensor : tensors_of(layers[k])) {
      if (tensor.empty()) continue;
      // The NHWC layout pass renames a converted node's output to "<name>_nhwc".
      for (const std::string& t : {tensor, tensor + "_nhwc"})
        for (size_t s = 0; s < profile.steps.size() && step_of[k] < 0; ++s) {
          const auto& outs = profile.steps[s].outputs;
          if (std::find(outs.begin(), outs.end(), t) != outs.end())
            step_of[k] = static_cast<int>(s);
        }
    }
  }
  for (size_t k = 0; k < layers.size(); ++k) {
    LayerTime& lt = time_of(layers[k]);
    lt = LayerTime{};
    if (step_of[k] < 0) {
      lt.note = "fused away (no runtime node has its name or output)";
      continue;
    }
    const size_t s = static_cast<size_t>(step_of[k]);
    const StepTime& st = profile.steps[s];
    lt.node = st.node;
    lt.op = st.op;
    lt.kernel = st.kernel;
    if (claimed_by[s] >= 0) {
      lt.note =
          "fused into '" + layers[static_cast<size_t>(claimed_by[s])].name + "' (" + st.op + ")";
      continue;
    }
    claimed_by[s] = static_cast<int>(k);
    lt.measured = true;
    lt.ms = st.median_ms;
  }
  double other = 0;
  for (size_t s = 0; s < profile.steps.size(); ++s)
    if (claimed_by[s] < 0) other += profile.steps[s].median_ms;
  return other;
}

}  // namespace

Status time_layers(QuantizeResult& result, const Dataset& data, int64_t num_samples, int runs,
                   int num_threads) {
  QuantizeReport& report = result.report;
  const size_t n =
      std::min<size_t>(data.samples.size(), static_cast<size_t>(std::max<int64_t>(0, num_samples)));
  if (n == 0 || runs <= 0) return Status::ok();
  const std::vector<std::vector<NamedTensor>> samples(data.samples.begin(),
                                                      data.samples.begin() + static_cast<long>(n));
  BRINK_ASSIGN_OR_RETURN(ModelProfile fp32,
                         profile_model(result.prepared, samples, runs, num_threads));
  auto quant = profile_model(result.quantized, samples, runs, num_threads);
  if (!quant.is_ok()) return quant.status().with_context("profiling the quantized model");
  report.timing.fp32_other_ms = map_layers(
      report.layers, fp32, [](const LayerReport& l) { return std::vector<std::string>{l.name}; },
      [](const LayerReport& l) { return std::vector<std::string>{l.fp32_tensor}; },
      [](LayerReport& l) -> LayerTime& { return l.fp32_time; });
  // int8-dynamic names its MatMulInteger "<layer>_quant" (as ORT's quantize_dynamic does), and
  // the runtime's MatMulIntegerToFloat keeps that name.
  report.timing.quant_other_ms = map_layers(
      report.layers, *quant,
      [](const LayerReport& l) {
        return std::vector<std::string>{l.name, l.name + "_quant"};
      },
      [](const LayerReport& l) {
        return std::vector<std::string>{l.quant_tensor, l.fp32_tensor};
      },
      [](LayerReport& l) -> LayerTime& { return l.quant_time; });
  report.timing.measured = true;
  report.timing.runs = static_cast<int64_t>(runs) * static_cast<int64_t>(n);
  report.timing.threads = fp32.threads;
  report.timing.fp32_p50_ms = fp32.p50_ms;
  report.timing.quant_p50_ms = quant->p50_ms;
  return Status::ok();
}

std::string format_timing_table(const QuantizeReport& r) {
  if (!r.timing.measured) return "";
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "per-layer time (median of %lld runs, %lld thread%s)\n",
                static_cast<long long>(r.timing.runs), static_cast<long long>(r.timing.threads),
                r.timing.threads == 1 ? "" : "s");
  out += line;
  std::snprintf(line, sizeof line, "%-32s %-24s %9s  %-24s %9s %8s\n", "layer", "FP32 op",
                "FP32 ms", "quantized op", "quant ms", "speedup");
  out += line;
  auto cell = [](const LayerTime& t, char* op, char* ms) {
    // com.microsoft ops go by their bare name here ("QLinearGlobalAveragePool"; the JSON has
    // the domain); longer names keep their end.
    std::string o = t.op.empty() ? "-" : t.op;
    if (o.rfind("com.microsoft.", 0) == 0) o = o.substr(14);
    if (!t.kernel.empty()) o += " [" + t.kernel.substr(0, t.kernel.find(' ')) + "]";
    std::snprintf(op, 64, "%s",
                  o.size() > 24 ? (".." + o.substr(o.size() - 22)).c_str() : o.c_str());
    if (t.measured)
      std::snprintf(ms, 32, "%.4f", t.ms);
    else
      std::snprintf(ms, 32, "%s", t.note.rfind("fused into", 0) == 0 ? "fused" : "-");
  };
  std::vector<std::string> notes;
  for (const LayerReport& l : r.layers) {
    // Long names keep their end ("...features.10/conv/conv.1/Conv"): that part tells them apart.
    std::string name = l.name.size() > 32 ? "..." + l.name.substr(l.name.size() - 29) : l.name;
    char fop[64], fms[32], qop[64], qms[32], sp[32] = "-";
    cell(l.fp32_time, fop, fms);
    cell(l.quant_time, qop, qms);
    if (l.fp32_time.measured && l.quant_time.measured && l.quant_time.ms > 0)
      std::snprintf(sp, sizeof sp, "%.2fx", l.fp32_time.ms / l.quant_time.ms);
    std::snprintf(line, sizeof line, "%-32s %-24s %9s  %-24s %9s %8s\n", name.c_str(), fop, fms,
                  qop, qms, sp);
    out += line;
    for (const auto* t : {&l.fp32_time, &l.quant_time})
      if (!t->note.empty())
        notes.push_back(l.name + " (" + (t == &l.fp32_time ? "FP32" : "quantized") +
                        "): " + t->note);
  }
  std::snprintf(line, sizeof line, "%-32s %-24s %9.4f  %-24s %9.4f\n", "other steps", "-",
                r.timing.fp32_other_ms, "-", r.timing.quant_other_ms);
  out += line;
  for (const std::string& n : notes) out += "  " + n + "\n";
  std::snprintf(line, sizeof line, "latency p50: FP32 %.4f ms, quantized %.4f ms (%.2fx)\n",
                r.timing.fp32_p50_ms, r.timing.quant_p50_ms,
                r.timing.quant_p50_ms > 0 ? r.timing.fp32_p50_ms / r.timing.quant_p50_ms : 0.0);
  out += line;
  return out;
}

}  // namespace brink::quant
