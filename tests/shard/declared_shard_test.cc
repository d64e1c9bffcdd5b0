// ShardSearcher::OpenDeclared (a shard file opened on its own, with the dim and metric its vec_index
// declares) and GetKv (the kv table shardyfusion's unified shards fill).
#include <gtest/gtest.h>

#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sqlite_vec.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

std::filesystem::path Build(const testing::TempDir& tmp, const Matrix& vectors, Metric metric) {
  const auto path = tmp / "shard.db";
  auto builder = ShardBuilder::Create(path, {vectors.cols, metric});
  EXPECT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t row = 0; row < vectors.rows; ++row) {
    EXPECT_TRUE((*builder)->Add(RecordId(row + 100), vectors.row(row), std::nullopt).ok());
  }
  EXPECT_TRUE((*builder)->Seal().ok());
  return path;
}

TEST(DeclaredShardTest, OpensWithTheDeclaredDimAndMetricAndSearchesAsAKnownOpenDoes) {
  ASSERT_TRUE(EnsureSqliteVecLoaded().ok());
  for (Metric metric : {Metric::kCosine, Metric::kL2}) {
    testing::TempDir tmp;
    const Matrix data = testing::RandomMatrix(120, 7, 4);
    const auto path = Build(tmp, data, metric);
    auto declared = ShardSearcher::OpenDeclared(path, "alone");
    ASSERT_TRUE(declared.ok()) << declared.status().ToString();
    EXPECT_EQ((*declared)->dim(), 7);
    EXPECT_EQ((*declared)->metric(), metric);
    auto known = ShardSearcher::Open(path, 7, metric, "known");
    ASSERT_TRUE(known.ok());
    const Matrix queries = testing::RandomMatrix(5, 7, 9);
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto a = (*declared)->Search(queries.row(q), 6);
      auto b = (*known)->Search(queries.row(q), 6);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->size(), 6u);
      for (size_t i = 0; i < a->size(); ++i) {
        EXPECT_EQ((*a)[i].id, (*b)[i].id);
        EXPECT_EQ((*a)[i].score, (*b)[i].score);
      }
    }
  }
}

TEST(DeclaredShardTest, KvLookupsReadTheKvTable) {
  ASSERT_TRUE(EnsureSqliteVecLoaded().ok());
  testing::TempDir tmp;
  const auto path = Build(tmp, testing::RandomMatrix(10, 3, 1), Metric::kL2);
  testing::ExecSql(path, "INSERT INTO kv (k, v) VALUES (x'6b00ff', x'76616c')");
  auto shard = ShardSearcher::OpenDeclared(path, "kv");
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  auto hit = (*shard)->GetKv(std::string("k\0\xff", 3));
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  EXPECT_EQ(hit->value_or("(none)"), "val");
  auto miss = (*shard)->GetKv("k");
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
}

TEST(DeclaredShardTest, AMissingFileOrOneWithoutAVec0TableIsAnErrorNamingIt) {
  ASSERT_TRUE(EnsureSqliteVecLoaded().ok());
  testing::TempDir tmp;
  auto missing = ShardSearcher::OpenDeclared(tmp / "none.db", "none");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("none.db"), std::string::npos);
  testing::ExecSql(tmp / "plain.db", "CREATE TABLE t (x)");
  auto plain = ShardSearcher::OpenDeclared(tmp / "plain.db", "plain");
  EXPECT_EQ(plain.status().code(), StatusCode::kCorruption);
  EXPECT_NE(plain.status().message().find("has no vec_index vec0 table"), std::string::npos);
  testing::WriteText(tmp / "text.db", "not sqlite at all, not even close to a header of one");
  auto text = ShardSearcher::OpenDeclared(tmp / "text.db", "text");
  EXPECT_EQ(text.status().code(), StatusCode::kCorruption) << text.status().ToString();
}

}  // namespace
}  // namespace shardvec
