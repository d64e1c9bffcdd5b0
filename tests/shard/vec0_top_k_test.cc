// The reader's kernel path against sqlite-vec's own `MATCH ? AND k = ?` on the same shard file,
// through plain SQLite with the pinned vec0 extension: the same rowids in the same order and the
// same distances bit for bit, on random data and on data crafted so that the kernel's summation
// order reorders near-ties; and vec0's distance functions against its SQL ones.
#include "shard/vec0_top_k.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <random>

#include "shard/shard_searcher.h"
#include "shard/vec0_distance.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

struct Hit {
  int64_t rowid;
  double score;
  bool operator==(const Hit&) const = default;
};

void PrintTo(const Hit& h, std::ostream* os) { *os << fmt::format("{}@{:.17g}", h.rowid, h.score); }

// vec0's answer, read with plain SQLite (not our searcher).
std::vector<Hit> MatchQuery(sqlite3* db, const float* query, int64_t dim, int64_t k) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT rowid, distance FROM vec_index WHERE embedding MATCH ? AND k = ?", -1,
                               &stmt, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(stmt, 1, query, static_cast<int>(dim * 4), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, k);
  std::vector<Hit> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(Hit{sqlite3_column_int64(stmt, 0), sqlite3_column_double(stmt, 1)});
  sqlite3_finalize(stmt);
  return out;
}

std::vector<Hit> Hits(const std::vector<ScanHit>& hits) {
  std::vector<Hit> out;
  for (const ScanHit& h : hits) out.push_back(Hit{h.rowid, h.score});
  return out;
}

// Rows that sit a few float ulps apart from each other around a few centres, plus exact copies of
// them in other chunks (ties vec0 orders by chunk, then by slot): the kernel's sums, in another
// order, put such rows in another order unless rescored.
Matrix NearTies(int64_t rows, int64_t dim, uint64_t seed) {
  Matrix m = testing::RandomMatrix(rows, dim, seed);
  std::mt19937_64 rng(seed);
  const int64_t centres = 3;
  for (int64_t r = centres; r < rows; ++r) {
    const float* centre = m.row(r % centres);
    float* row = m.row(r);
    std::copy(centre, centre + dim, row);
    if (r % 7 == 3 && r >= 2 * centres) {
      std::copy(m.row(r - 2 * centres), m.row(r - 2 * centres) + dim, row);  // an exact copy
      continue;
    }
    for (int flips = 0; flips < 3; ++flips) {
      float& v = row[rng() % static_cast<uint64_t>(dim)];
      v = std::nextafter(v, (rng() & 1) ? 1e30f : -1e30f);
    }
  }
  return m;
}

// Queries: random ones, the centres, and a centre nudged by an ulp (its near-ties are then the top).
Matrix Queries(const Matrix& data, uint64_t seed) {
  Matrix q = testing::RandomMatrix(6, data.cols, seed);
  for (int64_t c = 0; c < 4; ++c) std::copy(data.row(c % 3), data.row(c % 3) + data.cols, q.row(c));
  q.row(3)[0] = std::nextafter(q.row(3)[0], 1e30f);
  return q;
}

struct Case {
  int64_t dim, rows, chunk_size;
};
const Case kCases[] = {{1, 40, 8},    {3, 50, 8},     {8, 100, 16},  {16, 200, 64}, {17, 129, 32},
                       {100, 257, 128}, {128, 1500, 0}, {384, 700, 0}, {785, 333, 0}};

void ExpectSearcherEqualsMatch(const std::filesystem::path& path, const Matrix& data, const Matrix& queries,
                               Metric metric, const std::string& name) {
  auto searcher = ShardSearcher::Open(path, data.cols, metric, "k", 2, ScanPath::kAuto);
  ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
  ASSERT_TRUE((*searcher)->uses_scan_kernel()) << name;
  sqlite3* db = testing::OpenWithVec0(path);
  std::vector<const float*> qs;
  for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
  for (const int64_t k : {int64_t{1}, int64_t{10}, int64_t{37}, data.rows + 3}) {
    if (k > kMaxKnnK) continue;
    auto batch = (*searcher)->Scan(qs, k);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (size_t q = 0; q < qs.size(); ++q) {
      const std::vector<Hit> want = MatchQuery(db, qs[q], data.cols, k);
      const std::string where = fmt::format("{} k {} query {}", name, k, q);
      EXPECT_EQ(Hits((*batch)[q]), want) << where << " (batch)";
      auto alone = (*searcher)->Scan(std::span<const float* const>(&qs[q], 1), k);
      ASSERT_TRUE(alone.ok());
      EXPECT_EQ(Hits((*alone)[0]), want) << where << " (alone)";
      // Bounded by vec0's own k-th distance: exactly vec0's rows at or below it.
      if (!want.empty()) {
        auto bounded = (*searcher)->Scan(std::span<const float* const>(&qs[q], 1), k, want.back().score);
        ASSERT_TRUE(bounded.ok());
        EXPECT_EQ(Hits((*bounded)[0]), want) << where << " (bounded)";
      }
    }
  }
  sqlite3_close(db);
}

TEST(Vec0TopKTest, KernelSearchEqualsVec0MatchBitForBitOnRandomAndNearTieData) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const Case& c : kCases) {
      for (const bool near_ties : {false, true}) {
        const std::string name = fmt::format("{} dim {} rows {} chunk {} {}", MetricName(metric), c.dim, c.rows,
                                             c.chunk_size, near_ties ? "near-ties" : "random");
        const uint64_t seed = static_cast<uint64_t>(c.dim * 1000 + c.rows);
        const Matrix data = near_ties ? NearTies(c.rows, c.dim, seed) : testing::RandomMatrix(c.rows, c.dim, seed);
        const auto path = dir.path() / fmt::format("{}_{}_{}_{}.db", MetricName(metric), c.dim, c.rows, near_ties);
        testing::BuildVec0Shard(path, data, metric, c.chunk_size);
        ExpectSearcherEqualsMatch(path, data, Queries(data, seed + 1), metric, name);
      }
    }
  }
}

// Hundreds of rows whose distances to the query lie within the kernel's rounding of each other: the
// first k + margin candidates cannot settle the k-th place, so more are scanned until they do.
TEST(Vec0TopKTest, BoundaryCrowdedWithNearTiesStillEqualsVec0) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const int64_t dim = 64;
    Matrix data = testing::RandomMatrix(600, dim, 17);
    std::mt19937_64 rng(5);
    for (int64_t r = 1; r < data.rows; ++r) {
      std::copy(data.row(0), data.row(0) + dim, data.row(r));
      for (int flips = 0; flips < 4; ++flips) {
        float& v = data.row(r)[rng() % static_cast<uint64_t>(dim)];
        v = std::nextafter(v, (rng() & 1) ? 1e30f : -1e30f);
      }
    }
    Matrix queries = testing::RandomMatrix(4, dim, 99);
    const auto path = dir.path() / fmt::format("crowd_{}.db", MetricName(metric));
    testing::BuildVec0Shard(path, data, metric, 64);
    ExpectSearcherEqualsMatch(path, data, queries, metric, fmt::format("crowded {}", MetricName(metric)));
  }
}

// Sums of squares beyond float's range: vec0 answers an infinite distance for those rows, and so do
// we (every row is rescored once a distance is not finite), in vec0's order.
TEST(Vec0TopKTest, OverflowingL2DistancesEqualVec0) {
  TempDir dir;
  Matrix data = testing::RandomMatrix(50, 16, 3);
  for (int64_t r = 0; r < data.rows; r += 3) data.row(r)[r % 16] = 3e19f;
  const auto path = dir.path() / "overflow.db";
  testing::BuildVec0Shard(path, data, Metric::kL2, 16);
  ExpectSearcherEqualsMatch(path, data, testing::RandomMatrix(3, 16, 4), Metric::kL2, "overflow");
}

// Our distance functions give the bits of vec0's SQL functions (the same C functions its KNN uses).
TEST(Vec0DistanceTest, EqualsSqliteVecDistanceFunctionsBitForBit) {
  TempDir dir;
  const auto path = dir.path() / "any.db";
  testing::BuildVec0Shard(path, testing::RandomMatrix(2, 4, 1), Metric::kL2, 8);
  sqlite3* db = testing::OpenWithVec0(path);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT vec_distance_l2(?1, ?2), vec_distance_cosine(?1, ?2)", -1, &stmt, nullptr),
            SQLITE_OK);
  for (const int64_t dim : {1, 3, 8, 15, 16, 17, 100, 128, 384, 785, 1536}) {
    for (const float scale : {1e-3f, 1.0f, 1e4f}) {
      Matrix m = testing::RandomMatrix(40, dim, static_cast<uint64_t>(dim) * 7 + static_cast<uint64_t>(scale));
      for (float& v : m.data) v *= scale;
      for (int64_t i = 0; i + 1 < m.rows; i += 2) {
        sqlite3_reset(stmt);
        sqlite3_bind_blob(stmt, 1, m.row(i), static_cast<int>(dim * 4), SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 2, m.row(i + 1), static_cast<int>(dim * 4), SQLITE_STATIC);
        ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
        const std::string where = fmt::format("dim {} scale {} pair {}", dim, scale, i);
        EXPECT_EQ(static_cast<double>(Vec0L2Distance(m.row(i), m.row(i + 1), dim)), sqlite3_column_double(stmt, 0))
            << where;
        EXPECT_EQ(static_cast<double>(Vec0CosineDistance(m.row(i), m.row(i + 1), dim)), sqlite3_column_double(stmt, 1))
            << where;
      }
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

// The slack bounds the kernel's distance against vec0's on random rows at several scales (the
// bound is derived, this only checks it is not violated where it is easy to see).
TEST(Vec0DistanceTest, KernelDistancesStayWithinTheSlack) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const int64_t dim : {3, 64, 785}) {
      const Matrix data = testing::RandomMatrix(300, dim, static_cast<uint64_t>(dim));
      ScanTable table;
      table.metric = metric;
      table.vectors = ScanMatrix(data.rows, dim);
      for (int64_t r = 0; r < data.rows; ++r) {
        std::copy(data.row(r), data.row(r) + dim, table.vectors.row(r));
        table.rowids.push_back(r);
      }
      if (metric == Metric::kCosine) ComputeNorms(&table);
      const ScoreSlack slack = KernelScoreSlack(metric, table.vectors.stride());
      const Matrix queries = testing::RandomMatrix(3, dim, 42);
      std::vector<const float*> qs{queries.row(0), queries.row(1), queries.row(2)};
      std::vector<std::vector<ScanHit>> fast;
      ScanTopK(table, qs, data.rows, &fast);
      for (size_t q = 0; q < qs.size(); ++q) {
        for (const ScanHit& h : fast[q]) {
          const double exact = Vec0Distance(metric, data.row(h.row), qs[q], dim);
          EXPECT_GE(exact, slack.LowestExact(h.score)) << MetricName(metric) << " dim " << dim;
          EXPECT_LE(h.score, slack.HighestFast(exact)) << MetricName(metric) << " dim " << dim;
        }
      }
    }
  }
}

}  // namespace
}  // namespace shardvec
