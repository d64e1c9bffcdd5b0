#include "store/s3/retry_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

namespace shardvec {
namespace {

constexpr int kSamples = 400;

std::vector<double> Sample(const RetryPolicy& policy, int retry) {
  std::vector<double> out;
  for (int i = 0; i < kSamples; ++i) out.push_back(policy.DelaySeconds(retry));
  return out;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

TEST(RetryPolicyTest, DefaultsAreSane) {
  RetryPolicy policy;
  EXPECT_GE(policy.max_attempts, 2);
  EXPECT_GT(policy.max_total_seconds, 0);
  EXPECT_GT(policy.base_delay_seconds, 0);
  EXPECT_GE(policy.max_delay_seconds, policy.base_delay_seconds);
}

TEST(RetryPolicyTest, DelayStaysWithinHalfToFullCeiling) {
  for (RetryPolicy policy : {RetryPolicy{}, RetryPolicy{6, 60, 1.0, 3.0}, RetryPolicy{6, 60, 0.25, 100.0}}) {
    for (int retry = 1; retry <= 12; ++retry) {
      const double ceiling =
          std::min(policy.max_delay_seconds, policy.base_delay_seconds * std::pow(2.0, retry - 1));
      for (double d : Sample(policy, retry)) {
        ASSERT_GE(d, ceiling / 2) << "retry " << retry << " base " << policy.base_delay_seconds;
        ASSERT_LE(d, ceiling) << "retry " << retry << " base " << policy.base_delay_seconds;
      }
    }
  }
}

TEST(RetryPolicyTest, DelayNeverExceedsTheCap) {
  RetryPolicy policy;  // 0.1 s doubling, capped at 10 s
  for (int retry = 1; retry <= 12; ++retry) {
    for (double d : Sample(policy, retry)) ASSERT_LE(d, policy.max_delay_seconds) << "retry " << retry;
  }
  // Far past the cap (2^99 * base would overflow any sane wait).
  for (int retry : {30, 64, 100}) {
    double d = policy.DelaySeconds(retry);
    EXPECT_GE(d, policy.max_delay_seconds / 2) << retry;
    EXPECT_LE(d, policy.max_delay_seconds) << retry;
  }
}

TEST(RetryPolicyTest, DelayDoublesUntilTheCap) {
  RetryPolicy policy;  // ceilings 0.1, 0.2, 0.4, ... 6.4, then 10
  std::vector<double> means;
  for (int retry = 1; retry <= 12; ++retry) means.push_back(Mean(Sample(policy, retry)));
  // Uniform on [c/2, c] has mean 0.75 c; the sample mean of 400 draws lies well within 10% of it.
  for (int retry = 1; retry <= 12; ++retry) {
    double ceiling = std::min(10.0, 0.1 * std::pow(2.0, retry - 1));
    EXPECT_NEAR(means[retry - 1], 0.75 * ceiling, 0.075 * ceiling) << "retry " << retry;
  }
  for (int retry = 2; retry <= 7; ++retry) {
    EXPECT_GT(means[retry - 1], 1.5 * means[retry - 2]) << "retry " << retry << " should roughly double";
  }
  EXPECT_GT(means[7], means[6]);  // 6.4 -> capped 10
  for (int retry = 9; retry <= 12; ++retry) {
    EXPECT_NEAR(means[retry - 1], 7.5, 0.75) << "retry " << retry << " is capped";
  }
}

TEST(RetryPolicyTest, DelayIsJittered) {
  RetryPolicy policy;
  for (int retry : {1, 4, 10}) {
    std::vector<double> samples = Sample(policy, retry);
    std::set<double> distinct(samples.begin(), samples.end());
    EXPECT_GT(distinct.size(), samples.size() / 2) << "retry " << retry;
    auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
    double ceiling = std::min(10.0, 0.1 * std::pow(2.0, retry - 1));
    // Spread over most of [c/2, c], not clustered at one point.
    EXPECT_LT(*lo, 0.6 * ceiling) << "retry " << retry;
    EXPECT_GT(*hi, 0.9 * ceiling) << "retry " << retry;
  }
}

TEST(RetryPolicyTest, ServerErrorsAndThrottlingAreRetryable) {
  for (long status : {500L, 502L, 503L, 504L, 429L}) {
    EXPECT_TRUE(IsRetryableS3Status(status, "")) << status;
  }
  EXPECT_TRUE(IsRetryableS3Status(500, "InternalError"));
  EXPECT_TRUE(IsRetryableS3Status(503, "SlowDown"));
  EXPECT_TRUE(IsRetryableS3Status(503, "ServiceUnavailable"));
}

TEST(RetryPolicyTest, RetryableCodesOnClientStatuses) {
  for (long status : {400L, 409L}) {
    for (const char* code : {"SlowDown", "RequestTimeout", "ConditionalRequestConflict", "Throttling"}) {
      EXPECT_TRUE(IsRetryableS3Status(status, code)) << status << " " << code;
    }
  }
}

TEST(RetryPolicyTest, OrdinaryClientErrorsAreNotRetryable) {
  struct Case {
    long status;
    const char* code;
  };
  for (Case c : {Case{400, "InvalidArgument"}, Case{400, ""}, Case{400, "InvalidRequest"},
                 Case{403, "AccessDenied"}, Case{403, "SignatureDoesNotMatch"}, Case{403, ""},
                 Case{404, "NoSuchKey"}, Case{404, "NoSuchBucket"}, Case{404, ""},
                 Case{412, "PreconditionFailed"}, Case{412, ""}, Case{409, "BucketAlreadyExists"},
                 Case{416, "InvalidRange"}}) {
    EXPECT_FALSE(IsRetryableS3Status(c.status, c.code)) << c.status << " " << c.code;
  }
  // Codes compare exactly: a look-alike is not a throttle.
  EXPECT_FALSE(IsRetryableS3Status(400, "slowdown"));
  EXPECT_FALSE(IsRetryableS3Status(400, "SlowDownNow"));
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

// 501 is what S3-compatible servers answer for a feature they lack: retrying cannot help.
TEST(RetryPolicyTest, NotImplementedIsNotRetried) {
  EXPECT_FALSE(IsRetryableS3Status(501, "NotImplemented"));
  EXPECT_FALSE(IsRetryableS3Status(505, ""));
}

}  // namespace
}  // namespace shardvec
