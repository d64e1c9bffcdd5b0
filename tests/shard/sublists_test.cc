#include "shard/sublists.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/vec0_top_k.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

constexpr int64_t kRows = 1500;
constexpr int64_t kDim = 24;

// id = 7 x row, payload on odd rows, added in row order.
void BuildShard(const std::filesystem::path& path, const Matrix& data, Metric metric, int64_t sublists) {
  ShardBuildOptions options{.dim = data.cols, .metric = metric};
  options.sublists = sublists;
  auto builder = ShardBuilder::Create(path, options);
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t row = 0; row < data.rows; ++row) {
    std::optional<std::string> payload;
    if (row % 2 == 1) payload = fmt::format("{{\"row\": {}}}", row);
    ASSERT_TRUE((*builder)->Add(RecordId(row * 7), data.row(row), payload).ok());
  }
  ASSERT_TRUE((*builder)->Seal().ok());
}

std::unique_ptr<ShardSearcher> Open(const std::filesystem::path& path, Metric metric, ScanPath scan = ScanPath::kAuto) {
  auto searcher = ShardSearcher::Open(path, kDim, metric, "s9", 2, scan);
  EXPECT_TRUE(searcher.ok()) << searcher.status().ToString();
  return searcher.ok() ? std::move(searcher).value() : nullptr;
}

// The lists of `searcher` nearest `query` by their centroids, nearest first.
std::vector<int32_t> ListsByDistance(const ShardSearcher& searcher, const float* query) {
  const SubLists* lists = searcher.sublists();
  std::vector<std::vector<ScanHit>> ranked;
  ScanTopK(lists->centroids, std::span(&query, 1), lists->centroids.vectors.rows(), &ranked);
  std::vector<int32_t> out;
  for (const ScanHit& hit : ranked[0]) out.push_back(static_cast<int32_t>(hit.row));
  return out;
}

void ExpectSameHits(const std::vector<ScanHit>& got, const std::vector<ScanHit>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].rowid, want[i].rowid) << what << " rank " << i;
    EXPECT_EQ(got[i].score, want[i].score) << what << " rank " << i;  // bit for bit
  }
}

TEST(SublistsTest, CountIsAboutTheSquareRootOfTheRowsUnlessSet) {
  EXPECT_EQ(SublistCount(kAutoSublistMinRows - 1, 0), 1);
  EXPECT_EQ(SublistCount(kAutoSublistMinRows, 0), 16);
  EXPECT_EQ(SublistCount(60000, 0), 245);
  EXPECT_EQ(SublistCount(60000, 1), 1);
  EXPECT_EQ(SublistCount(60000, 50), 50);
  EXPECT_EQ(SublistCount(30, 50), 30);
}

TEST(SublistsTest, RowRangesRestrictTheKernelToThoseRowsForLoneAndBatchedQueries) {
  const Matrix data = testing::RandomMatrix(700, 33, 5);
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const ScanTable table = CentroidTable(data.data.data(), data.rows, data.cols, metric);
    const std::vector<RowRange> ranges = {{3, 90}, {200, 201}, {250, 600}, {650, 700}};
    const std::vector<std::vector<int32_t>> range_queries = {{0, 2}, {1}, {0, 1, 2}, {2}};
    const Matrix queries = testing::RandomMatrix(3, 33, 6);
    std::vector<const float*> qs = {queries.row(0), queries.row(1), queries.row(2)};
    std::vector<std::vector<ScanHit>> batched;
    ScanTopK(table, qs, 20, &batched, {.row_ranges = ranges, .range_queries = range_queries});
    for (int32_t q = 0; q < 3; ++q) {
      // The same query over a table of only its rows.
      std::vector<int64_t> rows;
      for (size_t r = 0; r < ranges.size(); ++r) {
        if (!std::binary_search(range_queries[r].begin(), range_queries[r].end(), q)) continue;
        for (int64_t row = ranges[r].begin; row < ranges[r].end; ++row) rows.push_back(row);
      }
      Matrix part;
      part.cols = data.cols;
      part.rows = static_cast<int64_t>(rows.size());
      for (const int64_t row : rows) part.data.insert(part.data.end(), data.row(row), data.row(row) + data.cols);
      ScanTable sub = CentroidTable(part.data.data(), part.rows, part.cols, metric);
      for (size_t i = 0; i < rows.size(); ++i) sub.rowids[i] = rows[i];
      std::vector<std::vector<ScanHit>> want, alone;
      ScanTopK(sub, std::span(&qs[static_cast<size_t>(q)], 1), 20, &want);
      ExpectSameHits(batched[static_cast<size_t>(q)], want[0], fmt::format("{} batched query {}", MetricName(metric), q));
      std::vector<RowRange> mine;
      for (size_t r = 0; r < ranges.size(); ++r) {
        if (std::binary_search(range_queries[r].begin(), range_queries[r].end(), q)) mine.push_back(ranges[r]);
      }
      ScanTopK(table, std::span(&qs[static_cast<size_t>(q)], 1), 20, &alone, {.row_ranges = mine});
      ExpectSameHits(alone[0], want[0], fmt::format("{} lone query {}", MetricName(metric), q));
    }
  }
}

TEST(SublistsTest, BuilderWritesContiguousListsOfNearRowsAndKeepsIdsAndPayloadsWithTheirVectors) {
  TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 12, 3);
  BuildShard(dir.path() / "shard.db", data, Metric::kL2, 0);
  auto searcher = Open(dir.path() / "shard.db", Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  const SubLists* lists = searcher->sublists();
  ASSERT_NE(lists, nullptr);
  EXPECT_GE(lists->ranges.size(), 30u);  // round(sqrt(1500)) = 39, less any empty cluster
  EXPECT_LE(lists->ranges.size(), 39u);
  EXPECT_EQ(lists->ranges.front().begin, 0);
  EXPECT_EQ(lists->ranges.back().end, kRows);
  for (size_t i = 1; i < lists->ranges.size(); ++i) EXPECT_EQ(lists->ranges[i].begin, lists->ranges[i - 1].end);
  // Every row is found by its own vector under its own id and payload, in the list whose centroid is nearest.
  for (int64_t row = 0; row < kRows; ++row) {
    auto hits = searcher->Search(data.row(row), 1);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_EQ(hits->size(), 1u);
    const ShardHit& hit = hits->front();
    ASSERT_EQ(hit.score, 0) << row;
    EXPECT_EQ(hit.id, RecordId(row * 7)) << row;
    EXPECT_EQ(hit.payload_json.has_value(), row % 2 == 1) << row;
    const auto list = std::upper_bound(lists->ranges.begin(), lists->ranges.end(), hit.rowid,
                                       [](int64_t rowid, const RowRange& r) { return rowid < r.end; }) - lists->ranges.begin();
    EXPECT_EQ(ListsByDistance(*searcher, data.row(row)).front(), list) << row;
  }
}

TEST(SublistsTest, EveryListEqualsVec0KnnAndChosenListsEqualVec0KnnOverTheirRows) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const auto path = dir.path() / fmt::format("{}.db", MetricName(metric));
    const Matrix data = testing::ClusteredMatrix(kRows, kDim, 10, 8);
    BuildShard(path, data, metric, 25);
    auto kernel = Open(path, metric);
    auto knn = Open(path, metric, ScanPath::kVec0Knn);  // vec0's own `embedding MATCH ? AND k = ?`
    ASSERT_TRUE(kernel && knn);
    ASSERT_NE(kernel->sublists(), nullptr);
    const Matrix queries = testing::ClusteredMatrix(6, kDim, 10, 9);
    std::vector<const float*> qs;
    for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
    qs.push_back(data.row(17));
    const auto lists = static_cast<int32_t>(kernel->sublists()->ranges.size());
    std::vector<int32_t> every(static_cast<size_t>(lists));
    for (int32_t i = 0; i < lists; ++i) every[static_cast<size_t>(i)] = i;
    // Plain vec0 on the reordered shard is still exact: its answer is the brute-force one.
    auto all_rows = knn->Scan(qs, kRows);
    ASSERT_TRUE(all_rows.ok());
    for (size_t q = 0; q < qs.size(); ++q) {
      const auto truth = testing::BruteForce(data, qs[q], metric, 10);
      auto resolved = knn->Resolve(std::span((*all_rows)[q]).first(10));
      ASSERT_TRUE(resolved.ok());
      for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ((*resolved)[i].id, RecordId(truth[i].second * 7)) << MetricName(metric) << " query " << q << " rank " << i;
      }
    }
    for (const int64_t k : {int64_t{1}, int64_t{10}, int64_t{100}}) {
      auto want = knn->Scan(qs, k);
      std::vector<std::vector<int32_t>> all_lists(qs.size(), every);
      auto got = kernel->Scan(qs, k, std::numeric_limits<double>::infinity(), all_lists);
      ASSERT_TRUE(want.ok() && got.ok());
      // Each query its own lists: the nearest few, and for one query every other list.
      std::vector<std::vector<int32_t>> chosen;
      for (size_t q = 0; q < qs.size(); ++q) {
        ExpectSameHits((*got)[q], (*want)[q], fmt::format("{} k {} every list, query {}", MetricName(metric), k, q));
        std::vector<int32_t> mine = ListsByDistance(*kernel, qs[q]);
        mine.resize(q == 2 ? mine.size() : std::min<size_t>(mine.size(), 1 + q));
        if (q == 2) std::erase_if(mine, [](int32_t l) { return l % 2 == 1; });
        std::sort(mine.begin(), mine.end());
        chosen.push_back(std::move(mine));
      }
      auto batch = kernel->Scan(qs, k, std::numeric_limits<double>::infinity(), chosen);
      ASSERT_TRUE(batch.ok());
      for (size_t q = 0; q < qs.size(); ++q) {
        std::set<int64_t> rows;
        for (const int32_t l : chosen[q]) {
          for (int64_t r = kernel->sublists()->ranges[l].begin; r < kernel->sublists()->ranges[l].end; ++r) rows.insert(r);
        }
        std::vector<ScanHit> expected;
        for (const ScanHit& h : (*all_rows)[q]) {
          if (rows.contains(h.rowid) && static_cast<int64_t>(expected.size()) < k) expected.push_back(h);
        }
        const std::string what = fmt::format("{} k {} chosen lists, query {}", MetricName(metric), k, q);
        ExpectSameHits((*batch)[q], expected, what + " (batch)");
        auto alone = kernel->Scan(std::span(&qs[q], 1), k, std::numeric_limits<double>::infinity(), std::span(&chosen[q], 1));
        ASSERT_TRUE(alone.ok());
        ExpectSameHits((*alone)[0], expected, what + " (alone)");
      }
    }
  }
}

TEST(SublistsTest, RecallGrowsWithTheListsProbedUpToExact) {
  TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 15, 4);
  BuildShard(dir.path() / "shard.db", data, Metric::kL2, 0);
  auto searcher = Open(dir.path() / "shard.db", Metric::kL2);
  ASSERT_TRUE(searcher && searcher->sublists());
  const Matrix queries = testing::ClusteredMatrix(40, kDim, 15, 5);
  const auto lists = static_cast<int32_t>(searcher->sublists()->ranges.size());
  double previous = -1;
  for (int32_t probes = 1; probes <= lists; probes = probes < lists ? std::min(lists, probes * 2) : lists + 1) {
    int64_t found = 0;
    for (int64_t q = 0; q < queries.rows; ++q) {
      std::vector<int32_t> mine = ListsByDistance(*searcher, queries.row(q));
      mine.resize(static_cast<size_t>(probes));
      std::sort(mine.begin(), mine.end());
      const float* query = queries.row(q);
      auto hits = searcher->Scan(std::span(&query, 1), 10, std::numeric_limits<double>::infinity(), std::span(&mine, 1));
      ASSERT_TRUE(hits.ok());
      auto resolved = searcher->Resolve((*hits)[0]);
      ASSERT_TRUE(resolved.ok());
      std::set<RecordId> got;
      for (const ShardHit& h : *resolved) got.insert(h.id);
      for (const auto& [d, row] : testing::BruteForce(data, query, Metric::kL2, 10)) found += got.contains(RecordId(row * 7));
    }
    const double recall = static_cast<double>(found) / static_cast<double>(queries.rows * 10);
    EXPECT_GE(recall, previous) << probes << " lists";
    previous = recall;
    if (probes == lists) EXPECT_EQ(recall, 1.0);
  }
}

TEST(SublistsTest, ShardWithoutTheTableIsSearchedWhole) {
  TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 10, 2);
  BuildShard(dir.path() / "off.db", data, Metric::kL2, 1);
  BuildShard(dir.path() / "dropped.db", data, Metric::kL2, 0);
  testing::ExecSql(dir.path() / "dropped.db", "DROP TABLE shardvec_sublists");
  for (const char* name : {"off.db", "dropped.db"}) {
    auto searcher = Open(dir.path() / name, Metric::kL2);
    ASSERT_NE(searcher, nullptr);
    EXPECT_EQ(searcher->sublists(), nullptr) << name;
    const float* q = data.row(5);
    const std::vector<int32_t> one = {0};  // ignored: there are no lists
    auto hits = searcher->Scan(std::span(&q, 1), 10, std::numeric_limits<double>::infinity(), std::span(&one, 1));
    ASSERT_TRUE(hits.ok());
    auto resolved = searcher->Resolve((*hits)[0]);
    ASSERT_TRUE(resolved.ok());
    const auto truth = testing::BruteForce(data, q, Metric::kL2, 10);
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ((*resolved)[i].id, RecordId(truth[i].second * 7)) << name << " rank " << i;
  }
}

TEST(SublistsTest, DamagedTableIsCorruptionNamingShardAndTable) {
  TempDir dir;
  const Matrix data = testing::ClusteredMatrix(600, kDim, 6, 1);
  const std::pair<const char*, const char*> damages[] = {
      {"UPDATE shardvec_sublists SET rowid_hi = rowid_lo WHERE list_id = 0", "list 0 holds rowids"},
      {"UPDATE shardvec_sublists SET rowid_lo = rowid_lo + 1 WHERE list_id = 2", "list 2 holds rowids"},
      {"DELETE FROM shardvec_sublists WHERE list_id = (SELECT max(list_id) FROM shardvec_sublists)", "cover rowids"},
      // A range past the last row covers no row (an update that deleted a shard's last rows leaves one).
      {"UPDATE shardvec_sublists SET rowid_hi = 100000 WHERE list_id = (SELECT max(list_id) FROM shardvec_sublists)",
       ""},
      {"UPDATE shardvec_sublists SET centroid = x'00000000' WHERE list_id = 1", "centroid has 4 bytes"},
      {"UPDATE shardvec_sublists SET rowid_lo = 'zero' WHERE list_id = 0", "not an integer"},
      {"UPDATE shardvec_sublists SET list_id = list_id + 100000 WHERE list_id = 3", "list_id"},
      {"UPDATE shardvec_sublists SET centroid = zeroblob(96) WHERE list_id = 1", ""},  // finite zeros: valid
      // A further range of an earlier list names it (an update's in-place edit); only earlier ones.
      {"UPDATE shardvec_sublists SET centroid = 0 WHERE list_id = 1", ""},
      {"UPDATE shardvec_sublists SET centroid = 5 WHERE list_id = 1", "names list 5"},
      {"UPDATE shardvec_sublists SET centroid = 1 WHERE list_id = 1", "names list 1"},
      {"DROP TABLE shardvec_sublists; CREATE VIEW shardvec_sublists AS SELECT 1", "is a view"},
      {"DROP TABLE shardvec_sublists; CREATE TABLE shardvec_sublists(list_id INTEGER PRIMARY KEY)", "shardvec_sublists"},
  };
  int round = 0;
  for (const auto& [sql, message] : damages) {
    const auto path = dir.path() / fmt::format("shard{}.db", round++);
    BuildShard(path, data, Metric::kL2, 0);
    testing::ExecSql(path, sql);
    auto searcher = ShardSearcher::Open(path, kDim, Metric::kL2, "s9", 2);
    if (std::string_view(message).empty()) {
      EXPECT_TRUE(searcher.ok()) << sql << ": " << searcher.status().ToString();
      continue;
    }
    ASSERT_FALSE(searcher.ok()) << sql;
    EXPECT_EQ(searcher.status().code(), StatusCode::kCorruption) << sql << ": " << searcher.status().ToString();
    EXPECT_NE(searcher.status().message().find("shard s9"), std::string::npos) << searcher.status().ToString();
    EXPECT_NE(searcher.status().message().find("shardvec_sublists"), std::string::npos) << searcher.status().ToString();
    EXPECT_NE(searcher.status().message().find(message), std::string::npos) << sql << ": " << searcher.status().ToString();
  }
}

TEST(SublistsTest, BuilderRefusesAListCountOutOfRangeNamingIt) {
  TempDir dir;
  for (const int64_t bad : {int64_t{-1}, kMaxSublistsPerShard + 1}) {
    ShardBuildOptions options{.dim = 4, .metric = Metric::kL2};
    options.sublists = bad;
    auto builder = ShardBuilder::Create(dir.path() / fmt::format("b{}.db", bad), options);
    ASSERT_FALSE(builder.ok());
    EXPECT_EQ(builder.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(builder.status().message().find("sublists_per_shard"), std::string::npos);
    EXPECT_NE(builder.status().message().find(std::to_string(bad)), std::string::npos);
  }
}

}  // namespace
}  // namespace shardvec
