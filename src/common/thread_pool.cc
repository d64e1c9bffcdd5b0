#include "common/thread_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <new>
#include <system_error>

#include "common/cpu_count.h"

namespace shardvec {

namespace {

Status ThreadRefused(std::string_view what, std::string_view reason) {
  return Status::Unavailable(fmt::format(
      "cannot start a thread for {}: {} (the process's thread or memory limit, e.g. ulimit -u or "
      "ulimit -v, is reached; ask for fewer threads or raise the limit)",
      what, reason)).WithKind(ErrorKind::kThreadLimit);
}

}  // namespace

Status StartThread(std::thread* out, std::function<void()> fn, std::string_view what) {
  try {
    *out = std::thread(std::move(fn));
  } catch (const std::system_error& e) {
    return ThreadRefused(what, e.code().message());
  } catch (const std::bad_alloc&) {
    return ThreadRefused(what, "out of memory");
  }
  return Status::OK();
}

Status CheckThreadCount(std::string_view field, int64_t requested) {
  if (requested >= 0 && requested <= kMaxPoolThreads) return Status::OK();
  return Status::InvalidArgument(fmt::format("{} must be in 0..{} (0 = one per usable CPU), got {}", field,
                                             kMaxPoolThreads, requested));
}

Result<std::unique_ptr<ThreadPool>> ThreadPool::Create(size_t num_threads, std::string_view what) {
  num_threads = std::max<size_t>(1, num_threads);
  std::unique_ptr<ThreadPool> pool(new ThreadPool());
  pool->workers_.reserve(num_threads);
  for (size_t i = 0; i < num_threads; ++i) {
    std::thread worker;
    Status st = StartThread(&worker, [raw = pool.get()] { raw->WorkerLoop(); }, what);
    if (!st.ok()) {
      const size_t started = pool->workers_.size();
      pool.reset();  // stops and joins the workers already started
      return st.WithMessage(fmt::format("{}; {} threads asked for, {} started", st.message(), num_threads, started));
    }
    pool->workers_.push_back(std::move(worker));
  }
  return pool;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

// Tasks that several threads take in turn; the last to finish one wakes the caller.
struct TaskGroup {
  explicit TaskGroup(std::vector<std::function<Status()>> t) : tasks(std::move(t)) {}

  void Drain() {
    for (size_t i = next.fetch_add(1); i < tasks.size(); i = next.fetch_add(1)) {
      Status st;
      std::exception_ptr thrown;
      try {
        st = tasks[i]();
      } catch (...) {
        thrown = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (first.ok() && !st.ok()) first = std::move(st);
      if (thrown && !exception) exception = thrown;
      if (++done == tasks.size()) cv.notify_all();
    }
  }

  std::vector<std::function<Status()>> tasks;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  Status first;
  std::exception_ptr exception;
};

}  // namespace

Status ThreadPool::RunAll(std::vector<std::function<Status()>> tasks) {
  if (tasks.empty()) return Status::OK();
  auto group = std::make_shared<TaskGroup>(std::move(tasks));
  // Callers working at once (Caller scopes) each take a CPU: the pool's threads fill only the CPUs
  // they leave, and with size() callers or more (a busy server) every caller runs its tasks alone,
  // which spares each task a hand-off to a thread that would only wait for a CPU.
  const size_t callers = std::max<size_t>(1, callers_.load(std::memory_order_relaxed));
  const size_t working = std::min(size(), group->tasks.size());
  const size_t helpers = working > callers ? working - callers : 0;
  // A helper that starts after the caller took the last task finds none and returns at once; the
  // group lives on in it, so nothing it touches is gone.
  for (size_t i = 0; i < helpers; ++i) Submit([group] { group->Drain(); });
  group->Drain();
  std::unique_lock<std::mutex> lock(group->mu);
  group->cv.wait(lock, [&] { return group->done == group->tasks.size(); });
  if (group->exception) std::rethrow_exception(group->exception);
  return group->first;
}

size_t ThreadPool::DefaultSize(long requested) {
  if (requested > 0) return static_cast<size_t>(requested);
  return static_cast<size_t>(UsableCpus());
}

void ThreadPool::WorkerLoop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop();
    }
    job();
  }
}

}  // namespace shardvec
