// The snapshot writer: route records to shards, build each shard as one SQLite/vec0 file in parallel,
// upload, then publish atomically (manifest put-if-absent, then _CURRENT compare-and-swap).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shardvec/config.h"
#include "shardvec/object_store.h"
#include "shardvec/records.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

struct ShardInfo {
  int64_t db_id = 0;
  std::string db_url;  // .../attempt=NN (without /shard.db), as in the manifest
  int64_t attempt = 0;  // NN; WriteSharded's shards are attempt 0
  int64_t row_count = 0;
  int64_t db_bytes = 0;
  std::string checkpoint_id;
  std::string digest;  // "xxh3:<16 hex>"
  // The ids' type: "int", "str" or "mixed"; "" for an empty shard (or one whose builder did not say).
  std::string id_type;
  // The sub-lists the shard was split into (0: none).
  int64_t sublists = 0;
  // The statistics of the shard's filter columns as compact JSON text, {name: {"nulls": …, …}}
  // (see README "Filter columns"); empty without filter columns. The manifest records them by db_id.
  std::string filter_stats;
};

// Where a build's time went, in milliseconds (the phases overlap nowhere; their sum is at most total).
struct BuildDurations {
  // Routing: the routing plan (k-means training included) and, for WriteSharded, every record's
  // shard (a stream is routed into per-shard spool files in this phase). Distributed writes: the
  // driver's routing plan (measured by the caller of Publish, which does not see it).
  double sharding_ms = 0;
  // Building and uploading the shards (distributed: everything between the plan and the publish).
  double write_ms = 0;
  // Composing and writing the manifest, then moving _CURRENT.
  double manifest_ms = 0;
  double total_ms = 0;  // the whole call (equals elapsed_ms)
};

struct BuildResult {
  std::string run_id;
  std::string manifest_ref;
  int64_t num_dbs = 0;
  int64_t total_vectors = 0;
  double elapsed_ms = 0;
  std::vector<ShardInfo> shards;  // non-empty shards, ascending db_id
  BuildDurations durations;
  // Shard attempts the build produced: WriteSharded one per shard it built (empty shards are not
  // built); a distributed write every attempt the workers reported, winners and losers.
  int64_t num_attempt_results = 0;
};

// Writes and publishes one snapshot. `store` overrides the store opened from config.store (tests
// inject fault-injecting stores this way).
//
// From a batch in memory, rows are checked and routed on several threads and each shard reads its
// vectors where the batch holds them (nothing is copied to local disk); the batch's shape is checked
// first (RecordBatch::Check). A stream is routed into per-shard spool files on local disk.
Result<BuildResult> WriteSharded(const WriteConfig& config, const RecordBatch& records,
                                 std::shared_ptr<ObjectStore> store = nullptr);
Result<BuildResult> WriteSharded(const WriteConfig& config, RecordSource& records,
                                 std::shared_ptr<ObjectStore> store = nullptr);

}  // namespace shardvec
