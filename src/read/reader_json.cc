#include "shardvec/reader_json.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "format/routing_json.h"
#include "shardvec/types.h"

namespace shardvec {
namespace {

using nlohmann::json;

json IdJson(const RecordId& id) {
  if (const auto* i = std::get_if<int64_t>(&id)) return *i;
  return std::get<std::string>(id);
}

}  // namespace

std::string SnapshotInfoJson(const SnapshotInfo& i) {
  json out = {{"run_id", i.run_id},
              {"num_dbs", i.num_dbs},
              {"dim", i.dim},
              {"metric", MetricName(i.metric)},
              {"sharding", StrategyName(i.strategy)},
              {"num_probes", i.num_probes},
              {"manifest_ref", i.manifest_ref},
              {"total_vectors", i.total_vectors},
              {"created_at", i.created_at},
              {"published_at", i.published_at}};
  if (i.strategy == Strategy::kCel) {
    out["cel_expr"] = i.cel_expr;
    out["cel_columns"] = i.cel_columns;
    out["routing_values"] = i.routing_values ? RoutingValuesToJson(*i.routing_values) : json();
  }
  return SafeJsonDump(out);
}

std::string ShardDetailsJson(const std::vector<ShardDetail>& shards) {
  const auto or_null = [](const std::optional<std::string>& text) { return text ? json(*text) : json(); };
  json rows = json::array();
  for (const ShardDetail& d : shards) {
    rows.push_back({{"db_id", d.db_id},
                    {"db_url", or_null(d.db_url)},
                    {"vector_count", d.vector_count},
                    {"db_bytes", d.db_bytes},
                    {"checkpoint_id", or_null(d.checkpoint_id)},
                    {"digest", or_null(d.digest)}});
  }
  return SafeJsonDump({{"shards", std::move(rows)}});
}

std::string SearchResponseJson(const SearchResponse& r) {
  json results = json::array();
  for (const SearchHit& h : r.results) {
    // The reader hands back every payload as a JSON object of bounded depth (a stored text that is
    // not one arrives as {"__raw_payload__": "<text>"}), so this parse succeeds.
    json payload = h.payload_json ? json::parse(*h.payload_json, nullptr, false) : json();
    if (payload.is_discarded()) payload = json::parse(ReadablePayloadJson(*h.payload_json));
    results.push_back({{"id", IdJson(h.id)}, {"score", h.score}, {"payload", std::move(payload)}});
  }
  return SafeJsonDump(
      {{"results", std::move(results)}, {"num_shards_queried", r.num_shards_queried}, {"latency_ms", r.latency_ms}});
}

}  // namespace shardvec
