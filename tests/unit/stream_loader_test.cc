// Progressive loading (src/package/stream_loader.h): a package streamed in runs like the file,
// its first layers run while later chunks are still held back, nothing is accepted before the
// head verifies, a damaged chunk is refused by name, and format-1 packages still load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "brink/session.h"
#include "onnx/onnx_io.h"
#include "package/delta.h"
#include "package/package.h"
#include "package/stream_loader.h"
#include "package_test_util.h"

namespace brink::package {
namespace {

using test::kDigits;

std::string temp_path(const std::string& name) {
  return test::temp_path("stream_loader_test", name);
}

std::shared_ptr<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::make_shared<std::vector<uint8_t>>(std::istreambuf_iterator<char>(in),
                                                std::istreambuf_iterator<char>());
}

// The digits CNN packed with small chunks (so it has many), signed.
struct Packed {
  std::string path;
  KeyPair keys = generate_keypair();
  std::shared_ptr<std::vector<uint8_t>> bytes;
  explicit Packed(const std::string& name, uint16_t format = kFormatMajor, bool prepack = true,
                  std::optional<EncryptionKey> encrypt = std::nullopt) {
    path = temp_path(name);
    PackOptions options;
    options.chunk_size = 4096;
    options.signing_key = keys.secret;
    options.format_major = format;
    options.prepack = prepack;
    options.encryption_key = encrypt;
    auto model = onnx_io::load_onnx_file(kDigits);
    EXPECT_TRUE(model.is_ok());
    auto s = write_package(std::move(*model), options, path);
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    bytes = read_file(path);
  }
  ~Packed() { std::filesystem::remove(path); }
  VerifyOptions trusting() const {
    VerifyOptions v;
    v.trusted_key = keys.public_key;
    return v;
  }
};

Tensor digits_input() {
  std::vector<float> x(3 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 16.0f;
  return Tensor::from_vector<float>({3, 1, 8, 8}, x);
}

Result<std::vector<float>> run(Session& s) {
  BRINK_ASSIGN_OR_RETURN(auto out, s.run({{"image", digits_input()}}));
  const Tensor& y = out[0];
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

std::vector<float> run_file(const std::string& path) {
  auto s = Session::load(path);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  auto y = run(**s);
  EXPECT_TRUE(y.is_ok());
  return *y;
}

// Hands out a package's bytes up to a limit the test raises; counts what was taken.
class HeldBack {
 public:
  explicit HeldBack(std::shared_ptr<std::vector<uint8_t>> bytes) : bytes_(std::move(bytes)) {}
  void allow(size_t n) {
    {
      std::lock_guard<std::mutex> lock(m_);
      limit_ = std::min(n, bytes_->size());
    }
    cv_.notify_all();
  }
  size_t taken() {
    std::lock_guard<std::mutex> lock(m_);
    return at_;
  }
  ByteSource source() {
    return [this](uint8_t* dst, size_t max) -> Result<size_t> {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return at_ < limit_ || at_ == bytes_->size(); });
      const size_t n = std::min(max, limit_ - at_);
      std::memcpy(dst, bytes_->data() + at_, n);
      at_ += n;
      return n;
    };
  }

 private:
  std::shared_ptr<std::vector<uint8_t>> bytes_;
  std::mutex m_;
  std::condition_variable cv_;
  size_t limit_ = 0, at_ = 0;
};

TEST(StreamLoader, StreamedRunsLikeTheFileAndReportsProgress) {
  Packed p("streamed.brink");
  std::vector<StreamProgress> events;
  auto loader = StreamLoader::open(memory_source(p.bytes, 100), "stream", p.trusting(),
                                   [&](const StreamProgress& e) { events.push_back(e); });
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();
  EXPECT_TRUE((*loader)->progressive());
  EXPECT_EQ((*loader)->info().format_major, kFormatMajor);
  EXPECT_TRUE((*loader)->info().signer_trusted);
  auto session = (*loader)->session({});
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto y = run(**session);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  ASSERT_TRUE((*loader)->finish().is_ok());
  EXPECT_EQ(*y, run_file(p.path));
  EXPECT_EQ(*y, run_file(kDigits));

  const int chunks = static_cast<int>((*loader)->info().chunks.size());
  ASSERT_GT(chunks, 3);
  ASSERT_EQ(events.size(), static_cast<size_t>(chunks) + 1);
  EXPECT_EQ(events[0].chunk, -1);  // the head, before any chunk
  EXPECT_EQ(events[0].chunks_verified, 0);
  EXPECT_LT(events[0].bytes_received, p.bytes->size() / 2);
  int64_t runnable = 0;
  for (int i = 0; i < chunks; ++i) {
    const StreamProgress& e = events[static_cast<size_t>(i) + 1];
    EXPECT_EQ(e.chunk, i);
    EXPECT_EQ(e.chunks_verified, i + 1);
    EXPECT_EQ(e.chunks_total, chunks);
    EXPECT_EQ(e.bytes_total, p.bytes->size());
    EXPECT_GE(e.nodes_runnable_total, runnable);
    runnable = e.nodes_runnable_total;
    EXPECT_EQ(e.done, i + 1 == chunks);
  }
  EXPECT_EQ(events.back().bytes_received, p.bytes->size());
  EXPECT_EQ(events.back().nodes_runnable_total, events.back().nodes_total);
  EXPECT_GT(events.back().nodes_total, 0);
}

// The session compiles once the load-time constants are in, and the first layers run while
// the last chunk is still held back; the run completes only when it arrives.
TEST(StreamLoader, FirstLayersRunBeforeTheLastChunkArrives) {
  Packed p("overlap.brink");
  HeldBack held(p.bytes);
  auto info = open_package(p.path);
  ASSERT_TRUE(info.is_ok());
  const auto& chunks = (*info)->info().chunks;
  const ChunkInfo& last = chunks.back();
  held.allow(last.offset);  // everything but the last chunk

  auto loader = StreamLoader::open(held.source(), "stream", p.trusting());
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();
  ASSERT_LT((*loader)->compile_chunk(), static_cast<int>(chunks.size()) - 1)
      << "the writer should store the load-time constants before the packed weights";
  auto session = (*loader)->session({});
  ASSERT_TRUE(session.is_ok()) << session.status().message();

  std::vector<float> y;
  std::atomic<bool> ran{false};
  std::thread runner([&] {
    auto r = run(**session);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (r.is_ok()) y = *r;
    ran = true;
  });
  // The first layer starts with the last chunk still missing; the run cannot finish.
  for (int i = 0; i < 5000 && !(*loader)->first_step_time(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE((*loader)->first_step_time().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(ran.load());
  EXPECT_FALSE((*loader)->all_verified_time().has_value());
  EXPECT_EQ(held.taken(), last.offset);

  held.allow(p.bytes->size());
  runner.join();
  ASSERT_TRUE((*loader)->finish().is_ok());
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(y, run_file(p.path));
  EXPECT_LT(*(*loader)->first_step_time(), *(*loader)->all_verified_time());
}

TEST(StreamLoader, ADamagedChunkIsRefusedByName) {
  Packed p("damaged.brink");
  auto pkg = open_package(p.path);
  ASSERT_TRUE(pkg.is_ok());
  const auto& chunks = (*pkg)->info().chunks;
  const size_t last = chunks.size() - 1;
  auto damaged = std::make_shared<std::vector<uint8_t>>(*p.bytes);
  (*damaged)[chunks[last].offset + chunks[last].size / 2] ^= 0x01;

  auto loader = StreamLoader::open(memory_source(damaged, 1000), "stream", p.trusting());
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();  // the head is intact
  auto session = (*loader)->session({});
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto y = run(**session);
  ASSERT_FALSE(y.is_ok());  // the last layer never runs on the damaged bytes
  const std::string want = "chunk " + std::to_string(last) + " (weights";
  EXPECT_NE(y.status().message().find(want), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("SHA-256"), std::string::npos);
  Status end = (*loader)->finish();
  ASSERT_FALSE(end.is_ok());
  EXPECT_EQ(end.message(), y.status().message());
  EXPECT_EQ(end.message().find('\n'), std::string::npos);
}

// Nothing past the head is read when the head fails: a wrong key, a damaged manifest.
TEST(StreamLoader, RefusesBeforeAcceptingAnyChunk) {
  Packed p("head.brink");
  auto pkg = open_package(p.path);
  ASSERT_TRUE(pkg.is_ok());
  const uint64_t first_chunk = (*pkg)->info().chunks[0].offset;

  HeldBack wrong_key(p.bytes);
  wrong_key.allow(p.bytes->size());
  VerifyOptions other;
  other.trusted_key = generate_keypair().public_key;
  auto a = StreamLoader::open(wrong_key.source(), "stream", other);
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("not by the trusted key"), std::string::npos);
  EXPECT_LE(wrong_key.taken(), first_chunk);

  auto damaged = std::make_shared<std::vector<uint8_t>>(*p.bytes);
  (*damaged)[kHeaderBytes + 40] ^= 0x10;  // inside the manifest
  HeldBack bad_manifest(damaged);
  bad_manifest.allow(damaged->size());
  auto b = StreamLoader::open(bad_manifest.source(), "stream", p.trusting());
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("seal"), std::string::npos) << b.status().message();
  EXPECT_LE(bad_manifest.taken(), first_chunk);

  // A stream cut short, and one that goes on after the package.
  auto cut = std::make_shared<std::vector<uint8_t>>(p.bytes->begin(), p.bytes->end() - 100);
  auto c = StreamLoader::open(memory_source(cut), "stream", p.trusting());
  ASSERT_TRUE(c.is_ok());
  Status cs = (*c)->finish();
  EXPECT_NE(cs.message().find("the stream ended after"), std::string::npos) << cs.message();
  auto longer = std::make_shared<std::vector<uint8_t>>(*p.bytes);
  longer->push_back(0);
  auto d = StreamLoader::open(memory_source(longer), "stream", p.trusting());
  ASSERT_TRUE(d.is_ok());
  Status ds = (*d)->finish();
  EXPECT_NE(ds.message().find("goes on after"), std::string::npos) << ds.message();
}

// Format 1 (manifest after the chunks) still opens, runs, streams (read whole), and a delta
// from it to format 2 rebuilds the new package byte for byte.
TEST(StreamLoader, ReadsTheFormatOneLayout) {
  Packed old_layout("v1.brink", 1);
  Packed new_layout("v2.brink");
  auto v1 = open_package(old_layout.path, old_layout.trusting());
  ASSERT_TRUE(v1.is_ok()) << v1.status().message();
  EXPECT_EQ((*v1)->info().format_major, 1);
  EXPECT_EQ((*v1)->info().chunks[0].offset, kHeaderBytes);  // chunks first
  FixedHeader h;
  std::memcpy(&h, old_layout.bytes->data(), sizeof h);
  EXPECT_EQ(h.format_major, 1);
  EXPECT_GT(h.manifest_offset, kHeaderBytes);
  std::memcpy(&h, new_layout.bytes->data(), sizeof h);
  EXPECT_EQ(h.format_major, kFormatMajor);
  EXPECT_EQ(h.manifest_offset, kHeaderBytes);
  EXPECT_EQ(run_file(old_layout.path), run_file(kDigits));

  auto loader =
      StreamLoader::open(memory_source(old_layout.bytes, 333), "stream", old_layout.trusting());
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();
  EXPECT_FALSE((*loader)->progressive());
  auto session = (*loader)->session({});
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto y = run(**session);
  ASSERT_TRUE(y.is_ok());
  EXPECT_EQ(*y, run_file(kDigits));
  EXPECT_TRUE((*loader)->finish().is_ok());

  // Same chunks, another layout: the delta copies them all and rebuilds NEW exactly.
  const std::string delta = temp_path("v1v2.delta"), rebuilt = temp_path("rebuilt.brink");
  auto made = make_delta(old_layout.path, new_layout.path, delta);
  ASSERT_TRUE(made.is_ok()) << made.status().message();
  EXPECT_EQ(made->changed_chunks, 0);
  ASSERT_TRUE(apply_delta(old_layout.path, delta, rebuilt).is_ok());
  EXPECT_EQ(*read_file(rebuilt), *new_layout.bytes);
  std::filesystem::remove(delta);
  std::filesystem::remove(rebuilt);
}

// Packages written by the format-1 writer (before format 2 existed), kept in the fuzz corpus:
// they open, stream (read whole) and run like the model they came from.
TEST(StreamLoader, ReadsPackagesFromTheFormatOneWriter) {
  const std::string dir = std::string(BRINK_SOURCE_DIR) + "/tests/fuzz/corpus_package_loader/";
  for (const char* name : {"conv.brink", "digits.brink", "if.brink", "loop.brink"}) {
    VerifyOptions v;
    v.check_target = false;
    auto pkg = open_package(dir + name, v);
    ASSERT_TRUE(pkg.is_ok()) << name << ": " << pkg.status().message();
    EXPECT_EQ((*pkg)->info().format_major, 1) << name;
    auto loader = StreamLoader::open(memory_source(read_file(dir + name)), name, v);
    ASSERT_TRUE(loader.is_ok()) << name << ": " << loader.status().message();
    EXPECT_FALSE((*loader)->progressive());
    EXPECT_TRUE((*loader)->finish().is_ok());
  }
  if (!check_target_runs_here("x86-64-v4").is_ok()) GTEST_SKIP() << "packed for x86-64-v4";
  EXPECT_EQ(run_file(dir + "digits.brink"), run_file(kDigits));
}

// Without pre-packed weights compiling reads every weight: the session waits for all of them
// (verified progressively all the same). An encrypted package is read whole, then decrypted.
TEST(StreamLoader, UnpackedAndEncryptedPackagesStillLoad) {
  Packed plain("noprepack.brink", kFormatMajor, /*prepack=*/false);
  auto loader = StreamLoader::open(memory_source(plain.bytes, 500), "stream", plain.trusting());
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();
  EXPECT_TRUE((*loader)->progressive());
  EXPECT_EQ((*loader)->compile_chunk(), static_cast<int>((*loader)->info().chunks.size()) - 1);
  auto session = (*loader)->session({});
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  auto y = run(**session);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ(*y, run_file(kDigits));
  EXPECT_TRUE((*loader)->finish().is_ok());

  const EncryptionKey key = generate_encryption_key();
  Packed sealed("encrypted.brink", kFormatMajor, /*prepack=*/true, key);
  VerifyOptions v = sealed.trusting();
  auto no_key = StreamLoader::open(memory_source(sealed.bytes), "stream", v);
  ASSERT_FALSE(no_key.is_ok());
  EXPECT_NE(no_key.status().message().find("encrypted"), std::string::npos);
  v.decryption_key = key;
  auto opened = StreamLoader::open(memory_source(sealed.bytes), "stream", v);
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  EXPECT_FALSE((*opened)->progressive());
  auto s2 = (*opened)->session({});
  ASSERT_TRUE(s2.is_ok()) << s2.status().message();
  auto y2 = run(**s2);
  ASSERT_TRUE(y2.is_ok());
  EXPECT_EQ(*y2, run_file(kDigits));
}

}  // namespace
}  // namespace brink::package
