// VerifySnapshot on a folder and on the S3 test server: a good snapshot passes; a truncated shard, a
// missing shard, a flipped byte, a wrong row count and missing centroids are each named; --sample
// reads only the chosen shards' contents but checks every shard's presence and size.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "format/keys.h"
#include "format/manifest.h"
#include "read/snapshot_loader.h"
#include "shardvec/verify.h"
#include "shardvec/writer.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDim = 16;
constexpr int64_t kDbs = 4;

Result<BuildResult> WriteCluster(std::shared_ptr<ObjectStore> store, const std::filesystem::path& local_root,
                                 const std::string& run_id) {
  WriteConfig c;
  c.store = store->PrefixUrl();
  c.local_root = local_root.string();
  c.index.dim = kDim;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kCluster;
  c.sharding.num_dbs = kDbs;
  c.sharding.train_centroids = true;
  c.run_id = run_id;
  VectorRecordSource source(testing::MakeRecords(testing::ClusteredMatrix(800, kDim, kDbs, 5), false));
  return WriteSharded(c, source, store);
}

// The current snapshot's manifest key and parsed manifest.
std::pair<std::string, Manifest> CurrentManifest(std::shared_ptr<ObjectStore> store) {
  auto ref = LoadCurrentRef(*MakeObjectManifestStore(store));
  EXPECT_TRUE(ref.ok()) << ref.status().ToString();
  auto key = KeyFromUrl(store->PrefixUrl(), ref->ref);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  auto bytes = store->Get(*key);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto manifest = ParseManifest(*bytes);
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  return {*key, *manifest};
}

std::string ShardKeyOf(ObjectStore& store, const ManifestShard& shard) {
  return *KeyFromUrl(store.PrefixUrl(), *shard.db_url + "/shard.db");
}

// (check, db_id) of every problem, db_id -1 for snapshot-wide ones.
std::multiset<std::pair<std::string, int64_t>> Checks(const VerifyReport& r) {
  std::multiset<std::pair<std::string, int64_t>> out;
  for (const VerifyProblem& p : r.problems) out.emplace(p.check, p.db_id.value_or(-1));
  return out;
}

void DamageIsNamed(std::shared_ptr<ObjectStore> store, const std::filesystem::path& local_root) {
  ASSERT_TRUE(WriteCluster(store, local_root, "r1").ok());
  auto good = VerifySnapshot(store);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->ok()) << good->problems.front().message;
  EXPECT_EQ(good->run_id, "r1");
  EXPECT_EQ(good->num_dbs, kDbs);
  auto [manifest_key, manifest] = CurrentManifest(store);
  std::vector<ManifestShard> shards;
  int64_t bytes = 0;
  for (const ManifestShard& s : manifest.shards) {
    if (s.row_count > 0) shards.push_back(s);
    bytes += s.db_bytes;
  }
  ASSERT_EQ(shards.size(), static_cast<size_t>(kDbs));
  EXPECT_EQ(good->shards_checked, kDbs);
  EXPECT_EQ(good->shards_read, kDbs);
  EXPECT_EQ(good->digests_absent, 0);
  EXPECT_EQ(good->bytes_read, bytes);

  // Shard 0 truncated, shard 1 gone, shard 2 with one byte flipped (same size), shard 3's row count
  // wrong in the manifest, and the centroids gone.
  const std::string k0 = ShardKeyOf(*store, shards[0]);
  std::string b0 = *store->Get(k0, int64_t{1} << 30);
  ASSERT_TRUE(store->Put(k0, b0.substr(0, b0.size() / 2)).ok());
  ASSERT_TRUE(store->Delete(ShardKeyOf(*store, shards[1])).ok());
  const std::string k2 = ShardKeyOf(*store, shards[2]);
  std::string b2 = *store->Get(k2, int64_t{1} << 30);
  b2[b2.size() / 2] = static_cast<char>(b2[b2.size() / 2] ^ 0x5a);
  ASSERT_TRUE(store->Put(k2, b2).ok());
  for (ManifestShard& s : manifest.shards) {
    if (s.db_id == shards[3].db_id) s.row_count += 1;
  }
  ASSERT_TRUE(store->Put(manifest_key, *SerializeManifest(manifest)).ok());
  ASSERT_TRUE(store->Delete(VectorMetaKey("r1", "centroids.npy")).ok());

  auto bad = VerifySnapshot(store);
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_FALSE(bad->ok());
  const std::multiset<std::pair<std::string, int64_t>> expected = {
      {"routing", -1},         {"size", shards[0].db_id},      {"missing", shards[1].db_id},
      {"digest", shards[2].db_id}, {"row_count", shards[3].db_id}, {"row_count", shards[3].db_id}};
  EXPECT_EQ(Checks(*bad), expected);
  for (const VerifyProblem& p : bad->problems) {
    SCOPED_TRACE(p.message);
    if (p.check == "routing") {
      EXPECT_THAT(p.message, HasSubstr("centroids"));
      continue;
    }
    EXPECT_THAT(p.message, HasSubstr("shard " + std::to_string(*p.db_id)));
    EXPECT_THAT(p.object, HasSubstr("shard.db"));
    if (p.check == "size") {
      EXPECT_THAT(p.message, HasSubstr(std::to_string(b0.size() / 2) + " bytes"));
    }
    if (p.check == "row_count") {
      EXPECT_THAT(p.message, HasSubstr("the manifest records " + std::to_string(shards[3].row_count + 1)));
    }
  }

  // A sample reads one shard's contents; presence and size are still checked for all of them.
  auto sampled = VerifySnapshot(store, {.sample = 1, .seed = 7});
  ASSERT_TRUE(sampled.ok()) << sampled.status().ToString();
  EXPECT_EQ(sampled->seed, 7u);
  ASSERT_EQ(sampled->sampled.size(), 1u);
  EXPECT_EQ(sampled->shards_checked, kDbs);
  EXPECT_LE(sampled->shards_read, 1);
  std::multiset<std::pair<std::string, int64_t>> metadata = {{"routing", -1}, {"size", shards[0].db_id},
                                                             {"missing", shards[1].db_id}};
  if (sampled->sampled[0] == shards[2].db_id) metadata.emplace("digest", shards[2].db_id);
  if (sampled->sampled[0] == shards[3].db_id) {
    metadata.emplace("row_count", shards[3].db_id);
    metadata.emplace("row_count", shards[3].db_id);
  }
  EXPECT_EQ(Checks(*sampled), metadata);
}

class VerifyTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
};

TEST_F(VerifyTest, AGoodFolderSnapshotPassesAndEachDamageIsNamed) {
  auto store = OpenStore((tmp_ / "store").string());
  ASSERT_TRUE(store.ok());
  DamageIsNamed(*store, tmp_ / "build");
}

TEST_F(VerifyTest, BadOptionsAndNoSnapshotAreErrors) {
  auto store = OpenStore((tmp_ / "store").string());
  ASSERT_TRUE(store.ok());
  auto none = VerifySnapshot(*store);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteCluster(*store, tmp_ / "build", "r1").ok());
  auto zero = VerifySnapshot(*store, {.sample = 0});
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("sample must be >= 1 shard (got 0)"));
  auto other = VerifySnapshot(*store, {.snapshot = RollbackTarget{.run_id = "nope"}});
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.status().message(), HasSubstr("nope"));
}

TEST_F(VerifyTest, AManifestThatDoesNotParseIsAProblem) {
  auto store = OpenStore((tmp_ / "store").string());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(WriteCluster(*store, tmp_ / "build", "r1").ok());
  auto [key, manifest] = CurrentManifest(*store);
  ASSERT_TRUE((*store)->Put(key, "not a manifest").ok());
  auto r = VerifySnapshot(*store);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0].check, "manifest");
}

// The S3 test server's suite (run with the server: --gtest_filter='S3*').
class S3VerifyTest : public VerifyTest {};

TEST_F(S3VerifyTest, AGoodS3SnapshotPassesAndEachDamageIsNamed) {
  auto store = testing::OpenS3TestStore(testing::UniqueS3Prefix("verify"));
  ASSERT_TRUE(store);
  DamageIsNamed(store, tmp_ / "build");
}

}  // namespace
}  // namespace shardvec
