// WriteSharded: validate → (sample + train) → route into per-shard spools → build shards in parallel
// (build, digest, upload, drop local files) → upload routing artifacts → publish.
#include "shardvec/writer.h"
#include "write/writer_checked.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>

#include "common/file_util.h"
#include "common/log.h"
#include "common/random_id.h"
#include "common/sqlite/sqlite_setup.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "common/time_util.h"
#include "format/keys.h"
#include "metrics/emit.h"
#include "routing/router.h"
#include "routing/routing_plan.h"
#include "shard/sqlite_vec.h"
#include "write/config_validation.h"
#include "write/id_index.h"
#include "write/manifest_compose.h"
#include "snapshot/publisher.h"
#include "write/record_check.h"
#include "write/run_claim.h"
#include "write/run_registry.h"
#include "write/shard_task.h"
#include "write/spool.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSampleSeed = 42;
constexpr size_t kSpoolBudgetBytes = 256u << 20;  // all spool buffers together

struct RunContext {
  const WriteConfig& config;
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<ManifestStore> manifests;
  std::string run_id;
  SystemTime started;
  fs::path local_run_dir;
  RoutingPlan plan;
  std::function<Status()> before_publish;  // may be empty
};

void Report(const WriteConfig& config, std::string phase, int64_t done, int64_t total) {
  if (config.on_progress) config.on_progress(WriteProgress{std::move(phase), done, total});
}

// Reservoir sample (seeded, so a rerun trains the same centroids), checking every record on the way.
Result<Matrix> SampleForTraining(RunContext& ctx, RecordSource& source) {
  const int64_t dim = ctx.config.index.dim;
  const int64_t cap = ctx.config.sharding.centroids_training_sample_size;
  const auto total = source.SizeHint().value_or(0);
  Matrix sample{0, dim, {}};
  std::mt19937_64 rng(kSampleSeed);
  RETURN_IF_ERROR(source.Rewind());
  Record record;
  int64_t seen = 0;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, source.Next(&record));
    if (!more) break;
    RETURN_IF_ERROR(CheckRecordVector(record, record.vector, dim, ctx.config.index.metric, seen));
    if (seen < cap) {
      sample.data.insert(sample.data.end(), record.vector.begin(), record.vector.end());
      ++sample.rows;
    } else {
      const uint64_t slot = rng() % static_cast<uint64_t>(seen + 1);
      if (slot < static_cast<uint64_t>(cap)) std::copy(record.vector.begin(), record.vector.end(), sample.row(slot));
    }
    ++seen;
    if (seen % 65536 == 0) Report(ctx.config, "sample", seen, total);
  }
  if (sample.rows == 0) return Status::InvalidArgument("Cannot train centroids from an empty record set");
  return sample;
}

Status ResolveRouting(RunContext& ctx, RecordSource& source) {
  const ShardingConfig& s = ctx.config.sharding;
  std::optional<Matrix> sample;
  if (s.strategy == Strategy::kCluster && s.train_centroids) {
    ASSIGN_OR_RETURN(sample, SampleForTraining(ctx, source));
    Report(ctx.config, "train", 0, 0);
  }
  ASSIGN_OR_RETURN(ctx.plan, ResolveRoutingPlan(ctx.config, sample ? &*sample : nullptr));
  if (sample) {
    LogEvent(LogLevel::kInfo, "centroids_trained",
             {{"run_id", ctx.run_id}, {"num_centroids", ctx.plan.num_dbs}, {"sample_size", sample->rows}});
  }
  return Status::OK();
}

// Where routed records wait for their shard's build: copies in per-shard spool files, or, for a
// batch in memory, just their row numbers (no copy, no local disk).
struct RoutedRecords {
  std::vector<SpoolWriter> spools;              // index = db_id, when spooled
  std::vector<std::vector<int64_t>> rows;       // index = db_id, when read in place
  int64_t count(size_t db) const {
    return spools.empty() ? static_cast<int64_t>(rows[db].size()) : spools[db].rows();
  }
};

// Checks one record (vector values, payload) and returns its shard; `payload` gets the canonical
// payload text when asked for. Both routing paths call this, so they refuse exactly the same rows.
Result<int64_t> CheckAndAssign(const RunContext& ctx, const Router& router, const Record& record,
                               std::span<const float> vector, int64_t row,
                               std::optional<std::string>* payload = nullptr) {
  RETURN_IF_ERROR(CheckRecordVector(record, vector, ctx.config.index.dim, ctx.config.index.metric, row));
  ASSIGN_OR_RETURN(std::optional<std::string> canonical, CanonicalPayload(record, row));
  if (payload != nullptr) *payload = std::move(canonical);
  return AssignRecord(router, record, vector, row);
}

// Checks and routes rows [begin, end) of a batch into `shard_of`; stops at the first bad row.
// Vectors are read where the batch holds them: a copy of each would cost as much as routing it.
Status RouteRange(const RunContext& ctx, const RecordBatch& batch, const Router& router, int64_t begin,
                  int64_t end, std::vector<int64_t>* shard_of) {
  Record record;
  for (int64_t row = begin; row < end; ++row) {
    batch.FieldsAt(row, &record);
    ASSIGN_OR_RETURN((*shard_of)[static_cast<size_t>(row)],
                     CheckAndAssign(ctx, router, record, batch.VectorAt(row), row));
  }
  return Status::OK();
}

// Routes a batch on every build thread at once (row ranges in order, so the first bad row reported
// is the first in the input), then lists each shard's rows.
Result<RoutedRecords> RouteInPlace(RunContext& ctx, const RecordBatch& batch, const Router& router) {
  const int64_t rows = batch.rows;
  const size_t threads = ThreadPool::DefaultSize(ctx.config.max_parallel_shards);
  const int64_t parts = std::clamp<int64_t>(rows / 4096, 1, static_cast<int64_t>(threads) * 4);
  std::vector<int64_t> shard_of(static_cast<size_t>(rows));
  std::vector<std::future<Status>> done;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool,
                     ThreadPool::Create(threads, "routing records (max_parallel_shards)"));
    for (int64_t p = 0; p < parts; ++p) {
      done.push_back(pool->Submit([&, p] {
        return RouteRange(ctx, batch, router, rows * p / parts, rows * (p + 1) / parts, &shard_of);
      }));
    }
  }
  for (auto& part : done) RETURN_IF_ERROR(part.get());
  Report(ctx.config, "route", rows, rows);
  RoutedRecords routed;
  routed.rows.resize(static_cast<size_t>(ctx.plan.num_dbs));
  for (int64_t row = 0; row < rows; ++row) routed.rows[static_cast<size_t>(shard_of[static_cast<size_t>(row)])].push_back(row);
  return routed;
}

// Routes every record, checking it on the way: in place for a batch, otherwise from the stream into
// per-shard spool files.
Result<RoutedRecords> RouteRecords(RunContext& ctx, RecordSource& source, const RecordBatch* batch,
                                   const Router& router) {
  if (batch) return RouteInPlace(ctx, *batch, router);
  const auto num_dbs = static_cast<size_t>(ctx.plan.num_dbs);
  RoutedRecords routed;
  const fs::path spool_dir = ctx.local_run_dir / "spool";
  RETURN_IF_ERROR(CreateDirectories(spool_dir));
  const size_t flush_bytes = std::clamp<size_t>(kSpoolBudgetBytes / num_dbs, 64u << 10, 4u << 20);
  routed.spools.reserve(num_dbs);
  for (size_t db = 0; db < num_dbs; ++db) {
    routed.spools.emplace_back(spool_dir / fmt::format("db={:05d}.spool", db), flush_bytes);
  }
  const auto total = source.SizeHint().value_or(0);
  RETURN_IF_ERROR(source.Rewind());
  Record record;
  for (int64_t row = 0;; ++row) {
    ASSIGN_OR_RETURN(bool more, source.Next(&record));
    if (!more) break;
    std::optional<std::string> payload;
    ASSIGN_OR_RETURN(const int64_t db, CheckAndAssign(ctx, router, record, record.vector, row, &payload));
    RETURN_IF_ERROR(routed.spools[static_cast<size_t>(db)].Append(record.id, record.vector, payload));
    if ((row + 1) % 16384 == 0) Report(ctx.config, "route", row + 1, total);
  }
  for (auto& spool : routed.spools) RETURN_IF_ERROR(spool.Flush());
  return routed;
}

// Starts loading a vector the build reads next: a shard's rows lie scattered through the source,
// where the hardware prefetcher cannot guess the next one.
void Prefetch(std::span<const float> vector) {
  const char* bytes = reinterpret_cast<const char*>(vector.data());
  for (size_t offset = 0; offset < vector.size_bytes(); offset += 64) __builtin_prefetch(bytes + offset);
}

// Builds one shard from its routed records, uploads it, and removes the local files; `id_hashes` gets
// its rows' id hashes.
Result<ShardInfo> BuildRoutedShard(const RunContext& ctx, int64_t db_id, const RecordBatch* batch,
                                   const RoutedRecords& routed, std::vector<uint64_t>* id_hashes) {
  const auto db = static_cast<size_t>(db_id);
  // The shard's row count is known here, so its pages and chunks are sized to it.
  ASSIGN_OR_RETURN(std::vector<FilterColumnSpec> filter_columns,
                   ParseFilterColumnSpecs(ctx.config.filter_columns, "filter_columns"));
  const ShardBuildOptions options{.dim = ctx.config.index.dim, .metric = ctx.config.index.metric, .page_size = 0,
                                  .expected_rows = routed.count(db),
                                  .int8_codes = WritesInt8Codes(ctx.config.index.quantization),
                                  .sublists = ctx.config.sharding.sublists_per_shard,
                                  .filter_columns = std::move(filter_columns)};
  const ShardFileTarget target{ctx.store.get(), ctx.run_id, db_id, 0, LocalAttemptDir(ctx.local_run_dir, db_id, 0),
                               options, LayoutOf(ctx.config)};
  if (routed.spools.empty()) {
    return BuildAndUploadShard(target, [&](ShardBuilder& builder) -> Status {
      BatchPacer pacer(ctx.config);
      Record record;
      const std::vector<int64_t>& rows = routed.rows[db];
      for (size_t i = 0; i < rows.size(); ++i) {
        const int64_t row = rows[i];
        if (i + 1 < rows.size()) Prefetch(batch->VectorAt(rows[i + 1]));
        batch->FieldsAt(row, &record);
        // Checked when routed; the canonical text is made again rather than kept for every row.
        ASSIGN_OR_RETURN(std::optional<std::string> payload, CanonicalPayload(record, row));
        RETURN_IF_ERROR(pacer.BeforeRow());
        RETURN_IF_ERROR(builder.Add(record.id, batch->VectorAt(row).data(), payload));
      }
      return Status::OK();
    }, id_hashes);
  }
  const fs::path& spool_path = routed.spools[db].path();
  Result<ShardInfo> info = BuildAndUploadShard(target, [&](ShardBuilder& builder) -> Status {
    ASSIGN_OR_RETURN(SpoolReader reader, SpoolReader::Open(spool_path, ctx.config.index.dim));
    BatchPacer pacer(ctx.config);
    RecordId id;
    std::vector<float> vector;
    std::optional<std::string> payload;
    for (;;) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&id, &vector, &payload));
      if (!more) return Status::OK();
      RETURN_IF_ERROR(pacer.BeforeRow());
      RETURN_IF_ERROR(builder.Add(id, vector.data(), payload));
    }
  }, id_hashes);
  std::error_code ec;
  fs::remove(spool_path, ec);
  return info;
}

// The built shards (ascending db_id); `id_hashes` (one slot per db_id) gets each shard's id hashes.
Result<std::vector<ShardInfo>> BuildShards(RunContext& ctx, const RecordBatch* batch, const RoutedRecords& routed,
                                           std::vector<std::vector<uint64_t>>& id_hashes) {
  std::vector<int64_t> todo;
  int64_t total_rows = 0;
  for (size_t db = 0; db < static_cast<size_t>(ctx.plan.num_dbs); ++db) {
    if (routed.count(db) > 0) {
      todo.push_back(static_cast<int64_t>(db));
      total_rows += routed.count(db);
    }
  }
  // Largest shards first, so the pool does not end on one long straggler.
  std::stable_sort(todo.begin(), todo.end(),
                   [&](int64_t a, int64_t b) { return routed.count(a) > routed.count(b); });
  // By default one build more than there are cores: each shard ends in an fsync (and, on S3, an
  // upload) that waits without using its core, which the extra build then uses.
  const size_t wanted = ctx.config.max_parallel_shards > 0 ? ThreadPool::DefaultSize(ctx.config.max_parallel_shards)
                                                           : ThreadPool::DefaultSize(0) + 1;
  const size_t threads = std::min<size_t>(wanted, std::max<size_t>(1, todo.size()));
  static std::once_flag warned;
  if (threads > 1 && !ConfigureSqliteOnce()) {
    std::call_once(warned, [] {
      LogEvent(LogLevel::kWarning, "sqlite_memstatus_unavailable", {{"message", "SQLite was initialised before shardvec could turn off its memory statistics, so parallel "
                 "shard builds contend on one mutex; import shardvec (or load the engine) before anything "
                 "else opens SQLite, e.g. Python's sqlite3"}});
    });
  }
  // The first shard to fail (in time) is the cause reported; shards not started by then are skipped.
  // A skipped shard's own status never replaces the cause, whatever the cause's code.
  std::mutex failure_mu;
  Status first_failure;
  std::atomic<bool> failed{false};
  std::vector<std::future<Result<ShardInfo>>> futures;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool,
                     ThreadPool::Create(threads, "shard builds (max_parallel_shards)"));
    for (int64_t db : todo) {
      futures.push_back(pool->Submit([&, db]() -> Result<ShardInfo> {
        if (failed.load()) return Status::Unavailable("skipped after an earlier shard failed");
        auto result = BuildRoutedShard(ctx, db, batch, routed, &id_hashes[static_cast<size_t>(db)]);
        if (!result.ok()) {
          std::lock_guard<std::mutex> lock(failure_mu);
          if (first_failure.ok()) first_failure = result.status();
          failed.store(true);
        }
        return result;
      }));
    }
    int64_t rows_done = 0;
    Report(ctx.config, "build", 0, total_rows);
    for (size_t i = 0; i < futures.size(); ++i) {
      futures[i].wait();
      rows_done += routed.count(static_cast<size_t>(todo[i]));
      Report(ctx.config, "build", rows_done, total_rows);
    }
  }
  std::vector<ShardInfo> shards;
  for (auto& f : futures) {
    Result<ShardInfo> r = f.get();
    if (r.ok()) {
      if (ctx.config.metrics) {
        EmitMetric(*ctx.config.metrics, metric_events::kShardWriteCompleted,
                   {{"run_id", ctx.run_id}, {"db_id", r->db_id}, {"row_count", r->row_count}, {"db_bytes", r->db_bytes}});
      }
      shards.push_back(std::move(r).value());
    }
  }
  if (!first_failure.ok()) return first_failure;  // WriteSharded removes what was uploaded
  std::sort(shards.begin(), shards.end(), [](const ShardInfo& a, const ShardInfo& b) { return a.db_id < b.db_id; });
  return shards;
}

// `records` streams the input (for a batch, `batch` read as a stream); `batch` is null for a stream.
Result<BuildResult> RunWrite(RunContext& ctx, RecordSource& records, const RecordBatch* batch) {
  // Training reads the input twice; a one-shot stream is kept on local disk for the second pass.
  const bool two_passes = ctx.config.sharding.strategy == Strategy::kCluster && ctx.config.sharding.train_centroids;
  std::optional<ReplayableSource> replayable;
  if (two_passes && !records.CanRewind()) {
    RETURN_IF_ERROR(CreateDirectories(ctx.local_run_dir));
    replayable.emplace(records, ctx.local_run_dir / "input.spool", ctx.config.index.dim);
  }
  RecordSource& source = replayable ? static_cast<RecordSource&>(*replayable) : records;
  BuildDurations durations;
  auto phase_start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ResolveRouting(ctx, source));
  ASSIGN_OR_RETURN(std::unique_ptr<Router> router, MakeRouter(ctx.plan));
  ASSIGN_OR_RETURN(RoutedRecords routed, RouteRecords(ctx, source, batch, *router));
  durations.sharding_ms = MillisSince(phase_start);
  phase_start = std::chrono::steady_clock::now();
  std::vector<std::vector<uint64_t>> id_hashes(static_cast<size_t>(ctx.plan.num_dbs));
  ASSIGN_OR_RETURN(std::vector<ShardInfo> shards, BuildShards(ctx, batch, routed, id_hashes));
  durations.write_ms = MillisSince(phase_start);
  const auto num_attempts = static_cast<int64_t>(shards.size());
  Report(ctx.config, "publish", 0, 0);
  phase_start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Manifest manifest, ComposeManifest(*ctx.store, ctx.config, ctx.plan, ctx.run_id, shards));
  std::vector<IdIndexEntry> entries;
  int64_t rows = 0;
  for (const ShardInfo& shard : shards) rows += shard.row_count;
  entries.reserve(static_cast<size_t>(rows));
  for (size_t db = 0; db < id_hashes.size(); ++db) {
    AppendShardEntries(entries, static_cast<int64_t>(db), std::move(id_hashes[db]));
  }
  id_hashes.clear();
  RETURN_IF_ERROR(WriteIdIndex(*ctx.store, ctx.run_id, std::move(entries), manifest));
  if (ctx.before_publish) RETURN_IF_ERROR(ctx.before_publish());
  ASSIGN_OR_RETURN(PublishResult published,
                   PublishRun(*ctx.manifests, manifest, ctx.started, ctx.config.publish_policy,
                              ctx.config.allow_schema_change));
  durations.manifest_ms = MillisSince(phase_start);
  if (ctx.config.metrics) {
    EmitMetric(*ctx.config.metrics, metric_events::kWritePublished,
               {{"run_id", ctx.run_id}, {"manifest_ref", published.manifest_ref}});
  }
  BuildResult result = MakeBuildResult(ctx.run_id, published, ctx.plan.num_dbs, std::move(shards));
  result.durations = durations;
  result.num_attempt_results = num_attempts;
  return result;
}

Result<BuildResult> Write(const WriteConfig& config, RecordSource& records, const RecordBatch* batch,
                          std::shared_ptr<ObjectStore> store, std::function<Status()> before_publish = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(Validate(config));
  if (batch) RETURN_IF_ERROR(batch->Check());
  RETURN_IF_ERROR(UseSqliteVec("vec0_path", config.vec0_path));
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(config.store, config.store_options));
  }
  RunContext ctx{config, store, WriteManifestStore(config, store), config.run_id.value_or(NewUuidHex()), NowUtc(),
                 {}, {}, std::move(before_publish)};
  // A refused schema change fails before anything is claimed, sampled or trained.
  RETURN_IF_ERROR(CheckSchemaBeforeBuild(*ctx.manifests, config));
  // Run-scoped, so a reused local_root never mixes two builds; held until the build ends.
  ASSIGN_OR_RETURN(LocalRunFolder run_folder,
                   ClaimLocalRunFolder(config.local_root, ctx.run_id, FileLock::Mode::kExclusive));
  ctx.local_run_dir = run_folder.dir;
  // Before anything is uploaded: a reused run id would write over a published snapshot's objects.
  RETURN_IF_ERROR(ClaimRunId(*store, ctx.run_id, config.run_id.has_value(), LayoutOf(config)));
  // An unwritable store fails here, not after the training and the builds.
  RETURN_IF_ERROR(ProbeStoreWritable(*store, ctx.run_id, LayoutOf(config)));
  if (config.metrics) EmitMetric(*config.metrics, metric_events::kWriteStarted, {{"run_id", ctx.run_id}});
  std::unique_ptr<RunRecordLifecycle> run_record = RunRecordLifecycle::Start(store, ctx.run_id, "vector-shardvec", LayoutOf(config));
  Result<BuildResult> result = RunWrite(ctx, records, batch);
  ReleaseLocalRunFolder(run_folder);
  if (!result.ok()) {
    RemoveUnpublishedRun(*ctx.store, *ctx.manifests, ctx.run_id, LayoutOf(config), result.status());
    run_record->MarkFailed(result.status());
    return result.status();
  }
  run_record->MarkSucceeded(result->manifest_ref);
  result->elapsed_ms = MillisSince(t0);
  result->durations.total_ms = result->elapsed_ms;
  LogEvent(LogLevel::kInfo, "vector_write_completed",
           {{"run_id", result->run_id}, {"manifest_ref", result->manifest_ref}, {"total_vectors", result->total_vectors},
            {"num_shards", result->num_dbs}, {"elapsed_ms", static_cast<int64_t>(result->elapsed_ms)}});
  if (config.metrics) {
    EmitMetric(*config.metrics, metric_events::kWriteCompleted,
               {{"run_id", result->run_id}, {"total_vectors", result->total_vectors}, {"num_shards", result->num_dbs},
                {"elapsed_ms", static_cast<int64_t>(result->elapsed_ms)}});
  }
  return result;
}

}  // namespace

Result<BuildResult> WriteSharded(const WriteConfig& config, const RecordBatch& records,
                                 std::shared_ptr<ObjectStore> store) {
  RecordBatchSource stream(records);  // the training sample's pass
  return Write(config, stream, &records, std::move(store));
}

Result<BuildResult> WriteSharded(const WriteConfig& config, RecordSource& records,
                                 std::shared_ptr<ObjectStore> store) {
  return Write(config, records, nullptr, std::move(store));
}

Result<BuildResult> WriteShardedCheckingBeforePublish(const WriteConfig& config, RecordSource& records,
                                                      std::shared_ptr<ObjectStore> store,
                                                      std::function<Status()> before_publish) {
  return Write(config, records, nullptr, std::move(store), std::move(before_publish));
}

}  // namespace shardvec
