// Vec0Lanes, on every instruction set this CPU runs, against Vec0Distance on each row in vec0's
// order: the same float bits, for awkward dimensions, with and without reordered columns, with
// values from zero and subnormal products to sums that overflow, and any number of rows.
#include "shard/vec0_lanes.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <random>

#include "shard/vec0_distance.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

// A value of one of the kinds that stress float sums: zero, a subnormal, one whose square or
// product with another of its kind is subnormal, an ordinary one, or a large one whose square
// nears or passes float's range.
float Awkward(std::mt19937_64& rng, int kind) {
  std::normal_distribution<float> normal;
  switch (kind) {
    case 0:
      return 0.0f;
    case 1:
      return normal(rng) * 1e-41f;
    case 2:
      return normal(rng) * 1e-21f;
    case 3:
      return normal(rng);
    default:
      return normal(rng) * std::pow(10.0f, std::uniform_real_distribution<float>(15, 20)(rng));
  }
}

// Row r (and query q) of one of five profiles: each kind alone, or a mix of all of them.
Matrix AwkwardMatrix(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Matrix m = testing::RandomMatrix(rows, dim, seed);
  for (int64_t r = 0; r < rows; ++r) {
    const int profile = static_cast<int>(r % 6);
    for (int64_t d = 0; d < dim; ++d) {
      m.row(r)[d] = Awkward(rng, profile < 5 ? profile : static_cast<int>(rng() % 5));
    }
  }
  return m;
}

// `data` as a ScanTable, its columns in `order` (column j holds dimension order[j]) when given.
ScanTable TableOf(const Matrix& data, Metric metric, const std::vector<int32_t>& order) {
  ScanTable table;
  table.metric = metric;
  table.vectors = ScanMatrix(data.rows, data.cols);
  for (int64_t r = 0; r < data.rows; ++r) {
    table.rowids.push_back(r);
    for (int64_t j = 0; j < data.cols; ++j) {
      table.vectors.row(r)[j] = data.row(r)[order.empty() ? j : order[static_cast<size_t>(j)]];
    }
  }
  table.column_order = order;
  return table;
}

TEST(Vec0LanesTest, ScoresEqualVec0DistanceBitForBitOnEveryIsa) {
  const int64_t table_rows = 120;
  int checked = 0;
  for (const ScanIsa isa : {ScanIsa::kScalar, ScanIsa::kAvx2, ScanIsa::kAvx512}) {
    if (!ScanIsaSupported(isa)) continue;
    for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
      for (const int64_t dim : {1, 7, 15, 16, 17, 100, 784, 1536}) {
        const uint64_t seed = static_cast<uint64_t>(dim) * 31 + static_cast<uint64_t>(metric);
        const Matrix data = AwkwardMatrix(table_rows, dim, seed);
        const Matrix queries = AwkwardMatrix(6, dim, seed + 1);
        std::mt19937_64 rng(seed + 2);
        std::vector<int32_t> shuffled(static_cast<size_t>(dim));
        std::iota(shuffled.begin(), shuffled.end(), 0);
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        for (const bool reordered : {false, true}) {
          const ScanTable table = TableOf(data, metric, reordered ? shuffled : std::vector<int32_t>{});
          Vec0Lanes lanes(table, isa);
          EXPECT_EQ(lanes.lanes(), isa == ScanIsa::kScalar ? 1 : 8);
          for (const int64_t count : {0, 1, 15, 16, 17, 100}) {
            // Any rows, repeats allowed, always with the table's last row (its block may end the
            // allocation).
            std::vector<int64_t> rows(static_cast<size_t>(count));
            for (int64_t& row : rows) row = static_cast<int64_t>(rng() % table_rows);
            if (count > 0) rows[static_cast<size_t>(count / 2)] = table_rows - 1;
            for (int64_t q = 0; q < queries.rows; ++q) {
              std::vector<double> out(rows.size(), -1.0);
              lanes.Score(queries.row(q), rows, out);
              for (size_t i = 0; i < rows.size(); ++i) {
                const float want = Vec0Distance(metric, data.row(rows[i]), queries.row(q), dim);
                const float got = static_cast<float>(out[i]);
                // A float widened to double, NaN payloads included.
                ASSERT_EQ(std::bit_cast<uint64_t>(static_cast<double>(got)), std::bit_cast<uint64_t>(out[i]));
                ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                    << fmt::format("{} {} dim {} {} rows {} query {} row {}: {} vs vec0 {}", ScanIsaName(isa),
                                   MetricName(metric), dim, reordered ? "reordered" : "in order", count, q,
                                   rows[i], got, want);
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// The data above reaches every kind of sum the test means to cover: zero, subnormal, ordinary and
// overflowing l2 sums (a check on the test itself).
TEST(Vec0LanesTest, AwkwardDataCoversSubnormalAndOverflowingSums) {
  const Matrix data = AwkwardMatrix(60, 100, 7);
  const Matrix queries = AwkwardMatrix(6, 100, 8);
  bool zero = false, subnormal = false, ordinary = false, overflow = false;
  for (int64_t q = 0; q < queries.rows; ++q) {
    for (int64_t r = 0; r < data.rows; ++r) {
      const float d = Vec0L2Distance(data.row(r), queries.row(q), 100);
      const float sum = d * d;
      zero |= d == 0;
      subnormal |= std::fpclassify(sum) == FP_SUBNORMAL;
      ordinary |= std::isnormal(d);
      overflow |= std::isinf(d);
    }
  }
  EXPECT_TRUE(zero && subnormal && ordinary && overflow) << zero << subnormal << ordinary << overflow;
}

}  // namespace
}  // namespace shardvec
