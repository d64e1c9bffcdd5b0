// Thread pools size themselves by the CPUs the process may use, not by the machine's CPUs.
#include "common/cpu_count.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

#include "common/thread_pool.h"

namespace shardvec {
namespace {

TEST(CpusFromCgroupQuota, RoundsAQuotaUpToWholeCpus) {
  EXPECT_EQ(CpusFromCgroupQuota("200000 100000"), 2);
  EXPECT_EQ(CpusFromCgroupQuota("150000 100000"), 2);
  EXPECT_EQ(CpusFromCgroupQuota("50000 100000"), 1);
}

TEST(CpusFromCgroupQuota, NoLimitOrUnreadableTextIsNoCap) {
  EXPECT_EQ(CpusFromCgroupQuota("max 100000"), std::nullopt);
  EXPECT_EQ(CpusFromCgroupQuota("max"), std::nullopt);
  EXPECT_EQ(CpusFromCgroupQuota(""), std::nullopt);
  EXPECT_EQ(CpusFromCgroupQuota("0 100000"), std::nullopt);
  EXPECT_EQ(CpusFromCgroupQuota("100000 0"), std::nullopt);
  EXPECT_EQ(CpusFromCgroupQuota("12x 100000"), std::nullopt);
}

TEST(UsableCpus, NeverMoreThanTheAffinityMask) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_GE(UsableCpus(), 1);
  EXPECT_LE(UsableCpus(), CPU_COUNT(&set));
}

// A thread pinned to one CPU (as `taskset -c 0` pins a process) gets one-thread pools.
TEST(UsableCpus, FollowsAnAffinityMaskOfOneCpu) {
  int usable = 0;
  size_t pool = 0;
  std::thread pinned([&] {
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    int first = 0;
    while (!CPU_ISSET(first, &set)) ++first;
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0);
    usable = UsableCpus();
    pool = ThreadPool::DefaultSize(0);
  });
  pinned.join();
  EXPECT_EQ(usable, 1);
  EXPECT_EQ(pool, 1u);
  EXPECT_EQ(ThreadPool::DefaultSize(3), 3u);  // an explicit count is kept
}

}  // namespace
}  // namespace shardvec
