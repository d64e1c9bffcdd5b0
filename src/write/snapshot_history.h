// Snapshot administration over a store prefix: list the published manifests, move _CURRENT back to
// an older one (rollback), and delete shard data no kept snapshot needs (cleanup). Manifests, run
// records and _CURRENT are never deleted, so every rollback target stays listable.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "shardvec/object_store.h"

namespace shardvec {

// One published manifest, named by its directory under manifests/.
struct ManifestEntry {
  std::string ref;           // the manifest's URL
  std::string key;           // manifests/<timestamp>_run_id=<run>/manifest
  std::string run_id;
  std::string published_at;  // the directory timestamp
};

// Manifests newest first (by directory timestamp), at most `limit` of them (limit <= 0: all).
// Directories that do not match the layout's name pattern are ignored.
Result<std::vector<ManifestEntry>> ListManifests(ObjectStore& store, int64_t limit);

// Which manifest a rollback targets; exactly one field must be set.
struct ManifestSelector {
  std::optional<std::string> run_id;  // the newest manifest of this run
  std::optional<std::string> ref;     // a manifest URL or key under the store; it must exist
  std::optional<int64_t> offset;      // 0 = newest manifest, 1 = the one before, ...
};

Result<ManifestEntry> FindManifest(ObjectStore& store, const ManifestSelector& selector);

// Points _CURRENT at `target` after checking that its manifest exists and parses and that the shard
// files it names are still there (NotFound otherwise, e.g. after cleanup). The pointer is
// swapped against the version read just before, so a concurrent publish or rollback makes this fail
// with a Conflict instead of being overwritten. Returns the target's ref.
Result<std::string> Rollback(ObjectStore& store, const ManifestEntry& target);

struct CleanupOptions {
  bool dry_run = false;
  // Keep the newest N manifests' runs (N >= 1).
  std::optional<int64_t> keep_last;
  // Keep the runs of manifests published at or after `now - older_than`.
  std::optional<std::chrono::seconds> older_than;
  SystemTime now = NowUtc();
};

struct CleanupReport {
  std::vector<std::string> deleted_keys;  // deleted, or that would be deleted on a dry run
  // Leftovers of killed processes, removed too (or that would be on a dry run): staged temp files
  // older than kStagedGrace, rollback intents older than the guard grace, and tombstones of crashed
  // cleanups whose objects are all gone. Not counted in `objects`/`bytes`.
  std::vector<std::string> leftover_keys;
  std::vector<std::string> removed_runs;  // runs whose shards/ and vector_meta/ objects all go
  std::vector<std::string> kept_runs;     // runs seen in the store that stay
  int64_t objects = 0;
  int64_t bytes = 0;
};

// A staged temp file this old is a killed process's leftover (no upload or download takes an hour
// between staging a file and renaming it).
inline constexpr std::chrono::seconds kStagedGrace{3600};

// Deletes the shards/ and vector_meta/ objects of runs no kept manifest references, and attempt=NN
// folders of kept runs that their manifests do not name. Kept manifests: the current one, plus all
// of them when neither keep_last nor older_than is given, else the union of the newest `keep_last`
// and those younger than `older_than`. A run whose record says running with an unexpired lease is
// never touched. Without a manifest at all a run is an orphan (a failed build) and is removed.
// Races with rollback follow the protocol in write/delete_guard.h: a cleanup that would delete an
// object a rollback in progress needs deletes nothing (Conflict), and a rollback never makes current
// a snapshot whose objects a cleanup is deleting. Also removes leftovers (CleanupReport::leftover_keys).
Result<CleanupReport> Cleanup(ObjectStore& store, const CleanupOptions& options);

}  // namespace shardvec
