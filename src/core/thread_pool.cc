#include "core/thread_pool.h"

#include <chrono>

#include "core/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace brink {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// How long an idle worker polls for the next job before it sleeps. Long enough to bridge
// the gap between two operators of one inference, short enough not to burn a core for
// long once the inference is over.
constexpr auto kSpinTime = std::chrono::microseconds(200);

}  // namespace

int ThreadPool::default_num_threads() {
  int n = cpu_features().physical_cores;
  return n < 1 ? 1 : n;
}

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = default_num_threads();
  shares_ = std::make_unique<Share[]>(static_cast<size_t>(num_threads));
  workers_.reserve(static_cast<size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current_job(int index) {
  // Its own share first, then what is left of the others', starting with the next thread's.
  const int n = num_threads();
  for (int k = 0; k < n; ++k) {
    Share& share = shares_[static_cast<size_t>((index + k) % n)];
    for (;;) {
      const int64_t task = share.next.fetch_add(1, std::memory_order_relaxed);
      if (task >= share.end) break;
      job_call_(job_fn_, task);
    }
  }
}

void ThreadPool::worker_main(int index) {
  // The generation a worker starts from is the constructor's (0), not what it reads
  // when it first runs: a loop started before this thread got scheduled would else be missed
  // and its caller would wait for this worker forever.
  uint32_t seen = 0;
  for (;;) {
    uint32_t now = generation_.load(std::memory_order_acquire);
    if (now == seen) {
      auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
      int polls = 0;
      while ((now = generation_.load(std::memory_order_acquire)) == seen) {
        cpu_relax();
        if (++polls % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
          // seq_cst on both sides (here and in run_loop) so that either the caller sees
          // this worker asleep and notifies, or this wait sees the new generation.
          sleeping_.fetch_add(1);
          generation_.wait(seen);
          sleeping_.fetch_sub(1);
          spin_until = std::chrono::steady_clock::now() + kSpinTime;
        }
      }
    }
    seen = now;
    if (stop_.load(std::memory_order_acquire)) return;
    // Join, then look whether a job is open (seq_cst both): either the caller's close
    // comes after our join and it waits for us, or we see no open job and leave. An open
    // job may already be a newer one than the generation seen; its fields were written
    // before it opened, so working on it is just as right.
    joined_.fetch_add(1);
    if (open_.load()) work_on_current_job(index);
    joined_.fetch_sub(1);
  }
}

void ThreadPool::run_loop(int64_t num_tasks, TaskFn call, void* fn) {
  if (num_tasks <= 0) return;
  bool expected = false;
  if (workers_.empty() || num_tasks == 1 ||
      !busy_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    for (int64_t t = 0; t < num_tasks; ++t) call(fn, t);
    return;
  }
  job_call_ = call;
  job_fn_ = fn;
  const int n = num_threads();
  for (int i = 0; i < n; ++i) {
    Share& share = shares_[static_cast<size_t>(i)];
    share.next.store(num_tasks * i / n, std::memory_order_relaxed);
    share.end = num_tasks * (i + 1) / n;
  }
  open_.store(true);
  generation_.fetch_add(1);
  if (sleeping_.load() > 0) generation_.notify_all();
  work_on_current_job(0);
  // All tasks are claimed; close the job and wait for the workers still running one.
  open_.store(false);
  while (joined_.load() > 0) cpu_relax();
  busy_.store(false, std::memory_order_release);
}

}  // namespace brink
