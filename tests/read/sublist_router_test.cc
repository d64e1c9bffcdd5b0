// The sub-list router's picks (PickSublists, PickFilteredSublists) and the snapshot-wide list table
// a sparse filter ranks (SnapshotListTable, RankSnapshotLists).
#include "read/sublist_router.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "support/test_util.h"

namespace shardvec {
namespace {

TEST(PickFilteredSublistsTest, TakesTheNearestUntilTheBudgetAndTheNeedAreMetLeavingOutListsWithoutPassingRows) {
  // (score, slot, list, passing), in no order.
  const std::vector<ListCandidate> candidates = {
      {0.4, 1, 0, 4}, {0.1, 0, 0, 0}, {0.5, 0, 2, 9}, {0.3, 0, 1, 1}, {0.2, 1, 3, 2}, {0.6, 1, 1, 7}};
  // Budget 2, need 5: 0.1 (no passing row: counted, left out), 0.2 (2), then past the budget until 5
  // passing rows: 0.3 (3), 0.4 (7).
  EXPECT_EQ(PickFilteredSublists(candidates, 2, 5, 2), (std::vector<std::vector<int32_t>>{{1}, {0, 3}}));
  // A budget beyond the need: every list up to it.
  EXPECT_EQ(PickFilteredSublists(candidates, 5, 1, 2), (std::vector<std::vector<int32_t>>{{1, 2}, {0, 3}}));
  // A need no candidate set can meet: every list holding a passing row.
  EXPECT_EQ(PickFilteredSublists(candidates, 1, 1000, 3), (std::vector<std::vector<int32_t>>{{1, 2}, {0, 1, 3}, {}}));
  // Equal scores: the lower slot, then the lower list, first.
  const std::vector<ListCandidate> ties = {{0.5, 1, 0, 3}, {0.5, 0, 4, 3}, {0.5, 0, 2, 3}};
  EXPECT_EQ(PickFilteredSublists(ties, 1, 3, 2), (std::vector<std::vector<int32_t>>{{2}, {}}));
  EXPECT_EQ(PickFilteredSublists({}, 4, 10, 1), (std::vector<std::vector<int32_t>>{{}}));
}

// `lists` sub-lists of `rows_per_list` rows each, their centroids `dim` wide from `centroids`.
SubLists MakeSublists(const Matrix& centroids, int64_t first, int64_t lists, int64_t rows_per_list) {
  SubLists out;
  for (int64_t i = 0; i < lists; ++i) out.ranges.push_back(RowRange{i * rows_per_list, (i + 1) * rows_per_list});
  out.centroids = CentroidTable(centroids.row(first), lists, centroids.cols, Metric::kL2);
  out.centroid_codes.emplace(QuantizeRows(centroids.row(first), lists, centroids.cols, out.centroids));
  return out;
}

class SnapshotListTableTest : public ::testing::Test {
 protected:
  static constexpr int64_t kDim = 8;
  static constexpr int64_t kShards = 3;
  static constexpr int64_t kListsPerShard = 400;  // 1200 in all: grouped

  void SetUp() override {
    centroids_ = testing::ClusteredMatrix(kShards * kListsPerShard, kDim, 40, 5);
    for (int64_t s = 0; s < kShards; ++s) shards_.push_back(MakeSublists(centroids_, s * kListsPerShard, kListsPerShard, 10 + s));
  }
  SnapshotListTable Build(int64_t shards) {
    SnapshotListTable table;
    for (int64_t s = 0; s < shards; ++s) table.Add(static_cast<int32_t>(s), shards_[static_cast<size_t>(s)], kDim);
    EXPECT_TRUE(table.Finish(kDim, Metric::kL2).ok());
    return table;
  }

  Matrix centroids_;
  std::vector<SubLists> shards_;
};

TEST_F(SnapshotListTableTest, HoldsEveryShardsListsOnceWithTheirCentroidsAndGroupsThemFrom1024Lists) {
  const SnapshotListTable table = Build(kShards);
  ASSERT_TRUE(table.codes.has_value());
  ASSERT_TRUE(table.grouping.has_value());
  EXPECT_EQ(table.rows, 10 * kListsPerShard + 11 * kListsPerShard + 12 * kListsPerShard);
  ASSERT_EQ(static_cast<int64_t>(table.shard_of.size()), kShards * kListsPerShard);
  // Rows are stored group by group, each row the centroid of the (shard, list) it names.
  std::set<std::pair<int32_t, int32_t>> seen;
  for (size_t row = 0; row < table.shard_of.size(); ++row) {
    const int32_t shard = table.shard_of[row];
    const int32_t list = table.list_of[row];
    EXPECT_TRUE(seen.emplace(shard, list).second);
    const float* source = centroids_.row(shard * kListsPerShard + list);
    const float* stored = table.centroids.vectors.row(static_cast<int64_t>(row));
    EXPECT_TRUE(std::equal(source, source + kDim, stored)) << "row " << row;
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), kShards * kListsPerShard);
  int64_t covered = 0;
  for (const RowRange& group : table.grouping->ranges) {
    EXPECT_EQ(group.begin, covered);
    covered = group.end;
  }
  EXPECT_EQ(covered, kShards * kListsPerShard);
  EXPECT_GT(table.grouping->ranges.size(), 1u);
  // Two shards' 800 lists: one table, not grouped.
  EXPECT_FALSE(Build(2).grouping.has_value());
}

TEST_F(SnapshotListTableTest, RankingTheNearestGroupsFindsMostOfTheNearestListsAndAWideWantRanksThemAll) {
  const SnapshotListTable table = Build(kShards);
  const Matrix queries = testing::ClusteredMatrix(20, kDim, 40, 5);  // near the lists' clusters
  int64_t found = 0;
  constexpr int64_t kWant = 16;  // 8 x 16 = 128 of 1200 rows ranked
  for (int64_t q = 0; q < queries.rows; ++q) {
    const float* query = queries.row(q);
    std::vector<std::vector<ScanHit>> grouped, all, wide;
    RankSnapshotLists(table, std::span(&query, 1), kWant, &grouped);
    Sq8Rank(*table.codes, std::span(&query, 1), kWant, &all);
    ASSERT_EQ(grouped[0].size(), static_cast<size_t>(kWant));
    std::set<int64_t> best;
    for (const ScanHit& hit : all[0]) best.insert(hit.row);
    for (size_t i = 0; i < grouped[0].size(); ++i) {
      if (i > 0) {
        EXPECT_LE(grouped[0][i - 1].score, grouped[0][i].score);
      }
      found += best.contains(grouped[0][i].row) ? 1 : 0;
    }
    // 8 x 150 covers every row: the whole table is ranked, exactly as Sq8Rank ranks it.
    RankSnapshotLists(table, std::span(&query, 1), 150, &wide);
    std::vector<std::vector<ScanHit>> exact;
    Sq8Rank(*table.codes, std::span(&query, 1), 150, &exact);
    ASSERT_EQ(wide[0].size(), exact[0].size());
    for (size_t i = 0; i < wide[0].size(); ++i) EXPECT_EQ(wide[0][i].row, exact[0][i].row);
  }
  EXPECT_GE(found, queries.rows * kWant * 9 / 10) << "of the " << queries.rows * kWant << " nearest lists";
}

}  // namespace
}  // namespace shardvec
