// Text someone else wrote, as the CLI prints it and as it reads it: hostile payloads and ids in a
// shard never break `search` output (valid JSON per line with --json, no raw control characters in
// text), and input that is not UTF-8 (a file line, a flag, a store path) is a clear error naming
// where it is, exit 1, never an abort. Run as a child process.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/digest.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

constexpr int kRows = 7;
constexpr int kDeep = 300000;  // nesting of the deepest hostile payload

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02X}", c);
  return out;
}

// Whether `text` is UTF-8, as nlohmann's strict dump judges it (independently of the engine's helper).
bool DumpsStrictly(std::string_view text) {
  try {
    (void)json(std::string(text)).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// Every regular file below `root` whose path contains `part`.
std::vector<fs::path> FilesContaining(const fs::path& root, std::string_view part) {
  std::vector<fs::path> out;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && e.path().string().find(part) != std::string::npos) out.push_back(e.path());
  }
  return out;
}

class HostileIoCliTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return ShellQuote((tmp_ / name).string()); }
  std::string Store() const { return (tmp_ / "store").string(); }
  std::string ReadArgs() const {
    return " --store " + ShellQuote(Store()) + " --cache-dir " + ShellQuote((tmp_ / "cache").string());
  }
  // One EXPLICIT shard of kRows 4-d records with string ids doc-<i> and payloads {"n": i}.
  void BuildOneShard() {
    std::string lines;
    for (int i = 0; i < kRows; ++i) {
      lines += fmt::format(R"({{"id": "doc-{}", "vector": [{}, 1, 0, 0], "payload": {{"n": {}}}, "shard_id": 0}})",
                           i, i, i) + "\n";
    }
    testing::WriteText(tmp_ / "v.jsonl", lines);
    auto r = RunCli("build --quiet --store " + ShellQuote(Store()) + " --local-root " + Path("lr") + " --input " +
                    Path("v.jsonl") + " --metric l2 --strategy explicit --num-dbs 1 --run-id one");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  fs::path ShardFile() const {
    const auto files = FilesContaining(tmp_ / "store" / "shards", "db=00000");
    EXPECT_EQ(files.size(), 1u);
    return files.at(0);
  }
  fs::path ManifestFile() const {
    const json pointer = json::parse(testing::ReadText(tmp_ / "store" / "_CURRENT"));
    return pointer["manifest_ref"].get<std::string>().substr(7);  // file://
  }
  // Sets row `offset` (in rowid order) of the shard's vec_payloads to the raw bytes `text`.
  void SetPayload(int offset, std::string_view text) {
    testing::ExecSql(ShardFile(), fmt::format("UPDATE vec_payloads SET payload = CAST(X'{}' AS TEXT) WHERE rowid = "
                                              "(SELECT rowid FROM vec_payloads ORDER BY rowid LIMIT 1 OFFSET {})",
                                              Hex(text), offset));
  }
  // After editing the shard: its size and digest in the manifest, as a writer would have put them.
  void ResealShard() {
    const FileDigest d = *DigestFile(ShardFile());
    testing::ExecSql(ManifestFile(),
                     fmt::format("UPDATE shards SET db_bytes = {} WHERE db_id = 0; UPDATE build_meta SET custom = "
                                 "json_set(custom, '$.shardvec.shard_digests.\"0\"', '{}')",
                                 d.size, d.digest));
  }
  testing::TempDir tmp_;
};

TEST_F(HostileIoCliTest, HostilePayloadsAndIdsNeverBreakSearchOutput) {
  BuildOneShard();
  const std::string esc_text = "{\"a\": \"\x1b]0;owned\x07\x1b[2J\"}";  // raw controls: not JSON
  const std::string c1_text = "{\"a\": \"\xC2\x9B" "31mred\"}";         // valid JSON holding C1 CSI
  const std::string bad_utf8 = "{\"a\": \"\xFF\xFE\"}";
  // A valid JSON object, nested far deeper than the reader's bound (dumping it recursed once a level).
  const std::string deep = "{\"a\": " + std::string(kDeep, '[') + std::string(kDeep, ']') + "}";
  const std::vector<std::string> stored = {"not json", deep, bad_utf8, esc_text, c1_text, "[1, 2]",
                                           std::string("{\"ok\": 1}\0tail", 14)};
  for (int i = 0; i < kRows; ++i) SetPayload(i, stored[static_cast<size_t>(i)]);
  // An id holding terminal escapes (JSON-escaped in the id map, as a writer could store it).
  testing::ExecSql(ShardFile(), R"(UPDATE vec_id_map SET original_id = '{"v": "doc-0\u001b[31m\u009b", "t": "str"}')"
                                R"( WHERE original_id LIKE '%"doc-0"%')");
  ResealShard();

  const std::string query = " --query 0,1,0,0 --top-k 10 --shard-ids 0";
  auto r = RunCli("search" + ReadArgs() + query + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  ASSERT_TRUE(json::accept(line)) << line.substr(0, 300);
  const json out = json::parse(line);
  std::map<std::string, json> payloads;
  for (const json& hit : out["results"]) payloads[hit["id"].get<std::string>()] = hit["payload"];
  ASSERT_EQ(payloads.size(), static_cast<size_t>(kRows));
  const auto raw = [](const std::string& text) { return json{{"__raw_payload__", text}}; };
  EXPECT_EQ(payloads["doc-0\x1b[31m\xC2\x9B"], raw("not json"));
  EXPECT_EQ(payloads["doc-1"], raw(deep));
  // Bytes that are not UTF-8 come back as U+FFFD.
  const std::string replaced = payloads["doc-2"].value("__raw_payload__", "");
  EXPECT_TRUE(replaced.starts_with("{\"a\": \"\xEF\xBF\xBD")) << payloads["doc-2"];
  EXPECT_EQ(payloads["doc-2"].size(), 1u);
  EXPECT_EQ(payloads["doc-3"], raw(esc_text));
  EXPECT_EQ(payloads["doc-4"], json::parse(c1_text));  // a JSON object comes back as it is
  EXPECT_EQ(payloads["doc-5"], raw("[1, 2]"));
  EXPECT_EQ(payloads["doc-6"], raw(stored[6]));
  EXPECT_FALSE(std::getline(lines, line)) << "one line per query";

  // Text output: every control character escaped, in ids and payloads.
  r = RunCli("search" + ReadArgs() + query);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string raw_control : {"\x1b", "\x07", "\xC2\x9B"}) {
    EXPECT_EQ(r.out.find(raw_control), std::string::npos) << "raw control in: " << r.out.substr(0, 400);
  }
  EXPECT_EQ(r.out.find('\0'), std::string::npos);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), kRows + 1) << "one line per hit";
  EXPECT_NE(r.out.find("id=doc-0\\x1b[31m\\u009b "), std::string::npos) << r.out.substr(0, 400);
  EXPECT_NE(r.out.find("\\u009b31mred"), std::string::npos);
  EXPECT_TRUE(DumpsStrictly(r.out)) << "text output is UTF-8";
}

// ---- input that is not UTF-8 ----------------------------------------------------------------------

class NonUtf8InputCliTest : public HostileIoCliTest {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(3, 4, 5));
    testing::WriteText(tmp_ / "regions.jsonl", "{\"region\": \"eu\"}\n{\"region\": \"us\"}\n{\"region\": \"eu\"}\n");
  }
  testing::CommandResult Build(const std::string& store, const std::string& args) {
    return RunCli("build --quiet --store " + ShellQuote(store) + " --local-root " + Path("lr") + " --input " +
                  Path("v.npy") + " --metric l2 " + args);
  }
  // Exit 1 (2 for a flag's own text: a usage error), a message naming each of `parts`, as UTF-8, and
  // no run record left "running".
  void ExpectRefused(const testing::CommandResult& r, const std::vector<std::string>& parts, int exit_code = 1) {
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    for (const std::string& part : parts) EXPECT_NE(r.err.find(part), std::string::npos) << part << " in " << r.err;
    EXPECT_TRUE(DumpsStrictly(r.err)) << "stderr is not UTF-8: " << r.err;
    for (const fs::path& record : FilesContaining(tmp_.path(), "run.yaml")) {
      EXPECT_EQ(testing::ReadText(record).find("status: running"), std::string::npos) << record;
    }
  }
};

TEST_F(NonUtf8InputCliTest, IdsFileLineIsRefusedNamingTheLine) {
  testing::WriteText(tmp_ / "ids.txt", "a\nb\xff\x1b\nc\n");
  ExpectRefused(Build(Store(), "--strategy lsh --num-dbs 2 --ids " + Path("ids.txt")),
                {"--ids", "line 2", "not valid UTF-8", "byte 0xFF at offset 1", "b\\xff\\x1b"});
}

TEST_F(NonUtf8InputCliTest, RoutingValuesFlagIsRefusedNamingTheFlag) {
  ExpectRefused(Build(Store(), "--strategy cel --cel-expr region --cel-column region=string --routing-values "
                               "'eu,\xffus' --routing-context-file " + Path("regions.jsonl")),
                {"--routing-values", "not valid UTF-8", "byte 0xFF at offset 3"}, 2);
}

TEST_F(NonUtf8InputCliTest, StorePathIsRefusedNamingTheFlagAndNothingIsWritten) {
  const std::string store = (tmp_ / "st\xff" "ore").string();
  ExpectRefused(Build(store, "--strategy lsh --num-dbs 2"), {"--store", "not valid UTF-8"}, 2);
  EXPECT_FALSE(fs::exists(store));
}

TEST_F(NonUtf8InputCliTest, PayloadAndRoutingContextFilesAreRefusedNamingTheLine) {
  testing::WriteText(tmp_ / "p.jsonl", "{\"a\": 1}\n{\"a\": \"\xc3\x28\"}\nnull\n");
  ExpectRefused(Build(Store(), "--strategy lsh --num-dbs 2 --payloads " + Path("p.jsonl")),
                {"--payloads", "line 2", "not valid UTF-8", "byte 0xC3 at offset 7"});
  testing::WriteText(tmp_ / "bad_regions.jsonl", "{\"region\": \"eu\"}\n{\"region\": \"eu\"}\n{\"region\": \"\xfe\"}\n");
  ExpectRefused(Build(Store(), "--strategy cel --cel-expr region --cel-column region=string --routing-values eu,us "
                               "--routing-context-file " + Path("bad_regions.jsonl")),
                {"--routing-context-file", "line 3", "not valid UTF-8"});
}

TEST_F(NonUtf8InputCliTest, SearchRoutingContextIsRefusedNamingTheFlag) {
  ASSERT_EQ(Build(Store(), "--strategy cel --cel-expr region --cel-column region=string --routing-values eu,us "
                           "--routing-context-file " + Path("regions.jsonl")).exit_code, 0);
  ExpectRefused(RunCli("search" + ReadArgs() + " --query 0,0,0,1 --routing-context 'region=e\xffu'"),
                {"--routing-context", "not valid UTF-8", "region=e\\xffu"});
}

}  // namespace
}  // namespace shardvec
