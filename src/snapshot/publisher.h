// Publish (docs/publish-protocol.md): the manifest put-if-absent, then _CURRENT by compare-and-swap. The pointer
// never moves backwards by accident: under kRejectIfNewer, a pointer naming a manifest newer than this
// run's start fails the publish with a Conflict ("PublishConflictError") and the manifest stays in
// history for an explicit rollback.
#pragma once

#include <optional>
#include <string>

#include "common/time_util.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "shardvec/config.h"
#include "shardvec/object_store.h"

namespace shardvec {

struct PublishResult {
  std::string manifest_ref;  // the manifest's URL
  std::string manifest_key;
};

Result<PublishResult> PublishSnapshot(ObjectStore& store, const Manifest& manifest,
                                      SystemTime run_started, PublishPolicy policy,
                                      std::string_view pointer_key = kCurrentKey);

// Writes only the manifest (put-if-absent) and returns where it went.
Result<PublishResult> PutManifest(ObjectStore& store, const Manifest& manifest);
// Points _CURRENT at a manifest PutManifest wrote (the second half of PublishSnapshot). A caller that
// needs to know whether the manifest reached history runs the two halves itself.
// `pointer_key` is where the pointer lives (default _CURRENT; the layout's current_pointer_key).
Status SwapCurrent(ObjectStore& store, const PublishResult& published, const std::string& run_id,
                   SystemTime run_started, PublishPolicy policy, std::string_view pointer_key = kCurrentKey);

// Reads and parses the manifest at `key`; errors name `ref` (NotFound when it does not exist,
// Corruption when it does not parse).
Result<Manifest> ReadManifest(ObjectStore& store, std::string_view key, std::string_view ref);

// The current pointer and its version token, or nullopt when there is none.
struct CurrentState {
  CurrentPointer pointer;
  std::string version;
};
Result<std::optional<CurrentState>> ReadCurrent(ObjectStore& store, std::string_view pointer_key = kCurrentKey);

// What a compare-and-swap of _CURRENT replaces: the pointer when it parses, and the version to
// expect (nullopt when there is no pointer). A corrupt pointer names nothing, so it comes back with
// its version and no contents (and a warning): replacing it is how the store gets repaired.
struct SwapBase {
  std::optional<CurrentPointer> pointer;
  std::optional<std::string> version;
};
Result<SwapBase> ReadCurrentForSwap(ObjectStore& store, std::string_view pointer_key = kCurrentKey);

}  // namespace shardvec
