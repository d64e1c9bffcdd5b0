// Shared by the tests of moved and copied stores: CLUSTER snapshots (shards and centroids) written
// into a store, the answers a reader gives on a store, a folder uploaded object by object (what
// `aws s3 sync` does), and every URL-like text a store's manifests and pointer hold.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shardvec/object_store.h"
#include "shardvec/types.h"

namespace shardvec::testing {

inline constexpr int64_t kRelocationDim = 8;
inline constexpr int64_t kRelocationDbs = 4;

// A folder store (a test failure and null when it does not open).
std::shared_ptr<ObjectStore> OpenFolderStore(const std::filesystem::path& folder);
// The data run `run_id` writes (seeded by its name).
Matrix RelocationData(const std::string& run_id);
// Writes run `run_id` (CLUSTER, trained centroids, l2, 4 shards) into `store`, building under `build_root`.
void WriteRelocationRun(const std::shared_ptr<ObjectStore>& store, const std::string& run_id,
                        const std::filesystem::path& build_root);

using Answers = std::vector<std::vector<std::pair<RecordId, double>>>;
// Every shard searched for a fixed set of queries through a reader on `store` (cache under
// `cache_dir`); a test failure (and empty answers) when the reader does not open.
Answers SearchAnswers(const std::shared_ptr<ObjectStore>& store, const std::filesystem::path& cache_dir);

// Puts every regular file below `folder` into `store` under its relative path.
void UploadFolder(const std::filesystem::path& folder, ObjectStore& store);

// The keys of every manifest in `store`, oldest first.
std::vector<std::string> ManifestKeys(ObjectStore& store);
// Every URL a manifest (build_meta.s3_prefix, shards.db_url, custom.vector.*_ref) or _CURRENT in
// `store` names.
std::vector<std::string> SnapshotUrls(ObjectStore& store);

}  // namespace shardvec::testing
