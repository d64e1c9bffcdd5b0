#include "read/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace shardvec {
namespace {

ShardHit Hit(int64_t id, double score) { return ShardHit{RecordId(id), score, std::nullopt, id}; }

std::vector<int64_t> IdsOf(const std::vector<ShardHit>& hits) {
  std::vector<int64_t> ids;
  for (const ShardHit& hit : hits) ids.push_back(std::get<int64_t>(hit.id));
  return ids;
}

TEST(MergeTopKTest, TiesKeepListOrderThenPosition) {
  std::vector<std::vector<ShardHit>> per_shard = {
      {Hit(10, 1.0), Hit(11, 2.0), Hit(12, 2.0)},
      {Hit(20, 0.5), Hit(21, 1.0), Hit(22, 2.0)},
      {Hit(30, 1.0), Hit(31, 1.0)},
  };
  EXPECT_EQ(IdsOf(MergeTopK(per_shard, 6)), (std::vector<int64_t>{20, 10, 21, 30, 31, 11}));
  EXPECT_EQ(IdsOf(MergeTopK(per_shard, 8)),
            (std::vector<int64_t>{20, 10, 21, 30, 31, 11, 12, 22}));
  EXPECT_EQ(IdsOf(MergeTopK(per_shard, 2)), (std::vector<int64_t>{20, 10}));
}

TEST(MergeTopKTest, EqualsAStableSortOfTheConcatenationForRandomTiedLists) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> score(0, 5);  // few distinct scores: many ties
  std::uniform_int_distribution<int> length(0, 12);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::vector<ShardHit>> per_shard(1 + trial % 6);
    std::vector<ShardHit> concatenated;
    int64_t next_id = 0;
    for (auto& list : per_shard) {
      const int n = length(rng);
      for (int i = 0; i < n; ++i) list.push_back(Hit(next_id++, score(rng) * 0.25));
      // Each shard returns its list sorted, as sqlite-vec does.
      std::stable_sort(list.begin(), list.end(),
                       [](const ShardHit& a, const ShardHit& b) { return a.score < b.score; });
      concatenated.insert(concatenated.end(), list.begin(), list.end());
    }
    std::stable_sort(concatenated.begin(), concatenated.end(),
                     [](const ShardHit& a, const ShardHit& b) { return a.score < b.score; });
    const int64_t top_k = 1 + trial % 20;
    std::vector<int64_t> expected = IdsOf(concatenated);
    expected.resize(std::min<size_t>(expected.size(), static_cast<size_t>(top_k)));
    EXPECT_EQ(IdsOf(MergeTopK(per_shard, top_k)), expected) << "trial " << trial;
  }
}

TEST(MergeTopKTest, KeepsDuplicatesAndPayloads) {
  std::vector<std::vector<ShardHit>> per_shard = {
      {ShardHit{RecordId(std::string("a")), 0.1, std::string(R"({"x": 1})"), 4}},
      {ShardHit{RecordId(std::string("a")), 0.1, std::nullopt, 9}},
  };
  auto merged = MergeTopK(per_shard, 10);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].rowid, 4);
  EXPECT_EQ(merged[0].payload_json, std::optional<std::string>(R"({"x": 1})"));
  EXPECT_EQ(merged[1].rowid, 9);
  EXPECT_EQ(merged[1].id, RecordId(std::string("a")));
}

TEST(MergeTopKTest, EmptyInputsAndNonPositiveTopK) {
  EXPECT_TRUE(MergeTopK({}, 10).empty());
  EXPECT_TRUE(MergeTopK({{}, {}}, 10).empty());
  EXPECT_TRUE(MergeTopK({{Hit(1, 0.0)}}, 0).empty());
  EXPECT_TRUE(MergeTopK({{Hit(1, 0.0)}}, -3).empty());
  EXPECT_EQ(IdsOf(MergeTopK({{}, {Hit(1, 0.3)}, {}}, 5)), (std::vector<int64_t>{1}));
}

}  // namespace
}  // namespace shardvec
