// TokenBucket: replenish by elapsed time, compare, take; a blocked Acquire sleeps outside the lock.
#include "shardvec/rate_limit.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "metrics/emit.h"

namespace shardvec {
namespace {

class SteadyClock final : public RateClock {
 public:
  double NowSeconds() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  void SleepSeconds(double seconds) override { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }
};

}  // namespace

std::shared_ptr<RateClock> SteadyRateClock() {
  static const std::shared_ptr<RateClock> clock = std::make_shared<SteadyClock>();
  return clock;
}

Result<std::unique_ptr<TokenBucket>> TokenBucket::Create(double rate, std::string_view field,
                                                         std::shared_ptr<RateClock> clock,
                                                         std::shared_ptr<MetricsSink> metrics,
                                                         std::string limiter_type) {
  if (!std::isfinite(rate) || rate <= 0) {
    return Status::InvalidArgument(fmt::format("{} must be a finite number > 0 (per second), got {}", field, rate));
  }
  if (!clock) clock = SteadyRateClock();
  return std::unique_ptr<TokenBucket>(new TokenBucket(rate, std::move(clock), std::move(metrics), std::move(limiter_type)));
}

TokenBucket::TokenBucket(double rate, std::shared_ptr<RateClock> clock, std::shared_ptr<MetricsSink> metrics,
                         std::string limiter_type)
    : rate_(rate),
      capacity_(std::max(rate, 1.0)),
      clock_(std::move(clock)),
      metrics_(std::move(metrics)),
      limiter_type_(std::move(limiter_type)),
      tokens_(capacity_),
      last_(clock_->NowSeconds()) {}

Status TokenBucket::CheckTokens(int64_t tokens) const {
  if (tokens < 0) return Status::InvalidArgument(fmt::format("tokens must be >= 0, got {}", tokens));
  if (static_cast<double>(tokens) > capacity_) {
    return Status::InvalidArgument(fmt::format(
        "tokens={} can never be acquired: the bucket holds at most {} (rate={} per second, capacity max(rate, 1))",
        tokens, capacity_, rate_));
  }
  return Status::OK();
}

TokenAcquire TokenBucket::Take(double tokens) {
  const double now = clock_->NowSeconds();
  tokens_ = std::min(capacity_, tokens_ + std::max(0.0, now - last_) * rate_);
  last_ = now;
  if (tokens_ >= tokens) {
    tokens_ -= tokens;
    return {true, 0};
  }
  return {false, (tokens - tokens_) / rate_};
}

void TokenBucket::Emit(std::string_view event, std::string_view seconds_key, double seconds) const {
  if (metrics_) EmitMetric(*metrics_, event, {{std::string(seconds_key), seconds}, {"limiter_type", limiter_type_}});
}

Result<TokenAcquire> TokenBucket::TryAcquire(int64_t tokens) {
  if (Status st = CheckTokens(tokens); !st.ok()) return st;
  TokenAcquire result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    result = Take(static_cast<double>(tokens));
  }
  if (!result.acquired) Emit(metric_events::kRateLimiterDenied, "deficit_seconds", result.deficit_seconds);
  return result;
}

Status TokenBucket::Acquire(int64_t tokens) {
  if (Status st = CheckTokens(tokens); !st.ok()) return st;
  for (;;) {
    TokenAcquire result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      result = Take(static_cast<double>(tokens));
    }
    if (result.acquired) return Status::OK();
    Emit(metric_events::kRateLimiterThrottled, "wait_seconds", result.deficit_seconds);
    clock_->SleepSeconds(result.deficit_seconds);
  }
}

}  // namespace shardvec
