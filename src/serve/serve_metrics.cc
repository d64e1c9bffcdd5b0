#include "serve/serve_metrics.h"

#include <fmt/format.h>

#include <string>

namespace shardvec::serve {

void ServeMetrics::RecordRequest(std::string_view endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(endpoint), status}];
  Histogram& h = latency_[std::string(endpoint)];
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void ServeMetrics::RecordRefresh(std::string_view result) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refreshes_[std::string(result)];
}

std::vector<PromFamily> ServeMetrics::Families(int64_t in_flight, bool ready) const {
  std::lock_guard<std::mutex> lock(mu_);
  PromFamily requests{"shardvec_serve_requests", "HTTP requests answered, by endpoint and status code", "counter", {}};
  for (const auto& [key, n] : requests_) {
    requests.samples.push_back(
        {"_total", {{"endpoint", key.first}, {"code", std::to_string(key.second)}}, static_cast<double>(n)});
  }
  PromFamily latency{"shardvec_serve_request_duration_seconds",
                     "Time from routing a request to writing its answer, by endpoint", "histogram", {}};
  for (const auto& [endpoint, h] : latency_) {
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      // Bounds as people write them ("0.0005", "1"), the labels prometheus_client gives.
      latency.samples.push_back({"_bucket", {{"endpoint", endpoint}, {"le", fmt::format("{}", kLatencyBuckets[i])}},
                                 static_cast<double>(h.buckets[i])});
    }
    latency.samples.push_back({"_bucket", {{"endpoint", endpoint}, {"le", "+Inf"}}, static_cast<double>(h.count)});
    latency.samples.push_back({"_sum", {{"endpoint", endpoint}}, h.sum});
    latency.samples.push_back({"_count", {{"endpoint", endpoint}}, static_cast<double>(h.count)});
  }
  PromFamily refreshes{"shardvec_serve_refreshes", "Refresh attempts by result (swapped, unchanged, failed)",
                       "counter", {}};
  for (const auto& [result, n] : refreshes_) {
    refreshes.samples.push_back({"_total", {{"result", result}}, static_cast<double>(n)});
  }
  PromFamily flight{"shardvec_serve_searches_in_flight", "Searches running now", "gauge",
                    {{"", {}, static_cast<double>(in_flight)}}};
  PromFamily readiness{"shardvec_serve_ready", "1 when a snapshot is loaded", "gauge", {{"", {}, ready ? 1.0 : 0.0}}};
  return {std::move(requests), std::move(latency), std::move(refreshes), std::move(flight), std::move(readiness)};
}

}  // namespace shardvec::serve
