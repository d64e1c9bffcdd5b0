#include "serve/signal_watch.h"

#include <fmt/format.h>
#include <pthread.h>

#include <ctime>
#include <system_error>
#include <utility>

namespace shardvec::serve {

SignalWatch::SignalWatch() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
}

SignalWatch::~SignalWatch() {
  Stop();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

Status SignalWatch::Start(std::function<void(int)> on_signal) {
  try {
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      // Wakes every 100 ms to see whether Stop() was called.
      const timespec tick{0, 100'000'000};
      while (!stop_.load()) {
        const int signal = sigtimedwait(&set_, nullptr, &tick);
        if (signal > 0) on_signal(signal);
      }
    });
  } catch (const std::system_error& e) {
    return Status::Unavailable(fmt::format("cannot start the signal thread: {}", e.what()));
  }
  return Status::OK();
}

void SignalWatch::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace shardvec::serve
