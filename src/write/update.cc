// UpdateSharded: load the base snapshot → check the config against it → check and route the upserts
// with the base's router → find the shards of the changed ids (the base's id index, or every
// shard's id map) → rebuild those shards from their base file plus their upserts → compose the
// manifest (other shards shared by URL and digest, a new id index) → publish as WriteSharded does.
#include "shardvec/update.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/digest.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "common/time_util.h"
#include "format/keys.h"
#include "format/routing_json.h"
#include "metrics/emit.h"
#include "read/snapshot_loader.h"
#include "read/sublist_router.h"
#include "routing/distance.h"
#include "shard/shard_builder.h"
#include "shard/sqlite_vec.h"
#include "snapshot/history.h"
#include "write/base_shard.h"
#include "write/config_validation.h"
#include "write/id_index.h"
#include "write/manifest_compose.h"
#include "write/record_check.h"
#include "write/run_claim.h"
#include "write/run_registry.h"
#include "write/shard_task.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// Over this ratio of the upserts' mean centroid distance to the base rows', or of the largest
// shard to the mean (and 1.25 x the base's), a full rebuild is advised.
constexpr double kDriftAdvice = 1.5;
constexpr double kImbalanceAdvice = 2.0;

// custom.<block>.<field>, or null when absent.
nlohmann::json CustomField(const Manifest& m, const char* block, const char* field) {
  if (!m.custom.is_object() || !m.custom.contains(block) || !m.custom[block].is_object()) return nullptr;
  const nlohmann::json& b = m.custom[block];
  return b.contains(field) ? b[field] : nlohmann::json();
}

struct Base {
  ManifestRef ref;
  std::unique_ptr<LoadedSnapshot> snap;
  RoutingPlan plan;  // the snapshot's routing, as the manifest records it
};

// The manifest `base` names ("current" or a run id), loaded with its routing.
Result<Base> LoadBase(ObjectStore& store, ManifestStore& manifests, const std::string& base) {
  Base out;
  if (base.empty()) return Status::InvalidArgument("base must be \"current\" or a run id (got '')");
  if (base == "current") {
    ASSIGN_OR_RETURN(out.ref, LoadCurrentRef(manifests));
  } else {
    RollbackTarget target;
    target.run_id = base;
    ASSIGN_OR_RETURN(ManifestEntry entry, FindManifest(manifests, target));
    out.ref = ManifestRef{entry.ref, entry.run_id, entry.published_at};
  }
  ASSIGN_OR_RETURN(out.snap, LoadSnapshot(store, manifests, out.ref));
  out.plan = out.snap->routing;
  out.plan.num_probes = out.snap->num_probes;
  if (out.plan.hyperplanes) out.plan.num_hash_bits = out.plan.hyperplanes->rows;
  return out;
}

// Conflict (PublishConflictError) unless the current pointer still names the base.
Status CheckBaseCurrent(ManifestStore& manifests, const Base& base) {
  ASSIGN_OR_RETURN(ManifestRef current, LoadCurrentRef(manifests));
  if (IsCurrentRef(ManifestEntry{base.ref.ref, "", base.ref.run_id, base.ref.published_at}, current)) {
    return Status::OK();
  }
  return Status::Conflict(fmt::format(
             "PublishConflictError: the update's base snapshot (run_id={}, manifest '{}') is not the current one "
             "(run_id={}, manifest '{}'); update the current snapshot instead, or set publish_policy "
             "last-writer-wins to publish over it",
             base.ref.run_id, base.ref.ref, current.run_id, current.ref))
      .WithKind(ErrorKind::kPublishConflict);
}

// ---- The config against the base ------------------------------------------------------------

Status Disagree(std::string_view field, const std::string& given, const std::string& base, const Base& b) {
  return Status::InvalidArgument(fmt::format(
      "config {} is {} but the base snapshot (run_id={}) has {}; an update keeps the base's routing and shard "
      "settings (a full build changes them)",
      field, given, b.ref.run_id, base));
}

std::string MatrixText(const Matrix& m) { return fmt::format("a {}x{} matrix", m.rows, m.cols); }

Status CheckMatrixSame(std::string_view field, const std::optional<Matrix>& given, const std::optional<Matrix>& base,
                       const Base& b) {
  if (!given) return Status::OK();
  if (!base) return Disagree(field, MatrixText(*given), "none", b);
  if (given->rows != base->rows || given->cols != base->cols || given->data != base->data) {
    return Disagree(field, MatrixText(*given), MatrixText(*base) + " with other values", b);
  }
  return Status::OK();
}

Status CheckConfigAgainstBase(const WriteConfig& c, const Base& b) {
  const LoadedSnapshot& s = *b.snap;
  const Manifest& m = s.manifest;
  if (c.index.dim != s.dim) return Disagree("index.dim", std::to_string(c.index.dim), std::to_string(s.dim), b);
  if (c.index.metric != s.metric) {
    return Disagree("index.metric", std::string(MetricName(c.index.metric)), std::string(MetricName(s.metric)), b);
  }
  const nlohmann::json index_type = CustomField(m, "vector", "index_type");
  if (index_type.is_string() && index_type.get<std::string>() != c.index.index_type) {
    return Disagree("index.index_type", c.index.index_type, index_type.get<std::string>(), b);
  }
  const nlohmann::json built = CustomField(m, "shardvec", "quantization");
  const std::string base_quant = built.is_string() ? built.get<std::string>() : "none";
  const std::string quant = WritesInt8Codes(c.index.quantization) ? "int8" : "none";
  if (quant != base_quant) return Disagree("index.quantization", quant, base_quant, b);
  const ShardingConfig& sh = c.sharding;
  if (sh.strategy != s.strategy) {
    return Disagree("sharding.strategy", std::string(StrategyName(sh.strategy)), std::string(StrategyName(s.strategy)), b);
  }
  if (sh.num_dbs && *sh.num_dbs != s.num_dbs) {
    return Disagree("sharding.num_dbs", std::to_string(*sh.num_dbs), std::to_string(s.num_dbs), b);
  }
  if (sh.num_probes != s.num_probes) {
    return Disagree("sharding.num_probes", std::to_string(sh.num_probes), std::to_string(s.num_probes), b);
  }
  RETURN_IF_ERROR(CheckMatrixSame("sharding.centroids", sh.centroids, s.routing.centroids, b));
  RETURN_IF_ERROR(CheckMatrixSame("sharding.hyperplanes", sh.hyperplanes, s.routing.hyperplanes, b));
  // Outside LSH the field has only its default (Validate refuses others) and no effect.
  if (sh.strategy == Strategy::kLsh && sh.num_hash_bits && *sh.num_hash_bits != b.plan.num_hash_bits) {
    return Disagree("sharding.num_hash_bits", std::to_string(*sh.num_hash_bits), std::to_string(b.plan.num_hash_bits), b);
  }
  if (sh.cel_expr.value_or("") != s.routing.cel_expr) {
    return Disagree("sharding.cel_expr", "'" + sh.cel_expr.value_or("") + "'", "'" + s.routing.cel_expr + "'", b);
  }
  if (sh.cel_columns != s.routing.cel_columns) {
    return Disagree("sharding.cel_columns", nlohmann::json(sh.cel_columns).dump(),
                    nlohmann::json(s.routing.cel_columns).dump(), b);
  }
  const auto values_text = [](const std::optional<std::vector<RoutingValue>>& v) {
    return v ? RoutingValuesToJson(*v).dump() : std::string("none");
  };
  if (values_text(sh.routing_values) != values_text(s.routing.routing_values)) {
    return Disagree("sharding.routing_values", values_text(sh.routing_values), values_text(s.routing.routing_values), b);
  }
  const nlohmann::json base_filters = CustomField(m, "shardvec", "filter_columns");
  const nlohmann::json filters = c.filter_columns;
  if (filters != (base_filters.is_object() ? base_filters : nlohmann::json::object())) {
    return Disagree("filter_columns", filters.dump(), base_filters.is_object() ? base_filters.dump() : "{}", b);
  }
  if (c.shard_prefix != m.shard_prefix) return Disagree("shard_prefix", c.shard_prefix, m.shard_prefix, b);
  if (c.db_path_template != m.db_path_template) {
    return Disagree("db_path_template", c.db_path_template, m.db_path_template, b);
  }
  return Status::OK();
}

// ---- The changes ------------------------------------------------------------------------------

struct Upsert {
  int64_t row = 0;
  int64_t db = 0;
  std::optional<std::string> payload;  // canonical
};

struct Changes {
  std::vector<Upsert> upserts;                                // input order
  std::vector<std::vector<int64_t>> upserts_of;                // by db: indexes into upserts
  std::unordered_map<std::string, bool> ids;                   // id text -> is an upsert (else a delete)
  std::set<uint64_t> hashes;                                   // of every changed id
  std::optional<double> upsert_distance;                       // CLUSTER: mean to the assigned centroid
};

Result<Changes> CheckChanges(const WriteConfig& c, const LoadedSnapshot& s, const RecordBatch* upserts,
                             const std::vector<RecordId>& deletes) {
  Changes ch;
  ch.upserts_of.resize(static_cast<size_t>(s.num_dbs));
  std::unordered_map<std::string, int64_t> upsert_row;
  double distance_sum = 0;
  if (upserts != nullptr && upserts->rows > 0) {
    RETURN_IF_ERROR(upserts->Check());
    if (upserts->ids.empty() && upserts->int_ids.empty()) {
      return Status::InvalidArgument(fmt::format(
          "upserts: {} rows without ids; an update replaces and deletes rows by id, so every upsert needs one",
          upserts->rows));
    }
    if (upserts->dim != s.dim) {
      return Status::InvalidArgument(fmt::format("upserts have dim {} but the base snapshot has dim {}", upserts->dim, s.dim));
    }
    Record record;
    for (int64_t row = 0; row < upserts->rows; ++row) {
      upserts->FieldsAt(row, &record);
      const std::span<const float> vector = upserts->VectorAt(row);
      RETURN_IF_ERROR(CheckRecordVector(record, vector, s.dim, s.metric, row));
      Upsert u{row, 0, {}};
      ASSIGN_OR_RETURN(u.payload, CanonicalPayload(record, row));
      ASSIGN_OR_RETURN(u.db, AssignRecord(*s.router, record, vector, row));
      std::string text = EncodeOriginalId(record.id);
      if (auto [it, fresh] = upsert_row.emplace(text, row); !fresh) {
        return Status::InvalidArgument(fmt::format("upserts: id {} appears at rows {} and {}; an id may be upserted once",
                                                   RecordIdToString(record.id), it->second, row));
      }
      if (s.routing.centroids) {
        distance_sum += RoutingDistance(s.metric, vector.data(), s.routing.centroids->row(u.db), s.dim);
      }
      ch.hashes.insert(IdIndexHash(record.id));
      ch.ids.emplace(std::move(text), true);
      ch.upserts_of[static_cast<size_t>(u.db)].push_back(static_cast<int64_t>(ch.upserts.size()));
      ch.upserts.push_back(std::move(u));
    }
    if (s.routing.centroids) ch.upsert_distance = distance_sum / static_cast<double>(upserts->rows);
  }
  for (size_t i = 0; i < deletes.size(); ++i) {
    std::string text = EncodeOriginalId(deletes[i]);
    if (auto it = upsert_row.find(text); it != upsert_row.end()) {
      return Status::InvalidArgument(fmt::format(
          "deletes: id {} (entry {}) is also upserted (row {}); give each id one change", RecordIdToString(deletes[i]), i,
          it->second));
    }
    ch.hashes.insert(IdIndexHash(deletes[i]));
    ch.ids.emplace(std::move(text), false);  // a repeated delete is one
  }
  return ch;
}

// ---- Finding the shards of the changed ids -------------------------------------------------------

struct RunCtx {
  const WriteConfig& config;
  const UpdateOptions& options;
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<ManifestStore> manifests;
  std::string run_id;
  SystemTime started;
  fs::path local_run_dir;
  Base base;
};

std::string ShardName(const ShardLocation& loc) { return fmt::format("db_id {}", loc.db_id); }

// The base's id index (custom.shardvec.id_index), or nullopt when it has none.
Result<std::optional<IdIndex>> LoadIdIndex(RunCtx& ctx) {
  const LoadedSnapshot& s = *ctx.base.snap;
  const nlohmann::json meta = CustomField(s.manifest, "shardvec", "id_index");
  if (meta.is_null()) return std::optional<IdIndex>();
  if (!meta.is_object() || !meta.contains("ref") || !meta["ref"].is_string() || !meta.contains("digest") ||
      !meta["digest"].is_string()) {
    return Status::Corruption(fmt::format("manifest '{}': custom.shardvec.id_index is malformed: {}", s.manifest_ref,
                                          meta.dump()));
  }
  const std::string url = meta["ref"].get<std::string>();
  ASSIGN_OR_RETURN(std::string key, KeyFromSnapshotUrl(ctx.store->PrefixUrl(), s.manifest.s3_prefix, url));
  int64_t rows = 0;
  for (const ManifestShard& shard : s.manifest.shards) rows += shard.row_count;
  ASSIGN_OR_RETURN(std::string bytes, ctx.store->Get(key, 16 + 12 * (rows + 1)));
  if (Xxh3Digest(bytes) != meta["digest"].get<std::string>()) {
    return Status::Corruption(fmt::format("id index '{}' has digest {}, but the snapshot recorded {}", url,
                                          Xxh3Digest(bytes), meta["digest"].get<std::string>()));
  }
  ASSIGN_OR_RETURN(IdIndex index, IdIndex::Parse(bytes, s.num_dbs, url));
  return std::optional<IdIndex>(std::move(index));
}

fs::path BaseFilePath(const RunCtx& ctx, int64_t db) {
  return ctx.local_run_dir / "base" / fmt::format("db={:05d}.db", db);
}

// Without an id index: every base shard's id map is read (each shard downloaded, then removed).
// Returns the index of the base those id maps give.
Result<IdIndex> IndexFromIdMaps(RunCtx& ctx) {
  const LoadedSnapshot& s = *ctx.base.snap;
  LogEvent(LogLevel::kWarning, "update_without_id_index",
           {{"base_run_id", ctx.base.ref.run_id},
            {"message", fmt::format("the base snapshot (run_id={}) has no id index (an older or another writer's "
                                    "snapshot): reading the id maps of its {} shards to find the changed ids, which "
                                    "downloads every shard once; the updated snapshot has an index",
                                    ctx.base.ref.run_id, s.shards.size())}});
  std::vector<IdIndexEntry> entries;
  RETURN_IF_ERROR(CreateDirectories(ctx.local_run_dir / "base"));
  for (const auto& [db, loc] : s.shards) {
    const fs::path file = BaseFilePath(ctx, db);
    RETURN_IF_ERROR(FetchShardFile(*ctx.store, loc, file));
    Status st = ReadShardRows(file, ShardName(loc), s.dim, /*with_vectors=*/false, [&](const BaseRow& row) {
      entries.push_back(IdIndexEntry{IdIndexHash(row.id), static_cast<uint32_t>(db)});
      return Status::OK();
    });
    std::error_code ec;
    fs::remove(file, ec);
    RETURN_IF_ERROR(st);
  }
  return IdIndex(std::move(entries));
}

// ---- Rebuilding one shard ------------------------------------------------------------------------

struct Rebuilt {
  ShardInfo info;
  int64_t base_rows = 0;
  int64_t base_sublists = 0;
  int64_t replaced = 0;
  int64_t deleted = 0;
  std::vector<std::string> deleted_ids;  // texts of the ids deleted here
  double base_distance_sum = 0;
  std::vector<IdIndexEntry> entries;
};

Result<Rebuilt> RebuildShard(const RunCtx& ctx, const Changes& ch, const RecordBatch* upserts, int64_t db) {
  const LoadedSnapshot& s = *ctx.base.snap;
  const WriteConfig& c = ctx.config;
  Rebuilt out;
  const auto base_loc = s.shards.find(db);
  const std::vector<int64_t>& mine = ch.upserts_of[static_cast<size_t>(db)];
  fs::path base_file;
  if (base_loc != s.shards.end()) {
    base_file = BaseFilePath(ctx, db);
    RETURN_IF_ERROR(FetchShardFile(*ctx.store, base_loc->second, base_file));
    ASSIGN_OR_RETURN(out.base_sublists, ShardFileSublists(base_file, ShardName(base_loc->second)));
  }
  for (const ManifestShard& shard : s.manifest.shards) {
    if (shard.db_id == db) out.base_rows = shard.row_count;
  }
  ASSIGN_OR_RETURN(std::vector<FilterColumnSpec> filter_columns, ParseFilterColumnSpecs(c.filter_columns, "filter_columns"));
  const ShardBuildOptions options{.dim = s.dim, .metric = s.metric, .page_size = 0,
                                  .expected_rows = out.base_rows + static_cast<int64_t>(mine.size()),
                                  .int8_codes = WritesInt8Codes(c.index.quantization),
                                  .sublists = c.sharding.sublists_per_shard,
                                  .filter_columns = std::move(filter_columns)};
  const ShardFileTarget target{ctx.store.get(), ctx.run_id, db, 0, LocalAttemptDir(ctx.local_run_dir, db, 0), options,
                               LayoutOf(c)};
  const float* centroid = s.routing.centroids ? s.routing.centroids->row(db) : nullptr;
  Result<ShardInfo> info = BuildAndUploadShard(target, [&](ShardBuilder& builder) -> Status {
    BatchPacer pacer(c);
    if (!base_file.empty()) {
      RETURN_IF_ERROR(ReadShardRows(base_file, ShardName(base_loc->second), s.dim, /*with_vectors=*/true,
                                    [&](const BaseRow& row) -> Status {
        if (centroid) out.base_distance_sum += RoutingDistance(s.metric, row.vector.data(), centroid, s.dim);
        std::string text = EncodeOriginalId(row.id);
        if (auto it = ch.ids.find(text); it != ch.ids.end()) {
          if (it->second) {
            ++out.replaced;
          } else {
            ++out.deleted;
            out.deleted_ids.push_back(std::move(text));
          }
          return Status::OK();
        }
        out.entries.push_back(IdIndexEntry{IdIndexHash(row.id), static_cast<uint32_t>(db)});
        RETURN_IF_ERROR(pacer.BeforeRow());
        return builder.Add(row.id, row.vector.data(), row.payload);
      }));
    }
    Record record;
    for (int64_t i : mine) {
      const Upsert& u = ch.upserts[static_cast<size_t>(i)];
      upserts->FieldsAt(u.row, &record);
      out.entries.push_back(IdIndexEntry{IdIndexHash(record.id), static_cast<uint32_t>(db)});
      RETURN_IF_ERROR(pacer.BeforeRow());
      RETURN_IF_ERROR(builder.Add(record.id, upserts->VectorAt(u.row).data(), u.payload));
    }
    return Status::OK();
  });
  if (!base_file.empty()) {
    std::error_code ec;
    fs::remove(base_file, ec);
  }
  RETURN_IF_ERROR(info.status());
  out.info = std::move(info).value();
  return out;
}

// Rebuilds `dbs` on a pool; the first failure (in time) is returned.
Result<std::map<int64_t, Rebuilt>> RebuildShards(const RunCtx& ctx, const Changes& ch, const RecordBatch* upserts,
                                                 const std::set<int64_t>& dbs) {
  RETURN_IF_ERROR(CreateDirectories(ctx.local_run_dir / "base"));
  std::map<int64_t, Rebuilt> out;
  if (dbs.empty()) return out;
  const size_t threads = std::min<size_t>(ThreadPool::DefaultSize(ctx.config.max_parallel_shards), dbs.size());
  std::atomic<bool> failed{false};
  std::vector<std::pair<int64_t, std::future<Result<Rebuilt>>>> futures;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool, ThreadPool::Create(threads, "shard rebuilds (max_parallel_shards)"));
    for (int64_t db : dbs) {
      futures.emplace_back(db, pool->Submit([&, db]() -> Result<Rebuilt> {
        if (failed.load()) return Status::Unavailable("skipped after an earlier shard failed");
        Result<Rebuilt> r = RebuildShard(ctx, ch, upserts, db);
        if (!r.ok()) failed.store(true);
        return r;
      }));
    }
  }
  Status first;
  for (auto& [db, f] : futures) {
    Result<Rebuilt> r = f.get();
    if (!r.ok()) {
      if (first.ok() || first.code() == StatusCode::kUnavailable) first = r.status();
      continue;
    }
    out.emplace(db, std::move(r).value());
  }
  if (!first.ok()) return first;
  return out;
}

// ---- The new manifest --------------------------------------------------------------------------

// A base shard taken as it is: its ShardInfo as the manifest records it, its URL in this store's form.
Result<ShardInfo> SharedShard(const RunCtx& ctx, const ManifestShard& shard) {
  const LoadedSnapshot& s = *ctx.base.snap;
  ShardInfo info;
  info.db_id = shard.db_id;
  ASSIGN_OR_RETURN(std::string key, KeyFromSnapshotUrl(ctx.store->PrefixUrl(), s.manifest.s3_prefix, *shard.db_url));
  info.db_url = ctx.store->Url(std::string(TrimTrailingSlashes(key)));
  info.attempt = shard.attempt;
  info.row_count = shard.row_count;
  info.db_bytes = shard.db_bytes;
  info.checkpoint_id = shard.checkpoint_id.value_or("");
  ASSIGN_OR_RETURN(std::optional<std::string> digest, RecordedDigest(s.manifest, "shard_digests", std::to_string(shard.db_id)));
  info.digest = digest.value_or("");
  const nlohmann::json id_type = CustomField(s.manifest, "shardvec", "id_type");
  if (id_type.is_string() && id_type.get<std::string>() != "mixed") info.id_type = id_type.get<std::string>();
  const nlohmann::json stats = CustomField(s.manifest, "shardvec", "filter_stats");
  const std::string db_key = std::to_string(shard.db_id);
  if (stats.is_object() && stats.contains(db_key)) info.filter_stats = stats[db_key].dump();
  return info;
}

double Imbalance(const std::vector<int64_t>& rows_by_db) {
  int64_t total = 0, largest = 0;
  for (int64_t r : rows_by_db) {
    total += r;
    largest = std::max(largest, r);
  }
  if (total == 0 || rows_by_db.empty()) return 0;
  return static_cast<double>(largest) / (static_cast<double>(total) / static_cast<double>(rows_by_db.size()));
}

void Advise(UpdateReport& r) {
  std::vector<std::string> why;
  if (r.upsert_centroid_distance && r.base_centroid_distance && *r.base_centroid_distance > 0 &&
      *r.upsert_centroid_distance > kDriftAdvice * *r.base_centroid_distance) {
    why.push_back(fmt::format("the upserted vectors lie {:.2f}x as far from their centroids as the base rows "
                              "(cluster drift)", *r.upsert_centroid_distance / *r.base_centroid_distance));
  }
  if (r.imbalance > kImbalanceAdvice && r.imbalance > 1.25 * r.base_imbalance) {
    why.push_back(fmt::format("the largest shard holds {:.2f}x the mean rows per shard (base: {:.2f}x)", r.imbalance,
                              r.base_imbalance));
  }
  if (why.empty()) return;
  r.rebuild_advised = true;
  r.advice = fmt::format("a full rebuild (a new build, retraining the routing) would pay: {}", fmt::join(why, "; "));
}

Result<UpdateResult> RunUpdate(RunCtx& ctx, const RecordBatch* upserts, const std::vector<RecordId>& deletes) {
  const LoadedSnapshot& s = *ctx.base.snap;
  UpdateResult result;
  UpdateReport& report = result.report;
  report.base_run_id = ctx.base.ref.run_id;
  report.base_manifest_ref = ctx.base.ref.ref;
  auto phase = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Changes ch, CheckChanges(ctx.config, s, upserts, deletes));
  report.upserted = static_cast<int64_t>(ch.upserts.size());
  report.upsert_centroid_distance = ch.upsert_distance;

  ASSIGN_OR_RETURN(std::optional<IdIndex> index, LoadIdIndex(ctx));
  report.used_id_index = index.has_value();
  if (!index) {
    ASSIGN_OR_RETURN(index, IndexFromIdMaps(ctx));
  }
  std::set<int64_t> affected;
  for (uint64_t hash : ch.hashes) {
    for (int64_t db : index->ShardsOf(hash)) affected.insert(db);
  }
  for (size_t db = 0; db < ch.upserts_of.size(); ++db) {
    if (!ch.upserts_of[db].empty()) affected.insert(static_cast<int64_t>(db));
  }
  result.build.durations.sharding_ms = MillisSince(phase);
  phase = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(auto rebuilt, RebuildShards(ctx, ch, upserts, affected));
  result.build.durations.write_ms = MillisSince(phase);
  phase = std::chrono::steady_clock::now();

  // Deletes no rebuilt shard found.
  std::unordered_set<std::string> found;
  int64_t base_rows_read = 0;
  double base_distance_sum = 0;
  for (auto& [db, r] : rebuilt) {
    for (std::string& text : r.deleted_ids) found.insert(std::move(text));
    report.replaced += r.replaced;
    report.deleted += r.deleted;
    base_rows_read += r.base_rows;
    base_distance_sum += r.base_distance_sum;
  }
  std::vector<std::string> missing;
  for (const auto& [text, is_upsert] : ch.ids) {
    if (!is_upsert && !found.count(text)) missing.push_back(text);
  }
  std::sort(missing.begin(), missing.end());
  report.missing_deletes = static_cast<int64_t>(missing.size());
  if (!missing.empty() && ctx.options.strict) {
    missing.resize(std::min<size_t>(missing.size(), 10));
    return Status::NotFound(fmt::format("strict: {} id(s) to delete are not in the base snapshot (run_id={}), e.g. {}",
                                        report.missing_deletes, report.base_run_id, fmt::join(missing, ", ")));
  }
  if (s.routing.centroids && base_rows_read > 0) {
    report.base_centroid_distance = base_distance_sum / static_cast<double>(base_rows_read);
  }

  // Every shard of the new snapshot: the rebuilt ones, the others shared from the base.
  std::vector<ShardInfo> shards;
  std::vector<IdIndexEntry> entries;
  std::vector<int64_t> base_rows_by_db(static_cast<size_t>(s.num_dbs), 0), rows_by_db(static_cast<size_t>(s.num_dbs), 0);
  for (const ManifestShard& shard : s.manifest.shards) {
    base_rows_by_db[static_cast<size_t>(shard.db_id)] = shard.row_count;
    if (affected.count(shard.db_id) || !shard.db_url || shard.row_count == 0) continue;
    ASSIGN_OR_RETURN(ShardInfo info, SharedShard(ctx, shard));
    shards.push_back(std::move(info));
    ++report.shared_shards;
  }
  for (const IdIndexEntry& e : index->entries()) {
    if (!affected.count(e.db_id)) entries.push_back(e);
  }
  int64_t base_lists_rebuilt = 0, base_list_shards_rebuilt = 0, lists_new = 0, list_shards_new = 0;
  for (auto& [db, r] : rebuilt) {
    report.rebuilt.push_back(UpdateShardChange{db, r.base_rows, r.info.row_count});
    base_lists_rebuilt += r.base_sublists;
    base_list_shards_rebuilt += r.base_sublists > 0 ? 1 : 0;
    entries.insert(entries.end(), r.entries.begin(), r.entries.end());
    if (r.info.row_count > 0) {
      lists_new += r.info.sublists;
      list_shards_new += r.info.sublists > 0 ? 1 : 0;
      shards.push_back(r.info);
    }
  }
  std::sort(shards.begin(), shards.end(), [](const ShardInfo& a, const ShardInfo& b) { return a.db_id < b.db_id; });
  for (const ShardInfo& info : shards) rows_by_db[static_cast<size_t>(info.db_id)] = info.row_count;
  report.base_imbalance = Imbalance(base_rows_by_db);
  report.imbalance = Imbalance(rows_by_db);
  Advise(report);

  ASSIGN_OR_RETURN(Manifest manifest, ComposeManifest(*ctx.store, ctx.config, ctx.base.plan, ctx.run_id, shards));
  nlohmann::json& custom = manifest.custom["shardvec"];
  // The shared shards' sub-lists are the base's count less the rebuilt shards' old ones.
  const SnapshotSublists base_lists = ReadSnapshotSublists(s.manifest);
  const int64_t lists = base_lists.lists - base_lists_rebuilt + lists_new;
  const int64_t list_shards = base_lists.shards - base_list_shards_rebuilt + list_shards_new;
  custom.erase("sublists");
  if (lists > 0 && list_shards > 0) custom["sublists"] = {{"lists", lists}, {"shards", list_shards}};
  RETURN_IF_ERROR(WriteIdIndex(*ctx.store, ctx.run_id, std::move(entries), manifest));
  custom["update"] = {{"base_run_id", report.base_run_id}, {"base_manifest_ref", report.base_manifest_ref}};

  if (ctx.config.publish_policy == PublishPolicy::kRejectIfNewer) RETURN_IF_ERROR(CheckBaseCurrent(*ctx.manifests, ctx.base));
  ASSIGN_OR_RETURN(PublishResult published, PublishRun(*ctx.manifests, manifest, ctx.started, ctx.config.publish_policy,
                                                       ctx.config.allow_schema_change));
  result.build.durations.manifest_ms = MillisSince(phase);
  const auto num_attempts = static_cast<int64_t>(rebuilt.size());
  const BuildDurations durations = result.build.durations;
  result.build = MakeBuildResult(ctx.run_id, published, s.num_dbs, std::move(shards));
  result.build.durations = durations;
  result.build.num_attempt_results = num_attempts;
  return result;
}

}  // namespace

Result<UpdateResult> UpdateSharded(const WriteConfig& config, const RecordBatch* upserts,
                                   const std::vector<RecordId>& deletes, const UpdateOptions& options,
                                   std::shared_ptr<ObjectStore> store) {
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(Validate(config));
  RETURN_IF_ERROR(UseSqliteVec("vec0_path", config.vec0_path));
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(config.store, config.store_options));
  }
  RunCtx ctx{config, options, store, WriteManifestStore(config, store), config.run_id.value_or(NewUuidHex()), NowUtc(),
             {}, {}};
  ASSIGN_OR_RETURN(ctx.base, LoadBase(*store, *ctx.manifests, options.base));
  RETURN_IF_ERROR(CheckConfigAgainstBase(config, ctx.base));
  if (config.publish_policy == PublishPolicy::kRejectIfNewer) RETURN_IF_ERROR(CheckBaseCurrent(*ctx.manifests, ctx.base));
  ASSIGN_OR_RETURN(LocalRunFolder run_folder, ClaimLocalRunFolder(config.local_root, ctx.run_id, FileLock::Mode::kExclusive));
  ctx.local_run_dir = run_folder.dir;
  RETURN_IF_ERROR(ClaimRunId(*store, ctx.run_id, config.run_id.has_value(), LayoutOf(config)));
  RETURN_IF_ERROR(ProbeStoreWritable(*store, ctx.run_id, LayoutOf(config)));
  if (config.metrics) EmitMetric(*config.metrics, metric_events::kWriteStarted, {{"run_id", ctx.run_id}});
  std::unique_ptr<RunRecordLifecycle> run_record =
      RunRecordLifecycle::Start(store, ctx.run_id, "vector-shardvec-update", LayoutOf(config));
  Result<UpdateResult> result = RunUpdate(ctx, upserts, deletes);
  ReleaseLocalRunFolder(run_folder);
  if (!result.ok()) {
    RemoveUnpublishedRun(*store, *ctx.manifests, ctx.run_id, LayoutOf(config), result.status());
    run_record->MarkFailed(result.status());
    return result.status();
  }
  run_record->MarkSucceeded(result->build.manifest_ref);
  result->build.elapsed_ms = MillisSince(t0);
  result->build.durations.total_ms = result->build.elapsed_ms;
  const UpdateReport& r = result->report;
  LogEvent(LogLevel::kInfo, "vector_update_completed",
           {{"run_id", result->build.run_id}, {"base_run_id", r.base_run_id}, {"manifest_ref", result->build.manifest_ref},
            {"upserted", r.upserted}, {"replaced", r.replaced}, {"deleted", r.deleted},
            {"missing_deletes", r.missing_deletes}, {"rebuilt_shards", static_cast<int64_t>(r.rebuilt.size())},
            {"shared_shards", r.shared_shards}, {"elapsed_ms", static_cast<int64_t>(result->build.elapsed_ms)}});
  if (r.rebuild_advised) LogEvent(LogLevel::kWarning, "update_rebuild_advised", {{"message", r.advice}});
  if (config.metrics) {
    const BuildResult& b = result->build;
    for (const UpdateShardChange& c : r.rebuilt) {
      const auto built = std::find_if(b.shards.begin(), b.shards.end(), [&](const ShardInfo& s) { return s.db_id == c.db_id; });
      if (built == b.shards.end()) continue;
      EmitMetric(*config.metrics, metric_events::kShardWriteCompleted,
                 {{"run_id", b.run_id}, {"db_id", c.db_id}, {"row_count", built->row_count}, {"db_bytes", built->db_bytes}});
    }
    EmitMetric(*config.metrics, metric_events::kWritePublished, {{"run_id", b.run_id}, {"manifest_ref", b.manifest_ref}});
    EmitMetric(*config.metrics, metric_events::kWriteCompleted,
               {{"run_id", b.run_id}, {"total_vectors", b.total_vectors}, {"num_shards", b.num_dbs},
                {"elapsed_ms", static_cast<int64_t>(b.elapsed_ms)}});
  }
  return result;
}

Result<WriteConfig> SnapshotWriteConfig(const std::string& store_spec, const StoreOptions& store_options,
                                        const std::string& base, std::shared_ptr<ManifestStore> manifest_store,
                                        std::shared_ptr<ObjectStore> store) {
  WriteConfig c;
  c.store = store_spec;
  c.store_options = store_options;
  c.manifest_store = manifest_store;
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(store_spec, store_options));
  }
  ASSIGN_OR_RETURN(Base b, LoadBase(*store, *WriteManifestStore(c, store), base));
  const LoadedSnapshot& s = *b.snap;
  c.index.dim = s.dim;
  c.index.metric = s.metric;
  const nlohmann::json index_type = CustomField(s.manifest, "vector", "index_type");
  if (index_type.is_string()) c.index.index_type = index_type.get<std::string>();
  const nlohmann::json quant = CustomField(s.manifest, "shardvec", "quantization");
  if (quant.is_string()) c.index.quantization = quant.get<std::string>();
  c.sharding.strategy = s.strategy;
  c.sharding.num_dbs = s.num_dbs;
  c.sharding.num_probes = s.num_probes;
  c.sharding.centroids = s.routing.centroids;
  c.sharding.hyperplanes = s.routing.hyperplanes;
  if (s.strategy == Strategy::kLsh) c.sharding.num_hash_bits = b.plan.num_hash_bits;
  if (s.strategy == Strategy::kCel) {
    c.sharding.cel_expr = s.routing.cel_expr;
    c.sharding.cel_columns = s.routing.cel_columns;
    c.sharding.routing_values = s.routing.routing_values;
  }
  const nlohmann::json filters = CustomField(s.manifest, "shardvec", "filter_columns");
  if (filters.is_object()) {
    for (const auto& [name, type] : filters.items()) {
      if (type.is_string()) c.filter_columns[name] = type.get<std::string>();
    }
  }
  c.shard_prefix = s.manifest.shard_prefix;
  c.db_path_template = s.manifest.db_path_template;
  return c;
}

}  // namespace shardvec
