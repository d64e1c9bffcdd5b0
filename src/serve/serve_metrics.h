// The service's own metrics: requests by endpoint and status code, their latency histograms, the
// searches in flight and the refreshes by result, rendered as Prometheus text families.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/prometheus_text.h"

namespace shardvec::serve {

// Upper bounds (seconds) of the latency histogram's buckets; +Inf follows.
inline constexpr std::array<double, 14> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,    0.25,  0.5,    1,     2.5,   5,    10};

class ServeMetrics {
 public:
  // One answered request: `endpoint` is its route ("/v1/search", or "other" for a path the service
  // does not have, which keeps the label set bounded).
  void RecordRequest(std::string_view endpoint, int status, double seconds);
  // "swapped" | "unchanged" | "failed".
  void RecordRefresh(std::string_view result);
  // shardvec_serve_* families; `in_flight` is the searches running now, `ready` whether a snapshot
  // is loaded.
  std::vector<PromFamily> Families(int64_t in_flight, bool ready) const;

 private:
  struct Histogram {
    std::array<int64_t, kLatencyBuckets.size()> buckets{};  // cumulative counts
    int64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, int64_t> refreshes_;
};

}  // namespace shardvec::serve
