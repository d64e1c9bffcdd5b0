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
#include "format/keys.h"
#include "shardvec/admin.h"
#include "shardvec/manifest_store.h"
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

// Which manifest a rollback targets; exactly one field must be set (shardvec/admin.h).
using ManifestSelector = RollbackTarget;

// In the object-store layout: a ref may also be the manifest's key or local path, and is checked
// to exist with a HEAD; the other selectors work as in the ManifestStore overload. Entries carry
// their key.
Result<ManifestEntry> FindManifest(ObjectStore& store, const ManifestSelector& selector);
// Over any manifest store: a ref must be one the store lists (or, without a scheme, name the
// manifest folder of one). Entries come back without `key`.
Result<ManifestEntry> FindManifest(ManifestStore& manifests, const ManifestSelector& selector);

// Points _CURRENT at `target` after checking that its manifest exists and parses and that the shard
// files it names are still there (NotFound otherwise, e.g. after cleanup). The pointer is
// swapped against the version read just before, so a concurrent publish or rollback makes this fail
// with a Conflict instead of being overwritten. Returns the target's ref.
Result<std::string> Rollback(ObjectStore& store, const ManifestEntry& target);
// The same with the manifest and the pointer in `manifests` (the shards and the rollback/cleanup
// markers stay in `store`); the swap is SetCurrent against the pointer read just before.
Result<std::string> Rollback(ObjectStore& store, ManifestStore& manifests, const ManifestEntry& target);

// A staged temp file this old is a killed process's leftover (no upload or download takes an hour
// between staging a file and renaming it).
inline constexpr std::chrono::seconds kStagedGrace{3600};

// Cleanup (declared in shardvec/admin.h) removes leftovers: staged temp files older than
// kStagedGrace, rollback intents older than the guard grace, and tombstones of crashed cleanups
// whose objects are all gone. Races with rollback follow the protocol in snapshot/delete_guard.h.

// Whether `entry` is the manifest `current_dir` (_CURRENT's manifest folder) names.
bool IsCurrentManifest(const ManifestEntry& entry, const std::optional<ManifestDirName>& current_dir);
// Whether `current` (a manifest store's pointer) names `entry`: the same ref, or the same manifest
// folder under another URL form.
bool IsCurrentRef(const ManifestEntry& entry, const std::optional<ManifestRef>& current);

}  // namespace shardvec
