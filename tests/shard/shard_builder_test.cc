#include "shard/shard_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::QueryRows;

TEST(ShardBuilderTest, WritesTheReferenceSchemaWith64KiBPages) {
  testing::TempDir tmp;
  const auto path = tmp / "shard.db";
  auto builder = ShardBuilder::Create(path, {3, Metric::kL2});
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  const float a[] = {0, 0, 1}, b[] = {0, 1, 0}, c[] = {1, 0, 0};
  ASSERT_TRUE((*builder)->Add(RecordId(int64_t{10}), a, std::nullopt).ok());
  ASSERT_TRUE((*builder)->Add(RecordId(std::string("doc-\"b\"")), b, R"({"k": 1})").ok());
  ASSERT_TRUE((*builder)->Add(RecordId(int64_t{-7}), c, std::nullopt).ok());
  auto size = (*builder)->Seal();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, static_cast<int64_t>(std::filesystem::file_size(path)));

  sqlite3* db = testing::OpenWithVec0(path);
  EXPECT_EQ(QueryRows(db, "PRAGMA page_size")[0][0], "65536");
  auto tables = QueryRows(db, "SELECT name, sql FROM sqlite_master WHERE type='table' AND name IN "
                              "('kv','vec_index','vec_payloads','vec_id_map') ORDER BY name");
  ASSERT_EQ(tables.size(), 4u);
  EXPECT_EQ(tables[0][1], "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
  EXPECT_EQ(tables[1][1], "CREATE TABLE vec_id_map (internal_id INTEGER PRIMARY KEY, original_id TEXT NOT NULL)");
  EXPECT_EQ(tables[2][1],
            "CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[3] distance_metric=l2)");
  EXPECT_EQ(tables[3][1], "CREATE TABLE vec_payloads (rowid INTEGER PRIMARY KEY, payload TEXT NOT NULL)");

  auto ids = QueryRows(db, "SELECT internal_id, original_id FROM vec_id_map ORDER BY internal_id");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0][1], R"({"v": 10, "t": "int"})");
  EXPECT_EQ(ids[1][1], R"({"v": "doc-\"b\"", "t": "str"})");
  EXPECT_EQ(ids[2][1], R"({"v": -7, "t": "int"})");
  auto payloads = QueryRows(db, "SELECT rowid, payload FROM vec_payloads");
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(payloads[0][0], "1");
  EXPECT_EQ(payloads[0][1], R"({"k": 1})");
  EXPECT_EQ(QueryRows(db, "SELECT count(*) FROM kv")[0][0], "0");

  // The KNN the reference runs, with Euclidean distances.
  auto knn = QueryRows(db, "SELECT rowid, distance FROM vec_index WHERE embedding MATCH '[0, 0.5, 0]' AND k = 2");
  ASSERT_EQ(knn.size(), 2u);
  EXPECT_EQ(knn[0][0], "1");
  EXPECT_NEAR(std::stod(knn[0][1]), 0.5, 1e-6);
  sqlite3_close(db);
}

// High dimensions get smaller vec0 chunks (about 1 MiB each); low ones keep vec0's default DDL.
TEST(ShardBuilderTest, ChunkSizeFollowsTheDimension) {
  EXPECT_EQ(DefaultChunkSize(3), 1024);
  EXPECT_EQ(DefaultChunkSize(256), 1024);
  EXPECT_EQ(DefaultChunkSize(384), 680);
  EXPECT_EQ(DefaultChunkSize(784), 328);
  EXPECT_EQ(DefaultChunkSize(8192), 64);
  testing::TempDir tmp;
  const auto path = tmp / "wide.db";
  auto builder = ShardBuilder::Create(path, {784, Metric::kCosine});
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  const std::vector<float> v(784, 0.5f);
  for (int64_t i = 0; i < 400; ++i) ASSERT_TRUE((*builder)->Add(RecordId(i), v.data(), std::nullopt).ok());
  ASSERT_TRUE((*builder)->Seal().ok());
  sqlite3* db = testing::OpenWithVec0(path);
  EXPECT_EQ(QueryRows(db, "SELECT sql FROM sqlite_master WHERE name = 'vec_index'")[0][0],
            "CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[784] distance_metric=cosine, chunk_size=328)");
  // 400 rows fill one chunk and part of a second.
  EXPECT_EQ(QueryRows(db, "SELECT group_concat(size) FROM vec_index_chunks")[0][0], "328,328");
  sqlite3_close(db);
}

TEST(ShardBuilderTest, RefusesToReuseAnExistingFile) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "shard.db", "old");
  auto builder = ShardBuilder::Create(tmp / "shard.db", {3, Metric::kCosine});
  EXPECT_EQ(builder.status().code(), StatusCode::kAlreadyExists);
}

// Every row vec0 keeps for vec_index, as text: its shadow tables (vec_index_vector_chunks00's own
// "rowid" column hides the real one, so oid names it), AUTOINCREMENT's counters, vec0's full scan
// and a KNN query through vec0.
std::vector<std::vector<std::string>> Vec0Rows(const std::filesystem::path& path, int64_t dim) {
  sqlite3* db = testing::OpenWithVec0(path);
  std::vector<std::vector<std::string>> out;
  std::string query = "[";
  for (int64_t i = 0; i < dim; ++i) query += (i ? "," : "") + std::to_string(0.25 * (i % 5) - 0.4);
  query += "]";
  for (const std::string& sql : std::vector<std::string>{
           "SELECT 'chunk', chunk_id, size, hex(validity), hex(rowids) FROM vec_index_chunks ORDER BY chunk_id",
           "SELECT 'vectors', oid, rowid, hex(vectors) FROM vec_index_vector_chunks00 ORDER BY oid",
           "SELECT 'rowid', rowid, quote(id), chunk_id, chunk_offset FROM vec_index_rowids ORDER BY rowid",
           "SELECT 'sequence', name, seq FROM sqlite_sequence ORDER BY name",
           "SELECT 'info', key, quote(value) FROM vec_index_info ORDER BY key",
           "SELECT 'scan', rowid, hex(embedding) FROM vec_index",
           "SELECT 'knn', rowid, distance FROM vec_index WHERE embedding MATCH vec_f32('" + query +
               "') AND k = 5 ORDER BY distance"}) {
    for (auto& row : QueryRows(db, sql)) out.push_back(std::move(row));
  }
  sqlite3_close(db);
  return out;
}

TEST(ShardBuilderTest, DirectChunkWritesLeaveWhatVec0InsertsLeave) {
  struct Case {
    int64_t dim, rows, chunk_size;
    Metric metric;
    int64_t expected_rows = 0;  // > 0: pages and chunks sized to the rows
  };
  const Case cases[] = {{1, 0, 8, Metric::kL2},       {3, 1, 8, Metric::kL2},      {3, 7, 8, Metric::kCosine},
                        {17, 8, 8, Metric::kL2},      {17, 9, 8, Metric::kCosine}, {5, 29, 8, Metric::kL2},
                        {384, 1500, 0, Metric::kCosine}, {784, 700, 0, Metric::kL2}, {16, 300, 64, Metric::kL2},
                        {384, 1500, 0, Metric::kCosine, 1500}, {784, 700, 0, Metric::kL2, 700},
                        {3, 5000, 0, Metric::kL2, 5000}, {784, 700, 0, Metric::kL2, 650}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "dim " << c.dim << " rows " << c.rows << " chunk_size " << c.chunk_size
                                      << " expected_rows " << c.expected_rows);
    testing::TempDir tmp;
    const Matrix data = testing::RandomMatrix(std::max<int64_t>(c.rows, 1), c.dim, 40 + c.dim);
    std::vector<std::vector<std::vector<std::string>>> storage;
    for (bool direct : {true, false}) {
      ShardBuildOptions options{c.dim, c.metric};
      options.chunk_size = c.chunk_size;
      options.write_chunks_directly = direct;
      if (c.expected_rows > 0) {
        options.page_size = 0;
        options.expected_rows = c.expected_rows;
      }
      const auto path = tmp / (direct ? "direct.db" : "vec0.db");
      auto builder = ShardBuilder::Create(path, options);
      ASSERT_TRUE(builder.ok()) << builder.status().ToString();
      EXPECT_EQ((*builder)->writes_chunks_directly(), direct);
      // Rowids as the writer assigns them (0, 1, 2...), ids and payloads beside them.
      for (int64_t r = 0; r < c.rows; ++r) {
        ASSERT_TRUE((*builder)->Add(RecordId(r * 3), data.row(r), r % 2 ? std::optional<std::string>("{}") : std::nullopt).ok());
      }
      ASSERT_TRUE((*builder)->Seal().ok());
      storage.push_back(Vec0Rows(path, c.dim));
    }
    EXPECT_EQ(storage[0], storage[1]);
    // The scan lists every row once, so an empty comparison cannot pass by accident.
    EXPECT_EQ(std::count_if(storage[0].begin(), storage[0].end(), [](const auto& row) { return row[0] == "scan"; }),
              c.rows);
  }
}

// Chunks sized to a known row count: as few chunks as DefaultChunkSize allows, filled evenly.
TEST(ShardBuilderTest, ChunkSizeFollowsTheRowCount) {
  EXPECT_EQ(ChunkSizeFor(784, 0), 328);     // unknown: DefaultChunkSize
  EXPECT_EQ(ChunkSizeFor(784, 1), 8);
  EXPECT_EQ(ChunkSizeFor(784, 234), 240);
  EXPECT_EQ(ChunkSizeFor(784, 328), 328);
  EXPECT_EQ(ChunkSizeFor(784, 329), 168);   // two chunks of 165 rows, rounded up to 8
  EXPECT_EQ(ChunkSizeFor(784, 3750), 320);  // 12 chunks of 313
  EXPECT_EQ(ChunkSizeFor(3, 5000), 1000);
  EXPECT_EQ(ChunkSizeFor(384, 1000000), 680);
  for (int64_t rows : {1, 7, 8, 9, 100, 329, 1000, 4097, 123457}) {
    for (int64_t dim : {3, 384, 784, 8192}) {
      const int64_t size = ChunkSizeFor(dim, rows);
      const int64_t chunks = (rows + size - 1) / size;
      EXPECT_EQ(size % 8, 0);
      EXPECT_LE(size, DefaultChunkSize(dim));
      EXPECT_EQ(chunks, (rows + DefaultChunkSize(dim) - 1) / DefaultChunkSize(dim)) << rows << " rows, dim " << dim;
      EXPECT_LT(chunks * size - rows, 8 * chunks) << rows << " rows, dim " << dim;
    }
  }
  EXPECT_EQ(PageSizeFor(784, 0), 65536);
  EXPECT_EQ(PageSizeFor(784, 234), 4096);
  EXPECT_EQ(PageSizeFor(784, 938), 4096);
  EXPECT_EQ(PageSizeFor(784, 3750), 16384);
  EXPECT_EQ(PageSizeFor(384, 62500), 65536);
}

// A small shard sized to its rows holds its vectors and ids in at most 1.15x their raw bytes (one
// built without the row count needs more), and sqlite-vec answers a KNN over it with the exact result.
TEST(ShardBuilderTest, ShardSizedToItsRowsIsCompactAndReadBySqliteVec) {
  struct Case {
    int64_t dim, rows;
  };
  for (const Case c : {Case{784, 234}, Case{384, 781}, Case{784, 3750}, Case{384, 20000}}) {
    SCOPED_TRACE(::testing::Message() << "dim " << c.dim << " rows " << c.rows);
    testing::TempDir tmp;
    const Matrix data = testing::RandomMatrix(c.rows, c.dim, 7);
    const double raw = static_cast<double>(c.rows) * (c.dim * sizeof(float) + sizeof(int64_t));
    std::vector<int64_t> sizes;
    for (bool sized : {true, false}) {
      ShardBuildOptions options{c.dim, Metric::kL2};
      if (sized) {
        options.page_size = 0;
        options.expected_rows = c.rows;
      }
      const auto path = tmp / (sized ? "sized.db" : "default.db");
      auto builder = ShardBuilder::Create(path, options);
      ASSERT_TRUE(builder.ok()) << builder.status().ToString();
      for (int64_t r = 0; r < c.rows; ++r) ASSERT_TRUE((*builder)->Add(RecordId(r), data.row(r), std::nullopt).ok());
      auto size = (*builder)->Seal();
      ASSERT_TRUE(size.ok());
      sizes.push_back(*size);
    }
    EXPECT_LE(static_cast<double>(sizes[0]), 1.15 * raw) << sizes[0] << " bytes for " << raw << " raw";
    EXPECT_LT(sizes[0], sizes[1]);

    sqlite3* db = testing::OpenWithVec0(tmp / "sized.db");
    EXPECT_EQ(QueryRows(db, "PRAGMA page_size")[0][0], std::to_string(PageSizeFor(c.dim, c.rows)));
    const int64_t chunk = ChunkSizeFor(c.dim, c.rows);
    const std::string chunk_option = chunk == kVec0DefaultChunkSize ? "" : fmt::format(", chunk_size={}", chunk);
    EXPECT_EQ(QueryRows(db, "SELECT sql FROM sqlite_master WHERE name = 'vec_index'")[0][0],
              fmt::format("CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[{}] distance_metric=l2{})", c.dim,
                          chunk_option));
    // vec0's own KNN over every row: the exact 10 nearest of a stored row (itself first, at 0).
    const float* query = data.row(c.rows / 2);
    std::string literal = "[";
    for (int64_t d = 0; d < c.dim; ++d) literal += fmt::format("{}{:.9g}", d ? "," : "", query[d]);
    literal += "]";
    std::vector<std::pair<double, int64_t>> exact;
    for (int64_t r = 0; r < c.rows; ++r) {
      double distance = 0;
      for (int64_t d = 0; d < c.dim; ++d) distance += (double{data.row(r)[d]} - query[d]) * (double{data.row(r)[d]} - query[d]);
      exact.emplace_back(distance, r);
    }
    std::sort(exact.begin(), exact.end());
    const auto knn = QueryRows(db, "SELECT rowid FROM vec_index WHERE embedding MATCH '" + literal +
                                       "' AND k = 10 ORDER BY distance");
    ASSERT_EQ(knn.size(), 10u);
    for (size_t i = 0; i < knn.size(); ++i) EXPECT_EQ(knn[i][0], std::to_string(exact[i].second)) << "rank " << i;
    EXPECT_EQ(QueryRows(db, "SELECT count(*) FROM vec_index")[0][0], std::to_string(c.rows));
    sqlite3_close(db);
  }
}

TEST(EncodeOriginalIdTest, MatchesPythonJsonDumps) {
  EXPECT_EQ(EncodeOriginalId(RecordId(int64_t{0})), R"({"v": 0, "t": "int"})");
  EXPECT_EQ(EncodeOriginalId(RecordId(std::string("caf\xc3\xa9"))), R"({"v": "caf\u00e9", "t": "str"})");
}

}  // namespace
}  // namespace shardvec
