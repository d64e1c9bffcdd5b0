// Loads one published snapshot into an immutable, shareable form: the pointer, the parsed manifest,
// custom["vector"] (docs/snapshot-format.md#manifest), the routing artifacts, and where each shard lives in the store.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "format/current_pointer.h"
#include "format/manifest.h"
#include "read/shard_cache.h"
#include "routing/router.h"
#include "shardvec/manifest_store.h"
#include "shardvec/object_store.h"
#include "shardvec/types.h"

namespace shardvec {

struct LoadedSnapshot {
  std::string manifest_ref;
  std::string run_id;
  std::string published_at;
  Manifest manifest;
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  Strategy strategy = Strategy::kExplicit;
  int64_t num_probes = 1;
  int64_t num_dbs = 0;
  RoutingPlan routing;
  std::unique_ptr<Router> router;             // every strategy's; EXPLICIT's asks for shard_ids
  std::map<int64_t, ShardLocation> shards;    // non-empty shards only
};

// The manifest `ref` names as a snapshot with nothing else loaded (NotFound, or Corruption when it
// does not parse).
Result<std::unique_ptr<LoadedSnapshot>> LoadManifestOnly(ManifestStore& manifests, const ManifestRef& ref);
// The two steps LoadSnapshot then runs: where each non-empty shard lives in `store` (Corruption naming a db_url outside it), then
// custom["vector"] and the routing artifacts it names (read and verified) and the router. The second
// sets dim, metric and strategy before it reads any artifact, so they hold when only routing failed.
Status ApplyShards(ObjectStore& store, LoadedSnapshot& s);
Status ApplyVectorMetadata(ObjectStore& store, LoadedSnapshot& s);

// The manifest store's current pointer (NotFound, kind NoCurrentPointer, when there is none).
Result<ManifestRef> LoadCurrentRef(ManifestStore& manifests);
// Reads _CURRENT of the object-store layout (NotFound when there is none, Corruption when it does
// not parse).
Result<CurrentPointer> LoadCurrentPointer(ObjectStore& store);

// Loads the manifest `ref` names (from `manifests`) plus its artifacts (from `store`): the three
// steps above. Corruption when the manifest does not parse.
Result<std::unique_ptr<LoadedSnapshot>> LoadSnapshot(ObjectStore& store, ManifestStore& manifests,
                                                     const ManifestRef& ref);

// LoadSnapshot on the pointer's manifest, falling back to up to `max_fallback_attempts` older
// manifests (newest first) when it does not parse (docs/architecture.md#search).
Result<std::unique_ptr<LoadedSnapshot>> LoadCurrentSnapshot(ObjectStore& store, ManifestStore& manifests,
                                                            int64_t max_fallback_attempts);

}  // namespace shardvec
