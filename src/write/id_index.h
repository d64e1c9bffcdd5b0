// A snapshot's id index: where each id lives, without opening a shard. Every row's original id is
// hashed to 64 bits (xxh3 of its id-map text, so the int 7 and the string "7" differ) and the
// (hash, db_id) pairs are kept sorted, one artifact per snapshot (vector_meta/run_id=R/id_index.bin,
// its digest and entry count in custom["shardvec"]["id_index"]). Every build writes one (WriteSharded
// from its shard builders' hashes; a distributed driver from the per-shard parts its tasks uploaded,
// ShardIdIndexPartKey); an update reads it once, finds the shards of the ids it changes by binary
// search, and writes the next snapshot's.
//
// Bytes: "SVIDX" 0x01 0x00 0x00, the entry count (u64 little endian), then the hashes ascending
// (u64 LE each), then each entry's db_id (u32 LE each, in the same order): 12 bytes per row plus 16.
// Two ids with one hash (about 1 in 2^64 per pair) both stay listed: a lookup then names both
// shards, and the update reads each to find the id, so a collision costs time, never a wrong row.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/manifest.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

inline constexpr std::string_view kIdIndexFileName = "id_index.bin";

// The hash an id is indexed under.
uint64_t IdIndexHash(const RecordId& id);

struct IdIndexEntry {
  uint64_t hash = 0;
  uint32_t db_id = 0;
  auto operator<=>(const IdIndexEntry&) const = default;
};

// The artifact itself is what an index holds in memory (12 bytes a row): a lookup binary-searches its
// hash section in place, and an update's next index is merged from it straight into the next
// artifact's bytes (Merged), so no decoded copy of every entry is ever made.
class IdIndex {
 public:
  IdIndex();
  // Sorts `entries` (any order) and encodes them; `entries` is freed.
  explicit IdIndex(std::vector<IdIndexEntry> entries);

  // Takes an artifact; Corruption naming `what` when it is malformed, out of order, or names a
  // db_id >= num_dbs.
  static Result<IdIndex> Parse(std::string bytes, int64_t num_dbs, std::string_view what);

  // `base`'s entries whose `keep` flag is set (one per entry, in its order) and `added` (any order),
  // sorted: written straight into the new artifact.
  static IdIndex Merged(const IdIndex& base, const std::vector<bool>& keep, std::vector<IdIndexEntry> added);

  const std::string& bytes() const { return bytes_; }  // the artifact
  int64_t size() const { return count_; }
  IdIndexEntry entry(int64_t i) const;

  // The shards that hold an id of this hash (ascending, without repeats; usually none or one).
  std::vector<int64_t> ShardsOf(uint64_t hash) const;
  // Every entry decoded (16 bytes each in memory): for tests and small indexes.
  std::vector<IdIndexEntry> entries() const;

 private:
  IdIndex(std::string bytes, int64_t count) : bytes_(std::move(bytes)), count_(count) {}
  uint64_t hash(int64_t i) const;
  std::string bytes_;
  int64_t count_ = 0;
};

// Appends one shard's entries, {hash, db_id} for each of `hashes` (ShardBuilder::TakeIdHashes), and
// frees `hashes` (the caller reserves `entries`).
void AppendShardEntries(std::vector<IdIndexEntry>& entries, int64_t db_id, std::vector<uint64_t> hashes);

// The artifact's size for `rows` entries: 16 header bytes and 12 per entry.
int64_t IdIndexBytes(int64_t rows);

// Writes `index` as run `run_id`'s id index, vector_meta/run_id=R/id_index.bin (put-if-absent; the
// caller publishes the manifest after it), and records it in `manifest` as
// custom["shardvec"]["id_index"] = {"format": 1, "ref": URL, "digest": "xxh3:…", "entries": n}.
Status WriteIdIndex(ObjectStore& store, std::string_view run_id, const IdIndex& index, Manifest& manifest);
// The same for `entries` (any order). Memory: the entries (16 bytes each) and the encoded artifact
// (12 bytes each) at once.
Status WriteIdIndex(ObjectStore& store, std::string_view run_id, std::vector<IdIndexEntry> entries,
                    Manifest& manifest);

}  // namespace shardvec
