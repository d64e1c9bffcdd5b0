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
#include <map>
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
  // When the base is not, or stops being, the current snapshot (a PublishConflict), redo the update
  // on the snapshot current then: its ids found anew, its shards edited or rebuilt, published as
  // always. Up to kMaxRebases times, then the conflict is returned. UpdateSharded only; refused with
  // publish_policy kLastWriterWins (which never conflicts) and by UpdateRun::Begin.
  bool rebase = false;
  // Build the whole snapshot anew from the base's rows (each shard fetched and checked) less the
  // changed ids, plus the upserts, with CLUSTER centroids trained anew on them (config.sharding's
  // sample_size and sublists) and published under the same conflict rules: what the report's advice
  // (cluster drift, imbalance) asks for. Every shard is rebuilt, none shared. CLUSTER snapshots only
  // (another strategy's routing is not trained: InvalidArgument); refused with compact; UpdateSharded
  // only (UpdateRun::Begin and the distributed writers refuse it).
  bool retrain = false;
};

inline constexpr int kMaxRebases = 3;

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
  // How many times the update was redone on a newer current snapshot (UpdateOptions::rebase).
  int64_t rebased = 0;
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
// the update. config.on_progress is called on the calling thread with the phases "id maps" (a base
// without an id index: its shards read, done/total), "shards" (the touched shards finished,
// done/total) and "publish" (0/1, then 1/1).
Result<UpdateResult> UpdateSharded(const WriteConfig& config, const RecordBatch* upserts,
                                   const std::vector<RecordId>& deletes, const UpdateOptions& options = {},
                                   std::shared_ptr<ObjectStore> store = nullptr);

// ---- The same update in phases, for a driver that ships the shard rebuilds to other processes ----
//
// UpdateSharded runs these phases in one process; shardvec.writer.spark / dask / ray run them across
// a cluster:
//   driver:  UpdateRun::Begin (base loaded and checked, run claimed) → workers route the upserts with
//            run->routing() (RowRouter) → run->Plan(the upserts' ids and shards, deletes)
//   workers: RebuildUpdateShard(plan, db_id, that shard's upserts) for each plan.shards entry
//   driver:  run->Finish(the shard results) → the manifest, composed and published.
// The driver holds the upserts' ids and the base's id index, never their vectors or payloads.

// One upserted row as the driver plans it: its id and the shard the base's routing sends it to.
struct UpsertRoute {
  RecordId id;
  int64_t db_id = 0;
};

// One shard the update rebuilds.
struct UpdateShardPlan {
  int64_t db_id = 0;
  int64_t upserts = 0;  // upserted rows routed to this shard
  // The wrapping sum of the IdIndexHash of those rows' ids: the task checks it received exactly them.
  uint64_t upsert_digest = 0;
  std::vector<RecordId> replaced;  // upserted ids the base's id index places in this shard
  std::vector<RecordId> deleted;   // ids to delete the base's id index places in this shard
};

// What the driver decided. Every field is plain data, so the plan travels to other processes as it
// is (Python pickles it); a task needs no manifest store: the base's manifest is in it.
struct UpdatePlan {
  // Where and how the rebuilt shards are written, as the driver's WriteConfig says (its store and
  // store_options, local_root, index.dim / metric / quantization, sharding.sublists_per_shard,
  // filter_columns, shard_prefix, db_path_template) and the new run's id.
  std::string store;
  StoreOptions store_options;
  std::string local_root;
  std::string run_id;
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  std::optional<std::string> quantization;
  int64_t sublists_per_shard = 0;
  std::map<std::string, std::string> filter_columns;
  std::string shard_prefix = "shards";
  std::string db_path_template = "db={db_id:05d}";
  bool compact = false;  // UpdateOptions::compact: every shard rebuilt whole, none edited in place
  // The base snapshot: its manifest ref, run id, publish time and manifest bytes.
  std::string base_manifest_ref;
  std::string base_run_id;
  std::string base_published_at;
  std::string base_manifest;
  // The changes: every shard to rebuild (ascending db_id), the upserted rows, every id to delete
  // (distinct) and whether the base's id index placed them (false: its shards' id maps did).
  std::vector<UpdateShardPlan> shards;
  int64_t upserted = 0;
  std::vector<RecordId> deletes;
  bool used_id_index = false;
};

// What a shard's rebuild reports (RebuildUpdateShard), for UpdateRun::Finish.
struct UpdateShardResult {
  int64_t db_id = 0;
  ShardInfo info;          // the new shard (row_count 0: it is left out of the manifest)
  int64_t base_rows = 0;   // the shard's rows in the base
  int64_t base_sublists = 0;
  int64_t upserts = 0;     // upserted rows added
  int64_t replaced = 0;    // base rows removed because their id was upserted
  int64_t deleted = 0;     // base rows removed by a delete
  std::vector<RecordId> deleted_ids;  // the ids those were
  // CLUSTER: the routing distances to this shard's centroid, summed over its base rows and its upserts.
  double base_distance_sum = 0;
  int64_t base_distance_rows = 0;  // the base rows base_distance_sum is over (a sample when edited in place)
  double upsert_distance_sum = 0;
  // Rebuilt whole: IdIndexHash of every row of the new shard, its id index entries. Edited in place:
  // those of the rows added, and removed_id_hashes those of the base rows removed (one entry each).
  bool edited_in_place = false;
  std::vector<uint64_t> id_hashes;
  std::vector<uint64_t> removed_id_hashes;
};

// The driver's side of one update.
class UpdateRun {
 public:
  // Validates `config` (as UpdateSharded: it must agree with the base), loads the base `options.base`
  // names, checks it is current (unless last-writer-wins), claims the run id (config.run_id or a new
  // one) and starts the run record with `writer_type` (e.g. "vector-spark-update"). The shards are
  // rebuilt elsewhere, so config.vec0_path (a task loads its own vec0), max_parallel_shards and
  // write_rate_limiter (a task rebuilds one shard, unpaced) are refused when set.
  static Result<std::unique_ptr<UpdateRun>> Begin(const WriteConfig& config, const UpdateOptions& options,
                                                  std::string writer_type, std::shared_ptr<ObjectStore> store = nullptr);
  virtual ~UpdateRun() = default;

  virtual const std::string& run_id() const = 0;
  // The base's routing: workers route the upserts with it (RowRouter), never retrained.
  virtual const RoutingPlan& routing() const = 0;

  // Checks the ids (an id upserted twice, or both upserted and deleted, is refused naming it; a
  // db_id outside the base's shards too), finds the shards that hold them (the base's id index, else
  // every shard's id map) and returns the plan. Plan runs once; a failure ends the run as Abort does.
  virtual Result<UpdatePlan> Plan(const std::vector<UpsertRoute>& upserts, const std::vector<RecordId>& deletes) = 0;

  // Takes one result per planned shard (a missing, repeated or unplanned db_id, or a shard that is
  // not this run's, is an InvalidArgument naming it), counts the deletes no shard held (NotFound
  // under options.strict), composes the manifest (the other shards shared by URL and digest, a new id
  // index) and publishes it as UpdateSharded does. Any failure ends the run as Abort does.
  virtual Result<UpdateResult> Finish(std::vector<UpdateShardResult> results) = 0;

  // Marks the run failed and removes its uploads. Also done by the destructor when the run neither
  // finished nor was aborted; a no-op once it has ended.
  virtual void Abort(const Status& error) = 0;
};

// A worker's task: rebuilds shard `db_id` of `plan` from its base file (fetched from the store, size
// and digest checked) less the plan's replaced and deleted ids, plus `upserts` (every row the base's
// routing sends to db_id, with ids; null when none), and uploads it under plan.run_id. A db_id the
// plan does not list, or upserts other than the planned ones (count or ids), is refused naming it.
Result<UpdateShardResult> RebuildUpdateShard(const UpdatePlan& plan, int64_t db_id, const RecordBatch* upserts,
                                             std::shared_ptr<ObjectStore> store = nullptr);

// The write config of the snapshot `base` ("current" or a run id) names, as its manifest records it:
// store (and store_options, manifest_store) as given, index and sharding settings, routing artifacts,
// filter columns and layout, and sublists_per_shard (custom.shardvec.sublists_per_shard; a manifest
// that does not record it, an older shardvec's or shardyfusion's: none (1) when no shard has
// sub-lists though one holds enough rows for auto to make them, else auto (0); a recorded value
// that is not an integer in 0..65536 is Corruption naming the field). What UpdateSharded takes when
// the caller has no config of its own.
Result<WriteConfig> SnapshotWriteConfig(const std::string& store, const StoreOptions& store_options,
                                        const std::string& base = "current",
                                        std::shared_ptr<ManifestStore> manifest_store = nullptr,
                                        std::shared_ptr<ObjectStore> object_store = nullptr);

}  // namespace shardvec
