#include "serve/refresher.h"

#include <fmt/format.h>

#include <system_error>
#include <utility>

#include "common/log.h"

namespace shardvec::serve {

Refresher::Refresher(std::function<Result<bool>()> refresh, ServeMetrics& metrics)
    : refresh_(std::move(refresh)), metrics_(metrics) {}

Refresher::~Refresher() { Stop(); }

Status Refresher::Start(std::chrono::milliseconds interval) {
  if (interval.count() <= 0) return Status::OK();
  try {
    thread_ = std::thread([this, interval] { Loop(interval); });
  } catch (const std::system_error& e) {
    return Status::Unavailable(fmt::format("cannot start the refresh thread (--refresh-interval): {}", e.what()));
  }
  return Status::OK();
}

Result<bool> Refresher::RefreshNow() {
  Result<bool> swapped = refresh_();
  if (!swapped.ok()) {
    metrics_.RecordRefresh("failed");
    LogEvent(LogLevel::kWarning, "serve_refresh_failed", {{"error", swapped.status().message()}});
  } else {
    metrics_.RecordRefresh(*swapped ? "swapped" : "unchanged");
    if (*swapped) LogEvent(LogLevel::kInfo, "serve_refreshed");
  }
  return swapped;
}

void Refresher::Loop(std::chrono::milliseconds interval) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    (void)RefreshNow();
    lock.lock();
  }
}

void Refresher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace shardvec::serve
