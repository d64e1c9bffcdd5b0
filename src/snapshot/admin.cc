// The public administration API (shardvec/admin.h) over the snapshot layer's history, pointer and
// rollback functions.
#include "shardvec/admin.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/status_macros.h"
#include "format/manifest.h"
#include "snapshot/history.h"
#include "shardvec/manifest_store.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {

// The current pointer. An unreadable pointer marks nothing current.
std::optional<ManifestRef> CurrentRef(ManifestStore& manifests) {
  auto current = manifests.LoadCurrent();
  if (!current.ok()) {
    LogEvent(LogLevel::kWarning, "current_pointer_unreadable",
             {{"message", "_CURRENT is unreadable, no manifest is marked current: " + current.status().message()}});
    return std::nullopt;
  }
  return std::move(*current);
}

// custom.vector[field] when it is of type T.
template <typename T>
T VectorField(const Manifest& manifest, const char* field) {
  const nlohmann::json& custom = manifest.custom;
  if (!custom.contains("vector") || !custom["vector"].is_object()) return T{};
  const nlohmann::json& vector = custom["vector"];
  if (!vector.contains(field)) return T{};
  if constexpr (std::is_same_v<T, std::string>) {
    return vector[field].is_string() ? vector[field].get<std::string>() : T{};
  } else {
    return vector[field].is_number_integer() ? vector[field].get<T>() : T{};
  }
}

ManifestSummary Summarize(const Manifest& manifest) {
  ManifestSummary summary;
  summary.created_at = manifest.created_at;
  summary.num_dbs = manifest.num_dbs;
  for (const ManifestShard& shard : manifest.shards) summary.total_vectors += shard.row_count;
  summary.dim = VectorField<int64_t>(manifest, "dim");
  summary.metric = VectorField<std::string>(manifest, "metric");
  summary.sharding_strategy = VectorField<std::string>(manifest, "sharding_strategy");
  const std::string own_run = "/run_id=" + manifest.run_id + "/";
  for (const ManifestShard& shard : manifest.shards) {
    if (shard.db_url && (*shard.db_url + "/").find(own_run) == std::string::npos) ++summary.shared_shards;
  }
  const nlohmann::json& custom = manifest.custom;
  if (custom.contains("shardvec") && custom["shardvec"].is_object() && custom["shardvec"].contains("update") &&
      custom["shardvec"]["update"].is_object() && custom["shardvec"]["update"].contains("base_run_id") &&
      custom["shardvec"]["update"]["base_run_id"].is_string()) {
    summary.base_run_id = custom["shardvec"]["update"]["base_run_id"].get<std::string>();
  }
  return summary;
}

}  // namespace

Result<std::vector<HistoryEntry>> ListSnapshots(ObjectStore& store, const HistoryOptions& options) {
  return ListSnapshots(*MakeObjectManifestStore(store), options);
}

Result<std::vector<HistoryEntry>> ListSnapshots(ManifestStore& manifests, const HistoryOptions& options) {
  if (options.limit < 0) {
    return Status::InvalidArgument(fmt::format("limit must be >= 0 (0 lists all; got {})", options.limit));
  }
  ASSIGN_OR_RETURN(std::vector<ManifestRef> refs, manifests.ListManifests(options.limit));
  const std::optional<ManifestRef> current = CurrentRef(manifests);
  std::vector<HistoryEntry> snapshots;
  snapshots.reserve(refs.size());
  for (ManifestRef& ref : refs) {
    ManifestEntry entry{std::move(ref.ref), std::string(), std::move(ref.run_id), std::move(ref.published_at)};
    HistoryEntry info;
    info.current = IsCurrentRef(entry, current);
    if (options.read_manifests) {
      auto manifest = manifests.LoadManifest(entry.ref);
      if (manifest.ok()) {
        info.manifest = Summarize(*manifest);
      } else {
        info.manifest_error = manifest.status().ToString();
      }
    }
    info.ref = std::move(entry.ref);
    info.run_id = std::move(entry.run_id);
    info.published_at = std::move(entry.published_at);
    snapshots.push_back(std::move(info));
  }
  return snapshots;
}

Result<std::optional<CurrentSnapshot>> ReadCurrentSnapshot(ObjectStore& store) {
  return ReadCurrentSnapshot(*MakeObjectManifestStore(store));
}

Result<std::optional<CurrentSnapshot>> ReadCurrentSnapshot(ManifestStore& manifests) {
  ASSIGN_OR_RETURN(std::optional<ManifestRef> current, manifests.LoadCurrent());
  if (!current) return std::optional<CurrentSnapshot>();
  return std::optional<CurrentSnapshot>(
      CurrentSnapshot{std::move(current->ref), std::move(current->run_id), std::move(current->published_at)});
}

namespace {

Result<RollbackResult> RollbackTo(ObjectStore& store, ManifestStore& manifests, Result<ManifestEntry> found) {
  if (!found.ok()) return found.status();
  ManifestEntry& entry = *found;
  // A target _CURRENT already names: nothing to do, and nothing is written (no marker, no pointer).
  if (IsCurrentRef(entry, CurrentRef(manifests))) {
    return RollbackResult{std::move(entry.ref), std::move(entry.run_id), std::move(entry.published_at),
                          /*already_current=*/true};
  }
  ASSIGN_OR_RETURN(std::string ref, Rollback(store, manifests, entry));
  return RollbackResult{std::move(ref), std::move(entry.run_id), std::move(entry.published_at)};
}

}  // namespace

Result<RollbackResult> RollbackSnapshot(ObjectStore& store, const RollbackTarget& target) {
  return RollbackTo(store, *MakeObjectManifestStore(store), FindManifest(store, target));
}

Result<RollbackResult> RollbackSnapshot(ObjectStore& store, ManifestStore& manifests, const RollbackTarget& target) {
  return RollbackTo(store, manifests, FindManifest(manifests, target));
}

}  // namespace shardvec
