// One run id, one build. A build claims its run id before it uploads anything: a put-if-absent of
// shards/run_id=R/_RUN, so of two builds racing with the same id exactly one wins, and the other
// stops before it writes a byte. The claim also refuses an id that a build without claims (an older
// shardvec, or shardyfusion) left objects under: a manifest of that run, shards/ or vector_meta/
// objects, or a run record. Reusing an id would otherwise write over the objects a published
// manifest names (same keys), so a live snapshot would stop verifying.
#pragma once

#include <string_view>

#include "format/keys.h"

#include "shardvec/object_store.h"
#include "snapshot/marker.h"

namespace shardvec {

// Claims `run_id` in `store`, or InvalidArgument naming the run id and an object it already has.
// On success the claim object exists and belongs to the caller. `check_history` also looks for
// objects of builds that wrote no claim; a freshly generated id skips that (it cannot have any).
// The claim and the objects looked for are at `layout`'s keys.
// A claim the store refuses to write is an error naming the store (its code kept, e.g.
// PermissionDenied for refused credentials).
Status ClaimRunId(ObjectStore& store, std::string_view run_id, bool check_history, const KeyLayout& layout = {});

// Checks, before any training or building, that the store takes this run's writes: puts a small
// probe object in the claimed run's shard folder and deletes it. A refused put is an error naming
// the store and the probe's URL (its code kept). A refused delete is only logged: a build needs no
// delete permission to publish, and the probe left behind is cleanup's, as the run's other objects.
Status ProbeStoreWritable(ObjectStore& store, std::string_view run_id, const KeyLayout& layout = {});

}  // namespace shardvec
