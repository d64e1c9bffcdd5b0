#include "shard/shard_searcher.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "shard/shard_builder.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

// Ids of mixed types: every third row is a string (with characters JSON must escape).
RecordId IdFor(int64_t row) {
  if (row % 3 == 0) return RecordId(std::string("doc-\"") + std::to_string(row) + "\"-caf\xc3\xa9");
  return RecordId(row * 10 - 1000);
}

std::optional<std::string> PayloadFor(int64_t row) {
  if (row % 2 == 0) return std::nullopt;
  return "{\"row\": " + std::to_string(row) + ", \"tag\": \"t\\u00e9\"}";
}

void BuildShard(const std::filesystem::path& path, const Matrix& vectors, Metric metric) {
  auto builder = ShardBuilder::Create(path, {vectors.cols, metric});
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t row = 0; row < vectors.rows; ++row) {
    ASSERT_TRUE((*builder)->Add(IdFor(row), vectors.row(row), PayloadFor(row)).ok());
  }
  ASSERT_TRUE((*builder)->Seal().ok());
}

double TrueDistance(const float* a, const float* b, int64_t dim, Metric metric) {
  double dot = 0, norm_a = 0, norm_b = 0, squared = 0;
  for (int64_t j = 0; j < dim; ++j) {
    dot += double{a[j]} * b[j];
    norm_a += double{a[j]} * a[j];
    norm_b += double{b[j]} * b[j];
    squared += (double{a[j]} - b[j]) * (double{a[j]} - b[j]);
  }
  if (metric == Metric::kL2) return std::sqrt(squared);
  return 1.0 - dot / (std::sqrt(norm_a) * std::sqrt(norm_b));
}

// Exact top-k rowids by (distance, rowid), computed without SQLite.
std::vector<std::pair<double, int64_t>> BruteForce(const Matrix& data, const float* query,
                                                   int64_t k, Metric metric) {
  std::vector<std::pair<double, int64_t>> all;
  for (int64_t row = 0; row < data.rows; ++row) {
    all.emplace_back(TrueDistance(data.row(row), query, data.cols, metric), row);
  }
  std::sort(all.begin(), all.end());
  all.resize(static_cast<size_t>(std::min<int64_t>(k, data.rows)));
  return all;
}

class ShardSearcherTest : public ::testing::Test {
 protected:
  static constexpr int64_t kRows = 300;
  static constexpr int64_t kDim = 16;

  std::unique_ptr<ShardSearcher> OpenShard(Metric metric, int max_connections = 4,
                                           ScanPath scan_path = ScanPath::kAuto) {
    data_ = testing::RandomMatrix(kRows, kDim, metric == Metric::kL2 ? 11 : 12);
    path_ = tmp_ / "shard.db";
    BuildShard(path_, data_, metric);
    auto searcher = ShardSearcher::Open(path_, kDim, metric, "7", max_connections, scan_path);
    EXPECT_TRUE(searcher.ok()) << searcher.status().ToString();
    return searcher.ok() ? std::move(searcher).value() : nullptr;
  }

  void ExpectMatchesBruteForce(ShardSearcher& searcher, Metric metric) {
    const Matrix queries = testing::RandomMatrix(6, kDim, 99);
    for (int64_t q = 0; q < queries.rows; ++q) {
      const int64_t k = 10;
      auto hits = searcher.Search(queries.row(q), k);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      const auto expected = BruteForce(data_, queries.row(q), k, metric);
      ASSERT_EQ(hits->size(), expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        const ShardHit& hit = (*hits)[i];
        // Position-wise the scores match the exact top-k, and every hit's score is its true
        // distance: together that is a correct top-k even if float rounding swaps a near-tie.
        EXPECT_NEAR(hit.score, expected[i].first, 1e-4) << "query " << q << " position " << i;
        const double true_distance =
            TrueDistance(data_.row(hit.rowid), queries.row(q), kDim, metric);
        EXPECT_NEAR(hit.score, true_distance, 1e-4);
        EXPECT_EQ(hit.rowid, expected[i].second) << "query " << q << " position " << i;
        EXPECT_EQ(hit.id, IdFor(hit.rowid));
        if (i > 0) {
          EXPECT_LE((*hits)[i - 1].score, hit.score);
        }
      }
    }
  }

  TempDir tmp_;
  Matrix data_;
  std::filesystem::path path_;
};

TEST_F(ShardSearcherTest, L2KnnEqualsBruteForceEuclidean) {
  auto searcher = OpenShard(Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  ExpectMatchesBruteForce(*searcher, Metric::kL2);
}

TEST_F(ShardSearcherTest, CosineKnnEqualsBruteForceOneMinusCos) {
  auto searcher = OpenShard(Metric::kCosine);
  ASSERT_NE(searcher, nullptr);
  ExpectMatchesBruteForce(*searcher, Metric::kCosine);
}

TEST_F(ShardSearcherTest, IdsKeepTheirTypeAndPayloadsRoundTrip) {
  auto searcher = OpenShard(Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  auto hits = searcher->Search(data_.row(0), kRows);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), static_cast<size_t>(kRows));
  EXPECT_EQ((*hits)[0].rowid, 0);
  EXPECT_NEAR((*hits)[0].score, 0.0, 1e-6);
  std::vector<bool> seen(kRows, false);
  for (const ShardHit& hit : *hits) {
    ASSERT_GE(hit.rowid, 0);
    ASSERT_LT(hit.rowid, kRows);
    seen[hit.rowid] = true;
    EXPECT_EQ(hit.id.index(), IdFor(hit.rowid).index()) << "rowid " << hit.rowid;
    EXPECT_EQ(hit.id, IdFor(hit.rowid));
    EXPECT_EQ(hit.payload_json, PayloadFor(hit.rowid));
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  EXPECT_EQ(std::get<std::string>((*hits)[0].id), "doc-\"0\"-caf\xc3\xa9");
}

// A batch's winners can repeat a rowid and outnumber one lookup statement's IN list.
TEST_F(ShardSearcherTest, ResolveKeepsOrderAcrossRepeatsAndLookupParts) {
  auto searcher = OpenShard(Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  std::vector<ScanHit> hits;
  for (int64_t i = 0; i < 1300; ++i) hits.push_back(ScanHit{0.5 * static_cast<double>(i), (i * 7) % kRows});
  auto resolved = searcher->Resolve(hits);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  ASSERT_EQ(resolved->size(), hits.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ((*resolved)[i].rowid, hits[i].rowid);
    EXPECT_EQ((*resolved)[i].score, hits[i].score);
    EXPECT_EQ((*resolved)[i].id, IdFor(hits[i].rowid)) << i;
    EXPECT_EQ((*resolved)[i].payload_json, PayloadFor(hits[i].rowid)) << i;
  }
}

TEST_F(ShardSearcherTest, KIsBoundedAndLargeKReturnsEveryRow) {
  auto searcher = OpenShard(Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  EXPECT_TRUE(searcher->Search(data_.row(1), 0)->empty());
  EXPECT_EQ(searcher->Search(data_.row(1), kMaxKnnK)->size(), static_cast<size_t>(kRows));
  for (int64_t bad : {int64_t{-1}, kMaxKnnK + 1}) {
    auto hits = searcher->Search(data_.row(1), bad);
    EXPECT_EQ(hits.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(hits.status().message().find(std::to_string(bad)), std::string::npos);
  }
}

TEST_F(ShardSearcherTest, FileBytesIsTheFileSize) {
  auto searcher = OpenShard(Metric::kL2);
  ASSERT_NE(searcher, nullptr);
  EXPECT_EQ(searcher->file_bytes(), static_cast<int64_t>(std::filesystem::file_size(path_)));
}

TEST_F(ShardSearcherTest, DimensionMismatchIsCorruptionNamingBothValues) {
  BuildShard(tmp_ / "shard.db", testing::RandomMatrix(5, 4, 1), Metric::kL2);
  auto searcher = ShardSearcher::Open(tmp_ / "shard.db", 8, Metric::kL2, "db=00003");
  ASSERT_EQ(searcher.status().code(), StatusCode::kCorruption);
  const std::string& msg = searcher.status().message();
  EXPECT_NE(msg.find("db=00003"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dimension 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dim is 8"), std::string::npos) << msg;
}

TEST_F(ShardSearcherTest, MetricMismatchIsCorruptionNamingBothValues) {
  BuildShard(tmp_ / "shard.db", testing::RandomMatrix(5, 4, 1), Metric::kCosine);
  auto searcher = ShardSearcher::Open(tmp_ / "shard.db", 4, Metric::kL2, "5");
  ASSERT_EQ(searcher.status().code(), StatusCode::kCorruption);
  const std::string& msg = searcher.status().message();
  EXPECT_NE(msg.find("shard 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("distance_metric=cosine"), std::string::npos) << msg;
  EXPECT_NE(msg.find("metric is l2"), std::string::npos) << msg;
}

TEST_F(ShardSearcherTest, NonSqliteFileIsCorruptionAndMissingFileIsNotFound) {
  testing::WriteText(tmp_ / "junk.db", std::string(70000, 'x'));
  auto junk = ShardSearcher::Open(tmp_ / "junk.db", 4, Metric::kL2, "9");
  ASSERT_EQ(junk.status().code(), StatusCode::kCorruption) << junk.status().ToString();
  EXPECT_NE(junk.status().message().find("shard 9"), std::string::npos);

  auto missing = ShardSearcher::Open(tmp_ / "absent.db", 4, Metric::kL2, "9");
  ASSERT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.db"), std::string::npos);
}

TEST_F(ShardSearcherTest, MissingTableIsCorruption) {
  BuildShard(tmp_ / "shard.db", testing::RandomMatrix(5, 4, 1), Metric::kL2);
  testing::ExecSql(tmp_ / "shard.db", "DROP TABLE vec_payloads");
  auto searcher = ShardSearcher::Open(tmp_ / "shard.db", 4, Metric::kL2, "2");
  ASSERT_EQ(searcher.status().code(), StatusCode::kCorruption);
  EXPECT_NE(searcher.status().message().find("vec_payloads"), std::string::npos);
}

TEST_F(ShardSearcherTest, ZeroCosineQueryIsRefusedByTheKernel) {
  auto searcher = OpenShard(Metric::kCosine);
  ASSERT_NE(searcher, nullptr);
  ASSERT_TRUE(searcher->uses_scan_kernel());
  const std::vector<float> zero(kDim, 0.0f);
  auto hits = searcher->Search(zero.data(), 3);
  ASSERT_EQ(hits.status().code(), StatusCode::kInvalidArgument) << hits.status().ToString();
  EXPECT_NE(hits.status().message().find("shard 7: query is all zeros"), std::string::npos)
      << hits.status().ToString();
}

TEST_F(ShardSearcherTest, NullDistanceIsCorruptionNamingShardAndRowid) {
  auto searcher = OpenShard(Metric::kCosine, 4, ScanPath::kVec0Knn);
  ASSERT_NE(searcher, nullptr);
  // sqlite-vec yields NULL cosine distances for a zero query.
  const std::vector<float> zero(kDim, 0.0f);
  auto hits = searcher->Search(zero.data(), 3);
  ASSERT_EQ(hits.status().code(), StatusCode::kCorruption) << hits.status().ToString();
  EXPECT_NE(hits.status().message().find("shard 7"), std::string::npos);
  EXPECT_NE(hits.status().message().find("rowid"), std::string::npos);
  // The connection went back to the pool in a usable state.
  EXPECT_TRUE(searcher->Search(data_.row(0), 3).ok());
}

// The kernel path reads the whole id map when it opens the shard; vec0's path when it answers.
TEST_F(ShardSearcherTest, UnparsableIdMapValueIsCorruptionNamingTheRowid) {
  BuildShard(tmp_ / "shard.db", testing::RandomMatrix(20, 4, 3), Metric::kL2);
  testing::ExecSql(tmp_ / "shard.db",
         "UPDATE vec_id_map SET original_id = 'not json' WHERE internal_id = 13");
  auto expect_named = [](const Status& st) {
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
    EXPECT_NE(st.message().find("shard 4, rowid 13"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("not json"), std::string::npos);
  };
  expect_named(ShardSearcher::Open(tmp_ / "shard.db", 4, Metric::kL2, "4").status());
  auto searcher = ShardSearcher::Open(tmp_ / "shard.db", 4, Metric::kL2, "4", 1, ScanPath::kVec0Knn);
  ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
  const Matrix data = testing::RandomMatrix(20, 4, 3);
  expect_named((*searcher)->Search(data.row(13), 5).status());
}

TEST_F(ShardSearcherTest, MissingIdMapRowFallsBackToTheIntRowid) {
  BuildShard(tmp_ / "shard.db", testing::RandomMatrix(20, 4, 3), Metric::kL2);
  testing::ExecSql(tmp_ / "shard.db", "DELETE FROM vec_id_map WHERE internal_id = 6");
  auto searcher = ShardSearcher::Open(tmp_ / "shard.db", 4, Metric::kL2, "4");
  ASSERT_TRUE(searcher.ok());
  const Matrix data = testing::RandomMatrix(20, 4, 3);
  auto hits = (*searcher)->Search(data.row(6), 1);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, RecordId(int64_t{6}));
}

TEST_F(ShardSearcherTest, ConcurrentSearchesAgreeWithSerialOnes) {
  auto searcher = OpenShard(Metric::kL2, /*max_connections=*/3);
  ASSERT_NE(searcher, nullptr);
  const Matrix queries = testing::RandomMatrix(16, kDim, 5);
  std::vector<std::vector<int64_t>> serial(queries.rows);
  for (int64_t q = 0; q < queries.rows; ++q) {
    auto hits = searcher->Search(queries.row(q), 8);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    for (const ShardHit& hit : *hits) serial[q].push_back(hit.rowid);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        const int64_t q = (t + round) % queries.rows;
        auto hits = searcher->Search(queries.row(q), 8);
        std::vector<int64_t> rowids;
        if (hits.ok()) {
          for (const ShardHit& hit : *hits) rowids.push_back(hit.rowid);
        }
        if (rowids != serial[q]) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GE(searcher->open_connections(), 1);
  EXPECT_LE(searcher->open_connections(), 3);
}

TEST(ShardSearcherDecodeOriginalIdTest, DecodesBothTypesAndRejectsTheRest) {
  EXPECT_EQ(*DecodeOriginalId(R"({"v": -42, "t": "int"})"), RecordId(int64_t{-42}));
  EXPECT_EQ(*DecodeOriginalId(R"({"v": "caf\u00e9", "t": "str"})"),
            RecordId(std::string("caf\xc3\xa9")));
  EXPECT_EQ(*DecodeOriginalId(EncodeOriginalId(RecordId(std::string("x\"y")))),
            RecordId(std::string("x\"y")));
  for (const char* bad :
       {"", "[1]", R"({"v": 1})", R"({"v": "1", "t": "int"})", R"({"v": 1.5, "t": "int"})",
        R"({"v": 1, "t": "str"})", R"({"v": 18446744073709551615, "t": "int"})",
        R"({"v": 1, "t": "uuid"})", R"({"v": 007, "t": "int"})", R"({"v": -01, "t": "int"})",
        R"({"v": +5, "t": "int"})", R"({"v": 9223372036854775808, "t": "int"})"}) {
    auto id = DecodeOriginalId(bad);
    EXPECT_EQ(id.status().code(), StatusCode::kCorruption) << bad;
  }
  // The canonical int form (read without the JSON parser) round-trips at both ends of int64.
  for (const int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(*DecodeOriginalId(EncodeOriginalId(RecordId(v))), RecordId(v)) << v;
  }
}

}  // namespace
}  // namespace shardvec
