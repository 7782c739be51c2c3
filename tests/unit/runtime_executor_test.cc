// The thread pool and the arena executor: every task runs exactly once, the pool never
// deadlocks or oversubscribes, and a model run from its planned arena (views, in-place
// outputs, reused run states) gives exactly what the per-tensor executor gives.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "brink/session.h"
#include "core/thread_pool.h"
#include "loader/npy.h"
#include "runtime/compiled_model.h"

namespace brink {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h = 0;
      pool.parallel_for(n, [&](int64_t t) { hits[static_cast<size_t>(t)]++; });
      for (int64_t t = 0; t < n; ++t)
        EXPECT_EQ(hits[static_cast<size_t>(t)].load(), 1) << threads << " threads, n " << n;
    }
  }
}

TEST(ThreadPool, UsesMoreThanOneThreadForLargeLoops) {
  ThreadPool pool(2);
  std::mutex m;
  std::set<std::thread::id> ids;
  for (int rep = 0; rep < 50 && ids.size() < 2; ++rep)
    pool.parallel_for(64, [&](int64_t) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, NestedAndConcurrentLoopsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(8, [&](int64_t i) {
    // The pool is busy with the outer loop: the inner one runs on this thread.
    parallel_for(&pool, 4, [&](int64_t j) { sum += i * 4 + j; });
  });
  EXPECT_EQ(sum.load(), 31 * 32 / 2);

  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) pool.parallel_for(10, [&](int64_t t) { total += t; });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 200 * 45);
}

TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  std::atomic<int> n{0};
  pool.parallel_for(6, [&](int64_t) { n++; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin: workers sleep
  pool.parallel_for(6, [&](int64_t) { n++; });
  EXPECT_EQ(n.load(), 12);
}

// x[2, 3, 4] -> Relu -> Reshape [6, 4] -> Sigmoid -> Add(., Reshape(x)) -> Mul(., 2) ->
// Flatten -> y, plus a second output taken from the middle.
ir::Model chain_model() {
  ir::Model m;
  m.opset_imports.push_back({"", 17});
  ir::Graph& g = m.graph;
  const int x = g.add_value(
      "x", ir::TensorType(DataType::kFloat32, std::vector<ir::Dim>{ir::Dim::symbol("b"), 3, 4}));
  g.inputs.push_back(x);
  auto constant = [&](const char* name, Tensor t) {
    const int v = g.add_value(name);
    g.value(v).constant = std::move(t);
    g.initializers.push_back(v);
    return v;
  };
  const int shape = constant("shape", Tensor::from_vector<int64_t>({2}, {-1, 4}));
  const int two = constant("two", Tensor::scalar<float>(2.0f));
  auto node = [&](const char* op, std::vector<int> in, const char* out) {
    ir::Node n;
    n.name = out;
    n.op_type = op;
    n.inputs = std::move(in);
    const int o = g.add_value(out);
    n.outputs = {o};
    g.nodes.push_back(n);
    return o;
  };
  const int r = node("Relu", {x}, "r");
  const int rr = node("Reshape", {r, shape}, "rr");
  const int s = node("Sigmoid", {rr}, "s");
  const int xr = node("Reshape", {x, shape}, "xr");
  const int a = node("Add", {s, xr}, "a");
  const int mid = node("Mul", {a, two}, "mid");
  const int f = node("Flatten", {mid}, "f");
  const int y = node("Neg", {f}, "y");
  g.outputs = {y, mid};
  return m;
}

Tensor random_input(Shape shape, uint32_t seed) {
  Tensor t = Tensor::empty(DataType::kFloat32, shape);
  uint32_t state = seed;
  for (int64_t i = 0; i < t.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    t.data<float>()[i] = static_cast<float>(state >> 8) / 16777216.0f * 4.0f - 2.0f;
  }
  return t;
}

void expect_same(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].shape(), b[k].shape());
    for (int64_t i = 0; i < a[k].numel(); ++i)
      ASSERT_EQ(a[k].data<float>()[i], b[k].data<float>()[i]) << "output " << k << " at " << i;
  }
}

TEST(ArenaExecutor, MatchesPerTensorExecutionWithViewsAndInPlace) {
  SessionOptions fixed;
  fixed.dim_values = {{"b", 2}};
  auto arena = CompiledModel::compile(chain_model(), fixed);
  auto dynamic = CompiledModel::compile(chain_model(), SessionOptions{});
  ASSERT_TRUE(arena.is_ok()) << arena.status().message();
  ASSERT_TRUE(dynamic.is_ok()) << dynamic.status().message();
  EXPECT_TRUE((*arena)->uses_arena());
  EXPECT_FALSE((*dynamic)->uses_arena());
  // Reshape(r) is a view; Reshape(x) reads the caller's feed and Flatten(mid) a graph
  // output, which live outside the arena, so those two copy.
  EXPECT_EQ((*arena)->view_steps(), 1);
  EXPECT_GE((*arena)->in_place_steps(), 1);
  ASSERT_TRUE((*arena)->arena_bytes().has_value());
  EXPECT_LT(*(*arena)->arena_bytes(), *(*arena)->unplanned_bytes());

  Tensor x1 = random_input({2, 3, 4}, 1), x2 = random_input({2, 3, 4}, 2);
  auto want1 = (*dynamic)->run({{"x", x1}});
  auto want2 = (*dynamic)->run({{"x", x2}});
  auto got1 = (*arena)->run({{"x", x1}});
  ASSERT_TRUE(got1.is_ok()) << got1.status().message();
  const std::vector<Tensor> first = *got1;
  auto got2 = (*arena)->run({{"x", x2}});
  ASSERT_TRUE(got2.is_ok()) << got2.status().message();
  expect_same(*want2, *got2);
  // The first run's outputs belong to the caller: the second run did not write over them.
  expect_same(*want1, first);
  // The feed is untouched even though Relu's input is a graph input.
  expect_same({x1}, {random_input({2, 3, 4}, 1)});
}

TEST(ArenaExecutor, ProfilesEveryStep) {
  SessionOptions fixed;
  fixed.dim_values = {{"b", 2}};
  auto cm = CompiledModel::compile(chain_model(), fixed);
  ASSERT_TRUE(cm.is_ok());
  std::vector<double> steps;
  auto out = (*cm)->run({{"x", random_input({2, 3, 4}, 3)}}, &steps);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(steps.size(), (*cm)->layers().size());
  for (double s : steps) EXPECT_GE(s, 0.0);
}

TEST(ArenaExecutor, DefaultModelConcurrentRunsFromTheArena) {
  SessionOptions options;
  options.dim_values = {{"batch", 450}};
  options.num_threads = 2;
  auto session = Session::load(std::string(BRINK_SOURCE_DIR) + "/models/digits_cnn.onnx", options);
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  EXPECT_TRUE((*session)->compiled().uses_arena());
  SessionOptions reference_options;
  reference_options.optimization_level = 0;
  auto reference =
      Session::load(std::string(BRINK_SOURCE_DIR) + "/models/digits_cnn.onnx", reference_options);
  ASSERT_TRUE(reference.is_ok());
  auto data = npy::read_npz(std::string(BRINK_SOURCE_DIR) + "/models/digits_test.npz");
  ASSERT_TRUE(data.is_ok());
  const Tensor& images = (*data)[0].second;
  auto want = (*reference)->run({{"image", images}});
  ASSERT_TRUE(want.is_ok());
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 5; ++rep) {
        auto got = (*session)->run({{"image", images}});
        if (!got.is_ok()) {
          ++bad;
          continue;
        }
        const Tensor& a = (*got)[0];
        const Tensor& b = (*want)[0];
        for (int64_t i = 0; i < a.numel(); ++i)
          if (std::abs(a.data<float>()[i] - b.data<float>()[i]) >
              1e-4f * (1.0f + std::abs(b.data<float>()[i])))
            ++bad;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace brink
