// Speed of the fast float32 elementwise/transformer kernels against the reference kernels, on
// the pieces of a BERT-like encoder layer (d = 384, 6 heads, sequence 128):
//
//   elementwise_bench [--threads N] [--isa portable|avx2|avx512|neon] [--samples S]
//
// Each op is prepared once (the fast kernel, and the reference kernel with
// kernels::set_fast_kernels_enabled(false)) and run on preallocated outputs, as the executor
// runs it; each sample times enough runs to last ~2 ms, and the median of the samples is
// printed in microseconds per run. brink.Attention's reference is the chain of ONNX operators
// it replaces (Transpose, MatMul, Mul, Add, Softmax, MatMul), prepared on every run; the last
// line times that chain prepared once, with reference kernels and with every fast kernel it
// can use (ops that ignore kernels::set_fast_kernels_enabled, such as a fast MatMul, are fast
// in both columns). Numbers on a shared machine are noisy: compare medians from one run of
// this program, not across runs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "ops/evaluate.h"
#include "ops/op.h"

namespace brink {
namespace {

using ir::TensorType;
using ops::make_attr;
using ops::make_node;

Tensor random_f32(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  Tensor t = Tensor::empty(DataType::kFloat32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// One node prepared once, run on preallocated outputs.
struct Prepared {
  ir::Node node;
  std::unique_ptr<ops::Kernel> kernel;
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;

  static std::unique_ptr<Prepared> make(ir::Node node, int64_t opset,
                                        std::vector<const Tensor*> inputs, bool fast, Isa isa) {
    auto p = std::make_unique<Prepared>();
    p->node = std::move(node);
    p->inputs = std::move(inputs);
    const ops::OpDef* def = ops::OpRegistry::global().find(p->node.domain, p->node.op_type, opset);
    if (def == nullptr) {
      std::fprintf(stderr, "no op %s\n", p->node.op_type.c_str());
      std::exit(1);
    }
    std::vector<TensorType> types(p->inputs.size());
    ops::KernelCreateContext cctx{p->node, opset, {}, {}, {}, {}};
    cctx.isa = isa;
    for (size_t i = 0; i < p->inputs.size(); ++i) {
      types[i] = TensorType::of(p->inputs[i]->dtype(), p->inputs[i]->shape());
      cctx.input_types.push_back(&types[i]);
      cctx.constant_inputs.push_back(nullptr);
    }
    ops::InferContext ictx(p->node, opset, cctx.input_types, p->inputs);
    Status s = def->infer(ictx);
    if (!s.is_ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      std::exit(1);
    }
    cctx.output_types = ictx.outputs();
    kernels::set_fast_kernels_enabled(fast);
    auto k = def->create(cctx);
    kernels::set_fast_kernels_enabled(true);
    if (!k.is_ok()) {
      std::fprintf(stderr, "%s\n", k.status().message().c_str());
      std::exit(1);
    }
    p->kernel = std::move(*k);
    for (const TensorType& t : ictx.outputs())
      p->outputs.push_back(Tensor::empty(t.dtype, t.static_shape()));
    return p;
  }

  void run(ThreadPool* pool) {
    ops::KernelContext ctx(std::span<const Tensor* const>(inputs), &outputs, 1);
    ctx.set_thread_pool(pool);
    Status s = kernel->run(ctx);
    if (!s.is_ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      std::exit(1);
    }
  }
};

double median_us(const std::function<void()>& fn, int samples) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) fn();
  auto t0 = clock::now();
  fn();
  const double one = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
  const int reps = std::max(1, static_cast<int>(2000.0 / std::max(one, 1.0)));
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) {
    t0 = clock::now();
    for (int r = 0; r < reps; ++r) fn();
    times.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count() / reps);
  }
  std::nth_element(times.begin(), times.begin() + samples / 2, times.end());
  return times[static_cast<size_t>(samples / 2)];
}

// The unfused attention of one layer: the chain brink.Attention replaces.
struct AttentionChain {
  std::vector<std::unique_ptr<Prepared>> steps;
  Tensor scale = Tensor::scalar<float>(0.125f);

  AttentionChain(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool fast,
                 Isa isa) {
    steps.push_back(Prepared::make(
        make_node("Transpose", 1, 1, {make_attr("perm", std::vector<int64_t>{0, 1, 3, 2})}), 13,
        {&k}, fast, isa));
    steps.push_back(
        Prepared::make(make_node("MatMul", 2, 1), 13, {&q, &steps[0]->outputs[0]}, fast, isa));
    steps.push_back(
        Prepared::make(make_node("Mul", 2, 1), 14, {&steps[1]->outputs[0], &scale}, fast, isa));
    steps.push_back(
        Prepared::make(make_node("Add", 2, 1), 14, {&steps[2]->outputs[0], &mask}, fast, isa));
    steps.push_back(Prepared::make(make_node("Softmax", 1, 1, {make_attr("axis", int64_t{-1})}), 13,
                                   {&steps[3]->outputs[0]}, fast, isa));
    steps.push_back(
        Prepared::make(make_node("MatMul", 2, 1), 13, {&steps[4]->outputs[0], &v}, fast, isa));
  }
  void run(ThreadPool* pool) {
    for (auto& s : steps) s->run(pool);
  }
};

int main_impl(int argc, char** argv) {
  int threads = 1, samples = 21;
  Isa isa = best_isa();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--samples" && i + 1 < argc) {
      samples = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--isa" && i + 1 < argc) {
      const std::string name = argv[++i];
      bool found = false;
      for (Isa c : supported_isas())
        if (name == isa_name(c)) {
          isa = c;
          found = true;
        }
      if (!found) {
        std::fprintf(stderr, "ISA %s is not supported here\n", name.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: elementwise_bench [--threads N] [--isa NAME] [--samples S]\n");
      return 2;
    }
  }
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);

  const Tensor x384 = random_f32({128, 384}, 1), g384 = random_f32({384}, 2),
               b384 = random_f32({384}, 3);
  const Tensor scores = random_f32({6, 128, 128}, 4), h1536 = random_f32({128, 1536}, 5),
               b1536 = random_f32({1536}, 6);
  const Tensor q = random_f32({1, 6, 128, 64}, 7), k = random_f32({1, 6, 128, 64}, 8),
               v = random_f32({1, 6, 128, 64}, 9);
  Tensor mask = Tensor::zeros(DataType::kFloat32, {1, 1, 1, 128});
  for (int64_t j = 100; j < 128; ++j) mask.data<float>()[j] = -10000.0f;

  struct Piece {
    std::string name;
    ir::Node node;
    int64_t opset;
    std::vector<const Tensor*> inputs;
  };
  const std::vector<Piece> pieces = {
      {"LayerNorm [128,384]",
       make_node("LayerNormalization", 3, 1, {}, "brink"),
       1,
       {&x384, &g384, &b384}},
      {"Softmax [6,128,128]", make_node("Softmax", 1, 1), 13, {&scores}},
      {"GELU [128,1536]", make_node("Gelu", 1, 1, {}, "brink"), 1, {&h1536}},
      {"GELU tanh [128,1536]",
       make_node("Gelu", 1, 1, {make_attr("approximate", std::string("tanh"))}, "brink"),
       1,
       {&h1536}},
      {"Add bias [128,1536]+[1536]", make_node("Add", 2, 1), 14, {&h1536, &b1536}},
      {"ReduceMean [128,384] axis -1",
       make_node("ReduceMean", 1, 1, {make_attr("axes", std::vector<int64_t>{-1})}),
       13,
       {&x384}},
      {"Attention 6 heads seq 128 d 64",
       make_node("Attention", 4, 1, {}, "brink"),
       1,
       {&q, &k, &v, &mask}},
  };

  std::printf("elementwise_bench: isa %s, %d thread(s), median of %d samples (us per run)\n",
              isa_name(isa), threads, samples);
  std::printf("%-34s %12s %12s %9s\n", "piece", "reference", "fast", "speedup");
  for (const Piece& p : pieces) {
    auto ref = Prepared::make(p.node, p.opset, p.inputs, false, isa);
    auto fast = Prepared::make(p.node, p.opset, p.inputs, true, isa);
    // brink.Attention's reference prepares its chain of ONNX ops on every run: keep the fast
    // kernels off while the reference runs.
    kernels::set_fast_kernels_enabled(false);
    const double tr = median_us([&] { ref->run(pool.get()); }, samples);
    kernels::set_fast_kernels_enabled(true);
    const double tf = median_us([&] { fast->run(pool.get()); }, samples);
    std::printf("%-34s %12.1f %12.1f %8.1fx\n", p.name.c_str(), tr, tf, tr / tf);
  }
  AttentionChain ref_chain(q, k, v, mask, false, isa), fast_chain(q, k, v, mask, true, isa);
  const double tr = median_us([&] { ref_chain.run(pool.get()); }, samples);
  const double tf = median_us([&] { fast_chain.run(pool.get()); }, samples);
  std::printf("%-34s %12.1f %12.1f %8.1fx\n", "Attention as unfused ONNX chain", tr, tf, tr / tf);
  return 0;
}

}  // namespace
}  // namespace brink

int main(int argc, char** argv) {
  return brink::main_impl(argc, argv);
}
