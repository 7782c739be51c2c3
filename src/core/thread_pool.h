// A thread pool built for inference: one parallel loop at a time, the calling thread works
// too, and idle workers spin briefly before they sleep.
//
// Operators run back to back with gaps of microseconds, so waking a sleeping thread for
// each one (tens of microseconds through the kernel) would cost more than many small
// layers take. Workers therefore spin on the job counter for a short while after each job
// and only then block (std::atomic::wait, a futex on Linux).
//
// No oversubscription: a pool runs one loop at a time. A loop started while the pool is
// busy (a second Session::run on another thread, or a loop started from inside a task)
// runs on the calling thread alone instead of queueing or adding threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace brink {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 means no workers, everything inline.
  // 0 means default_num_threads().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task) for every task in [0, num_tasks), spread over the pool's threads, and
  // returns when all are done. Thread i of n (the caller is 0) starts on the i-th contiguous
  // share of the tasks, so the same thread touches the same part of a tensor in every loop
  // and every layer (its cache lines stay in its core's cache instead of moving between
  // cores); a thread that is done takes what is left of the others' shares, so a worker the
  // OS has not scheduled delays nothing. Give each task work enough to amortize claiming it
  // (a few microseconds at least).
  template <typename Fn>
  void parallel_for(int64_t num_tasks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run_loop(
        num_tasks, [](void* f, int64_t task) { (*static_cast<F*>(f))(task); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // The thread count `--threads 0` means: the number of physical cores (hyperthreads share
  // the FMA units, which dense kernels saturate already).
  static int default_num_threads();

 private:
  using TaskFn = void (*)(void* fn, int64_t task);
  void run_loop(int64_t num_tasks, TaskFn call, void* fn);
  void worker_main(int index);
  void work_on_current_job(int index);

  std::vector<std::thread> workers_;
  std::atomic<bool> busy_{false};
  std::atomic<bool> stop_{false};
  // The current job. Published by bumping generation_ (release) after these are set.
  TaskFn job_call_ = nullptr;
  void* job_fn_ = nullptr;
  // One share of the current job per thread: tasks [next, end) not claimed yet.
  struct alignas(64) Share {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  std::unique_ptr<Share[]> shares_;
  std::atomic<uint32_t> generation_{0};
  // A job is open while its caller still hands out tasks. Workers join it (joined_) only
  // while it is open, and the caller waits only for those that joined: a worker that the
  // OS has not scheduled (cores busy with other processes) never holds a loop up.
  std::atomic<bool> open_{false};
  std::atomic<int> joined_{0};
  std::atomic<int> sleeping_{0};  // workers blocked in generation_.wait
};

// Runs fn(task) for task in [0, num_tasks) on `pool`, or inline when there is no pool.
template <typename Fn>
void parallel_for(ThreadPool* pool, int64_t num_tasks, Fn&& fn) {
  if (pool == nullptr || pool->num_threads() == 1 || num_tasks <= 1) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(t);
    return;
  }
  pool->parallel_for(num_tasks, std::forward<Fn>(fn));
}

}  // namespace brink
