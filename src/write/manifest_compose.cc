#include "write/manifest_compose.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <set>
#include <string>

#include "common/digest.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/time_util.h"
#include "format/keys.h"
#include "format/npy.h"
#include "format/routing_json.h"
#include "shard/shard_builder.h"
#include "write/config_validation.h"

namespace shardvec {
namespace {

// Checks one routing artifact (finite values: a NaN centroid would route every row to one shard),
// uploads it (never over an existing object), records its digest under `name`, and returns its URL.
Result<std::string> PutNpy(ObjectStore& store, const std::string& run_id, const std::string& name, const Matrix& m,
                           int64_t dim, nlohmann::json& digests) {
  RETURN_IF_ERROR(CheckMatrix(m, name, dim));
  const std::string key = VectorMetaKey(run_id, name + ".npy");
  const std::string bytes = EncodeNpyMatrix(m);
  RETURN_IF_ERROR(store.PutIfAbsent(key, bytes));
  digests[name] = Xxh3Digest(bytes);
  return store.Url(key);
}

// Each non-empty shard's filter column statistics by db_id (ShardInfo::filter_stats): a shard must
// report exactly the columns the write declares (a task given other columns than the driver's is
// refused here, before anything is published).
Result<nlohmann::json> FilterStatsByShard(const WriteConfig& c, const std::vector<ShardInfo>& shards) {
  nlohmann::json by_shard = nlohmann::json::object();
  for (const ShardInfo& s : shards) {
    if (s.row_count == 0) continue;
    nlohmann::json stats = s.filter_stats.empty() ? nlohmann::json::object()
                                                  : nlohmann::json::parse(s.filter_stats, nullptr, false);
    std::vector<std::string> names;
    if (stats.is_object()) {
      for (const auto& [name, _] : stats.items()) names.push_back(name);
    }
    std::vector<std::string> declared;
    for (const auto& [name, _] : c.filter_columns) declared.push_back(name);
    if (!stats.is_object() || names != declared) {
      return Status::InvalidArgument(fmt::format(
          "shard db_id {} reports filter column statistics for [{}] but the write declares filter_columns [{}]: "
          "its task was built with other filter columns",
          s.db_id, fmt::join(names, ", "), fmt::join(declared, ", ")));
    }
    if (!declared.empty()) by_shard[std::to_string(s.db_id)] = std::move(stats);
  }
  return by_shard;
}

}  // namespace

Result<Manifest> ComposeManifest(ObjectStore& store, const WriteConfig& c, const RoutingPlan& plan,
                                 const std::string& run_id, const std::vector<ShardInfo>& shards) {
  Manifest m;
  m.run_id = run_id;
  m.created_at = FormatTimestamp(NowUtc());
  m.num_dbs = plan.num_dbs;
  m.s3_prefix = store.PrefixUrl();
  m.shard_prefix = c.shard_prefix;
  m.db_path_template = c.db_path_template;
  int64_t total = 0;
  nlohmann::json digests = nlohmann::json::object();
  std::set<std::string> id_types;  // of the non-empty shards; "" when one did not say
  int64_t sublists = 0, sublist_shards = 0;
  for (const ShardInfo& s : shards) {
    if (s.row_count > 0) id_types.insert(s.id_type);
    if (s.sublists > 0) {
      sublists += s.sublists;
      ++sublist_shards;
    }
    ManifestShard row;
    row.db_id = s.db_id;
    row.db_url = s.db_url;
    row.attempt = s.attempt;
    row.writer_info["attempt"] = s.attempt;
    row.row_count = s.row_count;
    row.db_bytes = s.db_bytes;
    row.checkpoint_id = s.checkpoint_id;
    m.shards.push_back(std::move(row));
    digests[std::to_string(s.db_id)] = s.digest;
    total += s.row_count;
  }
  nlohmann::json vector = {
      {"dim", c.index.dim},
      {"metric", MetricName(c.index.metric)},
      {"index_type", c.index.index_type},
      {"quantization", c.index.quantization ? nlohmann::json(*c.index.quantization) : nlohmann::json()},
      {"total_vectors", total},
      {"sharding_strategy", StrategyName(c.sharding.strategy)},
      {"num_probes", c.sharding.num_probes},
  };
  nlohmann::json artifact_digests = nlohmann::json::object();
  if (plan.centroids) {
    ASSIGN_OR_RETURN(vector["centroids_ref"],
                     PutNpy(store, run_id, "centroids", *plan.centroids, c.index.dim, artifact_digests));
  }
  if (plan.hyperplanes) {
    ASSIGN_OR_RETURN(vector["hyperplanes_ref"],
                     PutNpy(store, run_id, "hyperplanes", *plan.hyperplanes, c.index.dim, artifact_digests));
    vector["num_hash_bits"] = plan.num_hash_bits;
  }
  if (plan.strategy == Strategy::kCel) {
    vector["cel_expr"] = plan.cel_expr;
    vector["cel_columns"] = plan.cel_columns;
    if (plan.routing_values) vector["routing_values"] = RoutingValuesToJson(*plan.routing_values);
  }
  for (const auto& [key, text] : c.custom_manifest_fields_json) {
    auto value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) {
      return Status::InvalidArgument(fmt::format("custom manifest field '{}' is not valid JSON: '{}'", key, text));
    }
    m.custom[key] = std::move(value);
  }
  m.custom["vector"] = std::move(vector);
  m.custom["shardvec"] = {
      {"format", 1},
      {"shard_digests", std::move(digests)},
      {"artifact_digests", std::move(artifact_digests)},
      {"page_size", kShardPageSize},
      {"writer", std::string("shardvec ") + SHARDVEC_VERSION},
      // What the shards carry beside their float32 vectors: "int8" codes or "none".
      {"quantization", WritesInt8Codes(c.index.quantization) ? "int8" : "none"},
      // The sub-lists the writer asked for (0 = auto, 1 = none): an update without a setting of its
      // own rebuilds shards as the snapshot was built.
      {"sublists_per_shard", c.sharding.sublists_per_shard},
  };
  // The snapshot's id type, when every non-empty shard said (a guarded publish compares it).
  if (!id_types.empty() && !id_types.contains("")) {
    m.custom["shardvec"]["id_type"] = id_types.size() == 1 ? *id_types.begin() : std::string("mixed");
  }
  // Shards split into sub-lists (their shardvec_sublists tables): a reader then scans the nearest lists
  // rather than whole shards.
  if (sublists > 0) m.custom["shardvec"]["sublists"] = {{"lists", sublists}, {"shards", sublist_shards}};
  // Filter columns (each shard's shardvec_filter_columns table): their types, and each shard's
  // statistics by db_id for pruning.
  ASSIGN_OR_RETURN(nlohmann::json filter_stats, FilterStatsByShard(c, shards));
  if (!c.filter_columns.empty()) {
    m.custom["shardvec"]["filter_columns"] = c.filter_columns;
    m.custom["shardvec"]["filter_stats"] = std::move(filter_stats);
  }
  return m;
}

BuildResult MakeBuildResult(const std::string& run_id, const PublishResult& published, int64_t num_dbs,
                            std::vector<ShardInfo> shards) {
  BuildResult result;
  result.run_id = run_id;
  result.manifest_ref = published.manifest_ref;
  result.num_dbs = num_dbs;
  for (const ShardInfo& s : shards) result.total_vectors += s.row_count;
  result.shards = std::move(shards);
  return result;
}

std::shared_ptr<ManifestStore> WriteManifestStore(const WriteConfig& config, std::shared_ptr<ObjectStore> store) {
  if (config.manifest_store) return config.manifest_store;
  return MakeObjectManifestStore(std::move(store));
}

namespace {

// custom.vector.<field> as compact JSON text ("(missing)" when absent), for comparing and naming.
std::string VectorField(const Manifest& m, const char* field) {
  if (!m.custom.is_object() || !m.custom.contains("vector") || !m.custom["vector"].is_object() ||
      !m.custom["vector"].contains(field)) {
    return "(missing)";
  }
  const nlohmann::json& value = m.custom["vector"][field];
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// custom.shardvec.id_type ("int", "str" or "mixed"), or nullopt when the manifest does not record it.
std::optional<std::string> IdType(const Manifest& m) {
  if (!m.custom.is_object() || !m.custom.contains("shardvec") || !m.custom["shardvec"].is_object()) {
    return std::nullopt;
  }
  const nlohmann::json& shardvec = m.custom["shardvec"];
  if (!shardvec.contains("id_type") || !shardvec["id_type"].is_string()) return std::nullopt;
  return shardvec["id_type"].get<std::string>();
}

}  // namespace

Status CheckSchemaUnchanged(ManifestStore& manifests, const Manifest& next) {
  Result<std::optional<ManifestRef>> current = manifests.LoadCurrent();
  if (!current.ok() || !current->has_value()) return Status::OK();
  Result<Manifest> live = manifests.LoadManifest((*current)->ref);
  if (!live.ok()) return Status::OK();
  std::vector<std::string> changed;
  for (const char* field : {"dim", "metric"}) {
    const std::string was = VectorField(*live, field);
    const std::string now = VectorField(next, field);
    if (was != now) changed.push_back(fmt::format("{} {} (current: {})", field, now, was));
  }
  // Ids of another type would reach the callers of live readers: compared when both record it.
  const std::optional<std::string> was_ids = IdType(*live);
  const std::optional<std::string> now_ids = IdType(next);
  if (was_ids && now_ids && *was_ids != *now_ids) {
    changed.push_back(fmt::format("id type {} (current: {})", *now_ids, *was_ids));
  }
  if (changed.empty()) return Status::OK();
  return Status::Conflict(fmt::format(
             "PublishConflictError: this snapshot's {} differs from the current snapshot's (manifest '{}', "
             "run_id={}); live readers cannot search it, so it was not published. Set allow_schema_change "
             "(CLI: --allow-schema-change) to publish it anyway",
             fmt::join(changed, " and "), (*current)->ref, (*current)->run_id))
      .WithKind(ErrorKind::kPublishConflict);
}

Status CheckSchemaBeforeBuild(ManifestStore& manifests, const WriteConfig& config) {
  if (config.allow_schema_change) return Status::OK();
  Manifest planned;
  planned.custom["vector"] = {{"dim", config.index.dim}, {"metric", MetricName(config.index.metric)}};
  return CheckSchemaUnchanged(manifests, planned);
}

Result<PublishResult> PublishRun(ManifestStore& manifests, const Manifest& manifest, SystemTime started,
                                 PublishPolicy policy, bool allow_schema_change) {
  if (!allow_schema_change) RETURN_IF_ERROR(CheckSchemaUnchanged(manifests, manifest));
  ASSIGN_OR_RETURN(ManifestRef ref, manifests.Publish(manifest, PublishGuard{started, policy}));
  return PublishResult{std::move(ref.ref), std::string()};
}

bool RunHasManifest(ManifestStore& manifests, const std::string& run_id) {
  auto listed = manifests.ListManifests(0);
  if (!listed.ok()) return true;
  for (const ManifestRef& ref : *listed) {
    if (ref.run_id == run_id) return true;
  }
  return false;
}

void RemoveUnpublishedRun(ObjectStore& store, ManifestStore& manifests, const std::string& run_id,
                          const KeyLayout& layout, const Status& failure) {
  if (RunHasManifest(manifests, run_id)) return;  // or cannot tell: leave them for cleanup
  std::vector<std::string> keys;
  for (const std::string& prefix : {RunShardsPrefix(run_id, layout), VectorMetaKey(run_id, "")}) {
    auto listed = store.List(prefix);
    if (!listed.ok()) return;
    for (const ObjectInfo& o : listed->objects) keys.push_back(o.key);
  }
  if (Status st = store.DeleteMany(keys); !st.ok()) {
    LogWarning(fmt::format("run {} failed ({}); removing its objects failed too, `cleanup` removes them: {}", run_id,
                           failure.message(), st.message()));
  }
}

}  // namespace shardvec
