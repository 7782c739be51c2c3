// StreamLoader: see stream_loader.h.
#include "package/stream_loader.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "package/package_internal.h"
#include "runtime/compiled_model.h"

namespace brink::package {

ByteSource fd_source(int fd) {
  return [fd](uint8_t* dst, size_t max) -> Result<size_t> {
    for (;;) {
      const ssize_t n = ::read(fd, dst, max);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return Status(StatusCode::kIoError, "no data within the receive timeout");
      if (errno != EINTR)
        return Status(StatusCode::kIoError, std::string("read failed: ") + std::strerror(errno));
    }
  };
}

ByteSource memory_source(std::shared_ptr<const std::vector<uint8_t>> bytes, size_t step) {
  auto at = std::make_shared<size_t>(0);
  return [bytes = std::move(bytes), at, step](uint8_t* dst, size_t max) -> Result<size_t> {
    const size_t n = std::min({max, step, bytes->size() - *at});
    if (n > 0) std::memcpy(dst, bytes->data() + *at, n);
    *at += n;
    return n;
  };
}

struct StreamLoader::State {
  ByteSource source;
  std::string what;
  VerifyOptions options;
  ProgressFn progress;
  bool check_end = true;

  std::shared_ptr<void> buffer;  // the whole package, filled as it arrives
  uint64_t size = 0;
  internal::Layout layout;
  internal::Head head;
  std::unique_ptr<Package> package;
  bool progressive = false;
  int chunks = 0;
  int compile_chunk = 0;
  std::vector<int> node_need;                 // by main-graph node: the last chunk it reads
  std::vector<std::vector<int>> ready_after;  // by chunk: nodes runnable once it is verified
  uint64_t received = 0;
  int64_t runnable = 0;

  std::mutex mutex;
  std::condition_variable changed;
  std::atomic<int> verified{0};  // chunks 0..verified-1 have passed their hash
  Status error;                  // what ended the stream early (under `mutex`)
  std::thread receiver;
  bool started = false;
  std::atomic<bool> first_step_seen{false}, first_weighted_step_seen{false};
  std::optional<Clock::time_point> first_step_at, first_weighted_step_at, all_verified_at;

  uint8_t* base() { return static_cast<uint8_t*>(buffer.get()); }

  Status read_exact(uint8_t* dst, uint64_t n) {
    while (n > 0) {
      auto got = source(dst, static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)));
      if (!got.is_ok()) return got.status().with_context(what);
      if (*got == 0)
        return Status(StatusCode::kIoError, what + ": the stream ended after " +
                                                std::to_string(received) + " of " +
                                                std::to_string(size) + " bytes");
      dst += *got;
      n -= *got;
      received += *got;
    }
    return Status::ok();
  }

  // Reads chunk i and its padding into place and checks them.
  Status receive_chunk(uint32_t i) {
    const fb::Chunk* c = head.manifest->chunks()->Get(i);
    const uint64_t end = (c->offset() + c->size() + kAlignment - 1) / kAlignment * kAlignment;
    BRINK_RETURN_IF_ERROR(read_exact(base() + c->offset(), end - c->offset()));
    BRINK_RETURN_IF_ERROR(internal::check_chunk_padding(base(), head.manifest, i, what));
    if (!internal::chunk_hash_matches(base() + c->offset(), head.manifest, i))
      return internal::chunk_hash_error(head.manifest, i, what);
    return Status::ok();
  }

  void report(int chunk) {
    if (chunk >= 0 && static_cast<size_t>(chunk) < ready_after.size())
      runnable += static_cast<int64_t>(ready_after[static_cast<size_t>(chunk)].size());
    if (!progress) return;
    StreamProgress p;
    p.bytes_received = received;
    p.bytes_total = size;
    p.chunks_verified = verified.load();
    p.chunks_total = chunks;
    p.chunk = chunk;
    if (chunk >= 0 && static_cast<size_t>(chunk) < ready_after.size())
      p.nodes_runnable = ready_after[static_cast<size_t>(chunk)];
    p.nodes_runnable_total = runnable;
    p.nodes_total = static_cast<int64_t>(node_need.size());
    if (package) p.graph = &package->model().graph;
    p.done = p.chunks_verified == chunks;
    progress(p);
  }

  void publish(int chunk) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      verified.store(chunk + 1, std::memory_order_release);
      if (chunk + 1 == chunks) all_verified_at = Clock::now();
    }
    changed.notify_all();
    report(chunk);
  }

  void fail(Status s) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::move(s);
    }
    changed.notify_all();
  }

  // The receiving thread: chunks 1..n in order, then the end of the stream.
  void receive_rest() {
    for (int i = verified.load(); i < chunks; ++i) {
      if (Status s = receive_chunk(static_cast<uint32_t>(i)); !s.is_ok()) return fail(s);
      publish(i);
    }
    if (!check_end) return;
    uint8_t extra = 0;
    auto got = source(&extra, 1);
    if (!got.is_ok()) return fail(got.status().with_context(what));
    if (*got != 0)
      return fail(Status(
          StatusCode::kInvalidModel,
          what + ": the stream goes on after the package's " + std::to_string(size) + " bytes"));
  }

  Status wait_for(int chunk) {
    if (chunk < verified.load(std::memory_order_acquire)) return Status::ok();
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return chunk < verified.load() || !error.is_ok(); });
    if (chunk < verified.load()) return Status::ok();
    return error;
  }

  void start() {
    if (started || !progressive) return;
    started = true;
    receiver = std::thread([this] { receive_rest(); });
  }

  // Which chunk a byte of the package is in.
  int chunk_of(const void* p) const {
    const uint64_t at = static_cast<uint64_t>(static_cast<const uint8_t*>(p) -
                                              static_cast<const uint8_t*>(buffer.get()));
    const auto& cs = package->info().chunks;
    int i = 0;
    while (i + 1 < static_cast<int>(cs.size()) && cs[static_cast<size_t>(i + 1)].offset <= at) ++i;
    return i;
  }

  bool in_buffer(const void* p, size_t n) const {
    const auto* b = static_cast<const uint8_t*>(p);
    const auto* base = static_cast<const uint8_t*>(buffer.get());
    return b >= base && n <= size && static_cast<uint64_t>(b - base) <= size - n;
  }

  // The last chunk holding a constant of `g` (subgraphs and attributes included).
  void constants_chunk(const ir::Graph& g, int* last) const {
    auto see = [&](const Tensor& t) {
      if (t.defined() && t.nbytes() > 0 && in_buffer(t.raw_data(), t.nbytes()))
        *last = std::max(*last, chunk_of(t.raw_data()));
    };
    for (const ir::Value& v : g.values)
      if (v.constant) see(*v.constant);
    for (const ir::Node& n : g.nodes)
      for (const ir::Attribute& a : n.attributes) {
        see(a.t);
        for (const Tensor& t : a.tensors) see(t);
        if (a.g) constants_chunk(*a.g, last);
        for (const auto& sg : a.graphs) constants_chunk(*sg, last);
      }
  }

  // What each node waits for, and when each becomes runnable.
  void plan_nodes() {
    compile_chunk = 0;
    constants_chunk(package->model().graph, &compile_chunk);
    node_need.assign(package->model().graph.nodes.size(), -1);
    ready_after.assign(static_cast<size_t>(chunks), {});
    for (const auto& [node, ranges] : package->weight_ranges()) {
      int need = -1;
      for (const auto& [p, n] : ranges)
        if (n > 0 && in_buffer(p, n)) need = std::max(need, chunk_of(p));
      node_need[static_cast<size_t>(node)] = need;
    }
    for (size_t ni = 0; ni < node_need.size(); ++ni)
      ready_after[static_cast<size_t>(std::max(node_need[ni], compile_chunk))].push_back(
          static_cast<int>(ni));
  }
};

StreamLoader::StreamLoader() : state_(std::make_shared<State>()) {}

StreamLoader::~StreamLoader() {
  if (state_->receiver.joinable()) state_->receiver.join();
}

const PackageInfo& StreamLoader::info() const {
  return state_->package->info();
}
const Package& StreamLoader::package() const {
  return *state_->package;
}
bool StreamLoader::progressive() const {
  return state_->progressive;
}
int StreamLoader::compile_chunk() const {
  return state_->compile_chunk;
}

Result<std::unique_ptr<StreamLoader>> StreamLoader::open(ByteSource source, const std::string& what,
                                                         const VerifyOptions& options,
                                                         ProgressFn progress, bool check_end) {
  auto loader = std::unique_ptr<StreamLoader>(new StreamLoader());
  State& s = *loader->state_;
  s.source = std::move(source);
  s.what = what;
  s.options = options;
  s.progress = std::move(progress);
  s.check_end = check_end;

  // The header says how big the package is and where its parts are.
  uint8_t header[kHeaderBytes];
  s.size = kHeaderBytes;
  BRINK_RETURN_IF_ERROR(s.read_exact(header, kHeaderBytes));
  FixedHeader h;
  std::memcpy(&h, header, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    return Status(StatusCode::kInvalidModel, what + ": not a Brink package (no BRINKPKG header)");
  if (h.file_size > (uint64_t{1} << 40))
    return Status(StatusCode::kInvalidModel, what + ": the header gives an implausible size (" +
                                                 std::to_string(h.file_size) + " bytes)");
  s.size = std::max<uint64_t>(h.file_size, kHeaderBytes);
  BRINK_RETURN_IF_ERROR(internal::check_header(header, h.file_size, what, &s.layout));
  // The head (format 2: manifest, seal, signature, padding) is checked before the package's
  // buffer is allocated, so a forged size costs nothing until the seal holds.
  const bool v2 = h.format_major >= 2;
  std::vector<uint8_t> head;
  if (v2) {
    if (s.layout.chunks_begin > (uint64_t{1} << 30))
      return Status(StatusCode::kInvalidModel, what + ": the manifest is implausibly large");
    head.resize(static_cast<size_t>(s.layout.chunks_begin));
    std::memcpy(head.data(), header, kHeaderBytes);
    BRINK_RETURN_IF_ERROR(s.read_exact(head.data() + kHeaderBytes, head.size() - kHeaderBytes));
    BRINK_ASSIGN_OR_RETURN(auto checked,
                           internal::check_head(s.layout, head.data(), head.data() + kHeaderBytes,
                                                head.data() + h.trailer_offset, what, options));
    (void)checked;  // its manifest points into `head`; checked again in the buffer below
  }
  void* p = std::aligned_alloc(kAlignment, (s.size + kAlignment - 1) / kAlignment * kAlignment);
  if (p == nullptr)
    return Status(StatusCode::kIoError,
                  what + ": cannot allocate " + std::to_string(s.size) + " bytes");
  s.buffer = std::shared_ptr<void>(p, std::free);
  std::memcpy(s.base(), header, kHeaderBytes);

  if (!v2 || flatbuffers::GetRoot<fb::Manifest>(head.data() + kHeaderBytes)->encrypted()) {
    // Format 1 (manifest last) or encrypted: the whole package, then the usual checks.
    if (v2) std::memcpy(s.base(), head.data(), head.size());
    const uint64_t have = v2 ? head.size() : kHeaderBytes;
    BRINK_RETURN_IF_ERROR(s.read_exact(s.base() + have, s.size - have));
    BRINK_ASSIGN_OR_RETURN(
        s.package, open_package_memory(s.buffer, static_cast<size_t>(s.size), what, options));
    s.chunks = static_cast<int>(s.package->info().chunks.size());
    s.plan_nodes();
    std::vector<int> all(s.node_need.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    s.ready_after.assign(static_cast<size_t>(s.chunks), {});
    s.ready_after.back() = std::move(all);
    s.verified.store(s.chunks);
    s.all_verified_at = Clock::now();
    s.receive_rest();  // only checks the stream's end
    if (!s.error.is_ok()) return s.error;
    s.report(s.chunks - 1);
    return loader;
  }

  // Format 2: the head again, in place (it was verified above; the manifest the chunks are
  // checked against is this copy, which is byte-identical).
  std::memcpy(s.base(), head.data(), head.size());
  BRINK_ASSIGN_OR_RETURN(s.head, internal::check_head(s.layout, s.base(), s.base() + kHeaderBytes,
                                                      s.base() + h.trailer_offset, what, options));
  for (uint64_t at = s.layout.head_end; at < s.layout.chunks_begin; ++at)
    if (s.base()[at] != 0)
      return Status(StatusCode::kInvalidModel,
                    what + ": padding byte " + std::to_string(at) + " is not zero");
  s.chunks = static_cast<int>(s.head.manifest->chunks()->size());
  s.progressive = true;
  s.report(-1);

  // The graph chunk, then the graph (its constants view the buffer, filled later).
  BRINK_RETURN_IF_ERROR(s.receive_chunk(0));
  BRINK_ASSIGN_OR_RETURN(
      s.package, internal::decode_package(s.layout, s.head, s.base(), s.buffer, what, options,
                                          /*file_mapping=*/false));
  s.plan_nodes();
  s.verified.store(1);
  s.report(0);
  return loader;
}

std::optional<StreamLoader::Clock::time_point> StreamLoader::first_step_time() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->first_step_at;
}
std::optional<StreamLoader::Clock::time_point> StreamLoader::first_weighted_step_time() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->first_weighted_step_at;
}
std::optional<StreamLoader::Clock::time_point> StreamLoader::all_verified_time() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->all_verified_at;
}

Status StreamLoader::wait_for_chunk(int chunk) {
  state_->start();
  return state_->wait_for(chunk);
}

Status StreamLoader::finish() {
  state_->start();
  if (state_->receiver.joinable()) state_->receiver.join();
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->error;
}

Result<std::unique_ptr<Session>> StreamLoader::session(const SessionOptions& options) {
  State& s = *state_;
  s.start();
  BRINK_RETURN_IF_ERROR(s.wait_for(s.compile_chunk));
  SessionOptions o = options;
  o.optimization_level = 0;  // the package holds the graph the passes produced
  o.max_memory_bytes = 0;    // a streamed package is held in memory
  CompileExtras extras;
  const PackageInfo& info = s.package->info();
  extras.isa = target_isa(info.selected_target.empty() ? info.target : info.selected_target);
  extras.prepacked = s.package->prepacked();
  auto compiled = CompiledModel::compile(s.package->model(), o, /*keep_problems=*/false, &extras);
  if (!compiled.is_ok()) return compiled.status().with_context(s.what);
  if (s.progressive) {
    std::shared_ptr<State> state = state_;
    (*compiled)->set_step_gate([state](int node) -> Status {
      const int need = node >= 0 && static_cast<size_t>(node) < state->node_need.size()
                           ? state->node_need[static_cast<size_t>(node)]
                           : state->chunks - 1;
      Status ready = state->wait_for(need);
      if (!state->first_step_seen.exchange(true)) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->first_step_at = Clock::now();
      }
      if (need > state->compile_chunk && !state->first_weighted_step_seen.exchange(true)) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->first_weighted_step_at = Clock::now();
      }
      return ready;
    });
  }
  return Session::from_compiled(std::move(*compiled));
}

// ---- Streaming from a command line --------------------------------------------------------

bool is_stream_url(const std::string& model) {
  return model.rfind("tcp://", 0) == 0;
}

Result<int> open_stream(const std::string& model) {
  if (!is_stream_url(model)) {
    const int fd = ::open(model.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return Status(StatusCode::kNotFound, model + ": cannot open: " + std::strerror(errno));
    return fd;
  }
  const std::string hostport = model.substr(std::strlen("tcp://"));
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hostport.size())
    return Status(StatusCode::kInvalidArgument, model + ": expected tcp://HOST:PORT");
  std::string host = hostport.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port = hostport.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); e != 0)
    return Status(StatusCode::kNotFound, model + ": cannot resolve: " + ::gai_strerror(e));
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return Status(StatusCode::kIoError, model + ": cannot connect: " + why);
  timeval timeout{};
  timeout.tv_sec = 30;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

std::string progress_line(const StreamProgress& p, double ms) {
  char buf[512];
  if (p.chunk < 0) {
    std::snprintf(buf, sizeof buf,
                  "progress: %.1f ms: header, manifest and signature verified (%llu of %llu bytes)",
                  ms, static_cast<unsigned long long>(p.bytes_received),
                  static_cast<unsigned long long>(p.bytes_total));
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "progress: %.1f ms: chunk %d verified (%d of %d chunks, %llu of %llu bytes), "
                "%lld of %lld nodes runnable",
                ms, p.chunk, p.chunks_verified, p.chunks_total,
                static_cast<unsigned long long>(p.bytes_received),
                static_cast<unsigned long long>(p.bytes_total),
                static_cast<long long>(p.nodes_runnable_total),
                static_cast<long long>(p.nodes_total));
  std::string line = buf;
  // " (+N: FIRST .. LAST)": the nodes this chunk made runnable, by name.
  if (!p.nodes_runnable.empty() && p.graph != nullptr) {
    auto name = [&](int i) {
      const ir::Node& n = p.graph->nodes[static_cast<size_t>(i)];
      return n.name.empty() ? n.op_type : n.name;
    };
    line += " (+" + std::to_string(p.nodes_runnable.size()) + ": " + name(p.nodes_runnable.front());
    if (p.nodes_runnable.size() > 1) line += " .. " + name(p.nodes_runnable.back());
    line += ")";
  }
  return line;
}

StreamedPackage::~StreamedPackage() {
  loader.reset();  // joins the receiving thread (the stream has ended or failed)
  if (fd >= 0) ::close(fd);
}

double StreamedPackage::ms_to(std::optional<StreamLoader::Clock::time_point> t) const {
  return t ? std::chrono::duration<double, std::milli>(*t - start).count() : -1.0;
}

std::string StreamedPackage::summary(double result_ms) const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "stream: first step at %.1f ms, first layer started at %.1f ms, all %zu chunks "
                "verified at %.1f ms, result at %.1f ms%s",
                ms_to(loader->first_step_time()), ms_to(loader->first_weighted_step_time()),
                loader->info().chunks.size(), ms_to(loader->all_verified_time()), result_ms,
                loader->progressive() ? "" : " (read whole: format 1 or encrypted)");
  return buf;
}

Result<std::unique_ptr<Session>> load_streamed(const std::string& model,
                                               const VerifyOptions& verify,
                                               const SessionOptions& options, bool progress,
                                               StreamedPackage* out) {
  out->start = StreamLoader::Clock::now();
  BRINK_ASSIGN_OR_RETURN(out->fd, open_stream(model));
  ProgressFn report;
  if (progress) {
    const auto start = out->start;
    report = [start](const StreamProgress& p) {
      const double ms =
          std::chrono::duration<double, std::milli>(StreamLoader::Clock::now() - start).count();
      std::fprintf(stderr, "%s\n", progress_line(p, ms).c_str());
      std::fflush(stderr);
    };
  }
  BRINK_ASSIGN_OR_RETURN(out->loader,
                         StreamLoader::open(fd_source(out->fd), model, verify, std::move(report),
                                            /*check_end=*/!is_stream_url(model)));
  return out->loader->session(options);
}

}  // namespace brink::package
