#include "store/s3/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace shardvec {

double RetryPolicy::DelaySeconds(int retry) const {
  double ceiling = std::min(max_delay_seconds, base_delay_seconds * std::pow(2.0, std::max(0, retry - 1)));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(ceiling / 2, ceiling);
  return jitter(rng);
}

bool IsRetryableS3Status(long http_status, std::string_view s3_code) {
  // Not 501: S3-compatible servers answer it for features they lack (e.g. conditional writes).
  if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504 ||
      http_status == 429) {
    return true;
  }
  static constexpr std::string_view kRetryableCodes[] = {
      "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException",
      "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
      "ConditionalRequestConflict",  // S3: another conditional write to this key is in flight
  };
  return std::find(std::begin(kRetryableCodes), std::end(kRetryableCodes), s3_code) != std::end(kRetryableCodes);
}

}  // namespace shardvec
