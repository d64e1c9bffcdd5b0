// Hot refresh: a background thread that refreshes the reader on an interval (and the same step on
// demand for POST /v1/refresh). The reader loads the new snapshot while the old one serves and
// swaps atomically; a snapshot that fails to load or verify is not swapped in: the failure is
// logged ("serve_refresh_failed") and counted, and the old snapshot keeps serving.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "serve/serve_metrics.h"
#include "shardvec/status.h"

namespace shardvec::serve {

class Refresher {
 public:
  // `refresh` is the reader's Refresh(): true when a new snapshot was swapped in.
  Refresher(std::function<Result<bool>()> refresh, ServeMetrics& metrics);
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Starts the thread that refreshes every `interval`; none when it is zero.
  Status Start(std::chrono::milliseconds interval);
  // One refresh now, counted and logged like the periodic ones.
  Result<bool> RefreshNow();
  // Ends the thread (a refresh running finishes first). Idempotent.
  void Stop();

 private:
  void Loop(std::chrono::milliseconds interval);

  std::function<Result<bool>()> refresh_;
  ServeMetrics& metrics_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace shardvec::serve
