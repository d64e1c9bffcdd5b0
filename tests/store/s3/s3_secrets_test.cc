// Credentials never reach an error or a log line: S3 failures provoked on purpose (a signature the
// server refuses, an endpoint nobody listens on) through the C++ API and the CLI with debug logging,
// and every message and all of stderr searched for the secret key and the session token.
#include <gtest/gtest.h>

#include <string>

#include "store/s3/s3_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::ShellQuote;

constexpr const char* kSecret = "WrongSecretKey-never-print-7f3a9c";
constexpr const char* kToken = "SessionToken-never-print-51be02";

void ExpectNoCredentials(const std::string& text, const std::string& what) {
  EXPECT_EQ(text.find(kSecret), std::string::npos) << what << " prints the secret key: " << text;
  EXPECT_EQ(text.find(kToken), std::string::npos) << what << " prints the session token: " << text;
}

void ExpectEveryCallFailsWithoutCredentials(const StoreOptions& options, const std::string& what) {
  auto store = S3Store::Open(testing::UniqueS3Prefix("secrets"), options);
  if (!store.ok()) {
    ExpectNoCredentials(store.status().ToString(), what + " open");
    return;
  }
  const std::vector<Status> failures = {
      (*store)->Put("k", "v"), (*store)->Get("k").status(), (*store)->Head("k").status(),
      (*store)->CompareAndSwap("_CURRENT", "p", std::nullopt).status()};
  for (const Status& st : failures) {
    EXPECT_FALSE(st.ok()) << what;
    ExpectNoCredentials(st.ToString(), what);
  }
}

TEST(S3SecretsTest, ASignatureTheServerRefusesNamesNoCredential) {
  StoreOptions o = testing::S3TestOptions();
  o.secret_access_key = kSecret;
  o.session_token = kToken;
  ExpectEveryCallFailsWithoutCredentials(o, "signature mismatch");
}

TEST(S3SecretsTest, AnEndpointNobodyListensOnNamesNoCredential) {
  StoreOptions o = testing::S3TestOptions();
  o.endpoint_url = "http://127.0.0.1:1";
  o.secret_access_key = kSecret;
  o.session_token = kToken;
  o.max_attempts = 2;
  o.max_retry_seconds = 1;
  ExpectEveryCallFailsWithoutCredentials(o, "bad endpoint");
}

// user:password typed into the endpoint URL (a closed loopback port, so requests would be retried
// and logged): refused at open, and the message shows the URL with "***" for them.
TEST(S3SecretsTest, AnEndpointCarryingCredentialsIsRefusedWithoutPrintingThem) {
  StoreOptions o = testing::S3TestOptions();
  o.endpoint_url = std::string("http://AKIAUSER:") + kSecret + "@127.0.0.1:1";
  o.max_attempts = 2;
  o.max_retry_seconds = 1;
  auto store = S3Store::Open(testing::UniqueS3Prefix("secrets"), o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.status().message().find("'http://***@127.0.0.1:1' must not carry credentials"), std::string::npos)
      << store.status().message();
  ExpectEveryCallFailsWithoutCredentials(o, "endpoint with userinfo");
  // The store URL itself is no place for them either.
  auto in_url = S3Store::Open(std::string("s3://user:") + kSecret + "@bucket/prefix", testing::S3TestOptions());
  ASSERT_FALSE(in_url.ok());
  ExpectNoCredentials(in_url.status().ToString(), "s3:// URL with userinfo");
}

TEST(S3SecretsTest, CliWithDebugLoggingPrintsNoCredentialOnFailure) {
  const testing::S3TestServer& server = testing::RequireS3Server();
  testing::TempDir tmp;
  testing::WriteNpy(tmp / "v.npy", testing::RandomMatrix(20, 4, 1));
  const std::string store = testing::UniqueS3Prefix("secrets-cli");
  for (const std::string& endpoint : {server.endpoint, std::string("http://127.0.0.1:1"),
                                      std::string("http://AKIAUSER:") + kSecret + "@127.0.0.1:1"}) {
    const std::string env = "env -u AWS_PROFILE SHARDVEC_LOG=debug AWS_ACCESS_KEY_ID=" + ShellQuote(server.key_id) +
                            " AWS_SECRET_ACCESS_KEY=" + kSecret + " AWS_SESSION_TOKEN=" + kToken +
                            " AWS_ENDPOINT_URL=" + ShellQuote(endpoint) +
                            " AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null ";
    for (const std::string& command :
         {"build --store " + ShellQuote(store) + " --input " + ShellQuote((tmp / "v.npy").string()) +
              " --metric l2 --strategy lsh --num-dbs 2",
          "info --store " + ShellQuote(store), "search --store " + ShellQuote(store) + " --query 1,2,3,4"}) {
      auto r = testing::RunCommand(env + ShellQuote(SHARDVEC_CLI_PATH) + " " + command);
      EXPECT_EQ(r.exit_code, 1) << command << " at " << endpoint << ": " << r.err;
      EXPECT_FALSE(r.err.empty()) << command;
      ExpectNoCredentials(r.err + r.out, command + " at " + endpoint);
    }
  }
}

}  // namespace
}  // namespace shardvec
