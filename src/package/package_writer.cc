// write_package: optimize, compile (to prove the model runs and to learn its arena size),
// lay the constants out in chunks by first use, serialize graph and manifest, seal, sign,
// and rename the finished file into place.

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "core/cpu_features.h"
#include "package/atomic_file.h"
#include "package/package.h"
#include "package/package_generated.h"
#include "passes/optimize.h"
#include "runtime/compiled_model.h"

namespace brink::package {
namespace {

size_t align_up(size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

// Where constants go: chunks of at most chunk_size bytes, each constant 64-byte aligned.
// The same storage placed twice is stored once.
class WeightLayout {
 public:
  explicit WeightLayout(size_t chunk_size) : chunk_size_(chunk_size) {}

  struct Place {
    uint32_t chunk;  // index among all chunks (weights start at 1; 0 is the graph)
    uint64_t offset;
  };

  Result<Place> place(const Tensor& t) {
    if (t.dtype() == DataType::kString || dtype_size(t.dtype()) == 0)
      return Status(StatusCode::kUnsupported, std::string("a constant of type ") +
                                                  dtype_name(t.dtype()) +
                                                  " cannot be stored in a package");
    const auto key = std::make_pair(t.raw_data(), t.nbytes());
    if (auto it = placed_.find(key); it != placed_.end()) return it->second;
    const size_t n = t.nbytes();
    if (chunks_.empty() || next_in_new_chunk_ ||
        (chunks_.back().size() > 0 && align_up(chunks_.back().size()) + n > chunk_size_))
      chunks_.emplace_back();
    next_in_new_chunk_ = false;
    std::vector<uint8_t>& c = chunks_.back();
    const size_t at = align_up(c.size());
    c.resize(at + n, 0);
    if (n > 0) std::memcpy(c.data() + at, t.raw_data(), n);
    Place p{static_cast<uint32_t>(chunks_.size()), at};
    placed_[key] = p;
    return p;
  }
  std::vector<std::vector<uint8_t>>& chunks() { return chunks_; }
  // The index (among all chunks) of the chunk what is placed next goes to, after end_chunk().
  uint32_t next_chunk_index() const { return static_cast<uint32_t>(chunks_.size()) + 1; }
  // What is placed next starts a new chunk (so that a chunk holds what a loader needs at
  // one time: the constants for compiling, or packed weights).
  void end_chunk() { next_in_new_chunk_ = !chunks_.empty(); }

 private:
  size_t chunk_size_;
  bool next_in_new_chunk_ = false;
  std::vector<std::vector<uint8_t>> chunks_;
  std::map<std::pair<const void*, size_t>, Place> placed_;
};

// The main graph's packed weights (by node index) and the constants they make unnecessary.
struct Prepacking {
  std::map<int, ops::PackedWeights> by_node;
  std::vector<bool> elided;  // by value of the main graph
};

Tensor blob_tensor(const ops::PackedWeights& w) {
  return Tensor::view(DataType::kFloat32, {static_cast<int64_t>(w.floats)},
                      const_cast<float*>(w.data));
}

// Names of values a subgraph reads from enclosing graphs (by name, so never elided).
void collect_subgraph_names(const ir::Graph& g, std::set<std::string>* names) {
  for (const ir::Node& n : g.nodes)
    for (const ir::Attribute& a : n.attributes) {
      std::vector<const ir::Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& x : a.graphs) subs.push_back(x.get());
      for (const ir::Graph* sg : subs) {
        for (const ir::Value& v : sg->values) names->insert(v.name);
        collect_subgraph_names(*sg, names);
      }
    }
}

// A constant of the main graph is left out when every node reading it holds packed weights
// and never reads that input, and nothing else can see it (graph outputs, subgraphs).
Prepacking plan_prepacking(const ir::Graph& g,
                           const std::vector<CompiledModel::NodePackedWeights>& packed) {
  Prepacking p;
  p.elided.assign(g.values.size(), false);
  std::map<int, const CompiledModel::NodePackedWeights*> by_node;
  for (const auto& n : packed) {
    by_node[n.node_index] = &n;
    p.by_node[n.node_index] = n.weights;
  }
  std::vector<int> readers(g.values.size(), 0), unread(g.values.size(), 0);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& node = g.nodes[ni];
    auto it = by_node.find(static_cast<int>(ni));
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int v = node.inputs[k];
      if (v == ir::kNoValue) continue;
      ++readers[static_cast<size_t>(v)];
      if (it != by_node.end()) {
        const auto& u = it->second->unread_inputs;
        if (std::find(u.begin(), u.end(), static_cast<int>(k)) != u.end())
          ++unread[static_cast<size_t>(v)];
      }
    }
  }
  std::set<std::string> seen_by_subgraphs;
  collect_subgraph_names(g, &seen_by_subgraphs);
  for (size_t v = 0; v < g.values.size(); ++v)
    p.elided[v] = g.values[v].constant && readers[v] > 0 && readers[v] == unread[v] &&
                  !seen_by_subgraphs.count(g.values[v].name);
  for (int out : g.outputs) p.elided[static_cast<size_t>(out)] = false;
  return p;
}

class ModelWriter {
 public:
  ModelWriter(flatbuffers::FlatBufferBuilder& b, WeightLayout& w, const Prepacking& pre)
      : b_(b), w_(w), pre_(pre) {}

  // Places the bytes in the order a loader needs them, so that a streamed package can start
  // running before its last chunk arrives (stream_loader.h): first every stored constant
  // (compiling the model reads those: shapes, weights packed at load, folding), by the node
  // that first reads them, then the main graph's packed weights, which only their kernels
  // read when they run, by node. A dry serialization (no packed weights) places the
  // constants of subgraphs and attributes too, before serialization proper places the rest.
  Status place_by_first_use(const ir::Model& m) {
    const ir::Graph& g = m.graph;
    for (size_t ni = 0; ni < g.nodes.size(); ++ni)
      for (int v : g.nodes[ni].inputs)
        if (v != ir::kNoValue && g.value(v).constant && !pre_.elided[static_cast<size_t>(v)]) {
          auto p = w_.place(*g.value(v).constant);
          if (!p.is_ok()) return p.status().with_context("value '" + g.value(v).name + "'");
        }
    {
      flatbuffers::FlatBufferBuilder dry(1 << 12);
      ModelWriter constants_only(dry, w_, pre_);
      constants_only.place_packed_ = false;
      auto r = constants_only.graph(g);
      if (!r.is_ok()) return r.status();
    }
    w_.end_chunk();  // compiling can start once the constants' chunks are in
    packed_chunk_ = w_.next_chunk_index();
    for (size_t ni = 0; ni < g.nodes.size(); ++ni)
      if (auto it = pre_.by_node.find(static_cast<int>(ni)); it != pre_.by_node.end()) {
        auto p = w_.place(blob_tensor(it->second));
        if (!p.is_ok()) return p.status().with_context(g.nodes[ni].describe());
      }
    return Status::ok();
  }

  Result<flatbuffers::Offset<fb::TensorRef>> tensor(const Tensor& t, bool elided = false) {
    auto shape = b_.CreateVector(t.shape());
    if (elided)
      return fb::CreateTensorRef(b_, static_cast<int32_t>(t.dtype()), shape, 0, 0, 0, true);
    BRINK_ASSIGN_OR_RETURN(auto p, w_.place(t));
    return fb::CreateTensorRef(b_, static_cast<int32_t>(t.dtype()), shape, p.chunk, p.offset,
                               t.nbytes());
  }

  flatbuffers::Offset<fb::TensorType> type(const ir::TensorType& tt) {
    std::vector<flatbuffers::Offset<fb::Dim>> dims;
    if (tt.dims)
      for (const ir::Dim& d : *tt.dims)
        dims.push_back(fb::CreateDim(b_, d.value, d.param.empty() ? 0 : b_.CreateString(d.param)));
    return fb::CreateTensorType(b_, static_cast<int32_t>(tt.dtype), tt.dims.has_value(),
                                b_.CreateVector(dims));
  }

  Result<flatbuffers::Offset<fb::Attribute>> attribute(const ir::Attribute& a) {
    flatbuffers::Offset<fb::TensorRef> t = 0;
    flatbuffers::Offset<fb::Graph> g = 0;
    std::vector<flatbuffers::Offset<fb::TensorRef>> tensors;
    std::vector<flatbuffers::Offset<fb::Graph>> graphs;
    std::vector<flatbuffers::Offset<fb::Bytes>> strings;
    if (a.type == ir::AttrType::kTensor) {
      BRINK_ASSIGN_OR_RETURN(t, tensor(a.t));
    }
    if (a.type == ir::AttrType::kGraph && a.g) {
      BRINK_ASSIGN_OR_RETURN(g, graph(*a.g));
    }
    for (const Tensor& x : a.tensors) {
      BRINK_ASSIGN_OR_RETURN(auto r, tensor(x));
      tensors.push_back(r);
    }
    for (const auto& x : a.graphs) {
      BRINK_ASSIGN_OR_RETURN(auto r, graph(*x));
      graphs.push_back(r);
    }
    for (const std::string& s : a.strings)
      strings.push_back(fb::CreateBytes(
          b_, b_.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size())));
    auto name = b_.CreateString(a.name);
    auto s = b_.CreateVector(reinterpret_cast<const uint8_t*>(a.s.data()), a.s.size());
    auto floats = b_.CreateVector(a.floats);
    auto ints = b_.CreateVector(a.ints);
    auto strs = b_.CreateVector(strings);
    auto tens = b_.CreateVector(tensors);
    auto grs = b_.CreateVector(graphs);
    auto ref = a.ref_attr_name.empty() ? 0 : b_.CreateString(a.ref_attr_name);
    return fb::CreateAttribute(b_, name, static_cast<fb::AttrType>(a.type), a.f, a.i, s, t, g,
                               floats, ints, strs, tens, grs, ref);
  }

  Result<flatbuffers::Offset<fb::Graph>> graph(const ir::Graph& g) {
    const bool main = depth_++ == 0;  // packed weights belong to the main graph only
    std::vector<flatbuffers::Offset<fb::Value>> values;
    for (size_t vi = 0; vi < g.values.size(); ++vi) {
      const ir::Value& v = g.values[vi];
      flatbuffers::Offset<fb::TensorRef> c = 0;
      if (v.constant) {
        auto r = tensor(*v.constant, main && pre_.elided[vi]);
        if (!r.is_ok()) return r.status().with_context("value '" + v.name + "'");
        c = *r;
      }
      auto name = b_.CreateString(v.name);
      auto t = type(v.type);
      values.push_back(fb::CreateValue(b_, name, t, c, v.producer));
    }
    std::vector<flatbuffers::Offset<fb::Node>> nodes;
    for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
      const ir::Node& n = g.nodes[ni];
      flatbuffers::Offset<fb::Prepacked> prepacked = 0;
      if (auto it = pre_.by_node.find(static_cast<int>(ni));
          main && place_packed_ && it != pre_.by_node.end()) {
        BRINK_ASSIGN_OR_RETURN(auto t, tensor(blob_tensor(it->second)));
        prepacked = fb::CreatePrepacked(b_, b_.CreateString(it->second.layout), t);
      }
      std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
      for (const ir::Attribute& a : n.attributes) {
        auto r = attribute(a);
        if (!r.is_ok()) return r.status().with_context(n.describe());
        attrs.push_back(*r);
      }
      auto name = b_.CreateString(n.name);
      auto op = b_.CreateString(n.op_type);
      auto domain = b_.CreateString(n.domain);
      auto ins = b_.CreateVector(n.inputs);
      auto outs = b_.CreateVector(n.outputs);
      auto at = b_.CreateVector(attrs);
      nodes.push_back(fb::CreateNode(b_, name, op, domain, ins, outs, at, prepacked));
    }
    --depth_;
    auto name = b_.CreateString(g.name);
    auto vs = b_.CreateVector(values);
    auto ns = b_.CreateVector(nodes);
    auto ins = b_.CreateVector(g.inputs);
    auto outs = b_.CreateVector(g.outputs);
    auto inits = b_.CreateVector(g.initializers);
    return fb::CreateGraph(b_, name, vs, ns, ins, outs, inits);
  }

  // With fallback targets: after everything the primary target reads, in chunks of their
  // own, the constants its packed weights replace, stored as they are (a fallback target's
  // kernels pack them at load). Returns the first of those chunks' index.
  Result<flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::FallbackConstant>>>>
  fallback_constants(const ir::Graph& g) {
    w_.end_chunk();
    fallback_chunk_ = w_.next_chunk_index();
    std::vector<flatbuffers::Offset<fb::FallbackConstant>> out;
    for (size_t v = 0; v < g.values.size(); ++v)
      if (pre_.elided[v]) {
        auto t = tensor(*g.values[v].constant);
        if (!t.is_ok()) return t.status().with_context("value '" + g.values[v].name + "'");
        out.push_back(fb::CreateFallbackConstant(b_, static_cast<int32_t>(v), *t));
      }
    return b_.CreateVector(out);
  }
  uint32_t fallback_chunk() const { return fallback_chunk_; }
  // The first chunk holding packed weights (and only those, up to fallback_chunk()).
  uint32_t packed_chunk() const { return packed_chunk_; }

  Result<flatbuffers::Offset<fb::Model>> model(const ir::Model& m, int optimization_level,
                                               bool with_fallback) {
    BRINK_RETURN_IF_ERROR(place_by_first_use(m));
    BRINK_ASSIGN_OR_RETURN(auto g, graph(m.graph));
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::FallbackConstant>>> fallback =
        0;
    if (with_fallback) {
      BRINK_ASSIGN_OR_RETURN(fallback, fallback_constants(m.graph));
    }
    std::vector<flatbuffers::Offset<fb::OpsetId>> opsets;
    for (const auto& o : m.opset_imports)
      opsets.push_back(fb::CreateOpsetId(b_, b_.CreateString(o.domain), o.version));
    std::vector<flatbuffers::Offset<fb::StringPair>> meta;
    for (const auto& [k, v] : m.metadata_props)
      meta.push_back(fb::CreateStringPair(b_, b_.CreateString(k), b_.CreateString(v)));
    auto os = b_.CreateVector(opsets);
    auto pn = b_.CreateString(m.producer_name);
    auto pv = b_.CreateString(m.producer_version);
    auto dom = b_.CreateString(m.domain);
    auto md = b_.CreateVector(meta);
    return fb::CreateModel(b_, m.ir_version, os, pn, pv, dom, m.model_version, md, g,
                           optimization_level, fallback);
  }

 private:
  flatbuffers::FlatBufferBuilder& b_;
  WeightLayout& w_;
  const Prepacking& pre_;
  int depth_ = 0;
  bool place_packed_ = true;  // false: a dry run placing constants only
  uint32_t fallback_chunk_ = 0;
  uint32_t packed_chunk_ = 0;
};

flatbuffers::Offset<fb::IoInfo> io_info(flatbuffers::FlatBufferBuilder& b, const TensorInfo& t) {
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  for (const std::string& n : t.dim_names) names.push_back(b.CreateString(n));
  auto name = b.CreateString(t.name);
  auto shape = b.CreateVector(t.shape);
  auto dn = b.CreateVector(names);
  return fb::CreateIoInfo(b, name, static_cast<int32_t>(t.dtype), shape, dn);
}

}  // namespace

Result<PackSummary> write_package(ir::Model model, const PackOptions& options,
                                  const std::string& path) {
  const std::string target = options.target.empty() ? host_target() : options.target;
  bool known = false;
  for (const std::string& t : known_targets()) known |= t == target;
  if (!known)
    return Status(StatusCode::kInvalidArgument,
                  "target '" + target + "': expected x86-64-v4, x86-64-v3, aarch64 or portable");
  for (size_t i = 0; i < options.fallback_targets.size(); ++i) {
    const std::string& f = options.fallback_targets[i];
    if (std::find(known_targets().begin(), known_targets().end(), f) == known_targets().end())
      return Status(
          StatusCode::kInvalidArgument,
          "fallback target '" + f + "': expected x86-64-v4, x86-64-v3, aarch64 or portable");
    if (f == target ||
        std::find(options.fallback_targets.begin(), options.fallback_targets.begin() + i, f) !=
            options.fallback_targets.begin() + i)
      return Status(StatusCode::kInvalidArgument,
                    "fallback target '" + f + "' is the target or given twice");
  }
  const bool with_fallback = !options.fallback_targets.empty();
  if (with_fallback && options.format_major < 2)
    return Status(StatusCode::kInvalidArgument, "fallback targets need package format 2");
  if (options.chunk_size < kAlignment)
    return Status(StatusCode::kInvalidArgument, "chunk size must be at least 64 bytes");

  // The passes run once, here; the package stores their result and the loader compiles it
  // as it is. Compiling a copy proves it runs and gives the arena size and the I/O.
  int level = options.session.optimization_level;
  if (level > 0) {
    passes::OptimizeOptions po;
    po.level = level;
    for (const auto& [name, value] : options.session.dim_values) po.dim_values[name] = value;
    auto report = passes::optimize(model, po);
    if (!report.is_ok()) level = 0;  // as CompiledModel::compile: a failing pass is skipped
  }
  SessionOptions compile_options = options.session;
  compile_options.optimization_level = 0;
  compile_options.num_threads = 1;
  // Kernels pack their weights for the target's ISA; the package stores what they packed.
  // A target this machine cannot run gets the weights as they are (packed at load there).
  CompileExtras extras;
  const Isa isa = target_isa(target);
  const bool prepack = options.prepack && isa_supported(isa);
  if (prepack) extras.isa = isa;
  BRINK_ASSIGN_OR_RETURN(auto compiled, CompiledModel::compile(model, compile_options,
                                                               /*keep_problems=*/false, &extras));
  Prepacking pre;
  if (prepack)
    pre = plan_prepacking(model.graph, compiled->packed_weights());
  else
    pre.elided.assign(model.graph.values.size(), false);

  flatbuffers::FlatBufferBuilder model_builder(1 << 16);
  WeightLayout weights(options.chunk_size);
  ModelWriter writer(model_builder, weights, pre);
  BRINK_ASSIGN_OR_RETURN(auto model_root, writer.model(model, level, with_fallback));
  model_builder.Finish(model_root);

  std::vector<std::pair<fb::ChunkKind, std::pair<const uint8_t*, size_t>>> chunks;
  chunks.push_back(
      {fb::ChunkKind_Graph, {model_builder.GetBufferPointer(), model_builder.GetSize()}});
  int64_t weight_bytes = 0, fallback_bytes = 0;
  for (const auto& c : weights.chunks()) {
    if (with_fallback && chunks.size() >= writer.fallback_chunk())
      fallback_bytes += static_cast<int64_t>(c.size());
    chunks.push_back({fb::ChunkKind_Weights, {c.data(), c.size()}});
    weight_bytes += static_cast<int64_t>(c.size());
  }
  // Encryption replaces each chunk by its ciphertext; hashes are of what is stored, so
  // integrity is checked before anything is decrypted.
  std::vector<std::vector<uint8_t>> ciphertexts;
  std::vector<std::array<uint8_t, 24>> nonces;
  if (options.encryption_key) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      const uint32_t index = static_cast<uint32_t>(i);
      uint8_t ad[4] = {static_cast<uint8_t>(index), static_cast<uint8_t>(index >> 8),
                       static_cast<uint8_t>(index >> 16), static_cast<uint8_t>(index >> 24)};
      nonces.emplace_back();
      ciphertexts.push_back(encrypt_chunk(*options.encryption_key, chunks[i].second.first,
                                          chunks[i].second.second, ad, sizeof ad, &nonces.back()));
    }
    for (size_t i = 0; i < chunks.size(); ++i)
      chunks[i].second = {ciphertexts[i].data(), ciphertexts[i].size()};
  }

  // Manifest. Format 2 puts it before the chunks, so the chunks' offsets depend on its size,
  // which does not depend on their values (FlatBuffers stores scalars at fixed width; the
  // offsets are never 0, the default it would leave out): built twice at most.
  const bool v2 = options.format_major >= 2;
  if (options.format_major != 1 && options.format_major != kFormatMajor)
    return Status(StatusCode::kInvalidArgument,
                  "package format " + std::to_string(options.format_major) + ": expected 1 or " +
                      std::to_string(kFormatMajor));
  std::vector<Sha256> hashes;
  for (const auto& c : chunks) hashes.push_back(sha256(c.second.first, c.second.second));
  const std::string key_id =
      options.signing_key ? options.signing_key->public_key().id() : std::string();
  const uint64_t signature_size = options.signing_key ? kSignatureBytes : 0;
  flatbuffers::FlatBufferBuilder mb(4096);
  auto build_manifest = [&](uint64_t first_chunk) {
    mb.Clear();
    std::vector<flatbuffers::Offset<fb::Chunk>> chunk_entries;
    uint64_t offset = first_chunk;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const auto& [kind, bytes] = chunks[i];
      auto hash = mb.CreateVector(hashes[i].data(), hashes[i].size());
      flatbuffers::Offset<flatbuffers::Vector<uint8_t>> nonce = 0;
      if (!nonces.empty()) nonce = mb.CreateVector(nonces[i].data(), nonces[i].size());
      chunk_entries.push_back(fb::CreateChunk(mb, kind, offset, bytes.second, hash, nonce));
      offset = align_up(offset + bytes.second);
    }
    std::vector<flatbuffers::Offset<fb::IoInfo>> ins, outs;
    for (const TensorInfo& t : compiled->inputs()) ins.push_back(io_info(mb, t));
    for (const TensorInfo& t : compiled->outputs()) outs.push_back(io_info(mb, t));
    std::vector<flatbuffers::Offset<flatbuffers::String>> labels;
    for (const std::string& l : options.labels) labels.push_back(mb.CreateString(l));
    std::vector<flatbuffers::Offset<flatbuffers::String>> fallbacks;
    for (const std::string& f : options.fallback_targets) fallbacks.push_back(mb.CreateString(f));
    auto manifest = fb::CreateManifest(
        mb, mb.CreateString(options.name), mb.CreateString(options.version),
        mb.CreateString(target), mb.CreateString(options.created_by),
        mb.CreateVector(chunk_entries), mb.CreateVector(ins), mb.CreateVector(outs),
        compiled->arena_bytes().value_or(-1), compiled->parameter_bytes(),
        mb.CreateString(options.meta_json), mb.CreateVector(labels), mb.CreateString(key_id),
        options.encryption_key.has_value(),
        mb.CreateString(options.encryption_key ? options.encryption_key->id() : std::string()),
        with_fallback ? mb.CreateVector(fallbacks) : 0,
        with_fallback
            ? std::min<uint32_t>(writer.fallback_chunk(), static_cast<uint32_t>(chunks.size()))
            : 0,
        with_fallback
            ? std::min<uint32_t>(writer.packed_chunk(), static_cast<uint32_t>(chunks.size()))
            : 0);
    mb.Finish(manifest);
    return offset;  // where the chunks end
  };
  uint64_t chunks_begin = kHeaderBytes, chunks_end = 0;
  if (v2) {
    build_manifest(kAlignment);  // any non-zero offsets: only the size matters here
    chunks_begin = align_up(kHeaderBytes + mb.GetSize() + kSealBytes + signature_size);
    for (int tries = 0;; ++tries) {
      chunks_end = build_manifest(chunks_begin);
      const uint64_t need = align_up(kHeaderBytes + mb.GetSize() + kSealBytes + signature_size);
      if (need == chunks_begin) break;
      if (tries == 3) return Status(StatusCode::kInternal, "the manifest's size does not settle");
      chunks_begin = need;
    }
  } else {
    chunks_end = build_manifest(kHeaderBytes);
  }

  FixedHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.format_major = v2 ? kFormatMajor : 1;
  h.format_minor = v2 && with_fallback ? kFormatMinor : 0;  // 2.1 only adds fallbacks
  h.header_bytes = kHeaderBytes;
  h.manifest_offset = v2 ? kHeaderBytes : chunks_end;
  h.manifest_size = mb.GetSize();
  h.trailer_offset = h.manifest_offset + mb.GetSize();
  h.signature_size = signature_size;
  h.file_size = v2 ? chunks_end : h.trailer_offset + kSealBytes + h.signature_size;

  std::vector<uint8_t> signed_part(kHeaderBytes + mb.GetSize());
  std::memcpy(signed_part.data(), &h, kHeaderBytes);
  std::memcpy(signed_part.data() + kHeaderBytes, mb.GetBufferPointer(), mb.GetSize());
  const Sha256 seal = sha256(signed_part.data(), signed_part.size());

  auto write_all = [&](std::FILE* f) {
    static const char zeros[kAlignment] = {};
    auto put = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, f) == n; };
    uint64_t at = 0;
    auto pad = [&] {
      const bool ok = put(zeros, align_up(at) - at);
      at = align_up(at);
      return ok;
    };
    auto head = [&] {
      bool ok = put(mb.GetBufferPointer(), mb.GetSize()) && put(seal.data(), seal.size());
      at += mb.GetSize() + seal.size();
      if (options.signing_key) {
        const auto pk = options.signing_key->public_key();
        const auto sig = sign(*options.signing_key, signed_part.data(), signed_part.size());
        ok = ok && put(pk.bytes.data(), pk.bytes.size()) && put(sig.data(), sig.size());
        at += pk.bytes.size() + sig.size();
      }
      return ok;
    };
    bool ok = put(&h, kHeaderBytes);
    at = kHeaderBytes;
    if (v2) ok = ok && head() && pad();
    for (const auto& [kind, bytes] : chunks) {
      ok = ok && put(bytes.first, bytes.second);
      at += bytes.second;
      ok = ok && pad();
    }
    if (!v2) ok = ok && head();
    return ok && at == h.file_size;
  };
  BRINK_RETURN_IF_ERROR(write_file_atomically(path, write_all));

  PackSummary s;
  s.file_bytes = static_cast<int64_t>(h.file_size);
  s.graph_bytes = static_cast<int64_t>(model_builder.GetSize());
  s.weight_bytes = weight_bytes;
  s.chunks = static_cast<int64_t>(chunks.size());
  s.arena_bytes = compiled->arena_bytes();
  s.signer_key_id = key_id;
  s.prepacked_nodes = static_cast<int64_t>(pre.by_node.size());
  s.fallback_bytes = fallback_bytes;
  for (size_t v = 0; v < pre.elided.size(); ++v)
    if (pre.elided[v])
      s.elided_bytes += static_cast<int64_t>(model.graph.values[v].constant->nbytes());
  return s;
}

}  // namespace brink::package
