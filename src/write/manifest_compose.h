// The manifest of one run: config + routing plan + the shards to publish. Shared by WriteSharded and
// the distributed driver so both write the same bytes for the same snapshot.
#pragma once

#include <string>
#include <vector>

#include "format/keys.h"
#include "format/manifest.h"
#include "shardvec/distributed.h"
#include "shardvec/manifest_store.h"
#include "snapshot/publisher.h"

namespace shardvec {

// Uploads the plan's centroids / hyperplanes .npy (the manifest names them), then returns the manifest
// of `shards` (non-empty, ascending db_id).
Result<Manifest> ComposeManifest(ObjectStore& store, const WriteConfig& config, const RoutingPlan& plan,
                                 const std::string& run_id, const std::vector<ShardInfo>& shards);

// What a published run returns (elapsed_ms left to the caller).
BuildResult MakeBuildResult(const std::string& run_id, const PublishResult& published, int64_t num_dbs,
                            std::vector<ShardInfo> shards);

// The manifest store a write publishes through: config.manifest_store, else the object-store layout
// over `store`.
std::shared_ptr<ManifestStore> WriteManifestStore(const WriteConfig& config, std::shared_ptr<ObjectStore> store);

// Publishes `manifest` through `manifests` (guarded by the run's start and the publish policy, and
// unless `allow_schema_change`, by CheckSchemaUnchanged).
Result<PublishResult> PublishRun(ManifestStore& manifests, const Manifest& manifest, SystemTime started,
                                 PublishPolicy policy, bool allow_schema_change);

// Conflict (ErrorKind::kPublishConflict) naming both values when `next`'s custom.vector dim or metric,
// or its custom.shardvec.id_type (when both manifests record one), differs from those of the manifest
// the current pointer names; OK when there is no current snapshot
// or its manifest cannot be read (a corrupt current pointer or manifest is replaced, as before).
Status CheckSchemaUnchanged(ManifestStore& manifests, const Manifest& next);

// CheckSchemaUnchanged for the snapshot `config` will build (its dim and metric), unless
// config.allow_schema_change: run before sampling and training, so a refused schema change fails in
// milliseconds. PublishRun checks again (another snapshot may have been published meanwhile).
Status CheckSchemaBeforeBuild(ManifestStore& manifests, const WriteConfig& config);

// Whether a manifest of `run_id` is listed in `manifests` (true when the listing fails: a caller that
// cannot tell keeps the run's objects for cleanup).
bool RunHasManifest(ManifestStore& manifests, const std::string& run_id);

// A run that failed before its manifest reached history leaves objects nothing references: its
// shards (also one that failed just after its upload) and routing artifacts go, so a failed write
// leaves the store as it was. Once a manifest of the run exists (a publish conflict, or a put that
// failed after it landed), they stay for it. A failed delete is logged (`cleanup` removes them).
void RemoveUnpublishedRun(ObjectStore& store, ManifestStore& manifests, const std::string& run_id,
                          const KeyLayout& layout, const Status& failure);

}  // namespace shardvec
