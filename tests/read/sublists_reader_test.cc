// A snapshot whose shards are split into sub-lists: the reader scans the nearest lists across the
// candidate shards, single and batch alike.
#include <gtest/gtest.h>

#include <set>

#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::BruteForce;
using testing::MakeRecords;

constexpr int64_t kDim = 16;
constexpr int64_t kShards = 4;

class SublistReaderTest : public ::testing::Test {
 protected:
  Result<BuildResult> Write(const Matrix& data, Metric metric, int64_t sublists_per_shard, const std::string& name) {
    WriteConfig c;
    c.store = (tmp_ / name).string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data.cols;
    c.index.metric = metric;
    c.sharding.num_dbs = kShards;
    c.sharding.train_centroids = true;
    c.sharding.sublists_per_shard = sublists_per_shard;
    VectorRecordSource source(MakeRecords(data, false));
    return WriteSharded(c, source);
  }
  std::unique_ptr<ShardedVectorReader> OpenReader(const std::string& name) {
    ReaderOptions o;
    o.store = (tmp_ / name).string();
    o.cache_dir = (tmp_ / (name + "-cache")).string();
    auto r = ShardedVectorReader::Open(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  // `data` (l2) written with sub-lists ("lists") and without ("whole"), both opened (null on failure).
  std::pair<std::unique_ptr<ShardedVectorReader>, std::unique_ptr<ShardedVectorReader>> WriteBoth(const Matrix& data) {
    const bool written = Write(data, Metric::kL2, 0, "lists").ok() && Write(data, Metric::kL2, 1, "whole").ok();
    EXPECT_TRUE(written);
    if (!written) return {};
    return {OpenReader("lists"), OpenReader("whole")};
  }
  // Recall@10 of `options` over `queries` against an exact scan of `data`.
  static double Recall(ShardedVectorReader& reader, const Matrix& data, const Matrix& queries, Metric metric,
                       const SearchOptions& options) {
    int64_t found = 0;
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto r = reader.Search(std::span<const float>(queries.row(q), static_cast<size_t>(kDim)), 10, options);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return -1;
      std::set<RecordId> got;
      for (const SearchHit& hit : r->results) got.insert(hit.id);
      for (const auto& [d, row] : BruteForce(data, queries.row(q), metric, 10)) found += got.contains(RecordId(row * 3));
    }
    return static_cast<double>(found) / static_cast<double>(queries.rows * 10);
  }
  testing::TempDir tmp_;
};

TEST_F(SublistReaderTest, EveryListProbedIsExactAndRecallGrowsWithSublistProbes) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const std::string name = std::string("store-") + std::string(MetricName(metric));
    const Matrix data = testing::ClusteredMatrix(4000, kDim, 40, 61);
    ASSERT_TRUE(Write(data, metric, 0, name).ok());
    auto reader = OpenReader(name);
    ASSERT_NE(reader, nullptr);
    const Matrix queries = testing::ClusteredMatrix(30, kDim, 40, 62);
    SearchOptions every;
    every.num_probes = kShards;
    every.sublist_probes = 100000;
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto r = reader->Search(std::span<const float>(queries.row(q), static_cast<size_t>(kDim)), 10, every);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const auto truth = BruteForce(data, queries.row(q), metric, 10);
      ASSERT_EQ(r->results.size(), 10u);
      for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(r->results[i].id, RecordId(truth[i].second * 3)) << MetricName(metric) << " query " << q << " rank " << i;
        EXPECT_NEAR(r->results[i].score, truth[i].first, 1e-4 * std::max(1.0, truth[i].first));
      }
    }
    double previous = -1;
    for (const int64_t probes : {1, 2, 4, 8, 16, 32, 64, 100000}) {
      SearchOptions o;
      o.num_probes = kShards;
      o.sublist_probes = probes;
      const double recall = Recall(*reader, data, queries, metric, o);
      EXPECT_GE(recall, previous) << MetricName(metric) << " sublist_probes " << probes;
      previous = recall;
    }
    EXPECT_EQ(previous, 1.0);
  }
}

TEST_F(SublistReaderTest, BatchAnswersAsSingleSearchesDo) {
  const Matrix data = testing::ClusteredMatrix(3000, kDim, 30, 71);
  ASSERT_TRUE(Write(data, Metric::kCosine, 0, "store").ok());
  auto reader = OpenReader("store");
  ASSERT_NE(reader, nullptr);
  const Matrix queries = testing::ClusteredMatrix(50, kDim, 30, 72);
  SearchOptions chosen;
  chosen.sublist_probes = 5;
  for (const SearchOptions& options : {SearchOptions{}, chosen}) {
    auto batch = reader->BatchSearch(queries, 7, options);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto single = reader->Search(std::span<const float>(queries.row(q), static_cast<size_t>(kDim)), 7, options);
      ASSERT_TRUE(single.ok());
      const SearchResponse& b = (*batch)[static_cast<size_t>(q)];
      ASSERT_EQ(b.results.size(), single->results.size()) << q;
      EXPECT_EQ(b.shard_ids, single->shard_ids) << q;
      for (size_t i = 0; i < b.results.size(); ++i) {
        EXPECT_EQ(b.results[i].id, single->results[i].id) << q << " rank " << i;
        EXPECT_EQ(b.results[i].score, single->results[i].score) << q << " rank " << i;
      }
    }
  }
}

TEST_F(SublistReaderTest, DefaultFollowsNumProbesAndKeepsItsRecall) {
  const Matrix data = testing::ClusteredMatrix(6000, kDim, 60, 81);
  auto [lists, whole] = WriteBoth(data);
  ASSERT_TRUE(lists && whole);
  const Matrix queries = testing::ClusteredMatrix(60, kDim, 60, 82);
  for (const int64_t probes : {1, 2}) {
    SearchOptions o;
    o.num_probes = probes;
    const double with_lists = Recall(*lists, data, queries, Metric::kL2, o);
    const double shards_whole = Recall(*whole, data, queries, Metric::kL2, o);
    EXPECT_GE(with_lists, shards_whole - 0.02) << "num_probes " << probes;
  }
  // Every shard probed scans every row: exact, as without sub-lists.
  SearchOptions all;
  all.num_probes = kShards;
  EXPECT_EQ(Recall(*lists, data, queries, Metric::kL2, all), 1.0);
}

TEST_F(SublistReaderTest, SublistProbesIsRefusedWhenBadOrWithoutSublists) {
  const Matrix data = testing::ClusteredMatrix(2000, kDim, 20, 91);
  auto [lists, whole] = WriteBoth(data);
  ASSERT_TRUE(lists && whole);
  const std::span<const float> q(data.row(0), static_cast<size_t>(kDim));
  SearchOptions zero;
  zero.sublist_probes = 0;
  auto refused = lists->Search(q, 5, zero);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("sublist_probes must be >= 1 (got 0)"), std::string::npos);
  SearchOptions three;
  three.sublist_probes = 3;
  auto none = whole->Search(q, 5, three);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("sublist_probes (3)"), std::string::npos) << none.status().ToString();
  auto batch = whole->BatchSearch(MatrixView(data.row(0), 1, kDim), 5, three);
  EXPECT_FALSE(batch.ok());
  // Named shards take it too: the nearest lists among them.
  SearchOptions named = three;
  named.shard_ids = std::vector<int64_t>{0, 1};
  auto ok = lists->Search(q, 5, named);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  for (const int64_t id : ok->shard_ids) EXPECT_TRUE(id == 0 || id == 1);
}

TEST_F(SublistReaderTest, WriteRefusesSublistsPerShardOutOfRangeNamingIt) {
  const Matrix data = testing::ClusteredMatrix(100, kDim, 2, 5);
  for (const int64_t bad : {int64_t{-1}, int64_t{65537}}) {
    auto result = Write(data, Metric::kL2, bad, "bad");
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find("sublists_per_shard"), std::string::npos) << result.status().ToString();
    EXPECT_NE(result.status().message().find(std::to_string(bad)), std::string::npos);
  }
}

}  // namespace
}  // namespace shardvec
