// The distributed write (docs/architecture.md#distributed-build): workers route rows and build whole shards, each in its own
// claimed attempt=NN folder; the driver keeps one winner per db_id, publishes the winners as
// WriteSharded does, and deletes every other attempt.
#include "shardvec/distributed.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <span>

#include "common/json_text.h"
#include "common/log.h"
#include "metrics/emit.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "common/time_util.h"
#include "format/keys.h"
#include "routing/routing_plan.h"
#include "shard/sublists.h"
#include "write/config_validation.h"
#include "write/id_index.h"
#include "write/manifest_compose.h"
#include "snapshot/publisher.h"
#include "write/record_check.h"
#include "write/run_claim.h"
#include "write/run_registry.h"
#include "write/shard_task.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxClaims = 100;

KeyLayout LayoutOf(const ShardTask& t) { return KeyLayout{t.shard_prefix, t.db_path_template}; }

Status CheckShardTask(const ShardTask& t) {
  RETURN_IF_ERROR(ValidateRunId(t.run_id));
  RETURN_IF_ERROR(ValidateKeyLayout(LayoutOf(t), {"shard task shard_prefix", "shard task db_path_template"}));
  if (t.db_id < 0) return Status::InvalidArgument(fmt::format("shard task db_id must be >= 0 (got {})", t.db_id));
  if (t.dim <= 0) return Status::InvalidArgument(fmt::format("shard task dim must be > 0 (got {})", t.dim));
  RETURN_IF_ERROR(ValidateQuantization(t.quantization, "shard task quantization"));
  if (t.sublists_per_shard < 0 || t.sublists_per_shard > kMaxSublistsPerShard) {
    return Status::InvalidArgument(fmt::format("shard task sublists_per_shard must be in 0..{} (0 = auto, 1 = none; got {})",
                                               kMaxSublistsPerShard, t.sublists_per_shard));
  }
  if (t.first_attempt < 0) {
    return Status::InvalidArgument(fmt::format("shard task first_attempt must be >= 0 (got {})", t.first_attempt));
  }
  return Status::OK();
}

// Who holds an attempt folder, for whoever finds a stray one.
std::string AttemptMarker(const ShardTask& t, int64_t attempt) {
  return ClaimMarker({{"run_id", t.run_id}, {"db_id", t.db_id}, {"attempt", attempt}});
}

// The first free attempt number from task.first_attempt on, taken with a put-if-absent marker.
Result<int64_t> ClaimAttempt(ObjectStore& store, const ShardTask& t) {
  for (int64_t attempt = t.first_attempt; attempt < t.first_attempt + kMaxClaims; ++attempt) {
    Status st = store.PutIfAbsent(ShardClaimKey(t.run_id, t.db_id, attempt, LayoutOf(t)), AttemptMarker(t, attempt));
    if (st.ok()) return attempt;
    if (st.code() != StatusCode::kAlreadyExists && st.code() != StatusCode::kConflict) {
      return st.WithContext(fmt::format("claim of db_id {} attempt {}", t.db_id, attempt));
    }
  }
  return Status::Conflict(fmt::format("db_id {} of run {}: attempts {}..{} are all claimed", t.db_id, t.run_id,
                                      t.first_attempt, t.first_attempt + kMaxClaims - 1));
}

class DistributedWriteImpl final : public DistributedWrite {
 public:
  DistributedWriteImpl(WriteConfig config, std::shared_ptr<ObjectStore> store, std::string run_id,
                       std::unique_ptr<RunRecordLifecycle> run_record)
      : config_(std::move(config)),
        store_(std::move(store)),
        manifests_(WriteManifestStore(config_, store_)),
        run_id_(std::move(run_id)),
        run_record_(std::move(run_record)) {}

  ~DistributedWriteImpl() override {
    if (state_ == State::kOpen) Abort(Status::Internal("the distributed write ended without Publish or Abort"));
  }

  const std::string& run_id() const override { return run_id_; }

  Result<BuildResult> Publish(const RoutingPlan& plan, std::vector<ShardInfo> attempts) override {
    if (state_ != State::kOpen) {
      return Status::InvalidArgument(fmt::format("run {} already ended; Publish runs once", run_id_));
    }
    const auto publish_start = std::chrono::steady_clock::now();
    const auto num_attempts = static_cast<int64_t>(attempts.size());
    Result<BuildResult> result = PublishWinners(plan, std::move(attempts));
    if (!result.ok()) {
      Abort(result.status());
      return result.status();
    }
    state_ = State::kPublished;
    run_record_->MarkSucceeded(result->manifest_ref);
    DeleteLeftovers();
    result->num_attempt_results = num_attempts;
    result->durations.manifest_ms = MillisSince(publish_start);
    result->elapsed_ms = MillisSince(t0_);
    result->durations.total_ms = result->elapsed_ms;
    // The plan was made by the caller; all the rest before the publish was the workers' shards.
    result->durations.write_ms = result->elapsed_ms - result->durations.manifest_ms;
    ReportPublished(*result);
    return result;
  }

  void Abort(const Status& error) override {
    if (state_ != State::kOpen) return;
    state_ = State::kFailed;
    run_record_->MarkFailed(error);
    DeleteLeftovers();
  }

 private:
  enum class State { kOpen, kPublished, kFailed };

  // The workers ran in other processes, so the driver reports each published shard (not losers).
  void ReportPublished(const BuildResult& result) const {
    LogEvent(LogLevel::kInfo, "vector_manifest_published", {{"run_id", run_id_}, {"manifest_ref", result.manifest_ref}});
    LogEvent(LogLevel::kInfo, "vector_write_completed",
             {{"run_id", run_id_}, {"manifest_ref", result.manifest_ref}, {"total_vectors", result.total_vectors},
              {"num_shards", result.num_dbs}, {"elapsed_ms", static_cast<int64_t>(result.elapsed_ms)}});
    if (!config_.metrics) return;
    MetricsSink& sink = *config_.metrics;
    for (const ShardInfo& s : result.shards) {
      EmitMetric(sink, metric_events::kShardWriteCompleted,
                 {{"run_id", run_id_}, {"db_id", s.db_id}, {"row_count", s.row_count}, {"db_bytes", s.db_bytes}});
    }
    EmitMetric(sink, metric_events::kWritePublished, {{"run_id", run_id_}, {"manifest_ref", result.manifest_ref}});
    EmitMetric(sink, metric_events::kWriteCompleted,
               {{"run_id", run_id_}, {"total_vectors", result.total_vectors}, {"num_shards", result.num_dbs},
                {"elapsed_ms", static_cast<int64_t>(result.elapsed_ms)}});
  }

  Status CheckAttempts(const RoutingPlan& plan, const std::vector<ShardInfo>& attempts) const {
    RETURN_IF_ERROR(CheckRoutingPlan(plan));
    if (plan.dim != config_.index.dim || plan.metric != config_.index.metric ||
        plan.strategy != config_.sharding.strategy) {
      return Status::InvalidArgument("the routing plan's dim, metric or strategy differs from the config's");
    }
    for (const ShardInfo& s : attempts) {
      if (s.db_id < 0 || s.db_id >= plan.num_dbs) {
        return Status::InvalidArgument(
            fmt::format("shard db_id {} is outside [0, {}) (num_dbs {})", s.db_id, plan.num_dbs, plan.num_dbs));
      }
      // Cleanup trusts the layout: every attempt must be this run's folder for its db_id.
      const std::string expected = store_->Url(ShardDirKey(run_id_, s.db_id, s.attempt, layout_));
      if (s.attempt < 0 || s.db_url != expected) {
        return Status::InvalidArgument(fmt::format("shard db_id {} attempt {}: db_url '{}' is not this run's '{}'",
                                                   s.db_id, s.attempt, s.db_url, expected));
      }
    }
    return Status::OK();
  }

  Result<BuildResult> PublishWinners(const RoutingPlan& plan, std::vector<ShardInfo> attempts) {
    RETURN_IF_ERROR(CheckAttempts(plan, attempts));
    // One winner per db_id: the lowest attempt, then the smallest URL, whatever order tasks reported in.
    std::map<int64_t, ShardInfo> winners;
    for (ShardInfo& s : attempts) {
      auto [it, inserted] = winners.try_emplace(s.db_id, s);
      if (!inserted && std::tie(s.attempt, s.db_url) < std::tie(it->second.attempt, it->second.db_url)) {
        it->second = std::move(s);
      }
    }
    std::vector<ShardInfo> shards;
    for (auto& [db_id, s] : winners) {
      if (s.row_count > 0) shards.push_back(std::move(s));
    }
    ASSIGN_OR_RETURN(Manifest manifest, ComposeManifest(*store_, config_, plan, run_id_, shards));
    RETURN_IF_ERROR(MergeIdIndexParts(plan, shards, manifest));
    auto published = PublishRun(*manifests_, manifest, started_, config_.publish_policy,
                                config_.allow_schema_change);
    // Once the manifest is in history (a lost publish race can be rolled back to), its shards and
    // routing files stay even though the publish failed.
    if (published.ok() || RunHasManifest(*manifests_, run_id_)) {
      manifest_written_ = true;
      keep_.insert(RunClaimKey(run_id_, layout_));
      for (const ShardInfo& s : shards) {
        keep_.insert(ShardKey(run_id_, s.db_id, s.attempt, layout_));
        keep_.insert(ShardClaimKey(run_id_, s.db_id, s.attempt, layout_));
      }
    }
    if (!published.ok()) return published.status();
    return MakeBuildResult(run_id_, *published, plan.num_dbs, std::move(shards));
  }

  // The snapshot's id index, merged from the winners' parts (ShardIdIndexPartKey, each sorted, of its
  // shard's rows only), written and recorded in `manifest`. A winner without a part (a task of an
  // older shardvec) leaves the snapshot without an index, as before, with a warning: its first
  // update reads every shard's id map instead. The parts are deleted with the other leftovers.
  Status MergeIdIndexParts(const RoutingPlan& plan, const std::vector<ShardInfo>& shards, Manifest& manifest) {
    int64_t rows = 0;
    for (const ShardInfo& s : shards) rows += s.row_count;
    std::vector<IdIndexEntry> entries;
    entries.reserve(static_cast<size_t>(rows));
    for (const ShardInfo& s : shards) {
      const std::string key = ShardIdIndexPartKey(run_id_, s.db_id, s.attempt, layout_);
      Result<std::string> bytes = store_->Get(key, IdIndexBytes(s.row_count));
      if (bytes.status().code() == StatusCode::kNotFound) {
        LogEvent(LogLevel::kWarning, "build_without_id_index",
                 {{"run_id", run_id_}, {"db_id", s.db_id},
                  {"message", fmt::format("shard db_id {} (attempt {}) came without its id index part '{}' (a task "
                                          "of an older shardvec?): the snapshot is published without an id index, "
                                          "so its first update reads every shard's id map",
                                          s.db_id, s.attempt, store_->Url(key))}});
        return Status::OK();
      }
      if (!bytes.ok()) return bytes.status().WithContext(fmt::format("id index part of db_id {}", s.db_id));
      ASSIGN_OR_RETURN(IdIndex part, IdIndex::Parse(std::move(bytes).value(), plan.num_dbs, store_->Url(key)));
      bool alone = part.size() == s.row_count;
      for (int64_t i = 0; alone && i < part.size(); ++i) alone = part.entry(i).db_id == static_cast<uint32_t>(s.db_id);
      if (!alone) {
        return Status::Corruption(fmt::format("id index part '{}' does not list the {} rows of db_id {} alone",
                                              store_->Url(key), s.row_count, s.db_id));
      }
      for (int64_t i = 0; i < part.size(); ++i) entries.push_back(part.entry(i));
    }
    return WriteIdIndex(*store_, run_id_, std::move(entries), manifest);
  }

  // Deletes this run's objects that no written manifest needs: losing and failed attempts, claim
  // markers of empty ones, and everything when no manifest was written. Failures are only logged:
  // the snapshot is already decided, and `cleanup` removes what is left.
  void DeleteLeftovers() {
    std::vector<std::string> prefixes = {RunShardsPrefix(run_id_, layout_)};
    if (!manifest_written_) prefixes.push_back(VectorMetaKey(run_id_, ""));
    std::vector<std::string> doomed;
    for (const std::string& prefix : prefixes) {
      Result<ListResult> listed = store_->List(prefix);
      if (!listed.ok()) {
        LogEvent(LogLevel::kWarning, "leftover_cleanup_failed",
                 {{"run_id", run_id_}, {"prefix", prefix}, {"error", listed.status().ToString()}});
        continue;
      }
      for (const ObjectInfo& o : listed->objects) {
        if (!keep_.count(o.key)) doomed.push_back(o.key);
      }
    }
    Status st = store_->DeleteMany(doomed);
    if (!st.ok()) {
      LogEvent(LogLevel::kWarning, "leftover_cleanup_failed", {{"run_id", run_id_}, {"error", st.ToString()}});
    }
  }

  const WriteConfig config_;
  const KeyLayout layout_ = LayoutOf(config_);
  const std::shared_ptr<ObjectStore> store_;
  const std::shared_ptr<ManifestStore> manifests_;
  const std::string run_id_;
  const SystemTime started_ = NowUtc();
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::unique_ptr<RunRecordLifecycle> run_record_;
  State state_ = State::kOpen;
  bool manifest_written_ = false;
  std::set<std::string> keep_;  // object keys the written manifest names
};

}  // namespace

Result<ShardInfo> BuildShardAttempt(const ShardTask& task, RecordSource& records, std::shared_ptr<ObjectStore> store) {
  RETURN_IF_ERROR(CheckShardTask(task));
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(task.store, task.store_options));
  }
  ASSIGN_OR_RETURN(const int64_t attempt, ClaimAttempt(*store, task));
  RETURN_IF_ERROR(records.Rewind());
  ASSIGN_OR_RETURN(LocalRunFolder run_folder, ClaimLocalRunFolder(task.local_root, task.run_id, FileLock::Mode::kShared));
  ASSIGN_OR_RETURN(std::vector<FilterColumnSpec> filter_columns,
                   ParseFilterColumnSpecs(task.filter_columns, "shard task filter_columns"));
  // A source that knows its record count gets a shard sized to it, byte for byte WriteSharded's.
  const ShardBuildOptions options{.dim = task.dim, .metric = task.metric, .page_size = 0,
                                  .expected_rows = records.SizeHint().value_or(0),
                                  .int8_codes = WritesInt8Codes(task.quantization),
                                  .sublists = task.sublists_per_shard,
                                  .filter_columns = std::move(filter_columns)};
  const ShardFileTarget target{store.get(), task.run_id, task.db_id, attempt,
                               LocalAttemptDir(run_folder.dir, task.db_id, attempt), options, LayoutOf(task)};
  // The claim makes this folder ours: anything in it is left by a crashed process.
  std::error_code ec;
  fs::remove_all(target.build_dir, ec);
  std::vector<uint64_t> id_hashes;
  Result<ShardInfo> info = BuildAndUploadShard(target, [&](ShardBuilder& builder) -> Status {
    Record record;
    for (int64_t row = 0;; ++row) {
      ASSIGN_OR_RETURN(bool more, records.Next(&record));
      if (!more) return Status::OK();
      RETURN_IF_ERROR(CheckRecordVector(record, record.vector, task.dim, task.metric, row));
      ASSIGN_OR_RETURN(std::optional<std::string> payload, CanonicalPayload(record, row));
      RETURN_IF_ERROR(builder.Add(record.id, record.vector.data(), payload));
    }
  }, &id_hashes);
  ReleaseLocalRunFolder(run_folder);  // removed only once no other task of this run builds beside it
  if (!info.ok() || info->row_count == 0) return info;
  // The shard's part of the snapshot's id index, beside it, for the driver to merge (12 bytes a row).
  std::vector<IdIndexEntry> entries;
  entries.reserve(id_hashes.size());
  AppendShardEntries(entries, task.db_id, std::move(id_hashes));
  RETURN_IF_ERROR(store->PutIfAbsent(ShardIdIndexPartKey(task.run_id, task.db_id, attempt, LayoutOf(task)),
                                     IdIndex(std::move(entries)).bytes())
                      .WithContext(fmt::format("upload of the id index part of shard {}", task.db_id)));
  return info;
}

Result<std::unique_ptr<DistributedWrite>> DistributedWrite::Begin(const WriteConfig& config, std::string writer_type,
                                                                  std::shared_ptr<ObjectStore> store) {
  RETURN_IF_ERROR(Validate(config));
  if (writer_type.empty()) return Status::InvalidArgument("writer_type must not be empty");
  if (!config.vec0_path.empty()) {
    // The shards are built by tasks in other processes, each loading its own default vec0.
    return Status::InvalidArgument(fmt::format(
        "vec0_path='{}' cannot take effect in a distributed write (its tasks load their own default)",
        config.vec0_path));
  }
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(config.store, config.store_options));
  }
  RETURN_IF_ERROR(CheckSchemaBeforeBuild(*WriteManifestStore(config, store), config));
  std::string run_id = config.run_id.value_or(NewUuidHex());
  RETURN_IF_ERROR(ClaimRunId(*store, run_id, config.run_id.has_value(), LayoutOf(config)));
  RETURN_IF_ERROR(ProbeStoreWritable(*store, run_id, LayoutOf(config)));
  if (config.metrics) EmitMetric(*config.metrics, metric_events::kWriteStarted, {{"run_id", run_id}});
  auto run_record = RunRecordLifecycle::Start(store, run_id, writer_type, LayoutOf(config));
  return std::unique_ptr<DistributedWrite>(
      std::make_unique<DistributedWriteImpl>(config, std::move(store), std::move(run_id), std::move(run_record)));
}

}  // namespace shardvec
