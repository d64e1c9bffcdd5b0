#include "shard/shard_builder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

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

TEST(EncodeOriginalIdTest, MatchesPythonJsonDumps) {
  EXPECT_EQ(EncodeOriginalId(RecordId(int64_t{0})), R"({"v": 0, "t": "int"})");
  EXPECT_EQ(EncodeOriginalId(RecordId(std::string("caf\xc3\xa9"))), R"({"v": "caf\u00e9", "t": "str"})");
}

}  // namespace
}  // namespace shardvec
