// End to end with credentials from the chain instead of keys: `shardvec build` and `search` on the S3
// test server as a Kubernetes pod would run them, with only a web identity token file and a role ARN
// (STS AssumeRoleWithWebIdentity at moto), no access key anywhere in the environment or files.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::ShellQuote;

TEST(S3CliCredentialsTest, BuildAndSearchWithWebIdentityCredentials) {
  const auto& server = testing::RequireS3Server();
  const char* sts = std::getenv("SHARDVEC_TEST_STS_ENDPOINT");
  const char* role = std::getenv("SHARDVEC_TEST_S3_ROLE_ARN");
  ASSERT_TRUE(sts != nullptr && role != nullptr) << "run under scripts/s3_test_server.py";
  testing::TempDir tmp;
  testing::WriteNpy(tmp.path() / "v.npy", testing::RandomMatrix(200, 8, 1));
  testing::WriteNpy(tmp.path() / "q.npy", testing::RandomMatrix(3, 8, 2));
  testing::WriteText(tmp.path() / "token", "eyJhbGciOiJub25lIn0.e30.\n");
  const std::string env = fmt::format(
      "env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "
      "AWS_WEB_IDENTITY_TOKEN_FILE={} AWS_ROLE_ARN={} AWS_ROLE_SESSION_NAME=cli-test AWS_ENDPOINT_URL_STS={} "
      "AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
      "AWS_EC2_METADATA_DISABLED=true",
      ShellQuote((tmp.path() / "token").string()), ShellQuote(role), ShellQuote(sts), ShellQuote(server.endpoint));
  const std::string store = testing::UniqueS3Prefix("cli-web-identity");
  const std::string cli = env + " " + ShellQuote(SHARDVEC_CLI_PATH);

  auto built = testing::RunCommand(cli + " build --quiet --metric l2 --strategy lsh --num-dbs 2 --store " + ShellQuote(store) +
                                   " --local-root " + ShellQuote((tmp.path() / "lr").string()) + " --input " +
                                   ShellQuote((tmp.path() / "v.npy").string()));
  ASSERT_EQ(built.exit_code, 0) << built.err;
  auto searched = testing::RunCommand(cli + " search --json --top-k 4 --num-probes 2 --store " + ShellQuote(store) + " --cache-dir " +
                                      ShellQuote((tmp.path() / "cache").string()) + " --query-file " +
                                      ShellQuote((tmp.path() / "q.npy").string()));
  ASSERT_EQ(searched.exit_code, 0) << searched.err;
  std::istringstream lines(searched.out);
  int answered = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(nlohmann::json::parse(line)["results"].size(), 4u) << line;
    ++answered;
  }
  EXPECT_EQ(answered, 3);

  // Without the role the same command fails and names the provider and the variable.
  auto refused = testing::RunCommand(env + " AWS_ROLE_ARN= " + ShellQuote(SHARDVEC_CLI_PATH) + " info --store " +
                                     ShellQuote(store));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but no role to assume"),
            std::string::npos)
      << refused.err;
}

}  // namespace
}  // namespace shardvec
