// Incremental snapshots: a new snapshot made from a published one (the base) by upserting and
// deleting records by id. Only the shards that hold a changed id or receive an upserted row are
// rebuilt (their unchanged rows copied from the base shard file, sub-lists, int8 codes and filter
// columns built afresh); every other shard of the new manifest is the base's, shared by URL and
// digest. The new snapshot is published exactly as WriteSharded publishes (manifest put-if-absent,
// then the current pointer by compare-and-swap), so a failure or crash at any step leaves the base
// current and whole.
//
//   auto result = shardvec::UpdateSharded(config, &upserts, deletes);  // config as for WriteSharded
//   if (result.ok()) printf("%s: %zu shards rebuilt\n", result->build.run_id.c_str(), result->report.rebuilt.size());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/config.h"
#include "shardvec/manifest_store.h"
#include "shardvec/object_store.h"
#include "shardvec/records.h"
#include "shardvec/status.h"
#include "shardvec/types.h"
#include "shardvec/writer.h"

namespace shardvec {

struct UpdateOptions {
  // The snapshot updated: "current" (the one the current pointer names) or a run id. It must be the
  // current snapshot (else Conflict, ErrorKind::kPublishConflict) unless config.publish_policy is
  // kLastWriterWins; the publish is refused the same way when another snapshot became current
  // meanwhile.
  std::string base = "current";
  // Deleting an id the base does not hold fails the update (NotFound naming the ids) instead of
  // being counted in UpdateReport::missing_deletes.
  bool strict = false;
  // Rebuild every shard the update touches whole (its sub-lists retrained, no holes) instead of
  // editing it in place: slower, and what a shard gets anyway once edits reach a quarter of its rows.
  bool compact = false;
};

// One rebuilt shard: its rows in the base and in the new snapshot (0: the shard is left out).
struct UpdateShardChange {
  int64_t db_id = 0;
  int64_t base_rows = 0;
  int64_t rows = 0;
};

struct UpdateReport {
  std::string base_run_id;
  std::string base_manifest_ref;
  int64_t upserted = 0;         // upserted rows
  int64_t replaced = 0;         // base rows removed because their id was upserted
  int64_t deleted = 0;          // base rows removed by a delete
  int64_t missing_deletes = 0;  // ids to delete the base does not hold
  // Whether the base's id index found the shards of the changed ids; false: the base has none (an
  // older or another writer's snapshot) and every shard's id map was read instead.
  bool used_id_index = false;
  std::vector<UpdateShardChange> rebuilt;  // ascending db_id
  // Of those, the shards edited in place (ascending db_id); the others were rebuilt whole.
  std::vector<int64_t> edited_in_place;
  int64_t shared_shards = 0;               // shards the new manifest takes from the base as they are
  // The largest shard's rows over the mean rows per shard (num_dbs shards), before and after.
  double base_imbalance = 0;
  double imbalance = 0;
  // CLUSTER: the mean routing distance of the upserted vectors to their shard's centroid, and of the
  // rebuilt shards' base rows to theirs (cluster drift when the first grows past the second).
  std::optional<double> upsert_centroid_distance;
  std::optional<double> base_centroid_distance;
  // Set when a full rebuild (a new `build`, retraining the routing) would pay, with the reason.
  bool rebuild_advised = false;
  std::string advice;
};

struct UpdateResult {
  BuildResult build;  // the published snapshot; `shards` lists every non-empty shard, shared ones too
  UpdateReport report;
};

// Updates the base snapshot in `config.store` and publishes the result. `config` is the write
// config the snapshot is built with (as for WriteSharded): its dim, metric, quantization, sharding
// strategy, num_dbs, num_probes, given centroids or hyperplanes, num_hash_bits, CEL settings,
// filter columns, index_type, shard_prefix and db_path_template must agree with what the base
// records (else InvalidArgument naming the field and both values): upserts are routed with the
// base's routing, never retrained (train_centroids and the sample size describe how the base was
// built). `upserts` (may be null) must carry ids; an id may appear once among the upserts and not
// also among `deletes`. A row whose id the base holds replaces it; an id appears at most once after
// the update.
Result<UpdateResult> UpdateSharded(const WriteConfig& config, const RecordBatch* upserts,
                                   const std::vector<RecordId>& deletes, const UpdateOptions& options = {},
                                   std::shared_ptr<ObjectStore> store = nullptr);

// The write config of the snapshot `base` ("current" or a run id) names, as its manifest records it:
// store (and store_options, manifest_store) as given, index and sharding settings, routing artifacts,
// filter columns and layout; what it does not record keeps WriteConfig's default
// (sublists_per_shard auto). What UpdateSharded takes when the caller has no config of its own.
Result<WriteConfig> SnapshotWriteConfig(const std::string& store, const StoreOptions& store_options,
                                        const std::string& base = "current",
                                        std::shared_ptr<ManifestStore> manifest_store = nullptr,
                                        std::shared_ptr<ObjectStore> object_store = nullptr);

}  // namespace shardvec
