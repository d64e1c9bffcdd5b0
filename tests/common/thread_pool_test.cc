// Thread pools under a resource limit: a thread the system refuses is an error value naming the
// cause, never std::system_error reaching std::terminate; counts outside 0..1024 are refused.
#include "common/thread_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/test_util.h"

namespace shardvec {
namespace {

using ::testing::HasSubstr;

// Room for a few thread stacks (8 MiB of address space each, plus a malloc arena), far fewer than
// the 1000 asked for.
constexpr int64_t kHeadroom = 256 << 20;

TEST(ThreadPoolTest, RunsEveryTaskOnItsThreads) {
  for (size_t threads : {1u, 3u}) {
    auto pool = ThreadPool::Create(threads, "the test");
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    EXPECT_EQ((*pool)->size(), threads);
    std::atomic<int> ran{0};
    std::vector<std::future<void>> done;
    for (int i = 0; i < 20; ++i) done.push_back((*pool)->Submit([&ran] { ++ran; }));
    for (auto& f : done) f.get();
    EXPECT_EQ(ran.load(), 20);
  }
}

TEST(ThreadPoolTest, ARefusedThreadIsAnErrorNotACrash) {
  if (testing::SanitizedBuild()) GTEST_SKIP() << "sanitizer shadow memory does not fit an address-space cap";
  const std::string outcome = testing::RunWithAddressSpaceCap(kHeadroom, [] {
    auto pool = ThreadPool::Create(1000, "the test's pool");
    if (pool.ok()) return std::string("1000 threads started under the cap");
    const std::string message = pool.status().ToString();
    if (pool.status().code() != StatusCode::kUnavailable) return "unexpected code: " + message;
    for (const char* part : {"cannot start a thread for the test's pool", "1000 threads asked for", "started"}) {
      if (message.find(part) == std::string::npos) return "missing '" + std::string(part) + "': " + message;
    }
    // The limit is not sticky: a pool that fits still starts.
    auto small = ThreadPool::Create(2, "the test's small pool");
    if (!small.ok()) return "a 2-thread pool failed: " + small.status().ToString();
    return std::string();
  });
  EXPECT_EQ(outcome, "");
}

TEST(ThreadPoolTest, StartThreadReportsTheRefusal) {
  if (testing::SanitizedBuild()) GTEST_SKIP() << "sanitizer shadow memory does not fit an address-space cap";
  const std::string outcome = testing::RunWithAddressSpaceCap(kHeadroom, [] {
    std::vector<std::thread> threads;
    std::atomic<bool> stop{false};
    Status refused;
    for (int i = 0; i < 1000 && refused.ok(); ++i) {
      std::thread t;
      refused = StartThread(&t, [&stop] { while (!stop.load()) std::this_thread::yield(); }, "a test thread");
      if (refused.ok()) threads.push_back(std::move(t));
    }
    stop = true;
    for (auto& t : threads) t.join();
    if (refused.ok()) return std::string("1000 threads started under the cap");
    if (refused.message().find("cannot start a thread for a test thread") == std::string::npos) {
      return "unexpected message: " + refused.ToString();
    }
    return std::string();
  });
  EXPECT_EQ(outcome, "");
}

TEST(ThreadPoolTest, CountsOutsideTheBoundAreRefusedNamingTheValue) {
  EXPECT_TRUE(CheckThreadCount("max_workers", 0).ok());
  EXPECT_TRUE(CheckThreadCount("max_workers", kMaxPoolThreads).ok());
  for (int64_t bad : {int64_t{-5}, int64_t{-1}, kMaxPoolThreads + 1, int64_t{1} << 40}) {
    Status st = CheckThreadCount("max_workers", bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("max_workers"));
    EXPECT_THAT(st.message(), HasSubstr("got " + std::to_string(bad)));
  }
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

TEST(ThreadPoolRunAllTest, RunsEveryTaskAndReturnsAnError) {
  auto pool = ThreadPool::Create(2, "test");
  ASSERT_TRUE(pool.ok());
  std::atomic<int> ran{0};
  std::vector<std::function<Status()>> tasks;
  for (int i = 0; i < 50; ++i) {
    tasks.push_back([&ran, i]() -> Status {
      ++ran;
      return i == 17 ? Status::Corruption("task 17") : Status::OK();
    });
  }
  const Status st = (*pool)->RunAll(std::move(tasks));
  EXPECT_EQ(ran.load(), 50);
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_EQ(st.message(), "task 17");
  EXPECT_TRUE((*pool)->RunAll({}).ok());
}

// One more task is running: counts it in `running` and keeps the most seen at once in `most`.
void EnterCounted(std::atomic<int>& running, std::atomic<int>& most) {
  const int now = ++running;
  for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
  }
}

TEST(ThreadPoolRunAllTest, TheCallerWorksAndAtMostSizeThreadsDo) {
  for (const size_t size : {size_t{1}, size_t{3}}) {
    auto pool = ThreadPool::Create(size, "test");
    ASSERT_TRUE(pool.ok());
    std::mutex mu;
    std::set<std::thread::id> threads;
    std::atomic<int> running{0}, most{0};
    std::vector<std::function<Status()>> tasks;
    for (int i = 0; i < 200; ++i) {
      tasks.push_back([&]() -> Status {
        EnterCounted(running, most);
        {
          std::lock_guard<std::mutex> lock(mu);
          threads.insert(std::this_thread::get_id());
        }
        std::this_thread::yield();
        --running;
        return Status::OK();
      });
    }
    ASSERT_TRUE((*pool)->RunAll(std::move(tasks)).ok());
    EXPECT_LE(most.load(), static_cast<int>(size)) << "pool of " << size;
    EXPECT_LE(threads.size(), size) << "pool of " << size;
    if (size == 1) {
      // A pool of one: every task on the caller.
      ASSERT_EQ(threads.size(), 1u);
      EXPECT_EQ(*threads.begin(), std::this_thread::get_id());
    }
  }
}

TEST(ThreadPoolRunAllTest, CallersWorkingAtOnceLeaveThePoolFewerThreads) {
  auto pool = ThreadPool::Create(3, "test");
  ASSERT_TRUE(pool.ok());
  // Tasks that each wait until `want` of them run at once (or give up after a while): they show how
  // many threads RunAll used.
  const auto widest = [&](int want) {
    std::atomic<int> running{0}, most{0};
    std::vector<std::function<Status()>> tasks;
    for (int i = 0; i < 6; ++i) {
      tasks.push_back([&]() -> Status {
        EnterCounted(running, most);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (most.load() < want && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        --running;
        return Status::OK();
      });
    }
    EXPECT_TRUE((*pool)->RunAll(std::move(tasks)).ok());
    return most.load();
  };
  EXPECT_EQ(widest(3), 3);  // alone: the caller and two of the pool's threads
  {
    ThreadPool::Caller other(**pool);  // as if a second search were running on another thread
    ThreadPool::Caller self(**pool);
    EXPECT_EQ(widest(2), 2);  // two callers: one helper beside this one
    ThreadPool::Caller third(**pool);
    EXPECT_EQ(widest(2), 1);  // three (the pool's size): the caller alone
  }
  EXPECT_EQ(widest(3), 3);
}

TEST(ThreadPoolRunAllTest, AThrownExceptionReachesTheCallerAfterEveryTask) {
  auto pool = ThreadPool::Create(2, "test");
  ASSERT_TRUE(pool.ok());
  std::atomic<int> ran{0};
  std::vector<std::function<Status()>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back([&ran, i]() -> Status {
      ++ran;
      if (i == 3) throw std::runtime_error("task 3 threw");
      return Status::OK();
    });
  }
  EXPECT_THROW((*pool)->RunAll(std::move(tasks)), std::runtime_error);
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace shardvec
