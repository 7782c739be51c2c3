// Progressive loading: a .brink package read front to back from a stream (a file, a socket,
// memory), verified as it arrives, and run before its last chunk is in.
//
// Format 2 puts everything a reader must check before trusting a byte first (docs/FORMAT.md):
//
//   header | manifest | seal | signature | graph chunk | load-time constants | packed weights
//
// so StreamLoader::open reads the header, manifest, seal and signature and checks them
// (seal, signature, trusted key and its expiry, the manifest, the target, the chunks' places)
// before it accepts a single chunk byte; then it reads the graph chunk, checks its SHA-256
// and decodes the graph, whose constants point into one buffer the size of the package where
// the later chunks will land.
//
// session() starts a thread receiving the remaining chunks in order; each chunk's SHA-256 is
// checked as it completes, and only then is it published as verified (a mutex and a
// condition variable, so the bytes a reader sees after the wait are the ones hashed). The
// session is compiled as soon as the chunks compiling reads are verified: the writer stores
// every constant before the kernels' packed weights, and adopting packed weights reads none
// of their bytes. Its executor then calls a gate before each step (CompiledModel::
// set_step_gate) that waits until the chunks holding that node's weights are verified, so
// the first layers run while the later chunks still arrive, and no kernel ever reads a byte
// that has not passed its hash. A chunk failing its hash ends the stream with an error naming
// the chunk; steps waiting for it (and any later run needing it) fail with that error.
//
// A progress callback reports each verification: bytes received of the total, chunks
// verified, and the nodes that became runnable. Format-1 packages (manifest at the end) and
// encrypted packages are read whole first, then opened as open_package_memory does: the same
// checks, no overlap.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brink/session.h"
#include "brink/status.h"
#include "package/package.h"

namespace brink::package {

// Copies up to `max` bytes of the stream into `dst`; returns how many, 0 at the end of the
// stream, or an error.
using ByteSource = std::function<Result<size_t>(uint8_t* dst, size_t max)>;
// read(2) from a file descriptor (a file or a connected socket); the caller owns `fd`. A
// socket with a receive timeout (SO_RCVTIMEO) that expires gives an error saying so.
ByteSource fd_source(int fd);
// Bytes in memory, handed out at most `step` at a time (tests).
ByteSource memory_source(std::shared_ptr<const std::vector<uint8_t>> bytes, size_t step = 65536);

struct StreamProgress {
  uint64_t bytes_received = 0, bytes_total = 0;
  int chunks_verified = 0, chunks_total = 0;
  int chunk = -1;  // the chunk just verified; -1: the header, manifest and signature
  // Main-graph nodes that became runnable with this event (all the bytes they and the
  // compile read are verified), and how many are runnable so far of how many.
  std::vector<int> nodes_runnable;
  int64_t nodes_runnable_total = 0, nodes_total = 0;
  const ir::Graph* graph = nullptr;  // names the nodes; null until the graph chunk is decoded
  bool done = false;                 // every chunk verified
};
using ProgressFn = std::function<void(const StreamProgress&)>;

class StreamLoader {
 public:
  // Reads and verifies the head and the graph chunk (see the top of this file). `what` names
  // the stream in errors. `progress` is called from this thread and the receiving thread,
  // never from two at once.
  // `check_end`: the stream must end where the package does (a file); false for a socket
  // whose sender may keep it open: nothing after the package is read.
  static Result<std::unique_ptr<StreamLoader>> open(ByteSource source, const std::string& what,
                                                    const VerifyOptions& options = {},
                                                    ProgressFn progress = {},
                                                    bool check_end = true);
  // Waits for the receiving thread: give the source an end (close the socket) first.
  ~StreamLoader();
  StreamLoader(const StreamLoader&) = delete;
  StreamLoader& operator=(const StreamLoader&) = delete;

  const PackageInfo& info() const;
  const Package& package() const;
  // False when the package was read whole before open returned (format 1, encrypted).
  bool progressive() const;
  // The last chunk compiling the session reads (it waits for chunks 0..this).
  int compile_chunk() const;

  // Compiles a session once the chunks compiling reads are verified, and returns while the
  // later chunks still arrive; its steps wait for their chunks. Call at most once.
  Result<std::unique_ptr<Session>> session(const SessionOptions& options);
  // Receives the rest of the stream (if session() has not started to) and waits for the
  // end: Ok when every chunk verified and the stream ended where the package does.
  Status finish();
  // Blocks until chunks 0..`chunk` are verified; the stream's error if it failed before.
  Status wait_for_chunk(int chunk);

  // When a session's first step was let through its gate, the first step whose weights come
  // after the chunks compiling needed (with pre-packed weights: the first convolution or
  // MatMul, the first "layer"; never for a --no-prepack package), and when the last chunk was
  // verified (for measurements; read them after the run and finish()).
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> first_step_time() const;
  std::optional<Clock::time_point> first_weighted_step_time() const;
  std::optional<Clock::time_point> all_verified_time() const;

  struct State;  // shared with the receiving thread and the sessions' step gates

 private:
  StreamLoader();
  std::shared_ptr<State> state_;
};

// ---- Streaming from a command line (`brink run --stream`, `brink-run --stream`) ----------

// True for a model named tcp://HOST:PORT (read from a connection, always as a stream).
bool is_stream_url(const std::string& model);
// Opens `model` for reading front to back: a file, or a TCP connection for tcp://HOST:PORT
// (IPv6 hosts in brackets) with a 30 s receive timeout, so a stalled sender fails the load
// instead of hanging it. The caller owns the descriptor.
Result<int> open_stream(const std::string& model);
// The line `--progress` prints for one event, `ms` after the start ("progress: ...", no
// newline): what was verified, bytes and chunks so far, and the nodes it made runnable.
std::string progress_line(const StreamProgress& p, double ms);

// A package loaded from a stream: the descriptor and the loader (still receiving while the
// session runs) live as long as this.
struct StreamedPackage {
  int fd = -1;
  std::unique_ptr<StreamLoader> loader;
  StreamLoader::Clock::time_point start;
  StreamedPackage() = default;
  StreamedPackage(const StreamedPackage&) = delete;
  StreamedPackage& operator=(const StreamedPackage&) = delete;
  ~StreamedPackage();  // joins the receiving thread, closes the descriptor
  // Milliseconds from the start to `t`; -1 when it did not happen.
  double ms_to(std::optional<StreamLoader::Clock::time_point> t) const;
  // After a run (and loader->finish()): "stream: first step at ... ms, first layer started
  // at ... ms, all N chunks verified at ... ms, result at `result_ms` ms".
  std::string summary(double result_ms) const;
};

// Opens `model` (a file or tcp://HOST:PORT) as a stream and compiles its session as soon as
// the chunks compiling reads are verified (StreamLoader::session); with `progress`, prints
// progress_line() to stderr per event. A file must end where the package does; a server may
// keep its connection open after the package.
Result<std::unique_ptr<Session>> load_streamed(const std::string& model,
                                               const VerifyOptions& verify,
                                               const SessionOptions& options, bool progress,
                                               StreamedPackage* out);

}  // namespace brink::package
