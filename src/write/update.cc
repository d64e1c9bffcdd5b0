// An update in phases (update.h): UpdateRun::Begin loads the base snapshot and checks the config
// against it → the upserts are checked and routed with the base's router (here, or by a worker) →
// Plan finds the shards of the changed ids (the base's id index, or every shard's id map) → each of
// those shards is rebuilt from its base file plus its upserts (RebuildShard: here on a pool, or in a
// worker's RebuildUpdateShard) → Finish composes the manifest (other shards shared by URL and digest,
// a new id index) and publishes as WriteSharded does. UpdateSharded runs them all in one process.
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
#include "format/manifest.h"
#include "format/keys.h"
#include "format/routing_json.h"
#include "metrics/emit.h"
#include "read/snapshot_loader.h"
#include "read/sublist_router.h"
#include "routing/distance.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sublists.h"
#include "shard/sqlite_vec.h"
#include "snapshot/history.h"
#include "store/local_store.h"
#include "write/base_shard.h"
#include "write/config_validation.h"
#include "write/delta_shard.h"
#include "write/id_index.h"
#include "write/writer_checked.h"
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

// The routing plan of the loaded snapshot, as its manifest records it.
void SetRouting(Base& base) {
  base.plan = base.snap->routing;
  base.plan.num_probes = base.snap->num_probes;
  if (base.plan.hyperplanes) base.plan.num_hash_bits = base.plan.hyperplanes->rows;
}

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
  SetRouting(out);
  return out;
}

// A task's base: the manifest the plan carries (no manifest store), with its shards and routing.
Result<Base> BaseFromPlan(ObjectStore& store, const UpdatePlan& plan) {
  Base out;
  out.ref = ManifestRef{plan.base_manifest_ref, plan.base_run_id, plan.base_published_at};
  out.snap = std::make_unique<LoadedSnapshot>();
  out.snap->manifest_ref = plan.base_manifest_ref;
  out.snap->run_id = plan.base_run_id;
  out.snap->published_at = plan.base_published_at;
  ASSIGN_OR_RETURN(out.snap->manifest, ParseManifest(plan.base_manifest));
  RETURN_IF_ERROR(ApplyShards(store, *out.snap));
  RETURN_IF_ERROR(ApplyVectorMetadata(store, *out.snap));
  SetRouting(out);
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
  double distance = 0;                 // CLUSTER: to the assigned centroid
};

struct Changes {
  std::vector<Upsert> upserts;                                // input order
  std::vector<std::vector<int64_t>> upserts_of;                // by db: indexes into upserts
  std::unordered_map<std::string, bool> ids;                   // id text -> is an upsert (else a delete)
  std::unordered_map<std::string, uint64_t> hash_of;           // id text -> its id-index hash
  std::vector<std::vector<std::string>> held_by;               // by db: changed ids the base's index places there
  std::optional<double> upsert_distance;                       // CLUSTER: mean to the assigned centroid
};

// Checks each upsert (an id, a vector of the base's dim, a canonical payload) and gives it its shard:
// `db` for every row (a task's rows, which a worker routed), else the base's router's choice. The
// ids the shards drop come from the plan (AddDrops).
Result<Changes> CheckUpserts(const LoadedSnapshot& s, const RecordBatch* upserts, std::optional<int64_t> db) {
  Changes ch;
  ch.upserts_of.resize(static_cast<size_t>(s.num_dbs));
  ch.held_by.resize(static_cast<size_t>(s.num_dbs));
  if (upserts == nullptr || upserts->rows == 0) return ch;
  RETURN_IF_ERROR(upserts->Check());
  if (upserts->ids.empty() && upserts->int_ids.empty()) {
    return Status::InvalidArgument(fmt::format(
        "upserts: {} rows without ids; an update replaces and deletes rows by id, so every upsert needs one",
        upserts->rows));
  }
  if (upserts->dim != s.dim) {
    return Status::InvalidArgument(fmt::format("upserts have dim {} but the base snapshot has dim {}", upserts->dim, s.dim));
  }
  double distance_sum = 0;
  Record record;
  for (int64_t row = 0; row < upserts->rows; ++row) {
    upserts->FieldsAt(row, &record);
    const std::span<const float> vector = upserts->VectorAt(row);
    RETURN_IF_ERROR(CheckRecordVector(record, vector, s.dim, s.metric, row));
    Upsert u{row, 0, {}};
    ASSIGN_OR_RETURN(u.payload, CanonicalPayload(record, row));
    if (db) {
      u.db = *db;
    } else {
      ASSIGN_OR_RETURN(u.db, AssignRecord(*s.router, record, vector, row));
    }
    if (s.routing.centroids) {
      u.distance = RoutingDistance(s.metric, vector.data(), s.routing.centroids->row(u.db), s.dim);
      distance_sum += u.distance;
    }
    ch.upserts_of[static_cast<size_t>(u.db)].push_back(static_cast<int64_t>(ch.upserts.size()));
    ch.upserts.push_back(std::move(u));
  }
  if (s.routing.centroids) ch.upsert_distance = distance_sum / static_cast<double>(upserts->rows);
  return ch;
}

// The ids an update changes, checked: each upserted at most once, none both upserted and deleted.
// Returns the deletes without repeats (a repeated delete is one).
Result<std::vector<RecordId>> CheckChangeIds(const std::vector<RecordId>& upsert_ids, const std::vector<RecordId>& deletes) {
  std::unordered_map<std::string, size_t> upsert_row;
  for (size_t row = 0; row < upsert_ids.size(); ++row) {
    if (auto [it, fresh] = upsert_row.emplace(EncodeOriginalId(upsert_ids[row]), row); !fresh) {
      return Status::InvalidArgument(fmt::format("upserts: id {} appears at rows {} and {}; an id may be upserted once",
                                                 RecordIdToString(upsert_ids[row]), it->second, row));
    }
  }
  std::vector<RecordId> out;
  std::unordered_set<std::string> deleted;
  for (size_t i = 0; i < deletes.size(); ++i) {
    std::string text = EncodeOriginalId(deletes[i]);
    if (auto it = upsert_row.find(text); it != upsert_row.end()) {
      return Status::InvalidArgument(fmt::format(
          "deletes: id {} (entry {}) is also upserted (row {}); give each id one change", RecordIdToString(deletes[i]), i,
          it->second));
    }
    if (deleted.insert(std::move(text)).second) out.push_back(deletes[i]);
  }
  return out;
}

// UpdateOptions::strict's error for the ids to delete the base does not hold (id-map texts).
Status StrictMissing(std::vector<std::string> missing, const std::string& base_run_id) {
  std::sort(missing.begin(), missing.end());
  const size_t count = missing.size();
  missing.resize(std::min<size_t>(count, 10));
  return Status::NotFound(fmt::format("strict: {} id(s) to delete are not in the base snapshot (run_id={}), e.g. {}",
                                      count, base_run_id, fmt::join(missing, ", ")));
}

// Each upsert's id and shard, for UpdateRun::Plan.
std::vector<UpsertRoute> RoutesOf(const Changes& ch, const RecordBatch* upserts) {
  std::vector<UpsertRoute> routes;
  routes.reserve(ch.upserts.size());
  Record record;
  for (const Upsert& u : ch.upserts) {
    upserts->FieldsAt(u.row, &record);
    routes.push_back(UpsertRoute{record.id, u.db});
  }
  return routes;
}

// The ids a planned shard drops, as RebuildShard looks its base rows up (true: replaced by an upsert).
void AddDrops(Changes& ch, const UpdateShardPlan& shard) {
  for (const bool replaced : {true, false}) {
    for (const RecordId& id : replaced ? shard.replaced : shard.deleted) {
      std::string text = EncodeOriginalId(id);
      ch.hash_of.emplace(text, IdIndexHash(id));
      ch.held_by[static_cast<size_t>(shard.db_id)].push_back(text);
      ch.ids.emplace(std::move(text), replaced);
    }
  }
}

// A task's rows must be the ones the plan routed to its shard: the same count and id digest.
Status CheckPlannedUpserts(const UpdateShardPlan& shard, const Changes& ch, const RecordBatch* upserts) {
  uint64_t digest = 0;
  Record record;
  for (const Upsert& u : ch.upserts) {
    upserts->FieldsAt(u.row, &record);
    digest += IdIndexHash(record.id);
  }
  const auto rows = static_cast<int64_t>(ch.upserts.size());
  if (rows != shard.upserts || digest != shard.upsert_digest) {
    return Status::InvalidArgument(fmt::format(
        "db_id {}: the task received {} upserted rows{} but the plan routed {} there; the upserts must be the same "
        "rows, routed the same way, when they are read again for the rebuild (a deterministic input)",
        shard.db_id, rows, rows == shard.upserts ? " with other ids" : "", shard.upserts));
  }
  return Status::OK();
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

// config.on_progress, from the updating thread: "id maps" (a base without an id index: shards read),
// "shards" (touched shards done), "publish".
void Progress(const WriteConfig& config, const char* phase, int64_t done, int64_t total) {
  if (config.on_progress) config.on_progress(WriteProgress{phase, done, total});
}

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
  ASSIGN_OR_RETURN(IdIndex index, IdIndex::Parse(std::move(bytes), s.num_dbs, url));
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
  const auto shards = static_cast<int64_t>(s.shards.size());
  int64_t read = 0;
  Progress(ctx.config, "id maps", 0, shards);
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
    Progress(ctx.config, "id maps", ++read, shards);
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
  int64_t base_distance_rows = 0;  // the base rows base_distance_sum is over
  // Rebuilt: every row's entry. Edited in place: the added rows' entries, and the hashes of the rows
  // removed (the base index's other entries for the shard stay).
  std::vector<IdIndexEntry> entries;
  bool in_place = false;
  std::vector<uint64_t> removed_hashes;
};

// Edits the shard's downloaded base file in place (write/delta_shard.h) and uploads it, or returns
// nullopt when the shard is better rebuilt whole.
Result<std::optional<Rebuilt>> EditShard(const RunCtx& ctx, const Changes& ch, const RecordBatch* upserts, int64_t db,
                                         const fs::path& base_file, const ShardFileTarget& target) {
  const LoadedSnapshot& s = *ctx.base.snap;
  const WriteConfig& c = ctx.config;
  std::vector<Record> records(ch.upserts_of[static_cast<size_t>(db)].size());
  ShardEdit edit;
  edit.dim = s.dim;
  edit.metric = s.metric;
  edit.filter_columns = target.options.filter_columns;
  edit.sublists = c.sharding.sublists_per_shard;
  edit.changed = &ch.ids;
  edit.expected_here = ch.held_by[static_cast<size_t>(db)];
  size_t k = 0;
  for (int64_t i : ch.upserts_of[static_cast<size_t>(db)]) {
    const Upsert& u = ch.upserts[static_cast<size_t>(i)];
    upserts->FieldsAt(u.row, &records[k]);
    edit.adds.push_back(ShardEdit::Row{records[k].id, upserts->VectorAt(u.row).data(), &u.payload});
    ++k;
  }
  BatchPacer pacer(c);
  edit.before_row = [&pacer] { return pacer.BeforeRow(); };
  edit.routing_centroid = s.routing.centroids ? s.routing.centroids->row(db) : nullptr;
  const std::string name = fmt::format("db_id {}", db);
  std::string why;
  ASSIGN_OR_RETURN(std::optional<ShardEditOutcome> edited, EditShardInPlace(base_file, name, edit, &why));
  if (!edited) {
    LogEvent(LogLevel::kInfo, "update_shard_rebuilt",
             {{"run_id", ctx.run_id}, {"db_id", db}, {"message", fmt::format("shard {} is rebuilt whole: {}", db, why)}});
    return std::optional<Rebuilt>();
  }
  if (edited->int8_ranges_retrained) {
    LogEvent(LogLevel::kInfo, "update_int8_ranges_retrained",
             {{"run_id", ctx.run_id}, {"db_id", db},
              {"message", fmt::format("shard {}: {} of its {} added rows lie outside the ranges its int8 codes were "
                                      "trained on: the ranges are trained anew on its {} rows and every code rewritten",
                                      db, edited->int8_rows_outside_ranges, edit.adds.size(), edited->rows)}});
  }
  Rebuilt out;
  out.in_place = true;
  out.base_rows = edited->base_rows;
  out.replaced = edited->replaced;
  out.deleted = edited->deleted;
  out.deleted_ids = std::move(edited->deleted_ids);
  out.base_distance_sum = edited->base_distance_sum;
  out.base_distance_rows = edited->base_distance_rows;
  for (const std::string& text : edited->removed_ids) out.removed_hashes.push_back(ch.hash_of.at(text));
  for (const ShardEdit::Row& row : edit.adds) out.entries.push_back(IdIndexEntry{IdIndexHash(row.id), static_cast<uint32_t>(db)});
  out.base_sublists = edited->base_sublists;
  out.info.row_count = edited->rows;
  out.info.id_type = edited->id_type;
  out.info.sublists = edited->sublists;
  out.info.filter_stats = edited->filter_stats_json;
  RETURN_IF_ERROR(UploadShardFile(target, base_file, &out.info));
  return std::optional<Rebuilt>(std::move(out));
}

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
  if (!base_file.empty() && !ctx.options.compact) {
    // A folder store links the edited copy into place and fsyncs it: its bytes start for the disk
    // now, while this and the other shards are edited and digested, instead of all at that fsync.
    if (dynamic_cast<LocalStore*>(ctx.store.get()) != nullptr) StartWriteback(base_file);
    Result<std::optional<Rebuilt>> edited = EditShard(ctx, ch, upserts, db, base_file, target);
    if (!edited.ok() || edited->has_value()) {
      std::error_code ec;
      fs::remove(base_file, ec);
      RETURN_IF_ERROR(edited.status());
      return std::move(**edited);
    }
  }
  if (!base_file.empty()) {
    ASSIGN_OR_RETURN(out.base_sublists, ShardFileSublists(base_file, ShardName(base_loc->second)));
  }
  const float* centroid = s.routing.centroids ? s.routing.centroids->row(db) : nullptr;
  out.base_distance_rows = out.base_rows;
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

// What a rebuilt shard reports to Finish.
Result<UpdateShardResult> ShardResultOf(Rebuilt r, const Changes& ch, int64_t db) {
  UpdateShardResult out;
  out.db_id = db;
  out.info = std::move(r.info);
  out.base_rows = r.base_rows;
  out.base_sublists = r.base_sublists;
  out.replaced = r.replaced;
  out.deleted = r.deleted;
  out.base_distance_sum = r.base_distance_sum;
  out.base_distance_rows = r.base_distance_rows;
  out.edited_in_place = r.in_place;
  out.removed_id_hashes = std::move(r.removed_hashes);
  const std::vector<int64_t>& mine = ch.upserts_of[static_cast<size_t>(db)];
  out.upserts = static_cast<int64_t>(mine.size());
  for (int64_t i : mine) out.upsert_distance_sum += ch.upserts[static_cast<size_t>(i)].distance;
  out.deleted_ids.reserve(r.deleted_ids.size());
  for (const std::string& text : r.deleted_ids) {
    ASSIGN_OR_RETURN(RecordId id, DecodeOriginalId(text));
    out.deleted_ids.push_back(std::move(id));
  }
  out.id_hashes.reserve(r.entries.size());
  for (const IdIndexEntry& e : r.entries) out.id_hashes.push_back(e.hash);
  return out;
}

// Rebuilds the plan's shards on a pool; the first failure (in time) is returned.
Result<std::vector<UpdateShardResult>> RebuildShards(const RunCtx& ctx, const Changes& ch, const RecordBatch* upserts,
                                                     const UpdatePlan& plan) {
  RETURN_IF_ERROR(CreateDirectories(ctx.local_run_dir / "base"));
  std::vector<UpdateShardResult> out;
  if (plan.shards.empty()) return out;
  const size_t threads = std::min<size_t>(ThreadPool::DefaultSize(ctx.config.max_parallel_shards), plan.shards.size());
  std::atomic<bool> failed{false};
  std::vector<std::future<Result<UpdateShardResult>>> futures;
  // Destroyed first (declared last): every task has ended before what it uses goes.
  ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool, ThreadPool::Create(threads, "shard rebuilds (max_parallel_shards)"));
  for (const UpdateShardPlan& shard : plan.shards) {
    futures.push_back(pool->Submit([&, db = shard.db_id]() -> Result<UpdateShardResult> {
      if (failed.load()) return Status::Unavailable("skipped after an earlier shard failed");
      Result<Rebuilt> r = RebuildShard(ctx, ch, upserts, db);
      Result<UpdateShardResult> result = r.ok() ? ShardResultOf(std::move(r).value(), ch, db) : r.status();
      if (!result.ok()) failed.store(true);
      return result;
    }));
  }
  // Results in plan order, each as it is ready: the progress moves while the pool works.
  Status first;
  const auto total = static_cast<int64_t>(futures.size());
  int64_t done = 0;
  Progress(ctx.config, "shards", 0, total);
  for (auto& f : futures) {
    Result<UpdateShardResult> r = f.get();
    Progress(ctx.config, "shards", ++done, total);
    if (!r.ok()) {
      if (first.ok() || first.code() == StatusCode::kUnavailable) first = r.status();
      continue;
    }
    out.push_back(std::move(r).value());
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
  r.advice = fmt::format("a full rebuild retraining the routing (retrain, `shardvec update --retrain`) would pay: {}",
                         fmt::join(why, "; "));
}

// The settings of the rebuilt shards a task takes from the plan (the rest of a WriteConfig is unused
// by a rebuild), refused naming the field when they could not have come from a valid config.
Status CheckPlanSettings(const UpdatePlan& p) {
  RETURN_IF_ERROR(ValidateRunId(p.run_id));
  RETURN_IF_ERROR(ValidateKeyLayout(KeyLayout{p.shard_prefix, p.db_path_template},
                                    {"update plan shard_prefix", "update plan db_path_template"}));
  if (p.dim <= 0) return Status::InvalidArgument(fmt::format("update plan dim must be > 0 (got {})", p.dim));
  RETURN_IF_ERROR(ValidateQuantization(p.quantization, "update plan quantization"));
  if (p.sublists_per_shard < 0 || p.sublists_per_shard > kMaxSublistsPerShard) {
    return Status::InvalidArgument(fmt::format("update plan sublists_per_shard must be in 0..{} (0 = auto, 1 = none; got {})",
                                               kMaxSublistsPerShard, p.sublists_per_shard));
  }
  return Status::OK();
}

WriteConfig TaskConfig(const UpdatePlan& p) {
  WriteConfig c;
  c.store = p.store;
  c.store_options = p.store_options;
  c.local_root = p.local_root;
  c.run_id = p.run_id;
  c.index.dim = p.dim;
  c.index.metric = p.metric;
  c.index.quantization = p.quantization;
  c.sharding.sublists_per_shard = p.sublists_per_shard;
  c.filter_columns = p.filter_columns;
  c.shard_prefix = p.shard_prefix;
  c.db_path_template = p.db_path_template;
  return c;
}

class UpdateRunImpl final : public UpdateRun {
 public:
  // Loads and checks the base, claims the local run folder (`folder_mode`: kExclusive when this
  // process rebuilds the shards, kShared when tasks on this machine build beside it) and the run.
  static Result<std::unique_ptr<UpdateRunImpl>> Start(const WriteConfig& config, const UpdateOptions& options,
                                                      std::string writer_type, std::shared_ptr<ObjectStore> store,
                                                      FileLock::Mode folder_mode) {
    RETURN_IF_ERROR(Validate(config));
    if (writer_type.empty()) return Status::InvalidArgument("writer_type must not be empty");
    if (!store) {
      ASSIGN_OR_RETURN(store, OpenStore(config.store, config.store_options));
    }
    auto run = std::unique_ptr<UpdateRunImpl>(new UpdateRunImpl(config, options, std::move(store)));
    RunCtx& ctx = run->ctx_;
    ASSIGN_OR_RETURN(ctx.base, LoadBase(*ctx.store, *ctx.manifests, options.base));
    RETURN_IF_ERROR(CheckConfigAgainstBase(config, ctx.base));
    if (config.publish_policy == PublishPolicy::kRejectIfNewer) RETURN_IF_ERROR(CheckBaseCurrent(*ctx.manifests, ctx.base));
    ASSIGN_OR_RETURN(run->folder_, ClaimLocalRunFolder(config.local_root, ctx.run_id, folder_mode));
    ctx.local_run_dir = run->folder_->dir;
    RETURN_IF_ERROR(ClaimRunId(*ctx.store, ctx.run_id, config.run_id.has_value(), LayoutOf(config)));
    RETURN_IF_ERROR(ProbeStoreWritable(*ctx.store, ctx.run_id, LayoutOf(config)));
    if (config.metrics) EmitMetric(*config.metrics, metric_events::kWriteStarted, {{"run_id", ctx.run_id}});
    run->run_record_ = RunRecordLifecycle::Start(ctx.store, ctx.run_id, writer_type, LayoutOf(config));
    run->state_ = State::kBegun;
    run->begun_ = std::chrono::steady_clock::now();
    return run;
  }

  ~UpdateRunImpl() override {
    if (state_ == State::kBegun || state_ == State::kPlanned) {
      Abort(Status::Internal("the update ended without Finish or Abort"));
    }
    ReleaseFolder();
  }

  const std::string& run_id() const override { return ctx_.run_id; }
  const RoutingPlan& routing() const override { return ctx_.base.plan; }
  const RunCtx& ctx() const { return ctx_; }

  Result<UpdatePlan> Plan(const std::vector<UpsertRoute>& upserts, const std::vector<RecordId>& deletes) override {
    if (state_ != State::kBegun) {
      return Status::InvalidArgument(fmt::format("update run {}: Plan runs once, before Finish", ctx_.run_id));
    }
    Result<UpdatePlan> plan = MakePlan(upserts, deletes);
    if (!plan.ok()) {
      Abort(plan.status());
      return plan.status();
    }
    plan_ = *plan;
    state_ = State::kPlanned;
    planned_ = std::chrono::steady_clock::now();
    return plan;
  }

  Result<UpdateResult> Finish(std::vector<UpdateShardResult> results) override {
    if (state_ != State::kPlanned) {
      return Status::InvalidArgument(fmt::format("update run {}: Finish runs once, after Plan", ctx_.run_id));
    }
    const auto finish_start = std::chrono::steady_clock::now();
    Result<UpdateResult> result = Compose(std::move(results));
    ReleaseFolder();
    if (!result.ok()) {
      Abort(result.status());
      return result.status();
    }
    state_ = State::kFinished;
    run_record_->MarkSucceeded(result->build.manifest_ref);
    BuildDurations& d = result->build.durations;
    d.sharding_ms = MillisBetween(begun_, planned_);
    d.write_ms = MillisBetween(planned_, finish_start);
    d.manifest_ms = MillisSince(finish_start);
    result->build.elapsed_ms = MillisSince(t0_);
    d.total_ms = result->build.elapsed_ms;
    ReportFinished(*result);
    return result;
  }

  void Abort(const Status& error) override {
    if (state_ != State::kBegun && state_ != State::kPlanned) return;
    state_ = State::kFailed;
    ReleaseFolder();
    RemoveUnpublishedRun(*ctx_.store, *ctx_.manifests, ctx_.run_id, LayoutOf(config_), error);
    run_record_->MarkFailed(error);
  }

 private:
  enum class State { kStarting, kBegun, kPlanned, kFinished, kFailed };

  UpdateRunImpl(const WriteConfig& config, const UpdateOptions& options, std::shared_ptr<ObjectStore> store)
      : config_(config),
        options_(options),
        ctx_{config_, options_, store, WriteManifestStore(config_, store), config_.run_id.value_or(NewUuidHex()),
             NowUtc(), {}, {}} {}

  static double MillisBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  }

  void ReleaseFolder() {
    if (folder_) ReleaseLocalRunFolder(*folder_);
    folder_.reset();
  }

  Result<UpdatePlan> MakePlan(const std::vector<UpsertRoute>& upserts, const std::vector<RecordId>& deletes) {
    const LoadedSnapshot& s = *ctx_.base.snap;
    UpdatePlan plan;
    plan.store = config_.store;
    plan.store_options = config_.store_options;
    plan.local_root = config_.local_root;
    plan.run_id = ctx_.run_id;
    plan.dim = s.dim;
    plan.metric = s.metric;
    plan.quantization = config_.index.quantization;
    plan.sublists_per_shard = config_.sharding.sublists_per_shard;
    plan.filter_columns = config_.filter_columns;
    plan.shard_prefix = config_.shard_prefix;
    plan.db_path_template = config_.db_path_template;
    plan.compact = options_.compact;
    plan.base_manifest_ref = ctx_.base.ref.ref;
    plan.base_run_id = ctx_.base.ref.run_id;
    plan.base_published_at = ctx_.base.ref.published_at;
    ASSIGN_OR_RETURN(plan.base_manifest, SerializeManifest(s.manifest));
    std::map<int64_t, UpdateShardPlan> shards;
    const auto shard = [&](int64_t db) -> UpdateShardPlan& {
      UpdateShardPlan& p = shards[db];
      p.db_id = db;
      return p;
    };
    std::vector<RecordId> upsert_ids;
    upsert_ids.reserve(upserts.size());
    for (size_t row = 0; row < upserts.size(); ++row) {
      const UpsertRoute& u = upserts[row];
      if (u.db_id < 0 || u.db_id >= s.num_dbs) {
        return Status::InvalidArgument(fmt::format("upserts: row {} (id {}) is routed to db_id {}, outside the base's 0..{}",
                                                   row, RecordIdToString(u.id), u.db_id, s.num_dbs - 1));
      }
      upsert_ids.push_back(u.id);
      UpdateShardPlan& p = shard(u.db_id);
      ++p.upserts;
      p.upsert_digest += IdIndexHash(u.id);
    }
    ASSIGN_OR_RETURN(plan.deletes, CheckChangeIds(upsert_ids, deletes));
    ASSIGN_OR_RETURN(index_, LoadIdIndex(ctx_));
    plan.used_id_index = index_.has_value();
    if (!index_) {
      ASSIGN_OR_RETURN(index_, IndexFromIdMaps(ctx_));
    }
    for (const UpsertRoute& u : upserts) {
      for (int64_t db : index_->ShardsOf(IdIndexHash(u.id))) shard(db).replaced.push_back(u.id);
    }
    for (const RecordId& id : plan.deletes) {
      for (int64_t db : index_->ShardsOf(IdIndexHash(id))) shard(db).deleted.push_back(id);
    }
    for (auto& [db, p] : shards) plan.shards.push_back(std::move(p));
    plan.upserted = static_cast<int64_t>(upserts.size());
    return plan;
  }

  // One result per planned shard, each this run's shard for its db_id; sorted by db_id.
  Status CheckResults(std::vector<UpdateShardResult>& results) const {
    std::sort(results.begin(), results.end(),
              [](const UpdateShardResult& a, const UpdateShardResult& b) { return a.db_id < b.db_id; });
    std::map<int64_t, const UpdateShardPlan*> planned;
    for (const UpdateShardPlan& p : plan_.shards) planned.emplace(p.db_id, &p);
    std::set<int64_t> seen;
    for (const UpdateShardResult& r : results) {
      const auto it = planned.find(r.db_id);
      if (it == planned.end()) {
        return Status::InvalidArgument(fmt::format("shard result db_id {} is not a shard the update plan rebuilds", r.db_id));
      }
      if (!seen.insert(r.db_id).second) {
        return Status::InvalidArgument(fmt::format("shard result db_id {} is given twice", r.db_id));
      }
      if (r.upserts != it->second->upserts) {
        return Status::InvalidArgument(fmt::format("shard result db_id {} added {} upserted rows but the plan routed {} there",
                                                   r.db_id, r.upserts, it->second->upserts));
      }
      if (r.info.row_count > 0) {
        const std::string expected = ctx_.store->Url(ShardDirKey(ctx_.run_id, r.db_id, 0, LayoutOf(config_)));
        if (r.info.db_id != r.db_id || r.info.attempt != 0 || r.info.db_url != expected) {
          return Status::InvalidArgument(fmt::format(
              "shard result db_id {}: its shard (db_id {}, attempt {}, db_url '{}') is not this run's '{}'", r.db_id,
              r.info.db_id, r.info.attempt, r.info.db_url, expected));
        }
      }
    }
    for (const auto& [db, p] : planned) {
      if (!seen.count(db)) return Status::InvalidArgument(fmt::format("no shard result for db_id {} (the plan rebuilds it)", db));
    }
    return Status::OK();
  }

  Result<UpdateResult> Compose(std::vector<UpdateShardResult> results) {
    RETURN_IF_ERROR(CheckResults(results));
    const LoadedSnapshot& s = *ctx_.base.snap;
    UpdateResult result;
    UpdateReport& report = result.report;
    report.base_run_id = ctx_.base.ref.run_id;
    report.base_manifest_ref = ctx_.base.ref.ref;
    report.upserted = plan_.upserted;
    report.used_id_index = plan_.used_id_index;
    std::set<int64_t> affected;
    for (const UpdateShardPlan& p : plan_.shards) affected.insert(p.db_id);

    // Deletes no rebuilt shard found.
    std::unordered_set<std::string> found;
    int64_t base_rows_read = 0;
    double base_distance_sum = 0, upsert_distance_sum = 0;
    for (const UpdateShardResult& r : results) {
      for (const RecordId& id : r.deleted_ids) found.insert(EncodeOriginalId(id));
      report.replaced += r.replaced;
      report.deleted += r.deleted;
      base_rows_read += r.base_distance_rows;
      base_distance_sum += r.base_distance_sum;
      upsert_distance_sum += r.upsert_distance_sum;
    }
    std::vector<std::string> missing;
    for (const RecordId& id : plan_.deletes) {
      std::string text = EncodeOriginalId(id);
      if (!found.count(text)) missing.push_back(std::move(text));
    }
    report.missing_deletes = static_cast<int64_t>(missing.size());
    if (!missing.empty() && options_.strict) return StrictMissing(std::move(missing), report.base_run_id);
    if (s.routing.centroids && plan_.upserted > 0) {
      report.upsert_centroid_distance = upsert_distance_sum / static_cast<double>(plan_.upserted);
    }
    if (s.routing.centroids && base_rows_read > 0) {
      report.base_centroid_distance = base_distance_sum / static_cast<double>(base_rows_read);
    }

    // Every shard of the new snapshot: the rebuilt ones, the others shared from the base.
    std::vector<ShardInfo> shards;
    std::vector<IdIndexEntry> new_entries;  // the rebuilt shards' rows and the added rows
    std::vector<int64_t> base_rows_by_db(static_cast<size_t>(s.num_dbs), 0), rows_by_db(static_cast<size_t>(s.num_dbs), 0);
    for (const ManifestShard& shard : s.manifest.shards) {
      base_rows_by_db[static_cast<size_t>(shard.db_id)] = shard.row_count;
      if (affected.count(shard.db_id) || !shard.db_url || shard.row_count == 0) continue;
      ASSIGN_OR_RETURN(ShardInfo info, SharedShard(ctx_, shard));
      shards.push_back(std::move(info));
      ++report.shared_shards;
    }
    // The base's entries that stay: the shared shards', and those of the shards edited in place less
    // one per removed row.
    std::map<int64_t, std::unordered_multiset<uint64_t>> removed_of;
    for (const UpdateShardResult& r : results) {
      if (r.edited_in_place) removed_of[r.db_id].insert(r.removed_id_hashes.begin(), r.removed_id_hashes.end());
    }
    std::vector<bool> keep(static_cast<size_t>(index_->size()), true);
    for (int64_t i = 0; i < index_->size(); ++i) {
      const IdIndexEntry e = index_->entry(i);
      if (!affected.count(e.db_id)) continue;
      const auto removed = removed_of.find(e.db_id);
      if (removed == removed_of.end()) {
        keep[static_cast<size_t>(i)] = false;  // rebuilt whole: its entries are the new rows'
      } else if (auto it = removed->second.find(e.hash); it != removed->second.end()) {
        removed->second.erase(it);
        keep[static_cast<size_t>(i)] = false;
      }
    }
    int64_t base_lists_rebuilt = 0, base_list_shards_rebuilt = 0, lists_new = 0, list_shards_new = 0;
    for (const UpdateShardResult& r : results) {
      report.rebuilt.push_back(UpdateShardChange{r.db_id, r.base_rows, r.info.row_count});
      if (r.edited_in_place) report.edited_in_place.push_back(r.db_id);
      base_lists_rebuilt += r.base_sublists;
      base_list_shards_rebuilt += r.base_sublists > 0 ? 1 : 0;
      for (uint64_t hash : r.id_hashes) new_entries.push_back(IdIndexEntry{hash, static_cast<uint32_t>(r.db_id)});
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

    ASSIGN_OR_RETURN(Manifest manifest, ComposeManifest(*ctx_.store, config_, ctx_.base.plan, ctx_.run_id, shards));
    nlohmann::json& custom = manifest.custom["shardvec"];
    // The shared shards' sub-lists are the base's count less the rebuilt shards' old ones.
    const SnapshotSublists base_lists = ReadSnapshotSublists(s.manifest);
    const int64_t lists = base_lists.lists - base_lists_rebuilt + lists_new;
    const int64_t list_shards = base_lists.shards - base_list_shards_rebuilt + list_shards_new;
    custom.erase("sublists");
    if (lists > 0 && list_shards > 0) custom["sublists"] = {{"lists", lists}, {"shards", list_shards}};
    {
      // The next index is merged from the base's artifact into its own (12 bytes a row each); the
      // base's is let go before the upload.
      const IdIndex next = IdIndex::Merged(*index_, keep, std::move(new_entries));
      index_.reset();
      RETURN_IF_ERROR(WriteIdIndex(*ctx_.store, ctx_.run_id, next, manifest));
    }
    custom["update"] = {{"base_run_id", report.base_run_id}, {"base_manifest_ref", report.base_manifest_ref}};

    if (config_.publish_policy == PublishPolicy::kRejectIfNewer) RETURN_IF_ERROR(CheckBaseCurrent(*ctx_.manifests, ctx_.base));
    Progress(config_, "publish", 0, 1);
    ASSIGN_OR_RETURN(PublishResult published, PublishRun(*ctx_.manifests, manifest, ctx_.started, config_.publish_policy,
                                                         config_.allow_schema_change));
    Progress(config_, "publish", 1, 1);
    const auto num_attempts = static_cast<int64_t>(results.size());
    result.build = MakeBuildResult(ctx_.run_id, published, s.num_dbs, std::move(shards));
    result.build.num_attempt_results = num_attempts;
    return result;
  }

  void ReportFinished(const UpdateResult& result) const {
    const UpdateReport& r = result.report;
    const BuildResult& b = result.build;
    LogEvent(LogLevel::kInfo, "vector_update_completed",
             {{"run_id", b.run_id}, {"base_run_id", r.base_run_id}, {"manifest_ref", b.manifest_ref},
              {"upserted", r.upserted}, {"replaced", r.replaced}, {"deleted", r.deleted},
              {"missing_deletes", r.missing_deletes}, {"rebuilt_shards", static_cast<int64_t>(r.rebuilt.size())},
              {"shared_shards", r.shared_shards}, {"elapsed_ms", static_cast<int64_t>(b.elapsed_ms)}});
    if (r.rebuild_advised) LogEvent(LogLevel::kWarning, "update_rebuild_advised", {{"message", r.advice}});
    if (!config_.metrics) return;
    for (const UpdateShardChange& c : r.rebuilt) {
      const auto built = std::find_if(b.shards.begin(), b.shards.end(), [&](const ShardInfo& s) { return s.db_id == c.db_id; });
      if (built == b.shards.end()) continue;
      EmitMetric(*config_.metrics, metric_events::kShardWriteCompleted,
                 {{"run_id", b.run_id}, {"db_id", c.db_id}, {"row_count", built->row_count}, {"db_bytes", built->db_bytes}});
    }
    EmitMetric(*config_.metrics, metric_events::kWritePublished, {{"run_id", b.run_id}, {"manifest_ref", b.manifest_ref}});
    EmitMetric(*config_.metrics, metric_events::kWriteCompleted,
               {{"run_id", b.run_id}, {"total_vectors", b.total_vectors}, {"num_shards", b.num_dbs},
                {"elapsed_ms", static_cast<int64_t>(b.elapsed_ms)}});
  }

  const WriteConfig config_;
  const UpdateOptions options_;
  RunCtx ctx_;
  std::optional<LocalRunFolder> folder_;
  std::unique_ptr<RunRecordLifecycle> run_record_;
  State state_ = State::kStarting;
  std::optional<IdIndex> index_;  // the base's, found by Plan
  UpdatePlan plan_;
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point begun_, planned_;
};

// The phases in this process: the upserts checked and routed here, the shards rebuilt on a pool.
Result<UpdateResult> UpdateInProcess(UpdateRunImpl& run, const RecordBatch* upserts, const std::vector<RecordId>& deletes) {
  ASSIGN_OR_RETURN(Changes ch, CheckUpserts(*run.ctx().base.snap, upserts, std::nullopt));
  ASSIGN_OR_RETURN(UpdatePlan plan, run.Plan(RoutesOf(ch, upserts), deletes));
  for (const UpdateShardPlan& shard : plan.shards) AddDrops(ch, shard);
  ASSIGN_OR_RETURN(std::vector<UpdateShardResult> results, RebuildShards(run.ctx(), ch, upserts, plan));
  return run.Finish(std::move(results));
}

}  // namespace

Result<std::unique_ptr<UpdateRun>> UpdateRun::Begin(const WriteConfig& config, const UpdateOptions& options,
                                                    std::string writer_type, std::shared_ptr<ObjectStore> store) {
  if (!config.vec0_path.empty()) {
    return Status::InvalidArgument(fmt::format(
        "vec0_path='{}' cannot take effect in a distributed update (its tasks load their own default)", config.vec0_path));
  }
  if (config.max_parallel_shards != 0) {
    return Status::InvalidArgument(fmt::format(
        "max_parallel_shards={} cannot take effect in a distributed update (each task rebuilds one shard); leave it 0",
        config.max_parallel_shards));
  }
  if (config.write_rate_limiter) {
    return Status::InvalidArgument(
        "write_rate_limiter cannot take effect in a distributed update (its tasks rebuild shards in other processes); "
        "leave it unset");
  }
  if (options.rebase) {
    return Status::InvalidArgument(
        "rebase cannot take effect in a distributed update (its tasks rebuild the planned base's shards); a "
        "PublishConflictError means: run the update again");
  }
  if (options.retrain) {
    return Status::InvalidArgument(
        "retrain cannot take effect in a distributed update (its tasks rebuild the planned shards with the base's "
        "routing); retrain with the single-process update");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<UpdateRunImpl> run,
                   UpdateRunImpl::Start(config, options, std::move(writer_type), std::move(store), FileLock::Mode::kShared));
  return std::unique_ptr<UpdateRun>(std::move(run));
}

Result<UpdateShardResult> RebuildUpdateShard(const UpdatePlan& plan, int64_t db_id, const RecordBatch* upserts,
                                             std::shared_ptr<ObjectStore> store) {
  RETURN_IF_ERROR(CheckPlanSettings(plan));
  const auto planned = std::find_if(plan.shards.begin(), plan.shards.end(),
                                    [&](const UpdateShardPlan& p) { return p.db_id == db_id; });
  if (planned == plan.shards.end()) {
    std::vector<int64_t> dbs;
    for (const UpdateShardPlan& p : plan.shards) dbs.push_back(p.db_id);
    return Status::InvalidArgument(fmt::format("db_id {} is not a shard the update plan rebuilds (it rebuilds {})", db_id,
                                               fmt::join(dbs, ", ")));
  }
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(plan.store, plan.store_options));
  }
  const WriteConfig config = TaskConfig(plan);
  const UpdateOptions options{.base = plan.base_run_id, .compact = plan.compact};
  // A task has no manifest store: the base's manifest came in the plan, and the driver publishes.
  RunCtx ctx{config, options, store, nullptr, plan.run_id, NowUtc(), {}, {}};
  ASSIGN_OR_RETURN(ctx.base, BaseFromPlan(*store, plan));
  if (db_id < 0 || db_id >= ctx.base.snap->num_dbs) {
    return Status::InvalidArgument(fmt::format("update plan db_id {} is outside the base's 0..{}", db_id,
                                               ctx.base.snap->num_dbs - 1));
  }
  ASSIGN_OR_RETURN(Changes ch, CheckUpserts(*ctx.base.snap, upserts, db_id));
  RETURN_IF_ERROR(CheckPlannedUpserts(*planned, ch, upserts));
  AddDrops(ch, *planned);
  ASSIGN_OR_RETURN(LocalRunFolder folder, ClaimLocalRunFolder(plan.local_root, plan.run_id, FileLock::Mode::kShared));
  // A folder of this task's own: two tries of one shard (a retry beside a dying one) never share files.
  ctx.local_run_dir = folder.dir / fmt::format("update-db={:05d}-{}", db_id, NewUuidHex());
  Status made = CreateDirectories(ctx.local_run_dir / "base");
  Result<Rebuilt> rebuilt = made.ok() ? RebuildShard(ctx, ch, upserts, db_id) : Result<Rebuilt>(made);
  std::error_code ec;
  fs::remove_all(ctx.local_run_dir, ec);
  ReleaseLocalRunFolder(folder);
  RETURN_IF_ERROR(rebuilt.status());
  return ShardResultOf(std::move(rebuilt).value(), ch, db_id);
}

// ---- Retraining: the whole snapshot built anew from the base's rows and the changes ------------

// The records of the snapshot after the update: every base shard's rows in turn (each shard fetched,
// its size and digest checked, then removed) less the changed ids, then the upserts. Counts the
// base rows the changes found; `after_base` runs with them once the base's rows are all read.
class BaseRecordSource final : public RecordSource {
 public:
  using AfterBase = std::function<Status(const BaseRecordSource&)>;
  BaseRecordSource(ObjectStore& store, const LoadedSnapshot& s, const std::unordered_map<std::string, bool>& changed,
                   const RecordBatch* upserts, fs::path scratch, AfterBase after_base)
      : store_(store), s_(s), changed_(changed), upserts_(upserts), scratch_(std::move(scratch)),
        after_base_(std::move(after_base)) {
    for (const auto& [db, loc] : s.shards) shards_.push_back(&loc);
  }
  ~BaseRecordSource() override { Close(); }

  Result<bool> Next(Record* out) override {
    while (true) {
      if (cursor_) {
        ASSIGN_OR_RETURN(const bool more, cursor_->Next(&row_));
        if (more) {
          if (auto it = changed_.find(EncodeOriginalId(row_.id)); it != changed_.end()) {
            (it->second ? replaced_ : deleted_).insert(it->first);
            continue;
          }
          out->id = row_.id;
          out->vector.assign(row_.vector.begin(), row_.vector.end());
          out->payload_json = row_.payload;
          out->shard_id.reset();
          out->routing_context.reset();
          return true;
        }
        Close();
      }
      if (next_shard_ < shards_.size()) {
        const ShardLocation& loc = *shards_[next_shard_++];
        file_ = scratch_ / fmt::format("db={:05d}.db", loc.db_id);
        RETURN_IF_ERROR(FetchShardFile(store_, loc, file_));
        ASSIGN_OR_RETURN(ShardRowCursor cursor, ShardRowCursor::Open(file_, ShardName(loc), s_.dim, /*with_vectors=*/true));
        cursor_.emplace(std::move(cursor));
        continue;
      }
      if (!base_read_) {
        base_read_ = true;
        if (after_base_) RETURN_IF_ERROR(after_base_(*this));
      }
      if (upserts_ != nullptr && next_upsert_ < upserts_->rows) {
        upserts_->FieldsAt(next_upsert_, out);
        const std::span<const float> v = upserts_->VectorAt(next_upsert_++);
        out->vector.assign(v.begin(), v.end());
        return true;
      }
      return false;
    }
  }

  Status Rewind() override {
    Close();
    next_shard_ = 0;
    next_upsert_ = 0;
    base_read_ = false;
    replaced_.clear();
    deleted_.clear();
    return Status::OK();
  }

  // Of the changed ids, those the base rows read so far held.
  const std::unordered_set<std::string>& replaced() const { return replaced_; }
  const std::unordered_set<std::string>& deleted() const { return deleted_; }

 private:
  void Close() {
    cursor_.reset();
    if (!file_.empty()) {
      std::error_code ec;
      fs::remove(file_, ec);
      file_.clear();
    }
  }

  ObjectStore& store_;
  const LoadedSnapshot& s_;
  const std::unordered_map<std::string, bool>& changed_;
  const RecordBatch* upserts_;
  const fs::path scratch_;
  AfterBase after_base_;
  std::vector<const ShardLocation*> shards_;
  size_t next_shard_ = 0;
  int64_t next_upsert_ = 0;
  bool base_read_ = false;
  fs::path file_;
  std::optional<ShardRowCursor> cursor_;
  BaseRow row_;
  std::unordered_set<std::string> replaced_, deleted_;
};

// UpdateOptions::retrain: the base's rows less the changed ids, plus the upserts, built as a new
// snapshot with CLUSTER centroids trained anew, published under the update's conflict rules.
Result<UpdateResult> RetrainUpdate(const WriteConfig& config, const RecordBatch* upserts,
                                   const std::vector<RecordId>& deletes, const UpdateOptions& options,
                                   std::shared_ptr<ObjectStore> store) {
  if (options.compact) {
    return Status::InvalidArgument("compact cannot take effect with retrain: a retrain rebuilds every shard whole");
  }
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(config.store, config.store_options));
  }
  const std::shared_ptr<ManifestStore> manifests = WriteManifestStore(config, store);
  ASSIGN_OR_RETURN(Base base, LoadBase(*store, *manifests, options.base));
  const LoadedSnapshot& s = *base.snap;
  if (s.strategy != Strategy::kCluster) {
    return Status::InvalidArgument(fmt::format(
        "retrain trains a CLUSTER snapshot's centroids anew, but the base snapshot (run_id={}) is sharded by {}, whose "
        "routing is not trained; compact rebuilds the touched shards whole",
        base.ref.run_id, StrategyName(s.strategy)));
  }
  RETURN_IF_ERROR(CheckConfigAgainstBase(config, base));
  const bool guarded = config.publish_policy == PublishPolicy::kRejectIfNewer;
  if (guarded) RETURN_IF_ERROR(CheckBaseCurrent(*manifests, base));
  ASSIGN_OR_RETURN(const Changes checked, CheckUpserts(s, upserts, std::nullopt));
  std::vector<RecordId> upsert_ids;
  std::unordered_map<std::string, bool> changed;
  Record record;
  for (const Upsert& u : checked.upserts) {
    upserts->FieldsAt(u.row, &record);
    upsert_ids.push_back(record.id);
    changed.emplace(EncodeOriginalId(record.id), true);
  }
  ASSIGN_OR_RETURN(const std::vector<RecordId> unique_deletes, CheckChangeIds(upsert_ids, deletes));
  for (const RecordId& id : unique_deletes) changed.emplace(EncodeOriginalId(id), false);

  ASSIGN_OR_RETURN(LocalRunFolder scratch,
                   ClaimLocalRunFolder(config.local_root, "retrain-" + NewUuidHex(), FileLock::Mode::kExclusive));
  std::vector<std::string> missing;
  BaseRecordSource source(*store, s, changed, upserts, scratch.dir, [&](const BaseRecordSource& read) -> Status {
    missing.clear();
    for (const RecordId& id : unique_deletes) {
      std::string text = EncodeOriginalId(id);
      if (!read.deleted().count(text)) missing.push_back(std::move(text));
    }
    if (!missing.empty() && options.strict) return StrictMissing(missing, base.ref.run_id);
    return Status::OK();
  });
  WriteConfig build = config;
  build.sharding.centroids.reset();
  build.sharding.train_centroids = true;
  Result<BuildResult> built = WriteShardedCheckingBeforePublish(
      build, source, store, [&]() { return guarded ? CheckBaseCurrent(*manifests, base) : Status::OK(); });
  std::error_code ec;
  fs::remove_all(scratch.dir, ec);
  ReleaseLocalRunFolder(scratch);
  RETURN_IF_ERROR(built.status());

  UpdateResult result;
  result.build = std::move(built).value();
  UpdateReport& report = result.report;
  report.base_run_id = base.ref.run_id;
  report.base_manifest_ref = base.ref.ref;
  report.upserted = static_cast<int64_t>(checked.upserts.size());
  report.replaced = static_cast<int64_t>(source.replaced().size());
  report.deleted = static_cast<int64_t>(source.deleted().size());
  report.missing_deletes = static_cast<int64_t>(missing.size());
  std::vector<int64_t> base_rows(static_cast<size_t>(s.num_dbs), 0), rows(static_cast<size_t>(s.num_dbs), 0);
  for (const ManifestShard& shard : s.manifest.shards) base_rows[static_cast<size_t>(shard.db_id)] = shard.row_count;
  for (const ShardInfo& shard : result.build.shards) rows[static_cast<size_t>(shard.db_id)] = shard.row_count;
  for (int64_t db = 0; db < s.num_dbs; ++db) {
    const auto i = static_cast<size_t>(db);
    if (base_rows[i] > 0 || rows[i] > 0) report.rebuilt.push_back(UpdateShardChange{db, base_rows[i], rows[i]});
  }
  report.base_imbalance = Imbalance(base_rows);
  report.imbalance = Imbalance(rows);
  LogEvent(LogLevel::kInfo, "vector_update_retrained",
           {{"run_id", result.build.run_id}, {"base_run_id", report.base_run_id},
            {"message", fmt::format("every shard rebuilt from the base's rows and the changes, the centroids trained "
                                    "anew: {} vectors", result.build.total_vectors)}});
  return result;
}

Result<UpdateResult> UpdateSharded(const WriteConfig& config, const RecordBatch* upserts,
                                   const std::vector<RecordId>& deletes, const UpdateOptions& options,
                                   std::shared_ptr<ObjectStore> store) {
  RETURN_IF_ERROR(Validate(config));
  RETURN_IF_ERROR(UseSqliteVec("vec0_path", config.vec0_path));
  if (options.rebase && config.publish_policy == PublishPolicy::kLastWriterWins) {
    return Status::InvalidArgument(
        "rebase cannot take effect with publish_policy last-writer-wins (which publishes over a newer snapshot "
        "instead of conflicting); choose one");
  }
  UpdateOptions attempt = options;
  for (int64_t rebased = 0;; ++rebased) {
    Result<UpdateResult> result = Status::Internal("not run");
    if (options.retrain) {
      result = RetrainUpdate(config, upserts, deletes, attempt, store);
    } else {
      Result<std::unique_ptr<UpdateRunImpl>> run =
          UpdateRunImpl::Start(config, attempt, "vector-shardvec-update", store, FileLock::Mode::kExclusive);
      result = run.ok() ? UpdateInProcess(**run, upserts, deletes) : Result<UpdateResult>(run.status());
      // A no-op when Plan or Finish already ended the run; its uploads are removed before a rebase.
      if (run.ok() && !result.ok()) (*run)->Abort(result.status());
    }
    const bool conflict = !result.ok() && result.status().kind() == ErrorKind::kPublishConflict;
    if (!conflict || !options.rebase || rebased == kMaxRebases) {
      if (result.ok()) result->report.rebased = rebased;
      return result;
    }
    LogEvent(LogLevel::kInfo, "update_rebased",
             {{"attempt", rebased + 1}, {"message", fmt::format("redoing the update on the current snapshot: {}",
                                                                result.status().message())}});
    attempt.base = "current";
  }
}

// The sub-lists the base was built with (custom.shardvec.sublists_per_shard). A snapshot that does
// not record it (an older shardvec's, shardyfusion's) and has no sub-lists although some shard holds
// enough rows for auto to make them was built with none (1); otherwise auto (0).
Result<int64_t> BaseSublistsPerShard(const LoadedSnapshot& s) {
  const nlohmann::json recorded = CustomField(s.manifest, "shardvec", "sublists_per_shard");
  if (!recorded.is_null()) {
    if (!recorded.is_number_integer() || recorded.get<int64_t>() < 0 || recorded.get<int64_t>() > kMaxSublistsPerShard) {
      return Status::Corruption(fmt::format("manifest '{}': custom.shardvec.sublists_per_shard must be an integer in "
                                            "0..{}, got {}", s.manifest_ref, kMaxSublistsPerShard, recorded.dump()));
    }
    return recorded.get<int64_t>();
  }
  if (!CustomField(s.manifest, "shardvec", "sublists").is_null()) return int64_t{0};
  const bool lists_possible = std::any_of(s.manifest.shards.begin(), s.manifest.shards.end(), [](const ManifestShard& shard) {
    return SublistCount(shard.row_count, 0) > 1;
  });
  return int64_t{lists_possible ? 1 : 0};
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
  ASSIGN_OR_RETURN(c.sharding.sublists_per_shard, BaseSublistsPerShard(s));
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
