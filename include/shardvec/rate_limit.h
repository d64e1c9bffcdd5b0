// Rate limits: a RateLimiter hands out tokens (one per operation); TokenBucket is the engine's
// limiter, shared safely by threads. The CLI's `search --rate-limit` and the writer's
// WriteConfig::write_rate_limiter use them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "shardvec/metrics.h"
#include "shardvec/status.h"

namespace shardvec {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Blocks until `tokens` are available and takes them. An error when they never can be (more than
  // the limiter holds) or when the limiter itself fails.
  virtual Status Acquire(int64_t tokens = 1) = 0;
};

// A TokenBucket's time: monotonic seconds and sleeping. Tests substitute a simulated clock.
class RateClock {
 public:
  virtual ~RateClock() = default;
  virtual double NowSeconds() = 0;
  virtual void SleepSeconds(double seconds) = 0;
};

// std::chrono::steady_clock and std::this_thread::sleep_for.
std::shared_ptr<RateClock> SteadyRateClock();

struct TokenAcquire {
  bool acquired = false;
  double deficit_seconds = 0;  // seconds until enough tokens would be there; 0 when acquired
};

// `rate` tokens per second, holding at most max(rate, 1) (so a rate below one per second still
// serves one token at a time), full at the start. Thread-safe; a waiting Acquire sleeps without
// holding the lock. With a metrics sink: "rate_limiter.throttled" {wait_seconds, limiter_type}
// before each wait of Acquire, "rate_limiter.denied" {deficit_seconds, limiter_type} when TryAcquire
// finds too few tokens (the events of the reference's bucket).
class TokenBucket final : public RateLimiter {
 public:
  // `rate` must be finite and > 0; otherwise InvalidArgument naming `field` and the value.
  static Result<std::unique_ptr<TokenBucket>> Create(double rate, std::string_view field = "rate",
                                                     std::shared_ptr<RateClock> clock = nullptr,
                                                     std::shared_ptr<MetricsSink> metrics = nullptr,
                                                     std::string limiter_type = "ops");

  // Takes `tokens` if they are there now; never blocks. InvalidArgument when `tokens` is negative or
  // above capacity() (it could never be served).
  Result<TokenAcquire> TryAcquire(int64_t tokens = 1);
  Status Acquire(int64_t tokens = 1) override;

  double rate() const { return rate_; }
  double capacity() const { return capacity_; }

 private:
  TokenBucket(double rate, std::shared_ptr<RateClock> clock, std::shared_ptr<MetricsSink> metrics,
              std::string limiter_type);
  Status CheckTokens(int64_t tokens) const;
  TokenAcquire Take(double tokens);  // under mu_
  void Emit(std::string_view event, std::string_view seconds_key, double seconds) const;

  const double rate_;
  const double capacity_;
  const std::shared_ptr<RateClock> clock_;
  const std::shared_ptr<MetricsSink> metrics_;
  const std::string limiter_type_;
  std::mutex mu_;
  double tokens_;
  double last_;
};

}  // namespace shardvec
