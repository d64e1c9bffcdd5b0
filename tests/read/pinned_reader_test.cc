// ReaderOptions::manifest: a reader opened at a chosen published manifest instead of _CURRENT's.
#include <gtest/gtest.h>

#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

class PinnedReaderTest : public ::testing::Test {
 protected:
  std::string Store() const { return (tmp_ / "store").string(); }
  void Write(const Matrix& data, const std::string& run_id) {
    WriteConfig c;
    c.store = Store();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data.cols;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 2;
    c.run_id = run_id;
    VectorRecordSource source(testing::MakeRecords(data, false));
    auto r = WriteSharded(c, source);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Result<std::unique_ptr<ShardedVectorReader>> Open(std::optional<RollbackTarget> manifest) {
    ReaderOptions o;
    o.store = Store();
    o.cache_dir = (tmp_ / "cache").string();
    o.manifest = std::move(manifest);
    return ShardedVectorReader::Open(o);
  }
  testing::TempDir tmp_;
};

TEST_F(PinnedReaderTest, EachSelectorOpensThatManifestAndRefreshStaysOnIt) {
  const Matrix data = testing::RandomMatrix(50, 4, 3);
  Write(data, "a");
  Write(data, "b");
  auto latest = Open(std::nullopt);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ((*latest)->Info().run_id, "b");

  auto by_run = Open(RollbackTarget{.run_id = "a"});
  ASSERT_TRUE(by_run.ok()) << by_run.status().ToString();
  const std::string ref_a = (*by_run)->Info().manifest_ref;
  EXPECT_EQ((*by_run)->Info().run_id, "a");
  EXPECT_NE(ref_a, (*latest)->Info().manifest_ref);
  // The snapshot's own rows answer: row 7 (id 21, MakeRecords gives row i the id 3i) is its own nearest neighbour.
  auto hit = (*by_run)->Search(std::span<const float>(data.row(7), 4), 1, SearchOptions{.num_probes = 2});
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  EXPECT_EQ(std::get<int64_t>(hit->results.at(0).id), 21);

  auto by_offset = Open(RollbackTarget{.offset = 1});
  ASSERT_TRUE(by_offset.ok()) << by_offset.status().ToString();
  EXPECT_EQ((*by_offset)->Info().manifest_ref, ref_a);
  auto by_ref = Open(RollbackTarget{.ref = ref_a});
  ASSERT_TRUE(by_ref.ok()) << by_ref.status().ToString();
  EXPECT_EQ((*by_ref)->Info().run_id, "a");
  auto previous = Open(RollbackTarget{.previous = true});
  ASSERT_TRUE(previous.ok()) << previous.status().ToString();
  EXPECT_EQ((*previous)->Info().manifest_ref, ref_a);

  // A newer publish moves the unpinned reader, never the pinned one.
  Write(data, "c");
  auto moved = (*latest)->Refresh();
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(*moved);
  EXPECT_EQ((*latest)->Info().run_id, "c");
  auto stayed = (*by_run)->Refresh();
  ASSERT_TRUE(stayed.ok());
  EXPECT_FALSE(*stayed);
  EXPECT_EQ((*by_run)->Info().manifest_ref, ref_a);
  // Closed, it reports so like any reader.
  (*by_run)->Close();
  EXPECT_EQ((*by_run)->Refresh().status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PinnedReaderTest, ASelectorThatMatchesNothingIsAnErrorNamingIt) {
  Write(testing::RandomMatrix(20, 4, 5), "only");
  auto run = Open(RollbackTarget{.run_id = "missing"});
  EXPECT_EQ(run.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(run.status().message(), "No manifest found with run_id=missing");
  auto offset = Open(RollbackTarget{.offset = 1});
  EXPECT_EQ(offset.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(offset.status().message(), "offset 1 is out of range: the store has 1 manifest(s)");
  auto previous = Open(RollbackTarget{.previous = true});
  EXPECT_EQ(previous.status().code(), StatusCode::kNotFound);
  auto two = Open(RollbackTarget{.run_id = "only", .offset = 0});
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(two.status().message().find("Exactly one of ref, run_id, offset or previous"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
