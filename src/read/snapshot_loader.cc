#include "read/snapshot_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "common/digest.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/vector_check.h"
#include "format/keys.h"
#include "format/npy.h"
#include "format/routing_json.h"
#include "snapshot/history.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {

Status StateError(std::string msg) { return Status::InvalidArgument(std::move(msg)); }
// Stored manifest fields that are malformed: the manifest is invalid.
Status ManifestCorrupt(std::string msg) {
  return Status::Corruption(std::move(msg)).WithKind(ErrorKind::kManifestParse);
}
// Routing artifacts that are missing or unusable: the snapshot cannot route queries.
Status RouterCorrupt(std::string msg) {
  return Status::Corruption(std::move(msg)).WithKind(ErrorKind::kRouterUnavailable);
}

// Reads, verifies (digest, finite values) and parses one routing artifact ("centroids" or
// "hyperplanes", named by custom.vector.<name>_ref).
Result<Matrix> ReadArtifact(ObjectStore& store, const Manifest& manifest, const std::string& name,
                            const std::string& url) {
  ASSIGN_OR_RETURN(std::optional<std::string> expected, RecordedDigest(manifest, "artifact_digests", name));
  ASSIGN_OR_RETURN(std::string key, KeyFromSnapshotUrl(store.PrefixUrl(), manifest.s3_prefix, url));
  ASSIGN_OR_RETURN(std::string bytes, store.Get(key, kMaxNpyFileBytes));
  if (expected && Xxh3Digest(bytes) != *expected) {
    return RouterCorrupt(fmt::format("{} artifact '{}' has digest {}, but the snapshot recorded {}", name, url,
                                     Xxh3Digest(bytes), *expected));
  }
  auto matrix = ParseNpyMatrix(bytes, fmt::format("{}_ref '{}'", name, url));
  // Bytes stored in the snapshot that do not parse are corrupt data, not a bad argument.
  if (!matrix.ok()) return RouterCorrupt(matrix.status().message());
  // A NaN centroid or hyperplane would silently send every query to the wrong shards.
  Status finite = CheckMatrix(*matrix, fmt::format("{} artifact '{}'", name, url), matrix->cols);
  if (!finite.ok()) return RouterCorrupt(finite.message());
  return matrix;
}

Result<Matrix> LoadArtifact(ObjectStore& store, const LoadedSnapshot& s, const nlohmann::json& vector,
                            const std::string& name, Strategy needed_by) {
  const std::string field = name + "_ref";
  const std::string url = vector[field].get<std::string>();
  Result<Matrix> matrix = ReadArtifact(store, s.manifest, name, url);
  if (!matrix.ok() && s.strategy == needed_by) {
    // A store answer that is corrupt (too large, a URL outside the store) leaves the router unusable too.
    return matrix.status()
        .WithMessage(fmt::format("Failed to load {} artifact '{}' required by {} sharding: {}", field, url,
                                 StrategyName(s.strategy), matrix.status().message()))
        .WithKindIf(StatusCode::kCorruption, ErrorKind::kRouterUnavailable);
  }
  return matrix;
}

// custom.vector.cel_expr, cel_columns and routing_values (bytes tokens hex-decoded).
Status ApplyCelMetadata(const nlohmann::json& v, LoadedSnapshot& s) {
  auto invalid = [&](std::string_view field, std::string_view why) {
    return StateError(fmt::format("manifest '{}': custom.vector.{} {} (got {})", s.manifest_ref, field, why,
                                  v.contains(field) ? v[std::string(field)].dump() : "(missing)"));
  };
  if (!v.contains("cel_expr") || !v["cel_expr"].is_string() || v["cel_expr"].get<std::string>().empty()) {
    return invalid("cel_expr", "must be a non-empty string for CEL sharding");
  }
  s.routing.cel_expr = v["cel_expr"].get<std::string>();
  if (!v.contains("cel_columns") || !v["cel_columns"].is_object()) {
    return invalid("cel_columns", "must be an object of variable -> CEL type for CEL sharding");
  }
  for (const auto& [name, type] : v["cel_columns"].items()) {
    if (!type.is_string()) return invalid("cel_columns", "must map each variable to a type name");
    s.routing.cel_columns[name] = type.get<std::string>();
  }
  if (v.contains("routing_values") && !v["routing_values"].is_null()) {
    ASSIGN_OR_RETURN(s.routing.routing_values,
                     RoutingValuesFromJson(v["routing_values"], "custom.vector.routing_values"));
    if (static_cast<int64_t>(s.routing.routing_values->size()) != s.num_dbs) {
      return ManifestCorrupt(fmt::format("manifest '{}' has {} routing_values but num_dbs {}", s.manifest_ref,
                                         s.routing.routing_values->size(), s.num_dbs));
    }
  }
  return Status::OK();
}

}  // namespace

// Reads custom["vector"] the way the reference does, with clear errors instead of raw exceptions.
Status ApplyVectorMetadata(ObjectStore& store, LoadedSnapshot& s) {
  const nlohmann::json& custom = s.manifest.custom;
  if (!custom.contains("vector") || !custom["vector"].is_object() || custom["vector"].empty()) {
    return StateError(fmt::format(
        "manifest '{}' does not contain vector metadata (custom[\"vector\"]); it is not a vector snapshot",
        s.manifest_ref));
  }
  const nlohmann::json& v = custom["vector"];
  auto field_error = [&](const char* field) {
    return StateError(fmt::format("manifest '{}': custom.vector.{} has an invalid value {}", s.manifest_ref,
                                  field, v.contains(field) ? v[field].dump() : "(missing)"));
  };
  if (!v.contains("dim") || !v["dim"].is_number_integer() || v["dim"].get<int64_t>() <= 0) {
    return field_error("dim");
  }
  s.dim = v["dim"].get<int64_t>();
  auto metric = ParseMetric(v.value("metric", std::string("cosine")), "custom.vector.metric");
  if (!metric.ok()) return metric.status();
  s.metric = *metric;
  if (v.contains("sharding_strategy") && !v["sharding_strategy"].is_string()) return field_error("sharding_strategy");
  auto strategy = ParseStrategy(v.value("sharding_strategy", std::string("explicit")), "custom.vector.sharding_strategy");
  if (!strategy.ok()) return strategy.status();
  s.strategy = *strategy;
  if (v.contains("num_probes") && (!v["num_probes"].is_number_integer() || v["num_probes"].get<int64_t>() < 1)) {
    return field_error("num_probes");
  }
  s.num_probes = v.value("num_probes", int64_t{1});
  s.num_dbs = s.manifest.num_dbs;

  s.routing.strategy = s.strategy;
  s.routing.metric = s.metric;
  s.routing.num_dbs = s.num_dbs;
  s.routing.dim = s.dim;
  if (v.contains("centroids_ref") && v["centroids_ref"].is_string()) {
    auto m = LoadArtifact(store, s, v, "centroids", Strategy::kCluster);
    if (m.ok()) s.routing.centroids = std::move(m).value();
    else LogEvent(s.strategy == Strategy::kCluster ? LogLevel::kError : LogLevel::kWarning, "centroids_load_failed",
                  {{"manifest_ref", s.manifest_ref}, {"error", m.status().message()}});
    if (!m.ok() && s.strategy == Strategy::kCluster) return m.status();
  }
  if (v.contains("hyperplanes_ref") && v["hyperplanes_ref"].is_string()) {
    auto m = LoadArtifact(store, s, v, "hyperplanes", Strategy::kLsh);
    if (m.ok()) s.routing.hyperplanes = std::move(m).value();
    else LogEvent(s.strategy == Strategy::kLsh ? LogLevel::kError : LogLevel::kWarning, "hyperplanes_load_failed",
                  {{"manifest_ref", s.manifest_ref}, {"error", m.status().message()}});
    if (!m.ok() && s.strategy == Strategy::kLsh) return m.status();
  }
  if (s.strategy == Strategy::kCluster) {
    if (!s.routing.centroids) return StateError("CLUSTER sharding requires centroids (custom.vector.centroids_ref)");
    if (s.routing.centroids->cols != s.dim || s.routing.centroids->rows != s.num_dbs) {
      return RouterCorrupt(fmt::format("centroids are {} x {}, expected num_dbs x dim = {} x {}",
                                       s.routing.centroids->rows, s.routing.centroids->cols, s.num_dbs, s.dim));
    }
  }
  if (s.strategy == Strategy::kLsh) {
    if (!s.routing.hyperplanes) return StateError("LSH sharding requires hyperplanes (custom.vector.hyperplanes_ref)");
    if (s.routing.hyperplanes->cols != s.dim) {
      return RouterCorrupt(fmt::format("hyperplanes have {} columns, expected dim {}",
                                       s.routing.hyperplanes->cols, s.dim));
    }
  }
  if (s.strategy == Strategy::kCel) RETURN_IF_ERROR(ApplyCelMetadata(v, s));
  ASSIGN_OR_RETURN(s.router, MakeRouter(s.routing));
  return Status::OK();
}

Status ApplyShards(ObjectStore& store, LoadedSnapshot& s) {
  const nlohmann::json* digests = nullptr;
  if (s.manifest.custom.contains("shardvec") && s.manifest.custom["shardvec"].is_object() &&
      s.manifest.custom["shardvec"].contains("shard_digests")) {
    digests = &s.manifest.custom["shardvec"]["shard_digests"];
  }
  for (const ManifestShard& shard : s.manifest.shards) {
    if (!shard.db_url || shard.row_count == 0) continue;
    ShardLocation loc;
    loc.db_id = shard.db_id;
    auto key = KeyFromSnapshotUrl(store.PrefixUrl(), s.manifest.s3_prefix,
                                  *shard.db_url + "/" + std::string(kShardFileName));
    if (!key.ok()) {
      return ManifestCorrupt(fmt::format("manifest '{}': shard db_id {} has db_url '{}': {}", s.manifest_ref,
                                         shard.db_id, *shard.db_url, key.status().message()));
    }
    loc.key = std::move(key).value();
    loc.size = shard.db_bytes;
    const std::string id_key = std::to_string(shard.db_id);
    if (digests && digests->contains(id_key) && (*digests)[id_key].is_string()) {
      loc.digest = (*digests)[id_key].get<std::string>();
    }
    loc.identity = shard.checkpoint_id.value_or(s.run_id);
    s.shards[shard.db_id] = std::move(loc);
  }
  return Status::OK();
}

Result<ManifestRef> LoadCurrentRef(ManifestStore& manifests) {
  ASSIGN_OR_RETURN(std::optional<ManifestRef> current, manifests.LoadCurrent());
  if (!current) {
    return Status::NotFound(fmt::format("No CURRENT pointer found at '{}'", manifests.Describe()))
        .WithKind(ErrorKind::kNoCurrentPointer);
  }
  return std::move(*current);
}

Result<CurrentPointer> LoadCurrentPointer(ObjectStore& store) {
  ASSIGN_OR_RETURN(ManifestRef current, LoadCurrentRef(*MakeObjectManifestStore(store)));
  CurrentPointer pointer;
  pointer.manifest_ref = std::move(current.ref);
  pointer.run_id = std::move(current.run_id);
  pointer.updated_at = std::move(current.published_at);
  return pointer;
}

Result<std::unique_ptr<LoadedSnapshot>> LoadManifestOnly(ManifestStore& manifests, const ManifestRef& ref) {
  auto snapshot = std::make_unique<LoadedSnapshot>();
  snapshot->manifest_ref = ref.ref;
  snapshot->run_id = ref.run_id;
  snapshot->published_at = ref.published_at;
  ASSIGN_OR_RETURN(snapshot->manifest, manifests.LoadManifest(ref.ref));
  if (snapshot->run_id.empty()) snapshot->run_id = snapshot->manifest.run_id;
  return snapshot;
}

Result<std::unique_ptr<LoadedSnapshot>> LoadSnapshot(ObjectStore& store, ManifestStore& manifests,
                                                     const ManifestRef& ref) {
  ASSIGN_OR_RETURN(std::unique_ptr<LoadedSnapshot> snapshot, LoadManifestOnly(manifests, ref));
  // Shard URLs are checked before the metadata's artifacts are downloaded.
  RETURN_IF_ERROR(ApplyShards(store, *snapshot));
  RETURN_IF_ERROR(ApplyVectorMetadata(store, *snapshot));
  return snapshot;
}

namespace {

// The manifests a fallback may try instead of `failed`: those listed after it (older), or when it is
// not listed, those published before its folder's timestamp (every other one when it has none).
std::vector<ManifestRef> OlderThan(std::vector<ManifestRef> newest_first, const std::string& failed) {
  const auto it = std::find_if(newest_first.begin(), newest_first.end(),
                               [&](const ManifestRef& r) { return r.ref == failed; });
  if (it != newest_first.end()) return std::vector<ManifestRef>(it + 1, newest_first.end());
  const auto failed_dir = ParseManifestRef(failed);
  std::vector<ManifestRef> older;
  for (ManifestRef& r : newest_first) {
    if (failed_dir && r.published_at >= failed_dir->timestamp) continue;
    older.push_back(std::move(r));
  }
  return older;
}

}  // namespace

Result<std::unique_ptr<LoadedSnapshot>> LoadCurrentSnapshot(ObjectStore& store, ManifestStore& manifests,
                                                            int64_t max_fallback_attempts) {
  ASSIGN_OR_RETURN(ManifestRef pointer, LoadCurrentRef(manifests));
  auto first = LoadSnapshot(store, manifests, pointer);
  if (first.ok() || first.status().code() != StatusCode::kCorruption || max_fallback_attempts <= 0) {
    return first;
  }
  LogEvent(LogLevel::kWarning, "manifest_load_failed",
           {{"manifest_ref", pointer.ref}, {"message", first.status().message() + "; trying older manifests"}});
  auto listed = manifests.ListManifests(0);
  if (!listed.ok()) return first.status();
  int64_t tried = 0;
  for (const ManifestRef& entry : OlderThan(std::move(listed).value(), pointer.ref)) {
    if (tried++ >= max_fallback_attempts) break;
    auto older = LoadSnapshot(store, manifests, entry);
    if (older.ok()) {
      LogEvent(LogLevel::kWarning, "manifest_fallback",
               {{"manifest_ref", entry.ref}, {"message", fmt::format("serving older manifest '{}' instead", entry.ref)}});
      return older;
    }
    if (older.status().code() != StatusCode::kCorruption) return older.status();
  }
  return first.status();
}

}  // namespace shardvec
