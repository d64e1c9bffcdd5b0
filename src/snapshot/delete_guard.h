// The protocol that keeps `rollback` and `cleanup` from leaving _CURRENT on deleted objects.
//
// Cleanup's check of _CURRENT and its deletes cannot be one atomic step, and neither can rollback's
// check that its target's objects exist and its swap of _CURRENT. So each announces what it is about
// to rely on before it looks at what the other announced (a store write, then a listing):
//
//   rollback: write an intent naming every object its target needs  (_shardvec/rollbacks/<ts>_<id>)
//             read the cleanup tombstones; refuse if one names an object the target needs
//             check the objects exist, swap _CURRENT, remove the intent
//   cleanup:  plan; write a tombstone naming every object it will delete (_shardvec/cleanups/<ts>_<id>)
//             read the rollback intents; delete nothing if one names a doomed object
//             re-read _CURRENT (unchanged since planning, or delete nothing), delete, remove the tombstone
//
// Stores here are linearizable (a folder; S3 with its strong read-after-write and list consistency),
// so of a racing pair the one that writes its marker second sees the other's marker: either the
// rollback refuses, or the cleanup spares the target, or both back off. A rollback whose intent was
// already removed has swapped, and a cleanup that re-reads _CURRENT after that sees the swap (the
// target is current, hence kept). Neither ever lets a pointer name an object that is being deleted.
//
// Crashed processes: a tombstone stays until every object it names is gone (rollback honours it until
// then: its objects may be half deleted); an intent older than kGuardGrace is removed by cleanup,
// and a rollback refuses to swap once its own intent is older than kGuardDeadline, so a stalled
// rollback cannot outlive its intent (clocks may disagree by up to kGuardGrace - kGuardDeadline).
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/time_util.h"
#include "shardvec/object_store.h"

namespace shardvec {

inline constexpr std::chrono::seconds kGuardGrace{3600};
inline constexpr std::chrono::seconds kGuardDeadline{600};

// A marker this process wrote: removed when it goes out of scope unless Keep() was called.
class GuardMarker {
 public:
  // Writes a marker under `prefix` naming `keys`.
  static Result<GuardMarker> Write(ObjectStore& store, std::string_view prefix, const std::set<std::string>& keys);
  GuardMarker(GuardMarker&& other) noexcept;
  GuardMarker& operator=(GuardMarker&&) = delete;
  ~GuardMarker();

  const std::string& key() const { return key_; }
  // True once the marker is older than kGuardDeadline (by this process's steady clock).
  bool PastDeadline() const;
  // Leaves the marker in the store (its work may be half done).
  void Keep() { store_ = nullptr; }

 private:
  GuardMarker(ObjectStore* store, std::string key);
  ObjectStore* store_;
  std::string key_;
  std::chrono::steady_clock::time_point written_;
};

struct MarkerInfo {
  std::string key;
  std::set<std::string> keys;  // the objects it names
  bool stale = false;          // older than kGuardGrace at `now`
};

// Every marker under `prefix` (one removed meanwhile is skipped; one that does not parse names
// nothing and counts as stale).
Result<std::vector<MarkerInfo>> ReadMarkers(ObjectStore& store, std::string_view prefix, SystemTime now);

// The first marker in `markers` (skipping stale ones unless `include_stale`) that names one of
// `keys`, with the key it names.
std::optional<std::pair<std::string, std::string>> FindOverlap(const std::vector<MarkerInfo>& markers,
                                                              const std::set<std::string>& keys,
                                                              bool include_stale);

}  // namespace shardvec
