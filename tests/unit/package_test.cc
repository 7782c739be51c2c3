// The .brink package (src/package): round trips that run like the .onnx they came from,
// and refusal of every kind of damage, wrong key, foreign target and newer format.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "brink/session.h"
#include "core/cpu_features.h"
#include "core/memory.h"
#include "onnx/onnx_io.h"
#include "package/delta.h"
#include "package/package.h"
#include "package_test_util.h"
#include "runtime/compiled_model.h"

namespace brink::package {
namespace {

using test::kDigits;

std::string temp_path(const std::string& name) {
  return test::temp_path("package_test", name);
}

using test::read_file;

using test::open_bytes;

Result<PackSummary> pack_file(const std::string& onnx, const std::string& out,
                              PackOptions options = {}) {
  BRINK_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load_onnx_file(onnx));
  return write_package(std::move(model), options, out);
}

std::vector<float> run_digits(const std::string& path, const SessionOptions& options = {}) {
  auto session = Session::load(path, options);
  EXPECT_TRUE(session.is_ok()) << session.status().message();
  if (!session.is_ok()) return {};
  std::vector<float> x(3 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 16.0f;
  auto out = (*session)->run({{"image", Tensor::from_vector<float>({3, 1, 8, 8}, x)}});
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  if (!out.is_ok()) return {};
  const Tensor& y = (*out)[0];
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(Package, RunsLikeTheOnnxItCameFrom) {
  const std::string out = temp_path("digits.brink");
  PackOptions options;
  options.name = "digits";
  options.version = "1.2.3";
  options.labels = {"zero", "one"};
  options.meta_json = R"({"mean":[0.5]})";
  auto summary = pack_file(kDigits, out, options);
  ASSERT_TRUE(summary.is_ok()) << summary.status().message();
  EXPECT_TRUE(is_package_file(out));
  EXPECT_FALSE(is_package_file(kDigits));
  EXPECT_EQ(summary->file_bytes, static_cast<int64_t>(std::filesystem::file_size(out)));

  const std::vector<float> want = run_digits(kDigits);
  const std::vector<float> got = run_digits(out);
  ASSERT_EQ(got.size(), 30u);
  EXPECT_EQ(got, want);  // the same graph after the same passes: bit-identical

  auto pkg = open_package(out);
  ASSERT_TRUE(pkg.is_ok()) << pkg.status().message();
  const PackageInfo& info = (*pkg)->info();
  EXPECT_EQ(info.name, "digits");
  EXPECT_EQ(info.version, "1.2.3");
  EXPECT_EQ(info.target, host_target());
  EXPECT_EQ(info.labels, (std::vector<std::string>{"zero", "one"}));
  EXPECT_EQ(info.meta_json, R"({"mean":[0.5]})");
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "image");
  EXPECT_EQ(info.signer_key_id, "");
  for (const ChunkInfo& c : info.chunks) EXPECT_EQ(c.offset % kAlignment, 0u);
  // Constants view the mapping, 64-byte aligned, and equal the ONNX file's.
  auto onnx = onnx_io::load_onnx_file(kDigits);
  ASSERT_TRUE(onnx.is_ok());
  int constants = 0;
  for (const ir::Value& v : (*pkg)->model().graph.values)
    if (v.constant) {
      ++constants;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.constant->raw_data()) % 64, 0u) << v.name;
    }
  EXPECT_GT(constants, 0);
  std::filesystem::remove(out);
}

TEST(Package, StoresPackedWeightsInsteadOfTheOnesTheyReplace) {
  const std::string packed = temp_path("packed.brink"), plain = temp_path("plain.brink");
  auto a = pack_file(kDigits, packed);
  PackOptions no_prepack;
  no_prepack.prepack = false;
  auto b = pack_file(kDigits, plain, no_prepack);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_GT(a->prepacked_nodes, 0);
  EXPECT_GT(a->elided_bytes, 0);
  EXPECT_EQ(b->prepacked_nodes, 0);
  EXPECT_EQ(b->elided_bytes, 0);
  auto pkg = open_package(packed);
  ASSERT_TRUE(pkg.is_ok());
  EXPECT_EQ((*pkg)->info().prepacked_nodes, a->prepacked_nodes);
  for (const auto& [node, w] : (*pkg)->prepacked()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 64, 0u);
    EXPECT_FALSE(w.layout.empty());
  }
  // Both run like the ONNX file, bit for bit (same kernels, same packing).
  const std::vector<float> want = run_digits(kDigits);
  EXPECT_EQ(run_digits(packed), want);
  EXPECT_EQ(run_digits(plain), want);

  // Packed weights in a layout this build does not make are refused by the kernel, by name.
  CompileExtras extras;
  extras.isa = target_isa((*pkg)->info().target);
  extras.prepacked = (*pkg)->prepacked();
  ASSERT_FALSE(extras.prepacked.empty());
  extras.prepacked.begin()->second.layout += "-other";
  SessionOptions so;
  so.optimization_level = 0;
  auto bad = CompiledModel::compile((*pkg)->model(), so, false, &extras);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("this build packs"), std::string::npos)
      << bad.status().message();
  extras.prepacked = (*pkg)->prepacked();
  extras.prepacked.begin()->second.floats -= 16;
  EXPECT_FALSE(CompiledModel::compile((*pkg)->model(), so, false, &extras).is_ok());
  std::filesystem::remove(packed);
  std::filesystem::remove(plain);
}

TEST(Package, PackedForAvx2RunsOnAnyAvx2Machine) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "needs AVX2";
  const std::string out = temp_path("v3.brink");
  PackOptions options;
  options.target = "x86-64-v3";
  auto s = pack_file(kDigits, out, options);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_GT(s->prepacked_nodes, 0);
  auto pkg = open_package(out);
  ASSERT_TRUE(pkg.is_ok());
  for (const auto& [node, w] : (*pkg)->prepacked())
    EXPECT_NE(w.layout.find("/avx2"), std::string::npos) << w.layout;
  const std::vector<float> want = run_digits(kDigits);
  const std::vector<float> got = run_digits(out);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i])));
  std::filesystem::remove(out);
}

TEST(Package, KeepsSubgraphsAttributesAndSmallChunks) {
  // Loop bodies and If branches travel as graph attributes; one-byte chunks force a chunk per
  // constant.
  for (const char* name : {"test_loop11", "test_if", "test_scan9_sum"}) {
    const std::string dir = std::string("/usr/share/libonnx-testdata/data/node/") + name;
    const std::string out = temp_path(std::string(name) + ".brink");
    PackOptions options;
    options.chunk_size = 64;
    auto summary = pack_file(dir + "/model.onnx", out, options);
    ASSERT_TRUE(summary.is_ok()) << name << ": " << summary.status().message();
    auto a = onnx_io::load_onnx_file(dir + "/model.onnx");
    auto pkg = open_package(out);
    ASSERT_TRUE(pkg.is_ok()) << pkg.status().message();
    EXPECT_EQ((*pkg)->model().graph.nodes.size() > 0, true);
    // Same inputs in, same outputs out, through the Session.
    auto s1 = Session::load(dir + "/model.onnx");
    auto s2 = Session::load(out);
    ASSERT_TRUE(s1.is_ok() && s2.is_ok()) << name;
    std::vector<NamedTensor> feeds;
    for (size_t i = 0; i < (*s1)->inputs().size(); ++i) {
      const auto bytes = read_file(dir + "/test_data_set_0/input_" + std::to_string(i) + ".pb");
      auto t = onnx_io::parse_tensor_proto(bytes.data(), bytes.size());
      ASSERT_TRUE(t.is_ok());
      feeds.emplace_back((*s1)->inputs()[i].name, *t);
    }
    auto y1 = (*s1)->run(feeds);
    auto y2 = (*s2)->run(feeds);
    ASSERT_TRUE(y1.is_ok() && y2.is_ok()) << name;
    ASSERT_EQ(y1->size(), y2->size());
    for (size_t i = 0; i < y1->size(); ++i) {
      ASSERT_EQ((*y1)[i].nbytes(), (*y2)[i].nbytes());
      EXPECT_EQ(std::memcmp((*y1)[i].raw_data(), (*y2)[i].raw_data(), (*y1)[i].nbytes()), 0)
          << name << " output " << i;
    }
    std::filesystem::remove(out);
  }
}

class SignedPackage : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = generate_keypair();
    PackOptions options;
    options.signing_key = keys_.secret;
    path_ = temp_path("signed.brink");
    auto s = pack_file(kDigits, path_, options);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    bytes_ = read_file(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }
  VerifyOptions trusting() const {
    VerifyOptions v;
    v.trusted_key = keys_.public_key;
    v.num_threads = 1;
    return v;
  }
  KeyPair keys_;
  std::string path_;
  std::vector<uint8_t> bytes_;
};

TEST_F(SignedPackage, OpensWithItsKeyAndRunsThroughSessionOptions) {
  auto pkg = open_bytes(bytes_, trusting());
  ASSERT_TRUE(pkg.is_ok()) << pkg.status().message();
  EXPECT_TRUE((*pkg)->info().signer_trusted);
  EXPECT_EQ((*pkg)->info().signer_key_id, keys_.public_key.id());

  const std::string pub = temp_path("signer.pub");
  ASSERT_TRUE(save_public_key(keys_.public_key, pub).is_ok());
  SessionOptions so;
  so.package_public_key = pub;
  EXPECT_EQ(run_digits(path_, so), run_digits(kDigits));
  std::filesystem::remove(pub);
}

// A one-byte change anywhere — header, every chunk, padding, manifest, seal, public key,
// signature — is refused, with a one-line message saying what failed.
TEST_F(SignedPackage, EveryByteIsCovered) {
  std::vector<uint8_t> damaged = bytes_;
  std::map<std::string, int> reasons;
  for (size_t i = 0; i < damaged.size(); ++i) {
    damaged[i] ^= 0x5a;
    auto pkg = open_bytes(damaged, trusting());
    damaged[i] ^= 0x5a;
    ASSERT_FALSE(pkg.is_ok()) << "a change at byte " << i << " of " << damaged.size()
                              << " was not noticed";
    const std::string& m = pkg.status().message();
    ASSERT_EQ(m.find('\n'), std::string::npos);
    ASSERT_EQ(m.rfind("pkg: ", 0), 0u) << m;
    if (m.find("SHA-256 check") != std::string::npos)
      ++reasons["chunk hash"];
    else if (m.find("seal") != std::string::npos)
      ++reasons["seal"];
    else if (m.find("signature") != std::string::npos)
      ++reasons["signature"];
    else if (m.find("padding") != std::string::npos)
      ++reasons["padding"];
    else
      ++reasons["layout: " + m.substr(5, 40)];
  }
  // The main defences each fired (the layout checks catch header fields first).
  EXPECT_GT(reasons["chunk hash"], 1000);
  EXPECT_GT(reasons["seal"], 100);
  EXPECT_GE(reasons["signature"], 64);  // the 64 signature bytes at least
  EXPECT_GT(reasons["padding"], 0);
  EXPECT_TRUE(open_bytes(bytes_, trusting()).is_ok());  // and the original still opens
}

TEST_F(SignedPackage, RefusesWrongMissingAndExpiredKeys) {
  VerifyOptions other;
  other.trusted_key = generate_keypair().public_key;
  auto wrong = open_bytes(bytes_, other);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("not by the trusted key " + other.trusted_key->id()),
            std::string::npos)
      << wrong.status().message();

  VerifyOptions expired = trusting();
  expired.trusted_key->expires = *parse_expiry_date("2025-01-31");
  expired.now = *parse_expiry_date("2025-02-01");
  auto late = open_bytes(bytes_, expired);
  ASSERT_FALSE(late.is_ok());
  EXPECT_NE(late.status().message().find("expired on 2025-01-31"), std::string::npos)
      << late.status().message();
  expired.now = *parse_expiry_date("2025-01-31") - 3600;
  EXPECT_TRUE(open_bytes(bytes_, expired).is_ok());

  // An unsigned package when a signature is required.
  const std::string unsigned_path = temp_path("unsigned.brink");
  ASSERT_TRUE(pack_file(kDigits, unsigned_path).is_ok());
  auto bare = open_package(unsigned_path, trusting());
  ASSERT_FALSE(bare.is_ok());
  EXPECT_NE(bare.status().message().find("not signed"), std::string::npos);
  EXPECT_TRUE(open_package(unsigned_path).is_ok());
  std::filesystem::remove(unsigned_path);
}

TEST_F(SignedPackage, RefusesNewerFormatsTruncationAndForeignTargets) {
  std::vector<uint8_t> newer = bytes_;
  newer[8] = static_cast<uint8_t>(kFormatMajor + 1);  // format_major, little-endian
  auto n = open_bytes(newer);
  ASSERT_FALSE(n.is_ok());
  EXPECT_EQ(n.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(n.status().message().find("newer than this reader"), std::string::npos);

  for (size_t keep : {size_t{0}, size_t{10}, size_t{64}, bytes_.size() / 2, bytes_.size() - 1}) {
    std::vector<uint8_t> cut(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(keep));
    auto t = open_bytes(cut.empty() ? std::vector<uint8_t>(1, 0) : cut);
    EXPECT_FALSE(t.is_ok()) << keep;
  }
  std::vector<uint8_t> longer = bytes_;
  longer.push_back(0);
  auto l = open_bytes(longer);
  ASSERT_FALSE(l.is_ok());
  EXPECT_NE(l.status().message().find("truncated or appended"), std::string::npos);

  // A package for a CPU this one is not.
  const std::string foreign = isa_supported(Isa::kNeon) ? "x86-64-v3" : "aarch64";
  PackOptions options;
  options.target = foreign;
  const std::string out = temp_path("foreign.brink");
  ASSERT_TRUE(pack_file(kDigits, out, options).is_ok());
  auto f = Session::load(out);
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("package targets " + foreign), std::string::npos)
      << f.status().message();
  // ... saying why: this CPU, or a runtime built without those kernels (BRINK_KERNEL_ISAS).
  const std::string why = isa_unsupported_reason(target_isa(foreign));
  EXPECT_FALSE(why.empty());
  EXPECT_NE(f.status().message().find(why), std::string::npos) << f.status().message();
  EXPECT_EQ(isa_unsupported_reason(usable_isa(target_isa(foreign))), "");
  VerifyOptions no_target_check;
  no_target_check.check_target = false;
  EXPECT_TRUE(open_package(out, no_target_check).is_ok());  // brink info / verify still read it
  std::filesystem::remove(out);
}

TEST(Package, WritesAllOrNothing) {
  // An unwritable destination leaves nothing behind, and the input model is not touched.
  const auto before = read_file(kDigits);
  auto s = pack_file(kDigits, "/nonexistent-dir/x.brink");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kIoError);
  EXPECT_EQ(read_file(kDigits), before);

  PackOptions bad_target;
  bad_target.target = "riscv";
  const std::string out = temp_path("never.brink");
  auto t = pack_file(kDigits, out, bad_target);
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("expected x86-64-v4"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out));

  // A model that cannot run is not packaged.
  ir::Model m;
  m.opset_imports.push_back({"", 17});
  const int x = m.graph.add_value("x", ir::TensorType::of(DataType::kFloat32, {2}));
  const int y = m.graph.add_value("y");
  m.graph.inputs.push_back(x);
  m.graph.outputs.push_back(y);
  ir::Node n;
  n.name = "mystery";
  n.op_type = "NoSuchOp";
  n.inputs = {x};
  n.outputs = {y};
  m.graph.nodes.push_back(n);
  auto u = write_package(m, {}, out);
  ASSERT_FALSE(u.is_ok());
  EXPECT_NE(u.status().message().find("NoSuchOp"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(PackageKeys, SaveLoadAndRefuseDamage) {
  KeyPair kp = generate_keypair();
  kp.public_key.expires = *parse_expiry_date("2030-06-30");
  const std::string sk = temp_path("k.key"), pk = temp_path("k.pub");
  ASSERT_TRUE(save_secret_key(kp.secret, sk).is_ok());
  ASSERT_TRUE(save_public_key(kp.public_key, pk).is_ok());
  auto s = load_secret_key(sk);
  auto p = load_public_key(pk);
  ASSERT_TRUE(s.is_ok() && p.is_ok());
  EXPECT_EQ(s->bytes, kp.secret.bytes);
  EXPECT_EQ(p->bytes, kp.public_key.bytes);
  EXPECT_EQ(format_date(*p->expires), "2030-06-30");
  EXPECT_EQ(s->public_key().bytes, kp.public_key.bytes);
  const uint8_t msg[3] = {1, 2, 3};
  const auto sig = sign(*s, msg, 3);
  EXPECT_TRUE(verify_signature(*p, sig.data(), msg, 3));
  EXPECT_FALSE(verify_signature(generate_keypair().public_key, sig.data(), msg, 3));

  EXPECT_FALSE(load_public_key(sk).is_ok());  // a secret key is not a public key
  EXPECT_FALSE(parse_expiry_date("2030-13-01").is_ok());
  EXPECT_FALSE(parse_expiry_date("30-06-2030").is_ok());
  { std::ofstream(sk) << "brink-ed25519-secret-key " << std::string(128, '0') << "\n"; }
  auto bad = load_secret_key(sk);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("does not match the seed"), std::string::npos);
  std::filesystem::remove(sk);
  std::filesystem::remove(pk);
}

}  // namespace
}  // namespace brink::package

namespace brink::package {
namespace {

// The model with its last node's weight constant changed (fine-tuning the classifier).
ir::Model with_last_layer_changed(ir::Model m) {
  ir::Graph& g = m.graph;
  for (auto node = g.nodes.rbegin(); node != g.nodes.rend(); ++node)
    for (int v : node->inputs)
      if (v != ir::kNoValue && g.value(v).constant &&
          g.value(v).constant->dtype() == DataType::kFloat32 && g.value(v).constant->rank() == 2) {
        Tensor t = g.value(v).constant->clone();
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= 1.01f;
        g.value(v).constant = t;
        return m;
      }
  ADD_FAILURE() << "no 2-D weight found";
  return m;
}

TEST(PackageDelta, CarriesOnlyChangedChunksAndRebuildsNewExactly) {
  auto model = onnx_io::load_onnx_file(kDigits);
  ASSERT_TRUE(model.is_ok());
  PackOptions options;
  options.chunk_size = 2048;  // small chunks, as a large model's layers get
  options.signing_key = generate_keypair().secret;
  const std::string a = temp_path("old.brink"), b = temp_path("new.brink"),
                    d = temp_path("u.delta"), out = temp_path("rebuilt.brink");
  ASSERT_TRUE(write_package(*model, options, a).is_ok());
  ASSERT_TRUE(write_package(with_last_layer_changed(*model), options, b).is_ok());
  auto s = make_delta(a, b, d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_GT(s->changed_chunks, 0);
  EXPECT_LT(s->changed_chunks, s->total_chunks);
  EXPECT_GT(s->copied_bytes, s->literal_bytes);
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(d)), s->delta_bytes);
  // The retrained layer's chunk travels as its differences from the old one, deflated.
  EXPECT_GT(s->patched_chunks, 0);
  EXPECT_GT(s->patched_bytes, 0);

  auto r = apply_delta(a, d, out);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(read_file(out), read_file(b));  // byte-identical, signature included
  EXPECT_TRUE(open_package(out).is_ok());

  // Against another base, or damaged anywhere, a delta writes nothing.
  std::filesystem::remove(out);
  auto wrong = apply_delta(b, d, out);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("another base package"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out));
  const std::vector<uint8_t> old_bytes = read_file(a), delta = read_file(d);
  for (size_t i = 0; i < delta.size(); i += std::max<size_t>(1, delta.size() / 300)) {
    std::vector<uint8_t> bad = delta;
    bad[i] ^= 0x40;
    auto x = apply_delta_bytes(old_bytes, bad, "delta");
    EXPECT_FALSE(x.is_ok()) << "a change at byte " << i << " went unnoticed";
  }
  for (size_t keep : {size_t{0}, size_t{20}, delta.size() / 2, delta.size() - 1}) {
    std::vector<uint8_t> cut(delta.begin(), delta.begin() + static_cast<std::ptrdiff_t>(keep));
    EXPECT_FALSE(apply_delta_bytes(old_bytes, cut, "delta").is_ok()) << keep;
  }
  for (const auto& p : {a, b, d}) std::filesystem::remove(p);
}

TEST(PackageDelta, PatchesRoundTripOnAwkwardSizesAndNoPatchMeansFormatOne) {
  // Same model twice: nothing changed, so no patch, and the delta stays readable by readers
  // of delta format 1.
  auto model = onnx_io::load_onnx_file(kDigits);
  ASSERT_TRUE(model.is_ok());
  PackOptions options;
  options.chunk_size = 64 * 3;  // many small chunks, sizes not multiples of 4 words apart
  const std::string a = temp_path("same_a.brink"), b = temp_path("same_b.brink"),
                    d = temp_path("same.delta"), out = temp_path("same_out.brink");
  ASSERT_TRUE(write_package(*model, options, a).is_ok());
  ASSERT_TRUE(write_package(*model, options, b).is_ok());
  auto s = make_delta(a, b, d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(s->patched_chunks, 0);
  const std::vector<uint8_t> delta = read_file(d);
  ASSERT_GT(delta.size(), 10u);
  EXPECT_EQ(delta[8], 1);  // major 1
  EXPECT_EQ(delta[9], 0);
  ASSERT_TRUE(apply_delta(a, d, out).is_ok());
  EXPECT_EQ(read_file(out), read_file(b));

  // Changed with small chunks: every changed chunk is patched or sent, and the result is NEW.
  ASSERT_TRUE(write_package(with_last_layer_changed(*model), options, b).is_ok());
  s = make_delta(a, b, d);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_GT(s->changed_chunks, 0);
  ASSERT_TRUE(apply_delta(a, d, out).is_ok());
  EXPECT_EQ(read_file(out), read_file(b));
  for (const auto& p : {a, b, d, out}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace brink::package

namespace brink::package {
namespace {

TEST(PackageMemoryBound, PagesWeightsLayerByLayerWithTheSameResults) {
  const std::string out = temp_path("bounded.brink");
  ASSERT_TRUE(pack_file(kDigits, out).is_ok());
  const std::vector<float> want = run_digits(out);
  // 20 KB: less than the weights (~35 KB), more than any one layer plus the arena.
  SessionOptions bounded;
  bounded.max_memory_bytes = 20000;
  auto session = Session::load(out, bounded);
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_TRUE((*session)->compiled().pages_weights());
  EXPECT_EQ(run_digits(out, bounded), want);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run_digits(out, bounded), want);  // pages come back

  SessionOptions roomy;
  roomy.max_memory_bytes = int64_t{1} << 30;
  auto whole = Session::load(out, roomy);
  ASSERT_TRUE(whole.is_ok());
  EXPECT_FALSE((*whole)->compiled().pages_weights());

  SessionOptions tiny;
  tiny.max_memory_bytes = 100;
  auto refused = Session::load(out, tiny);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("is too small"), std::string::npos)
      << refused.status().message();
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace brink::package

namespace brink::package {
namespace {

TEST(PackageEncryption, RunsWithItsKeyOnlyAndHidesTheWeights) {
  auto model = onnx_io::load_onnx_file(kDigits);
  ASSERT_TRUE(model.is_ok());
  const EncryptionKey key = generate_encryption_key(), other = generate_encryption_key();
  PackOptions options;
  options.encryption_key = key;
  options.signing_key = generate_keypair().secret;
  const std::string out = temp_path("enc.brink");
  ASSERT_TRUE(write_package(*model, options, out).is_ok());

  // No run of 16 bytes of any stored constant appears in the file.
  const std::vector<uint8_t> bytes = read_file(out);
  for (const ir::Value& v : model->graph.values)
    if (v.constant && v.constant->nbytes() >= 64) {
      const auto* w = static_cast<const uint8_t*>(v.constant->raw_data());
      EXPECT_EQ(std::search(bytes.begin(), bytes.end(), w + 32, w + 48), bytes.end()) << v.name;
    }

  VerifyOptions with_key;
  with_key.decryption_key = key;
  auto pkg = open_bytes(bytes, with_key);
  ASSERT_TRUE(pkg.is_ok()) << pkg.status().message();
  EXPECT_TRUE((*pkg)->info().encrypted);
  EXPECT_EQ((*pkg)->info().encryption_key_id, key.id());

  const std::string key_file = temp_path("k.enckey");
  ASSERT_TRUE(save_encryption_key(key, key_file).is_ok());
  SessionOptions so;
  so.package_key = key_file;
  EXPECT_EQ(run_digits(out, so), run_digits(kDigits));

  auto missing = open_bytes(bytes);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("is encrypted (key " + key.id()), std::string::npos);
  VerifyOptions wrong;
  wrong.decryption_key = other;
  auto w = open_bytes(bytes, wrong);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("not with the key given (" + other.id()), std::string::npos);
  // A key file with the right id but different bytes cannot exist; the tag catches any other
  // mismatch: the same ciphertext under a forged key id fails to decrypt.
  auto loaded = load_encryption_key(key_file);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ(loaded->bytes, key.bytes);
  std::filesystem::remove(out);
  std::filesystem::remove(key_file);
}

}  // namespace
}  // namespace brink::package
