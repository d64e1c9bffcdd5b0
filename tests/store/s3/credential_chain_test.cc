// The AWS credential chain beyond static keys, each provider against a local stand-in: EC2 instance
// metadata (IMDSv2) and the ECS endpoint played by a fake HTTP server through their override
// variables, credential_process with small scripts, SSO with a fake portal and a token cache file,
// STS (AssumeRole, AssumeRoleWithWebIdentity) with a fake STS here and moto in the S3* suite. Every
// failure names the provider and the setting and never a secret.
#include "store/s3/credential_chain.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "store/s3/process_credentials.h"
#include "store/s3/s3_store.h"
#include "store/s3/sigv4.h"
#include "support/fake_http_server.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;
using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::TempDir;
using testing::UtcTimeFromNow;
using testing::WriteText;

constexpr const char* kSecretMarker = "sEcReT";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string MetadataJson(const std::string& id, int lifetime_seconds = 3600) {
  return R"({"Code":"Success","AccessKeyId":")" + id + R"(","SecretAccessKey":"md-sEcReT","Token":"md-token-sEcReT",)" +
         R"("Expiration":")" + UtcTimeFromNow(lifetime_seconds) + R"("})";
}

std::string StsXml(const std::string& action, const std::string& id) {
  return "<" + action + "Response><" + action + "Result><Credentials><AccessKeyId>" + id +
         "</AccessKeyId><SecretAccessKey>sts-sEcReT</SecretAccessKey><SessionToken>sts-token-sEcReT</SessionToken>"
         "<Expiration>" + UtcTimeFromNow(3600) + "</Expiration></Credentials></" + action + "Result></" + action +
         "Response>";
}

// Plays IMDSv2: a token from PUT, then the role name and its keys only with that token.
FakeResponse ImdsHandler(const FakeRequest& r, const std::string& id, int lifetime_seconds = 3600) {
  if (r.method == "PUT" && r.target == "/latest/api/token") {
    if (r.Header("x-aws-ec2-metadata-token-ttl-seconds").empty()) return {400, "", "text/plain"};
    return {200, "imds-session-token", "text/plain"};
  }
  if (r.Header("x-aws-ec2-metadata-token") != "imds-session-token") return {401, "", "text/plain"};
  if (r.target == "/latest/meta-data/iam/security-credentials/") return {200, "app-role\n", "text/plain"};
  if (r.target == "/latest/meta-data/iam/security-credentials/app-role") return {200, MetadataJson(id, lifetime_seconds)};
  return {404, "", "text/plain"};
}

class CredentialChainTest : public ::testing::Test {
 protected:
  CredentialChainTest() {
    fs::create_directories(tmp_.path() / ".aws");
    env_["HOME"] = tmp_.path().string();
    env_["AWS_EC2_METADATA_DISABLED"] = "true";  // a test machine must never ask a real metadata service
  }

  std::string CredentialsPath() const { return (tmp_.path() / ".aws/credentials").string(); }
  std::string ConfigPath() const { return (tmp_.path() / ".aws/config").string(); }
  void WriteCredentials(const std::string& text) { WriteText(CredentialsPath(), text); }
  void WriteConfig(const std::string& text) { WriteText(ConfigPath(), text); }
  EnvLookup Env() const {
    return [env = env_](const std::string& name) {
      auto it = env.find(name);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }

  Result<S3Settings> Resolve(const StoreOptions& options = {}) {
    auto result = ResolveS3Settings(options, "my-bucket", Env());
    if (result.ok()) {
      EXPECT_FALSE(Contains(result->credentials_source, kSecretMarker)) << result->credentials_source;
    } else {
      EXPECT_FALSE(Contains(result.status().message(), kSecretMarker)) << result.status().message();
    }
    return result;
  }
  std::string ResolveError(const StoreOptions& options = {}) {
    auto result = Resolve(options);
    EXPECT_FALSE(result.ok());
    return result.status().message();
  }

  // A script in the temp folder (made executable) that prints `body`.
  std::string Script(const std::string& name, const std::string& body) {
    const fs::path path = tmp_.path() / name;
    WriteText(path, "#!/bin/sh\n" + body);
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }

  TempDir tmp_;
  std::map<std::string, std::string> env_;
};

// --- EC2 instance metadata (IMDSv2) ---

TEST_F(CredentialChainTest, InstanceMetadataGetsATokenThenTheRoleThenItsKeys) {
  FakeHttpServer imds([](const FakeRequest& r) { return ImdsHandler(r, "AKIAIMDS"); });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAIMDS");
  EXPECT_EQ(s->credentials.session_token, "md-token-sEcReT");
  EXPECT_EQ(s->credentials_source, "EC2 instance metadata");
  const auto requests = imds.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[2].target, "/latest/meta-data/iam/security-credentials/app-role");
}

TEST_F(CredentialChainTest, InstanceMetadataUnreachableOrTurnedOffEndsInTheNoCredentialsMessage) {
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1";  // nothing listens there
  std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "no AWS credentials found for s3://my-bucket")) << message;
  EXPECT_TRUE(Contains(message, "EC2 instance metadata (http://127.0.0.1:1)")) << message;

  FakeHttpServer imds([](const FakeRequest& r) { return ImdsHandler(r, "AKIAIMDS"); });
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  env_["AWS_EC2_METADATA_DISABLED"] = "TRUE";
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "turned off by AWS_EC2_METADATA_DISABLED")) << message;
  EXPECT_TRUE(imds.requests().empty());
}

TEST_F(CredentialChainTest, InstanceMetadataWithoutARoleNamesTheService) {
  FakeHttpServer imds([](const FakeRequest& r) {
    if (r.method == "PUT") return FakeResponse{200, "imds-session-token", "text/plain"};
    return FakeResponse{404, "", "text/plain"};
  });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  const std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "EC2 instance metadata (" + imds.url() + ")")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 404")) << message;
}

// --- ECS container credentials ---

TEST_F(CredentialChainTest, ContainerFullUriSendsTheAuthorizationTokenFromFileOrVariable) {
  FakeHttpServer ecs([](const FakeRequest& r) {
    if (r.Header("authorization") != "ecs-auth-sEcReT") return FakeResponse{401, "", "text/plain"};
    return FakeResponse{200, MetadataJson("AKIAECS")};
  });
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = ecs.url() + "/v2/credentials/abc";
  WriteText(tmp_.path() / "ecs-token", "ecs-auth-sEcReT\n");
  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = (tmp_.path() / "ecs-token").string();
  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong-one";  // the file wins, as in botocore
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAECS");
  EXPECT_EQ(s->credentials_source, "ECS container credentials");
  EXPECT_EQ(ecs.requests().at(0).target, "/v2/credentials/abc");

  env_.erase("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "ecs-auth-sEcReT";
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();

  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "stale";
  const std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "ECS container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)")) << message;
  EXPECT_TRUE(Contains(message, "HTTP 401")) << message;
}

TEST_F(CredentialChainTest, ContainerFullUriMustBeHttpsOrALocalAgent) {
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://example.com/creds";
  const std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "(AWS_CONTAINER_CREDENTIALS_FULL_URI) 'http://example.com/creds' must be https://"))
      << message;
}

// --- credential_process ---

TEST_F(CredentialChainTest, CredentialProcessRunsWithoutAShellAndReadsVersion1) {
  const std::string script = Script(
      "creds.sh", "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIA%s\", \"SecretAccessKey\": \"proc-sEcReT\", "
                  "\"SessionToken\": \"t\", \"Expiration\": \"" + UtcTimeFromNow(3600) + "\"}' \"$#\"\n");
  const fs::path marker = tmp_.path() / "injected";
  WriteConfig("[default]\ncredential_process = " + script + " 'one word' \"x;touch " + marker.string() + "\"\n");
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIA2");  // two arguments, quotes honoured
  EXPECT_EQ(s->credentials_source, "profile 'default' (credential_process)");
  EXPECT_FALSE(fs::exists(marker)) << "the command line went through a shell";
}

TEST_F(CredentialChainTest, CredentialProcessFailuresNameTheProfileAndTheCommandNotTheOutput) {
  const std::string failing = Script("fail.sh", "echo '{\"SecretAccessKey\": \"leaked-sEcReT\"}'\nexit 3\n");
  WriteConfig("[profile dev]\ncredential_process = " + failing + "\n");
  StoreOptions options;
  options.profile = "dev";
  std::string message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "profile 'dev': credential_process '" + failing + "' exited with status 3")) << message;

  const std::string garbage = Script("garbage.sh", "echo 'sEcReT not json'\n");
  WriteConfig("[profile dev]\ncredential_process = " + garbage + "\n");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "did not print a JSON object")) << message;

  const std::string unversioned = Script("v0.sh", "echo '{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"sEcReT\"}'\n");
  WriteConfig("[profile dev]\ncredential_process = " + unversioned + "\n");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "without \"Version\": 1")) << message;

  WriteConfig("[profile dev]\ncredential_process = " + (tmp_.path() / "missing-helper").string() + "\n");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "could not be started")) << message;

  WriteConfig("[profile dev]\ncredential_process = helper 'unclosed\n");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "profile 'dev': credential_process has an unclosed ' quote")) << message;
}

TEST_F(CredentialChainTest, CredentialProcessThatHangsIsStoppedAtTheTimeout) {
  auto result = RunCredentialProcess("sleep 30", "profile 'slow'", 0.3);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(result.status().message(), "profile 'slow': credential_process 'sleep 30' did not finish"))
      << result.status().message();
}

TEST(SplitCommandLineTest, SplitsLikeShlexWithoutExpanding) {
  auto words = SplitCommandLine(R"(aws-vault  exec 'my profile' --json "a \"q\" $HOME" back\ slash)", "p");
  ASSERT_TRUE(words.ok()) << words.status().ToString();
  EXPECT_EQ(*words, (std::vector<std::string>{"aws-vault", "exec", "my profile", "--json", "a \"q\" $HOME",
                                              "back slash"}));
  EXPECT_FALSE(SplitCommandLine("   ", "p").ok());
  EXPECT_FALSE(SplitCommandLine("x \"open", "p").ok());
}

// --- expiry and refresh through the chain ---

TEST_F(CredentialChainTest, ShortLivedKeysAreFetchedAgainForTheNextRequest) {
  // Each run prints a new key id; Expiration is a minute away, inside the five-minute refresh window.
  const fs::path counter = tmp_.path() / "count";
  const std::string script = Script(
      "rotating.sh", "n=$(cat " + counter.string() + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
                         counter.string() + "\nprintf '{\"Version\": 1, \"AccessKeyId\": \"AKIA%s\", "
                         "\"SecretAccessKey\": \"sEcReT\", \"Expiration\": \"%s\"}' $n "
                         "\"$(date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%SZ)\"\n");
  WriteConfig("[default]\ncredential_process = " + script + "\n");
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIA1");
  auto next = s->credential_provider->Current();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->access_key_id, "AKIA2");
  EXPECT_EQ(s->credential_provider->fetches(), 2);
}

// --- SSO ---

class SsoChainTest : public CredentialChainTest {
 protected:
  void WriteToken(const std::string& cache_key, const std::string& expires_at) {
    const fs::path dir = tmp_.path() / ".aws/sso/cache";
    fs::create_directories(dir);
    WriteText(dir / (Sha1Hex(cache_key) + ".json"),
              R"({"accessToken": "sso-access-sEcReT", "expiresAt": ")" + expires_at + R"(", "region": "eu-west-1"})");
  }
  FakeHttpServer portal_{[](const FakeRequest& r) {
    if (r.Header("x-amz-sso_bearer_token") != "sso-access-sEcReT") return FakeResponse{401, "{}"};
    return FakeResponse{200, R"({"roleCredentials": {"accessKeyId": "AKIASSO", "secretAccessKey": "sso-sEcReT",
                               "sessionToken": "sso-token-sEcReT", "expiration": 1893456000000}})"};
  }};
};

TEST_F(SsoChainTest, SsoSessionProfileExchangesTheCachedTokenAtThePortal) {
  env_["AWS_ENDPOINT_URL_SSO"] = portal_.url();
  WriteConfig("[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Reader\n"
              "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n");
  WriteToken("corp", UtcTimeFromNow(3600));
  StoreOptions options;
  options.profile = "dev";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIASSO");
  EXPECT_EQ(s->credentials_source, "SSO profile 'dev' (account 111122223333, role Reader)");
  const FakeRequest request = portal_.requests().at(0);
  EXPECT_EQ(request.target, "/federation/credentials?account_id=111122223333&role_name=Reader");

  // A legacy profile keys its cache by the start URL.
  WriteConfig("[profile dev]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n"
              "sso_account_id = 111122223333\nsso_role_name = Reader\n");
  WriteToken("https://old.awsapps.com/start", UtcTimeFromNow(3600));
  s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
}

TEST_F(SsoChainTest, ExpiredMissingOrRefusedTokensSayRunAwsSsoLogin) {
  env_["AWS_ENDPOINT_URL_SSO"] = portal_.url();
  WriteConfig("[profile dev]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = Reader\n"
              "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n");
  StoreOptions options;
  options.profile = "dev";
  std::string message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "SSO profile 'dev': no SSO token in")) << message;
  EXPECT_TRUE(Contains(message, "run aws sso login --profile dev")) << message;

  WriteToken("corp", UtcTimeFromNow(-60));
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "expired at")) << message;
  EXPECT_TRUE(Contains(message, "run aws sso login --profile dev")) << message;

  const fs::path dir = tmp_.path() / ".aws/sso/cache";
  WriteText(dir / (Sha1Hex("corp") + ".json"),
            R"({"accessToken": "revoked", "expiresAt": ")" + UtcTimeFromNow(3600) + R"("})");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "refused the SSO token (HTTP 401); run aws sso login --profile dev")) << message;

  WriteConfig("[profile dev]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = Reader\n");
  message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "sso_session 'corp' has no [sso-session corp] section")) << message;
}

// --- STS: AssumeRole and web identity against a fake STS ---

class StsChainTest : public CredentialChainTest {
 protected:
  StsChainTest() { env_["AWS_ENDPOINT_URL_STS"] = sts_.url(); }
  FakeHttpServer sts_{[](const FakeRequest& r) {
    if (Contains(r.body, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fdenied")) {
      return FakeResponse{403,
                          "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not allowed</Message></Error>"
                          "</ErrorResponse>",
                          "text/xml"};
    }
    const bool web = Contains(r.body, "Action=AssumeRoleWithWebIdentity");
    return FakeResponse{200, StsXml(web ? "AssumeRoleWithWebIdentity" : "AssumeRole", web ? "ASIAWEB" : "ASIAROLE"),
                        "text/xml"};
  }};
};

TEST_F(StsChainTest, RoleArnWithSourceProfileAssumesTheRoleSignedWithTheSourceKeys) {
  WriteCredentials("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-sEcReT\n");
  WriteConfig("[profile dev]\nrole_arn = arn:aws:iam::1:role/app\nsource_profile = base\nrole_session_name = ci-run\n"
              "external_id = ext-7\n");
  StoreOptions options;
  options.profile = "dev";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "ASIAROLE");
  EXPECT_EQ(s->credentials.session_token, "sts-token-sEcReT");
  EXPECT_TRUE(Contains(s->credentials_source, "profile 'dev' (role_arn arn:aws:iam::1:role/app via profile 'base'"))
      << s->credentials_source;
  const FakeRequest request = sts_.requests().at(0);
  EXPECT_TRUE(Contains(request.Header("authorization"), "Credential=AKIABASE/")) << request.Header("authorization");
  EXPECT_TRUE(Contains(request.Header("authorization"), "/sts/aws4_request")) << request.Header("authorization");
  EXPECT_TRUE(Contains(request.body, "Action=AssumeRole&")) << request.body;
  EXPECT_TRUE(Contains(request.body, "RoleSessionName=ci-run")) << request.body;
  EXPECT_TRUE(Contains(request.body, "ExternalId=ext-7")) << request.body;
}

TEST_F(StsChainTest, ChainsOfSourceProfilesAndCredentialSourceEnvironment) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env_["AWS_SECRET_ACCESS_KEY"] = "env-sEcReT";
  WriteConfig("[profile hop]\nrole_arn = arn:aws:iam::1:role/first\ncredential_source = Environment\n"
              "[profile dev]\nrole_arn = arn:aws:iam::1:role/second\nsource_profile = hop\n");
  StoreOptions options;
  options.profile = "dev";  // an explicit profile skips environment keys, but credential_source uses them
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto requests = sts_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(Contains(requests[0].Header("authorization"), "Credential=AKIAENV/"));
  EXPECT_TRUE(Contains(requests[0].body, "role%2Ffirst"));
  EXPECT_TRUE(Contains(requests[1].Header("authorization"), "Credential=ASIAROLE/"));
  EXPECT_TRUE(Contains(requests[1].body, "role%2Fsecond"));
}

TEST_F(StsChainTest, WebIdentityFromTheEnvironmentSendsTheTokenUnsigned) {
  WriteText(tmp_.path() / "token", "eyJ-web-identity-sEcReT\n");
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = (tmp_.path() / "token").string();
  env_["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/pod";
  env_["AWS_ROLE_SESSION_NAME"] = "pod-7";
  WriteCredentials("[default]\naws_access_key_id = AKIASTATIC\naws_secret_access_key = static-sEcReT\n");
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "ASIAWEB");  // web identity comes before the profile's static keys
  EXPECT_TRUE(Contains(s->credentials_source, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE")) << s->credentials_source;
  const FakeRequest request = sts_.requests().at(0);
  EXPECT_EQ(request.Header("authorization"), "");
  EXPECT_TRUE(Contains(request.body, "WebIdentityToken=eyJ-web-identity-sEcReT")) << request.body;
  EXPECT_TRUE(Contains(request.body, "RoleSessionName=pod-7")) << request.body;

  // The same from a profile.
  env_.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
  env_.erase("AWS_ROLE_ARN");
  WriteConfig("[default]\nweb_identity_token_file = " + (tmp_.path() / "token").string() +
              "\nrole_arn = arn:aws:iam::1:role/pod\n");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "ASIAWEB");
}

TEST_F(StsChainTest, StsRefusalNamesTheProfileRoleAndErrorCode) {
  WriteCredentials("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-sEcReT\n");
  WriteConfig("[profile dev]\nrole_arn = arn:aws:iam::1:role/denied\nsource_profile = base\n");
  StoreOptions options;
  options.profile = "dev";
  auto s = Resolve(options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.status().message(), "profile 'dev' (role_arn arn:aws:iam::1:role/denied")) << s.status().message();
  EXPECT_TRUE(Contains(s.status().message(), "AccessDenied: not allowed")) << s.status().message();
}

// --- role configuration mistakes (no network needed) ---

TEST_F(CredentialChainTest, RoleProfileMistakesAreNamed) {
  const std::string role = "[profile a]\nrole_arn = arn:aws:iam::1:role/x\n";
  const std::string keys_b = "[profile b]\naws_access_key_id = A\naws_secret_access_key = sEcReT\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {role + "source_profile = b\n[profile b]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = a\n",
       "AWS profile 'b': source_profile 'a' for role_arn leads back into a loop"},
      {role + "source_profile = b\ncredential_source = Environment\n",
       "AWS profile 'a' sets both source_profile and credential_source"},
      {role + "credential_source = Laptop\n",
       "credential_source must be Environment, Ec2InstanceMetadata or EcsContainer (got 'Laptop')"},
      {role + "credential_source = Environment\n", "credential_source = Environment but AWS_ACCESS_KEY_ID"},
      {role + "source_profile = b\nmfa_serial = arn:mfa\n" + keys_b, "AWS profile 'a' sets mfa_serial"},
      {role, "sets role_arn but not source_profile, credential_source or web_identity_token_file"},
      {role + "source_profile = b\nduration_seconds = 60\n" + keys_b,
       "duration_seconds must be a whole number from 900 to 43200 (got '60')"},
  };
  StoreOptions options;
  options.profile = "a";
  for (const auto& [config, expected] : cases) {
    WriteConfig(config);
    const std::string message = ResolveError(options);
    EXPECT_TRUE(Contains(message, expected)) << config << "\n-> " << message;
  }
}

TEST_F(CredentialChainTest, WebIdentityMistakesAreNamed) {
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = (tmp_.path() / "no-such-token").string();
  std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but no role to assume")) << message;

  env_["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/pod";
  env_["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:1";
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE " + (tmp_.path() / "no-such-token").string()))
      << message;
  EXPECT_TRUE(Contains(message, "reading the token file")) << message;
}

// --- against moto (the S3 test server): STS for real, then S3 with the keys it gave ---

class S3CredentialChainTest : public CredentialChainTest {
 protected:
  // Opens a store on the test server with no keys in the options: the chain must find them.
  Result<std::shared_ptr<S3Store>> OpenWithChain(const std::string& prefix) {
    StoreOptions options = testing::S3TestOptions();
    options.access_key_id.clear();
    options.secret_access_key.clear();
    return S3Store::Open(prefix, options, nullptr, Env());
  }
  static std::string RoleArn() {
    const char* arn = std::getenv("SHARDVEC_TEST_S3_ROLE_ARN");
    return arn == nullptr ? "" : arn;
  }
  static void ExpectRoundTrip(S3Store& store) {
    ASSERT_TRUE(store.Put("probe.txt", "hello").ok());
    auto back = store.Get("probe.txt");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, "hello");
  }
};

TEST_F(S3CredentialChainTest, AssumeRoleAtMotoStsGivesKeysS3Accepts) {
  const auto& server = testing::RequireS3Server();
  ASSERT_FALSE(RoleArn().empty()) << "scripts/s3_test_server.py sets SHARDVEC_TEST_S3_ROLE_ARN";
  env_["AWS_ENDPOINT_URL_STS"] = server.endpoint;
  WriteCredentials("[base]\naws_access_key_id = " + server.key_id + "\naws_secret_access_key = " + server.secret + "\n");
  WriteConfig("[default]\nrole_arn = " + RoleArn() + "\nsource_profile = base\n");
  auto store = OpenWithChain(testing::UniqueS3Prefix("assume-role"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(Contains((*store)->client().Describe(""), server.bucket));
  ExpectRoundTrip(**store);
}

TEST_F(S3CredentialChainTest, WebIdentityAtMotoStsGivesKeysS3Accepts) {
  const char* sts = std::getenv("SHARDVEC_TEST_STS_ENDPOINT");
  ASSERT_NE(sts, nullptr) << "scripts/s3_test_server.py sets SHARDVEC_TEST_STS_ENDPOINT";
  WriteText(tmp_.path() / "token", "eyJhbGciOiJub25lIn0.e30.\n");
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = (tmp_.path() / "token").string();
  env_["AWS_ROLE_ARN"] = RoleArn();
  env_["AWS_ENDPOINT_URL_STS"] = sts;
  auto store = OpenWithChain(testing::UniqueS3Prefix("web-identity"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ExpectRoundTrip(**store);
}

TEST_F(S3CredentialChainTest, ExpiringInstanceKeysAreRefreshedBetweenS3Requests) {
  const auto& server = testing::RequireS3Server();
  // IMDS hands out the server's real key, each time expiring in a minute: every request refreshes.
  FakeHttpServer imds([&server](const FakeRequest& r) {
    FakeResponse answer = ImdsHandler(r, server.key_id, 60);
    const std::string placeholder = "md-sEcReT\",\"Token\":\"md-token-sEcReT\"";
    const size_t at = answer.body.find(placeholder);
    if (at != std::string::npos) answer.body.replace(at, placeholder.size(), server.secret + "\",\"Token\":\"\"");
    return answer;
  });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  auto store = OpenWithChain(testing::UniqueS3Prefix("imds-refresh"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const size_t after_open = imds.requests().size();
  EXPECT_EQ(after_open, 3u);
  ExpectRoundTrip(**store);
  EXPECT_GE(imds.requests().size(), after_open + 2 * 3) << "each of the two requests fetched fresh keys";
}

}  // namespace
}  // namespace shardvec
