// The .brink package commands (src/package/package.h, docs/FORMAT.md):
//   brink keygen -o NAME            NAME.key (secret) and NAME.pub (public, optional expiry)
//   brink pack MODEL.onnx -o M.brink [--sign KEY] ...   compile and package a model
//   brink verify M.brink [--pubkey K]                  every check the loader makes
//   brink diff OLD.brink NEW.brink -o U.delta / brink patch OLD.brink U.delta -o NEW.brink
// `brink info M.brink` (package_info_command) prints the model card, chunks and signer.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_common.h"
#include "commands.h"
#include "onnx/onnx_io.h"
#include "package/delta.h"
#include "package/package.h"

namespace brink::cli {

namespace {

struct KeygenOptions {
  std::string out;
  std::string expires;
  bool encryption = false;
};

int keygen_command(const KeygenOptions& o) {
  if (o.encryption) {
    const std::string path = o.out + ".enckey";
    if (std::filesystem::exists(path))
      return report_error(invalid_argument(path + " exists; refusing to overwrite a key"));
    const package::EncryptionKey key = package::generate_encryption_key();
    if (Status s = package::save_encryption_key(key, path); !s.is_ok()) return report_error(s);
    std::printf("encryption key %s: %s (keep private; devices that run the package need it)\n",
                key.id().c_str(), path.c_str());
    return 0;
  }
  package::KeyPair kp = package::generate_keypair();
  if (!o.expires.empty()) {
    auto when = package::parse_expiry_date(o.expires);
    if (!when) return report_error(when.status());
    kp.public_key.expires = *when;
  }
  const std::string secret = o.out + ".key", pub = o.out + ".pub";
  if (std::filesystem::exists(secret))
    return report_error(invalid_argument(secret + " exists; refusing to overwrite a secret key"));
  if (Status s = package::save_secret_key(kp.secret, secret); !s.is_ok()) return report_error(s);
  if (Status s = package::save_public_key(kp.public_key, pub); !s.is_ok()) return report_error(s);
  std::printf("key %s: secret %s (keep private), public %s%s\n", kp.public_key.id().c_str(),
              secret.c_str(), pub.c_str(),
              kp.public_key.expires
                  ? (", expires " + package::format_date(*kp.public_key.expires)).c_str()
                  : "");
  return 0;
}

struct PackOptions {
  std::string model, out, target, sign, encrypt, name, version = "0.0.0", meta, labels;
  size_t chunk_kib = 4096;
  std::vector<std::string> dims, fallback;
  int opt_level = 2;
  bool no_prepack = false;
  std::string int8_kernels = "faster";
  int format = package::kFormatMajor;
  bool json = false;
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int pack_command(const PackOptions& o) {
  package::PackOptions po;
  po.target = o.target;
  po.chunk_size = o.chunk_kib * 1024;
  po.name = o.name.empty() ? std::filesystem::path(o.model).stem().string() : o.name;
  po.version = o.version;
  po.created_by = std::string("brink ") + BRINK_VERSION;
  po.session.optimization_level = o.opt_level;
  // Which int8 layers get packed integer weights: those whose integer kernel is chosen here.
  po.session.int8_kernels = parse_int8_kernels(o.int8_kernels).value();  // checked by the option
  po.prepack = !o.no_prepack;
  po.format_major = static_cast<uint16_t>(o.format);
  po.fallback_targets = o.fallback;
  auto dims = parse_dim_values(o.dims);
  if (!dims) return report_error(dims.status());
  po.session.dim_values = *dims;
  if (!o.meta.empty()) {
    auto text = read_text(o.meta);
    if (!text) return report_error(text.status());
    const auto parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded())
      return report_error(invalid_argument(o.meta + ": --meta must be a JSON file"));
    po.meta_json = parsed.dump();
  }
  if (!o.labels.empty()) {
    auto text = read_text(o.labels);
    if (!text) return report_error(text.status());
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      po.labels.push_back(line);
    }
    while (!po.labels.empty() && po.labels.back().empty()) po.labels.pop_back();
  }
  if (!o.sign.empty()) {
    auto key = package::load_secret_key(o.sign);
    if (!key) return report_error(key.status());
    po.signing_key = *key;
  }
  if (!o.encrypt.empty()) {
    auto key = package::load_encryption_key(o.encrypt);
    if (!key) return report_error(key.status());
    po.encryption_key = *key;
  }
  if (package::is_package_file(o.model))
    return report_error(invalid_argument(o.model + " is already a package; pack takes a .onnx"));
  auto model = onnx_io::load_onnx_file(o.model);
  if (!model) return report_error(model.status());
  auto summary = package::write_package(std::move(*model), po, o.out);
  if (!summary) return report_error(summary.status().with_context(o.model));
  const package::PackSummary& s = *summary;
  if (o.json) {
    nlohmann::json j = {
        {"package", o.out},
        {"file_bytes", s.file_bytes},
        {"graph_bytes", s.graph_bytes},
        {"weight_bytes", s.weight_bytes},
        {"chunks", s.chunks},
        {"arena_bytes", s.arena_bytes ? nlohmann::json(*s.arena_bytes) : nlohmann::json(nullptr)},
        {"signer", s.signer_key_id},
        {"prepacked_nodes", s.prepacked_nodes},
        {"elided_bytes", s.elided_bytes},
        {"fallback_targets", o.fallback},
        {"fallback_bytes", s.fallback_bytes}};
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf(
      "%s: %s in %lld chunks (graph %s, weights %s; %lld layers pre-packed), arena %s, %s\n",
      o.out.c_str(), human_bytes(static_cast<double>(s.file_bytes)).c_str(),
      static_cast<long long>(s.chunks), human_bytes(static_cast<double>(s.graph_bytes)).c_str(),
      human_bytes(static_cast<double>(s.weight_bytes)).c_str(),
      static_cast<long long>(s.prepacked_nodes),
      s.arena_bytes ? human_bytes(static_cast<double>(*s.arena_bytes)).c_str() : "dynamic",
      s.signer_key_id.empty() ? "unsigned" : ("signed by key " + s.signer_key_id).c_str());
  if (!o.fallback.empty()) {
    std::string list;
    for (const std::string& f : o.fallback) list += (list.empty() ? "" : ", ") + f;
    std::printf("fallback %s: %s of ONNX-layout weights after the target's\n", list.c_str(),
                human_bytes(static_cast<double>(s.fallback_bytes)).c_str());
  }
  return 0;
}

// "x86-64-v4, portable (fallback)".
std::string targets_text(const package::PackageInfo& info) {
  std::string out;
  for (size_t i = 0; i < info.targets.size(); ++i)
    out += (i ? ", " : "") + info.targets[i] + (i ? " (fallback)" : "");
  return out;
}

struct VerifyOptions {
  std::string package, pubkey, key;
  bool json = false;
};

// --key for an encrypted package.
Status add_decryption_key(const std::string& key_file, package::VerifyOptions* vo) {
  if (key_file.empty()) return Status::ok();
  auto key = package::load_encryption_key(key_file);
  if (!key) return key.status();
  vo->decryption_key = *key;
  return Status::ok();
}

int verify_command(const VerifyOptions& o) {
  package::VerifyOptions vo;
  if (Status s = add_decryption_key(o.key, &vo); !s.is_ok()) return report_error(s);
  if (!o.pubkey.empty()) {
    auto key = package::load_public_key(o.pubkey);
    if (!key) return report_error(key.status());
    vo.trusted_key = *key;
  }
  vo.check_target = false;  // verify checks integrity and trust; running checks the target
  vo.all_chunks = true;     // the fallback chunks too
  auto pkg = package::open_package(o.package, vo);
  if (!pkg) return report_error(pkg.status());
  const package::PackageInfo& info = (*pkg)->info();
  const auto runs = package::choose_target(info.targets);
  if (o.json) {
    nlohmann::json j = {{"package", o.package},
                        {"ok", true},
                        {"chunks", info.chunks.size()},
                        {"signer", info.signer_key_id},
                        {"signer_trusted", info.signer_trusted},
                        {"target", info.target},
                        {"targets", info.targets},
                        {"uses", runs.is_ok() ? nlohmann::json(*runs) : nlohmann::json(nullptr)},
                        {"runs_here", runs.is_ok()}};
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("%s: OK: %zu chunks match their SHA-256, %s; target %s%s\n", o.package.c_str(),
              info.chunks.size(),
              info.signer_key_id.empty()
                  ? "unsigned"
                  : (std::string(info.signer_trusted ? "signed by trusted key "
                                                     : "signature valid, by untrusted key ") +
                     info.signer_key_id)
                        .c_str(),
              targets_text(info).c_str(),
              runs.is_ok() ? (" (runs here: " + *runs + ")").c_str() : " (does not run here)");
  return 0;
}

struct DeltaOptions {
  std::string a, b, out;
  bool json = false;
};

int diff_command(const DeltaOptions& o) {
  auto s = package::make_delta(o.a, o.b, o.out);
  if (!s) return report_error(s.status());
  if (o.json) {
    std::cout << nlohmann::json{{"delta", o.out},
                                {"delta_bytes", s->delta_bytes},
                                {"new_bytes", s->new_bytes},
                                {"copied_bytes", s->copied_bytes},
                                {"literal_bytes", s->literal_bytes},
                                {"patched_bytes", s->patched_bytes},
                                {"changed_chunks", s->changed_chunks},
                                {"patched_chunks", s->patched_chunks},
                                {"total_chunks", s->total_chunks}}
                     .dump(2)
              << std::endl;
    return 0;
  }
  std::printf("%s: %s (%.2f%% of the new package): %lld of %lld chunks changed\n", o.out.c_str(),
              human_bytes(static_cast<double>(s->delta_bytes)).c_str(),
              100.0 * static_cast<double>(s->delta_bytes) / static_cast<double>(s->new_bytes),
              static_cast<long long>(s->changed_chunks), static_cast<long long>(s->total_chunks));
  return 0;
}

int patch_command(const DeltaOptions& o) {
  auto s = package::apply_delta(o.a, o.b, o.out);
  if (!s) return report_error(s.status());
  std::printf("%s: %s rebuilt and matches the delta's SHA-256\n", o.out.c_str(),
              human_bytes(static_cast<double>(s->new_bytes)).c_str());
  return 0;
}

}  // namespace

int package_info_command(const std::string& path, bool json, const std::string& key_file) {
  package::VerifyOptions vo;
  vo.check_target = false;
  if (Status s = add_decryption_key(key_file, &vo); !s.is_ok()) return report_error(s);
  auto pkg = package::open_package(path, vo);
  if (!pkg) return report_error(pkg.status());
  const package::PackageInfo& info = (*pkg)->info();
  if (json) {
    nlohmann::json j;
    j["package"] = path;
    j["format"] = std::to_string(info.format_major) + "." + std::to_string(info.format_minor);
    j["name"] = info.name;
    j["version"] = info.version;
    j["target"] = info.target;
    j["targets"] = info.targets;
    {
      const auto uses = package::choose_target(info.targets);
      j["uses_target"] = uses.is_ok() ? nlohmann::json(*uses) : nlohmann::json(nullptr);
    }
    j["created_by"] = info.created_by;
    j["file_bytes"] = info.file_bytes;
    j["parameter_bytes"] = info.parameter_bytes;
    j["arena_bytes"] =
        info.arena_bytes ? nlohmann::json(*info.arena_bytes) : nlohmann::json(nullptr);
    j["signer"] = info.signer_key_id;
    j["encrypted"] = info.encrypted;
    j["encryption_key"] = info.encryption_key_id;
    j["inputs"] = nlohmann::json::array();
    for (const auto& t : info.inputs) j["inputs"].push_back(tensor_info_json(t));
    j["outputs"] = nlohmann::json::array();
    for (const auto& t : info.outputs) j["outputs"].push_back(tensor_info_json(t));
    j["meta"] = info.meta_json.empty() ? nlohmann::json(nullptr)
                                       : nlohmann::json::parse(info.meta_json, nullptr, false);
    j["labels"] = info.labels;
    j["chunks"] = nlohmann::json::array();
    for (const auto& c : info.chunks)
      j["chunks"].push_back({{"kind", c.kind},
                             {"offset", c.offset},
                             {"size", c.size},
                             {"sha256", c.sha256_hex},
                             {"fallback", c.fallback},
                             {"packed", c.packed}});
    j["nodes"] = (*pkg)->model().graph.nodes.size();
    j["prepacked_nodes"] = info.prepacked_nodes;
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  std::printf("package:    %s (format %u.%u, %s, made by %s)\n", path.c_str(), info.format_major,
              info.format_minor, human_bytes(static_cast<double>(info.file_bytes)).c_str(),
              info.created_by.c_str());
  std::printf("model:      %s %s, target %s\n", info.name.c_str(), info.version.c_str(),
              targets_text(info).c_str());
  {
    const auto uses = package::choose_target(info.targets);
    std::printf("this CPU:   %s\n",
                uses.is_ok() ? ("uses " + *uses).c_str() : uses.status().message().c_str());
  }
  std::printf("inputs:\n");
  for (const auto& t : info.inputs)
    std::printf("  %-24s %-8s %s\n", t.name.c_str(), dtype_long_name(t.dtype),
                t.shape_string().c_str());
  std::printf("outputs:\n");
  for (const auto& t : info.outputs)
    std::printf("  %-24s %-8s %s\n", t.name.c_str(), dtype_long_name(t.dtype),
                t.shape_string().c_str());
  std::printf("graph:      %zu nodes (compiled), %lld with pre-packed weights\n",
              (*pkg)->model().graph.nodes.size(), static_cast<long long>(info.prepacked_nodes));
  std::printf("weights:    %s in %zu chunks\n",
              human_bytes(static_cast<double>(info.parameter_bytes)).c_str(),
              info.chunks.size() - 1);
  if (info.arena_bytes)
    std::printf("arena:      %lld bytes (%s)\n", static_cast<long long>(*info.arena_bytes),
                human_bytes(static_cast<double>(*info.arena_bytes)).c_str());
  else
    std::printf("arena:      dynamic (symbolic shapes)\n");
  std::printf("signer:     %s\n",
              info.signer_key_id.empty() ? "unsigned" : info.signer_key_id.c_str());
  if (info.encrypted)
    std::printf("encrypted:  XChaCha20-Poly1305, key %s\n", info.encryption_key_id.c_str());
  if (!info.labels.empty()) std::printf("labels:     %zu\n", info.labels.size());
  if (!info.meta_json.empty()) std::printf("meta:       %s\n", info.meta_json.c_str());
  return 0;
}

void add_package_commands(CLI::App& app, int* exit_code) {
  auto k = std::make_shared<KeygenOptions>();
  CLI::App* keygen = app.add_subcommand("keygen", "Make an Ed25519 key pair for signing packages");
  keygen->add_option("-o,--out", k->out, "Writes OUT.key (secret) and OUT.pub (public)")
      ->required();
  keygen->add_option("--expires", k->expires,
                     "Last day (YYYY-MM-DD, UTC) the public key is trusted");
  keygen->add_flag("--encryption", k->encryption,
                   "Make a symmetric key for --encrypt instead (writes OUT.enckey)");
  keygen->callback([k, exit_code] { *exit_code = keygen_command(*k); });

  auto p = std::make_shared<PackOptions>();
  CLI::App* pack =
      app.add_subcommand("pack", "Compile a model into a signed, memory-mappable .brink package");
  pack->add_option("model", p->model, "Model file (.onnx)")->required();
  pack->add_option("-o,--out", p->out, "Package to write (.brink)")->required();
  pack->add_option("--target", p->target,
                   "x86-64-v4, x86-64-v3, aarch64 or portable (default: this machine's)");
  pack->add_option("--sign", p->sign, "Secret key file (brink keygen) to sign with");
  pack->add_option("--encrypt", p->encrypt,
                   "Encryption key file (brink keygen --encryption): XChaCha20-Poly1305");
  pack->add_option("--chunk-size", p->chunk_kib, "Weight chunk size in KiB (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  pack->add_option("--name", p->name, "Model name (default: the file's stem)");
  pack->add_option("--version", p->version, "Model version, semver (default 0.0.0)");
  pack->add_option("--meta", p->meta, "JSON file stored with the model (preprocessing...)");
  pack->add_option("--labels", p->labels, "Text file of class labels, one per line");
  pack->add_option("--dim", p->dims, "Fix a symbolic dim: NAME=SIZE");
  pack->add_option("--opt-level,-O", p->opt_level, "Graph optimization level (default 2)")
      ->check(CLI::Range(0, 2));
  add_int8_kernels_option(pack, &p->int8_kernels);
  pack->add_flag("--no-prepack", p->no_prepack,
                 "Store weights as in the model (packed at load) instead of pre-packed");
  pack->add_option("--format", p->format,
                   "Package format major version: 2 (default; streamable) or 1 (manifest last, "
                   "for readers older than format 2)")
      ->check(CLI::Range(1, 2));
  pack->add_option("--fallback", p->fallback,
                   "Also store what a CPU without the target's ISA needs, for these targets "
                   "(e.g. portable): the weights in ONNX layout, after the target's")
      ->delimiter(',');
  pack->add_flag("--json", p->json, "Print JSON");
  pack->callback([p, exit_code] { *exit_code = pack_command(*p); });

  auto v = std::make_shared<VerifyOptions>();
  CLI::App* verify = app.add_subcommand(
      "verify", "Check a package: layout, seal, every chunk's hash, signature and signer");
  verify->add_option("package", v->package, "Package (.brink)")->required();
  verify->add_option("--pubkey", v->pubkey, "Public key the package must be signed by");
  verify->add_option("--key", v->key, "Encryption key of an encrypted package");
  verify->add_flag("--json", v->json, "Print JSON");
  verify->callback([v, exit_code] { *exit_code = verify_command(*v); });

  auto d = std::make_shared<DeltaOptions>();
  CLI::App* diff = app.add_subcommand(
      "diff", "Make a delta that turns OLD.brink into NEW.brink (only changed chunks travel)");
  diff->add_option("old", d->a, "Package the device has")->required();
  diff->add_option("new", d->b, "Package it should get")->required();
  diff->add_option("-o,--out", d->out, "Delta to write")->required();
  diff->add_flag("--json", d->json, "Print JSON");
  diff->callback([d, exit_code] { *exit_code = diff_command(*d); });

  auto pt = std::make_shared<DeltaOptions>();
  CLI::App* patch = app.add_subcommand(
      "patch", "Rebuild NEW.brink from OLD.brink and a delta (checked byte for byte)");
  patch->add_option("old", pt->a, "Package the device has")->required();
  patch->add_option("delta", pt->b, "Delta from brink diff")->required();
  patch->add_option("-o,--out", pt->out, "Package to write")->required();
  patch->callback([pt, exit_code] { *exit_code = patch_command(*pt); });
}

}  // namespace brink::cli
