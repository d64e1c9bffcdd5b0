// When and how long to wait before trying an S3 request again: exponential backoff with jitter,
// bounded in attempts and in total time.
#pragma once

#include <chrono>
#include <string_view>

namespace shardvec {

struct RetryPolicy {
  int max_attempts = 6;            // first try included
  double max_total_seconds = 60;   // no retry starts after this much time since the first try
  double base_delay_seconds = 0.1;
  double max_delay_seconds = 10;

  // The wait before retry number `retry` (1 = the first retry): a random value in [d/2, d] with
  // d = min(max_delay, base * 2^(retry-1)), so concurrent clients spread out.
  double DelaySeconds(int retry) const;
};

// Whether an S3 answer is worth trying again: 500/502/503/504, throttling (429, SlowDown, Throttling…), request
// timeouts and conditional-write races; never other 4xx.
bool IsRetryableS3Status(long http_status, std::string_view s3_code);

}  // namespace shardvec
