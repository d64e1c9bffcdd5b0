// Verifying a published snapshot against its manifest: every shard it names is there with the size
// and digest the manifest records, is a vec0 shard of the snapshot's dim and metric holding the row
// count the manifest records, and the routing artifacts (centroids, hyperplanes, CEL values) are
// there, match their digests and parse. Every problem found is reported (not only the first).
//
//   auto store = shardvec::OpenStore("s3://bucket/vectors");
//   auto report = shardvec::VerifySnapshot(*store, {.sample = 4});
//   if (report.ok() && !report->ok()) for (auto& p : report->problems) puts(p.message.c_str());
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/admin.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

class ManifestStore;  // shardvec/manifest_store.h

struct VerifyOptions {
  // The snapshot to verify: the one the current pointer names, or this published one (one selector
  // set, as for RollbackSnapshot).
  std::optional<RollbackTarget> snapshot = std::nullopt;
  // Where the manifests and the current pointer live; null: beside the shards in the store.
  std::shared_ptr<ManifestStore> manifest_store = nullptr;
  // Every shard's presence and size are always checked (one HEAD each). Its contents (the digest
  // over every byte, the schema, the row counts) are read for every shard, or with `sample` for that
  // many shards chosen at random (>= 1; more than there are checks them all).
  std::optional<int64_t> sample = std::nullopt;
  // Seeds the sample's choice (none: a random seed, reported in VerifyReport::seed).
  std::optional<uint64_t> seed = std::nullopt;
  int64_t max_workers = 0;  // shards checked at once, 0..1024; 0 = one per usable CPU
  // Called on the calling thread as shards finish: (shards done, shards in all).
  std::function<void(int64_t done, int64_t total)> on_progress = nullptr;
};

// One thing wrong with the snapshot.
struct VerifyProblem {
  // What failed: "manifest" (the manifest or custom.vector), "routing" (an artifact or the router
  // built from it), "missing", "size", "digest", "schema", "row_count", or "read" (the store failed
  // to answer, e.g. a network error: not proof the snapshot is damaged).
  std::string check;
  std::optional<int64_t> db_id = std::nullopt;  // the shard, when the problem is one shard's
  std::string object;                           // the URL concerned (may be empty)
  std::string message;                          // names the object, the expected and the found value
};

struct VerifyReport {
  std::string manifest_ref;
  std::string run_id;
  int64_t num_dbs = 0;
  int64_t shards_checked = 0;    // shards with rows: presence and size checked
  int64_t shards_read = 0;       // of those, contents read (digest, then schema and rows)
  std::vector<int64_t> sampled;  // with VerifyOptions::sample: the db_ids whose contents were read
  uint64_t seed = 0;             // the sample's seed
  int64_t digests_absent = 0;    // shards read whose manifest records no digest (other writers')
  int64_t bytes_read = 0;        // shard bytes read for digests
  double elapsed_ms = 0;
  std::vector<VerifyProblem> problems;  // by db_id, snapshot-wide problems first
  bool ok() const { return problems.empty(); }
};

// Verifies the snapshot. Problems with it are the report's; an error is returned only when no
// snapshot could be looked at: bad options (InvalidArgument naming them), no current pointer or no
// manifest matching the selector (NotFound), or a store that cannot be listed or read at all.
Result<VerifyReport> VerifySnapshot(std::shared_ptr<ObjectStore> store, const VerifyOptions& options = {});

}  // namespace shardvec
