// Snapshot administration over a store prefix: list the published snapshots (history), read which one
// is current, point _CURRENT back at an older one (rollback), and delete shard data no kept snapshot
// needs (cleanup). Manifests, run records and _CURRENT are never deleted, so every rollback target
// stays listable. The shardvec CLI's history, rollback and cleanup commands are built on these alone.
//
//   auto store = shardvec::OpenStore("s3://bucket/vectors");
//   auto snapshots = shardvec::ListSnapshots(**store, {.limit = 10});
//   auto rolled = shardvec::RollbackSnapshot(**store, {.previous = true});
//   auto report = shardvec::Cleanup(**store, {.dry_run = true, .keep_last = 3});
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

class ManifestStore;  // shardvec/manifest_store.h

// What a manifest itself says about its snapshot.
struct ManifestSummary {
  std::string created_at;
  int64_t num_dbs = 0;
  int64_t total_vectors = 0;       // the shards' row counts added up
  int64_t dim = 0;                 // custom.vector.dim; 0 when the manifest has none
  std::string metric;              // custom.vector.metric; empty when absent
  std::string sharding_strategy;   // custom.vector.sharding_strategy; empty when absent
  // Shards whose db_url is another run's folder: shared with an earlier snapshot (an incremental
  // update keeps the shards it did not change; see shardvec/update.h).
  int64_t shared_shards = 0;
  // custom.shardvec.update.base_run_id: the snapshot this one updated; empty for a full build.
  std::string base_run_id;
};

// One published snapshot: a manifest under manifests/<timestamp>_run_id=<run>/.
struct HistoryEntry {
  std::string ref;           // the manifest's URL (what RollbackTarget::ref takes)
  std::string run_id;
  std::string published_at;  // the manifest folder's timestamp (UTC, sorts as text)
  bool current = false;      // _CURRENT names this manifest
  // Read from the manifest when HistoryOptions::read_manifests is set and it parses; otherwise
  // nullopt, and manifest_error says why when the read failed.
  std::optional<ManifestSummary> manifest = std::nullopt;
  std::string manifest_error;
};

struct HistoryOptions {
  int64_t limit = 0;            // newest N snapshots; 0 lists all (negative: InvalidArgument)
  bool read_manifests = true;   // fill HistoryEntry::manifest (one read per listed manifest)
};

// Snapshots newest first. Folders under manifests/ that do not match the layout are ignored. An
// unreadable _CURRENT marks nothing current (logged as a warning): history is how an operator finds a
// rollback target when the pointer is broken. A manifest that cannot be read is still listed.
Result<std::vector<HistoryEntry>> ListSnapshots(ObjectStore& store, const HistoryOptions& options = {});
// The same over a manifest store (shardvec/manifest_store.h): its listing, pointer and manifests.
Result<std::vector<HistoryEntry>> ListSnapshots(ManifestStore& manifests, const HistoryOptions& options = {});

// What _CURRENT says.
struct CurrentSnapshot {
  std::string ref;         // the manifest it names
  std::string run_id;
  std::string updated_at;  // when the pointer was last swapped
};

// The pointer, or nullopt when the store has none; Corruption when it does not parse.
Result<std::optional<CurrentSnapshot>> ReadCurrentSnapshot(ObjectStore& store);
// The manifest store's pointer (updated_at: its published_at).
Result<std::optional<CurrentSnapshot>> ReadCurrentSnapshot(ManifestStore& manifests);

// Which snapshot a rollback makes current: exactly one field must be set.
struct RollbackTarget {
  std::optional<std::string> run_id = std::nullopt;  // the newest manifest of this run
  std::optional<std::string> ref = std::nullopt;     // a manifest URL, or its key under the store
  std::optional<int64_t> offset = std::nullopt;      // position in ListSnapshots: 0 = newest, 1 = the one before, ...
  bool previous = false;              // the newest manifest published before the current one
};

struct RollbackResult {
  std::string ref;  // the manifest _CURRENT now names
  std::string run_id;
  std::string published_at;
  // _CURRENT already named the target: nothing was written.
  bool already_current = false;
};

// Points _CURRENT at the target after checking that its manifest parses and that every shard file and
// routing artifact it names is still there (NotFound otherwise, e.g. after cleanup). The pointer is
// swapped against the version read just before, so a concurrent publish or rollback makes this fail
// with Conflict instead of being overwritten; a cleanup deleting what the target needs makes it fail
// with Conflict too. Errors name the selector and its value. A target _CURRENT already names is
// returned with already_current set, and nothing is written.
Result<RollbackResult> RollbackSnapshot(ObjectStore& store, const RollbackTarget& target);
// The same with the manifests and the pointer in `manifests` (the shards it checks and the
// rollback/cleanup markers stay in `store`). A ref must be one `manifests` lists.
Result<RollbackResult> RollbackSnapshot(ObjectStore& store, ManifestStore& manifests, const RollbackTarget& target);

struct CleanupOptions {
  bool dry_run = false;  // report what would be deleted; delete nothing
  // Keep the runs of the newest N manifests (N >= 1).
  std::optional<int64_t> keep_last = std::nullopt;
  // Keep the runs of manifests published at or after `now - older_than` (>= 0 seconds).
  std::optional<std::chrono::seconds> older_than = std::nullopt;
  // Where the writers put the runs' shards and run records (WriteConfig's shard_prefix and
  // run_registry_prefix); only objects under these are considered. Kept manifests are read with the
  // shard_prefix each of them records.
  std::string shard_prefix = "shards";
  std::string run_registry_prefix = "runs";
  // Runs another run registry (one the writer was given instead of the store's) says are running
  // within their lease: never touched, as runs whose own record says so.
  std::vector<std::string> live_runs = {};
  // The clock older_than and the leftover graces are measured against.
  std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds> now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
};

struct CleanupReport {
  std::vector<std::string> deleted_keys;  // deleted, or that would be deleted on a dry run
  // Leftovers of killed processes, removed too (or that would be on a dry run): staged temp files
  // older than an hour, rollback intents older than an hour, and markers of crashed cleanups whose
  // objects are all gone. Not counted in `objects`/`bytes`.
  std::vector<std::string> leftover_keys;
  std::vector<std::string> removed_runs;  // runs whose shards/ and vector_meta/ objects all go
  std::vector<std::string> kept_runs;     // runs seen in the store that stay
  int64_t objects = 0;
  int64_t bytes = 0;
};

// Deletes the shards/ and vector_meta/ objects of runs no kept manifest references, and attempt=NN
// folders of kept runs that their manifests do not name. Kept manifests: the current one, plus all
// of them when neither keep_last nor older_than is given, else the union of the newest `keep_last`
// and those younger than `older_than`. A run whose record says running with an unexpired lease is
// never touched. Without a manifest at all a run is an orphan (a failed build) and is removed.
// A cleanup racing a rollback never leaves _CURRENT naming deleted objects: one of them backs off
// with Conflict. Needs a readable _CURRENT (repair a corrupt one with RollbackSnapshot first).
Result<CleanupReport> Cleanup(ObjectStore& store, const CleanupOptions& options);
// The same learning the kept manifests and the pointer from `manifests`; shards are still deleted
// from `store`.
Result<CleanupReport> Cleanup(ObjectStore& store, ManifestStore& manifests, const CleanupOptions& options);

}  // namespace shardvec
