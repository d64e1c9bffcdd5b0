// End-to-end tests of `shardvec history`, `rollback` and `cleanup` on snapshots made by
// `shardvec build`; the binary runs as a child process and the store is inspected as plain files.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/time_util.h"
#include "format/keys.h"
#include "format/run_record.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

class SnapshotCliTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(40, 4, 7)); }

  void Build(const std::string& run_id) {
    auto r = RunCli("build --quiet --store " + ShellQuote(Store()) + " --local-root " +
                    ShellQuote((tmp_ / "lr").string()) + " --input " +
                    ShellQuote((tmp_ / "v.npy").string()) +
                    " --metric l2 --strategy lsh --num-dbs 2 --run-id " + run_id);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  testing::CommandResult Run(const std::string& command, const std::string& flags = "") {
    return RunCli(command + " --store " + ShellQuote(Store()) + " " + flags);
  }
  json History() {
    auto r = Run("history", "--json --limit 100");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }
  std::string ManifestKeyOf(const std::string& run_id) {
    const json history = History();
    for (const auto& m : history["manifests"]) {
      if (m["run_id"] == run_id) return m["ref"].get<std::string>().substr(Store().size() + 8);
    }
    ADD_FAILURE() << "no manifest of run " << run_id;
    return "";
  }
  std::string CurrentRunId() { return json::parse(Current())["run_id"]; }
  std::string Current() { return testing::ReadText(root() / "_CURRENT"); }
  void WriteOrphan(const std::string& run_id) {
    const fs::path file = root() / ShardKey(run_id, 0, 0);
    fs::create_directories(file.parent_path());
    testing::WriteText(file, "not really sqlite");
  }
  bool HasShards(const std::string& run_id) { return fs::exists(root() / RunShardsPrefix(run_id)); }
  std::vector<std::string> AllFiles() { return testing::ListFiles(root()); }
  std::string Store() const { return root().string(); }
  fs::path root() const { return tmp_.path() / "store"; }

  testing::TempDir tmp_;
};

class HistoryCliTest : public SnapshotCliTest {};
class RollbackCliTest : public SnapshotCliTest {};
class CleanupCliTest : public SnapshotCliTest {};

TEST_F(HistoryCliTest, ListsNewestFirstMarksCurrentAndHonoursLimit) {
  auto empty = Run("history");
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "(no manifests)\n");

  for (const char* run : {"R1", "R2", "R3"}) Build(run);
  auto text = Run("history", "--limit 2");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::string ts = R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)";
  EXPECT_TRUE(std::regex_match(text.out, std::regex("\\[0\\] " + ts + "  run_id=R3  \\(current\\)\n"
                                                    "\\[1\\] " + ts + "  run_id=R2\n")))
      << text.out;

  json all = History();
  ASSERT_EQ(all["manifests"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& m = all["manifests"][i];
    EXPECT_EQ(m["offset"], i);
    EXPECT_EQ(m["run_id"], "R" + std::to_string(3 - i));
    EXPECT_EQ(m["current"], i == 0);
    EXPECT_TRUE(std::regex_match(m["published_at"].get<std::string>(), std::regex(ts)));
    EXPECT_TRUE(fs::exists(m["ref"].get<std::string>().substr(7))) << m["ref"];
  }
  EXPECT_EQ(json::parse(Current())["manifest_ref"], all["manifests"][0]["ref"]);
  EXPECT_EQ(Run("history", "--limit 0").exit_code, 2) << "a bad flag value is a usage error";
}

TEST_F(RollbackCliTest, ByRunIdRefAndOffsetMovesCurrentToThatManifest) {
  for (const char* run : {"R1", "R2", "R3"}) Build(run);

  auto by_run = Run("rollback", "--run-id R1");
  ASSERT_EQ(by_run.exit_code, 0) << by_run.err;
  const std::string r1_ref = "file://" + (root() / ManifestKeyOf("R1")).string();
  EXPECT_EQ(by_run.out, "Rolled back _CURRENT to: " + r1_ref + "\n");
  EXPECT_EQ(json::parse(Current())["manifest_ref"], r1_ref);
  EXPECT_EQ(CurrentRunId(), "R1");

  auto by_offset = Run("rollback", "--offset 1");
  ASSERT_EQ(by_offset.exit_code, 0) << by_offset.err;
  EXPECT_EQ(CurrentRunId(), "R2");

  auto by_key = Run("rollback", "--json --ref " + ShellQuote(ManifestKeyOf("R3")));
  ASSERT_EQ(by_key.exit_code, 0) << by_key.err;
  EXPECT_EQ(CurrentRunId(), "R3");
  json out = json::parse(by_key.out);
  EXPECT_EQ(out["run_id"], "R3");
  EXPECT_EQ(out["manifest_ref"], json::parse(Current())["manifest_ref"]);

  auto by_url = Run("rollback", "--ref " + ShellQuote(r1_ref));
  ASSERT_EQ(by_url.exit_code, 0) << by_url.err;
  EXPECT_EQ(CurrentRunId(), "R1");
  EXPECT_EQ(History()["manifests"].size(), 3u) << "rollback writes no manifest";
}

TEST_F(RollbackCliTest, MissingTargetsExitOneNamingTheValueAndLeaveCurrentByteIdentical) {
  for (const char* run : {"R1", "R2"}) Build(run);
  const std::string before = Current();
  const std::string missing = "manifests/2020-01-01T00:00:00.000000Z_run_id=R1/manifest";
  struct Case {
    std::string flags;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"--ref " + missing, missing},
      {"--ref " + ShellQuote("file://" + (root() / missing).string()), missing},
      {"--ref manifests/nonsense", "manifests/nonsense"},
      {"--run-id ghost", "No manifest found with run_id=ghost"},
      {"--offset 2", "offset 2"},
      {"--offset -1", "(got -1)"},
  };
  for (const Case& tc : cases) {
    auto r = Run("rollback", tc.flags);
    EXPECT_EQ(r.exit_code, 1) << tc.flags << "\n" << r.err;
    EXPECT_NE(r.err.find("shardvec rollback: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.flags << "\nstderr: " << r.err;
    EXPECT_EQ(Current(), before) << tc.flags;
  }
}

TEST_F(RollbackCliTest, ZeroOrTwoSelectorsAreUsageErrors) {
  for (const std::string flags : {"", "--run-id R1 --offset 0", "--ref x --run-id R1"}) {
    auto r = Run("rollback", flags);
    EXPECT_EQ(r.exit_code, 2) << flags;
    EXPECT_NE(r.err.find("Exactly one of --ref, --run-id, or --offset is required"),
              std::string::npos)
        << r.err;
  }
}

// A second build with a run id the store already has exits 1 naming the run id and uploads nothing:
// the live snapshot's files are byte-identical and `search` still verifies them.
TEST_F(SnapshotCliTest, ABuildReusingARunIdExitsOneAndLeavesTheLiveSnapshotByteIdentical) {
  Build("fixed");
  std::map<std::string, std::string> before;
  for (const auto& key : AllFiles()) before[key] = testing::ReadText(root() / key);
  testing::WriteNpy(tmp_ / "v2.npy", testing::RandomMatrix(40, 4, 8));
  auto r = RunCli("build --quiet --store " + ShellQuote(Store()) + " --local-root " +
                  ShellQuote((tmp_ / "lr").string()) + " --input " + ShellQuote((tmp_ / "v2.npy").string()) +
                  " --metric l2 --strategy lsh --num-dbs 2 --run-id fixed");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("run_id 'fixed' is already used"), std::string::npos) << r.err;
  std::map<std::string, std::string> after;
  for (const auto& key : AllFiles()) after[key] = testing::ReadText(root() / key);
  EXPECT_EQ(after, before);
  auto search = RunCli("search --store " + ShellQuote(Store()) + " --cache-dir " +
                       ShellQuote((tmp_ / "cold").string()) + " --query 0.1,0.2,0.3,0.4 --top-k 3");
  EXPECT_EQ(search.exit_code, 0) << search.err;
}

TEST_F(CleanupCliTest, ReportsStaleTempFilesAsLeftoversAndRemovesThem) {
  Build("R1");
  const fs::path stale = root() / "shards/run_id=R1/db=00000/attempt=00/.shard.db.tmp.0123456789ab";
  testing::WriteText(stale, "half an upload");
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  auto dry = Run("cleanup", "--dry-run --json");
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(json::parse(dry.out)["leftover_keys"],
            json::array({"shards/run_id=R1/db=00000/attempt=00/.shard.db.tmp.0123456789ab"}));
  EXPECT_TRUE(fs::exists(stale));
  auto r = Run("cleanup");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("removed 1 leftover(s)"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(stale));
}

TEST_F(CleanupCliTest, DryRunDeletesNothing) {
  Build("R1");
  WriteOrphan("orphan");
  const auto before = AllFiles();

  auto r = Run("cleanup", "--dry-run --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(AllFiles(), before);
  json out = json::parse(r.out);
  EXPECT_EQ(out["dry_run"], true);
  EXPECT_EQ(out["removed_runs"], json::array({"orphan"}));
  EXPECT_EQ(out["deleted_keys"], json::array({ShardKey("orphan", 0, 0)}));
  EXPECT_EQ(out["objects"], 1);
  EXPECT_EQ(out["bytes"], 17);

  auto text = Run("cleanup", "--dry-run --keep-last 1");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("would delete 1 objects"), std::string::npos) << text.out;
  EXPECT_EQ(AllFiles(), before);
}

TEST_F(CleanupCliTest, RemovesAnOrphanedRunAndKeepsEveryListedRun) {
  for (const char* run : {"R1", "R2"}) Build(run);
  WriteOrphan("orphan");
  ASSERT_EQ(Run("rollback", "--run-id R1").exit_code, 0);

  auto r = Run("cleanup");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("deleted 1 objects"), std::string::npos) << r.out;
  EXPECT_FALSE(HasShards("orphan"));
  EXPECT_TRUE(HasShards("R1"));
  EXPECT_TRUE(HasShards("R2"));
  EXPECT_EQ(CurrentRunId(), "R1");
}

TEST_F(CleanupCliTest, KeepLastOneRemovesOlderRunsButKeepsTheirManifests) {
  for (const char* run : {"R1", "R2", "R3"}) Build(run);
  ASSERT_EQ(Run("rollback", "--run-id R2").exit_code, 0);
  const std::string r1_manifest = ManifestKeyOf("R1");

  auto r = Run("cleanup", "--keep-last 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["removed_runs"], json::array({"R1"}));
  EXPECT_FALSE(HasShards("R1"));
  EXPECT_FALSE(fs::exists(root() / "vector_meta/run_id=R1"));
  EXPECT_TRUE(fs::exists(root() / r1_manifest));
  EXPECT_TRUE(HasShards("R2")) << "the current run stays";
  EXPECT_TRUE(HasShards("R3")) << "the newest run stays";
  EXPECT_EQ(History()["manifests"].size(), 3u);

  const std::string before = Current();
  auto rollback = Run("rollback", "--run-id R1");
  EXPECT_EQ(rollback.exit_code, 1);
  EXPECT_NE(rollback.err.find("shards/run_id=R1/db=00000/attempt=00/shard.db' is missing"), std::string::npos)
      << rollback.err;
  EXPECT_EQ(Current(), before);
}

TEST_F(CleanupCliTest, ARunningWriterWithinItsLeaseKeepsItsShards) {
  Build("R1");
  WriteOrphan("inflight");
  RunRecord record;
  record.run_id = "inflight";
  record.started_at = FormatTimestamp(NowUtc());
  record.updated_at = record.started_at;
  record.lease_expires_at = FormatTimestamp(NowUtc() + std::chrono::minutes(10));
  const fs::path record_file =
      root() / RunRecordKey(record.started_at, "inflight", "00112233445566778899aabbccddeeff");
  fs::create_directories(record_file.parent_path());
  testing::WriteText(record_file, EncodeRunRecord(record));

  auto r = Run("cleanup", "--keep-last 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(HasShards("inflight"));

  record.lease_expires_at = FormatTimestamp(NowUtc() - std::chrono::minutes(1));
  testing::WriteText(record_file, EncodeRunRecord(record));
  r = Run("cleanup", "--keep-last 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(HasShards("inflight")) << "an expired lease protects nothing";
  EXPECT_TRUE(fs::exists(record_file)) << "run records are never deleted";
}

TEST_F(CleanupCliTest, BadFlagsExitTwoNamingTheValue) {
  Build("R1");
  WriteOrphan("orphan");
  struct Case {
    std::string flags;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"--older-than 7x", "--older-than '7x'"},
      {"--older-than 7", "--older-than '7'"},
      {"--older-than=-2d", "--older-than '-2d'"},
      {"--older-than 99999999999999999999h", "too large"},
      {"--keep-last 0", "--keep-last must be >= 1 (got 0)"},
  };
  for (const Case& tc : cases) {
    auto r = Run("cleanup", tc.flags);
    EXPECT_EQ(r.exit_code, 2) << tc.flags << "\n" << r.err;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.flags << "\nstderr: " << r.err;
  }
  EXPECT_TRUE(HasShards("orphan"));
  auto ok = Run("cleanup", "--older-than 7d --dry-run");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(Run("cleanup", "--older-than 24h --dry-run").exit_code, 0);
}

}  // namespace
}  // namespace shardvec
