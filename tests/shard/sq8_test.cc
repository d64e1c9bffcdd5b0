// The int8 pre-scan: codes within half a step of each value; with every row a candidate the answer
// is exactly the float scan's (vec0's rows, scores and order); the pre-scan's candidates are the
// same integers on every instruction set; returned scores are vec0's bits; row ranges bound the
// search; the builder's tables (and none without int8), untouched vec0 answers for other readers,
// and Corruption for code tables that disagree with the shard.
#include "shard/sq8.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "shard/shard_searcher.h"
#include "shard/sq8_table.h"
#include "shard/sublists.h"
#include "shard/vec0_distance.h"
#include "shard/vec0_storage.h"
#include "shard/vec0_top_k.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

// A shard's ScanTable and codes, loaded as the searcher loads them.
struct Loaded {
  ScanTable table;
  std::optional<Sq8Codes> codes;
};

Loaded Load(const std::filesystem::path& path, int64_t dim, Metric metric) {
  sqlite3* db = testing::OpenWithVec0(path);
  auto table = LoadVec0Table(db, dim, metric, "t");
  EXPECT_TRUE(table.ok() && table->has_value());
  Loaded out{std::move(**table), std::nullopt};
  auto codes = LoadSq8Codes(db, out.table, "t");
  EXPECT_TRUE(codes.ok()) << codes.status().ToString();
  if (codes.ok()) out.codes = std::move(*codes);
  sqlite3_close(db);
  return out;
}

std::vector<const float*> Pointers(const Matrix& m) {
  std::vector<const float*> out;
  for (int64_t r = 0; r < m.rows; ++r) out.push_back(m.row(r));
  return out;
}

std::vector<std::pair<int64_t, double>> Pairs(const std::vector<ScanHit>& hits) {
  std::vector<std::pair<int64_t, double>> out;
  for (const ScanHit& h : hits) out.emplace_back(h.rowid, h.score);
  return out;
}

TEST(Sq8Test, CodesStayWithinHalfAStepOfEachValue) {
  Matrix m = testing::RandomMatrix(300, 37, 5);
  for (int64_t r = 0; r < m.rows; ++r) m.row(r)[36] = 2.5f;  // a constant dimension
  const Sq8Params p = TrainSq8(m.data.data(), m.rows, m.cols);
  EXPECT_EQ(p.scales[36], 0.0f);
  std::vector<uint8_t> codes(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    EncodeSq8(p, m.row(r), codes.data());
    for (int64_t j = 0; j < m.cols; ++j) {
      const size_t u = static_cast<size_t>(j);
      const double decoded = p.mins[u] + static_cast<double>(p.scales[u]) * codes[u];
      EXPECT_LE(std::abs(decoded - m.row(r)[j]), p.scales[u] * 0.5001 + 1e-7) << r << "," << j;
    }
    EXPECT_EQ(codes[36], 0);
  }
}

struct Case {
  int64_t dim, rows;
};
const Case kCases[] = {{3, 50}, {17, 129}, {100, 700}, {384, 300}, {785, 333}};

// k × oversample covering every row: exactly the float scan's answer, batch and alone, and the
// pre-scan asked for every row hands back every row.
TEST(Sq8Test, EveryRowRescoredEqualsTheFloatScanBitForBit) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (const Case& c : kCases) {
      const std::string name = fmt::format("{} dim {} rows {}", MetricName(metric), c.dim, c.rows);
      const Matrix data = testing::ClusteredMatrix(c.rows, c.dim, 7, static_cast<uint64_t>(c.dim + c.rows));
      const auto path = dir.path() / fmt::format("{}_{}.db", MetricName(metric), c.dim);
      testing::BuildVec0Shard(path, data, metric, 0, /*int8_codes=*/true);
      Loaded l = Load(path, c.dim, metric);
      ASSERT_TRUE(l.codes.has_value()) << name;
      const Matrix queries = testing::RandomMatrix(5, c.dim, 11);
      const std::vector<const float*> qs = Pointers(queries);
      for (const int64_t k : {int64_t{1}, int64_t{10}, c.rows + 3}) {
        std::vector<std::vector<ScanHit>> want, got;
        Vec0TopK(l.table, qs, k, &want);
        Sq8TopK(l.table, *l.codes, qs, k, &got, {.oversample = c.rows});
        for (size_t q = 0; q < qs.size(); ++q) {
          EXPECT_EQ(Pairs(got[q]), Pairs(want[q])) << name << " k " << k << " query " << q;
        }
      }
      std::vector<std::vector<int64_t>> all;
      Sq8Candidates(*l.codes, qs, c.rows, &all);
      for (const auto& rows : all) EXPECT_EQ(static_cast<int64_t>(rows.size()), c.rows) << name;
    }
  }
}

// The rescore ranks candidates by ScoreRows before vec0's arithmetic: its distances are the scan
// kernel's, bit for bit, on every instruction set.
TEST(Sq8Test, ScoreRowsGivesTheScanKernelsScoresBitForBit) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const Matrix data = testing::ClusteredMatrix(300, 200, 5, 2);
    const auto path = dir.path() / fmt::format("{}.db", MetricName(metric));
    testing::BuildVec0Shard(path, data, metric);
    sqlite3* db = testing::OpenWithVec0(path);
    auto table = LoadVec0Table(db, data.cols, metric, "t");
    sqlite3_close(db);
    ASSERT_TRUE(table.ok() && table->has_value());
    const Matrix queries = testing::RandomMatrix(3, data.cols, 6);
    for (const ScanIsa isa : {ScanIsa::kScalar, ScanIsa::kAvx2, ScanIsa::kAvx512}) {
      if (!ScanIsaSupported(isa)) continue;
      std::vector<std::vector<ScanHit>> hits;
      ScanTopK(**table, Pointers(queries), data.rows, &hits, {.isa = isa});
      for (int64_t q = 0; q < queries.rows; ++q) {
        const auto& h = hits[static_cast<size_t>(q)];
        std::vector<int64_t> rows;
        for (const ScanHit& hit : h) rows.push_back(hit.row);
        std::vector<double> scores(rows.size());
        ScoreRows(**table, queries.row(q), rows, scores, isa);
        for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(scores[i], h[i].score) << MetricName(metric) << " row " << rows[i];
      }
    }
  }
}

TEST(Sq8Test, ThePrescanPicksTheSameRowsOnEveryInstructionSet) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const Matrix data = testing::ClusteredMatrix(3000, 130, 20, 3);
    const auto path = dir.path() / fmt::format("{}.db", MetricName(metric));
    testing::BuildVec0Shard(path, data, metric, 0, true);
    Loaded l = Load(path, data.cols, metric);
    ASSERT_TRUE(l.codes.has_value());
    const Matrix queries = testing::RandomMatrix(4, data.cols, 8);
    std::vector<std::vector<int64_t>> scalar;
    Sq8Candidates(*l.codes, Pointers(queries), 40, &scalar, {.isa = ScanIsa::kScalar});
    for (const auto& rows : scalar) EXPECT_EQ(rows.size(), 40u);
    for (const ScanIsa isa : {ScanIsa::kAvx2, ScanIsa::kAvx512}) {
      if (!ScanIsaSupported(isa)) continue;
      std::vector<std::vector<int64_t>> other;
      Sq8Candidates(*l.codes, Pointers(queries), 40, &other, {.isa = isa});
      EXPECT_EQ(other, scalar) << MetricName(metric) << " " << ScanIsaName(isa);
    }
  }
}

// Sub-list centroids are ranked by their codes (Sq8Rank): keys from two separately trained code
// sets merge into the order of the true distances, for rows at clearly different distances.
TEST(Sq8Test, RankKeysOrderRowsAcrossCodeSetsAsTheirDistances) {
  const int64_t dim = 64, n = 40;
  const Matrix q = testing::RandomMatrix(1, dim, 11);
  const Matrix dirs = testing::RandomMatrix(n, dim, 12);
  double q_norm = 0;
  for (int64_t j = 0; j < dim; ++j) q_norm += static_cast<double>(q.row(0)[j]) * q.row(0)[j];
  q_norm = std::sqrt(q_norm);
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    // Row i: l2 at distance 2(i + 1) from q; cosine at angle 0.05(i + 1) from it.
    Matrix rows{n, dim, std::vector<float>(static_cast<size_t>(n * dim))};
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> v(dirs.row(i), dirs.row(i) + dim);
      double along = 0, norm = 0;
      for (int64_t j = 0; j < dim; ++j) along += v[j] * q.row(0)[j] / q_norm;
      for (int64_t j = 0; j < dim; ++j) v[j] -= along * q.row(0)[j] / q_norm;  // orthogonal to q
      for (double x : v) norm += x * x;
      norm = std::sqrt(norm);
      const double angle = 0.05 * static_cast<double>(i + 1);
      for (int64_t j = 0; j < dim; ++j) {
        const double unit = v[j] / norm;
        rows.row(i)[j] = metric == Metric::kL2
                             ? static_cast<float>(q.row(0)[j] + 2.0 * static_cast<double>(i + 1) * unit)
                             : static_cast<float>(std::cos(angle) * q.row(0)[j] / q_norm + std::sin(angle) * unit);
      }
    }
    // Even rows in one set, odd rows in the other, each with codes trained on its own rows.
    std::vector<std::pair<double, int64_t>> merged;
    for (int64_t parity = 0; parity < 2; ++parity) {
      Matrix part{n / 2, dim, {}};
      for (int64_t i = parity; i < n; i += 2) part.data.insert(part.data.end(), rows.row(i), rows.row(i) + dim);
      const ScanTable table = CentroidTable(part.data.data(), part.rows, dim, metric);
      const Sq8Codes codes = QuantizeRows(part.data.data(), part.rows, dim, table);
      std::vector<std::vector<ScanHit>> ranked;
      const float* query = q.row(0);
      Sq8Rank(codes, std::span(&query, 1), part.rows, &ranked);
      ASSERT_EQ(ranked.size(), 1u);
      ASSERT_EQ(ranked[0].size(), static_cast<size_t>(part.rows));
      for (size_t r = 1; r < ranked[0].size(); ++r) EXPECT_LE(ranked[0][r - 1].score, ranked[0][r].score);
      for (const ScanHit& hit : ranked[0]) merged.emplace_back(hit.score, 2 * hit.row + parity);
    }
    std::sort(merged.begin(), merged.end());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(merged[static_cast<size_t>(i)].second, i) << MetricName(metric) << " rank " << i;
  }
}

// Rows as a CLUSTER shard holds them: sub-clusters (centres N(0, 3²)) of unit Gaussian noise around
// one region. (Per-dimension ranges spanning far-apart clusters leave less resolution inside each:
// ClusteredMatrix's centres, 20 noise widths apart, give recall@10 about 0.76 at the default.)
Matrix ShardLike(int64_t rows, int64_t dim, int64_t clusters, uint64_t seed) {
  Matrix m = testing::RandomMatrix(rows, dim, seed);
  const Matrix centres = testing::RandomMatrix(clusters, dim, seed + 1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < dim; ++j) m.row(r)[j] += 3 * centres.row(r % clusters)[j];
  }
  return m;
}

// With the default oversample: every returned score is vec0's distance of that row, bit for bit,
// in ascending order, and nearly every true neighbour is found.
TEST(Sq8Test, DefaultOversampleReturnsVec0ScoresAndHoldsRecall) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const Matrix data = ShardLike(4000, 96, 40, 21);
    const auto path = dir.path() / fmt::format("{}.db", MetricName(metric));
    testing::BuildVec0Shard(path, data, metric, 0, true);
    auto searcher = ShardSearcher::Open(path, data.cols, metric, "s");
    ASSERT_TRUE(searcher.ok());
    ASSERT_TRUE((*searcher)->uses_int8_codes());
    Loaded l = Load(path, data.cols, metric);
    // Queries near the data: rows of it, nudged.
    Matrix queries = testing::RandomMatrix(30, data.cols, 4);
    for (int64_t q = 0; q < queries.rows; ++q) {
      for (int64_t j = 0; j < data.cols; ++j) queries.row(q)[j] = data.row(q * 97)[j] + 0.01f * queries.row(q)[j];
    }
    const std::vector<const float*> qs = Pointers(queries);
    auto got = (*searcher)->Scan(qs, 10);
    ASSERT_TRUE(got.ok());
    std::vector<std::vector<ScanHit>> exact;
    Vec0TopK(l.table, qs, 10, &exact);
    int64_t found = 0;
    for (size_t q = 0; q < qs.size(); ++q) {
      const auto& hits = (*got)[q];
      ASSERT_EQ(hits.size(), 10u);
      for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_EQ(hits[i].score, static_cast<double>(Vec0Distance(metric, data.row(hits[i].rowid), qs[q], data.cols)));
        if (i > 0) {
          EXPECT_LE(hits[i - 1].score, hits[i].score);
        }
      }
      std::set<int64_t> truth;
      for (const ScanHit& h : exact[q]) truth.insert(h.rowid);
      for (const ScanHit& h : hits) found += truth.contains(h.rowid);
    }
    EXPECT_GE(found, static_cast<int64_t>(qs.size()) * 10 * 95 / 100) << MetricName(metric);
  }
}

TEST(Sq8Test, RowRangesBoundTheSearch) {
  TempDir dir;
  const Matrix data = testing::RandomMatrix(400, 24, 9);
  const auto path = dir.path() / "ranges.db";
  testing::BuildVec0Shard(path, data, Metric::kL2, 0, true);
  Loaded l = Load(path, data.cols, Metric::kL2);
  const RowRange ranges[] = {{10, 50}, {100, 130}, {390, 400}};
  const Matrix queries = testing::RandomMatrix(3, data.cols, 2);
  for (const int64_t oversample : {int64_t{2}, int64_t{1000}}) {
    std::vector<std::vector<ScanHit>> got;
    Sq8TopK(l.table, *l.codes, Pointers(queries), 5, &got, {.oversample = oversample, .row_ranges = ranges});
    for (size_t q = 0; q < got.size(); ++q) {
      ASSERT_EQ(got[q].size(), 5u);
      for (const ScanHit& h : got[q]) {
        EXPECT_TRUE((h.rowid >= 10 && h.rowid < 50) || (h.rowid >= 100 && h.rowid < 130) || h.rowid >= 390) << h.rowid;
      }
      if (oversample == 1000) {
        std::vector<std::pair<double, int64_t>> brute;
        for (const RowRange& r : ranges) {
          for (int64_t i = r.begin; i < r.end; ++i) {
            brute.emplace_back(Vec0Distance(Metric::kL2, data.row(i), queries.row(static_cast<int64_t>(q)), data.cols), i);
          }
        }
        std::sort(brute.begin(), brute.end());
        for (size_t i = 0; i < 5; ++i) EXPECT_EQ(got[q][i].rowid, brute[i].second);
      }
    }
  }
}

// A batch whose queries each search only some ranges (the sub-lists they probe): every query gets the
// answer of its own ranges, the float scan's bit for bit when every candidate is rescored.
TEST(Sq8Test, RangeQueriesGiveEachQueryTheAnswerOfItsOwnRanges) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    const Matrix data = ShardLike(600, 40, 6, 4);
    const auto path = dir.path() / fmt::format("range_queries_{}.db", MetricName(metric));
    testing::BuildVec0Shard(path, data, metric, 0, true);
    Loaded l = Load(path, data.cols, metric);
    const RowRange ranges[] = {{0, 90}, {90, 300}, {300, 310}, {450, 600}};
    // Query 0 searches ranges 0 and 3, query 1 only range 1, query 2 every range, query 3 none.
    const std::vector<std::vector<int32_t>> range_queries = {{0, 2}, {1, 2}, {2}, {0, 2}};
    const Matrix queries = ShardLike(4, data.cols, 6, 5);
    for (const int64_t oversample : {int64_t{3}, int64_t{100000}}) {
      std::vector<std::vector<ScanHit>> got, want;
      Sq8TopK(l.table, *l.codes, Pointers(queries), 7, &got,
              {.oversample = oversample, .row_ranges = ranges, .range_queries = range_queries});
      Vec0TopK(l.table, Pointers(queries), 7, &want, {.row_ranges = ranges, .range_queries = range_queries});
      ASSERT_EQ(got.size(), 4u);
      EXPECT_TRUE(got[3].empty());
      for (size_t q = 0; q < 3; ++q) {
        std::set<int64_t> mine;
        for (size_t r = 0; r < range_queries.size(); ++r) {
          if (!std::ranges::binary_search(range_queries[r], static_cast<int32_t>(q))) continue;
          for (int64_t i = ranges[r].begin; i < ranges[r].end; ++i) mine.insert(i);
        }
        ASSERT_EQ(got[q].size(), 7u) << q;
        for (const ScanHit& h : got[q]) EXPECT_TRUE(mine.contains(h.rowid)) << "query " << q << " row " << h.rowid;
        if (oversample == 100000) {
          EXPECT_EQ(Pairs(got[q]), Pairs(want[q])) << MetricName(metric) << " query " << q;
        }
      }
    }
  }
}

std::set<std::string> TableNames(const std::filesystem::path& path) {
  sqlite3* db = testing::OpenWithVec0(path);
  std::set<std::string> names;
  for (const auto& row : testing::QueryRows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")) names.insert(row[0]);
  sqlite3_close(db);
  return names;
}

std::string JsonVector(const float* v, int64_t dim) {
  std::string s = "[";
  for (int64_t j = 0; j < dim; ++j) s += fmt::format("{}{}", j ? "," : "", v[j]);
  return s + "]";
}

TEST(Sq8TableTest, Int8WritesCodeTablesNoneWritesNoneAndVec0AnswersAlike) {
  TempDir dir;
  const Matrix data = testing::RandomMatrix(2500, 20, 12);
  const auto plain = dir.path() / "plain.db", coded = dir.path() / "coded.db";
  testing::BuildVec0Shard(plain, data, Metric::kCosine, 0, false);
  testing::BuildVec0Shard(coded, data, Metric::kCosine, 0, true);
  const std::set<std::string> plain_tables = TableNames(plain), coded_tables = TableNames(coded);
  for (const std::string& name : plain_tables) EXPECT_FALSE(name.starts_with("shardvec_")) << name;
  std::set<std::string> extra;
  std::set_difference(coded_tables.begin(), coded_tables.end(), plain_tables.begin(), plain_tables.end(),
                      std::inserter(extra, extra.end()));
  EXPECT_EQ(extra, (std::set<std::string>{"shardvec_sq8_codes", "shardvec_sq8_params"}));

  sqlite3* a = testing::OpenWithVec0(plain);
  sqlite3* b = testing::OpenWithVec0(coded);
  // The codes: 1024-row blocks of dim bytes per row, covering rowids 0..2499.
  EXPECT_EQ(testing::QueryRows(b, "SELECT rowid_lo, rowid_hi, length(codes) FROM shardvec_sq8_codes ORDER BY 1"),
            (std::vector<std::vector<std::string>>{{"0", "1024", "20480"}, {"1024", "2048", "20480"},
                                                   {"2048", "2500", "9040"}}));
  EXPECT_EQ(testing::QueryRows(b, "SELECT format, dim, rows, length(mins), length(scales) FROM shardvec_sq8_params"),
            (std::vector<std::vector<std::string>>{{"1", "20", "2500", "80", "80"}}));
  // The reference's tables are declared alike, and vec0 answers a MATCH alike.
  const std::string ddl = "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'shardvec_%' ORDER BY name";
  EXPECT_EQ(testing::QueryRows(a, ddl), testing::QueryRows(b, ddl));
  for (int64_t q = 0; q < 5; ++q) {
    const std::string sql = fmt::format(
        "SELECT rowid, distance FROM vec_index WHERE embedding MATCH '{}' AND k = 15", JsonVector(data.row(q * 31), 20));
    const auto want = testing::QueryRows(a, sql);
    EXPECT_EQ(want.size(), 15u);
    EXPECT_EQ(testing::QueryRows(b, sql), want);
  }
  sqlite3_close(a);
  sqlite3_close(b);
  auto searcher = ShardSearcher::Open(plain, data.cols, Metric::kCosine, "p");
  ASSERT_TRUE(searcher.ok());
  EXPECT_FALSE((*searcher)->uses_int8_codes());
}

TEST(Sq8TableTest, CodeTablesThatDisagreeWithTheShardAreCorruption) {
  TempDir dir;
  const Matrix data = testing::RandomMatrix(1500, 8, 4);
  struct Damage {
    std::string sql, table, what;
  };
  const Damage damages[] = {
      {"DELETE FROM shardvec_sq8_codes WHERE rowid_lo = 1024", "shardvec_sq8_codes", "cover rowids [0, 1024) of 1500"},
      {"UPDATE shardvec_sq8_codes SET codes = substr(codes, 1, 100) WHERE rowid_lo = 0", "shardvec_sq8_codes",
       "holds 100 bytes"},
      {"UPDATE shardvec_sq8_codes SET rowid_lo = 1 WHERE rowid_lo = 0", "shardvec_sq8_codes", "block [1, 1024)"},
      {"UPDATE shardvec_sq8_params SET dim = 9", "shardvec_sq8_params", "dim 9"},
      {"UPDATE shardvec_sq8_params SET rows = 1499", "shardvec_sq8_params", "rows 1499"},
      {"UPDATE shardvec_sq8_params SET format = 3", "shardvec_sq8_params", "format 3"},
      // By rowid (format 2, as an update writes): every row's rowid must have codes.
      {"UPDATE shardvec_sq8_params SET format = 2, rows = 1499", "shardvec_sq8_codes",
       "rowid 1499, outside the codes' rowids [0, 1499)"},
      {"UPDATE shardvec_sq8_params SET format = 2, rows = 1600", "shardvec_sq8_codes", "cover rowids [0, 1500) of 1600"},
      {"UPDATE shardvec_sq8_params SET format = 2, rows = 9223372036854775807", "shardvec_sq8_params", "out of range"},
      {"UPDATE shardvec_sq8_params SET scales = x'00'", "shardvec_sq8_params", "scales holds 1 bytes"},
      {"UPDATE shardvec_sq8_params SET mins = x'0000c07f' || substr(mins, 5)", "shardvec_sq8_params", "mins[0] is nan"},
      {"UPDATE shardvec_sq8_params SET scales = x'000080bf' || substr(scales, 5)", "shardvec_sq8_params",
       "scales[0] is -1"},
      {"DELETE FROM shardvec_sq8_params", "shardvec_sq8_params", "has no row"},
  };
  int n = 0;
  for (const Damage& d : damages) {
    const auto path = dir.path() / fmt::format("bad{}.db", n++);
    testing::BuildVec0Shard(path, data, Metric::kL2, 0, true);
    testing::ExecSql(path, d.sql);
    auto searcher = ShardSearcher::Open(path, data.cols, Metric::kL2, "shard-7");
    ASSERT_FALSE(searcher.ok()) << d.sql;
    EXPECT_EQ(searcher.status().code(), StatusCode::kCorruption) << d.sql;
    const std::string& msg = searcher.status().message();
    for (const std::string& part : {std::string("shard-7"), d.table, d.what}) {
      EXPECT_NE(msg.find(part), std::string::npos) << d.sql << ": " << msg << " lacks " << part;
    }
  }
}

}  // namespace
}  // namespace shardvec
