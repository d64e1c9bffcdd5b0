// Metric events (docs/architecture.md#observability) delivered to a sink, and a Prometheus collector.
//
// Set a sink on WriteConfig::metrics or ReaderOptions::metrics; with none set nothing is built or
// emitted. Events come from any engine thread, never while the engine holds one of its locks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "shardvec/status.h"

namespace shardvec {

using MetricValue = std::variant<int64_t, double, std::string>;
using MetricPayload = std::map<std::string, MetricValue>;

// Event names: the reference's and, marked "ours", additions.
namespace metric_events {
inline constexpr std::string_view kWriteStarted = "vector.write.started";            // run_id
inline constexpr std::string_view kShardWriteCompleted = "vector.write.shard.completed";  // db_id, row_count (+ db_bytes, run_id)
inline constexpr std::string_view kWritePublished = "vector.write.published";        // ours: run_id, manifest_ref
inline constexpr std::string_view kWriteCompleted = "vector.write.completed";        // run_id, total_vectors, num_shards, elapsed_ms
inline constexpr std::string_view kReaderInitialized = "vector.reader.initialized";  // s3_prefix, num_shards
inline constexpr std::string_view kSearch = "vector.reader.search";                  // top_k, num_shards_queried, num_results, elapsed_ms
inline constexpr std::string_view kShardSearch = "vector.reader.shard_search";       // shard_id, top_k, num_results, elapsed_ms (+ num_queries)
inline constexpr std::string_view kShardDownload = "vector.reader.shard_download";   // ours: shard_id, bytes, elapsed_ms
inline constexpr std::string_view kReaderRefreshed = "vector.reader.refreshed";      // manifest_ref
// ours: manifest_ref, reason (refresh() refused a snapshot of another dim or metric; the old one serves)
inline constexpr std::string_view kReaderRefreshRefused = "vector.reader.refresh_refused";
inline constexpr std::string_view kReaderClosed = "vector.reader.closed";            // {}
inline constexpr std::string_view kRateLimiterThrottled = "rate_limiter.throttled";  // wait_seconds, limiter_type
inline constexpr std::string_view kRateLimiterDenied = "rate_limiter.denied";        // deficit_seconds, limiter_type
}  // namespace metric_events

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // Must be thread-safe. An exception thrown here is caught and dropped (logged as
  // "metrics_sink_failed" at the 1st, 2nd, 4th, 8th… failure): metrics never fail a write or a search.
  virtual void Emit(std::string_view event, const MetricPayload& payload) = 0;
};

// Aggregates events into counters and histograms and renders the Prometheus text format 0.0.4.
// Metric names and what feeds them are listed in README "Observability".
class PrometheusCollector : public MetricsSink {
 public:
  explicit PrometheusCollector(std::string prefix = "shardvec_");
  ~PrometheusCollector() override;
  void Emit(std::string_view event, const MetricPayload& payload) override;
  std::string Exposition() const;

  struct State;

 private:
  std::string prefix_;
  mutable std::mutex mu_;
  std::unique_ptr<State> state_;
};

// Writes collector.Exposition() to `path` through a temp file, fsync and rename: a scraper reading the
// file sees the old text or the whole new one, never part of it. Errors name the path: NotFound
// when its folder is missing, otherwise IOError.
Status WriteExpositionFile(const PrometheusCollector& collector, const std::filesystem::path& path);

}  // namespace shardvec
