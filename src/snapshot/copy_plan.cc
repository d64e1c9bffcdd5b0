#include "snapshot/copy_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <utility>

#include "common/status_macros.h"
#include "format/keys.h"
#include "shardvec/limits.h"
#include "shardvec/manifest_store.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {

// A key as DST stores it: without empty segments (the reference writes "prefix//shards/…" for a
// prefix with a trailing slash; a folder store has no empty names).
std::string CompactKey(std::string_view key) {
  std::string out;
  for (size_t start = 0; start <= key.size();) {
    const size_t end = std::min(key.find('/', start), key.size());
    if (end > start) out += (out.empty() ? "" : "/") + std::string(key.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// A manifest of SRC the copy takes.
struct Chosen {
  std::string key;
  std::string ref;
  std::string run_id;
};

Chosen ChosenOf(std::string_view ref, const ManifestDirName& dir) {
  return Chosen{ManifestKey(dir.timestamp, dir.run_id), std::string(ref), dir.run_id};
}

class PlanBuilder {
 public:
  PlanBuilder(ObjectStore& src, const ObjectStore& dst) : src_(src), dst_(dst) {}

  // Adds `manifest` (SRC's, read from `chosen`) rewritten for DST, and the objects it reads.
  Status AddManifest(const Chosen& chosen, const Manifest& manifest) {
    CopyManifest out{chosen.key, chosen.run_id, manifest};
    out.rewritten.s3_prefix = dst_.PrefixUrl();
    for (ManifestShard& shard : out.rewritten.shards) {
      if (!shard.db_url) continue;
      const std::string what = fmt::format("manifest '{}': shard db_id {} db_url", chosen.ref, shard.db_id);
      ASSIGN_OR_RETURN(std::string dir, Resolve(manifest, TrimTrailingSlashes(*shard.db_url), what));
      if (shard.db_bytes <= 0) {
        return Status::Corruption(fmt::format("manifest '{}': shard db_id {} records db_bytes {}; a shard file "
                                              "has a positive size", chosen.ref, shard.db_id, shard.db_bytes));
      }
      ASSIGN_OR_RETURN(std::optional<std::string> digest,
                       RecordedDigest(manifest, "shard_digests", std::to_string(shard.db_id)));
      RETURN_IF_ERROR(AddObject(chosen.ref, dir + "/" + std::string(kShardFileName), shard.db_bytes, digest,
                                shard.db_bytes));
      shard.db_url = dst_.Url(CompactKey(dir));
    }
    nlohmann::json& vector = out.rewritten.custom["vector"];
    for (const std::string name : {"centroids", "hyperplanes"}) {
      const std::string field = name + "_ref";
      if (!vector.is_object() || !vector.contains(field) || !vector[field].is_string()) continue;
      const std::string what = fmt::format("manifest '{}': custom.vector.{}", chosen.ref, field);
      ASSIGN_OR_RETURN(std::string key, Resolve(manifest, vector[field].get<std::string>(), what));
      ASSIGN_OR_RETURN(std::optional<std::string> digest, RecordedDigest(manifest, "artifact_digests", name));
      RETURN_IF_ERROR(AddObject(chosen.ref, key, std::nullopt, digest, kMaxNpyFileBytes));
      vector[field] = dst_.Url(CompactKey(key));
    }
    if (vector.is_null()) out.rewritten.custom.erase("vector");  // operator[] made it; SRC had none
    RETURN_IF_ERROR(AddIdIndex(chosen, manifest, out.rewritten));
    manifests_.push_back(std::move(out));
    return Status::OK();
  }

  std::vector<CopyManifest> TakeManifests() { return std::move(manifests_); }

  // The id index an incremental update reads (custom.shardvec.id_index), when the manifest has one:
  // copied beside the rest and its ref rewritten, so the copy updates as fast as the original.
  Status AddIdIndex(const Chosen& chosen, const Manifest& manifest, Manifest& rewritten) {
    if (!manifest.custom.contains("shardvec") || !manifest.custom["shardvec"].is_object()) return Status::OK();
    const nlohmann::json& shardvec = manifest.custom["shardvec"];
    if (!shardvec.contains("id_index") || !shardvec["id_index"].is_object()) return Status::OK();
    const nlohmann::json& index = shardvec["id_index"];
    if (!index.contains("ref") || !index["ref"].is_string()) return Status::OK();
    const std::string what = fmt::format("manifest '{}': custom.shardvec.id_index.ref", chosen.ref);
    ASSIGN_OR_RETURN(std::string key, Resolve(manifest, index["ref"].get<std::string>(), what));
    std::optional<std::string> digest;
    if (index.contains("digest") && index["digest"].is_string()) digest = index["digest"].get<std::string>();
    int64_t rows = 0;
    for (const ManifestShard& shard : manifest.shards) rows += std::max<int64_t>(shard.row_count, 0);
    // 16 header bytes and 12 per row (src/write/id_index.h).
    RETURN_IF_ERROR(AddObject(chosen.ref, key, std::nullopt, digest, 16 + 12 * (rows + 1)));
    rewritten.custom["shardvec"]["id_index"]["ref"] = dst_.Url(CompactKey(key));
    return Status::OK();
  }

  std::vector<CopyObject> TakeObjects() {
    std::vector<CopyObject> objects;
    for (auto& [key, object] : objects_) objects.push_back(std::move(object));
    return objects;
  }

 private:
  Result<std::string> Resolve(const Manifest& manifest, std::string_view url, const std::string& what) {
    auto key = KeyFromSnapshotUrl(src_.PrefixUrl(), manifest.s3_prefix, url);
    if (!key.ok()) return key.status().WithContext(what).WithKindIf(StatusCode::kCorruption, ErrorKind::kManifestParse);
    return key;
  }

  // One object, once: two manifests that share it must record the same size and digest.
  Status AddObject(const std::string& ref, const std::string& key, std::optional<int64_t> size,
                   std::optional<std::string> digest, int64_t max_bytes) {
    auto [it, inserted] = objects_.try_emplace(key, CopyObject{key, CompactKey(key), size, digest, max_bytes});
    const auto seen_ref = first_ref_.try_emplace(key, ref).first;
    if (inserted) return Status::OK();
    CopyObject& known = it->second;
    if ((size && known.size && *size != *known.size) || (digest && known.digest && *digest != *known.digest)) {
      return Status::Corruption(fmt::format(
          "manifests '{}' and '{}' record different sizes or digests for object '{}'", seen_ref->second, ref,
          src_.Url(key)));
    }
    if (!known.size) known.size = size;
    if (!known.digest) known.digest = std::move(digest);
    known.max_bytes = std::min(known.max_bytes, max_bytes);
    return Status::OK();
  }

  ObjectStore& src_;
  const ObjectStore& dst_;
  std::vector<CopyManifest> manifests_;
  std::map<std::string, CopyObject> objects_;
  std::map<std::string, std::string> first_ref_;
};

}  // namespace

Result<CopyPlan> PlanCopy(ObjectStore& src, const ObjectStore& dst, const CopyOptions& options) {
  if (options.run_id && options.all_history) {
    return Status::InvalidArgument(fmt::format(
        "run_id '{}' and all_history are exclusive: copy one snapshot or every one", *options.run_id));
  }
  if (options.run_id && options.run_id->empty()) return Status::InvalidArgument("run_id must be non-empty");
  CopyPlan plan;
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> listed, ListManifests(src, 0));
  for (const ManifestEntry& entry : listed) plan.src_manifest_keys.push_back(entry.key);
  auto manifests = MakeObjectManifestStore(src);
  auto current = manifests->LoadCurrent();
  if (!current.ok()) return current.status().WithContext(fmt::format("SRC '{}': _CURRENT", src.PrefixUrl()));
  std::optional<Chosen> current_chosen;
  if (*current) {
    const auto dir = ParseManifestRef((*current)->ref);
    if (!dir) {
      return Status::Corruption(fmt::format("SRC '{}': _CURRENT names '{}', which is not a manifest of the layout",
                                            src.PrefixUrl(), (*current)->ref)).WithKind(ErrorKind::kManifestParse);
    }
    current_chosen = ChosenOf((*current)->ref, *dir);
  }

  std::vector<Chosen> chosen;
  if (options.all_history) {
    for (const ManifestEntry& entry : listed) chosen.push_back(Chosen{entry.key, entry.ref, entry.run_id});
    if (current_chosen && std::none_of(chosen.begin(), chosen.end(),
                                       [&](const Chosen& c) { return c.key == current_chosen->key; })) {
      chosen.push_back(*current_chosen);  // not listed: reading it names the problem
    }
  } else if (options.run_id) {
    ASSIGN_OR_RETURN(ManifestEntry entry, FindManifest(src, ManifestSelector{.run_id = options.run_id}));
    chosen.push_back(Chosen{entry.key, entry.ref, entry.run_id});
  } else {
    if (!current_chosen) {
      return Status::NotFound(fmt::format("SRC '{}' has no _CURRENT: nothing is published there", src.PrefixUrl()))
          .WithKind(ErrorKind::kNoCurrentPointer);
    }
    chosen.push_back(*current_chosen);
  }
  std::sort(chosen.begin(), chosen.end(), [](const Chosen& a, const Chosen& b) { return a.key < b.key; });

  PlanBuilder builder(src, dst);
  for (const Chosen& c : chosen) {
    ASSIGN_OR_RETURN(Manifest manifest, manifests->LoadManifest(c.ref));
    RETURN_IF_ERROR(builder.AddManifest(c, manifest));
  }
  plan.manifests = builder.TakeManifests();
  plan.objects = builder.TakeObjects();
  for (size_t i = 0; i < plan.manifests.size(); ++i) {
    // A run id picks the snapshot DST serves; otherwise DST serves what SRC serves.
    if (options.run_id || (current_chosen && plan.manifests[i].key == current_chosen->key)) plan.current = i;
  }
  return plan;
}

}  // namespace shardvec
