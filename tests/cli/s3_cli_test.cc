// The CLI cycle build → search → history → rollback → cleanup, run once on a local folder and once
// on the S3 test server with the same inputs: every answer must be the same.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "format/keys.h"
#include "shardvec/object_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ShellQuote;

class S3CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v1.npy", testing::RandomMatrix(300, 8, 1));
    testing::WriteNpy(tmp_ / "v2.npy", testing::RandomMatrix(300, 8, 2));
    testing::WriteNpy(tmp_ / "q.npy", testing::RandomMatrix(5, 8, 3));
  }

  testing::CommandResult Cli(const std::string& store, const std::string& command, const std::string& flags) {
    const bool s3 = store.rfind("s3://", 0) == 0;
    return testing::RunCommand((s3 ? testing::S3CliEnv() + " " : std::string()) +
                               ShellQuote(SHARDVEC_CLI_PATH) + " " + command + " --store " + ShellQuote(store) +
                               " " + flags);
  }
  json CliJson(const std::string& store, const std::string& command, const std::string& flags) {
    auto r = Cli(store, command, flags + " --json");
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << command << " printed no JSON: " << r.out;
      return json();
    }
  }
  std::vector<json> SearchResults(const std::string& store) {
    auto r = Cli(store, "search", "--json --top-k 5 --num-probes 4 --cache-dir " +
                                      ShellQuote((tmp_ / ("cache" + std::to_string(++searches_))).string()) +
                                      " --query-file " + ShellQuote((tmp_ / "q.npy").string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) out.push_back(json::parse(line)["results"]);
    return out;
  }

  // Runs the whole cycle on one store and returns what a user would compare.
  json Cycle(const std::string& store) {
    json seen;
    for (const char* run : {"R1", "R2"}) {
      auto r = Cli(store, "build", std::string("--quiet --metric l2 --strategy lsh --num-dbs 4 --run-id ") + run +
                                       " --local-root " + ShellQuote((tmp_ / "lr").string()) + " --input " +
                                       ShellQuote((tmp_ / (run == std::string("R1") ? "v1.npy" : "v2.npy")).string()));
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    seen["search_r2"] = SearchResults(store);
    json history = CliJson(store, "history", "");
    for (const auto& m : history["manifests"]) seen["history"].push_back({m["run_id"], m["current"]});
    auto rolled = Cli(store, "rollback", "--run-id R1");
    EXPECT_EQ(rolled.exit_code, 0) << rolled.err;
    seen["search_r1"] = SearchResults(store);
    seen["info_run"] = CliJson(store, "info", "")["run_id"];

    // A run that died before publishing leaves a shard no manifest names; cleanup removes only it.
    auto opened = OpenStore(store, store.rfind("s3://", 0) == 0 ? testing::S3TestOptions() : StoreOptions{});
    EXPECT_TRUE(opened.ok());
    EXPECT_TRUE((*opened)->Put(ShardKey("DEAD", 0, 0), "not sqlite").ok());
    json dry = CliJson(store, "cleanup", "--dry-run");
    seen["cleanup_dry"] = dry["removed_runs"];
    json cleaned = CliJson(store, "cleanup", "");
    seen["cleanup"] = {cleaned["removed_runs"], cleaned["objects"]};
    EXPECT_EQ((*opened)->Head(ShardKey("DEAD", 0, 0)).status().code(), StatusCode::kNotFound);
    seen["search_after_cleanup"] = SearchResults(store);
    return seen;
  }

  testing::TempDir tmp_;
  int searches_ = 0;
};

TEST_F(S3CliTest, WholeCycleOnS3AnswersExactlyAsOnALocalFolder) {
  const json local = Cycle((tmp_ / "local").string());
  const json s3 = Cycle(testing::UniqueS3Prefix("cli-cycle"));
  EXPECT_EQ(s3, local);
  // And the answers are the ones a user expects: R2 then R1 current, one dead run removed.
  EXPECT_EQ(local["history"], json::parse(R"([["R2", true], ["R1", false]])"));
  EXPECT_EQ(local["info_run"], "R1");
  EXPECT_EQ(local["cleanup"][0], json::parse(R"(["DEAD"])"));
  EXPECT_NE(local["search_r1"], local["search_r2"]);
  EXPECT_EQ(local["search_r1"], local["search_after_cleanup"]);
  ASSERT_EQ(local["search_r1"].size(), 5u);
  EXPECT_EQ(local["search_r1"][0].size(), 5u);
}

TEST_F(S3CliTest, FlagsOverrideTheEnvironmentAndErrorsAreClear) {
  const std::string store = testing::UniqueS3Prefix("cli-flags");
  const auto& server = testing::RequireS3Server();
  // The environment points at a dead port; --endpoint-url wins.
  const std::string env = "env -u AWS_PROFILE AWS_ACCESS_KEY_ID=" + ShellQuote(server.key_id) +
                          " AWS_SECRET_ACCESS_KEY=" + ShellQuote(server.secret) +
                          " AWS_ENDPOINT_URL=http://127.0.0.1:9 AWS_CONFIG_FILE=/dev/null "
                          "AWS_SHARED_CREDENTIALS_FILE=/dev/null ";
  auto built = testing::RunCommand(env + ShellQuote(SHARDVEC_CLI_PATH) + " build --quiet --store " + ShellQuote(store) +
                                   " --endpoint-url " + server.endpoint + " --region us-east-1 --input " +
                                   ShellQuote((tmp_ / "v1.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2");
  EXPECT_EQ(built.exit_code, 0) << built.err;

  // A wrong secret: exit 1, the S3 code named, the secret never printed.
  auto denied = testing::RunCommand(testing::S3CliEnv() + " AWS_SECRET_ACCESS_KEY=not-the-secret-xyz " +
                                    ShellQuote(SHARDVEC_CLI_PATH) + " info --store " + ShellQuote(store));
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_THAT(denied.err, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(denied.err + denied.out, ::testing::Not(HasSubstr("not-the-secret-xyz")));

  // A missing bucket: exit 1 and says so.
  auto missing = Cli("s3://no-such-bucket-cli/x", "info", "");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("bucket 'no-such-bucket-cli' does not exist"));

  // An unknown profile named by flag.
  auto profile = Cli(store, "info", "--profile nobody-here");
  EXPECT_EQ(profile.exit_code, 1);
  EXPECT_THAT(profile.err, HasSubstr("nobody-here"));
}

TEST_F(S3CliTest, AProfileInTheAwsFilesSuppliesKeysRegionAndEndpoint) {
  const auto& server = testing::RequireS3Server();
  testing::WriteText(tmp_ / "credentials", "[other]\naws_access_key_id = AKIAOTHER\n"
                                             "aws_secret_access_key = other\n\n[bench]\n"
                                             "aws_access_key_id = " + server.key_id + "\n"
                                             "aws_secret_access_key = " + server.secret + "\n");
  testing::WriteText(tmp_ / "config", "[profile bench]\nregion = us-east-1\ns3 =\n  endpoint_url = " +
                                        server.endpoint + "\n  addressing_style = path\n");
  const std::string env = "env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL "
                          "-u AWS_ENDPOINT_URL_S3 -u AWS_REGION AWS_SHARED_CREDENTIALS_FILE=" +
                          ShellQuote((tmp_ / "credentials").string()) +
                          " AWS_CONFIG_FILE=" + ShellQuote((tmp_ / "config").string()) + " ";
  const std::string store = testing::UniqueS3Prefix("cli-profile");
  auto built = testing::RunCommand(env + "AWS_PROFILE=bench " + ShellQuote(SHARDVEC_CLI_PATH) +
                                   " build --quiet --store " + ShellQuote(store) + " --input " +
                                   ShellQuote((tmp_ / "v1.npy").string()) + " --metric l2 --strategy lsh --num-dbs 2");
  EXPECT_EQ(built.exit_code, 0) << built.err;
  auto history = testing::RunCommand(env + ShellQuote(SHARDVEC_CLI_PATH) + " history --profile bench --store " +
                                     ShellQuote(store));
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, HasSubstr("(current)"));
  // The other profile's key is refused by the server, and the error says which profile it came from.
  auto other = testing::RunCommand(env + ShellQuote(SHARDVEC_CLI_PATH) + " history --profile other --endpoint-url " +
                                   server.endpoint + " --store " + ShellQuote(store));
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.err, HasSubstr("profile 'other'"));
  EXPECT_THAT(other.err, ::testing::Not(HasSubstr(server.secret)));
}

}  // namespace
}  // namespace shardvec
