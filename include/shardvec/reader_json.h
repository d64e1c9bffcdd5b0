// A reader's answers as JSON text, the one shape `shardvec info --json`, `shards --json`,
// `search --json` and the HTTP service (`shardvec serve`) print.
#pragma once

#include <string>
#include <vector>

#include "shardvec/reader.h"

namespace shardvec {

// {"created_at", "dim", "manifest_ref", "metric", "num_dbs", "num_probes", "published_at", "run_id",
//  "sharding", "total_vectors"} (+ "cel_expr", "cel_columns", "routing_values" for CEL snapshots).
std::string SnapshotInfoJson(const SnapshotInfo& info);

// {"shards": [{"checkpoint_id", "db_bytes", "db_id", "db_url", "digest", "vector_count"}, ...]}
// (null for what a shard does not have).
std::string ShardDetailsJson(const std::vector<ShardDetail>& shards);

// {"latency_ms", "num_shards_queried", "results": [{"id", "payload", "score"}, ...]}: ids as JSON
// numbers or strings, payloads as JSON objects (or null). Bytes that are not UTF-8 come out as U+FFFD.
std::string SearchResponseJson(const SearchResponse& response);

}  // namespace shardvec
