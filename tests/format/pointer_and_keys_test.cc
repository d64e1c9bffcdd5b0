#include <gtest/gtest.h>

#include "common/time_util.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/run_record.h"
#include "shardvec/limits.h"

namespace shardvec {
namespace {

TEST(CurrentPointerTest, EncodesCompactSortedJson) {
  CurrentPointer p;
  p.manifest_ref = "file:///s/manifests/2026-01-02T03:04:05.000006Z_run_id=R/manifest";
  p.run_id = "R";
  p.updated_at = "2026-01-02T03:04:05.000007Z";
  EXPECT_EQ(EncodeCurrentPointer(p),
            R"({"format_version":1,"manifest_content_type":"application/x-sqlite3",)"
            R"("manifest_ref":"file:///s/manifests/2026-01-02T03:04:05.000006Z_run_id=R/manifest",)"
            R"("run_id":"R","updated_at":"2026-01-02T03:04:05.000007Z"})");
  auto back = ParseCurrentPointer(EncodeCurrentPointer(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->manifest_ref, p.manifest_ref);
}

TEST(CurrentPointerTest, CorruptPointersAreCorruptionErrors) {
  for (const char* bad : {"", "{", "[]", R"({"run_id":"R"})",
                          R"({"manifest_ref":"x","manifest_content_type":"a","run_id":"R","updated_at":"yesterday"})",
                          // Above int64: would wrap to a negative version.
                          R"({"manifest_ref":"x","manifest_content_type":"a","run_id":"R",)"
                          R"("updated_at":"2026-11-24T21:36:00Z","format_version":18446744073709551615})"}) {
    auto r = ParseCurrentPointer(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << bad;
    EXPECT_NE(r.status().message().find("CURRENT pointer validation failed"), std::string::npos);
  }
}

TEST(CurrentPointerTest, OversizedOrDeepPointersAreCorruptionNamingTheLimit) {
  const std::string big(static_cast<size_t>(kMaxCurrentPointerBytes) + 1, ' ');
  auto r = ParseCurrentPointer(big);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(std::to_string(kMaxCurrentPointerBytes)), std::string::npos)
      << r.status().message();
  const std::string deep = std::string(20000, '[') + std::string(20000, ']');
  r = ParseCurrentPointer(deep);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(std::to_string(kMaxJsonNesting)), std::string::npos) << r.status().message();
}

TEST(KeysTest, MatchTheLayout) {
  EXPECT_EQ(ShardKey("R", 3, 0), "shards/run_id=R/db=00003/attempt=00/shard.db");
  EXPECT_EQ(ShardDirKey("R", 12345, 1), "shards/run_id=R/db=12345/attempt=01");
  EXPECT_EQ(ShardClaimKey("R", 3, 2), "shards/run_id=R/db=00003/attempt=02/_CLAIM");
  EXPECT_EQ(VectorMetaKey("R", "centroids.npy"), "vector_meta/run_id=R/centroids.npy");
  EXPECT_EQ(ManifestKey("2026-01-02T03:04:05.000006Z", "R"), "manifests/2026-01-02T03:04:05.000006Z_run_id=R/manifest");
  auto dir = ParseManifestRef("file:///x/manifests/2026-01-02T03:04:05.000006Z_run_id=abc-1/manifest");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->timestamp, "2026-01-02T03:04:05.000006Z");
  EXPECT_EQ(dir->run_id, "abc-1");
  EXPECT_FALSE(ParseManifestDirName("2026-01-02_run_id=x"));
}

TEST(TimeUtilTest, FormatsAndParsesMicroseconds) {
  auto t = ParseTimestamp("2026-11-24T21:36:00.123456Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatTimestamp(*t), "2026-11-24T21:36:00.123456Z");
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("2026-11-24T21:36:00+00:00")), "2026-11-24T21:36:00.000000Z");
  EXPECT_FALSE(ParseTimestamp("nope"));
  // Only the exact shape: no spaces, signs or short fields that sscanf would let through.
  for (const char* bad : {" 2026-11-24T21:36:00Z", "2026-11-24T21: 6:00Z", "2026-+1-24T21:36:00Z",
                          "2026-1-24T21:36:00Z", "-026-11-24T21:36:00Z", "2026-11-24 21:36:00Z"}) {
    EXPECT_FALSE(ParseTimestamp(bad)) << bad;
  }
}

TEST(RunRecordTest, RoundTripsAndSortsKeys) {
  RunRecord r;
  r.run_id = "R";
  r.started_at = r.updated_at = r.lease_expires_at = "2026-11-24T21:36:00.123456Z";
  r.s3_prefix = "file:///s";
  r.error_message = "it's broken";
  const std::string yaml = EncodeRunRecord(r);
  EXPECT_LT(yaml.find("db_path_template"), yaml.find("writer_type"));
  auto back = ParseRunRecord(yaml);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->run_id, "R");
  EXPECT_EQ(back->status, "running");
  EXPECT_EQ(*back->error_message, "it's broken");
  EXPECT_FALSE(back->manifest_ref);
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

TEST(KeyFromUrlTest, OnlyUrlsInsideTheStoreMapToKeys) {
  const std::string prefix = "s3://bucket/snap";
  EXPECT_EQ(*KeyFromUrl(prefix, prefix + "/shards/run_id=r/db=00000/attempt=00/shard.db"),
            "shards/run_id=r/db=00000/attempt=00/shard.db");
  // The reference's trailing-slash prefix writes "snap//shards/…": on S3 that is the real key.
  EXPECT_EQ(*KeyFromUrl(prefix, prefix + "//shards/x"), "/shards/x");
  for (const std::string url : {"s3://other/snap/shards/x", "s3://bucket/snapshot/shards/x", "s3://bucket/snap",
                                "file:///bucket/snap/shards/x", "s3://bucket/snap/shards/../../x",
                                "s3://bucket/snap/../snap/shards/x", "s3://bucket/snap/./shards/x",
                                "s3://bucket/snap/shards/.."}) {
    auto key = KeyFromUrl(prefix, url);
    ASSERT_FALSE(key.ok()) << url;
    EXPECT_EQ(key.status().code(), StatusCode::kCorruption) << url;
    EXPECT_NE(key.status().message().find("'" + url + "'"), std::string::npos) << key.status().message();
  }
}

}  // namespace
}  // namespace shardvec
