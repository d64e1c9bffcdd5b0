#include "read/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace shardvec {
namespace {

using Lists = std::vector<std::vector<ScanHit>>;

ScanHit Hit(int64_t id, double score) { return ScanHit{score, id}; }

std::vector<int64_t> IdsOf(const std::vector<ScanHit>& hits) {
  std::vector<int64_t> ids;
  for (const ScanHit& hit : hits) ids.push_back(hit.rowid);
  return ids;
}

// The merged hits' rowids.
std::vector<int64_t> Merged(const Lists& lists, int64_t top_k) {
  std::vector<int64_t> ids;
  for (const MergedRef& ref : MergeTopK(lists, top_k)) ids.push_back(lists[ref.list][ref.index].rowid);
  return ids;
}

TEST(MergeTopKTest, TiesKeepListOrderThenPosition) {
  Lists per_shard = {
      {Hit(10, 1.0), Hit(11, 2.0), Hit(12, 2.0)},
      {Hit(20, 0.5), Hit(21, 1.0), Hit(22, 2.0)},
      {Hit(30, 1.0), Hit(31, 1.0)},
  };
  EXPECT_EQ(Merged(per_shard, 6), (std::vector<int64_t>{20, 10, 21, 30, 31, 11}));
  EXPECT_EQ(Merged(per_shard, 8),
            (std::vector<int64_t>{20, 10, 21, 30, 31, 11, 12, 22}));
  EXPECT_EQ(Merged(per_shard, 2), (std::vector<int64_t>{20, 10}));
}

TEST(MergeTopKTest, EqualsAStableSortOfTheConcatenationForRandomTiedLists) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> score(0, 5);  // few distinct scores: many ties
  std::uniform_int_distribution<int> length(0, 12);
  for (int trial = 0; trial < 200; ++trial) {
    Lists per_shard(1 + trial % 6);
    std::vector<ScanHit> concatenated;
    int64_t next_id = 0;
    for (auto& list : per_shard) {
      const int n = length(rng);
      for (int i = 0; i < n; ++i) list.push_back(Hit(next_id++, score(rng) * 0.25));
      // Each shard returns its list sorted, as sqlite-vec does.
      std::stable_sort(list.begin(), list.end(),
                       [](const ScanHit& a, const ScanHit& b) { return a.score < b.score; });
      concatenated.insert(concatenated.end(), list.begin(), list.end());
    }
    std::stable_sort(concatenated.begin(), concatenated.end(),
                     [](const ScanHit& a, const ScanHit& b) { return a.score < b.score; });
    const int64_t top_k = 1 + trial % 20;
    std::vector<int64_t> expected = IdsOf(concatenated);
    expected.resize(std::min<size_t>(expected.size(), static_cast<size_t>(top_k)));
    EXPECT_EQ(Merged(per_shard, top_k), expected) << "trial " << trial;
  }
}

TEST(MergeTopKTest, KeepsDuplicatesAndNamesTheirOrigin) {
  const Lists per_shard = {{Hit(4, 0.1)}, {Hit(4, 0.1), Hit(5, 0.2)}};
  EXPECT_EQ(MergeTopK(per_shard, 10),
            (std::vector<MergedRef>{MergedRef{0, 0}, MergedRef{1, 0}, MergedRef{1, 1}}));
}

TEST(MergeTopKTest, EmptyInputsAndNonPositiveTopK) {
  EXPECT_TRUE(MergeTopK(Lists{}, 10).empty());
  EXPECT_TRUE(MergeTopK(Lists{{}, {}}, 10).empty());
  EXPECT_TRUE(MergeTopK(Lists{{Hit(1, 0.0)}}, 0).empty());
  EXPECT_TRUE(MergeTopK(Lists{{Hit(1, 0.0)}}, -3).empty());
  EXPECT_EQ(Merged({{}, {Hit(1, 0.3)}, {}}, 5), (std::vector<int64_t>{1}));
}

}  // namespace
}  // namespace shardvec
