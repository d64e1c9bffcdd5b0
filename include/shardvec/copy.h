// Copying published snapshots from one store to another (`shardvec copy SRC DST`): folder to S3, S3
// to folder, S3 to S3, folder to folder. The copy is a first-class store: every URL its manifests and
// _CURRENT hold is under DST (so any reader of the layout, shardyfusion's included, reads it), the
// manifests keep their folder names (timestamps and run ids), and nothing else in them changes.
//
//   auto src = shardvec::OpenStore("/data/vectors");
//   auto dst = shardvec::OpenStore("s3://bucket/vectors");
//   auto report = shardvec::CopySnapshots(**src, **dst, {.max_workers = 8});
//
// Every object is verified against the size and xxh3 digest the manifest records before it is
// written to DST (a corrupt source object fails the copy, naming it). Objects go first, in parallel;
// then each manifest (put-if-absent); then DST's _CURRENT by compare-and-swap. A copy that stops
// part way leaves DST's current snapshot as it was, and running it again resumes: objects already in
// DST with the same size and digest are kept, never uploaded again. An object or manifest in DST that
// differs from what the copy would write is never overwritten (Conflict naming it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

struct CopyProgress {
  int64_t objects_done = 0;   // copied, or found already in DST
  int64_t objects_total = 0;  // shard files and routing artifacts of the copied manifests
  int64_t bytes_done = 0;
};

struct CopyOptions {
  // Which snapshot: nullopt copies the one SRC's _CURRENT names; a run id, that run's newest manifest.
  std::optional<std::string> run_id = std::nullopt;
  // Every manifest SRC lists (and everything they read); DST's _CURRENT then names what SRC's names.
  // Exclusive with run_id.
  bool all_history = false;
  // Objects copied at once (0: 8; at most kMaxPoolThreads).
  int64_t max_workers = 0;
  // A local folder for objects in transit, private to this user (empty: <the user's cache>/shardvec/copy).
  std::string staging_dir;
  // Called after each object, from one thread at a time.
  std::function<void(const CopyProgress&)> progress = nullptr;
};

struct CopyReport {
  std::vector<std::string> manifests;  // the copied manifests' refs in DST, oldest first
  std::string current_ref;             // what DST's _CURRENT names now (empty: SRC has none)
  std::string run_id;                  // its run
  int64_t objects_copied = 0;
  int64_t objects_skipped = 0;  // already in DST with the same size and digest (a resumed copy)
  int64_t bytes_copied = 0;
  int64_t bytes_skipped = 0;
};

// Copies the chosen snapshots of `src` into `dst` (object-store layout on both sides; `src` may be a
// store that was moved since it was written). Errors: InvalidArgument for bad options or the same
// store on both sides; NotFound when the snapshot does not exist; Corruption naming an object whose
// size or digest differs from its manifest's; Conflict when DST holds a different object or manifest
// under a key the copy writes, or its _CURRENT names a snapshot SRC does not hold (copy into an empty
// prefix, or one an earlier copy of SRC wrote).
Result<CopyReport> CopySnapshots(ObjectStore& src, ObjectStore& dst, const CopyOptions& options = {});

}  // namespace shardvec
