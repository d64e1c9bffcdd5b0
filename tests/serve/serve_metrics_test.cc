// The service's Prometheus families: request counters by endpoint and code, latency histograms.
#include "serve/serve_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace shardvec::serve {
namespace {

TEST(ServeMetricsTest, CountsRequestsAndBucketsTheirLatency) {
  ServeMetrics m;
  m.RecordRequest("/v1/search", 200, 0.002);
  m.RecordRequest("/v1/search", 200, 0.2);
  m.RecordRequest("/v1/search", 400, 0.0001);
  m.RecordRefresh("swapped");
  m.RecordRefresh("failed");
  m.RecordRefresh("failed");
  const std::string text = RenderExposition(m.Families(/*in_flight=*/3, /*ready=*/true));
  for (const std::string line :
       {"# TYPE shardvec_serve_requests counter", "shardvec_serve_requests_total{endpoint=\"/v1/search\",code=\"200\"} 2",
        "shardvec_serve_requests_total{endpoint=\"/v1/search\",code=\"400\"} 1",
        "# TYPE shardvec_serve_request_duration_seconds histogram",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"0.0005\"} 1",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"0.0025\"} 2",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"0.1\"} 2",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"0.25\"} 3",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"1\"} 3",
        "shardvec_serve_request_duration_seconds_bucket{endpoint=\"/v1/search\",le=\"+Inf\"} 3",
        "shardvec_serve_request_duration_seconds_count{endpoint=\"/v1/search\"} 3",
        "shardvec_serve_refreshes_total{result=\"failed\"} 2", "shardvec_serve_refreshes_total{result=\"swapped\"} 1",
        "shardvec_serve_searches_in_flight 3", "shardvec_serve_ready 1"}) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace shardvec::serve
