// PrometheusCollector: a fixed table says which event feeds which counter or histogram; every event,
// known or not, also counts in events_total{event=…}.
#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include "metrics/prometheus_text.h"
#include "shardvec/metrics.h"

namespace shardvec {
namespace {

namespace ev = metric_events;

struct CounterDef {
  std::string_view name;  // without prefix, with _total
  std::string_view help;
  std::string_view event;
  std::string_view field;  // added to the counter; empty: each event adds 1
};

struct HistogramDef {
  std::string_view name;  // without prefix
  std::string_view help;
  std::string_view event;
  std::string_view millis_field;  // observed in seconds
  const std::vector<double>* bounds;
};

const std::vector<double> kSearchBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const std::vector<double> kWriteBounds = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};

const std::vector<CounterDef>& Counters() {
  static const std::vector<CounterDef> defs = {
      {"vector_write_started_total", "Vector writes started.", ev::kWriteStarted, ""},
      {"vector_shard_builds_total", "Shards built and uploaded by writers.", ev::kShardWriteCompleted, ""},
      {"vector_shard_rows_total", "Rows written into built shards.", ev::kShardWriteCompleted, "row_count"},
      {"vector_publishes_total", "Snapshots published (manifest and _CURRENT written).", ev::kWritePublished, ""},
      {"vector_writes_total", "Vector writes completed.", ev::kWriteCompleted, ""},
      {"vector_vectors_written_total", "Vectors in completed writes.", ev::kWriteCompleted, "total_vectors"},
      {"vector_reader_initialized_total", "Readers opened.", ev::kReaderInitialized, ""},
      {"vector_searches_total", "Vector searches answered (each query of a batch counts).", ev::kSearch, ""},
      {"vector_shards_queried_total", "Shards searched, summed over searches.", ev::kSearch, "num_shards_queried"},
      {"vector_search_results_total", "Hits returned, summed over searches.", ev::kSearch, "num_results"},
      {"vector_shard_searches_total", "Per-shard scans.", ev::kShardSearch, ""},
      {"vector_shard_downloads_total", "Shards downloaded into a reader's cache.", ev::kShardDownload, ""},
      {"vector_shard_download_bytes_total", "Bytes of shards downloaded.", ev::kShardDownload, "bytes"},
      {"vector_reader_refreshes_total", "Reader refreshes that swapped to a new snapshot.", ev::kReaderRefreshed, ""},
      {"vector_reader_refreshes_refused_total", "Reader refreshes refused (a snapshot of another dim or metric).",
       ev::kReaderRefreshRefused, ""},
      {"vector_reader_closed_total", "Readers closed.", ev::kReaderClosed, ""},
  };
  return defs;
}

const std::vector<HistogramDef>& Histograms() {
  static const std::vector<HistogramDef> defs = {
      {"vector_write_seconds", "Vector write duration in seconds.", ev::kWriteCompleted, "elapsed_ms", &kWriteBounds},
      {"vector_search_seconds", "Vector search latency in seconds.", ev::kSearch, "elapsed_ms", &kSearchBounds},
      {"vector_shard_search_seconds", "Per-shard scan latency in seconds.", ev::kShardSearch, "elapsed_ms",
       &kSearchBounds},
      {"vector_shard_download_seconds", "Shard download and verification time in seconds.", ev::kShardDownload,
       "elapsed_ms", &kWriteBounds},
  };
  return defs;
}

// A numeric field of the payload, or nullopt when absent or not a number.
std::optional<double> Number(const MetricPayload& payload, std::string_view field) {
  auto it = payload.find(std::string(field));
  if (it == payload.end()) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&it->second)) return *d;
  return std::nullopt;
}

struct Histogram {
  std::vector<uint64_t> counts;  // per bound, not cumulative; the last slot is +Inf
  double sum = 0;
  uint64_t count = 0;
};

}  // namespace

struct PrometheusCollector::State {
  std::vector<double> counters = std::vector<double>(Counters().size(), 0.0);
  std::vector<Histogram> histograms;
  std::map<std::string, uint64_t> events;
  State() {
    for (const HistogramDef& h : Histograms()) histograms.push_back(Histogram{std::vector<uint64_t>(h.bounds->size() + 1, 0), 0, 0});
  }
};

PrometheusCollector::PrometheusCollector(std::string prefix)
    : prefix_(std::move(prefix)), state_(std::make_unique<State>()) {}
PrometheusCollector::~PrometheusCollector() = default;

void PrometheusCollector::Emit(std::string_view event, const MetricPayload& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  ++state_->events[std::string(event)];
  for (size_t i = 0; i < Counters().size(); ++i) {
    const CounterDef& c = Counters()[i];
    if (c.event != event) continue;
    if (c.field.empty()) state_->counters[i] += 1;
    else if (auto v = Number(payload, c.field)) state_->counters[i] += *v;
  }
  for (size_t i = 0; i < Histograms().size(); ++i) {
    const HistogramDef& h = Histograms()[i];
    if (h.event != event) continue;
    auto ms = Number(payload, h.millis_field);
    if (!ms) continue;
    const double seconds = *ms / 1000.0;
    Histogram& hist = state_->histograms[i];
    // le is "less than or equal": the first bound >= the value.
    const size_t slot = static_cast<size_t>(
        std::lower_bound(h.bounds->begin(), h.bounds->end(), seconds) - h.bounds->begin());
    ++hist.counts[slot];
    hist.sum += seconds;
    ++hist.count;
  }
}

std::string PrometheusCollector::Exposition() const {
  std::vector<PromFamily> families;
  std::lock_guard<std::mutex> lock(mu_);
  // A counter family is named without _total and its sample with it, as prometheus_client writes it.
  PromFamily events{prefix_ + "events", "Metric events received, by event name.", "counter", {}};
  for (const auto& [name, n] : state_->events) events.samples.push_back({"_total", {{"event", name}}, static_cast<double>(n)});
  families.push_back(std::move(events));
  for (size_t i = 0; i < Counters().size(); ++i) {
    const CounterDef& c = Counters()[i];
    std::string base(c.name.substr(0, c.name.size() - std::string_view("_total").size()));
    families.push_back({prefix_ + base, std::string(c.help), "counter", {{"_total", {}, state_->counters[i]}}});
  }
  for (size_t i = 0; i < Histograms().size(); ++i) {
    const HistogramDef& h = Histograms()[i];
    const Histogram& hist = state_->histograms[i];
    PromFamily f{prefix_ + std::string(h.name), std::string(h.help), "histogram", {}};
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= h.bounds->size(); ++b) {
      cumulative += hist.counts[b];
      const double le = b < h.bounds->size() ? (*h.bounds)[b] : std::numeric_limits<double>::infinity();
      f.samples.push_back({"_bucket", {{"le", PromNumber(le)}}, static_cast<double>(cumulative)});
    }
    f.samples.push_back({"_sum", {}, hist.sum});
    f.samples.push_back({"_count", {}, static_cast<double>(hist.count)});
    families.push_back(std::move(f));
  }
  return RenderExposition(families);
}

}  // namespace shardvec
