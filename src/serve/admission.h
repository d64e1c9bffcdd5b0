// Bounded concurrency: at most `limit` holders at once; one more is refused at once (never queued),
// so the service answers it 429 instead of letting requests pile up.
#pragma once

#include <atomic>
#include <cstdint>

namespace shardvec::serve {

class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(int64_t limit) : limit_(limit) {}

  // A held place, released when it goes out of scope; false when none was free.
  class Slot {
   public:
    explicit Slot(ConcurrencyLimiter* owner) : owner_(owner) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (owner_ != nullptr) owner_->in_use_.fetch_sub(1);
    }
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    ConcurrencyLimiter* owner_;
  };

  Slot TryAcquire() {
    if (in_use_.fetch_add(1) < limit_) return Slot(this);
    in_use_.fetch_sub(1);
    return Slot(nullptr);
  }
  int64_t in_use() const { return in_use_.load(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> in_use_{0};
};

}  // namespace shardvec::serve
