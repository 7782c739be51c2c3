// brink info MODEL: what a model is and what it needs, before running it: inputs and
// outputs, opsets, operators, parameters, compute per layer, planned arena size, and every
// reason it cannot run. `brink info --ops` lists the operators Brink supports;
// `brink info MODEL --ops` the ones MODEL needs, as a selective build takes them
// (-DBRINK_SELECTED_OPS, src/ops/op_selection.h).
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "cli_common.h"
#include "commands.h"
#include "kernels/depthwise_conv.h"
#include "onnx/onnx_io.h"
#include "ops/conv.h"
#include "ops/op.h"
#include "package/package.h"

namespace brink::cli {

namespace {

struct InfoOptions {
  std::string model;
  bool ops = false;
  bool layers = false;
  bool json = false;
  std::vector<std::string> dims;
  int opt_level = 2;
  std::string key;  // .brink: the encryption key of an encrypted package
};

// Ranges of opsets per op, e.g. "Add [7-12, 13-13, 14-21]".
int print_ops(bool json) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [key, defs] : ops::OpRegistry::global().all()) {
    nlohmann::json versions = nlohmann::json::array();
    for (const ops::OpDef& d : defs) versions.push_back({d.since_version, d.max_version});
    list.push_back({{"domain", key.first}, {"op_type", key.second}, {"opsets", versions}});
  }
  if (json) {
    std::cout << nlohmann::json{{"operators", list}}.dump(2) << std::endl;
    return 0;
  }
  std::printf("%zu operators (domain, op type, opset ranges with a definition):\n", list.size());
  for (const auto& op : list) {
    std::string ranges;
    for (const auto& v : op["opsets"])
      ranges += (ranges.empty() ? "" : ", ") + std::to_string(v[0].get<int>()) + "-" +
                std::to_string(v[1].get<int>());
    const std::string domain = op["domain"].get<std::string>();
    std::printf("  %-16s %-28s %s\n", domain.empty() ? "ai.onnx" : domain.c_str(),
                op["op_type"].get<std::string>().c_str(), ranges.c_str());
  }
  return 0;
}

// The rows a float depthwise convolution's kernel runs (kernels::depthwise_row: "k3s1" for
// kernel width 3, stride 1; "general" for the others; "partial" too when the channels leave a
// partial vector block on some ISA). Weights of unknown shape list them all.
std::vector<std::string> depthwise_paths(const ir::Graph& g, const ir::Node& n) {
  const int64_t group = n.attr_int("group", 1);
  if (n.op_type != "Conv" || group <= 1 || n.inputs.size() < 2 || n.inputs[1] < 0) return {};
  const ir::TensorType& w = g.value(n.inputs[1]).type;
  if (w.dtype != DataType::kFloat32) return {};
  std::vector<std::string> rows;
  if (!w.is_static() || w.rank() != 4) {
    for (kernels::DepthwiseRow row : kernels::kDepthwiseRows)
      rows.emplace_back(kernels::depthwise_row_name(row));
    rows.emplace_back(kernels::kDepthwisePartialRow);
    return rows;
  }
  const std::vector<int64_t>& shape = w.static_shape();  // [M, C/group, kh, kw]
  if (!kernels::is_depthwise(group, shape[1] * group, shape[0])) return {};
  const std::vector<int64_t> strides = n.attr_ints("strides");
  const std::vector<int64_t> dilations = n.attr_ints("dilations");
  const int64_t sw = strides.size() == 2 ? strides[1] : 1;
  const int64_t dw = dilations.size() == 2 ? dilations[1] : 1;
  rows.emplace_back(kernels::depthwise_row_name(kernels::depthwise_row(shape[3], sw, dw)));
  if (shape[0] % kernels::kDepthwiseWidestBlock != 0)
    rows.emplace_back(kernels::kDepthwisePartialRow);
  return rows;
}

// True when brink:Conv node `n` may take its reference fallback (ops::fast_conv_applies).
bool needs_conv_reference(const ir::Graph& g, const ir::Node& n) {
  if (n.domain != "brink" || n.op_type != "Conv") return false;
  const auto constant_shape = [&](size_t i) -> const Shape* {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
    const auto& c = g.value(n.inputs[i]).constant;
    return c ? &c->shape() : nullptr;
  };
  const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
  const DataType x =
      n.inputs.empty() || n.inputs[0] < 0 ? DataType::kUndefined : g.value(n.inputs[0]).type.dtype;
  return !ops::fast_conv_applies(x, constant_shape(1), has_bias, constant_shape(2));
}

// Every (domain, op type) of `g` and its subgraphs (If branches, Loop and Scan bodies).
void collect_ops(const ir::Graph& g, std::set<std::pair<std::string, std::string>>* out) {
  for (const ir::Node& n : g.nodes) {
    out->insert({n.domain == "ai.onnx" ? std::string() : n.domain, n.op_type});
    // A fused activation: kernels specialized per activation keep only those listed.
    if (const ir::Attribute* act = n.attr("activation"); act != nullptr && !act->s.empty())
      out->insert({"brink.activation", act->s});
    // Likewise the depthwise kernels' per-shape fast paths.
    for (const std::string& path : depthwise_paths(g, n)) out->insert({"brink.depthwise", path});
    // And brink:Conv's reference fallback.
    if (needs_conv_reference(g, n)) out->insert({"brink.conv", "reference"});
    for (const ir::Attribute& a : n.attributes) {
      if (a.g) collect_ops(*a.g, out);
      for (const auto& sub : a.graphs)
        if (sub) collect_ops(*sub, out);
    }
  }
}

// The operators `model` needs, one per line ("OpType" for ai.onnx, else "domain:OpType"): the
// file a selective build of the device runtime takes. For an .onnx model these are the
// operators of the graph the passes make of it (what `brink pack` would store).
int print_model_ops(const InfoOptions& o) {
  std::set<std::pair<std::string, std::string>> ops;
  std::string from;
  if (package::is_package_file(o.model)) {
    package::VerifyOptions vo;
    vo.check_target = false;  // listing needs no kernels
    if (!o.key.empty()) {
      auto k = package::load_encryption_key(o.key);
      if (!k) return report_error(k.status());
      vo.decryption_key = *k;
    }
    auto pkg = package::open_package(o.model, vo);
    if (!pkg) return report_error(pkg.status());
    collect_ops((*pkg)->model().graph, &ops);
    from = "package " + o.model;
  } else {
    auto dims = parse_dim_values(o.dims);
    if (!dims) return report_error(dims.status());
    auto model = onnx_io::load_onnx_file(o.model);
    if (!model) return report_error(model.status());
    SessionOptions so;
    so.dim_values = *dims;
    so.optimization_level = o.opt_level;
    auto compiled = CompiledModel::compile(*model, so, /*keep_problems=*/true);
    if (!compiled) return report_error(compiled.status());
    collect_ops((*compiled)->model().graph, &ops);
    from = o.model + " at -O" + std::to_string(o.opt_level);
  }
  if (o.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [domain, type] : ops) list.push_back({{"domain", domain}, {"op_type", type}});
    std::cout << nlohmann::json{{"model", o.model}, {"operators", list}}.dump(2) << std::endl;
    return 0;
  }
  std::printf("# operators of %s (cmake -DBRINK_SELECTED_OPS=this-file)\n", from.c_str());
  for (const auto& [domain, type] : ops)
    std::printf("%s%s\n", domain.empty() ? "" : (domain + ":").c_str(), type.c_str());
  return 0;
}

int info_command(const InfoOptions& o) {
  if (o.model.empty()) {
    if (o.ops) return print_ops(o.json);
    return report_error(invalid_argument("brink info needs a MODEL (or --ops)"));
  }
  if (o.ops) return print_model_ops(o);
  if (package::is_package_file(o.model)) return package_info_command(o.model, o.json, o.key);
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  auto model = onnx_io::load_onnx_file(o.model);
  if (!model) return report_error(model.status());
  const ir::Model& m = *model;

  SessionOptions so;
  so.dim_values = *dims;
  so.optimization_level = o.opt_level;
  auto compiled = CompiledModel::compile(m, so, /*keep_problems=*/true);
  if (!compiled) return report_error(compiled.status());
  // Sizes that depend on symbolic dims are reported with those dims set to 1 unless --dim.
  std::vector<std::pair<std::string, int64_t>> assumed = *dims;
  for (const TensorInfo& in : (*compiled)->inputs())
    for (size_t d = 0; d < in.shape.size(); ++d)
      if (in.shape[d] < 0 && !in.dim_names[d].empty()) {
        bool have = false;
        for (const auto& a : assumed) have |= a.first == in.dim_names[d];
        if (!have) assumed.emplace_back(in.dim_names[d], 1);
      }
  const CompiledModel* sized = compiled->get();
  std::unique_ptr<CompiledModel> specialised;
  if (assumed.size() > dims->size()) {
    so.dim_values = assumed;
    auto s = CompiledModel::compile(m, so, true);
    if (s) specialised = std::move(s).value(), sized = specialised.get();
  }
  const CompiledModel& c = **compiled;

  std::map<std::string, int> histogram;
  for (const ir::Node& n : m.graph.nodes)
    histogram[(n.domain.empty() ? "" : n.domain + ".") + n.op_type]++;
  int64_t macs = 0, flops = 0;
  for (const LayerInfo& l : sized->layers()) macs += l.macs, flops += l.flops;

  nlohmann::json j;
  j["model"] = o.model;
  j["ir_version"] = m.ir_version;
  j["producer"] = m.producer_name + (m.producer_version.empty() ? "" : " " + m.producer_version);
  j["opset"] = m.opset("");
  nlohmann::json opsets = nlohmann::json::object();
  for (const auto& os : m.opset_imports)
    opsets[os.domain.empty() ? "ai.onnx" : os.domain] = os.version;
  j["opsets"] = opsets;
  j["inputs"] = nlohmann::json::array();
  for (const auto& t : c.inputs()) j["inputs"].push_back(tensor_info_json(t));
  j["outputs"] = nlohmann::json::array();
  for (const auto& t : c.outputs()) j["outputs"].push_back(tensor_info_json(t));
  j["nodes"] = m.graph.nodes.size();
  j["ops"] = histogram;
  j["parameters"] = c.parameter_count();
  j["parameter_bytes"] = c.parameter_bytes();
  j["macs"] = macs;
  j["flops"] = flops;
  j["folded_nodes"] = c.folded_nodes();
  j["dims_assumed"] = nlohmann::json::object();
  for (const auto& [k, v] : assumed) j["dims_assumed"][k] = v;
  j["arena_bytes"] =
      sized->arena_bytes() ? nlohmann::json(*sized->arena_bytes()) : nlohmann::json(nullptr);
  j["unplanned_bytes"] = sized->unplanned_bytes() ? nlohmann::json(*sized->unplanned_bytes())
                                                  : nlohmann::json(nullptr);
  const passes::OptimizeReport& r = c.optimize_report();
  const ir::Graph& optimized = c.model().graph;
  std::map<std::string, int> optimized_ops;
  for (const ir::Node& n : optimized.nodes)
    optimized_ops[(n.domain.empty() ? "" : n.domain + ".") + n.op_type]++;
  j["optimization"] = {{"level", c.optimization_level()},
                       {"nodes", optimized.nodes.size()},
                       {"ops", optimized_ops},
                       {"folded_batchnorms", r.folded_batchnorms},
                       {"fused_activations", r.fused_activations},
                       {"fused_residual_adds", r.fused_residual_adds},
                       {"fused_matmul_bias", r.fused_matmul_bias},
                       {"fused_layernorms", r.fused_layernorms},
                       {"fused_gelus", r.fused_gelus},
                       {"fused_attentions", r.fused_attentions},
                       {"layout_converted_nodes", r.layout_converted_nodes},
                       {"transposes_inserted", r.transposes_inserted},
                       {"removed_nodes", r.removed_nodes},
                       {"fused_qdq", r.fused_qdq},
                       {"view_steps", sized->view_steps()},
                       {"in_place_steps", sized->in_place_steps()}};
  j["runnable"] = c.runnable();
  j["problems"] = nlohmann::json::array();
  for (const Status& p : c.problems()) j["problems"].push_back(p.message());
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerInfo& l : sized->layers()) {
    nlohmann::json outs = nlohmann::json::array();
    for (const auto& t : l.output_types) outs.push_back(t.to_string());
    layers.push_back({{"name", l.name},
                      {"op", l.op_type},
                      {"macs", l.macs},
                      {"flops", l.flops},
                      {"outputs", outs}});
  }
  if (o.layers || o.json) j["layers"] = layers;

  if (o.json) {
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("model:      %s\n", o.model.c_str());
  std::printf("producer:   %s (ir_version %lld)\n", j["producer"].get<std::string>().c_str(),
              static_cast<long long>(m.ir_version));
  std::string os_text;
  for (const auto& [k, v] : opsets.items())
    os_text += (os_text.empty() ? "" : ", ") + k + " " + std::to_string(v.get<int64_t>());
  std::printf("opsets:     %s\n", os_text.c_str());
  std::printf("inputs:\n");
  for (const auto& t : c.inputs())
    std::printf("  %-24s %-8s %s\n", t.name.c_str(), dtype_long_name(t.dtype),
                t.shape_string().c_str());
  std::printf("outputs:\n");
  for (const auto& t : c.outputs())
    std::printf("  %-24s %-8s %s\n", t.name.c_str(), dtype_long_name(t.dtype),
                t.shape_string().c_str());
  std::string hist;
  for (const auto& [op, n] : histogram)
    hist += (hist.empty() ? "" : ", ") + op + " x" + std::to_string(n);
  std::printf("operators:  %zu nodes: %s\n", m.graph.nodes.size(), hist.c_str());
  std::printf("parameters: %s (%s)\n",
              human_count(static_cast<double>(c.parameter_count())).c_str(),
              human_bytes(static_cast<double>(c.parameter_bytes())).c_str());
  std::string assumed_text;
  for (const auto& [k, v] : assumed)
    assumed_text += (assumed_text.empty() ? " with " : ", ") + k + "=" + std::to_string(v);
  std::printf("compute:    %sMACs, %sFLOPs%s\n", human_count(static_cast<double>(macs)).c_str(),
              human_count(static_cast<double>(flops)).c_str(), assumed_text.c_str());
  if (c.optimization_level() > 0) {
    std::string text;
    for (const auto& [op, n] : optimized_ops)
      text += (text.empty() ? "" : ", ") + op + " x" + std::to_string(n);
    std::printf("optimized:  %zu nodes (level %d): %s\n", optimized.nodes.size(),
                c.optimization_level(), text.c_str());
    std::printf(
        "passes:     %d BatchNorms folded, %d activations and %d residual Adds fused, %d "
        "MatMul biases, %d LayerNorms, %d GELUs, %d attentions; %d nodes to NHWC with %d "
        "transposes; %d QDQ patterns to integer ops; %d nodes removed\n",
        r.folded_batchnorms, r.fused_activations, r.fused_residual_adds, r.fused_matmul_bias,
        r.fused_layernorms, r.fused_gelus, r.fused_attentions, r.layout_converted_nodes,
        r.transposes_inserted, r.fused_qdq, r.removed_nodes);
  }
  if (sized->arena_bytes())
    std::printf(
        "arena:      %lld bytes (%s) planned; %s if each tensor were allocated separately "
        "(%lld views, %lld in place)\n",
        static_cast<long long>(*sized->arena_bytes()),
        human_bytes(static_cast<double>(*sized->arena_bytes())).c_str(),
        human_bytes(static_cast<double>(*sized->unplanned_bytes())).c_str(),
        static_cast<long long>(sized->view_steps()),
        static_cast<long long>(sized->in_place_steps()));
  else
    std::printf("arena:      unknown (shapes depend on data or the model cannot run)\n");
  if (o.layers) {
    std::printf("layers:\n  %-32s %-20s %14s  %s\n", "name", "op", "MACs", "output");
    for (const LayerInfo& l : sized->layers())
      std::printf("  %-32s %-20s %14lld  %s\n", l.name.c_str(), l.op_type.c_str(),
                  static_cast<long long>(l.macs),
                  l.output_types.empty() ? "" : l.output_types[0].to_string().c_str());
  }
  if (c.runnable()) {
    std::printf("runnable:   yes\n");
  } else {
    std::printf("runnable:   no, %zu problem%s:\n", c.problems().size(),
                c.problems().size() == 1 ? "" : "s");
    for (const Status& p : c.problems()) std::printf("  - %s\n", p.message().c_str());
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Describe a model: I/O, operators, parameters, compute, memory, problems");
  cmd->add_option("model", o->model, "Model file (.onnx or .brink)");
  cmd->add_flag("--ops", o->ops,
                "List the operators Brink supports; with MODEL, those it needs (the list a "
                "selective build takes)");
  cmd->add_flag("--layers", o->layers, "Print per-layer compute");
  cmd->add_option("--dim", o->dims,
                  "Fix a symbolic dim: NAME=SIZE (others are taken as 1 for sizes)");
  cmd->add_option("--opt-level,-O", o->opt_level,
                  "Graph optimization: 0 none, 1 fusion, 2 fusion + NHWC layout (default)")
      ->check(CLI::Range(0, 2));
  cmd->add_option("--key", o->key, "For an encrypted .brink package: its key file");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o, exit_code] { *exit_code = info_command(*o); });
}

}  // namespace brink::cli
