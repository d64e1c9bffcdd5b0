#include <gtest/gtest.h>

#include <tuple>
#include <vector>

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

TEST(KeysTest, ACustomLayoutGivesTheReferencesKeys) {
  // The reference: join(s3_prefix, shard_prefix, f"run_id={run}", db_path_template.format(db_id=N),
  // f"attempt={a:02d}") and join(s3_prefix, run_registry_prefix, f"{ts}_run_id={run}_{uuid}", "run.yaml").
  const KeyLayout layout{"blobs", "shard-{db_id:03d}", "registry"};
  EXPECT_EQ(ShardKey("R", 7, 0, layout), "blobs/run_id=R/shard-007/attempt=00/shard.db");
  EXPECT_EQ(ShardClaimKey("R", 7, 1, layout), "blobs/run_id=R/shard-007/attempt=01/_CLAIM");
  EXPECT_EQ(RunClaimKey("R", layout), "blobs/run_id=R/_RUN");
  EXPECT_EQ(RunRecordKey("2026-01-02T03:04:05.000006Z", "R", "ab12", "registry"),
            "registry/2026-01-02T03:04:05.000006Z_run_id=R_ab12/run.yaml");
  EXPECT_EQ(RunIdOfRecordKey("registry/2026-01-02T03:04:05.000006Z_run_id=R_ab12/run.yaml", "registry"), "R");
  EXPECT_FALSE(RunIdOfRecordKey("registry/2026-01-02T03:04:05.000006Z_run_id=R_ab12/run.yaml"));
  auto dir = ParseShardDirKey("blobs/run_id=R/shard-007/attempt=00/shard.db", "blobs");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->key, "blobs/run_id=R/shard-007/attempt=00");
  EXPECT_EQ(dir->run_id, "R");
  EXPECT_FALSE(ParseShardDirKey("blobs/run_id=R/shard-007/attempt=00/shard.db"));  // not under shards/
  EXPECT_FALSE(ParseShardDirKey("blobs/run_id=R/_RUN", "blobs"));
}

TEST(KeysTest, DbPathTemplatesFormatAsPythonDoes) {
  // Expected values are Python's str.format(db_id=N) of each template.
  const std::vector<std::tuple<std::string, int64_t, std::string>> cases = {
      {"db={db_id:05d}", 3, "db=00003"},   {"{db_id}", 42, "42"},           {"s{db_id:x}", 255, "sff"},
      {"s{db_id:#X}", 255, "s0XFF"},       {"b{db_id:08b}", 5, "b00000101"}, {"o{db_id:o}", 8, "o10"},
      {"{db_id:_>6}", 12, "____12"},       {"{db_id:-<4}x", 7, "7---x"},     {"{db_id:.^3}", 1, ".1."},
      {"{db_id:=6}", 12, "    12"},        {"{{{db_id}}}", 1, "{1}"},        {"a{db_id}b{db_id:02d}", 3, "a3b03"},
      {"db={db_id:05d}", 123456, "db=123456"},
  };
  for (const auto& [tmpl, db_id, expected] : cases) {
    KeyLayout layout;
    layout.db_path_template = tmpl;
    // Valid where the result is a safe segment (spaces and braces are not).
    const bool safe = expected.find_first_of(" {}") == std::string::npos;
    EXPECT_EQ(ValidateKeyLayout(layout).ok(), safe) << tmpl << ": " << ValidateKeyLayout(layout).ToString();
    EXPECT_EQ(FormatDbPath(tmpl, db_id), expected) << tmpl;
  }
}

TEST(KeysTest, LayoutErrorsNameTheFieldAndTheValue) {
  const std::vector<std::tuple<KeyLayout, std::string>> cases = {
      {{"", "db={db_id:05d}", "runs"}, "shard_prefix must be non-empty"},
      {{"a/b", "db={db_id:05d}", "runs"}, "shard_prefix must be a single path segment, got 'a/b'"},
      {{"a..b", "db={db_id:05d}", "runs"}, "shard_prefix must not contain '..', got 'a..b'"},
      {{"a b", "db={db_id:05d}", "runs"}, "shard_prefix contains unsupported characters"},
      {{"shards", "db={db_id:05d}", "r=s"}, "run_registry_prefix contains unsupported characters"},
      {{"shards", "db", "runs"}, "db_path_template 'db' is not supported: it has no {db_id} field"},
      {{"shards", "{0}", "runs"}, "db_path_template '{0}' is not supported: field '{0}' is not supported"},
      {{"shards", "{db_id!r}", "runs"}, "field '{db_id!r}' is not supported"},
      {{"shards", "{db_id:,d}", "runs"}, "format spec ',d' is not supported"},
      {{"shards", "{db_id:.2f}", "runs"}, "format spec '.2f' is not supported"},
      {{"shards", "{db_id:#o}", "runs"}, "'#' with type 'o' is not supported"},
      {{"shards", "{db_id:<05}", "runs"}, "'0' beside an alignment is not supported"},
      {{"shards", "d/{db_id}", "runs"}, "db_path_template 'd/{db_id}' formatted for db_id=0 must be a single path segment"},
      {{"shards", "d {db_id}", "runs"}, "formatted for db_id=0 contains unsupported characters"},
      {{"shards", "{db_id:+}", "runs"}, "contains unsupported characters"},
      {{"shards", "{db_id", "runs"}, "a '{' is not closed"},
      {{"shards", "db}{db_id}", "runs"}, "a single '}' must be written '}}'"},
  };
  for (const auto& [layout, expected] : cases) {
    const Status st = ValidateKeyLayout(layout);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << expected;
    EXPECT_NE(st.message().find(expected), std::string::npos) << st.message();
  }
  const Status flags = ValidateKeyLayout(KeyLayout{"a/b", "db={db_id:05d}", "runs"},
                                         LayoutFieldNames{.shard_prefix = "--shard-prefix"});
  EXPECT_NE(flags.message().find("--shard-prefix must be a single path segment"), std::string::npos) << flags.message();
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
