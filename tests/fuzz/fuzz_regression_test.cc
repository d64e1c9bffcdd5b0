// Regression inputs for the bugs found while fuzzing the parsers of untrusted bytes: each runs
// through its fuzz target (no crash, invariants hold) and checks the exact error the user sees.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "common/json_text.h"
#include "format/manifest.h"
#include "format/npy.h"
#include "fuzz/fuzz_targets.h"
#include "shardvec/input_files.h"
#include "support/test_util.h"
#include "write/record_check.h"

namespace shardvec::fuzz {
namespace {

using ::testing::HasSubstr;

FuzzOutcome RunTarget(std::string_view name, std::string_view input) {
  const FuzzTarget* target = FindFuzzTarget(name);
  EXPECT_NE(target, nullptr) << name;
  return target == nullptr ? FuzzOutcome{} : target->run(input);
}

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// 100 000 levels: nlohmann parses it, but dumping the value (payloads are stored as dumped text)
// recursed once per level and overflowed the stack: `shardvec build` died with SIGSEGV.
constexpr size_t kDeep = 100000;

TEST(FuzzRegression, JsonNestingIsMeasuredOutsideStrings) {
  EXPECT_FALSE(JsonNestsDeeperThan(Nested(kMaxJsonNesting)));
  EXPECT_TRUE(JsonNestsDeeperThan(Nested(kMaxJsonNesting + 1)));
  EXPECT_FALSE(JsonNestsDeeperThan("{\"a\": \"" + std::string(1000, '[') + "\"}"));
  EXPECT_TRUE(JsonNestsDeeperThan("{\"a\\\"\": " + Nested(kMaxJsonNesting) + "}"));  // escaped quote
}

TEST(FuzzRegression, DeeplyNestedPayloadLineIsAnError) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "p.jsonl").string();
  testing::WriteText(path, "{\"a\": 1}\n{\"a\": " + Nested(kDeep) + "}\n");
  Result<std::vector<std::optional<std::string>>> loaded = LoadPayloadsFile(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(loaded.status().message(),
            fmt::format("--payloads '{}' line 2: JSON nests arrays/objects deeper than 512 levels", path));
  // Exactly 512 levels still load.
  testing::WriteText(path, "{\"a\": " + Nested(kMaxJsonNesting - 1) + "}\n");
  EXPECT_TRUE(LoadPayloadsFile(path).ok());
}

TEST(FuzzRegression, DeeplyNestedInputFilesThroughTheTarget) {
  // The input_files target's first byte picks the reader: 0 is vectors from .jsonl, 7 payloads
  // .jsonl, 12 routing contexts .json, 13 routing values .json.
  for (const std::string& input :
       {std::string(1, '\x00') + "{\"vector\": [1], \"payload\": {\"a\": " + Nested(kDeep) + "}}",
        std::string(1, '\x07') + "{\"a\": " + Nested(kDeep) + "}",
        std::string(1, '\x0c') + "[{\"a\": " + Nested(kDeep) + "}]",
        std::string(1, '\x0d') + Nested(kDeep)}) {
    FuzzOutcome outcome = RunTarget("input_files", input);
    EXPECT_FALSE(outcome.accepted);
    EXPECT_EQ(outcome.broken, "");
  }
}

TEST(FuzzRegression, DeeplyNestedRecordPayloadIsAnError) {
  Record record;
  record.id = int64_t{7};
  record.payload_json = "{\"a\": " + Nested(kDeep) + "}";
  Result<std::optional<std::string>> payload = CanonicalPayload(record, 3);
  ASSERT_FALSE(payload.ok());
  EXPECT_THAT(payload.status().message(), HasSubstr("payload nests arrays/objects deeper than 512 levels"));
}

// A version 1.0 header may be 65 535 bytes: all '(' made the header parser recurse once per byte
// and overflow the stack.
TEST(FuzzRegression, DeeplyNestedNpyHeaderIsAnError) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(65000, '(') + "}";
  const std::string npy = testing::MakeNpy(header, "");
  Result<Matrix> parsed = ParseNpyMatrix(npy, "x.npy");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(),
              ::testing::StartsWith("x.npy: .npy header is malformed (tuples and lists nest deeper than 16 levels at offset 66)"));
  FuzzOutcome outcome = RunTarget("npy", npy);
  EXPECT_FALSE(outcome.accepted);
  EXPECT_EQ(outcome.broken, "");
}

Manifest OneShardManifest() {
  Manifest m;
  m.run_id = "r";
  m.created_at = "2026-01-02T03:04:05+00:00";
  m.num_dbs = 2;
  m.s3_prefix = "/tmp/s";
  ManifestShard shard;
  shard.db_id = 1;
  shard.row_count = 3;
  m.shards.push_back(shard);
  return m;
}

// A shard row whose writer_info was not JSON parsed as a "discarded" value: accepted, and it
// re-serialised as the text "<discarded>". (Found by reading; the manifest target now checks that
// every JSON column of a parsed manifest is an object, and its mutations find this input.)
TEST(FuzzRegression, ManifestWriterInfoMustBeAJsonObject) {
  Result<std::string> bytes = SerializeManifest(OneShardManifest());
  ASSERT_TRUE(bytes.ok());
  testing::TempDir dir;
  const auto path = dir / "manifest";
  testing::WriteText(path, *bytes);
  testing::ExecSql(path, "UPDATE shards SET writer_info = '{not json'");
  const std::string corrupt = testing::ReadText(path);

  Result<Manifest> parsed = ParseManifest(corrupt);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(parsed.status().message(),
            "manifest: shard db_id 1: writer_info is not a JSON object nesting at most 512 levels");
  FuzzOutcome outcome = RunTarget("manifest", corrupt);
  EXPECT_FALSE(outcome.accepted);
  EXPECT_EQ(outcome.broken, "");
}

TEST(FuzzRegression, ManifestCustomTooDeepIsCorruption) {
  Manifest m = OneShardManifest();
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < kMaxJsonNesting; ++i) deep = nlohmann::json::array({deep});
  m.custom["deep"] = deep;  // 513 levels with the object around it
  Result<std::string> bytes = SerializeManifest(m);
  ASSERT_TRUE(bytes.ok());
  Result<Manifest> parsed = ParseManifest(*bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "manifest: custom is not a JSON object nesting at most 512 levels");
}

}  // namespace
}  // namespace shardvec::fuzz
