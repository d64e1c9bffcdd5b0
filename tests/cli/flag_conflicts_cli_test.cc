// Every flag of every subcommand takes effect or is refused: a flag the other flags make useless is a
// usage error (exit 2, the flag named, nothing written); a flag the snapshot makes useless is an error
// (exit 1, named). The binary runs as a child process.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using testing::RunCli;
using testing::ShellQuote;

struct Case {
  std::string args;
  std::vector<std::string> expect;  // fragments of stderr: the flags named
};

class FlagConflictsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(40, 4, 3));
    testing::WriteNpy(tmp_ / "c4.npy", testing::RandomMatrix(4, 4, 5));
    testing::WriteNpy(tmp_ / "h3.npy", testing::RandomMatrix(3, 4, 6));
    Matrix shard_ids{40, 1, std::vector<float>(40, 1.0f)};
    testing::WriteNpy(tmp_ / "sid.npy", shard_ids);
    std::string records;
    for (int i = 0; i < 3; ++i) records += "{\"id\": " + std::to_string(i) + ", \"vector\": [1, 2, 3, 4], \"shard_id\": 0}\n";
    testing::WriteText(tmp_ / "r.jsonl", records);
    testing::WriteText(tmp_ / "ids.txt", "a\nb\nc\n");
  }
  std::string Path(const std::string& name) const { return ShellQuote((tmp_ / name).string()); }
  std::string Build(const std::string& store) const {
    return "build --quiet --store " + Path(store) + " --local-root " + Path("lr") + " --input " + Path("v.npy") +
           " --metric l2";
  }
  std::string Read(const std::string& command) const {
    return command + " --store " + Path("lsh") + " --cache-dir " + Path("cache");
  }
  static void ExpectNamed(const testing::CommandResult& r, const Case& tc) {
    for (const std::string& part : tc.expect) {
      EXPECT_NE(r.err.find(part), std::string::npos) << tc.args << "\nmissing: " << part << "\nstderr: " << r.err;
    }
  }
  testing::TempDir tmp_;
};

TEST_F(FlagConflictsCliTest, BuildFlagsTheStrategyWouldNotUseExitTwoNamingThem) {
  const std::vector<Case> cases = {
      {" --strategy lsh --num-dbs 4 --train-centroids", {"--train-centroids", "CLUSTER", "lsh"}},
      {" --strategy lsh --num-dbs 4 --centroids " + Path("c4.npy"), {"--centroids", "CLUSTER"}},
      {" --strategy lsh --num-dbs 4 --sample-size 500", {"--sample-size 500", "--train-centroids"}},
      {" --strategy cluster --num-dbs 4 --train-centroids --centroids " + Path("c4.npy"),
       {"--centroids", "--train-centroids"}},
      {" --strategy cluster --centroids " + Path("c4.npy") + " --sample-size 500", {"--sample-size 500"}},
      {" --strategy cluster --centroids " + Path("c4.npy") + " --hyperplanes " + Path("h3.npy"), {"--hyperplanes", "LSH"}},
      {" --strategy cluster --centroids " + Path("c4.npy") + " --num-hash-bits 12", {"--num-hash-bits 12", "LSH"}},
      {" --strategy explicit --num-dbs 2 --shard-ids " + Path("sid.npy") + " --num-hash-bits 4", {"--num-hash-bits 4"}},
      {" --strategy lsh --num-dbs 300", {"--num-dbs 300", "256", "--num-hash-bits 8"}},
      {" --strategy lsh --num-dbs 9 --num-hash-bits 3", {"--num-dbs 9", "8 shards"}},
      {" --strategy lsh --num-dbs 9 --hyperplanes " + Path("h3.npy"), {"--num-dbs 9", "--hyperplanes 3"}},
      {" --strategy lsh --num-dbs 4 --num-probes 5", {"--num-probes 5", "--num-dbs 4"}},
      {" --strategy lsh --num-dbs 8 --num-hash-bits 3 --num-probes 5", {"--num-probes 5", "4 shards"}},
      {" --strategy cluster --centroids " + Path("c4.npy") + " --num-probes 5", {"--num-probes 5", "--num-dbs 4"}},
      {" --strategy cluster --num-dbs 3 --train-centroids --num-probes 4", {"--num-probes 4", "--num-dbs 3"}},
      {" --strategy lsh --num-dbs 2 --shard-ids " + Path("sid.npy"), {"--shard-ids", "explicit", "lsh"}},
      {" --strategy lsh --num-dbs 2 --routing-context-file " + Path("r.jsonl"), {"--routing-context-file", "cel"}},
      {" --strategy lsh --num-dbs 2 --cel-expr region", {"--cel-expr applies to --strategy cel only"}},
      {" --strategy lsh --num-dbs 2 --sublists-per-shard -1", {"--sublists-per-shard must be in 0..65536", "got -1"}},
      {" --strategy lsh --num-dbs 2 --sublists-per-shard 65537", {"--sublists-per-shard", "got 65537"}},
  };
  for (const Case& tc : cases) {
    auto r = RunCli(Build("store") + tc.args);
    EXPECT_EQ(r.exit_code, 2) << tc.args << "\n" << r.err;
    ExpectNamed(r, tc);
  }
  EXPECT_FALSE(fs::exists(tmp_ / "store")) << "a refused build wrote to the store";
  EXPECT_FALSE(fs::exists(tmp_ / "lr")) << "a refused build wrote a build folder";
}

TEST_F(FlagConflictsCliTest, BuildFlagsAtTheirDefaultsStayAccepted) {
  EXPECT_EQ(RunCli(Build("a") + " --strategy lsh --num-dbs 256 --num-hash-bits 8 --num-probes 9 --sample-size 100000")
                .exit_code, 0);
  auto r = RunCli(Build("b") + " --strategy cluster --centroids " + Path("c4.npy") + " --num-hash-bits 8 --num-probes 4");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(FlagConflictsCliTest, AColumnGivenByAFlagAndByTheJsonlRecordsExitsOne) {
  auto r = RunCli("build --quiet --store " + Path("store") + " --local-root " + Path("lr") + " --input " + Path("r.jsonl") +
                  " --metric l2 --strategy explicit --num-dbs 2 --shard-ids " + Path("sid.npy"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ExpectNamed(r, {"", {"--shard-ids", "'shard_id' fields", "r.jsonl"}});
  r = RunCli("build --quiet --store " + Path("store") + " --local-root " + Path("lr") + " --input " + Path("r.jsonl") +
             " --metric l2 --strategy explicit --num-dbs 2 --ids " + Path("ids.txt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ExpectNamed(r, {"", {"--ids", "'id' fields"}});
  // The records' shard_id under a strategy that does not read it: refused, naming the record.
  r = RunCli("build --quiet --store " + Path("store") + " --local-root " + Path("lr") + " --input " + Path("r.jsonl") +
             " --metric l2 --strategy lsh --num-dbs 2");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ExpectNamed(r, {"", {"record id=0", "shard_id 0 applies to EXPLICIT sharding only"}});
  EXPECT_FALSE(fs::exists(tmp_ / "store" / "_CURRENT"));
}

TEST_F(FlagConflictsCliTest, S3FlagsWithAFolderStoreExitTwoInEverySubcommand) {
  const std::vector<std::string> commands = {
      Build("store") + " --strategy lsh --num-dbs 2", "search --store " + Path("store") + " --query 1,2,3,4",
      "info --store " + Path("store"), "shards --store " + Path("store"),
      "route --store " + Path("store") + " --query 1,2,3,4", "health --store " + Path("store"),
      "history --store " + Path("store"), "rollback --store " + Path("store") + " --offset 1",
      "cleanup --store " + Path("store") + " --keep-last 1"};
  for (const std::string& command : commands) {
    for (const Case& tc : std::vector<Case>{{" --endpoint-url http://127.0.0.1:9", {"--endpoint-url", "folder"}},
                                           {" --region eu-west-1 --profile p", {"--region, --profile"}},
                                           {" --addressing-style path", {"--addressing-style"}}}) {
      auto r = RunCli(command + tc.args);
      EXPECT_EQ(r.exit_code, 2) << command << tc.args << "\n" << r.err;
      ExpectNamed(r, tc);
    }
  }
  EXPECT_FALSE(fs::exists(tmp_ / "store"));
}

TEST_F(FlagConflictsCliTest, SearchFlagsThatCannotTakeEffectAreRefused) {
  ASSERT_EQ(RunCli(Build("lsh") + " --strategy lsh --num-dbs 4").exit_code, 0);
  // --shard-ids replaces routing: the routing flags beside it are usage errors.
  for (const Case& tc : std::vector<Case>{{" --shard-ids 0 --num-probes 2", {"--shard-ids", "--num-probes"}},
                                         {" --shard-ids 0 --routing-context a=1", {"--shard-ids", "--routing-context"}}}) {
    auto r = RunCli(Read("search") + " --query 1,2,3,4" + tc.args);
    EXPECT_EQ(r.exit_code, 2) << tc.args << "\n" << r.err;
    ExpectNamed(r, tc);
  }
  // What the snapshot cannot honour: exit 1, named.
  for (const std::string command : {"search", "route"}) {
    auto r = RunCli(Read(command) + " --query 1,2,3,4 --num-probes 5");
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.err;
    ExpectNamed(r, {command, {"num_probes (5) exceeds the 4 shard(s)", "lsh", "num_dbs 4"}});
  }
  auto ok = RunCli(Read("search") + " --query 1,2,3,4 --num-probes 4 --json");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  // A snapshot of a few rows per shard has no sub-lists to choose from.
  auto lists = RunCli(Read("search") + " --query 1,2,3,4 --sublist-probes 2");
  EXPECT_EQ(lists.exit_code, 1) << lists.err;
  ExpectNamed(lists, {"search", {"sublist_probes (2) applies to snapshots built with sub-lists"}});
  // Built with sub-lists (--sublists-per-shard 3 gives 20-row shards lists), the same flag is taken.
  ASSERT_EQ(RunCli(Build("lists") + " --strategy lsh --num-dbs 2 --sublists-per-shard 3").exit_code, 0);
  auto probed = RunCli("search --store " + Path("lists") + " --cache-dir " + Path("cache2") +
                       " --query 1,2,3,4 --sublist-probes 1 --json");
  EXPECT_EQ(probed.exit_code, 0) << probed.err;
}

}  // namespace
}  // namespace shardvec
