// Snapshots someone else may have tampered with: manifests whose URLs leave the store, truncated or
// hostile manifests, shards whose schema hides SQL, and the permissions of what the reader keeps locally.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

class HostileSnapshotTest : public ::testing::Test {
 protected:
  std::string Store() const { return (tmp_ / "store").string(); }
  // Two l2 shards of `dim`-d vectors in this test's store.
  WriteConfig Config(int64_t dim, Strategy strategy) const {
    WriteConfig c;
    c.store = Store();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = dim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = strategy;
    c.sharding.num_dbs = 2;
    return c;
  }
  // Two LSH shards of 4-d vectors; returns the build result.
  BuildResult Write() {
    const WriteConfig c = Config(4, Strategy::kLsh);
    VectorRecordSource source(testing::MakeRecords(testing::RandomMatrix(40, 4, 3), false));
    auto built = WriteSharded(c, source);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return *built;
  }
  Result<std::unique_ptr<ShardedVectorReader>> Open() {
    ReaderOptions o;
    o.store = Store();
    o.cache_dir = (tmp_ / "cache").string();
    o.max_fallback_attempts = 0;
    return ShardedVectorReader::Open(o);
  }
  fs::path ManifestFile(const BuildResult& b) const { return b.manifest_ref.substr(7); }
  testing::TempDir tmp_;
};

TEST_F(HostileSnapshotTest, ShardUrlOutsideTheStoreIsCorruptionNamingShardAndUrlBeforeAnyDownload) {
  const BuildResult built = Write();
  const std::string good = built.shards.at(0).db_url;  // file:///…/store/shards/run_id=…/db=00000/attempt=00
  const int64_t db_id = built.shards.at(0).db_id;
  const std::string tail = good.substr(good.find("/shards/"));
  // A copy of the store elsewhere: the old layout-folder fallback would have served it silently.
  fs::create_directories(tmp_ / "elsewhere");
  fs::copy(tmp_ / "store", tmp_ / "elsewhere" / "store", fs::copy_options::recursive);
  const std::string store_url = "file://" + Store();
  const std::vector<std::string> bad_urls = {
      "file://" + (tmp_ / "elsewhere" / "store").string() + tail,                   // another folder
      store_url + "/shards/../../elsewhere/store" + tail,                             // '..' segments
      store_url + "/shards/./run_id=x/db=00000/attempt=00",                          // '.' segment
      "s3://other-bucket/prefix" + tail,                                             // another scheme
      "http://127.0.0.1:1/prefix" + tail,
      store_url + "x" + tail,                                                        // a sibling prefix
  };
  for (const std::string& url : bad_urls) {
    testing::ExecSql(ManifestFile(built),
                     "UPDATE shards SET db_url = '" + url + "' WHERE db_id = " + std::to_string(db_id));
    auto reader = Open();
    ASSERT_FALSE(reader.ok()) << url;
    EXPECT_EQ(reader.status().code(), StatusCode::kCorruption) << reader.status().ToString();
    EXPECT_NE(reader.status().message().find("shard db_id " + std::to_string(db_id)), std::string::npos)
        << reader.status().message();
    EXPECT_NE(reader.status().message().find("'" + url + "'"), std::string::npos) << reader.status().message();
    EXPECT_FALSE(fs::exists(tmp_ / "cache")) << "nothing may be downloaded: " << url;
  }
}

TEST_F(HostileSnapshotTest, PointerToAManifestOutsideTheStoreIsCorruption) {
  const BuildResult built = Write();
  const std::string before = testing::ReadText(tmp_ / "store/_CURRENT");
  const std::string ref = built.manifest_ref;
  const std::string outside = "file://" + Store() + "/manifests/../../" + ref.substr(ref.find("manifests/"));
  std::string pointer = before;
  pointer.replace(pointer.find(ref), ref.size(), outside);
  testing::WriteText(tmp_ / "store/_CURRENT", pointer);
  auto reader = Open();
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reader.status().message().find("manifest_ref: URL '" + outside + "'"), std::string::npos)
      << reader.status().message();
}

TEST_F(HostileSnapshotTest, TruncatedManifestIsCorruptionNamingTheManifest) {
  const BuildResult built = Write();
  const std::string bytes = testing::ReadText(ManifestFile(built));
  for (size_t keep : {size_t{10}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    testing::WriteText(ManifestFile(built), bytes.substr(0, keep));
    auto reader = Open();
    ASSERT_FALSE(reader.ok()) << keep << " of " << bytes.size();
    EXPECT_EQ(reader.status().code(), StatusCode::kCorruption) << keep << ": " << reader.status().ToString();
    EXPECT_NE(reader.status().message().find("manifest"), std::string::npos) << reader.status().message();
  }
}

TEST_F(HostileSnapshotTest, ManifestTablesBehindAViewAreNotRead) {
  const BuildResult built = Write();
  testing::ExecSql(ManifestFile(built),
                   "ALTER TABLE shards RENAME TO real_shards; CREATE VIEW shards AS SELECT * FROM real_shards;");
  auto reader = Open();
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reader.status().message().find("table shards is unreadable"), std::string::npos)
      << reader.status().message();
  EXPECT_NE(reader.status().message().find("prohibited"), std::string::npos) << reader.status().message();
}

TEST_F(HostileSnapshotTest, ShardWhoseTablesAreViewsIsCorruptionAndItsSqlNeverRuns) {
  const fs::path file = tmp_ / "shard.db";
  {
    auto builder = ShardBuilder::Create(file, {4, Metric::kL2});
    ASSERT_TRUE(builder.ok());
    const float v[4] = {1, 2, 3, 4};
    ASSERT_TRUE((*builder)->Add(RecordId(int64_t{7}), v, std::string("{\"a\": 1}")).ok());
    ASSERT_TRUE((*builder)->Seal().ok());
  }
  // The view would answer every payload lookup with the file's own SQL.
  testing::ExecSql(file,
                   "ALTER TABLE vec_payloads RENAME TO real_payloads;"
                   "CREATE VIEW vec_payloads AS SELECT rowid, json_object('evil', 1) AS payload FROM real_payloads;");
  auto searcher = ShardSearcher::Open(file, 4, Metric::kL2, "3");
  ASSERT_FALSE(searcher.ok());
  EXPECT_EQ(searcher.status().code(), StatusCode::kCorruption);
  EXPECT_NE(searcher.status().message().find("shard 3: 'vec_payloads' is a view, not a table"), std::string::npos)
      << searcher.status().message();
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST_F(HostileSnapshotTest, CachedShardsAndTheirFoldersAreForThisUserOnly) {
  const mode_t old_umask = ::umask(022);  // the usual umask, which would leave 0644 / 0755
  Write();
  EXPECT_EQ(ModeOf(tmp_ / "build"), 0700u);  // the writer's local root (its shard folders are gone)
  // Shards group members may write are downloaded into the cache (a folder store's others are read in place).
  for (const std::string& f : testing::ListFiles(tmp_ / "store")) {
    if (f.ends_with("shard.db")) fs::permissions(tmp_ / "store" / f, fs::perms::group_write, fs::perm_options::add);
  }
  auto reader = Open();
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SearchOptions all;
  all.num_probes = 2;
  ASSERT_TRUE((*reader)->Search(std::vector<float>{1, 2, 3, 4}, 5, all).ok());
  ::umask(old_umask);
  int files = 0;
  EXPECT_EQ(ModeOf(tmp_ / "cache"), 0700u);
  for (const auto& e : fs::recursive_directory_iterator(tmp_ / "cache")) {
    if (e.is_directory()) {
      EXPECT_EQ(ModeOf(e.path()), 0700u) << e.path();
    } else {
      files += e.path().filename() == "shard.db" ? 1 : 0;  // beside each: its folder's download lock
      EXPECT_EQ(ModeOf(e.path()), 0600u) << e.path();
    }
  }
  EXPECT_EQ(files, 2);
}

// Ids are the caller's keys, kept as given: a repeated id is stored once per row and a search may
// return it more than once (as the reference does); 7 and "7" are different ids; an empty payload
// object is kept and returned as {}.
TEST_F(HostileSnapshotTest, DuplicateAndMixedTypeIdsAreKeptAsGiven) {
  const WriteConfig c = Config(2, Strategy::kExplicit);
  std::vector<Record> records = {
      {RecordId(int64_t{7}), {1, 0}, std::string("{}"), 0, std::nullopt},
      {RecordId(int64_t{7}), {1, 0.01f}, std::nullopt, 1, std::nullopt},
      {RecordId(std::string("7")), {1, 0.02f}, std::string("{\"s\": true}"), 0, std::nullopt},
  };
  VectorRecordSource source(records);
  ASSERT_TRUE(WriteSharded(c, source).ok());
  auto reader = Open();
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SearchOptions both;
  both.shard_ids = std::vector<int64_t>{0, 1};
  auto r = (*reader)->Search(std::vector<float>{1, 0}, 3, both);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->results.size(), 3u);
  EXPECT_EQ(r->results[0].id, RecordId(int64_t{7}));
  EXPECT_EQ(r->results[0].payload_json, std::optional<std::string>("{}"));
  EXPECT_EQ(r->results[1].id, RecordId(int64_t{7}));
  EXPECT_EQ(r->results[1].payload_json, std::nullopt);
  EXPECT_EQ(r->results[2].id, RecordId(std::string("7")));
  EXPECT_EQ(r->results[2].payload_json, std::optional<std::string>("{\"s\": true}"));
}

TEST_F(HostileSnapshotTest, TruncatedOrCorruptCentroidsAreCorruptionNamingTheArtifact) {
  WriteConfig c = Config(4, Strategy::kCluster);
  c.sharding.train_centroids = true;
  VectorRecordSource source(testing::MakeRecords(testing::RandomMatrix(40, 4, 3), false));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  fs::path npy;
  for (const auto& e : fs::recursive_directory_iterator(tmp_ / "store" / "vector_meta")) {
    if (e.path().filename() == "centroids.npy") npy = e.path();
  }
  ASSERT_FALSE(npy.empty());
  const std::string bytes = testing::ReadText(npy);
  for (const std::string& spoiled : {bytes.substr(0, bytes.size() - 1), bytes.substr(0, 20), std::string("not npy")}) {
    testing::WriteText(npy, spoiled);
    auto reader = Open();
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), StatusCode::kCorruption) << reader.status().ToString();
    EXPECT_NE(reader.status().message().find("Failed to load centroids_ref artifact 'file://" + npy.string() + "'"),
              std::string::npos) << reader.status().message();
  }
}

// vec0 reads its shadow tables by name: one replaced by a view returning the very same rows must
// still not be read through. The schema check covers only our three tables, so this is the
// hardened connection (views off) at work; without it the search answers through the view.
TEST_F(HostileSnapshotTest, ShadowTableReplacedByAViewIsNeverReadThrough) {
  const fs::path file = tmp_ / "shard.db";
  {
    auto builder = ShardBuilder::Create(file, {4, Metric::kL2});
    ASSERT_TRUE(builder.ok());
    const float v[4] = {1, 2, 3, 4};
    ASSERT_TRUE((*builder)->Add(RecordId(int64_t{7}), v, std::nullopt).ok());
    ASSERT_TRUE((*builder)->Seal().ok());
  }
  testing::ExecSql(file,
                   "CREATE TABLE copied_chunks AS SELECT * FROM vec_index_chunks;"
                   "DROP TABLE vec_index_chunks;"
                   "CREATE VIEW vec_index_chunks AS SELECT * FROM copied_chunks;");
  const float q[4] = {1, 2, 3, 4};
  for (ScanPath path : {ScanPath::kAuto, ScanPath::kVec0Knn}) {
    auto searcher = ShardSearcher::Open(file, 4, Metric::kL2, "3", 1, path);
    Result<std::vector<ShardHit>> hits = searcher.ok() ? (*searcher)->Search(q, 1) : searcher.status();
    ASSERT_FALSE(hits.ok()) << "read through a view";
    EXPECT_EQ(hits.status().code(), StatusCode::kCorruption) << hits.status().ToString();
    EXPECT_NE(hits.status().message().find("shard 3"), std::string::npos) << hits.status().message();
    EXPECT_NE(hits.status().message().find("prohibited"), std::string::npos) << hits.status().message();
  }
}

}  // namespace
}  // namespace shardvec
