// SIGTERM and SIGINT as an event: blocked in the creating thread (and so in every thread it starts
// afterwards) and awaited by one thread of its own, which calls back once per signal.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

#include "shardvec/status.h"

namespace shardvec::serve {

class SignalWatch {
 public:
  SignalWatch();   // blocks SIGTERM and SIGINT in this thread
  ~SignalWatch();  // Stop(), then the thread's signal mask as it was
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  // Calls `on_signal` (from the watch's thread) with each SIGTERM or SIGINT that arrives.
  Status Start(std::function<void(int signal)> on_signal);
  void Stop();  // idempotent

 private:
  sigset_t set_{};
  sigset_t old_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace shardvec::serve
