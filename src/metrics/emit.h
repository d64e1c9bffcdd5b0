// Delivering one metric event to an optional sink without letting the sink fail the caller.
#pragma once

#include <string_view>

#include "shardvec/metrics.h"

namespace shardvec {

// Calls sink->Emit; an exception is dropped and logged as "metrics_sink_failed" (the 1st, 2nd, 4th,
// 8th… failure in the process, with the count). Callers test the
// sink for null first, so building the payload costs nothing when no sink is set.
void EmitMetric(MetricsSink& sink, std::string_view event, const MetricPayload& payload);

}  // namespace shardvec
