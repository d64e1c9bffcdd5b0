#include "metrics/emit.h"

#include <atomic>
#include <cstdint>
#include <exception>
#include <string>

#include "common/log.h"

namespace shardvec {

namespace {

// A broken sink fails on every search; the log shows failures 1, 2, 4, 8, … with the running count.
void ReportFailure(std::string_view event, const std::string& error) {
  static std::atomic<uint64_t> failures{0};
  const uint64_t n = ++failures;
  if ((n & (n - 1)) != 0) return;
  LogEvent(LogLevel::kWarning, "metrics_sink_failed",
           {{"metric_event", std::string(event)}, {"error", error}, {"failures", n}});
}

}  // namespace

void EmitMetric(MetricsSink& sink, std::string_view event, const MetricPayload& payload) {
  try {
    sink.Emit(event, payload);
  } catch (const std::exception& e) {
    ReportFailure(event, e.what());
  } catch (...) {
    ReportFailure(event, "unknown exception");
  }
}

}  // namespace shardvec
