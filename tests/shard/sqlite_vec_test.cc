// vec0_path: the sqlite-vec extension file as a runtime option of the writer and the reader, the
// compiled-in path only its default.
#include "shard/sqlite_vec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

WriteConfig SmallWrite(const fs::path& store) {
  WriteConfig c;
  c.store = store.string();
  c.local_root = (store.parent_path() / "lr").string();
  c.index.dim = 4;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = 2;
  return c;
}

TEST(SqliteVecTest, AVec0PathThatDoesNotExistIsRefusedNamingTheField) {
  testing::TempDir tmp;
  const std::string missing = (tmp / "nowhere" / "vec0.so").string();
  WriteConfig config = SmallWrite(tmp / "store");
  config.vec0_path = missing;
  VectorRecordSource source(testing::MakeRecords(testing::RandomMatrix(10, 4, 1), false));
  auto written = WriteSharded(config, source);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(written.status().message(), HasSubstr("vec0_path='" + missing + "': no such file"));
  EXPECT_FALSE(fs::exists(tmp / "store" / "_CURRENT"));

  ReaderOptions options;
  options.store = (tmp / "store").string();
  options.vec0_path = missing;
  auto reader = ShardedVectorReader::Open(options);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(reader.status().message(), HasSubstr("vec0_path='" + missing + "': no such file"));
}

TEST(SqliteVecTest, TheWriterAndReaderLoadTheVec0PathGiven) {
  testing::TempDir tmp;
  WriteConfig config = SmallWrite(tmp / "store");
  config.vec0_path = SHARDVEC_VEC0_PATH;
  VectorRecordSource source(testing::MakeRecords(testing::RandomMatrix(40, 4, 2), false));
  auto written = WriteSharded(config, source);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_TRUE(fs::equivalent(SqliteVecPath(), SHARDVEC_VEC0_PATH));

  ReaderOptions options;
  options.store = config.store;
  options.cache_dir = (tmp / "cache").string();
  options.vec0_path = SHARDVEC_VEC0_PATH;
  auto reader = ShardedVectorReader::Open(options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const std::vector<float> query = {0.5f, 0.25f, -1.0f, 2.0f};
  auto found = (*reader)->Search(query, 3, {.shard_ids = std::vector<int64_t>{0, 1}});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->results.size(), 3u);
}

TEST(SqliteVecTest, AnotherVec0FileThanTheOneLoadedIsRefused) {
  ASSERT_TRUE(EnsureSqliteVecLoaded().ok());
  testing::TempDir tmp;
  const fs::path copy = tmp / "vec0-copy.so";
  fs::copy_file(SqliteVecPath(), copy);
  const Status st = UseSqliteVec("vec0_path", copy.string());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("vec0_path='" + copy.string() + "': this process already loaded sqlite-vec"));
  EXPECT_TRUE(UseSqliteVec("vec0_path", SqliteVecPath()).ok()) << "the loaded file itself is fine";
}

}  // namespace
}  // namespace shardvec
