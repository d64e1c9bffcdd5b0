// A store moved or copied as a tree (`cp -r`, `aws s3 sync`) keeps manifests and a _CURRENT whose
// URLs name the old place. The reader maps URLs under the prefix a manifest records (its s3_prefix)
// into the store being read; a URL under neither that prefix nor the store is still refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "shardvec/admin.h"
#include "shardvec/reader.h"
#include "support/relocation_support.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class MovedStoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<ObjectStore> Folder(const std::string& name) { return testing::OpenFolderStore(tmp_ / name); }
  // Runs R1 then R2 written into tmp/original, whose answers are returned; then the folder is moved
  // to tmp/<to> (nothing is left at the old place).
  testing::Answers WriteAndMove(const std::string& to) {
    auto original = Folder("original");
    testing::WriteRelocationRun(original, "R1", tmp_ / "build");
    testing::WriteRelocationRun(original, "R2", tmp_ / "build");
    testing::Answers answers = testing::SearchAnswers(original, tmp_ / "cache-original");
    fs::rename(tmp_ / "original", tmp_ / to);
    return answers;
  }
  Result<std::unique_ptr<ShardedVectorReader>> OpenReader(const std::string& name) {
    ReaderOptions o;
    o.store = (tmp_ / name).string();
    o.cache_dir = (tmp_ / ("cache-" + name)).string();
    o.max_fallback_attempts = 0;
    return ShardedVectorReader::Open(o);
  }
  fs::path CurrentManifestFile(const std::string& name) {
    auto store = Folder(name);
    return tmp_ / name / testing::ManifestKeys(*store).back();
  }
  testing::TempDir tmp_;
};

TEST_F(MovedStoreTest, AFolderStoreMovedElsewhereReadsTheSameAnswers) {
  const testing::Answers before = WriteAndMove("moved");
  ASSERT_FALSE(before.empty());
  auto moved = Folder("moved");
  EXPECT_EQ(testing::SearchAnswers(moved, tmp_ / "cache-moved"), before);
  // History, rollback and cleanup work on the moved store too.
  auto history = ListSnapshots(*moved);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_TRUE((*history)[0].current);
  EXPECT_EQ((*history)[0].run_id, "R2");
  auto rolled = RollbackSnapshot(*moved, RollbackTarget{.run_id = "R1"});
  ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
  auto cleaned = Cleanup(*moved, CleanupOptions{.keep_last = 1});
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  // keep_last 1 keeps R2 (the newest) and R1 (current); nothing the kept snapshots read goes.
  EXPECT_EQ(cleaned->removed_runs, std::vector<std::string>{});
  EXPECT_EQ(cleaned->deleted_keys, std::vector<std::string>{});
  auto r1 = OpenReader("moved");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ((*r1)->Info().run_id, "R1");
}

TEST_F(MovedStoreTest, CleanupOfAMovedStoreKeepsEveryObjectTheKeptSnapshotReads) {
  const testing::Answers before = WriteAndMove("moved");
  auto moved = Folder("moved");
  auto cleaned = Cleanup(*moved, CleanupOptions{.keep_last = 1});
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_EQ(cleaned->removed_runs, std::vector<std::string>{"R1"});
  for (const std::string& key : cleaned->deleted_keys) EXPECT_THAT(key, HasSubstr("run_id=R1/"));
  EXPECT_EQ(testing::SearchAnswers(moved, tmp_ / "cache-after"), before);
}

class S3MovedStoreTest : public MovedStoreTest {};

TEST_F(S3MovedStoreTest, AFolderStoreUploadedToS3AsATreeReadsTheSameAnswers) {
  const testing::Answers before = WriteAndMove("moved");
  auto s3 = testing::OpenS3TestStore(testing::UniqueS3Prefix("moved-tree"));
  ASSERT_TRUE(s3);
  testing::UploadFolder(tmp_ / "moved", *s3);
  EXPECT_EQ(testing::SearchAnswers(s3, tmp_ / "cache-s3"), before);
}

TEST_F(MovedStoreTest, AUrlOutsideTheStoreAndTheRecordedPrefixIsStillRefused) {
  WriteAndMove("moved");
  fs::copy(tmp_ / "moved", tmp_ / "third", fs::copy_options::recursive);
  const fs::path manifest = CurrentManifestFile("moved");
  const std::string third = "file://" + (tmp_ / "third").string();
  auto rows = [&] {
    sqlite3* db = testing::OpenWithVec0(manifest);
    auto out = testing::QueryRows(db, "SELECT db_url FROM shards ORDER BY db_id LIMIT 1");
    sqlite3_close(db);
    return out;
  }();
  ASSERT_EQ(rows.size(), 1u);
  const std::string old_url = rows[0][0];
  const std::string bad = third + old_url.substr(old_url.find("/shards/"));
  testing::ExecSql(manifest, "UPDATE shards SET db_url = '" + bad + "' WHERE db_url = '" + old_url + "'");
  auto reader = OpenReader("moved");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(reader.status().message(), HasSubstr("db_url '" + bad + "'"));
  EXPECT_THAT(reader.status().message(), HasSubstr("'" + bad + "/shard.db' is outside the store"));
  EXPECT_THAT(reader.status().message(), HasSubstr("the snapshot was written under"));
  EXPECT_FALSE(fs::exists(tmp_ / "cache-moved" / "shards")) << "nothing may be downloaded";
}

TEST_F(MovedStoreTest, APointerUnderAPrefixTheManifestDoesNotRecordIsRefused) {
  WriteAndMove("moved");
  // The manifest now claims another origin than the one the pointer's URL names.
  testing::ExecSql(CurrentManifestFile("moved"), "UPDATE build_meta SET s3_prefix = 'file:///somewhere/else'");
  auto reader = OpenReader("moved");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(reader.status().message(), HasSubstr("manifest_ref: URL 'file://" + (tmp_ / "original").string()));
  EXPECT_THAT(reader.status().message(), HasSubstr("is outside the store"));
}

}  // namespace
}  // namespace shardvec
