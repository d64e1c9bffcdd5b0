#include "format/manifest.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <limits>

#include "common/json_text.h"
#include "shardvec/limits.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

Manifest SampleManifest() {
  Manifest m;
  m.run_id = "run1";
  m.created_at = "2026-11-24T21:36:00.123456Z";
  m.num_dbs = 4;
  m.s3_prefix = "file:///tmp/store";
  m.custom = {{"vector", {{"dim", 3}, {"metric", "l2"}}}};
  ManifestShard s;
  s.db_id = 2;
  s.db_url = "file:///tmp/store/shards/run_id=run1/db=00002/attempt=00";
  s.row_count = 10;
  s.db_bytes = 65536;
  s.checkpoint_id = "abc";
  m.shards.push_back(s);
  return m;
}

TEST(ManifestTest, RoundTripsThroughSqliteBytes) {
  auto bytes = SerializeManifest(SampleManifest());
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 16), std::string("SQLite format 3\0", 16));
  auto parsed = ParseManifest(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->run_id, "run1");
  EXPECT_EQ(parsed->num_dbs, 4);
  EXPECT_EQ(parsed->format_version, 4);
  EXPECT_EQ(parsed->key_encoding, "raw");
  ASSERT_EQ(parsed->shards.size(), 1u);
  EXPECT_EQ(parsed->shards[0].db_id, 2);
  EXPECT_EQ(parsed->shards[0].row_count, 10);
  EXPECT_EQ(parsed->custom["vector"]["metric"], "l2");
}

TEST(ManifestTest, StoredTextUsesTheReferenceJsonStyles) {
  auto bytes = SerializeManifest(SampleManifest());
  sqlite3* db = testing::OpenBytes(*bytes);
  auto meta = testing::QueryRows(db, "SELECT sharding, custom, key_col, db_path_template, shard_prefix FROM build_meta");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta[0][0], R"({"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"})");
  EXPECT_EQ(meta[0][1], R"({"vector": {"dim": 3, "metric": "l2"}})");
  EXPECT_EQ(meta[0][2], "_vector_id");
  EXPECT_EQ(meta[0][3], "db={db_id:05d}");
  EXPECT_EQ(meta[0][4], "shards");
  auto shards = testing::QueryRows(db, "SELECT attempt, min_key, max_key, writer_info FROM shards");
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_EQ(shards[0][0], "0");
  EXPECT_EQ(shards[0][1], "<null>");
  EXPECT_EQ(shards[0][3], R"({"attempt": 0, "duration_ms": 0, "stage_id": null, "task_attempt_id": null})");
  sqlite3_close(db);
}

TEST(ManifestTest, RejectsWhatTheReferenceRejects) {
  EXPECT_NE(ParseManifest("not sqlite").status().message().find("magic header not found"), std::string::npos);
  Manifest bad_version = SampleManifest();
  bad_version.format_version = 3;
  auto r = ParseManifest(*SerializeManifest(bad_version));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("format_version 3"), std::string::npos);

  Manifest out_of_range = SampleManifest();
  out_of_range.shards[0].db_id = 4;
  r = ParseManifest(*SerializeManifest(out_of_range));
  EXPECT_NE(r.status().message().find("db_id 4 is outside [0, 4)"), std::string::npos);

  Manifest no_dbs = SampleManifest();
  no_dbs.num_dbs = 0;
  no_dbs.shards.clear();
  r = ParseManifest(*SerializeManifest(no_dbs));
  EXPECT_NE(r.status().message().find("num_dbs must be > 0"), std::string::npos);

  std::string truncated = *SerializeManifest(SampleManifest());
  truncated.resize(100);
  EXPECT_EQ(ParseManifest(truncated).status().code(), StatusCode::kCorruption);
}

// A manifest from a hostile store may declare any shard count; readers size tables by it.
TEST(ManifestTest, NumDbsAboveTheLimitIsCorruption) {
  for (int64_t num_dbs : {kMaxNumDbs + 1, int64_t{1} << 40, std::numeric_limits<int64_t>::max()}) {
    Manifest huge = SampleManifest();
    huge.num_dbs = num_dbs;
    auto r = ParseManifest(*SerializeManifest(huge));
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << num_dbs;
    EXPECT_NE(r.status().message().find(fmt::format("num_dbs must be <= {} (got {})", kMaxNumDbs, num_dbs)),
              std::string::npos)
        << r.status().message();
  }
  Manifest at_limit = SampleManifest();
  at_limit.num_dbs = kMaxNumDbs;
  EXPECT_TRUE(ParseManifest(*SerializeManifest(at_limit)).ok());
}

TEST(ManifestTest, BytesAboveTheLimitAreRefusedBeforeParsing) {
  std::string bytes = *SerializeManifest(SampleManifest());
  bytes.resize(static_cast<size_t>(kMaxManifestBytes) + 1);
  auto r = ParseManifest(bytes);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(std::to_string(kMaxManifestBytes)), std::string::npos) << r.status().message();
}

TEST(JsonTextTest, PythonStyleMatchesJsonDumpsSortKeys) {
  nlohmann::json j = {{"b", {1, 2.5, "é"}}, {"a", nullptr}, {"c", {{"z", true}}}};
  EXPECT_EQ(PythonJsonDumps(j), R"({"a": null, "b": [1, 2.5, "\u00e9"], "c": {"z": true}})");
  EXPECT_EQ(CompactJsonDumps(j), R"({"a":null,"b":[1,2.5,"\u00e9"],"c":{"z":true}})");
}

}  // namespace
}  // namespace shardvec
