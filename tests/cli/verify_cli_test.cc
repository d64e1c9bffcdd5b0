// `shardvec verify` and `shardvec health --deep`, run as a child process on a folder store and on the
// S3 test server: a good snapshot passes (exit 0); a truncated and a missing shard are each named
// (exit 1, or unhealthy with exit 2 for health --deep), in text and in --json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::RunCli;
using testing::ShellQuote;

class VerifyCliTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteNpy(tmp_ / "v.npy", testing::ClusteredMatrix(400, 8, 4, 3)); }
  testing::CommandResult Build(const std::string& env, const std::string& store) {
    return testing::RunCommand(env + " " + ShellQuote(SHARDVEC_CLI_PATH) + " build --quiet --store " + ShellQuote(store) + " --local-root " +
                               ShellQuote((tmp_ / "lr").string()) + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                               " --metric l2 --strategy cluster --num-dbs 4 --train-centroids --run-id r1");
  }
  testing::TempDir tmp_;
};

// The shard files of the folder store, sorted by db_id.
std::vector<fs::path> ShardFiles(const fs::path& store) {
  std::vector<fs::path> out;
  for (const std::string& f : testing::ListFiles(store)) {
    if (f.ends_with("/shard.db")) out.push_back(store / f);
  }
  return out;
}

TEST_F(VerifyCliTest, AGoodSnapshotPassesAndDamagedShardsAreNamed) {
  const fs::path store = tmp_ / "store";
  ASSERT_EQ(Build("", store.string()).exit_code, 0);
  const std::string args = " --store " + ShellQuote(store.string());
  auto ok = RunCli("verify --quiet" + args);
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("ok  "));
  EXPECT_THAT(ok.out, HasSubstr("problems=0"));
  auto ok_json = RunCli("verify --json" + args);
  ASSERT_EQ(ok_json.exit_code, 0) << ok_json.err;
  json report = json::parse(ok_json.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["shards_checked"], 4);
  EXPECT_EQ(report["shards_read"], 4);
  EXPECT_EQ(report["problems"], json::array());
  auto healthy = RunCli("health --deep --quiet --json" + args + " --cache-dir " + ShellQuote((tmp_ / "c").string()));
  ASSERT_EQ(healthy.exit_code, 0) << healthy.out << healthy.err;
  EXPECT_EQ(json::parse(healthy.out)["status"], "healthy");

  const std::vector<fs::path> shards = ShardFiles(store);
  ASSERT_EQ(shards.size(), 4u);
  fs::resize_file(shards[0], fs::file_size(shards[0]) / 2);  // truncated
  fs::remove(shards[3]);                                        // missing

  auto bad = RunCli("verify --quiet" + args);
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.out, HasSubstr("FAILED"));
  EXPECT_THAT(bad.out, HasSubstr("problem size"));
  EXPECT_THAT(bad.out, HasSubstr("problem missing"));
  EXPECT_THAT(bad.out, HasSubstr(shards[0].string()));
  EXPECT_THAT(bad.out, HasSubstr(shards[3].string()));

  auto bad_json = RunCli("verify --json --sample 1 --seed 3" + args);
  EXPECT_EQ(bad_json.exit_code, 1) << bad_json.err;
  report = json::parse(bad_json.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["seed"], 3);
  EXPECT_EQ(report["sampled"].size(), 1u);
  std::set<std::string> checks;
  for (const json& p : report["problems"]) checks.insert(p["check"].get<std::string>());
  EXPECT_EQ(checks, (std::set<std::string>{"missing", "size"}));

  // health without --deep looks at the reader only, as before; --deep finds both.
  const std::string cache = " --cache-dir " + ShellQuote((tmp_ / "c2").string());
  auto shallow = RunCli("health --json" + args + cache);
  EXPECT_EQ(shallow.exit_code, 0) << shallow.err;
  auto deep = RunCli("health --deep --quiet --json" + args + cache);
  EXPECT_EQ(deep.exit_code, 2) << deep.out << deep.err;
  json h = json::parse(deep.out);
  EXPECT_EQ(h["status"], "unhealthy");
  EXPECT_EQ(h["deep"]["problems"].size(), 2u);
  auto deep_text = RunCli("health --deep --quiet" + args + cache);
  EXPECT_EQ(deep_text.exit_code, 2);
  EXPECT_THAT(deep_text.out, HasSubstr("problem missing"));
}

TEST_F(VerifyCliTest, UsageErrorsNameTheFlag) {
  const fs::path store = tmp_ / "store";
  ASSERT_EQ(Build("", store.string()).exit_code, 0);
  const std::string args = " --store " + ShellQuote(store.string());
  auto zero = RunCli("verify --sample 0" + args);
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_THAT(zero.err, HasSubstr("--sample"));
  auto seed_alone = RunCli("verify --seed 4" + args);
  EXPECT_EQ(seed_alone.exit_code, 2);
  EXPECT_THAT(seed_alone.err, HasSubstr("--seed requires --sample"));
  auto unknown = RunCli("verify --run-id nope" + args);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("--run-id 'nope'"));
  auto older = RunCli("verify --quiet --run-id r1" + args);
  EXPECT_EQ(older.exit_code, 0) << older.err;
}

// The S3 test server's suite (run with the server: --gtest_filter='S3*').
class S3VerifyCliTest : public VerifyCliTest {};

TEST_F(S3VerifyCliTest, AGoodSnapshotPassesAndAMissingShardIsNamed) {
  const std::string prefix = testing::UniqueS3Prefix("verify-cli");
  const std::string env = testing::S3CliEnv();
  ASSERT_EQ(Build(env, prefix).exit_code, 0);
  const std::string args = " --store " + ShellQuote(prefix);
  auto ok = testing::RunCommand(env + " " + ShellQuote(SHARDVEC_CLI_PATH) + " verify --quiet --json" + args);
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(json::parse(ok.out)["shards_read"], 4);
  auto store = testing::OpenS3TestStore(prefix);
  ASSERT_TRUE(store);
  auto listed = store->List("shards/", "");
  ASSERT_TRUE(listed.ok());
  std::string victim;
  for (const ObjectInfo& o : listed->objects) {
    if (o.key.ends_with("/shard.db")) victim = o.key;
  }
  ASSERT_FALSE(victim.empty());
  ASSERT_TRUE(store->Delete(victim).ok());
  auto bad = testing::RunCommand(env + " " + ShellQuote(SHARDVEC_CLI_PATH) + " verify --quiet --json" + args);
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  json report = json::parse(bad.out);
  ASSERT_EQ(report["problems"].size(), 1u);
  EXPECT_EQ(report["problems"][0]["check"], "missing");
  EXPECT_EQ(report["problems"][0]["object"], store->Url(victim));
}

}  // namespace
}  // namespace shardvec
