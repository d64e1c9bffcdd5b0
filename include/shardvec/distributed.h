// One snapshot built across processes (Spark, Dask, Ray): the driver plans routing from a sample and
// publishes; workers route rows in batches and build whole shards. WriteSharded runs the same steps
// in one process.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/config.h"
#include "shardvec/object_store.h"
#include "shardvec/records.h"
#include "shardvec/status.h"
#include "shardvec/types.h"
#include "shardvec/writer.h"

namespace shardvec {

// Validates `config` and resolves its routing (a RoutingPlan, types.h: everything a worker needs to
// route rows, small enough to ship to every task) as WriteSharded does: CLUSTER with train_centroids
// trains on `training_sample` (rows the driver sampled; required then, refused otherwise), given
// centroids or hyperplanes are taken as they are, LSH hyperplanes are generated (seed 42).
Result<RoutingPlan> PlanRouting(const WriteConfig& config, const Matrix* training_sample);

// A routing plan's router for a worker that routes many batches: the plan is checked and its router
// built once (a CEL expression compiled once), then every Route call reuses it. Route is safe from
// several threads at once.
class RowRouter {
 public:
  // Checks `plan` (its fields must agree: it can arrive from another process) and builds its router.
  static Result<std::unique_ptr<RowRouter>> Create(const RoutingPlan& plan);
  virtual ~RowRouter() = default;

  virtual const RoutingPlan& plan() const = 0;

  // The shard of each row of `rows` (rows.dim must be plan().dim). Reads the vectors, shard_ids
  // (EXPLICIT; kNoShardId for "none") and routing_contexts (CEL; required, one per row); ids and
  // payloads are not read. Errors name the row (row_offset + index), e.g. a NaN value, a shard id out
  // of range or a routing token not in routing_values; a batch of the wrong shape names the column.
  virtual Result<std::vector<int64_t>> Route(const RecordBatch& rows, int64_t row_offset = 0) const = 0;
};

// RowRouter::Create(plan) and one Route call, for `rows` row-major vectors (rows x plan.dim):
// `shard_ids` (EXPLICIT; may be null otherwise) holds one entry per row, kNoShardId for "none";
// `contexts` (CEL; may be null otherwise) one routing context per row. A worker routing many batches
// creates one RowRouter instead.
Result<std::vector<int64_t>> RouteRows(const RoutingPlan& plan, const float* vectors, int64_t rows,
                                       const int64_t* shard_ids, int64_t row_offset = 0,
                                       const RoutingContext* contexts = nullptr);

// One task's shard: built locally under local_root/run_id=…/db=…/attempt=NN/ and uploaded to
// shards/run_id=…/db=…/attempt=NN/shard.db.
struct ShardTask {
  std::string store;  // the snapshot prefix, as in WriteConfig
  StoreOptions store_options;
  std::string local_root;  // empty = this user's default, as WriteConfig::local_root
  std::string run_id;
  int64_t db_id = 0;
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  // As WriteConfig's index.quantization (the driver's): "int8" also writes int8 codes.
  std::optional<std::string> quantization;
  // As WriteConfig's sharding.sublists_per_shard (the driver's): 0 = auto, 1 = none, n = at most n.
  int64_t sublists_per_shard = 0;
  // As WriteConfig's filter_columns (the driver's): the columns every shard stores.
  std::map<std::string, std::string> filter_columns;
  // The engine's attempt number (Spark's TaskContext.attemptNumber(), else 0). The task claims
  // attempt=NN with a put-if-absent marker starting here and moving to the next free NN, so two
  // attempts of one db_id (a retry, a speculative copy, a re-run stage) never share a folder.
  int64_t first_attempt = 0;
  // The run's layout, as WriteConfig's (the driver's config.shard_prefix and db_path_template).
  std::string shard_prefix = "shards";
  std::string db_path_template = "db={db_id:05d}";
};

// Claims an attempt folder, builds the shard from `records` (each record checked as WriteSharded
// checks it; shard_id is ignored; its SizeHint, when known, sizes the shard's pages and chunks as
// WriteSharded sizes them), uploads it and its part of the snapshot's id index (its rows' id hashes,
// 12 bytes a row, beside the shard as id_index.part), removes the local files and returns its
// ShardInfo (with `attempt`). An empty `records` still yields a ShardInfo with row_count 0 and nothing uploaded
// but the claim marker.
Result<ShardInfo> BuildShardAttempt(const ShardTask& task, RecordSource& records,
                                    std::shared_ptr<ObjectStore> store = nullptr);

// The driver's side of one distributed run.
class DistributedWrite {
 public:
  // Opens the store, picks the run id (config.run_id or a new one), records the start time used by
  // the publish conflict check, and starts the run record with `writer_type` (e.g. "vector-spark").
  static Result<std::unique_ptr<DistributedWrite>> Begin(const WriteConfig& config, std::string writer_type,
                                                         std::shared_ptr<ObjectStore> store = nullptr);
  virtual ~DistributedWrite() = default;

  virtual const std::string& run_id() const = 0;

  // Keeps one winner per db_id among `attempts` (lowest attempt, then the smallest db_url), publishes
  // the winners with non-zero rows (the id index merged from the winners' parts, then the manifest
  // put-if-absent, then _CURRENT compare-and-swap, as WriteSharded), marks the run succeeded, then
  // deletes every other object under this run's shard folders (losing and failed attempts, claim
  // markers of empty attempts, the id index parts). A db_id outside
  // [0, num_dbs), or a db_url that is not this run's folder for its db_id and attempt, is an
  // InvalidArgument naming it. Any failure ends the run as Abort does, except that once the manifest
  // is in history (a lost publish race, PublishConflictError) the winners it names stay for rollback.
  // Publish runs once.
  virtual Result<BuildResult> Publish(const RoutingPlan& plan, std::vector<ShardInfo> attempts) = 0;

  // Marks the run failed and deletes its shard objects (deletion failures are logged only). Also done
  // by the destructor when neither Publish nor Abort was called; a no-op once the run has ended.
  virtual void Abort(const Status& error) = 0;
};

}  // namespace shardvec
