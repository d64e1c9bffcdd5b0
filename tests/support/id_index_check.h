// Checks a snapshot's id index (custom.shardvec.id_index, src/write/id_index.h) against its shards as
// plain SQLite reads them, for the build and update suites.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "format/manifest.h"
#include "shardvec/object_store.h"
#include "support/forwarding_store.h"

namespace shardvec::testing {

// Test failures unless `manifest` records an id index whose artifact has the recorded digest and
// entry count, parses, and lists exactly (xxh3 of each vec_id_map text, db_id) for every row of
// every shard the manifest names (each shard downloaded into `scratch` and read with plain SQLite),
// each id's shard found by IdIndex::ShardsOf. Returns the rows checked.
int64_t ExpectIdIndexMatchesShards(ObjectStore& store, const Manifest& manifest, const std::filesystem::path& scratch);

// Counts the shard files (…/shard.db) read through it: an update that found its shards by the id
// index reads only the shards it rebuilds.
class ShardReadCountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  using ObjectStore::Get;
  Result<std::string> Get(std::string_view key, int64_t max_bytes) override {
    Count(key);
    return ForwardingStore::Get(key, max_bytes);
  }
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override {
    Count(key);
    return ForwardingStore::GetRange(key, offset, length);
  }
  Status GetToFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override {
    Count(key);
    return ForwardingStore::GetToFile(key, dest, max_bytes);
  }
  Status GetToScratchFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override {
    Count(key);
    return ForwardingStore::GetToScratchFile(key, dest, max_bytes);
  }
  std::atomic<int64_t> shard_reads{0};

 private:
  void Count(std::string_view key) {
    if (key.ends_with("/shard.db")) ++shard_reads;
  }
};

}  // namespace shardvec::testing
