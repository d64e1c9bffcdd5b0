// A filtered shard scan on both of its paths (the runs of passing rows through the candidate scan,
// and the index path that scores exactly the passing rows) against an independent brute force over
// the passing rows: the same ids, the same float scores bit for bit between the paths, at every
// selectivity, for l2 and cosine, with and without sub-lists (and the index path with int8 codes),
// alone and batched.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "shard/filter_predicate.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

constexpr int64_t kDim = 24;
constexpr int64_t kRows = 3000;

// Row r's value of the int column "g": a scatter of 0..9999, so `g < t` passes about t / 10000 of
// the rows, spread over the whole shard.
int64_t GOf(int64_t row) { return (row * 7919 + 13) % 10000; }

std::vector<FilterColumnSpec> Specs() { return *ParseFilterColumnSpecs({{"g", "int"}}, "filter_columns"); }

std::unique_ptr<ShardSearcher> Build(const std::filesystem::path& path, const Matrix& data, Metric metric,
                                     int64_t sublists, bool int8_codes) {
  auto builder = ShardBuilder::Create(
      path, {.dim = kDim, .metric = metric, .int8_codes = int8_codes, .sublists = sublists, .filter_columns = Specs()});
  EXPECT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t r = 0; r < data.rows; ++r) {
    EXPECT_TRUE((*builder)->Add(RecordId(r), data.row(r), nlohmann::json{{"g", GOf(r)}}.dump()).ok());
  }
  EXPECT_TRUE((*builder)->Seal().ok());
  auto searcher = ShardSearcher::Open(path, kDim, metric, "s0");
  EXPECT_TRUE(searcher.ok()) << searcher.status().ToString();
  return std::move(searcher).value();
}

// (id, score) of each hit.
std::vector<std::pair<int64_t, double>> Resolved(ShardSearcher& searcher, const std::vector<ScanHit>& hits) {
  auto resolved = searcher.Resolve(hits);
  EXPECT_TRUE(resolved.ok()) << resolved.status().ToString();
  std::vector<std::pair<int64_t, double>> out;
  for (const ShardHit& hit : *resolved) out.emplace_back(std::get<int64_t>(hit.id), hit.score);
  return out;
}

TEST(FilterScanTest, IndexPathAndRunScanEqualABruteForceOverThePassingRows) {
  testing::TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 12, 71);
  const Matrix queries = testing::ClusteredMatrix(6, kDim, 12, 72);
  int shard = 0;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const auto& [sublists, int8_codes] : std::vector<std::pair<int64_t, bool>>{{1, false}, {0, false}, {0, true}}) {
      auto searcher = Build(dir / fmt::format("s{}.db", shard++), data, metric, sublists, int8_codes);
      ASSERT_NE(searcher, nullptr);
      ASSERT_EQ(searcher->sublists() != nullptr, sublists == 0);
      for (const int64_t threshold : {5000, 1000, 100, 10, 1}) {  // 50 % .. 0.01 %
        const std::string context = fmt::format("{} sublists={} int8={} g < {}", MetricName(metric), sublists,
                                                int8_codes, threshold);
        auto predicate = FilterPredicate::Compile(fmt::format("g < {}", threshold), Specs());
        ASSERT_TRUE(predicate.ok());
        auto allowed = predicate->Evaluate(*searcher->filter_columns(), "s0");
        ASSERT_TRUE(allowed.ok());
        // The brute force: the passing rows, by the test's own reading of the payloads.
        std::vector<int64_t> passing;
        for (int64_t r = 0; r < kRows; ++r) {
          if (GOf(r) < threshold) passing.push_back(r);
        }
        ASSERT_EQ(CountRows(*allowed), static_cast<int64_t>(passing.size())) << context;
        std::vector<float> values;
        for (const int64_t r : passing) values.insert(values.end(), data.row(r), data.row(r) + kDim);
        const Matrix passing_rows = testing::MakeMatrix(static_cast<int64_t>(passing.size()), kDim, values);
        std::vector<const float*> qs;
        for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
        for (const int64_t k : {1, 10, 100}) {
          searcher->set_filter_index_rows(0);  // every scan takes the runs
          auto runs = searcher->Scan(qs, k, std::numeric_limits<double>::infinity(), {}, *allowed);
          searcher->set_filter_index_rows(kRows);  // every scan takes the index path
          auto index = searcher->Scan(qs, k, std::numeric_limits<double>::infinity(), {}, *allowed);
          ASSERT_TRUE(runs.ok() && index.ok()) << context;
          for (size_t q = 0; q < qs.size(); ++q) {
            const auto truth = testing::BruteForce(passing_rows, qs[q], metric, k);
            const auto by_runs = Resolved(*searcher, (*runs)[q]);
            const auto by_index = Resolved(*searcher, (*index)[q]);
            // (The int8 pre-scan keeps k x 4 candidates, so only the index path is exact there.)
            if (!int8_codes) {
              ASSERT_EQ(by_index, by_runs) << context << " k=" << k << " query " << q;  // ids, score bits
            }
            ASSERT_EQ(by_index.size(), truth.size()) << context;
            for (size_t i = 0; i < truth.size(); ++i) {
              EXPECT_EQ(by_index[i].first, passing[static_cast<size_t>(truth[i].second)]) << context << " rank " << i;
              EXPECT_NEAR(by_index[i].second, truth[i].first, 1e-4 * std::max(1.0, truth[i].first)) << context;
            }
            // A lone query with a distance bound: the same on both paths, rows at the bound kept.
            if (by_index.empty()) continue;
            const double bound = by_index[by_index.size() / 2].second;
            searcher->set_filter_index_rows(0);
            auto runs_one = searcher->Scan(std::span(&qs[q], 1), k, bound, {}, *allowed);
            searcher->set_filter_index_rows(kRows);
            auto index_one = searcher->Scan(std::span(&qs[q], 1), k, bound, {}, *allowed);
            ASSERT_TRUE(runs_one.ok() && index_one.ok());
            if (!int8_codes) {
              EXPECT_EQ(Resolved(*searcher, (*index_one)[0]), Resolved(*searcher, (*runs_one)[0])) << context;
            }
            EXPECT_EQ((*index_one)[0].size(), by_index.size() / 2 + 1) << context;
          }
        }
      }
    }
  }
}

TEST(FilterScanTest, AQueryScoresItsListsPassingRowsOnlyAndEveryPassingRowWhenGivenNoListOnEitherPath) {
  testing::TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 12, 81);
  auto searcher = Build(dir / "s.db", data, Metric::kL2, 0, false);
  ASSERT_NE(searcher, nullptr);
  ASSERT_NE(searcher->sublists(), nullptr);
  auto predicate = FilterPredicate::Compile("g < 30", Specs());
  auto allowed = predicate->Evaluate(*searcher->filter_columns(), "s0");
  ASSERT_TRUE(allowed.ok());
  // One probed list holding fewer than k passing rows: the query gets just those (the reader
  // decides whether more lists or shards are searched).
  int32_t few = 0;  // a list holding 1..4 passing rows
  while (static_cast<size_t>(few) < searcher->sublists()->ranges.size() &&
         (CountSet(*allowed, searcher->sublists()->ranges[static_cast<size_t>(few)]) < 1 ||
          CountSet(*allowed, searcher->sublists()->ranges[static_cast<size_t>(few)]) > 4)) {
    ++few;
  }
  ASSERT_LT(static_cast<size_t>(few), searcher->sublists()->ranges.size());
  const int64_t in_first = CountSet(*allowed, searcher->sublists()->ranges[static_cast<size_t>(few)]);
  const std::vector<std::vector<int32_t>> one_list = {{few}};
  const float* q = data.row(5);
  auto narrowed = searcher->Scan(std::span(&q, 1), 5, std::numeric_limits<double>::infinity(), one_list, *allowed);
  ASSERT_TRUE(narrowed.ok());
  EXPECT_EQ(static_cast<int64_t>((*narrowed)[0].size()), in_first);
  for (const ScanHit& hit : (*narrowed)[0]) {
    EXPECT_GE(hit.row, searcher->sublists()->ranges[static_cast<size_t>(few)].begin);
    EXPECT_LT(hit.row, searcher->sublists()->ranges[static_cast<size_t>(few)].end);
    EXPECT_TRUE(((*allowed)[static_cast<size_t>(hit.row >> 6)] >> (hit.row & 63)) & 1);
  }
  // Given no list, a filtered query searches every passing row of the shard, on the index path as
  // on the runs, alone or in a batch whose queries name lists.
  const std::vector<std::vector<int32_t>> no_list = {{}};
  searcher->set_filter_index_rows(kRows);
  auto index_whole = searcher->Scan(std::span(&q, 1), 5, std::numeric_limits<double>::infinity(), no_list, *allowed);
  auto whole = searcher->Scan(std::span(&q, 1), 5, std::numeric_limits<double>::infinity(), {}, *allowed);
  searcher->set_filter_index_rows(0);
  auto runs_whole = searcher->Scan(std::span(&q, 1), 5, std::numeric_limits<double>::infinity(), no_list, *allowed);
  ASSERT_TRUE(index_whole.ok() && whole.ok() && runs_whole.ok());
  EXPECT_EQ(Resolved(*searcher, (*index_whole)[0]), Resolved(*searcher, (*whole)[0]));
  EXPECT_EQ(Resolved(*searcher, (*runs_whole)[0]), Resolved(*searcher, (*whole)[0]));
  EXPECT_EQ((*whole)[0].size(), 5u);
  // A batch mixing a query whose lists (all of them) hold enough passing rows, which takes the runs,
  // with one that takes the index path: each gets its own answer.
  std::vector<int32_t> every(searcher->sublists()->ranges.size());
  std::iota(every.begin(), every.end(), 0);
  const std::vector<std::vector<int32_t>> mixed_lists = {every, {}};
  const std::vector<const float*> two = {data.row(77), q};
  searcher->set_filter_index_rows(kRows);
  auto mixed = searcher->Scan(two, 5, std::numeric_limits<double>::infinity(), mixed_lists, *allowed);
  auto first_whole = searcher->Scan(std::span(&two[0], 1), 5, std::numeric_limits<double>::infinity(), {}, *allowed);
  ASSERT_TRUE(mixed.ok() && first_whole.ok());
  EXPECT_EQ(Resolved(*searcher, (*mixed)[0]), Resolved(*searcher, (*first_whole)[0]));
  EXPECT_EQ(Resolved(*searcher, (*mixed)[1]), Resolved(*searcher, (*whole)[0]));
  // The default threshold: at least 64 rows, and a fortieth of a large shard.
  EXPECT_EQ(DefaultFilterIndexRows(100), 64);
  EXPECT_EQ(DefaultFilterIndexRows(1000000), 25000);
}

}  // namespace
}  // namespace shardvec
