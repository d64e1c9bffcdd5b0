#include "metrics/emit.h"

#include <exception>
#include <string>

#include "common/log.h"

namespace shardvec {

void EmitMetric(MetricsSink& sink, std::string_view event, const MetricPayload& payload) {
  try {
    sink.Emit(event, payload);
  } catch (const std::exception& e) {
    LogEvent(LogLevel::kWarning, "metrics_sink_failed", {{"metric_event", std::string(event)}, {"error", e.what()}});
  } catch (...) {
    LogEvent(LogLevel::kWarning, "metrics_sink_failed",
             {{"metric_event", std::string(event)}, {"error", "unknown exception"}});
  }
}

}  // namespace shardvec
