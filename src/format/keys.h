// Object keys of the snapshot layout (docs/snapshot-format.md#store-layout), relative to the store prefix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shardvec/config.h"
#include "shardvec/status.h"

namespace shardvec {

inline constexpr std::string_view kCurrentKey = "_CURRENT";
inline constexpr std::string_view kManifestsPrefix = "manifests/";
inline constexpr std::string_view kShardPrefix = "shards";
inline constexpr std::string_view kDbPathTemplate = "db={db_id:05d}";
inline constexpr std::string_view kShardFileName = "shard.db";
inline constexpr std::string_view kClaimFileName = "_CLAIM";
// A distributed task's id index of its own shard, beside the shard file until the driver has merged
// it into the snapshot's (write/id_index.h).
inline constexpr std::string_view kIdIndexPartFileName = "id_index.part";
inline constexpr std::string_view kRunClaimFileName = "_RUN";
inline constexpr std::string_view kRunsPrefix = "runs/";
inline constexpr std::string_view kRunRegistryPrefix = "runs";
inline constexpr std::string_view kVectorMetaPrefix = "vector_meta/";
// Markers of the rollback/cleanup protocol (snapshot/delete_guard.h); no reader looks under _shardvec/.
inline constexpr std::string_view kRollbackIntentsPrefix = "_shardvec/rollbacks/";
inline constexpr std::string_view kCleanupTombstonesPrefix = "_shardvec/cleanups/";

// Where a build's shards and run records go (the reference's output.shard_prefix,
// output.db_path_template and output.run_registry_prefix). The defaults are the reference's layout.
struct KeyLayout {
  std::string shard_prefix = std::string(kShardPrefix);
  std::string db_path_template = std::string(kDbPathTemplate);
  std::string run_registry_prefix = std::string(kRunRegistryPrefix);
};

// Checks a layout as ValidateLayout (shardvec/config.h) describes, naming each field as `names`
// calls it.
Status ValidateKeyLayout(const KeyLayout& layout, const LayoutFieldNames& names = {});
// The folder name of shard `db_id` under a valid template: Python's template.format(db_id=db_id).
std::string FormatDbPath(std::string_view db_path_template, int64_t db_id);

// shards/run_id=R/db=00003/attempt=00
std::string ShardDirKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout = {});
// shards/run_id=R/db=00003/attempt=00/shard.db
std::string ShardKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout = {});
// shards/run_id=R/db=00003/attempt=00/_CLAIM: the put-if-absent marker a distributed task writes to
// own its attempt folder.
std::string ShardClaimKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout = {});
// shards/run_id=R/db=00003/attempt=00/id_index.part: the entries of that attempt's shard, which the
// driver merges into vector_meta/run_id=R/id_index.bin and then deletes.
std::string ShardIdIndexPartKey(std::string_view run_id, int64_t db_id, int64_t attempt, const KeyLayout& layout = {});
// shards/run_id=R/
std::string RunShardsPrefix(std::string_view run_id, const KeyLayout& layout = {});
// shards/run_id=R/_RUN: the put-if-absent marker a build writes before any upload, so one run id
// belongs to exactly one build (cleanup removes it with the run's other objects).
std::string RunClaimKey(std::string_view run_id, const KeyLayout& layout = {});
// vector_meta/run_id=R/centroids.npy
std::string VectorMetaKey(std::string_view run_id, std::string_view file_name);
// manifests/2026-11-24T21:36:00.123456Z_run_id=R/manifest
std::string ManifestKey(std::string_view timestamp, std::string_view run_id);
// runs/2026-…Z_run_id=R_<uuidhex>/run.yaml (`registry_prefix` replaces "runs")
std::string RunRecordKey(std::string_view timestamp, std::string_view run_id, std::string_view uuid_hex,
                         std::string_view registry_prefix = kRunRegistryPrefix);
// The run id in a RunRecordKey under `registry_prefix` (uuid hex has no '_'); nullopt for any other key.
std::optional<std::string> RunIdOfRecordKey(std::string_view key,
                                            std::string_view registry_prefix = kRunRegistryPrefix);
// "<shard_prefix>/run_id=R/<db folder>/attempt=NN[/…]": the attempt folder's key and its run id.
struct ShardDirName {
  std::string key;
  std::string run_id;
};
std::optional<ShardDirName> ParseShardDirKey(std::string_view key, std::string_view shard_prefix = kShardPrefix);

// The object key a snapshot URL names: the URL must be `prefix_url` (the store's, no trailing slash)
// + "/" + a key without "." or ".." segments; anything else is Corruption naming the URL.
Result<std::string> KeyFromUrl(std::string_view prefix_url, std::string_view url);
// KeyFromUrl for a URL a manifest names, in a store that may have been moved or copied since the
// snapshot was written: a URL under the store's prefix, or under `written_under` (the prefix the
// manifest records, its s3_prefix; trailing '/' ignored), names that key in this store. The URLs of
// a store copied with `cp -r` or `aws s3 sync` keep naming the old place; this maps them into the
// store being read, never anywhere else. A URL under neither is Corruption naming the URL, the
// store and the recorded prefix.
Result<std::string> KeyFromSnapshotUrl(std::string_view prefix_url, std::string_view written_under,
                                       std::string_view url);
// `prefix` without trailing '/'.
std::string_view TrimTrailingSlashes(std::string_view prefix);

struct ManifestDirName {
  std::string timestamp;
  std::string run_id;
};
// Parses "2026-11-24T21:36:00.123456Z_run_id=R" (an optional trailing '/' and a leading
// "manifests/" are accepted); nullopt when it does not match the layout.
std::optional<ManifestDirName> ParseManifestDirName(std::string_view name);
// Finds the manifest directory inside a manifest URL or key (…/manifests/<dir>/manifest).
std::optional<ManifestDirName> ParseManifestRef(std::string_view ref);

}  // namespace shardvec
