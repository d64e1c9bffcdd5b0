#include "snapshot/history.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "common/log.h"
#include "common/status_macros.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "format/run_record.h"
#include "snapshot/delete_guard.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {

constexpr std::string_view kManifestSuffix = "/manifest";
constexpr std::chrono::seconds kMaxCleanupAge{int64_t{100000} * 86400};
constexpr std::string_view kRunRecordSuffix = "/run.yaml";

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

ManifestEntry EntryFor(const ObjectStore& store, const ManifestDirName& dir) {
  std::string key = ManifestKey(dir.timestamp, dir.run_id);
  std::string ref = store.Url(key);
  return ManifestEntry{std::move(ref), std::move(key), dir.run_id, dir.timestamp};
}

// ---- Finding a manifest ----------------------------------------------------------------------

// The key a ref names: a URL under the store's prefix, an absolute local path, or a plain key.
Result<std::string> KeyOfRef(const ObjectStore& store, std::string_view ref) {
  std::string url(ref);
  if (!url.empty() && url.front() == '/') url = "file://" + url;
  const std::string prefix = store.PrefixUrl() + "/";
  if (url.rfind(prefix, 0) == 0) return url.substr(prefix.size());
  if (url.find("://") != std::string::npos) {
    return Status::InvalidArgument(
        fmt::format("ref '{}' is not under store '{}'", ref, store.PrefixUrl()));
  }
  return url;
}

Result<ManifestEntry> FindByRef(ObjectStore& store, const std::string& ref) {
  ASSIGN_OR_RETURN(std::string key, KeyOfRef(store, ref));
  std::string_view dir_name = key;
  if (EndsWith(dir_name, kManifestSuffix)) dir_name.remove_suffix(kManifestSuffix.size());
  const auto dir = ParseManifestDirName(dir_name);
  if (!dir) {
    return Status::InvalidArgument(fmt::format(
        "ref '{}' does not name a manifest (expected manifests/<timestamp>_run_id=<run>/manifest)",
        ref));
  }
  ManifestEntry entry = EntryFor(store, *dir);
  auto head = store.Head(entry.key);
  if (head.ok()) return entry;
  if (head.status().code() == StatusCode::kNotFound) {
    return Status::NotFound(fmt::format("ref '{}': no manifest exists at '{}'", ref, entry.ref));
  }
  return head.status().WithContext(fmt::format("ref '{}'", ref));
}

// Every manifest `manifests` lists, newest first.
Result<std::vector<ManifestEntry>> ListEntries(ManifestStore& manifests) {
  ASSIGN_OR_RETURN(std::vector<ManifestRef> refs, manifests.ListManifests(0));
  std::vector<ManifestEntry> entries;
  entries.reserve(refs.size());
  for (ManifestRef& ref : refs) {
    entries.push_back(ManifestEntry{std::move(ref.ref), std::string(), std::move(ref.run_id), std::move(ref.published_at)});
  }
  return entries;
}

// A manifest listed in `manifests` whose ref is `ref`, or (for a ref without a scheme: a key or a
// local path) whose manifest folder `ref` names.
Result<ManifestEntry> FindListedRef(ManifestStore& manifests, const std::string& ref) {
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, ListEntries(manifests));
  const bool plain = ref.find("://") == std::string::npos;
  const auto dir = ParseManifestRef(ref);
  for (ManifestEntry& entry : entries) {
    if (entry.ref == ref) return std::move(entry);
    if (plain && dir && IsCurrentManifest(entry, dir)) return std::move(entry);
  }
  return Status::NotFound(fmt::format("ref '{}': {} lists no such manifest", ref, manifests.Describe()));
}

Result<ManifestEntry> FindByRunId(ManifestStore& manifests, const std::string& run_id) {
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, ListEntries(manifests));
  for (ManifestEntry& entry : entries) {
    if (entry.run_id == run_id) return std::move(entry);  // newest first
  }
  return Status::NotFound(fmt::format("No manifest found with run_id={}", run_id));
}

Result<ManifestEntry> FindByOffset(ManifestStore& manifests, int64_t offset) {
  if (offset < 0) {
    return Status::InvalidArgument(fmt::format("offset must be >= 0 (got {})", offset));
  }
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, ListEntries(manifests));
  if (offset >= static_cast<int64_t>(entries.size())) {
    return Status::NotFound(fmt::format("offset {} is out of range: the store has {} manifest(s)",
                                        offset, entries.size()));
  }
  return std::move(entries[static_cast<size_t>(offset)]);
}

// The newest manifest published before the one _CURRENT names.
Result<ManifestEntry> FindPrevious(ManifestStore& manifests) {
  ASSIGN_OR_RETURN(std::optional<ManifestRef> current, manifests.LoadCurrent());
  if (!current) {
    return Status::NotFound("previous: the store has no _CURRENT, so there is no current snapshot to go back from");
  }
  const std::string& current_ref = current->ref;
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, ListEntries(manifests));
  const auto it = std::find_if(entries.begin(), entries.end(),
                               [&](const ManifestEntry& e) { return IsCurrentRef(e, current); });
  if (it == entries.end()) {
    return Status::NotFound(fmt::format(
        "previous: _CURRENT names manifest '{}', which is not in the store's history", current_ref));
  }
  if (it + 1 == entries.end()) {
    return Status::NotFound(fmt::format(
        "previous: the current manifest '{}' is the oldest; no manifest was published before it", current_ref));
  }
  return std::move(*(it + 1));  // newest first
}

// ---- Rollback --------------------------------------------------------------------------------

// ---- Cleanup ---------------------------------------------------------------------------------

// The shard folder key a manifest's db_url names (under the manifest's `shard_prefix`), or nullopt
// when it is outside the store (a moved store's URLs under the manifest's s3_prefix are inside).
std::optional<ShardDirName> ShardDirOfUrl(const ObjectStore& store, const Manifest& manifest, std::string_view url) {
  while (EndsWith(url, "/")) url.remove_suffix(1);
  auto key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest.s3_prefix, url);
  if (!key.ok()) return std::nullopt;
  auto dir = ParseShardDirKey(*key, manifest.shard_prefix);
  if (!dir || dir->key != *key) return std::nullopt;  // a file, or something deeper: not a folder
  return dir;
}

// Every object of the layout a manifest reads: its shard files and its routing artifacts. URLs
// outside the store or the shard layout name nothing here (cleanup never deletes those).
std::set<std::string> ObjectsOfManifest(const ObjectStore& store, const Manifest& manifest) {
  std::set<std::string> keys;
  for (const ManifestShard& shard : manifest.shards) {
    if (!shard.db_url) continue;
    if (const auto dir = ShardDirOfUrl(store, manifest, *shard.db_url)) keys.insert(dir->key + "/" + std::string(kShardFileName));
  }
  const nlohmann::json& custom = manifest.custom;
  if (custom.contains("vector") && custom["vector"].is_object()) {
    for (const char* field : {"centroids_ref", "hyperplanes_ref"}) {
      const nlohmann::json& vector = custom["vector"];
      if (!vector.contains(field) || !vector[field].is_string()) continue;
      if (auto key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest.s3_prefix, vector[field].get<std::string>());
          key.ok()) {
        keys.insert(*key);
      }
    }
  }
  return keys;
}

// A snapshot whose objects cleanup removed must not become current: readers would fail on it.
Status CheckObjectsPresent(ObjectStore& store, const ManifestEntry& entry, const std::set<std::string>& keys) {
  for (const std::string& key : keys) {
    auto head = store.Head(key);
    if (head.ok()) continue;
    if (head.status().code() != StatusCode::kNotFound) return head.status();
    return Status::NotFound(fmt::format(
        "manifest '{}': object '{}' is missing (removed by cleanup?); refusing to make it current", entry.ref,
        store.Url(key)));
  }
  return Status::OK();
}

// "<top>run_id=R/…" → R.
std::optional<std::string> RunIdOfObject(std::string_view key, std::string_view top) {
  if (key.rfind(top, 0) != 0) return std::nullopt;
  std::string_view rest = key.substr(top.size());
  constexpr std::string_view kRunTag = "run_id=";
  if (rest.rfind(kRunTag, 0) != 0) return std::nullopt;
  rest.remove_prefix(kRunTag.size());
  const size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  return std::string(rest.substr(0, slash));
}

using ObjectsByRun = std::map<std::string, std::vector<ObjectInfo>>;

// Every object under <shard_prefix>/run_id=…/ and vector_meta/run_id=…/, grouped by run.
Result<ObjectsByRun> ListRunObjects(ObjectStore& store, std::string_view shard_prefix) {
  ObjectsByRun by_run;
  const std::string shards_top = std::string(shard_prefix) + "/";
  for (std::string_view top : {std::string_view(shards_top), kVectorMetaPrefix}) {
    auto listed = store.List(top);
    if (!listed.ok()) return listed.status().WithContext(fmt::format("listing '{}'", top));
    for (ObjectInfo& object : listed->objects) {
      if (auto run = RunIdOfObject(object.key, top)) by_run[*run].push_back(std::move(object));
    }
  }
  return by_run;
}

bool HoldsLiveLease(const RunRecord& record, std::string_view key, SystemTime now) {
  if (record.status != "running") return false;
  const auto lease = ParseTimestamp(record.lease_expires_at);
  if (!lease) {
    LogEvent(LogLevel::kWarning, "run_record_lease_unparsable",
             {{"key", key}, {"run_id", record.run_id},
              {"message", fmt::format("run record '{}': lease_expires_at '{}' does not parse; treating run {} "
                                      "as still running", key, record.lease_expires_at, record.run_id)}});
    return true;
  }
  return *lease > now;
}

// Runs among `candidates` whose record says a writer still holds its lease.
Result<std::set<std::string>> LiveRuns(ObjectStore& store, const ObjectsByRun& candidates,
                                       const CleanupOptions& options) {
  std::set<std::string> live(options.live_runs.begin(), options.live_runs.end());
  const std::string records_prefix = options.run_registry_prefix + "/";
  auto listed = store.List(records_prefix);
  if (!listed.ok()) return listed.status().WithContext(fmt::format("listing '{}'", records_prefix));
  for (const ObjectInfo& object : listed->objects) {
    if (!EndsWith(object.key, kRunRecordSuffix)) continue;
    const auto key_run = RunIdOfRecordKey(object.key, options.run_registry_prefix);
    if (key_run && !candidates.count(*key_run)) continue;  // nothing of that run to delete
    auto bytes = store.Get(object.key);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) continue;
      return bytes.status().WithContext(fmt::format("run record '{}'", object.key));
    }
    auto record = ParseRunRecord(*bytes);
    if (!record.ok()) {
      LogEvent(LogLevel::kWarning, "run_record_unreadable",
               {{"key", object.key}, {"message", fmt::format("run record '{}' ignored: {}", object.key,
                                                             record.status().message())}});
      continue;
    }
    if (HoldsLiveLease(*record, object.key, options.now)) live.insert(record->run_id);
  }
  return live;
}

// What the kept snapshots need.
struct KeptData {
  std::set<std::string> runs;             // runs whose objects stay (at least partly)
  std::set<std::string> named_dirs;       // shard folders the kept manifests read
  std::set<std::string> unresolved_runs;  // runs whose needed folders are unknown: keep them whole
  std::optional<ManifestRef> current;     // the pointer when planning
};

Status ValidateCleanupOptions(const CleanupOptions& options) {
  KeyLayout layout;
  layout.shard_prefix = options.shard_prefix;
  layout.run_registry_prefix = options.run_registry_prefix;
  RETURN_IF_ERROR(ValidateKeyLayout(layout));
  if (options.keep_last && *options.keep_last < 1) {
    return Status::InvalidArgument(
        fmt::format("keep_last must be >= 1 (got {})", *options.keep_last));
  }
  if (options.older_than && options.older_than->count() < 0) {
    return Status::InvalidArgument(
        fmt::format("older_than must be >= 0 seconds (got {})", options.older_than->count()));
  }
  // Keeps `now - older_than` far inside the microsecond clock's range.
  if (options.older_than && *options.older_than > kMaxCleanupAge) {
    return Status::InvalidArgument(fmt::format("older_than must be at most {} seconds (100000 days; got {})",
                                               kMaxCleanupAge.count(), options.older_than->count()));
  }
  return Status::OK();
}

std::vector<ManifestEntry> SelectKeptManifests(std::vector<ManifestEntry> newest_first,
                                               const std::optional<ManifestRef>& current,
                                               const CleanupOptions& options) {
  if (!options.keep_last && !options.older_than) return newest_first;
  std::optional<std::string> cutoff;
  // Timestamps in the layout's format sort as text.
  if (options.older_than) cutoff = FormatTimestamp(options.now - *options.older_than);
  std::vector<ManifestEntry> kept;
  for (size_t i = 0; i < newest_first.size(); ++i) {
    ManifestEntry& entry = newest_first[i];
    const bool recent_enough = options.keep_last && static_cast<int64_t>(i) < *options.keep_last;
    const bool young_enough = cutoff && entry.published_at >= *cutoff;
    if (recent_enough || young_enough || IsCurrentRef(entry, current)) {
      kept.push_back(std::move(entry));
    }
  }
  return kept;
}

// Records the shard folders one kept manifest reads. A manifest we cannot read keeps its run whole.
Status AddManifestNeeds(ObjectStore& store, ManifestStore& manifests, const ManifestEntry& entry, KeptData& kept) {
  kept.runs.insert(entry.run_id);
  auto manifest = manifests.LoadManifest(entry.ref);
  if (!manifest.ok()) {
    const StatusCode code = manifest.status().code();
    if (code != StatusCode::kNotFound && code != StatusCode::kCorruption) return manifest.status();
    LogEvent(LogLevel::kWarning, "cleanup_run_kept",
             {{"run_id", entry.run_id}, {"message", fmt::format("cleanup keeps every object of run {}: {}", entry.run_id,
                                                               manifest.status().message())}});
    kept.unresolved_runs.insert(entry.run_id);
    return Status::OK();
  }
  for (const ManifestShard& shard : manifest->shards) {
    if (!shard.db_url) continue;
    const auto dir = ShardDirOfUrl(store, *manifest, *shard.db_url);
    if (!dir) {
      LogEvent(LogLevel::kWarning, "cleanup_run_kept",
               {{"run_id", entry.run_id},
                {"message", fmt::format("cleanup keeps every object of run {}: manifest '{}' names db_url '{}' "
                                        "outside the shard layout", entry.run_id, entry.ref, *shard.db_url)}});
      kept.unresolved_runs.insert(entry.run_id);
      continue;
    }
    kept.runs.insert(dir->run_id);
    kept.named_dirs.insert(dir->key);
  }
  return Status::OK();
}

Result<KeptData> CollectKeptData(ObjectStore& store, ManifestStore& manifests, const CleanupOptions& options) {
  KeptData kept;
  auto current = manifests.LoadCurrent();
  if (!current.ok()) {
    return current.status().WithContext(
        "cleanup needs a readable _CURRENT to know which snapshot is live (repair it with "
        "rollback)");
  }
  kept.current = *current;
  if (kept.current) kept.runs.insert(kept.current->run_id);
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> all, ListEntries(manifests));
  const bool current_listed = std::any_of(all.begin(), all.end(), [&](const ManifestEntry& e) {
    return IsCurrentRef(e, kept.current);
  });
  if (kept.current && !current_listed) kept.unresolved_runs.insert(kept.current->run_id);
  for (const ManifestEntry& entry : SelectKeptManifests(std::move(all), kept.current, options)) {
    RETURN_IF_ERROR(AddManifestNeeds(store, manifests, entry, kept));
  }
  return kept;
}

// An object of a kept run goes only when it sits in a shard folder no kept manifest reads, or is a
// distributed task's id index part (merged into the run's id index when it published; left only
// when the driver's delete of it failed).
bool IsStaleAttempt(const ObjectInfo& object, const KeptData& kept, std::string_view shard_prefix) {
  const auto dir = ParseShardDirKey(object.key, shard_prefix);
  return dir && (!kept.named_dirs.count(dir->key) || object.key == dir->key + "/" + std::string(kIdIndexPartFileName));
}

void PlanRun(const std::string& run_id, const std::vector<ObjectInfo>& objects,
             const KeptData& kept, const std::set<std::string>& live, std::string_view shard_prefix,
             CleanupReport& report, std::vector<const ObjectInfo*>& doomed) {
  if (live.count(run_id) || kept.unresolved_runs.count(run_id)) return;
  const bool removed = !kept.runs.count(run_id);
  if (removed) report.removed_runs.push_back(run_id);
  for (const ObjectInfo& object : objects) {
    if (removed || IsStaleAttempt(object, kept, shard_prefix)) doomed.push_back(&object);
  }
}

// The pointer's ref and time: a publish or rollback since planning changes at least its time.
bool SamePointer(const std::optional<ManifestRef>& a, const std::optional<ManifestRef>& b) {
  if (!a || !b) return !a && !b;
  return a->ref == b->ref && a->run_id == b->run_id && a->published_at == b->published_at;
}

Status CheckCurrentUnchanged(ManifestStore& manifests, const KeptData& kept) {
  auto now = manifests.LoadCurrent();
  if (!now.ok()) return now.status().WithContext("cleanup: re-reading _CURRENT");
  if (!SamePointer(*now, kept.current)) {
    return Status::Conflict(
        "cleanup: _CURRENT changed while cleanup was planning (a publish or rollback ran); nothing "
        "was deleted, run cleanup again");
  }
  return Status::OK();
}

Status DeleteAll(ObjectStore& store, const std::vector<std::string>& keys) {
  // One batched call on S3 (1000 keys a request); a folder deletes key by key.
  Status st = store.DeleteMany(keys);
  if (!st.ok()) return st.WithContext(fmt::format("cleanup: deleting {} objects", keys.size()));
  return Status::OK();
}

// Deletes `doomed` under the protocol of delete_guard.h: tombstone first, then the rollback intents,
// then _CURRENT unchanged since planning. The tombstone stays when a delete fails (its objects may be
// half gone, so rollback must keep refusing them until a later cleanup finishes the job).
Status DeleteGuarded(ObjectStore& store, ManifestStore& manifests, const KeptData& kept,
                     const std::vector<std::string>& doomed, SystemTime now) {
  const std::set<std::string> keys(doomed.begin(), doomed.end());
  ASSIGN_OR_RETURN(GuardMarker tombstone, GuardMarker::Write(store, kCleanupTombstonesPrefix, keys));
  ASSIGN_OR_RETURN(std::vector<MarkerInfo> intents, ReadMarkers(store, kRollbackIntentsPrefix, now));
  if (const auto hit = FindOverlap(intents, keys, /*include_stale=*/false)) {
    return Status::Conflict(fmt::format(
        "cleanup: a rollback in progress (marker '{}') needs '{}'; nothing was deleted, run cleanup again",
        store.Url(hit->first), store.Url(hit->second)));
  }
  RETURN_IF_ERROR(CheckCurrentUnchanged(manifests, kept));
  Status st = DeleteAll(store, doomed);
  if (!st.ok()) tombstone.Keep();
  return st;
}

// Staged temp files older than kStagedGrace, rollback intents older than the guard grace, and stale
// tombstones none of whose objects are left in `listed` (the run objects listed before planning).
Result<std::vector<std::string>> FindLeftovers(ObjectStore& store, const ObjectsByRun& listed, SystemTime now) {
  std::vector<std::string> leftovers;
  ASSIGN_OR_RETURN(std::vector<StagedObject> staged, store.ListStaged());
  for (const StagedObject& object : staged) {
    if (object.modified + kStagedGrace < now) leftovers.push_back(object.key);
  }
  ASSIGN_OR_RETURN(std::vector<MarkerInfo> intents, ReadMarkers(store, kRollbackIntentsPrefix, now));
  for (const MarkerInfo& marker : intents) {
    if (marker.stale) leftovers.push_back(marker.key);
  }
  std::set<std::string> present;
  for (const auto& [run_id, objects] : listed) {
    for (const ObjectInfo& object : objects) present.insert(object.key);
  }
  ASSIGN_OR_RETURN(std::vector<MarkerInfo> tombstones, ReadMarkers(store, kCleanupTombstonesPrefix, now));
  for (const MarkerInfo& marker : tombstones) {
    if (marker.stale && !FindOverlap({marker}, present, /*include_stale=*/true)) leftovers.push_back(marker.key);
  }
  return leftovers;
}

}  // namespace

bool IsCurrentManifest(const ManifestEntry& entry, const std::optional<ManifestDirName>& current_dir) {
  return current_dir && current_dir->timestamp == entry.published_at && current_dir->run_id == entry.run_id;
}

bool IsCurrentRef(const ManifestEntry& entry, const std::optional<ManifestRef>& current) {
  if (!current) return false;
  if (entry.ref == current->ref) return true;
  // The same manifest folder named by another URL form (the object-store layout).
  const auto current_dir = ParseManifestRef(current->ref);
  const auto entry_dir = ParseManifestRef(entry.ref);
  return current_dir && entry_dir && current_dir->timestamp == entry_dir->timestamp &&
         current_dir->run_id == entry_dir->run_id;
}

Result<std::vector<ManifestEntry>> ListManifests(ObjectStore& store, int64_t limit) {
  auto listed = store.List(kManifestsPrefix, "/");
  if (!listed.ok()) return listed.status().WithContext("listing manifests");
  std::vector<ManifestEntry> entries;
  for (const std::string& prefix : listed->common_prefixes) {
    if (auto dir = ParseManifestDirName(prefix)) entries.push_back(EntryFor(store, *dir));
  }
  std::sort(entries.begin(), entries.end(), [](const ManifestEntry& a, const ManifestEntry& b) {
    if (a.published_at != b.published_at) return a.published_at > b.published_at;
    return a.run_id > b.run_id;
  });
  if (limit > 0 && static_cast<int64_t>(entries.size()) > limit) {
    entries.resize(static_cast<size_t>(limit));
  }
  return entries;
}

Result<ManifestEntry> FindManifest(ObjectStore& store, const ManifestSelector& selector) {
  // A ref alone resolves in the layout (a key or a local path too); the rest as in any store.
  const bool ref_alone = selector.ref && !selector.run_id && !selector.offset && !selector.previous;
  if (ref_alone) return FindByRef(store, *selector.ref);
  ASSIGN_OR_RETURN(ManifestEntry entry, FindManifest(*MakeObjectManifestStore(store), selector));
  if (auto key = KeyFromUrl(store.PrefixUrl(), entry.ref); key.ok()) entry.key = std::move(key).value();
  return entry;
}

Result<ManifestEntry> FindManifest(ManifestStore& manifests, const ManifestSelector& selector) {
  const int given = int{selector.run_id.has_value()} + int{selector.ref.has_value()} +
                    int{selector.offset.has_value()} + int{selector.previous};
  if (given != 1) {
    return Status::InvalidArgument(
        fmt::format("Exactly one of ref, run_id, offset or previous selects a manifest (got {})", given));
  }
  if (selector.run_id) return FindByRunId(manifests, *selector.run_id);
  if (selector.ref) return FindListedRef(manifests, *selector.ref);
  if (selector.offset) return FindByOffset(manifests, *selector.offset);
  return FindPrevious(manifests);
}

Result<std::string> Rollback(ObjectStore& store, const ManifestEntry& target) {
  return Rollback(store, *MakeObjectManifestStore(store), target);
}

Result<std::string> Rollback(ObjectStore& store, ManifestStore& manifests, const ManifestEntry& target) {
  ASSIGN_OR_RETURN(Manifest manifest, manifests.LoadManifest(target.ref));
  if (manifest.run_id != target.run_id) {
    return Status::Corruption(fmt::format(
        "manifest '{}': build_meta run_id '{}' does not match its directory's run_id '{}'",
        target.ref, manifest.run_id, target.run_id)).WithKind(ErrorKind::kManifestParse);
  }
  // The protocol of delete_guard.h: announce what the target needs, then look for cleanups.
  const std::set<std::string> needed = ObjectsOfManifest(store, manifest);
  ASSIGN_OR_RETURN(GuardMarker intent, GuardMarker::Write(store, kRollbackIntentsPrefix, needed));
  ASSIGN_OR_RETURN(std::vector<MarkerInfo> tombstones, ReadMarkers(store, kCleanupTombstonesPrefix, NowUtc()));
  if (const auto hit = FindOverlap(tombstones, needed, /*include_stale=*/true)) {
    return Status::Conflict(fmt::format(
        "rollback to '{}' refused: cleanup (marker '{}') is deleting '{}', which this snapshot needs; "
        "_CURRENT was not changed", target.ref, store.Url(hit->first), store.Url(hit->second)));
  }
  RETURN_IF_ERROR(CheckObjectsPresent(store, target, needed));
  // The pointer to swap against; a corrupt one names nothing and is replaced unconditionally.
  std::optional<ManifestRef> expected = ManifestRef{};
  auto current = manifests.LoadCurrent();
  if (current.ok()) {
    if (*current) expected = std::move(**current);
  } else if (current.status().code() == StatusCode::kCorruption) {
    LogEvent(LogLevel::kWarning, "current_pointer_corrupt_replaced",
             {{"message", "replacing a corrupt _CURRENT: " + current.status().message()}});
    expected = std::nullopt;
  } else {
    return current.status().WithContext("rollback: reading _CURRENT");
  }
  if (intent.PastDeadline()) {
    return Status::Conflict(fmt::format(
        "rollback to '{}' took longer than {} s before its swap, so cleanup may no longer honour its "
        "intent; _CURRENT was not changed, run rollback again", target.ref, kGuardDeadline.count()));
  }
  Status swapped = manifests.SetCurrent(target.ref, expected);
  if (swapped.ok()) return target.ref;
  if (swapped.code() == StatusCode::kConflict) {
    return Status::Conflict(fmt::format(
        "rollback to '{}' lost a race: _CURRENT changed while it ran ({}); _CURRENT was left as "
        "the other writer set it", target.ref, swapped.message()));
  }
  return swapped.WithContext("rollback: writing _CURRENT");
}

Result<CleanupReport> Cleanup(ObjectStore& store, const CleanupOptions& options) {
  return Cleanup(store, *MakeObjectManifestStore(store), options);
}

Result<CleanupReport> Cleanup(ObjectStore& store, ManifestStore& manifests, const CleanupOptions& options) {
  RETURN_IF_ERROR(ValidateCleanupOptions(options));
  // Order matters: a writer writes its run record before its shards and publishes before it marks
  // the record succeeded, so objects listed first are covered by either the records or the
  // manifests read after them.
  ASSIGN_OR_RETURN(ObjectsByRun by_run, ListRunObjects(store, options.shard_prefix));
  ASSIGN_OR_RETURN(std::set<std::string> live, LiveRuns(store, by_run, options));
  ASSIGN_OR_RETURN(KeptData kept, CollectKeptData(store, manifests, options));

  CleanupReport report;
  std::vector<const ObjectInfo*> doomed;
  for (const auto& [run_id, objects] : by_run) {
    PlanRun(run_id, objects, kept, live, options.shard_prefix, report, doomed);
  }
  std::sort(doomed.begin(), doomed.end(),
            [](const ObjectInfo* a, const ObjectInfo* b) { return a->key < b->key; });
  for (const ObjectInfo* object : doomed) {
    report.deleted_keys.push_back(object->key);
    report.bytes += object->size;
  }
  report.objects = static_cast<int64_t>(report.deleted_keys.size());

  std::set<std::string> kept_runs = kept.runs;
  for (const auto& [run_id, objects] : by_run) kept_runs.insert(run_id);
  for (const std::string& run_id : report.removed_runs) kept_runs.erase(run_id);
  report.kept_runs.assign(kept_runs.begin(), kept_runs.end());

  ASSIGN_OR_RETURN(report.leftover_keys, FindLeftovers(store, by_run, options.now));
  if (options.dry_run) return report;
  if (!report.deleted_keys.empty()) RETURN_IF_ERROR(DeleteGuarded(store, manifests, kept, report.deleted_keys, options.now));
  if (!report.leftover_keys.empty()) RETURN_IF_ERROR(DeleteAll(store, report.leftover_keys));
  return report;
}

}  // namespace shardvec
