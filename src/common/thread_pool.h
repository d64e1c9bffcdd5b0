// A fixed-size thread pool. Submit() returns a future; the destructor drains queued work.
// Threads are started through StartThread, so a thread the system refuses (a process or memory
// limit: `ulimit -u`, `ulimit -v`, a container's pids limit) is an error value, never an exception
// that ends the process.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <string_view>
#include <thread>
#include <vector>

#include "shardvec/limits.h"  // kMaxPoolThreads
#include "shardvec/status.h"

namespace shardvec {

// Starts `fn` on a new thread in `*out`. When the system refuses the thread the error (kUnavailable,
// worth retrying with fewer threads or a higher limit) names `what` and the system's reason.
Status StartThread(std::thread* out, std::function<void()> fn, std::string_view what);

// `requested` threads for `field` unless it is outside 0..kMaxPoolThreads (0 = the default):
// InvalidArgument naming the field and the value.
Status CheckThreadCount(std::string_view field, int64_t requested);

class ThreadPool {
 public:
  // Starts max(1, num_threads) workers. All or none: when the system refuses one, the workers
  // already started are stopped and the error says how many were asked for and how many started,
  // so the caller can ask for fewer (a pool that silently ran with fewer threads than asked for
  // would ignore the caller's setting).
  static Result<std::unique_ptr<ThreadPool>> Create(size_t num_threads, std::string_view what);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }

  template <typename F>
  auto Submit(F&& fn) -> std::future<decltype(fn())> {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    std::future<R> future = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace([task] { (*task)(); });
    }
    cv_.notify_one();
    return future;
  }

  // Threads to use when the caller asked for `requested` (0 = one per CPU this process may use).
  static size_t DefaultSize(long requested);

  // Runs every task and returns the first error (in task order of finishing), with the calling thread
  // among the workers: it and up to size() − 1 of the pool's threads take tasks in turn until none is
  // left, so at most size() threads work, a lone task or a pool of one runs on the caller alone, and
  // the caller never waits for a busy pool to start a task it could run itself. Callers working at
  // once (in a Caller scope) count among the size() threads: with k ≥ 1 of them a call takes up to
  // size() − k helpers, none once k ≥ size(). An exception a task throws is rethrown here once every
  // task is done.
  Status RunAll(std::vector<std::function<Status()>> tasks);

  // While one lives, the thread that made it counts as working for the pool (a whole search, the
  // RunAll calls it makes and the work between them), so concurrent callers leave fewer CPUs to
  // the pool's threads.
  class Caller {
   public:
    explicit Caller(ThreadPool& pool) : pool_(pool) { pool_.callers_.fetch_add(1, std::memory_order_relaxed); }
    ~Caller() { pool_.callers_.fetch_sub(1, std::memory_order_relaxed); }
    Caller(const Caller&) = delete;
    Caller& operator=(const Caller&) = delete;

   private:
    ThreadPool& pool_;
  };

 private:
  ThreadPool() = default;
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::queue<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::atomic<size_t> callers_{0};  // live Caller scopes
};

}  // namespace shardvec
