// Packages with a fallback target (PackOptions::fallback_targets, format 2.1): the primary
// target's load never reads the fallback chunks, a forced fallback load runs like the
// primary (portable kernels packing the stored ONNX-layout weights at load), every fallback
// byte is covered by its hash, and deltas and streaming work on such packages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "brink/session.h"
#include "core/memory.h"
#include "onnx/onnx_io.h"
#include "package/delta.h"
#include "package/package.h"
#include "package/stream_loader.h"
#include "package_test_util.h"

namespace brink::package {
namespace {

using test::kDigits;

std::string temp_path(const std::string& name) {
  return test::temp_path("fallback_test", name);
}

using test::read_file;

using test::open_bytes;

Result<PackSummary> pack_digits(const std::string& out, PackOptions options) {
  BRINK_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load_onnx_file(kDigits));
  return write_package(std::move(model), options, out);
}

PackOptions with_portable_fallback() {
  PackOptions o;
  o.fallback_targets = {"portable"};
  o.chunk_size = 4096;  // several chunks, so that primary and fallback data are each split
  return o;
}

std::vector<float> run(Session& session) {
  std::vector<float> x(3 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 16.0f;
  auto out = session.run({{"image", Tensor::from_vector<float>({3, 1, 8, 8}, x)}});
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  if (!out.is_ok()) return {};
  const Tensor& y = (*out)[0];
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

std::vector<float> run_file(const std::string& path, const VerifyOptions& verify = {}) {
  auto session = load_package_session(path, SessionOptions{}, verify);
  EXPECT_TRUE(session.is_ok()) << session.status().message();
  if (!session.is_ok()) return {};
  return run(**session);
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << i;
}

VerifyOptions forcing(const std::string& target) {
  VerifyOptions v;
  v.target = target;
  v.num_threads = 1;
  return v;
}

TEST(PackageFallback, PrimaryByDefaultForcedFallbackRunsAlike) {
  const std::string plain = temp_path("plain.brink"), fb = temp_path("fallback.brink");
  PackOptions no_fallback = with_portable_fallback();
  no_fallback.fallback_targets.clear();
  auto a = pack_digits(plain, no_fallback);
  auto b = pack_digits(fb, with_portable_fallback());
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().message();
  EXPECT_EQ(a->fallback_bytes, 0);
  EXPECT_GT(b->fallback_bytes, 0);
  EXPECT_GT(b->prepacked_nodes, 0);
  // The fallback data is what the packed weights replaced, appended after the rest.
  EXPECT_GE(b->fallback_bytes, b->elided_bytes);
  EXPECT_GE(b->file_bytes - a->file_bytes, b->fallback_bytes);

  auto primary = open_package(fb);
  ASSERT_TRUE(primary.is_ok()) << primary.status().message();
  const PackageInfo& info = (*primary)->info();
  EXPECT_EQ(info.format_major, 2);
  EXPECT_EQ(info.format_minor, 1);
  EXPECT_EQ(info.targets, (std::vector<std::string>{host_target(), "portable"}));
  EXPECT_EQ(info.selected_target, host_target());
  EXPECT_FALSE(info.uses_fallback());
  EXPECT_FALSE((*primary)->prepacked().empty());
  // Fallback chunks are the last ones, and there is at least one.
  bool seen_fallback = false;
  for (const ChunkInfo& c : info.chunks) {
    if (seen_fallback) {
      EXPECT_TRUE(c.fallback);
    }
    seen_fallback |= c.fallback;
  }
  EXPECT_TRUE(seen_fallback);
  // A package without fallback is still format 2.0, with no fallback chunk.
  auto old = open_package(plain);
  ASSERT_TRUE(old.is_ok());
  EXPECT_EQ(old.value()->info().format_minor, 0);
  EXPECT_EQ(old.value()->info().targets, (std::vector<std::string>{host_target()}));

  auto forced = open_package(fb, forcing("portable"));
  ASSERT_TRUE(forced.is_ok()) << forced.status().message();
  EXPECT_EQ(forced.value()->info().selected_target, "portable");
  EXPECT_TRUE(forced.value()->info().uses_fallback());
  EXPECT_TRUE(forced.value()->prepacked().empty());

  const std::vector<float> want = run_file(plain);
  EXPECT_EQ(run_file(fb), want);  // the primary path: the same packed weights, bit for bit
  expect_near(run_file(fb, forcing("portable")), want);

  // Asking for a target the package does not have, or one this CPU does not run.
  auto absent = open_package(fb, forcing("x86-64-v3"));
  ASSERT_FALSE(absent.is_ok());
  EXPECT_NE(absent.status().message().find("the package has " + host_target() + ", portable"),
            std::string::npos)
      << absent.status().message();
  std::filesystem::remove(plain);
  std::filesystem::remove(fb);
}

TEST(PackageFallback, RefusesBadFallbackOptions) {
  const std::string out = temp_path("bad.brink");
  PackOptions same = with_portable_fallback();
  same.target = "portable";
  EXPECT_FALSE(pack_digits(out, same).is_ok());
  PackOptions unknown = with_portable_fallback();
  unknown.fallback_targets = {"risc-v"};
  auto u = pack_digits(out, unknown);
  ASSERT_FALSE(u.is_ok());
  EXPECT_NE(u.status().message().find("fallback target 'risc-v'"), std::string::npos);
  PackOptions twice = with_portable_fallback();
  twice.fallback_targets = {"portable", "portable"};
  EXPECT_FALSE(pack_digits(out, twice).is_ok());
  PackOptions v1 = with_portable_fallback();
  v1.format_major = 1;
  EXPECT_FALSE(pack_digits(out, v1).is_ok());
  EXPECT_FALSE(std::filesystem::exists(out));
}

// Every load hashes every chunk, also those it does not read (the fallback chunks for a
// primary load, the packed weights for a fallback load): a 1-byte change anywhere is refused
// whichever target runs. VerifyOptions::all_chunks = false skips the unread ones.
TEST(PackageFallback, EveryByteIsCoveredWhicheverTargetRuns) {
  const std::string out = temp_path("signed.brink");
  PackOptions o = with_portable_fallback();
  const KeyPair keys = generate_keypair();
  o.signing_key = keys.secret;
  ASSERT_TRUE(pack_digits(out, o).is_ok());
  const std::vector<uint8_t> bytes = read_file(out);
  auto pkg = open_bytes(bytes);
  ASSERT_TRUE(pkg.is_ok());
  VerifyOptions all;  // the default: every chunk
  all.trusted_key = keys.public_key;
  VerifyOptions fallback = forcing("portable");
  fallback.trusted_key = keys.public_key;
  VerifyOptions primary_only = all;  // skips the chunks a primary load does not read
  primary_only.all_chunks = false;
  VerifyOptions fallback_only = fallback;
  fallback_only.all_chunks = false;
  int checked = 0;
  for (const ChunkInfo& c : (*pkg)->info().chunks) {
    if (!c.fallback) continue;
    for (uint64_t i = c.offset; i < c.offset + c.size; i += 7) {
      std::vector<uint8_t> damaged = bytes;
      damaged[i] ^= 0x20;
      for (const VerifyOptions& v : {all, fallback}) {
        auto d = open_bytes(damaged, v);
        ASSERT_FALSE(d.is_ok()) << "a change at byte " << i << " went unnoticed";
        EXPECT_NE(d.status().message().find("SHA-256 check"), std::string::npos)
            << d.status().message();
      }
      EXPECT_TRUE(open_bytes(damaged, primary_only).is_ok()) << "skipped, as asked";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
  // Chunks of packed weights only: a fallback load does not read them, but hashes them.
  int packed = 0;
  for (const ChunkInfo& c : (*pkg)->info().chunks) {
    if (!c.packed) continue;
    ++packed;
    EXPECT_FALSE(c.fallback);
    std::vector<uint8_t> damaged = bytes;
    damaged[c.offset + c.size / 2] ^= 0x20;
    EXPECT_FALSE(open_bytes(damaged).is_ok());
    EXPECT_FALSE(open_bytes(damaged, all).is_ok());
    EXPECT_FALSE(open_bytes(damaged, fallback).is_ok());
    auto f = open_bytes(damaged, fallback_only);
    EXPECT_TRUE(f.is_ok()) << f.status().message();
  }
  EXPECT_GT(packed, 0);
  // A change in a primary chunk is refused by every load, as before.
  const ChunkInfo& first_weights = (*pkg)->info().chunks[1];
  ASSERT_FALSE(first_weights.fallback);
  std::vector<uint8_t> damaged = bytes;
  damaged[first_weights.offset + 3] ^= 1;
  EXPECT_FALSE(open_bytes(damaged).is_ok());
  EXPECT_FALSE(open_bytes(damaged, fallback).is_ok());
  std::filesystem::remove(out);
}

// A delta between two fallback packages copies the unchanged chunks, the fallback ones
// included, and rebuilds the new package exactly; the rebuilt package's fallback runs.
TEST(PackageFallback, DeltaCarriesFallbackChunks) {
  auto model = onnx_io::load_onnx_file(kDigits);
  ASSERT_TRUE(model.is_ok());
  ir::Model changed = *model;
  for (auto node = changed.graph.nodes.rbegin(); node != changed.graph.nodes.rend(); ++node) {
    bool done = false;
    for (int v : node->inputs)
      if (v != ir::kNoValue && changed.graph.value(v).constant &&
          changed.graph.value(v).constant->rank() == 2) {
        Tensor t = changed.graph.value(v).constant->clone();
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= 1.01f;
        changed.graph.value(v).constant = t;
        done = true;
        break;
      }
    if (done) break;
  }
  const PackOptions o = with_portable_fallback();
  const std::string a = temp_path("a.brink"), b = temp_path("b.brink"), d = temp_path("u.delta"),
                    r = temp_path("r.brink");
  ASSERT_TRUE(write_package(*model, o, a).is_ok());
  ASSERT_TRUE(write_package(changed, o, b).is_ok());
  auto s = make_delta(a, b, d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_LT(s->changed_chunks, s->total_chunks);
  auto p = apply_delta(a, d, r);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ(read_file(r), read_file(b));
  expect_near(run_file(r, forcing("portable")), run_file(b));
  for (const auto& f : {a, b, d, r}) std::filesystem::remove(f);
}

// Streaming: the primary compiles before the fallback chunks arrive; a forced fallback
// waits for them and runs like the file.
TEST(PackageFallback, StreamsEitherTarget) {
  const std::string out = temp_path("stream.brink");
  ASSERT_TRUE(pack_digits(out, with_portable_fallback()).is_ok());
  auto bytes = std::make_shared<const std::vector<uint8_t>>(read_file(out));
  const std::vector<float> want = run_file(out);
  for (const std::string& target : {std::string(), std::string("portable")}) {
    auto loader = StreamLoader::open(memory_source(bytes, 1000), "pkg", forcing(target));
    ASSERT_TRUE(loader.is_ok()) << loader.status().message();
    const PackageInfo& info = (*loader)->info();
    int first_fallback = static_cast<int>(info.chunks.size());
    for (size_t i = 0; i < info.chunks.size(); ++i)
      if (info.chunks[i].fallback) {
        first_fallback = static_cast<int>(i);
        break;
      }
    ASSERT_LT(first_fallback, static_cast<int>(info.chunks.size()));
    if (target.empty())
      EXPECT_LT((*loader)->compile_chunk(), first_fallback);
    else
      EXPECT_GE((*loader)->compile_chunk(), first_fallback);
    auto session = (*loader)->session(SessionOptions{});
    ASSERT_TRUE(session.is_ok()) << session.status().message();
    const std::vector<float> got = run(**session);
    EXPECT_TRUE((*loader)->finish().is_ok());
    if (target.empty())
      EXPECT_EQ(got, want);
    else
      expect_near(got, want);
  }
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace brink::package
