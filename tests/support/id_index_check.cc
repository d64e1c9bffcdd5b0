#include "support/id_index_check.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/digest.h"
#include "format/keys.h"
#include "support/test_util.h"
#include "write/id_index.h"

namespace shardvec::testing {

int64_t ExpectIdIndexMatchesShards(ObjectStore& store, const Manifest& manifest, const std::filesystem::path& scratch) {
  const nlohmann::json& custom = manifest.custom;
  if (!custom.contains("shardvec") || !custom["shardvec"].contains("id_index")) {
    ADD_FAILURE() << "the manifest records no id index: " << custom.dump();
    return 0;
  }
  const nlohmann::json& meta = custom["shardvec"]["id_index"];
  EXPECT_EQ(meta["format"], 1);
  auto key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest.s3_prefix, meta["ref"].get<std::string>());
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  if (!key.ok()) return 0;
  EXPECT_EQ(*key, VectorMetaKey(manifest.run_id, kIdIndexFileName));
  auto bytes = store.Get(*key, int64_t{1} << 30);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (!bytes.ok()) return 0;
  EXPECT_EQ(meta["digest"], Xxh3Digest(*bytes));
  auto index = IdIndex::Parse(*bytes, manifest.num_dbs, *key);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  if (!index.ok()) return 0;
  EXPECT_EQ(meta["entries"].get<int64_t>(), static_cast<int64_t>(index->entries().size()));

  // Every row of every shard, read with plain SQLite: its id-map text hashed, and its shard.
  std::vector<IdIndexEntry> want;
  std::filesystem::create_directories(scratch);
  for (const ManifestShard& shard : manifest.shards) {
    if (!shard.db_url) continue;
    auto shard_key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest.s3_prefix, *shard.db_url + "/shard.db");
    EXPECT_TRUE(shard_key.ok()) << shard_key.status().ToString();
    const std::filesystem::path file = scratch / fmt::format("id-index-check-db{}.db", shard.db_id);
    std::filesystem::remove(file);
    EXPECT_TRUE(store.GetToFile(*shard_key, file, int64_t{1} << 32).ok());
    sqlite3* db = OpenWithVec0(file);
    for (const auto& row : QueryRows(db, "SELECT original_id FROM vec_id_map")) {
      want.push_back(IdIndexEntry{Xxh3_64(row[0]), static_cast<uint32_t>(shard.db_id)});
      const std::vector<int64_t> shards = index->ShardsOf(want.back().hash);
      EXPECT_EQ(shards, std::vector<int64_t>{shard.db_id}) << "id " << row[0];
    }
    sqlite3_close(db);
    std::filesystem::remove(file);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(index->entries().size(), want.size());
  EXPECT_TRUE(index->entries() == want) << "the index lists other (hash, db_id) pairs than the shards hold";
  return static_cast<int64_t>(want.size());
}

}  // namespace shardvec::testing
