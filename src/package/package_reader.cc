// open_package: map, check every byte, decode the graph with constants viewing the mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <map>
#include <tuple>
#include <utility>

#include "core/cpu_features.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "package/package.h"
#include "package/package_generated.h"
#include "package/package_internal.h"
#include "runtime/compiled_model.h"

namespace brink::package {
namespace {

// The whole file, mapped read-only: constants are never written, and a writable private
// mapping would make MAP_POPULATE copy every page. MAP_POPULATE maps the file's cached pages
// in one go, since the hashes read every byte anyway.
struct Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr) ::munmap(data, size);
  }
};

size_t align_up(size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

Status bad(const std::string& what, const std::string& message) {
  return Status(StatusCode::kInvalidModel, what + ": " + message);
}

std::string range(uint64_t begin, uint64_t size) {
  return "bytes [" + std::to_string(begin) + ", " + std::to_string(begin + size) + ")";
}

bool valid_dtype(int32_t d) {
  const auto t = static_cast<DataType>(d);
  return d > 0 && d <= static_cast<int32_t>(DataType::kBFloat16) && dtype_size(t) > 0;
}

// The FlatBuffers verifier checks a vector's length field, not that 8-byte elements are
// 8-byte aligned; reading a misaligned one would be undefined behaviour, so such a vector is
// refused (the writer aligns every non-empty one).
template <typename T>
bool aligned(const flatbuffers::Vector<T>* v) {
  return v == nullptr || v->size() == 0 || reinterpret_cast<uintptr_t>(v->data()) % alignof(T) == 0;
}

TensorInfo io_info(const fb::IoInfo* io) {
  TensorInfo t;
  if (io == nullptr || !aligned(io->shape())) return t;
  if (io->name()) t.name = io->name()->str();
  t.dtype = static_cast<DataType>(io->dtype());
  if (io->shape()) t.shape.assign(io->shape()->begin(), io->shape()->end());
  if (io->dim_names())
    for (const auto* s : *io->dim_names()) t.dim_names.push_back(s ? s->str() : "");
  return t;
}

// Names, op types and the like end up in one-line error messages: no control characters.
Result<std::string> text(const flatbuffers::String* s, const char* what) {
  if (s == nullptr) return std::string();
  for (char c : s->string_view())
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return Status(StatusCode::kInvalidModel,
                    std::string("a ") + what + " holds a control character");
  return s->str();
}

// Decodes the Model FlatBuffer into the IR. Every index and byte range is checked: the
// FlatBuffers verifier proves the buffer is well-formed, not that it makes sense.
class ModelReader {
 public:
  // `tag`: bytes at the end of each chunk that are not data (the encryption tag), else 0.
  // Tensors of the graph live in chunks [1, fallback_chunk); fallback constants in
  // [fallback_chunk, count), which a load of the primary target does not read. A fallback
  // target's load does not read the packed weights' chunks [packed_chunk, fallback_chunk):
  // then the graph's other tensors must lie before them, and packed weights in them.
  ModelReader(const uint8_t* base, const fb::Manifest* manifest, std::shared_ptr<void> owner,
              size_t tag, uint32_t packed_chunk, uint32_t fallback_chunk, bool fallback)
      : base_(base),
        manifest_(manifest),
        owner_(std::move(owner)),
        tag_(tag),
        chunk_begin_(1),
        chunk_end_(fallback ? packed_chunk : fallback_chunk),
        packed_chunk_(packed_chunk),
        fallback_chunk_(fallback_chunk),
        fallback_(fallback) {}

  Result<Tensor> tensor(const fb::TensorRef* r) {
    if (r == nullptr) return Status(StatusCode::kInvalidModel, "a tensor reference is missing");
    if (!valid_dtype(r->dtype()))
      return Status(StatusCode::kInvalidModel,
                    "a tensor has unknown element type " + std::to_string(r->dtype()));
    if (!aligned(r->shape()))
      return Status(StatusCode::kInvalidModel, "a tensor's shape is misaligned");
    Shape shape;
    int64_t numel = 1;
    if (r->shape())
      for (int64_t d : *r->shape()) {
        if (d < 0 || (d > 0 && numel > (int64_t{1} << 40) / d))
          return Status(StatusCode::kInvalidModel, "a tensor has a negative or huge dim");
        shape.push_back(d);
        numel *= d;
      }
    const auto dtype = static_cast<DataType>(r->dtype());
    const uint64_t want = static_cast<uint64_t>(numel) * dtype_size(dtype);
    if (r->elided()) {
      // Replaced by packed weights: zeros no kernel reads (large ones are untouched mapped
      // pages, so they cost address space, not memory). Where they may appear is checked
      // after the graph is read.
      if (r->chunk() != 0 || r->nbytes() != 0 || want > (uint64_t{1} << 32))
        return Status(StatusCode::kInvalidModel, "an elided tensor is malformed");
      std::shared_ptr<void> zeros = shared_aligned(std::max<size_t>(want, 1));
      if (want < kDirectMapBytes) std::memset(zeros.get(), 0, want);
      ++elided_;
      void* data = zeros.get();
      return Tensor::wrap(dtype, std::move(shape), data, std::move(zeros));
    }
    const auto* chunks = manifest_->chunks();
    if (r->chunk() < chunk_begin_ || r->chunk() >= chunk_end_ || r->chunk() >= chunks->size() ||
        chunks->Get(r->chunk())->kind() != fb::ChunkKind_Weights)
      return Status(StatusCode::kInvalidModel,
                    "a tensor refers to chunk " + std::to_string(r->chunk()) +
                        ", which is not a weight chunk of its part (chunks " +
                        std::to_string(chunk_begin_) + " to " + std::to_string(chunk_end_) + ")");
    const fb::Chunk* c = chunks->Get(r->chunk());
    const uint64_t chunk_size = c->size() - tag_;  // the reader checked c->size() >= tag_
    if (r->nbytes() != want || r->offset() % kAlignment != 0 || r->offset() > chunk_size ||
        chunk_size - r->offset() < r->nbytes())
      return Status(StatusCode::kInvalidModel, "a tensor's bytes (" + std::to_string(r->nbytes()) +
                                                   " at offset " + std::to_string(r->offset()) +
                                                   " of chunk " + std::to_string(r->chunk()) +
                                                   ") do not fit its chunk or its shape");
    void* data = const_cast<uint8_t*>(base_ + c->offset() + r->offset());
    return Tensor::wrap(dtype, std::move(shape), data, owner_);
  }

  Result<ir::TensorType> type(const fb::TensorType* t) {
    ir::TensorType out;
    if (t == nullptr) return out;
    out.dtype = static_cast<DataType>(t->dtype());
    if (t->dtype() < 0 || t->dtype() > static_cast<int32_t>(DataType::kBFloat16))
      return Status(StatusCode::kInvalidModel,
                    "unknown element type " + std::to_string(t->dtype()));
    if (t->has_rank()) {
      std::vector<ir::Dim> dims;
      if (t->dims())
        for (const auto* d : *t->dims()) {
          if (d == nullptr) return Status(StatusCode::kInvalidModel, "a dim is missing");
          if (d->value() >= 0)
            dims.emplace_back(d->value());
          else {
            BRINK_ASSIGN_OR_RETURN(auto param, text(d->param(), "dim name"));
            dims.push_back(ir::Dim::symbol(std::move(param)));
          }
        }
      out.dims = std::move(dims);
    }
    return out;
  }

  Result<ir::Attribute> attribute(const fb::Attribute* a) {
    if (a == nullptr) return Status(StatusCode::kInvalidModel, "an attribute is missing");
    ir::Attribute out;
    BRINK_ASSIGN_OR_RETURN(out.name, text(a->name(), "attribute name"));
    const int elided_before = elided_;
    if (a->type() < fb::AttrType_MIN || a->type() > fb::AttrType_MAX)
      return Status(StatusCode::kInvalidModel, "attribute '" + out.name + "' has an unknown type");
    out.type = static_cast<ir::AttrType>(a->type());
    out.f = a->f();
    out.i = a->i();
    if (a->s()) out.s.assign(reinterpret_cast<const char*>(a->s()->data()), a->s()->size());
    if (out.type == ir::AttrType::kTensor) {
      BRINK_ASSIGN_OR_RETURN(out.t, tensor(a->t()));
    }
    if (out.type == ir::AttrType::kGraph) {
      if (a->g() == nullptr)
        return Status(StatusCode::kInvalidModel, "attribute '" + out.name + "' has no graph");
      BRINK_ASSIGN_OR_RETURN(auto g, graph(a->g()));
      out.g = std::make_shared<ir::Graph>(std::move(g));
    }
    if (a->floats()) out.floats.assign(a->floats()->begin(), a->floats()->end());
    if (!aligned(a->ints()))
      return Status(StatusCode::kInvalidModel, "attribute '" + out.name + "' is misaligned");
    if (a->ints()) out.ints.assign(a->ints()->begin(), a->ints()->end());
    if (a->strings())
      for (const auto* s : *a->strings())
        out.strings.emplace_back(
            s && s->data()
                ? std::string(reinterpret_cast<const char*>(s->data()->data()), s->data()->size())
                : std::string());
    if (a->tensors())
      for (const auto* t : *a->tensors()) {
        BRINK_ASSIGN_OR_RETURN(auto x, tensor(t));
        out.tensors.push_back(std::move(x));
      }
    if (a->graphs())
      for (const auto* g : *a->graphs()) {
        if (g == nullptr) return Status(StatusCode::kInvalidModel, "a graph is missing");
        BRINK_ASSIGN_OR_RETURN(auto x, graph(g));
        out.graphs.push_back(std::make_shared<ir::Graph>(std::move(x)));
      }
    BRINK_ASSIGN_OR_RETURN(out.ref_attr_name, text(a->ref_attr_name(), "attribute name"));
    if (elided_ != elided_before)
      return Status(StatusCode::kInvalidModel, "attribute '" + out.name + "' has elided tensors");
    return out;
  }

  Result<ir::Graph> graph(const fb::Graph* g) {
    if (++depth_ > 64) return Status(StatusCode::kInvalidModel, "subgraphs nest too deep");
    const bool main = depth_ == 1;
    const int elided_before = elided_;
    ir::Graph out;
    BRINK_ASSIGN_OR_RETURN(out.name, text(g->name(), "graph name"));
    const int64_t num_values = g->values() ? g->values()->size() : 0;
    const int64_t num_nodes = g->nodes() ? g->nodes()->size() : 0;
    auto check_index = [&](int v, bool absent_ok, const std::string& what) -> Status {
      if ((absent_ok && v == ir::kNoValue) || (v >= 0 && v < num_values)) return Status::ok();
      return Status(StatusCode::kInvalidModel, what + " refers to value " + std::to_string(v) +
                                                   " of " + std::to_string(num_values));
    };
    if (g->values())
      for (const auto* v : *g->values()) {
        if (v == nullptr) return Status(StatusCode::kInvalidModel, "a value is missing");
        BRINK_ASSIGN_OR_RETURN(const std::string name, text(v->name(), "value name"));
        if (!name.empty() && out.find_value(name) != ir::kNoValue)
          return Status(StatusCode::kInvalidModel, "value name '" + name + "' is not unique");
        BRINK_ASSIGN_OR_RETURN(auto t, type(v->type()));
        const int idx = out.add_value(name, std::move(t));
        ir::Value& value = out.value(idx);
        if (v->producer() < -1 || v->producer() >= num_nodes)
          return Status(StatusCode::kInvalidModel, "value '" + name + "' has a bad producer");
        value.producer = v->producer();
        if (v->constant()) {
          const int before = elided_;
          auto c = tensor(v->constant());
          if (!c.is_ok()) return c.status().with_context("value '" + name + "'");
          value.type = ir::TensorType::of(c->dtype(), c->shape());
          value.constant = std::move(*c);
          if (elided_ != before) elided_values_.push_back(idx);
        }
      }
    if (g->nodes())
      for (const auto* n : *g->nodes()) {
        if (n == nullptr) return Status(StatusCode::kInvalidModel, "a node is missing");
        ir::Node node;
        BRINK_ASSIGN_OR_RETURN(node.name, text(n->name(), "node name"));
        BRINK_ASSIGN_OR_RETURN(node.op_type, text(n->op_type(), "node op type"));
        BRINK_ASSIGN_OR_RETURN(node.domain, text(n->domain(), "node domain"));
        if (n->inputs())
          for (int v : *n->inputs()) {
            BRINK_RETURN_IF_ERROR(check_index(v, true, node.describe()));
            node.inputs.push_back(v);
          }
        if (n->outputs())
          for (int v : *n->outputs()) {
            BRINK_RETURN_IF_ERROR(check_index(v, true, node.describe()));
            node.outputs.push_back(v);
          }
        if (n->attributes())
          for (const auto* a : *n->attributes()) {
            auto attr = attribute(a);
            if (!attr.is_ok()) return attr.status().with_context(node.describe());
            node.attributes.push_back(std::move(*attr));
          }
        if (const fb::Prepacked* pp = n->prepacked()) {
          if (!main)
            return Status(StatusCode::kInvalidModel,
                          node.describe() + ": packed weights in a subgraph");
          // (A fallback load drops them; they must still be where packed weights go.)
          const uint32_t begin = chunk_begin_, end = chunk_end_;
          if (fallback_)
            std::tie(chunk_begin_, chunk_end_) = std::pair(packed_chunk_, fallback_chunk_);
          auto t = tensor(pp->tensor());
          std::tie(chunk_begin_, chunk_end_) = std::pair(begin, end);
          if (!t.is_ok()) return t.status().with_context(node.describe());
          if (t->dtype() != DataType::kFloat32 || t->rank() != 1 || pp->tensor()->elided())
            return Status(StatusCode::kInvalidModel,
                          node.describe() + ": packed weights must be a 1-D float32 tensor");
          ops::PackedWeights w;
          BRINK_ASSIGN_OR_RETURN(w.layout, text(pp->layout(), "packed weight layout"));
          w.data = t->data<float>();
          w.floats = static_cast<size_t>(t->numel());
          w.owner = owner_;
          prepacked_[static_cast<int>(out.nodes.size())] = std::move(w);
        }
        out.nodes.push_back(std::move(node));
      }
    auto indices = [&](const flatbuffers::Vector<int32_t>* list, std::vector<int>* dst,
                       const char* what) -> Status {
      if (list == nullptr) return Status::ok();
      for (int v : *list) {
        BRINK_RETURN_IF_ERROR(check_index(v, false, std::string("graph ") + what));
        dst->push_back(v);
      }
      return Status::ok();
    };
    BRINK_RETURN_IF_ERROR(indices(g->inputs(), &out.inputs, "input"));
    BRINK_RETURN_IF_ERROR(indices(g->outputs(), &out.outputs, "output"));
    BRINK_RETURN_IF_ERROR(indices(g->initializers(), &out.initializers, "initializer"));
    for (int v : out.initializers)
      if (!out.value(v).constant)
        return Status(StatusCode::kInvalidModel,
                      "initializer '" + out.value(v).name + "' has no data");
    if (!main && elided_ != elided_before)
      return Status(StatusCode::kInvalidModel, "a subgraph has elided constants");
    if (main) BRINK_RETURN_IF_ERROR(check_elided(out));
    --depth_;
    return out;
  }

  // An elided constant holds zeros: only kernels that take packed weights in its place may
  // read it, so every reader must be a node with packed weights, and no graph output.
  Status check_elided(const ir::Graph& g) const {
    std::vector<bool> elided(g.values.size(), false);
    for (int v : elided_values_) elided[static_cast<size_t>(v)] = true;
    for (int v : g.outputs)
      if (elided[static_cast<size_t>(v)])
        return Status(StatusCode::kInvalidModel,
                      "graph output '" + g.value(v).name + "' is an elided constant");
    for (size_t ni = 0; ni < g.nodes.size(); ++ni)
      for (int v : g.nodes[ni].inputs)
        if (v != ir::kNoValue && elided[static_cast<size_t>(v)] &&
            !prepacked_.count(static_cast<int>(ni)))
          return Status(StatusCode::kInvalidModel,
                        g.nodes[ni].describe() + " reads elided constant '" + g.value(v).name +
                            "' but holds no packed weights");
    return Status::ok();
  }

  std::map<int, ops::PackedWeights> take_prepacked() { return std::move(prepacked_); }

  // A fallback target's load: every elided constant of the main graph gets its stored
  // ONNX-layout bytes (from the fallback chunks), and the packed weights are dropped, so the
  // fallback's kernels pack their weights at load.
  Status use_fallback_constants(const fb::Model* m, ir::Graph* g) {
    chunk_begin_ = fallback_chunk_;
    chunk_end_ = manifest_->chunks()->size();
    std::vector<bool> pending(g->values.size(), false);
    for (int v : elided_values_) pending[static_cast<size_t>(v)] = true;
    if (m->fallback_constants())
      for (const fb::FallbackConstant* f : *m->fallback_constants()) {
        const int v = f ? f->value() : -1;
        if (v < 0 || static_cast<size_t>(v) >= pending.size() || !pending[static_cast<size_t>(v)])
          return Status(StatusCode::kInvalidModel,
                        "a fallback constant replaces value " + std::to_string(v) +
                            ", which is not an elided constant of the main graph (or twice)");
        ir::Value& value = g->value(v);
        auto t = tensor(f->tensor());
        if (!t.is_ok()) return t.status().with_context("fallback for value '" + value.name + "'");
        if (f->tensor()->elided() || t->dtype() != value.constant->dtype() ||
            t->shape() != value.constant->shape())
          return Status(StatusCode::kInvalidModel, "the fallback for value '" + value.name +
                                                       "' differs in type or shape from it");
        value.constant = std::move(*t);
        pending[static_cast<size_t>(v)] = false;
      }
    for (size_t v = 0; v < pending.size(); ++v)
      if (pending[v])
        return Status(StatusCode::kInvalidModel,
                      "elided constant '" + g->values[v].name + "' has no fallback constant");
    prepacked_.clear();
    return Status::ok();
  }

  Result<ir::Model> model(const fb::Model* m, bool fallback) {
    ir::Model out;
    out.ir_version = m->ir_version();
    if (m->opsets())
      for (const auto* o : *m->opsets())
        if (o) out.opset_imports.push_back({o->domain() ? o->domain()->str() : "", o->version()});
    if (m->producer_name()) out.producer_name = m->producer_name()->str();
    if (m->producer_version()) out.producer_version = m->producer_version()->str();
    if (m->domain()) out.domain = m->domain()->str();
    out.model_version = m->model_version();
    if (m->metadata())
      for (const auto* p : *m->metadata())
        if (p)
          out.metadata_props.emplace_back(p->key() ? p->key()->str() : "",
                                          p->value() ? p->value()->str() : "");
    if (m->graph() == nullptr) return Status(StatusCode::kInvalidModel, "the model has no graph");
    BRINK_ASSIGN_OR_RETURN(out.graph, graph(m->graph()));
    BRINK_RETURN_IF_ERROR(ir::verify(out));
    if (fallback) BRINK_RETURN_IF_ERROR(use_fallback_constants(m, &out.graph));
    return out;
  }

 private:
  const uint8_t* base_;
  const fb::Manifest* manifest_;
  std::shared_ptr<void> owner_;
  size_t tag_ = 0;
  uint32_t chunk_begin_ = 1, chunk_end_ = 1;  // the chunks tensors may refer to
  uint32_t packed_chunk_ = 1, fallback_chunk_ = 1;
  bool fallback_ = false;
  int depth_ = 0;
  int elided_ = 0;
  std::vector<int> elided_values_;  // of the main graph
  std::map<int, ops::PackedWeights> prepacked_;
};

}  // namespace

// ---- Targets ------------------------------------------------------------------------------

const std::vector<std::string>& known_targets() {
  static const std::vector<std::string> targets = {"x86-64-v4", "x86-64-v3", "aarch64", "portable"};
  return targets;
}

std::string host_target() {
  if (isa_supported(Isa::kAvx512)) return "x86-64-v4";
  if (isa_supported(Isa::kAvx2)) return "x86-64-v3";
  if (isa_supported(Isa::kNeon)) return "aarch64";
  return "portable";
}

Isa target_isa(const std::string& target) {
  if (target == "x86-64-v4") return Isa::kAvx512;
  if (target == "x86-64-v3") return Isa::kAvx2;
  if (target == "aarch64") return Isa::kNeon;
  return Isa::kPortable;
}

Status check_target_runs_here(const std::string& target) {
  auto refuse = [&](const std::string& why) {
    return Status(StatusCode::kUnsupported,
                  "package targets " + target + ", which this machine cannot run (" + why + ")");
  };
  if (std::find(known_targets().begin(), known_targets().end(), target) == known_targets().end())
    return Status(StatusCode::kUnsupported, "package targets unknown target '" + target + "'");
  const std::string why = isa_unsupported_reason(target_isa(target));
  return why.empty() ? Status::ok() : refuse(why);
}

// True when `isa` is within the BRINK_ISA cap (best_isa()): the cap itself, portable, or
// AVX2 under an AVX-512 cap.
static bool within_isa_cap(Isa isa) {
  const Isa cap = best_isa();
  return isa == cap || isa == Isa::kPortable || (isa == Isa::kAvx2 && cap == Isa::kAvx512);
}

Result<std::string> choose_target(const std::vector<std::string>& targets,
                                  const std::string& forced) {
  std::string list;
  for (const std::string& t : targets) list += (list.empty() ? "" : ", ") + t;
  if (!forced.empty()) {
    if (std::find(targets.begin(), targets.end(), forced) == targets.end())
      return Status(StatusCode::kInvalidArgument,
                    "target " + forced + " was asked for, but the package has " + list);
    BRINK_RETURN_IF_ERROR(check_target_runs_here(forced));
    return forced;
  }
  for (const std::string& t : targets)
    if (check_target_runs_here(t).is_ok() && within_isa_cap(target_isa(t))) return t;
  for (const std::string& t : targets)
    if (check_target_runs_here(t).is_ok()) return t;
  if (targets.size() == 1) return check_target_runs_here(targets[0]);
  return Status(StatusCode::kUnsupported,
                "package targets " + list +
                    ", none of which this machine runs (this CPU: " + host_target() + ")");
}

bool is_package_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[sizeof kMagic] = {};
  const bool yes = ::read(fd, magic, sizeof magic) == static_cast<ssize_t>(sizeof magic) &&
                   std::memcmp(magic, kMagic, sizeof magic) == 0;
  ::close(fd);
  return yes;
}

// Reads [p, p + n) of a file mapping in at once (what MAP_POPULATE does for a whole mapping;
// here the fallback chunks a load does not use stay out).
static void populate(const uint8_t* p, size_t n) {
  if (n == 0) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page * page;
#if defined(MADV_POPULATE_READ)
  if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ) == 0) return;
#endif
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);
}

// Whole pages inside [p, p + n) of a file mapping leave memory (they stay in the page cache).
static void drop_range(const uint8_t* p, size_t n) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

struct PackageAccess {
  static Result<std::unique_ptr<Package>> open(std::shared_ptr<const void> owner, size_t size,
                                               const std::string& what,
                                               const VerifyOptions& options, bool file_mapping);
  static void fill(Package& p, ir::Model model, int optimization_level,
                   std::map<int, ops::PackedWeights> prepacked, const uint8_t* base, size_t size,
                   bool file_mapping) {
    p.model_ = std::move(model);
    p.optimization_level_ = optimization_level;
    p.prepacked_ = std::move(prepacked);
    p.base_ = base;
    p.size_ = size;
    p.file_mapping_ = file_mapping;
  }
  static PackageInfo& info(Package& p) { return p.info_; }
  static std::unique_ptr<Package> create() { return std::unique_ptr<Package>(new Package()); }
};

Package::~Package() = default;

std::map<int, std::vector<std::pair<const void*, size_t>>> Package::weight_ranges() const {
  std::map<int, std::vector<std::pair<const void*, size_t>>> out;
  const ir::Graph& g = model_.graph;
  auto in_mapping = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    return b >= base_ && n <= size_ && b - base_ <= static_cast<std::ptrdiff_t>(size_ - n);
  };
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    auto& ranges = out[static_cast<int>(ni)];
    if (auto it = prepacked_.find(static_cast<int>(ni)); it != prepacked_.end())
      ranges.emplace_back(it->second.data, it->second.floats * sizeof(float));
    for (int v : g.nodes[ni].inputs)
      if (v != ir::kNoValue && g.value(v).constant &&
          in_mapping(g.value(v).constant->raw_data(), g.value(v).constant->nbytes()))
        ranges.emplace_back(g.value(v).constant->raw_data(), g.value(v).constant->nbytes());
  }
  return out;
}

void Package::release_weight_pages() const {
  if (!file_mapping_) return;
  for (const ChunkInfo& c : info_.chunks)
    if (c.kind == "weights" && (!c.fallback || info_.uses_fallback()))
      drop_range(base_ + c.offset, c.size);
}

Result<std::unique_ptr<Package>> open_package(const std::string& path,
                                              const VerifyOptions& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status(StatusCode::kIoError, path + ": not a regular file");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size > 0) {
    // Populated once the manifest says which chunks this load reads (populate()).
    const int flags = MAP_PRIVATE;
    void* p = ::mmap(nullptr, mapping->size, PROT_READ, flags, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return Status(StatusCode::kIoError, path + ": cannot map: " + std::strerror(errno));
    }
    mapping->data = p;
  }
  ::close(fd);
  const void* data = mapping->data;
  return PackageAccess::open(std::shared_ptr<const void>(mapping, data), mapping->size, path,
                             options, /*file_mapping=*/true);
}

Result<std::unique_ptr<Package>> open_package_memory(std::shared_ptr<const void> owner, size_t size,
                                                     const std::string& what,
                                                     const VerifyOptions& options) {
  return PackageAccess::open(std::move(owner), size, what, options, /*file_mapping=*/false);
}

namespace internal {

Status check_header(const uint8_t* base, uint64_t size, const std::string& what, Layout* out) {
  if (size < kHeaderBytes || std::memcmp(base, kMagic, sizeof kMagic) != 0)
    return bad(what, "not a Brink package (no BRINKPKG header)");
  FixedHeader& h = out->header;
  std::memcpy(&h, base, sizeof h);
  if (h.format_major > kFormatMajor)
    return Status(StatusCode::kUnsupported,
                  what + ": package format " + std::to_string(h.format_major) + "." +
                      std::to_string(h.format_minor) + " is newer than this reader (" +
                      std::to_string(kFormatMajor) + ".x); update Brink");
  if (h.format_major < 1) return bad(what, "package format 0 is not a released format");
  if (h.header_bytes != kHeaderBytes || h.reserved != 0)
    return bad(what, "the header is damaged (header size or reserved field)");
  if (h.file_size != size)
    return bad(what, "the file has " + std::to_string(size) + " bytes but its header says " +
                         std::to_string(h.file_size) + " (truncated or appended to)");
  if (h.signature_size != 0 && h.signature_size != kSignatureBytes)
    return bad(what, "the header's signature size is " + std::to_string(h.signature_size) +
                         " (expected 0 or 96)");
  const std::string where = "the header's layout does not match the file (manifest " +
                            range(h.manifest_offset, h.manifest_size) + ")";
  if (h.manifest_offset < kHeaderBytes || h.manifest_offset % kAlignment != 0 ||
      h.manifest_offset > size || h.manifest_size > size - h.manifest_offset ||
      h.trailer_offset != h.manifest_offset + h.manifest_size ||
      size - h.trailer_offset < kSealBytes + h.signature_size)
    return bad(what, where);
  out->head_end = h.trailer_offset + kSealBytes + h.signature_size;
  if (h.format_major == 1) {
    // Chunks, then manifest, seal and signature ending the file.
    if (out->head_end != size) return bad(what, where);
    out->chunks_begin = kHeaderBytes;
    out->chunks_end = h.manifest_offset;
  } else {
    // Manifest, seal and signature right after the header, then the chunks (64-aligned).
    if (h.manifest_offset != kHeaderBytes || align_up(out->head_end) > size)
      return bad(what, where);
    out->chunks_begin = align_up(out->head_end);
    out->chunks_end = size;
  }
  return Status::ok();
}

Result<Head> check_head(const Layout& layout, const uint8_t* header, const uint8_t* manifest_bytes,
                        const uint8_t* trailer, const std::string& what,
                        const VerifyOptions& options) {
  const FixedHeader& h = layout.header;
  // The seal and the signature over header || manifest, before the manifest is read.
  Head head;
  const Sha256 seal = sha256(header, kHeaderBytes, manifest_bytes, h.manifest_size);
  if (std::memcmp(seal.data(), trailer, kSealBytes) != 0)
    return bad(what,
               "the header or the manifest fails its SHA-256 seal: the file was modified "
               "or damaged");
  if (h.signature_size == kSignatureBytes) {
    PublicKey signer;
    std::memcpy(signer.bytes.data(), trailer + kSealBytes, 32);
    head.signer_id = signer.id();
    std::vector<uint8_t> message(kHeaderBytes + h.manifest_size);
    std::memcpy(message.data(), header, kHeaderBytes);
    std::memcpy(message.data() + kHeaderBytes, manifest_bytes, h.manifest_size);
    if (!verify_signature(signer, trailer + kSealBytes + 32, message.data(), message.size()))
      return bad(what, "the signature by key " + head.signer_id +
                           " does not verify: the package was modified after signing");
    if (options.trusted_key) {
      if (signer.bytes != options.trusted_key->bytes)
        return bad(what, "signed by key " + head.signer_id + ", not by the trusted key " +
                             options.trusted_key->id());
      head.trusted = true;
    }
  } else if (options.trusted_key) {
    return bad(what, "the package is not signed, but a signature by key " +
                         options.trusted_key->id() + " is required");
  }
  if (options.trusted_key && options.trusted_key->expires) {
    const int64_t now = options.now ? *options.now : static_cast<int64_t>(std::time(nullptr));
    if (now > *options.trusted_key->expires)
      return bad(what, "the trusted key " + options.trusted_key->id() + " expired on " +
                           format_date(*options.trusted_key->expires));
  }

  // The manifest.
  flatbuffers::Verifier mv(manifest_bytes, h.manifest_size);
  if (!mv.VerifyBuffer<fb::Manifest>(nullptr))
    return bad(what, "the manifest is malformed (FlatBuffers verification failed)");
  const fb::Manifest* m = flatbuffers::GetRoot<fb::Manifest>(manifest_bytes);
  if (m->chunks() == nullptr || m->chunks()->size() == 0 ||
      m->chunks()->Get(0)->kind() != fb::ChunkKind_Graph)
    return bad(what, "the manifest lists no graph chunk");
  head.target = m->target() ? m->target()->str() : "";
  if (std::find(known_targets().begin(), known_targets().end(), head.target) ==
      known_targets().end())
    return bad(what,
               "the package's target is not one this reader knows (x86-64-v4, x86-64-v3, "
               "aarch64, portable)");
  // Fallback targets (format 2.1): known, distinct, after the primary; their chunks last.
  head.targets = {head.target};
  if (m->fallback_targets())
    for (const auto* t : *m->fallback_targets()) {
      const std::string name = t ? t->str() : "";
      if (std::find(known_targets().begin(), known_targets().end(), name) ==
              known_targets().end() ||
          std::find(head.targets.begin(), head.targets.end(), name) != head.targets.end())
        return bad(what, "the manifest's fallback targets are not distinct known targets");
      head.targets.push_back(name);
    }
  head.fallback_chunk = head.packed_chunk = m->chunks()->size();
  if (head.targets.size() > 1) {
    if (m->fallback_chunk() < 1 || m->fallback_chunk() > m->chunks()->size() ||
        m->packed_chunk() < 1 || m->packed_chunk() > m->fallback_chunk())
      return bad(what, "the manifest's packed and fallback chunks (from " +
                           std::to_string(m->packed_chunk()) + " and " +
                           std::to_string(m->fallback_chunk()) + ") are not in order among its " +
                           std::to_string(m->chunks()->size()) + " chunks");
    head.fallback_chunk = m->fallback_chunk();
    head.packed_chunk = m->packed_chunk();
  } else if (m->fallback_chunk() != 0 || m->packed_chunk() != 0) {
    return bad(what, "the manifest has fallback chunks but no fallback target");
  }
  if (options.check_target) {
    auto chosen = choose_target(head.targets, options.target);
    if (!chosen.is_ok()) return chosen.status().with_context(what);
    head.selected = *chosen;
  } else {
    // Inspecting (brink info, verify, diff): the primary target's model, or that of the
    // target asked for when the package has it, whether or not this CPU runs it.
    head.selected = head.target;
    if (std::find(head.targets.begin(), head.targets.end(), options.target) != head.targets.end())
      head.selected = options.target;
  }
  head.fallback = head.selected != head.target;

  // The chunks tile the layout's chunk range exactly (padding is checked with the bytes).
  const auto* chunks = m->chunks();
  uint64_t expect = layout.chunks_begin;
  for (uint32_t i = 0; i < chunks->size(); ++i) {
    const fb::Chunk* c = chunks->Get(i);
    if (c->offset() != expect || c->offset() > layout.chunks_end ||
        c->size() > layout.chunks_end - c->offset() || c->sha256() == nullptr ||
        c->sha256()->size() != 32 || (i > 0 && c->kind() != fb::ChunkKind_Weights))
      return bad(what, "chunk " + std::to_string(i) + " (" + range(c->offset(), c->size()) +
                           ") is out of place in the manifest");
    expect = align_up(c->offset() + c->size());
  }
  if (expect != layout.chunks_end)
    return bad(what, h.format_major == 1 ? "the chunks do not end where the manifest starts"
                                         : "the chunks do not end where the file ends");
  head.manifest = m;
  return head;
}

Status check_chunk_padding(const uint8_t* base, const fb::Manifest* m, uint32_t i,
                           const std::string& what) {
  const fb::Chunk* c = m->chunks()->Get(i);
  const uint64_t end = c->offset() + c->size();
  for (uint64_t p = end; p < align_up(end); ++p)
    if (base[p] != 0) return bad(what, "padding byte " + std::to_string(p) + " is not zero");
  return Status::ok();
}

bool chunk_hash_matches(const uint8_t* bytes, const fb::Manifest* m, uint32_t i) {
  const fb::Chunk* c = m->chunks()->Get(i);
  const Sha256 got = sha256(bytes, c->size());
  return std::memcmp(got.data(), c->sha256()->data(), 32) == 0;
}

Status chunk_hash_error(const fb::Manifest* m, uint32_t i, const std::string& what) {
  const fb::Chunk* c = m->chunks()->Get(i);
  return bad(what, "chunk " + std::to_string(i) + " (" +
                       (c->kind() == fb::ChunkKind_Graph ? "graph" : "weights") + ", " +
                       range(c->offset(), c->size()) +
                       ") fails its SHA-256 check: the file was modified or damaged");
}

Result<std::unique_ptr<Package>> decode_package(const Layout& layout, const Head& head,
                                                const uint8_t* base,
                                                std::shared_ptr<const void> owner,
                                                const std::string& what,
                                                const VerifyOptions& options, bool file_mapping) {
  const FixedHeader& h = layout.header;
  const fb::Manifest* m = head.manifest;
  const auto* chunks = m->chunks();
  const size_t size = h.file_size;
  // Encrypted packages: every chunk decrypted (and its tag checked) into one aligned
  // buffer, at its offset in the file, which the model then views instead of the mapping.
  const uint8_t* data = base;
  std::shared_ptr<void> data_owner = std::const_pointer_cast<void>(owner);
  size_t tag = 0;
  std::string encryption_key_id;
  if (m->encrypted()) {
    auto id = text(m->encryption_key_id(), "key id");
    if (!id.is_ok()) return id.status().with_context(what);
    encryption_key_id = *id;
    if (!options.decryption_key)
      return Status(StatusCode::kInvalidArgument, what + ": the package is encrypted (key " +
                                                      encryption_key_id +
                                                      "); give its key (--key)");
    if (options.decryption_key->id() != encryption_key_id)
      return bad(what, "encrypted with key " + encryption_key_id + ", not with the key given (" +
                           options.decryption_key->id() + ")");
    std::shared_ptr<void> plain = shared_aligned(std::max<size_t>(layout.chunks_end, 1));
    auto* out = static_cast<uint8_t*>(plain.get());
    std::memset(out, 0, layout.chunks_begin);
    for (uint32_t i = 0; i < chunks->size(); ++i) {
      const fb::Chunk* c = chunks->Get(i);
      const uint8_t ad[4] = {static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8),
                             static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 24)};
      if (c->nonce() == nullptr || c->nonce()->size() != 24 || c->size() < kEncryptionTagBytes ||
          !decrypt_chunk(*options.decryption_key, base + c->offset(), c->size(), c->nonce()->data(),
                         ad, sizeof ad, out + c->offset()))
        return bad(
            what, "chunk " + std::to_string(i) + " does not decrypt with key " + encryption_key_id);
    }
    data = out;
    data_owner = std::move(plain);
    tag = kEncryptionTagBytes;
  }

  // The graph.
  const fb::Chunk* gc = chunks->Get(0);
  if (gc->size() < tag) return bad(what, "the graph chunk is too small");
  flatbuffers::Verifier gv(data + gc->offset(), gc->size() - tag,
                           flatbuffers::Verifier::Options{/*max_depth=*/128,
                                                          /*max_tables=*/10000000});
  if (!gv.VerifyBuffer<fb::Model>(nullptr))
    return bad(what, "the graph chunk is malformed (FlatBuffers verification failed)");
  const fb::Model* fm = flatbuffers::GetRoot<fb::Model>(data + gc->offset());
  ModelReader reader(data, m, data_owner, tag, head.packed_chunk, head.fallback_chunk,
                     head.fallback);
  auto model = reader.model(fm, head.fallback);
  if (!model.is_ok()) return model.status().with_context(what + ": graph");

  auto pkg = PackageAccess::create();
  PackageAccess::fill(*pkg, std::move(*model), fm->optimization_level(), reader.take_prepacked(),
                      data, tag > 0 ? layout.chunks_end : size, file_mapping && tag == 0);
  PackageInfo& info = PackageAccess::info(*pkg);
  info.format_major = h.format_major;
  info.format_minor = h.format_minor;
  if (m->name()) info.name = m->name()->str();
  if (m->version()) info.version = m->version()->str();
  info.target = head.target;
  if (m->created_by()) info.created_by = m->created_by()->str();
  if (m->meta_json()) info.meta_json = m->meta_json()->str();
  if (m->labels())
    for (const auto* l : *m->labels()) info.labels.push_back(l ? l->str() : "");
  if (m->inputs())
    for (const auto* io : *m->inputs()) info.inputs.push_back(io_info(io));
  if (m->outputs())
    for (const auto* io : *m->outputs()) info.outputs.push_back(io_info(io));
  if (m->arena_bytes() >= 0) info.arena_bytes = m->arena_bytes();
  info.parameter_bytes = m->parameter_bytes();
  info.file_bytes = static_cast<int64_t>(size);
  for (uint32_t i = 0; i < chunks->size(); ++i) {
    const fb::Chunk* c = chunks->Get(i);
    info.chunks.push_back({c->kind() == fb::ChunkKind_Graph ? "graph" : "weights", c->offset(),
                           c->size(), to_hex(c->sha256()->data(), 32), i >= head.fallback_chunk,
                           i >= head.packed_chunk && i < head.fallback_chunk});
  }
  info.targets = head.targets;
  info.selected_target = head.selected;
  info.signer_key_id = head.signer_id;
  info.signer_trusted = head.trusted;
  info.prepacked_nodes = static_cast<int64_t>(pkg->prepacked().size());
  info.encrypted = tag > 0;
  info.encryption_key_id = encryption_key_id;
  return pkg;
}

}  // namespace internal

Result<std::unique_ptr<Package>> PackageAccess::open(std::shared_ptr<const void> owner, size_t size,
                                                     const std::string& what,
                                                     const VerifyOptions& options,
                                                     bool file_mapping) {
  const auto* base = static_cast<const uint8_t*>(owner.get());
  // 1. The fixed header and the exact layout.
  internal::Layout layout;
  BRINK_RETURN_IF_ERROR(internal::check_header(base, size, what, &layout));
  const FixedHeader& h = layout.header;
  // 2.-4. Seal, signature and trust, the manifest, the target, the chunks' places.
  BRINK_ASSIGN_OR_RETURN(const internal::Head head,
                         internal::check_head(layout, base, base + h.manifest_offset,
                                              base + h.trailer_offset, what, options));
  const fb::Manifest* m = head.manifest;
  const auto* chunks = m->chunks();
  // Format 2: the bytes between the signature and the first chunk are zero.
  for (uint64_t p = layout.head_end; h.format_major >= 2 && p < layout.chunks_begin; ++p)
    if (base[p] != 0) return bad(what, "padding byte " + std::to_string(p) + " is not zero");
  // Fallback chunks come last: a load of the primary target never reads them, nor does a
  // fallback target's load read the chunks holding only packed weights. Those are read in
  // only to be hashed (unless all_chunks is off), then their pages are dropped.
  auto checked = [&](uint32_t i) { return options.all_chunks || head.uses_chunk(i); };
  if (file_mapping && options.resident) {
    // The head (already read) and each run of chunks this load uses, in one go each.
    uint64_t begin = 0;
    for (uint32_t i = 0; i <= chunks->size(); ++i) {
      if (i < chunks->size() && head.uses_chunk(i)) continue;
      const uint64_t end = i < chunks->size() ? chunks->Get(i)->offset() : size;
      if (end > begin) populate(base + begin, end - begin);
      if (i < chunks->size()) begin = align_up(chunks->Get(i)->offset() + chunks->Get(i)->size());
    }
  }
  for (uint32_t i = 0; i < chunks->size(); ++i)
    if (checked(i)) BRINK_RETURN_IF_ERROR(internal::check_chunk_padding(base, m, i, what));

  // 5. Every chunk's hash.
  const bool drop_pages = file_mapping && !options.resident;
  std::atomic<int64_t> failed{-1};
  auto check_chunk = [&](int64_t i) {
    if (!checked(static_cast<uint32_t>(i))) return;
    const fb::Chunk* c = chunks->Get(static_cast<uint32_t>(i));
    const bool ok = internal::chunk_hash_matches(base + c->offset(), m, static_cast<uint32_t>(i));
    if (drop_pages || (file_mapping && !head.uses_chunk(static_cast<uint32_t>(i))))
      drop_range(base + c->offset(), c->size());
    if (!ok) {
      int64_t none = -1;
      failed.compare_exchange_strong(none, i);
    }
  };
  const int threads =
      options.num_threads > 0 ? options.num_threads : ThreadPool::default_num_threads();
  // Threads pay off from a few MiB (SHA-256 runs at ~1.7 GB/s per core).
  if (threads > 1 && chunks->size() > 1 &&
      layout.chunks_end - layout.chunks_begin > (size_t{8} << 20)) {
    ThreadPool pool(std::min<int>(threads, static_cast<int>(chunks->size())));
    pool.parallel_for(chunks->size(), check_chunk);
  } else {
    for (uint32_t i = 0; i < chunks->size(); ++i) check_chunk(i);
  }
  if (failed.load() >= 0)
    return internal::chunk_hash_error(m, static_cast<uint32_t>(failed.load()), what);

  // 6.-7. Decryption, the graph.
  return internal::decode_package(layout, head, base, std::move(owner), what, options,
                                  file_mapping);
}

Result<std::unique_ptr<Session>> load_package_session(const std::string& path,
                                                      const SessionOptions& options,
                                                      const VerifyOptions& verify) {
  // Hashing uses every core whatever the inference threads: it is load-time work.
  VerifyOptions v = verify;
  const int64_t budget = options.max_memory_bytes;
  if (budget > 0) v.resident = false;  // never hold the whole file while checking it
  BRINK_ASSIGN_OR_RETURN(auto pkg, open_package(path, v));
  SessionOptions o = options;
  o.optimization_level = 0;  // the package holds the graph the passes produced
  CompileExtras extras;
  extras.isa = target_isa(pkg->info().selected_target.empty() ? pkg->info().target
                                                              : pkg->info().selected_target);
  extras.prepacked = pkg->prepacked();  // none for a fallback target
  auto compiled = CompiledModel::compile(pkg->model(), o, /*keep_problems=*/false, &extras);
  if (!compiled.is_ok()) return compiled.status().with_context(path);
  if (budget > 0) {
    // Within budget as a whole: nothing to do. Otherwise weights are paged layer by layer,
    // which needs the largest layer's weights and the arena to fit.
    const int64_t arena = (*compiled)->arena_bytes().value_or(0);
    int64_t weights = 0;
    for (const ChunkInfo& c : pkg->info().chunks)
      if (c.kind == "weights" && (!c.fallback || pkg->info().uses_fallback()))
        weights += static_cast<int64_t>(c.size);
    if (weights + arena > budget) {
      if (pkg->info().encrypted)
        return Status(StatusCode::kInvalidArgument,
                      path + ": an encrypted package is decrypted into memory and cannot be " +
                          "paged: it needs " + std::to_string((weights + arena) >> 20) +
                          " MiB, more than --max-memory");
      (*compiled)->set_weight_paging(pkg->weight_ranges());
      const int64_t layer = (*compiled)->largest_step_weight_bytes();
      if (layer + arena > budget) {
        auto mib = [](int64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20); };
        return Status(StatusCode::kInvalidArgument,
                      path + ": --max-memory " + mib(budget) + " MiB is too small: its largest " +
                          "layer's weights (" + mib(layer) + " MiB) and the arena (" + mib(arena) +
                          " MiB) need at least " + mib(layer + arena) + " MiB");
      }
    }
    pkg->release_weight_pages();  // what compiling read (kernels that copy their weights)
  }
  return Session::from_compiled(std::move(*compiled));
}

}  // namespace brink::package
