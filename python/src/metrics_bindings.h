// Metric sinks from Python: any object with emit(event, payload) (called with the GIL taken), or the
// engine's own PrometheusCollector (no Python call at all).
#pragma once

#include <nanobind/nanobind.h>

#include <memory>

#include "shardvec/metrics.h"

namespace shardvec::py {

namespace nb = nanobind;

// None -> null; the bound PrometheusCollector -> itself; anything else -> a sink calling its emit().
std::shared_ptr<MetricsSink> SinkFromPython(nb::handle collector);
// The collector SinkFromPython was given for `sink` (None for none).
nb::object SinkToPython(const std::shared_ptr<MetricsSink>& sink);
// Binds PrometheusCollector (emit, exposition).
void BindMetrics(nb::module_& m);

}  // namespace shardvec::py
