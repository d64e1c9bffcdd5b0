// What a copy of snapshots (shardvec/copy.h) moves: the manifests chosen in SRC, every object they
// read (shard files and routing artifacts, with the size and digest each manifest records), and each
// manifest rewritten so that all its URLs are under DST.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "shardvec/copy.h"
#include "shardvec/object_store.h"

namespace shardvec {

struct CopyObject {
  std::string src_key;
  std::string dst_key;                // src_key without empty segments
  std::optional<int64_t> size;        // shards: the manifest's db_bytes
  std::optional<std::string> digest;  // "xxh3:…" when the manifest records one
  int64_t max_bytes = 0;              // what a read of it may take
};

struct CopyManifest {
  std::string key;     // manifests/<timestamp>_run_id=<run>/manifest, in both stores
  std::string run_id;
  Manifest rewritten;  // SRC's manifest with s3_prefix, db_urls and artifact refs under DST
};

struct CopyPlan {
  std::vector<CopyManifest> manifests;     // oldest first
  std::optional<size_t> current;           // the one DST's _CURRENT is to name
  std::vector<CopyObject> objects;         // each key once, sorted
  std::vector<std::string> src_manifest_keys;  // every manifest SRC lists
};

// Reads SRC's listing, pointer and the chosen manifests. Corruption (naming the manifest and the
// field) for a manifest URL outside SRC or two manifests recording different sizes or digests for
// one object.
Result<CopyPlan> PlanCopy(ObjectStore& src, const ObjectStore& dst, const CopyOptions& options);

}  // namespace shardvec
