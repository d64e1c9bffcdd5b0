// TokenBucket on a simulated clock: the reference's bucket semantics (start full, replenish by
// elapsed time, wait for the deficit), a rate below one per second still serving one token, a
// request above the capacity refused instead of waiting forever, and the throttled/denied events.
#include "shardvec/rate_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace shardvec {
namespace {

using ::testing::HasSubstr;

// Time moves only when the bucket sleeps (or the test advances it).
class FakeClock final : public RateClock {
 public:
  double NowSeconds() override { return now; }
  void SleepSeconds(double seconds) override {
    sleeps.push_back(seconds);
    now += seconds;
  }
  double now = 100.0;
  std::vector<double> sleeps;
};

class RecordingSink final : public MetricsSink {
 public:
  void Emit(std::string_view event, const MetricPayload& payload) override {
    events.emplace_back(event);
    payloads.push_back(payload);
  }
  std::vector<std::string> events;
  std::vector<MetricPayload> payloads;
};

TEST(TokenBucketTest, StartsFullThenServesRatePerSecond) {
  auto clock = std::make_shared<FakeClock>();
  auto bucket = TokenBucket::Create(2.0, "rate", clock);
  ASSERT_TRUE(bucket.ok()) << bucket.status().ToString();
  // Two tokens at the start, no waiting.
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  EXPECT_TRUE(clock->sleeps.empty());
  // The third waits half a second (2 per second), the fourth another half.
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_EQ(clock->sleeps.size(), 2u);
  EXPECT_DOUBLE_EQ(clock->sleeps[0], 0.5);
  EXPECT_DOUBLE_EQ(clock->sleeps[1], 0.5);
  EXPECT_DOUBLE_EQ(clock->now, 101.0);
}

TEST(TokenBucketTest, TryAcquireNeverBlocksAndReportsTheDeficit) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingSink>();
  auto bucket = TokenBucket::Create(4.0, "rate", clock, sink, "ops");
  ASSERT_TRUE(bucket.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*bucket)->TryAcquire(1)->acquired);
  auto denied = (*bucket)->TryAcquire(1);
  ASSERT_TRUE(denied.ok());
  EXPECT_FALSE(denied->acquired);
  EXPECT_DOUBLE_EQ(denied->deficit_seconds, 0.25);
  EXPECT_TRUE(clock->sleeps.empty());
  ASSERT_EQ(sink->events, std::vector<std::string>{"rate_limiter.denied"});
  EXPECT_EQ(std::get<double>(sink->payloads[0].at("deficit_seconds")), 0.25);
  EXPECT_EQ(std::get<std::string>(sink->payloads[0].at("limiter_type")), "ops");
  // Time replenishes it, never above the capacity.
  clock->now += 10;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE((*bucket)->TryAcquire(1)->acquired);
  EXPECT_FALSE((*bucket)->TryAcquire(1)->acquired);
}

TEST(TokenBucketTest, AWaitEmitsThrottledWithTheWait) {
  auto clock = std::make_shared<FakeClock>();
  auto sink = std::make_shared<RecordingSink>();
  auto bucket = TokenBucket::Create(1.0, "rate", clock, sink);
  ASSERT_TRUE(bucket.ok());
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  EXPECT_TRUE(sink->events.empty());
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_EQ(sink->events, std::vector<std::string>{"rate_limiter.throttled"});
  EXPECT_EQ(std::get<double>(sink->payloads[0].at("wait_seconds")), 1.0);
}

TEST(TokenBucketTest, ARateBelowOnePerSecondServesOneTokenAtATime) {
  // The reference's bucket never holds a whole token at rate 0.5 and waits forever.
  auto clock = std::make_shared<FakeClock>();
  auto bucket = TokenBucket::Create(0.5, "rate", clock);
  ASSERT_TRUE(bucket.ok());
  EXPECT_DOUBLE_EQ((*bucket)->capacity(), 1.0);
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_TRUE((*bucket)->Acquire(1).ok());
  ASSERT_EQ(clock->sleeps.size(), 1u);
  EXPECT_DOUBLE_EQ(clock->sleeps[0], 2.0);
}

TEST(TokenBucketTest, MoreTokensThanTheCapacityAreRefusedNotAwaitedForever) {
  auto clock = std::make_shared<FakeClock>();
  auto bucket = TokenBucket::Create(3.0, "rate", clock);
  ASSERT_TRUE(bucket.ok());
  Status st = (*bucket)->Acquire(4);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tokens=4"));
  EXPECT_THAT(st.message(), HasSubstr("at most 3"));
  EXPECT_THAT(st.message(), HasSubstr("rate=3"));
  EXPECT_TRUE(clock->sleeps.empty());
  EXPECT_EQ((*bucket)->TryAcquire(4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*bucket)->Acquire(-1).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*bucket)->Acquire(3).ok());  // exactly the capacity is fine
}

TEST(TokenBucketTest, BadRatesAreRefusedNamingTheField) {
  for (double rate : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    auto bucket = TokenBucket::Create(rate, "--rate-limit");
    ASSERT_FALSE(bucket.ok()) << rate;
    EXPECT_EQ(bucket.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(bucket.status().message(), HasSubstr("--rate-limit must be a finite number > 0"));
  }
}

TEST(TokenBucketTest, TheRealClockServesTheFirstTokensAtOnce) {
  auto bucket = TokenBucket::Create(1000.0);
  ASSERT_TRUE(bucket.ok());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE((*bucket)->TryAcquire(1)->acquired);
}

}  // namespace
}  // namespace shardvec
