// The Prometheus text renderer and the collector's exposition, compared as exact text.
#include "metrics/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "shardvec/metrics.h"

namespace shardvec {
namespace {

TEST(PromTextTest, NumbersAreIntegersShortestFloatsOrInfNaN) {
  EXPECT_EQ(PromNumber(0), "0");
  EXPECT_EQ(PromNumber(3), "3");
  EXPECT_EQ(PromNumber(-7), "-7");
  EXPECT_EQ(PromNumber(0.25), "0.25");
  EXPECT_EQ(PromNumber(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(PromNumber(1e-05), "1e-05");
  EXPECT_EQ(PromNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(PromNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(PromNumber(std::nan("")), "NaN");
}

TEST(PromTextTest, RendersHelpTypeAndEscapedLabels) {
  std::vector<PromFamily> families = {
      {"demo_requests", "Requests with a \\ and\na newline.", "counter",
       {{"_total", {{"path", "a\"b\\c\nd"}, {"code", "200"}}, 4}}},
      {"demo_latency_seconds", "Latency.", "histogram",
       {{"_bucket", {{"le", "0.5"}}, 1}, {"_bucket", {{"le", "+Inf"}}, 2}, {"_sum", {}, 1.75}, {"_count", {}, 2}}},
  };
  EXPECT_EQ(RenderExposition(families),
            "# HELP demo_requests Requests with a \\\\ and\\na newline.\n"
            "# TYPE demo_requests counter\n"
            "demo_requests_total{path=\"a\\\"b\\\\c\\nd\",code=\"200\"} 4\n"
            "# HELP demo_latency_seconds Latency.\n"
            "# TYPE demo_latency_seconds histogram\n"
            "demo_latency_seconds_bucket{le=\"0.5\"} 1\n"
            "demo_latency_seconds_bucket{le=\"+Inf\"} 2\n"
            "demo_latency_seconds_sum 1.75\n"
            "demo_latency_seconds_count 2\n");
}

// The lines of one family: from its "# HELP" line up to the next family's.
std::string Family(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) inside = line.rfind("# HELP " + name + " ", 0) == 0;
    if (inside) out += line + "\n";
  }
  return out;
}

TEST(PrometheusCollectorTest, SearchEventsFeedCountersAndCumulativeBuckets) {
  PrometheusCollector c("t_");
  namespace ev = metric_events;
  c.Emit(ev::kSearch, {{"top_k", int64_t{10}}, {"num_shards_queried", int64_t{2}}, {"num_results", int64_t{10}},
                       {"elapsed_ms", 3.0}});
  c.Emit(ev::kSearch, {{"top_k", int64_t{10}}, {"num_shards_queried", int64_t{3}}, {"num_results", int64_t{7}},
                       {"elapsed_ms", 40.0}});
  c.Emit(ev::kSearch, {{"top_k", int64_t{5}}, {"num_shards_queried", int64_t{1}}, {"num_results", int64_t{5}},
                       {"elapsed_ms", int64_t{20000}}});  // an int, as a Python collector may send
  const std::string text = c.Exposition();
  EXPECT_EQ(Family(text, "t_vector_searches"),
            "# HELP t_vector_searches Vector searches answered (each query of a batch counts).\n"
            "# TYPE t_vector_searches counter\n"
            "t_vector_searches_total 3\n");
  EXPECT_EQ(Family(text, "t_vector_shards_queried"),
            "# HELP t_vector_shards_queried Shards searched, summed over searches.\n"
            "# TYPE t_vector_shards_queried counter\n"
            "t_vector_shards_queried_total 6\n");
  EXPECT_EQ(Family(text, "t_vector_search_seconds"),
            "# HELP t_vector_search_seconds Vector search latency in seconds.\n"
            "# TYPE t_vector_search_seconds histogram\n"
            "t_vector_search_seconds_bucket{le=\"0.001\"} 0\n"
            "t_vector_search_seconds_bucket{le=\"0.0025\"} 0\n"
            "t_vector_search_seconds_bucket{le=\"0.005\"} 1\n"
            "t_vector_search_seconds_bucket{le=\"0.01\"} 1\n"
            "t_vector_search_seconds_bucket{le=\"0.025\"} 1\n"
            "t_vector_search_seconds_bucket{le=\"0.05\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"0.1\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"0.25\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"0.5\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"1\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"2.5\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"5\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"10\"} 2\n"
            "t_vector_search_seconds_bucket{le=\"+Inf\"} 3\n"
            "t_vector_search_seconds_sum 20.043\n"
            "t_vector_search_seconds_count 3\n");
}

TEST(PrometheusCollectorTest, WriteEventsAndEveryEventNameCounted) {
  PrometheusCollector c;
  namespace ev = metric_events;
  c.Emit(ev::kWriteStarted, {{"run_id", std::string("r1")}});
  c.Emit(ev::kShardWriteCompleted, {{"db_id", int64_t{0}}, {"row_count", int64_t{120}}});
  c.Emit(ev::kShardWriteCompleted, {{"db_id", int64_t{1}}, {"row_count", int64_t{80}}});
  c.Emit(ev::kWriteCompleted, {{"run_id", std::string("r1")}, {"total_vectors", int64_t{200}},
                               {"num_shards", int64_t{2}}, {"elapsed_ms", int64_t{1500}}});
  c.Emit("custom \"odd\"\nevent", {});
  const std::string text = c.Exposition();
  EXPECT_EQ(Family(text, "shardvec_events"),
            "# HELP shardvec_events Metric events received, by event name.\n"
            "# TYPE shardvec_events counter\n"
            "shardvec_events_total{event=\"custom \\\"odd\\\"\\nevent\"} 1\n"
            "shardvec_events_total{event=\"vector.write.completed\"} 1\n"
            "shardvec_events_total{event=\"vector.write.shard.completed\"} 2\n"
            "shardvec_events_total{event=\"vector.write.started\"} 1\n");
  EXPECT_NE(text.find("\nshardvec_vector_shard_builds_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nshardvec_vector_shard_rows_total 200\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nshardvec_vector_vectors_written_total 200\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nshardvec_vector_write_seconds_bucket{le=\"1\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nshardvec_vector_write_seconds_bucket{le=\"5\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nshardvec_vector_write_seconds_sum 1.5\n"), std::string::npos) << text;
  // A field that is not a number adds nothing.
  c.Emit(ev::kWriteCompleted, {{"total_vectors", std::string("many")}});
  EXPECT_NE(c.Exposition().find("\nshardvec_vector_vectors_written_total 200\n"), std::string::npos);
  EXPECT_NE(c.Exposition().find("\nshardvec_vector_writes_total 2\n"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
