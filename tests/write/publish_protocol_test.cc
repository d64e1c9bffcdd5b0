// The publish protocol against hostile reuse and races, on a folder and on the S3 test server:
// a reused run id never touches another run's objects, rollback racing cleanup never leaves _CURRENT
// on deleted objects, routing artifacts are digest-covered and finite, and cleanup removes the
// leftovers of killed processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/digest.h"
#include "format/current_pointer.h"
#include "format/manifest.h"
#include "shardvec/distributed.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kDim = 8;

// Shared by the folder and the S3 suites: only how the store is opened differs.
class ProtocolTestBase : public ::testing::Test {
 protected:
  virtual std::shared_ptr<ObjectStore> NewStore(const std::string& name) = 0;

  WriteConfig Config(const std::shared_ptr<ObjectStore>& store, const std::string& run_id) {
    WriteConfig c;
    c.store = store->PrefixUrl();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 2;
    c.run_id = run_id;
    return c;
  }

  Result<BuildResult> Write(const std::shared_ptr<ObjectStore>& store, const std::string& run_id,
                            const Matrix& data, const std::string& local_root = "build") {
    WriteConfig c = Config(store, run_id);
    c.local_root = (tmp_ / local_root).string();
    VectorRecordSource source(testing::MakeRecords(data, false));
    return WriteSharded(c, source, store);
  }

  // Every object under the run folders, with its bytes.
  std::map<std::string, std::string> RunObjects(ObjectStore& store) {
    std::map<std::string, std::string> out;
    for (const char* prefix : {"shards/", "vector_meta/"}) {
      auto listed = store.List(prefix);
      EXPECT_TRUE(listed.ok()) << listed.status().ToString();
      if (!listed.ok()) continue;
      for (const ObjectInfo& o : listed->objects) out[o.key] = *store.Get(o.key);
    }
    return out;
  }

  // A cold reader (fresh cache) opens the current snapshot, downloads and verifies every shard.
  Status ColdRead(const std::shared_ptr<ObjectStore>& store) {
    ReaderOptions o;
    o.store = store->PrefixUrl();
    o.cache_dir = (tmp_ / ("cache" + std::to_string(++readers_))).string();
    auto reader = ShardedVectorReader::Open(o, store);
    if (!reader.ok()) return reader.status();
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1};
    auto hits = (*reader)->Search(std::span<const float>(queries_.row(0), kDim), 5, all);
    return hits.ok() ? Status::OK() : hits.status();
  }

  // _CURRENT names a manifest whose every shard object exists with the digest the manifest records.
  void ExpectCurrentWhole(ObjectStore& store, const std::string& context) {
    auto pointer = ParseCurrentPointer(*store.Get("_CURRENT"));
    ASSERT_TRUE(pointer.ok()) << context;
    const std::string prefix = store.PrefixUrl() + "/";
    auto manifest = ParseManifest(*store.Get(pointer->manifest_ref.substr(prefix.size())));
    ASSERT_TRUE(manifest.ok()) << context;
    const auto& digests = manifest->custom["shardvec"]["shard_digests"];
    for (const ManifestShard& shard : manifest->shards) {
      const std::string key = shard.db_url->substr(prefix.size()) + "/shard.db";
      auto bytes = store.Get(key);
      ASSERT_TRUE(bytes.ok()) << context << ": _CURRENT names " << pointer->run_id << " whose " << key
                              << " is gone: " << bytes.status().ToString();
      EXPECT_EQ(Xxh3Digest(*bytes), digests[std::to_string(shard.db_id)].get<std::string>()) << context << key;
    }
  }

  // A run id reused by a second build: refused before any upload, naming the run id and what exists;
  // the live snapshot's objects are byte-identical afterwards and a cold reader still verifies them.
  void CheckRunIdReuseRefused() {
    auto store = NewStore("reuse");
    ASSERT_TRUE(Write(store, "fixed", data1_).ok());
    const auto before = RunObjects(*store);
    const std::string current = *store->Get("_CURRENT");

    auto again = Write(store, "fixed", data2_);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument) << again.status().ToString();
    EXPECT_THAT(again.status().message(), HasSubstr("run_id 'fixed' is already used"));

    // A store written by a build that claimed nothing: its manifest and shards still refuse the id.
    ASSERT_TRUE(store->Delete("shards/run_id=fixed/_RUN").ok());
    auto unclaimed = Write(store, "fixed", data2_);
    ASSERT_FALSE(unclaimed.ok());
    EXPECT_THAT(unclaimed.status().message(), HasSubstr("run_id 'fixed' is already used"));
    EXPECT_THAT(unclaimed.status().message(), HasSubstr("run_id=fixed"));  // names the object found

    // The distributed driver follows the same rule.
    auto distributed = DistributedWrite::Begin(Config(store, "fixed"), "vector-test", store);
    ASSERT_FALSE(distributed.ok());
    EXPECT_THAT(distributed.status().message(), HasSubstr("run_id 'fixed' is already used"));

    auto after = RunObjects(*store);
    for (const auto& [key, bytes] : before) {
      if (key == "shards/run_id=fixed/_RUN") continue;  // the claim this test removed
      ASSERT_TRUE(after.count(key)) << key << " was deleted";
      EXPECT_EQ(after[key], bytes) << key << " was overwritten";
    }
    EXPECT_EQ(*store->Get("_CURRENT"), current);
    EXPECT_TRUE(ColdRead(store).ok());
  }

  // Even without the run id check, an upload never replaces an object: PutFile and the routing
  // artifacts' put are put-if-absent.
  void CheckUploadsNeverReplace() {
    auto store = NewStore("no-replace");
    ASSERT_TRUE(Write(store, "live", data1_).ok());
    const std::string key = "shards/run_id=live/db=00000/attempt=00/shard.db";
    const std::string before = *store->Get(key);
    testing::WriteText(tmp_ / "other.db", "other bytes");
    Status st = store->PutFile(key, tmp_ / "other.db");
    EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.ToString();
    EXPECT_EQ(*store->Get(key), before);
    EXPECT_TRUE(ColdRead(store).ok());
  }

  // Two builds racing with one run id: exactly one wins; the winner's snapshot verifies.
  void CheckRunIdRace() {
    auto store = NewStore("twin");
    std::atomic<bool> go{false};
    Result<BuildResult> results[2] = {Status::Internal("not run"), Status::Internal("not run")};
    std::thread a([&] {
      while (!go) std::this_thread::yield();
      results[0] = Write(store, "twin", data1_, "build-a");
    });
    std::thread b([&] {
      while (!go) std::this_thread::yield();
      results[1] = Write(store, "twin", data2_, "build-b");
    });
    go = true;
    a.join();
    b.join();
    ASSERT_EQ(int{results[0].ok()} + int{results[1].ok()}, 1)
        << results[0].status().ToString() << " / " << results[1].status().ToString();
    ExpectCurrentWhole(*store, "twin");
    EXPECT_TRUE(ColdRead(store).ok());
  }

  // rollback and cleanup --keep-last 1 started together, `rounds` times: after each round _CURRENT
  // names a snapshot whose every shard exists and verifies.
  void CheckRollbackCleanupRace(int rounds) {
    auto store = NewStore("race");
    int rollbacks_won = 0, cleanups_won = 0;
    for (int round = 0; round < rounds; ++round) {
      const std::string old_run = "old" + std::to_string(round), new_run = "new" + std::to_string(round);
      for (const std::string& run : {old_run, new_run}) {
        auto written = Write(store, run, run == old_run ? data1_ : data2_);
        ASSERT_TRUE(written.ok()) << "round " << round << ": " << written.status().ToString();
      }
      auto target = FindManifest(*store, {.run_id = old_run});
      ASSERT_TRUE(target.ok());
      std::atomic<int> ready{0};
      Result<std::string> rolled = Status::Internal("not run");
      Result<CleanupReport> cleaned = Status::Internal("not run");
      std::thread rollback([&] {
        ++ready;
        while (ready < 2) std::this_thread::yield();
        rolled = Rollback(*store, *target);
      });
      std::thread cleanup([&] {
        ++ready;
        while (ready < 2) std::this_thread::yield();
        CleanupOptions options;
        options.keep_last = 1;
        cleaned = Cleanup(*store, options);
      });
      rollback.join();
      cleanup.join();
      // Each may lose (a Conflict, or NotFound once the target is gone), never with another error.
      if (!rolled.ok()) {
        EXPECT_THAT(rolled.status().code(), ::testing::AnyOf(StatusCode::kConflict, StatusCode::kNotFound))
            << rolled.status().ToString();
      }
      if (!cleaned.ok()) EXPECT_EQ(cleaned.status().code(), StatusCode::kConflict) << cleaned.status().ToString();
      rollbacks_won += rolled.ok();
      cleanups_won += cleaned.ok() && !cleaned->removed_runs.empty();
      ExpectCurrentWhole(*store, "round " + std::to_string(round));
      if (HasFatalFailure()) return;
    }
    ASSERT_TRUE(ColdRead(store).ok());
    // Both sides must really have run, or the loop proves nothing.
    EXPECT_GT(rollbacks_won + cleanups_won, 0);
  }

  testing::TempDir tmp_;
  int readers_ = 0;
  Matrix data1_ = testing::RandomMatrix(60, kDim, 21);
  Matrix data2_ = testing::RandomMatrix(60, kDim, 22);
  Matrix queries_ = testing::RandomMatrix(2, kDim, 23);
};

class PublishProtocolTest : public ProtocolTestBase {
 protected:
  std::shared_ptr<ObjectStore> NewStore(const std::string& name) override {
    auto store = OpenStore((tmp_ / ("store-" + name)).string());
    EXPECT_TRUE(store.ok());
    return *store;
  }
  fs::path Root(const std::string& name) const { return tmp_.path() / ("store-" + name); }
};

class S3PublishProtocolTest : public ProtocolTestBase {
 protected:
  std::shared_ptr<ObjectStore> NewStore(const std::string& name) override {
    return testing::OpenS3TestStore(testing::UniqueS3Prefix("protocol-" + name));
  }
};

TEST_F(PublishProtocolTest, AReusedRunIdIsRefusedBeforeAnyUploadAndTheLiveSnapshotStaysWhole) {
  CheckRunIdReuseRefused();
}
TEST_F(S3PublishProtocolTest, AReusedRunIdIsRefusedBeforeAnyUploadAndTheLiveSnapshotStaysWhole) {
  CheckRunIdReuseRefused();
}
TEST_F(PublishProtocolTest, AShardUploadNeverReplacesAnExistingObject) { CheckUploadsNeverReplace(); }
TEST_F(S3PublishProtocolTest, AShardUploadNeverReplacesAnExistingObject) { CheckUploadsNeverReplace(); }
TEST_F(PublishProtocolTest, TwoBuildsRacingWithOneRunIdExactlyOneWins) { CheckRunIdRace(); }
TEST_F(S3PublishProtocolTest, TwoBuildsRacingWithOneRunIdExactlyOneWins) { CheckRunIdRace(); }
TEST_F(PublishProtocolTest, RollbackRacingCleanupNeverLeavesCurrentOnDeletedShards50Rounds) {
  CheckRollbackCleanupRace(50);
}
TEST_F(S3PublishProtocolTest, RollbackRacingCleanupNeverLeavesCurrentOnDeletedShards30Rounds) {
  CheckRollbackCleanupRace(30);
}

// ---- routing artifacts -----------------------------------------------------------------------

class ArtifactDigestTest : public PublishProtocolTest {
 protected:
  // A CLUSTER snapshot with the user's centroids; returns the centroids file in the store.
  fs::path WriteCluster() {
    store_ = NewStore("cluster");
    WriteConfig c = Config(store_, "clustered");
    c.sharding.strategy = Strategy::kCluster;
    c.sharding.num_dbs.reset();
    c.sharding.centroids = testing::RandomMatrix(2, kDim, 31);
    VectorRecordSource source(testing::MakeRecords(data1_, false));
    auto built = WriteSharded(c, source, store_);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return Root("cluster") / "vector_meta/run_id=clustered/centroids.npy";
  }
  // Rewrites the manifest as a writer without artifact digests (an older shardvec) would have.
  void DropArtifactDigests() {
    const std::string prefix = store_->PrefixUrl() + "/";
    auto pointer = ParseCurrentPointer(*store_->Get("_CURRENT"));
    const fs::path file = Root("cluster") / pointer->manifest_ref.substr(prefix.size());
    auto manifest = ParseManifest(testing::ReadText(file));
    ASSERT_TRUE(manifest.ok());
    ASSERT_TRUE(manifest->custom["shardvec"].contains("artifact_digests"));
    manifest->custom["shardvec"].erase("artifact_digests");
    testing::WriteText(file, *SerializeManifest(*manifest));
  }
  std::shared_ptr<ObjectStore> store_;
};

TEST_F(ArtifactDigestTest, OneFlippedBitInCentroidsIsAClearErrorAtOpen) {
  const fs::path centroids = WriteCluster();
  ASSERT_TRUE(ColdRead(store_).ok());
  std::string bytes = testing::ReadText(centroids);
  bytes[bytes.size() - 3] ^= 0x01;  // one bit of one float's mantissa
  testing::WriteText(centroids, bytes);
  Status st = ColdRead(store_);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("centroids artifact"));
  EXPECT_THAT(st.message(), HasSubstr("digest"));
}

TEST_F(ArtifactDigestTest, ASnapshotWithoutArtifactDigestsStillLoads) {
  WriteCluster();
  DropArtifactDigests();
  EXPECT_TRUE(ColdRead(store_).ok());
}

TEST_F(ArtifactDigestTest, NonFiniteCentroidsAreRefusedAtBuildAndAtRead) {
  store_ = NewStore("nan");
  WriteConfig c = Config(store_, "nan");
  c.sharding.strategy = Strategy::kCluster;
  c.sharding.num_dbs.reset();
  c.sharding.centroids = testing::RandomMatrix(2, kDim, 31);
  c.sharding.centroids->data[5] = std::numeric_limits<float>::quiet_NaN();
  VectorRecordSource source(testing::MakeRecords(data1_, false));
  auto built = WriteSharded(c, source, store_);
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(built.status().message(), HasSubstr("centroids[0][5] is nan"));

  // A stored file with a NaN (and no digest to catch it first) is refused when a reader opens it.
  const fs::path centroids = WriteCluster();
  DropArtifactDigests();
  Matrix bad = testing::RandomMatrix(2, kDim, 31);
  bad.data[9] = std::numeric_limits<float>::infinity();
  testing::WriteNpy(centroids, bad);
  Status st = ColdRead(store_);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("[1][1] is inf (values must be finite)"));
}

// ---- leftovers -------------------------------------------------------------------------------

TEST_F(PublishProtocolTest, CleanupRemovesStaleTempFilesAndKeepsFreshOnes) {
  auto store = NewStore("leftovers");
  ASSERT_TRUE(Write(store, "live", data1_).ok());
  const fs::path root = Root("leftovers");
  const std::vector<std::string> stale = {"shards/run_id=live/db=00000/attempt=00/.shard.db.tmp.0123456789ab",
                                          "manifests/._CURRENT.tmp.abcdefabcdef", "._CURRENT.tmp.aaaaaaaaaaaa"};
  const std::vector<std::string> fresh = {"shards/run_id=live/db=00001/attempt=00/.shard.db.tmp.bbbbbbbbbbbb",
                                          "._CURRENT.tmp.cccccccccccc"};
  const auto two_hours_ago = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (const std::string& key : stale) {
    testing::WriteText(root / key, "half an upload");
    fs::last_write_time(root / key, two_hours_ago);
  }
  for (const std::string& key : fresh) testing::WriteText(root / key, "an upload in progress");
  testing::WriteText(root / "notes.tmp.0123456789ab", "not a staged name: not ours to remove");
  fs::last_write_time(root / "notes.tmp.0123456789ab", two_hours_ago);

  CleanupOptions dry;
  dry.dry_run = true;
  auto planned = Cleanup(*store, dry);
  ASSERT_TRUE(planned.ok()) << planned.status().ToString();
  std::vector<std::string> expected = stale;
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> reported = planned->leftover_keys;
  std::sort(reported.begin(), reported.end());
  EXPECT_EQ(reported, expected);
  for (const std::string& key : stale) EXPECT_TRUE(fs::exists(root / key)) << "a dry run deleted " << key;

  auto done = Cleanup(*store, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->leftover_keys.size(), stale.size());
  for (const std::string& key : stale) EXPECT_FALSE(fs::exists(root / key)) << key;
  for (const std::string& key : fresh) EXPECT_TRUE(fs::exists(root / key)) << key;
  EXPECT_TRUE(fs::exists(root / "notes.tmp.0123456789ab"));
  EXPECT_TRUE(ColdRead(store).ok());
}

// A rollback intent or a cleanup tombstone left by a killed process: the intent is removed after the
// grace period; the tombstone keeps refusing rollbacks to what it names while any of it is left.
TEST_F(PublishProtocolTest, MarkersOfKilledProcessesAreHonouredThenRemoved) {
  auto store = NewStore("markers");
  ASSERT_TRUE(Write(store, "a", data1_).ok());
  ASSERT_TRUE(Write(store, "b", data2_).ok());
  const std::string a_shard = "shards/run_id=a/db=00000/attempt=00/shard.db";
  const std::string old = "2020-01-01T00:00:00.000000Z_0123";
  ASSERT_TRUE(store->Put("_shardvec/cleanups/" + old, nlohmann::json{{"keys", {a_shard}}}.dump()).ok());
  ASSERT_TRUE(store->Put("_shardvec/rollbacks/" + old, nlohmann::json{{"keys", {"vector_meta/x"}}}.dump()).ok());

  auto target = FindManifest(*store, {.run_id = "a"});
  ASSERT_TRUE(target.ok());
  auto refused = Rollback(*store, *target);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kConflict);
  EXPECT_THAT(refused.status().message(), HasSubstr(a_shard));

  // a's shards still exist, so the tombstone stays; the stale intent goes.
  auto report = Cleanup(*store, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->leftover_keys, std::vector<std::string>{"_shardvec/rollbacks/" + old});
  EXPECT_TRUE(store->Head("_shardvec/cleanups/" + old).ok());
  EXPECT_EQ(store->Head("_shardvec/rollbacks/" + old).status().code(), StatusCode::kNotFound);

  // Once a's run is gone, the tombstone goes too.
  CleanupOptions keep_one;
  keep_one.keep_last = 1;
  ASSERT_TRUE(Cleanup(*store, keep_one).ok());
  auto last = Cleanup(*store, {});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->leftover_keys, std::vector<std::string>{"_shardvec/cleanups/" + old});
  EXPECT_EQ(store->Head("_shardvec/cleanups/" + old).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(Root("markers") / "_shardvec"));
}

}  // namespace
}  // namespace shardvec
