// The scan kernel against vec0's own KNN on the same shard file, and against a double-precision
// brute force: same rowids and distances within float rounding, ties in any order.
#include "shard/scan_kernel.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sqlite_vec.h"
#include "shard/vec0_storage.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

std::vector<ScanIsa> SupportedIsas() {
  std::vector<ScanIsa> out;
  for (ScanIsa isa : {ScanIsa::kScalar, ScanIsa::kAvx2, ScanIsa::kAvx512}) {
    if (ScanIsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

// Gaussian rows; every `dup_every`-th row repeats the row before it, so ties are common.
Matrix Vectors(int64_t rows, int64_t dim, uint64_t seed, int64_t dup_every = 0) {
  Matrix m = testing::RandomMatrix(rows, dim, seed);
  for (int64_t r = 1; dup_every > 0 && r < rows; r += dup_every) {
    std::copy(m.row(r - 1), m.row(r - 1) + dim, m.row(r));
  }
  return m;
}

ScanTable LoadVec0TableForTest(const std::filesystem::path& path, int64_t dim, Metric metric) {
  EXPECT_TRUE(EnsureSqliteVecLoaded().ok());
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  auto table = LoadVec0Table(db, dim, metric, "test");
  sqlite3_close(db);
  EXPECT_TRUE(table.ok() && table->has_value()) << table.status().ToString();
  return table.ok() && table->has_value() ? std::move(**table) : ScanTable{};
}

double Tolerance(double distance) { return 2e-5 * std::max(1.0, std::abs(distance)); }

// `got` equals `want` up to float rounding: same length, each rank's distance close, and the same
// rowids except among those tied (within tolerance) with the last distance kept.
void ExpectSameNeighbours(const std::vector<ScanHit>& got, const std::vector<ScanHit>& want,
                          const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  if (want.empty()) return;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i].score, want[i].score, Tolerance(want[i].score)) << where << " rank " << i;
  }
  const double boundary = want.back().score;
  auto inside = [&](const std::vector<ScanHit>& hits) {
    std::set<int64_t> ids;
    for (const ScanHit& h : hits) {
      if (h.score < boundary - Tolerance(boundary)) ids.insert(h.rowid);
    }
    return ids;
  };
  EXPECT_EQ(inside(got), inside(want)) << where;
}

std::vector<ScanHit> BruteForce(const Matrix& data, const float* query, int64_t k, Metric metric) {
  std::vector<ScanHit> hits;
  for (const auto& [distance, row] : testing::BruteForce(data, query, metric, k)) hits.push_back(ScanHit{distance, row});
  return hits;
}

struct Case {
  int64_t dim;
  int64_t rows;
  int64_t chunk_size;  // 0 = the builder's choice
};

std::string Name(const Case& c, Metric metric) {
  return fmt::format("dim {} rows {} chunk {} {}", c.dim, c.rows, c.chunk_size, MetricName(metric));
}

// Dimensions around the 8- and 16-lane widths, shards of one row up to several (partly filled)
// chunks, and the builder's own chunk size at high dimension.
const Case kCases[] = {
    {1, 1, 8},    {3, 50, 8},    {7, 9, 8},      {8, 100, 16},   {9, 33, 8},    {15, 64, 64},
    {16, 200, 64}, {17, 129, 32}, {24, 77, 8},   {31, 300, 0},   {33, 65, 8},   {100, 257, 128},
    {384, 700, 0}, {785, 333, 0},
};

TEST(ScanKernelTest, EqualsVec0KnnAcrossDimsMetricsAndChunkFills) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const Case& c : kCases) {
      const std::string name = Name(c, metric);
      const auto path = dir.path() / fmt::format("d{}_r{}_{}.db", c.dim, c.rows, MetricName(metric));
      const Matrix data = Vectors(c.rows, c.dim, static_cast<uint64_t>(c.dim * 1000 + c.rows), 7);
      testing::BuildVec0Shard(path, data, metric, c.chunk_size);
      auto kernel = ShardSearcher::Open(path, c.dim, metric, "k", 2, ScanPath::kAuto);
      auto knn = ShardSearcher::Open(path, c.dim, metric, "v", 2, ScanPath::kVec0Knn);
      ASSERT_TRUE(kernel.ok() && knn.ok()) << name << kernel.status().ToString() << knn.status().ToString();
      ASSERT_TRUE((*kernel)->uses_scan_kernel()) << name;
      ASSERT_FALSE((*knn)->uses_scan_kernel()) << name;

      const Matrix queries = Vectors(5, c.dim, static_cast<uint64_t>(c.dim + 7));
      std::vector<const float*> qs;
      for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
      qs.push_back(data.row(c.rows / 2));  // a stored row: distance 0 and its duplicate tie
      for (const int64_t k : {int64_t{1}, int64_t{10}, c.rows + 3}) {
        auto want = (*knn)->Scan(qs, k);
        ASSERT_TRUE(want.ok()) << want.status().ToString();
        for (const ScanIsa isa : SupportedIsas()) {
          auto table = LoadVec0TableForTest(path, c.dim, metric);
          std::vector<std::vector<ScanHit>> got;
          ScanTopK(table, qs, k, &got, {.isa = isa});
          for (size_t q = 0; q < qs.size(); ++q) {
            ExpectSameNeighbours(got[q], (*want)[q],
                                 fmt::format("{} k {} {} query {}", name, k, ScanIsaName(isa), q));
          }
        }
        auto served = (*kernel)->Scan(qs, k);
        ASSERT_TRUE(served.ok());
        for (size_t q = 0; q < qs.size(); ++q) {
          ExpectSameNeighbours((*served)[q], (*want)[q], fmt::format("{} k {} searcher query {}", name, k, q));
        }
      }
    }
  }
}

// Thousands of rows span several of the kernel's blocks; many queries share each block.
// `data` as a scan table, rowid = row number (norms filled for cosine).
ScanTable TableOf(const Matrix& data, Metric metric) {
  ScanTable table;
  table.metric = metric;
  table.vectors = ScanMatrix(data.rows, data.cols);
  for (int64_t r = 0; r < data.rows; ++r) {
    std::copy(data.row(r), data.row(r) + data.cols, table.vectors.row(r));
    table.rowids.push_back(r);
  }
  if (metric == Metric::kCosine) ComputeNorms(&table);
  return table;
}

TEST(ScanKernelTest, BatchedScanEqualsBruteForcePerQuery) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const int64_t dim : {int64_t{5}, int64_t{40}, int64_t{130}}) {
      const Matrix data = Vectors(3000, dim, static_cast<uint64_t>(dim), 11);
      const ScanTable table = TableOf(data, metric);
      const Matrix queries = Vectors(70, dim, static_cast<uint64_t>(dim + 1));
      std::vector<const float*> qs;
      for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
      for (const ScanIsa isa : SupportedIsas()) {
        std::vector<std::vector<ScanHit>> got;
        ScanTopK(table, qs, 25, &got, {.isa = isa});
        ASSERT_EQ(got.size(), qs.size());
        for (size_t q = 0; q < qs.size(); ++q) {
          ExpectSameNeighbours(got[q], BruteForce(data, qs[q], 25, metric),
                               fmt::format("{} dim {} {} query {}", MetricName(metric), dim, ScanIsaName(isa), q));
        }
      }
    }
  }
}

// A batch's first query streams each block with the one-row kernel and the others reuse it with the
// several-rows kernel: both sum in the same order, so a query scores the same bits alone or at any
// place in a batch (dims with 16-float tails, 8-float halves and neither; row counts off the group).
TEST(ScanKernelTest, QueryScoresTheSameBitsAloneAndInABatch) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const int64_t dim : {int64_t{7}, int64_t{24}, int64_t{64}, int64_t{100}, int64_t{785}}) {
      const Matrix data = Vectors(1003, dim, static_cast<uint64_t>(dim) + 5);
      const ScanTable table = TableOf(data, metric);
      const Matrix queries = Vectors(5, dim, static_cast<uint64_t>(dim) + 6);
      std::vector<const float*> qs;
      for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
      for (const ScanIsa isa : SupportedIsas()) {
        std::vector<std::vector<ScanHit>> batch;
        ScanTopK(table, qs, 1003, &batch, {.isa = isa});  // every row: every distance is compared
        for (size_t q = 0; q < qs.size(); ++q) {
          std::vector<std::vector<ScanHit>> alone;
          ScanTopK(table, std::span<const float* const>(&qs[q], 1), 1003, &alone, {.isa = isa});
          ASSERT_EQ(alone[0].size(), batch[q].size());
          for (size_t i = 0; i < alone[0].size(); ++i) {
            ASSERT_EQ(alone[0][i].rowid, batch[q][i].rowid) << MetricName(metric) << " dim " << dim << " " << ScanIsaName(isa);
            ASSERT_EQ(alone[0][i].score, batch[q][i].score) << MetricName(metric) << " dim " << dim << " " << ScanIsaName(isa);
          }
        }
      }
    }
  }
}

// The same hits, bit for bit, in the same order.
void ExpectIdentical(const std::vector<ScanHit>& got, const std::vector<ScanHit>& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].rowid, want[i].rowid) << where << " rank " << i;
    ASSERT_EQ(got[i].score, want[i].score) << where << " rank " << i;
  }
}

// A lone query gives up on rows that cannot enter its top k. On clustered rows (most of them far
// from the query) that is most rows, and what it returns is still the full scan's answer, bit for
// bit: the same query as a batch's first, which reads every row to its end, and the brute force.
TEST(ScanKernelTest, LoneQueryStopsFarRowsEarlyWithTheFullScansAnswer) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const int64_t dim : {int64_t{100}, int64_t{136}, int64_t{384}, int64_t{785}}) {
      Matrix data = testing::ClusteredMatrix(2000, dim, 20, static_cast<uint64_t>(dim));
      for (int64_t r = 7; r < data.rows; r += 97) std::copy(data.row(r - 1), data.row(r - 1) + dim, data.row(r));
      const ScanTable table = TableOf(data, metric);
      const Matrix queries = testing::ClusteredMatrix(6, dim, 20, static_cast<uint64_t>(dim));
      for (const ScanIsa isa : SupportedIsas()) {
        for (int64_t q = 0; q < queries.rows; ++q) {
          const std::string where = fmt::format("{} dim {} {} query {}", MetricName(metric), dim, ScanIsaName(isa), q);
          const float* pair[] = {queries.row(q), queries.row((q + 1) % queries.rows)};
          for (const int64_t k : {int64_t{1}, int64_t{10}, int64_t{60}}) {
            std::vector<std::vector<ScanHit>> alone, batch;
            ScanStats stats;
            ScanTopK(table, std::span<const float* const>(pair, 1), k, &alone, {.isa = isa, .stats = &stats});
            ScanTopK(table, pair, k, &batch, {.isa = isa});
            ExpectIdentical(alone[0], batch[0], where);
            ExpectSameNeighbours(alone[0], BruteForce(data, pair[0], k, metric), where);
            EXPECT_EQ(stats.rows, data.rows) << where;
            // Below 128 floats there is no check to stop at. A k above a cluster's size leaves
            // far rows in the top k for long, so fewer rows stop.
            if (dim <= 128) {
              EXPECT_EQ(stats.rows_stopped, 0) << where << " k " << k;
            } else {
              EXPECT_GT(stats.rows_stopped, k <= 10 ? data.rows / 2 : 0) << where << " k " << k;
            }
          }
        }
      }
    }
  }
}

// Cosine rows whose heads point away from the query and whose tails point exactly along it: the
// tail bound is then tight, and these rows still win however bad their first floats look. Their
// heads differ a little, so twice as many as k nearly tie at the k-th distance.
TEST(ScanKernelTest, CosineStopKeepsRowsWhoseTailsCarryTheMatch) {
  const int64_t dim = 520;
  const Matrix queries = Vectors(4, dim, 91);
  Matrix data = Vectors(1500, dim, 92);
  for (const ScanIsa isa : SupportedIsas()) {
    for (int64_t q = 0; q < queries.rows; ++q) {
      const float* pair[] = {queries.row(q), queries.row((q + 1) % queries.rows)};
      for (int64_t r = 0; r < data.rows; r += 25) {
        const float head = -0.2f - 1e-5f * static_cast<float>(r % 7);
        for (int64_t j = 0; j < dim; ++j) data.row(r)[j] = (j < 128 ? head : 3.0f) * pair[0][j];
      }
      const ScanTable table = TableOf(data, Metric::kCosine);
      std::vector<std::vector<ScanHit>> alone, batch;
      ScanTopK(table, std::span<const float* const>(pair, 1), 30, &alone, {.isa = isa});
      ScanTopK(table, pair, 30, &batch, {.isa = isa});
      const std::string where = fmt::format("{} query {}", ScanIsaName(isa), q);
      ExpectIdentical(alone[0], batch[0], where);
      ExpectSameNeighbours(alone[0], BruteForce(data, pair[0], 30, Metric::kCosine), where);
      for (const ScanHit& hit : alone[0]) EXPECT_EQ(hit.rowid % 25, 0) << where;
    }
  }
}

// Rows whose spread sits in their last dimensions (as image pixels sit at the centre): with the
// columns ordered by spread, the first checks already see most of each distance, so rows stop
// sooner (a tenth of all floats fewer read, at least), and the neighbours are the same (distances to float rounding: other summation order).
TEST(ScanKernelTest, ColumnsOrderedBySpreadStopRowsSoonerWithTheSameNeighbours) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const int64_t dim = 400;
    Matrix data = testing::ClusteredMatrix(1500, dim, 15, 41);
    Matrix queries = testing::ClusteredMatrix(5, dim, 15, 41);
    for (Matrix* m : {&data, &queries}) {
      for (int64_t r = 0; r < m->rows; ++r) {
        for (int64_t j = 0; j < 300; ++j) m->row(r)[j] = 1.0f + 0.01f * m->row(r)[j];  // little spread
      }
    }
    const ScanTable plain = TableOf(data, metric);
    ScanTable ordered = TableOf(data, metric);
    OrderColumnsBySpread(&ordered);
    if (metric == Metric::kCosine) ComputeNorms(&ordered);  // tail norms in the new column order
    ASSERT_EQ(ordered.column_order.size(), static_cast<size_t>(dim));
    EXPECT_GE(ordered.column_order[0], 300);  // a spread-out dimension comes first
    for (const ScanIsa isa : SupportedIsas()) {
      for (int64_t q = 0; q < queries.rows; ++q) {
        const float* query = queries.row(q);
        std::vector<std::vector<ScanHit>> a, b;
        ScanStats plain_stats, ordered_stats;
        ScanTopK(plain, std::span<const float* const>(&query, 1), 10, &a, {.isa = isa, .stats = &plain_stats});
        ScanTopK(ordered, std::span<const float* const>(&query, 1), 10, &b, {.isa = isa, .stats = &ordered_stats});
        const std::string where = fmt::format("{} {} query {}", MetricName(metric), ScanIsaName(isa), q);
        ExpectSameNeighbours(b[0], a[0], where);
        ExpectSameNeighbours(b[0], BruteForce(data, query, 10, metric), where);
        EXPECT_GT(ordered_stats.floats_skipped, plain_stats.floats_skipped + data.rows * dim / 10) << where;
      }
    }
  }
}

// max_distance keeps exactly the full answer's hits at or below it (a hit at exactly that distance
// included), alone or in a batch.
TEST(ScanKernelTest, MaxDistanceKeepsTheHitsUpToIt) {
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const int64_t dim = 300;
    const Matrix data = testing::ClusteredMatrix(1200, dim, 12, 5);
    const ScanTable table = TableOf(data, metric);
    const Matrix queries = testing::ClusteredMatrix(3, dim, 12, 6);
    std::vector<const float*> qs;
    for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
    for (const ScanIsa isa : SupportedIsas()) {
      std::vector<std::vector<ScanHit>> full;
      ScanTopK(table, qs, 20, &full, {.isa = isa});
      for (size_t q = 0; q < qs.size(); ++q) {
        const double max_distance = full[q][6].score;
        std::vector<ScanHit> want;
        for (const ScanHit& hit : full[q]) {
          if (hit.score <= max_distance) want.push_back(hit);
        }
        std::vector<std::vector<ScanHit>> alone, batch;
        ScanTopK(table, std::span<const float* const>(&qs[q], 1), 20, &alone, {.isa = isa, .max_distance = max_distance});
        ScanTopK(table, qs, 20, &batch, {.isa = isa, .max_distance = max_distance});
        const std::string where = fmt::format("{} {} query {}", MetricName(metric), ScanIsaName(isa), q);
        ExpectIdentical(alone[0], want, where + " alone");
        ExpectIdentical(batch[q], want, where + " batch");
      }
    }
  }
}

TEST(ScanKernelTest, UnknownVec0VersionFallsBackToVec0Knn) {
  TempDir dir;
  const auto path = dir.path() / "old.db";
  const Matrix data = Vectors(200, 12, 3);
  testing::BuildVec0Shard(path, data, Metric::kL2, 0);
  testing::ExecSql(path, "UPDATE vec_index_info SET value = 'v0.2.0' WHERE key = 'CREATE_VERSION'");
  auto searcher = ShardSearcher::Open(path, 12, Metric::kL2, "old");
  ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
  EXPECT_FALSE((*searcher)->uses_scan_kernel());
  EXPECT_EQ((*searcher)->resident_bytes(), 0);
  const float* q = data.row(17);
  auto hits = (*searcher)->Scan(std::span(&q, 1), 5);
  ASSERT_TRUE(hits.ok());
  ExpectSameNeighbours((*hits)[0], BruteForce(data, q, 5, Metric::kL2), "fallback");
}

TEST(ScanKernelTest, ExtraVec0ColumnsFallBackToVec0Knn) {
  TempDir dir;
  const auto path = dir.path() / "aux.db";
  ASSERT_TRUE(EnsureSqliteVecLoaded().ok());
  testing::ExecSql(path,
         "CREATE TABLE vec_payloads (rowid INTEGER PRIMARY KEY, payload TEXT NOT NULL);"
         "CREATE TABLE vec_id_map (internal_id INTEGER PRIMARY KEY, original_id TEXT NOT NULL);"
         "CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[2] distance_metric=l2, +note text);"
         "INSERT INTO vec_index(rowid, embedding, note) VALUES (0, '[1, 0]', 'a'), (1, '[0, 1]', 'b');");
  auto searcher = ShardSearcher::Open(path, 2, Metric::kL2, "aux");
  ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
  EXPECT_FALSE((*searcher)->uses_scan_kernel());
  const float query[2] = {0.9f, 0.1f};
  auto hits = (*searcher)->Search(query, 1);
  ASSERT_TRUE(hits.ok() && hits->size() == 1u);
  EXPECT_EQ((*hits)[0].rowid, 0);
}

TEST(ScanKernelTest, InconsistentStorageIsCorruptionNamingTheShard) {
  struct Damage {
    const char* sql;
    const char* message;
  };
  const Damage damages[] = {
      {"UPDATE vec_index_vector_chunks00 SET vectors = substr(vectors, 1, 100)", "bytes of vectors"},
      {"UPDATE vec_index_chunks SET validity = x'00'", "validity bitmap"},
      {"DELETE FROM vec_index_vector_chunks00", "has no vectors"},
      {"DELETE FROM vec_index_rowids WHERE rowid = 3", "vec_index_rowids has"},
      {"UPDATE vec_index_vector_chunks00 SET vectors = zeroblob(length(vectors))", "zero vector"},
  };
  TempDir dir;
  int n = 0;
  for (const Damage& damage : damages) {
    const auto path = dir.path() / fmt::format("bad{}.db", n++);
    testing::BuildVec0Shard(path, Vectors(40, 8, 5), Metric::kCosine, 16);
    testing::ExecSql(path, damage.sql);
    auto searcher = ShardSearcher::Open(path, 8, Metric::kCosine, "db=00007");
    ASSERT_FALSE(searcher.ok()) << damage.sql;
    EXPECT_EQ(searcher.status().code(), StatusCode::kCorruption) << damage.sql;
    EXPECT_NE(searcher.status().message().find("shard db=00007"), std::string::npos) << searcher.status().ToString();
    EXPECT_NE(searcher.status().message().find(damage.message), std::string::npos) << searcher.status().ToString();
  }
}

TEST(ScanKernelTest, NonFiniteStoredValueIsCorruption) {
  TempDir dir;
  const auto path = dir.path() / "nan.db";
  testing::BuildVec0Shard(path, Vectors(10, 4, 9), Metric::kL2, 8);
  // Row 2's first float becomes a NaN (0x7FC00000, little-endian).
  testing::ExecSql(path, "UPDATE vec_index_vector_chunks00 SET vectors = substr(vectors, 1, 32) || x'0000C07F' || "
               "substr(vectors, 37) WHERE rowid = 1");
  auto searcher = ShardSearcher::Open(path, 4, Metric::kL2, "nan");
  ASSERT_FALSE(searcher.ok());
  EXPECT_NE(searcher.status().message().find("rowid 2 has a NaN or infinite value"), std::string::npos)
      << searcher.status().ToString();
}

}  // namespace
}  // namespace shardvec
