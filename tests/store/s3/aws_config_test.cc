#include "store/s3/aws_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <tuple>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

// Every secret key and token in these tests contains this marker, so one search proves none leaked.
constexpr const char* kSecretMarker = "sEcReT";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class AwsConfigTest : public ::testing::Test {
 protected:
  AwsConfigTest() {
    fs::create_directories(tmp_.path() / ".aws");
    env_["HOME"] = tmp_.path().string();
    env_["AWS_EC2_METADATA_DISABLED"] = "true";  // the chain's last provider must not ask a real one
  }

  std::string CredentialsPath() const { return (tmp_.path() / ".aws/credentials").string(); }
  std::string ConfigPath() const { return (tmp_.path() / ".aws/config").string(); }
  void WriteCredentials(const std::string& text) { WriteText(CredentialsPath(), text); }
  void WriteConfig(const std::string& text) { WriteText(ConfigPath(), text); }

  Result<S3Settings> Resolve(const StoreOptions& options = {}, std::string_view bucket = "my-bucket") {
    auto result = ResolveS3Settings(options, bucket, [this](const std::string& name) {
      auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
    if (result.ok()) {
      EXPECT_FALSE(Contains(result->credentials_source, kSecretMarker)) << result->credentials_source;
    }
    return result;
  }

  // Resolves, expects an InvalidArgument that does not leak a secret, and returns its message.
  std::string ResolveError(const StoreOptions& options = {}, std::string_view bucket = "my-bucket") {
    auto result = Resolve(options, bucket);
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().ToString();
    EXPECT_FALSE(Contains(result.status().message(), kSecretMarker)) << result.status().message();
    return result.status().message();
  }

  void SetEnvKeys() {
    env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
    env_["AWS_SECRET_ACCESS_KEY"] = "env-sEcReT";
  }

  TempDir tmp_;
  std::map<std::string, std::string> env_;
};

StoreOptions WithKeys() {
  StoreOptions options;
  options.access_key_id = "AKIAOPT";
  options.secret_access_key = "opt-sEcReT";
  return options;
}

// --- INI parsing ---

TEST_F(AwsConfigTest, ParsesSectionsCommentsWhitespaceAndNestedBlocks) {
  auto ini = ParseAwsIni(
      "\xEF\xBB\xBF# a comment\n"
      "; another comment\n"
      "\n"
      "[default]\n"
      "  region   =   eu-west-1  \r\n"
      "Output=json\n"
      "s3 =\n"
      "  addressing_style = path\n"
      "    # a comment inside the block\n"
      "  endpoint_url = http://localhost:9000\n"
      "[profile dev]\n"
      "region = us-west-2\n",
      "config");
  ASSERT_TRUE(ini.ok()) << ini.status().ToString();
  ASSERT_EQ(ini->size(), 2u);
  const auto& def = ini->at("default");
  EXPECT_EQ(def.at("region"), "eu-west-1");
  EXPECT_EQ(def.at("output"), "json");  // keys are case-insensitive, as in configparser
  EXPECT_EQ(def.at("s3.addressing_style"), "path");
  EXPECT_EQ(def.at("s3.endpoint_url"), "http://localhost:9000");
  EXPECT_EQ(ini->at("profile dev").at("region"), "us-west-2");
}

TEST_F(AwsConfigTest, MalformedIniNamesFileAndLineButNotTheText) {
  auto no_equals = ParseAwsIni("[default]\nregion = x\nAKIAsEcReT\n", "/home/u/.aws/credentials");
  ASSERT_FALSE(no_equals.ok());
  EXPECT_EQ(no_equals.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(no_equals.status().message(), "/home/u/.aws/credentials line 3"))
      << no_equals.status().message();
  EXPECT_FALSE(Contains(no_equals.status().message(), kSecretMarker));

  auto before_section = ParseAwsIni("# header\naws_secret_access_key = x-sEcReT\n", "creds");
  ASSERT_FALSE(before_section.ok());
  EXPECT_TRUE(Contains(before_section.status().message(), "creds line 2"));
  EXPECT_FALSE(Contains(before_section.status().message(), kSecretMarker));

  auto bad_nested = ParseAwsIni("[default]\ns3 =\n  sEcReT\n", "cfg");
  ASSERT_FALSE(bad_nested.ok());
  EXPECT_TRUE(Contains(bad_nested.status().message(), "cfg line 3"));
  EXPECT_FALSE(Contains(bad_nested.status().message(), kSecretMarker));

  auto unclosed = ParseAwsIni("[default\n", "cfg");
  EXPECT_TRUE(Contains(unclosed.status().message(), "cfg line 1"));

  auto duplicate = ParseAwsIni("[a]\nregion = x\nregion = y\n", "cfg");
  EXPECT_TRUE(Contains(duplicate.status().message(), "cfg line 3"));
  EXPECT_TRUE(Contains(duplicate.status().message(), "region"));
}

TEST_F(AwsConfigTest, MalformedFileOnDiskFailsResolution) {
  SetEnvKeys();
  WriteConfig("[default]\nthis line is broken\n");
  const std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, ConfigPath() + " line 2")) << message;
}

// --- credentials ---

TEST_F(AwsConfigTest, CredentialsPrecedenceOptionsThenEnvThenCredentialsFileThenConfigFile) {
  SetEnvKeys();
  env_["AWS_SESSION_TOKEN"] = "env-token-sEcReT";
  WriteCredentials("[default]\naws_access_key_id = AKIACRED\naws_secret_access_key = cred-sEcReT\n"
                   "aws_session_token = cred-token-sEcReT\n");
  WriteConfig("[default]\naws_access_key_id = AKIACONF\naws_secret_access_key = conf-sEcReT\n");

  StoreOptions options = WithKeys();
  options.session_token = "opt-token-sEcReT";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAOPT");
  EXPECT_EQ(s->credentials.secret_access_key, "opt-sEcReT");
  EXPECT_EQ(s->credentials.session_token, "opt-token-sEcReT");
  EXPECT_EQ(s->credentials_source, "StoreOptions");

  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAENV");
  EXPECT_EQ(s->credentials.secret_access_key, "env-sEcReT");
  EXPECT_EQ(s->credentials.session_token, "env-token-sEcReT");
  EXPECT_EQ(s->credentials_source, "environment (AWS_ACCESS_KEY_ID)");

  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_SECRET_ACCESS_KEY");
  env_.erase("AWS_SESSION_TOKEN");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIACRED");
  EXPECT_EQ(s->credentials.session_token, "cred-token-sEcReT");
  EXPECT_EQ(s->credentials_source, "profile 'default' in " + CredentialsPath());

  WriteCredentials("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other-sEcReT\n");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIACONF");
  EXPECT_EQ(s->credentials.secret_access_key, "conf-sEcReT");
  EXPECT_EQ(s->credentials.session_token, "");
  EXPECT_EQ(s->credentials_source, "profile 'default' in " + ConfigPath());
}

TEST_F(AwsConfigTest, HalfSetOptionKeysNameTheMissingField) {
  StoreOptions options;
  options.access_key_id = "AKIAOPT";
  EXPECT_TRUE(Contains(ResolveError(options), "StoreOptions.secret_access_key"));

  options = {};
  options.secret_access_key = "opt-sEcReT";
  EXPECT_TRUE(Contains(ResolveError(options), "StoreOptions.access_key_id"));

  options = {};
  options.session_token = "opt-token-sEcReT";  // a token alone is not a credential
  EXPECT_TRUE(Contains(ResolveError(options), "StoreOptions.access_key_id"));
}

TEST_F(AwsConfigTest, HalfSetEnvKeysNameTheMissingVariable) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "AWS_SECRET_ACCESS_KEY is not")) << message;

  env_.erase("AWS_ACCESS_KEY_ID");
  env_["AWS_SECRET_ACCESS_KEY"] = "env-sEcReT";
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "AWS_ACCESS_KEY_ID is not")) << message;
}

TEST_F(AwsConfigTest, ExplicitProfileSkipsEnvKeysButAwsProfileDoesNot) {
  SetEnvKeys();
  WriteCredentials("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-sEcReT\n");
  WriteConfig("[profile dev]\nregion = ap-south-1\n");

  StoreOptions options;
  options.profile = "dev";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIADEV");
  EXPECT_EQ(s->credentials_source, "profile 'dev' in " + CredentialsPath());

  // AWS_PROFILE picks the profile for settings, but environment keys still win.
  env_["AWS_PROFILE"] = "dev";
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAENV");
  EXPECT_EQ(s->region, "ap-south-1");

  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_SECRET_ACCESS_KEY");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIADEV");
}

TEST_F(AwsConfigTest, OptionsProfileWinsOverAwsProfile) {
  env_["AWS_PROFILE"] = "env-profile";
  WriteCredentials("[env-profile]\naws_access_key_id = AKIAE\naws_secret_access_key = e-sEcReT\n"
                   "[opt-profile]\naws_access_key_id = AKIAO\naws_secret_access_key = o-sEcReT\n");
  StoreOptions options;
  options.profile = "opt-profile";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAO");
}

TEST_F(AwsConfigTest, ConfigFileUsesProfilePrefixAndCredentialsFileDoesNot) {
  WriteConfig("[dev]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong-sEcReT\n"
              "[profile   dev]\naws_access_key_id = AKIACONF\naws_secret_access_key = conf-sEcReT\n");
  StoreOptions options;
  options.profile = "dev";
  auto s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIACONF");

  // In the credentials file "[profile dev]" is not the dev profile, so the config file still supplies it.
  WriteCredentials("[profile dev]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong-sEcReT\n");
  s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIACONF");

  // A "[dev]" section alone in the config file does not define the profile.
  WriteCredentials("");
  WriteConfig("[dev]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong-sEcReT\n");
  EXPECT_TRUE(Contains(ResolveError(options), "'dev'"));
}

TEST_F(AwsConfigTest, DefaultProfileAcceptsBothHeadersInConfigFile) {
  WriteConfig("[default]\naws_access_key_id = AKIAPLAIN\naws_secret_access_key = plain-sEcReT\n");
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAPLAIN");

  WriteConfig("[profile default]\naws_access_key_id = AKIAPREFIXED\naws_secret_access_key = p-sEcReT\n");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAPREFIXED");
}

TEST_F(AwsConfigTest, MissingExplicitProfileNamesProfileAndBothPaths) {
  SetEnvKeys();
  WriteCredentials("[default]\naws_access_key_id = AKIACRED\naws_secret_access_key = cred-sEcReT\n");
  StoreOptions options;
  options.profile = "nope";
  std::string message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "'nope'")) << message;
  EXPECT_TRUE(Contains(message, CredentialsPath())) << message;
  EXPECT_TRUE(Contains(message, ConfigPath())) << message;

  env_["AWS_PROFILE"] = "also-nope";
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "'also-nope'")) << message;
  EXPECT_TRUE(Contains(message, "AWS_PROFILE")) << message;
  EXPECT_TRUE(Contains(message, CredentialsPath())) << message;
  EXPECT_TRUE(Contains(message, ConfigPath())) << message;
}

TEST_F(AwsConfigTest, NoCredentialsAnywhereExplainsWhatToSet) {
  const std::string message = ResolveError({}, "data-bucket");
  EXPECT_TRUE(Contains(message, "no AWS credentials found for s3://data-bucket")) << message;
  EXPECT_TRUE(Contains(message, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")) << message;
  EXPECT_TRUE(Contains(message, CredentialsPath())) << message;
}

TEST_F(AwsConfigTest, HalfFilledOrUnsupportedProfileIsReported) {
  WriteCredentials("[default]\naws_secret_access_key = cred-sEcReT\n");
  std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "aws_access_key_id")) << message;
  EXPECT_TRUE(Contains(message, CredentialsPath())) << message;

  WriteCredentials("");
  WriteConfig("[default]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n");
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "role_arn")) << message;
}

TEST_F(AwsConfigTest, FileLocationsComeFromEnvironmentOrHome) {
  const fs::path elsewhere = tmp_.path() / "elsewhere";
  fs::create_directories(elsewhere);
  WriteText(elsewhere / "creds", "[default]\naws_access_key_id = AKIAMOVED\naws_secret_access_key = m-sEcReT\n");
  WriteText(elsewhere / "conf", "[default]\nregion = sa-east-1\n");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = (elsewhere / "creds").string();
  env_["AWS_CONFIG_FILE"] = (elsewhere / "conf").string();
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIAMOVED");
  EXPECT_EQ(s->credentials_source, "profile 'default' in " + (elsewhere / "creds").string());
  EXPECT_EQ(s->region, "sa-east-1");

  // Without HOME there are no default files, which is fine when the environment has keys.
  env_.clear();
  SetEnvKeys();
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->region, "us-east-1");
}

// --- region ---

TEST_F(AwsConfigTest, RegionPrecedence) {
  SetEnvKeys();
  WriteConfig("[default]\nregion = from-config\n");
  env_["AWS_REGION"] = "from-aws-region";
  env_["AWS_DEFAULT_REGION"] = "from-default-region";
  StoreOptions options;
  options.region = "from-options";
  EXPECT_EQ(Resolve(options)->region, "from-options");
  EXPECT_EQ(Resolve()->region, "from-aws-region");
  env_.erase("AWS_REGION");
  EXPECT_EQ(Resolve()->region, "from-default-region");
  env_.erase("AWS_DEFAULT_REGION");
  EXPECT_EQ(Resolve()->region, "from-config");
  WriteConfig("");
  EXPECT_EQ(Resolve()->region, "us-east-1");
}

// --- endpoint ---

TEST_F(AwsConfigTest, EndpointPrecedenceAndTrailingSlash) {
  SetEnvKeys();
  WriteConfig("[default]\nendpoint_url = http://general:1\ns3 =\n  endpoint_url = http://nested:2/\n");
  env_["AWS_ENDPOINT_URL_S3"] = "http://env-s3:3";
  env_["AWS_ENDPOINT_URL"] = "https://env-general:4";
  StoreOptions options;
  options.endpoint_url = "http://127.0.0.1:9000/";
  EXPECT_EQ(Resolve(options)->endpoint_url, "http://127.0.0.1:9000");
  EXPECT_EQ(Resolve()->endpoint_url, "http://env-s3:3");
  env_.erase("AWS_ENDPOINT_URL_S3");
  EXPECT_EQ(Resolve()->endpoint_url, "https://env-general:4");
  env_.erase("AWS_ENDPOINT_URL");
  EXPECT_EQ(Resolve()->endpoint_url, "http://nested:2");
  WriteConfig("[default]\nendpoint_url = http://general:1//\n");
  EXPECT_EQ(Resolve()->endpoint_url, "http://general:1");
  WriteConfig("");
  EXPECT_EQ(Resolve()->endpoint_url, "");
}

// Credentials typed into an endpoint would be printed by every message naming it and only reach the
// Host header (requests are signed with the access key): refused, and never echoed.
TEST_F(AwsConfigTest, EndpointWithCredentialsIsRefusedWithoutPrintingThem) {
  SetEnvKeys();
  // Each source of the endpoint, and what the refusal shows of it.
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"option", "http://AKIAUSER:pw-sEcReT@127.0.0.1:9000", "StoreOptions.endpoint_url 'http://***@127.0.0.1:9000'"},
      {"AWS_ENDPOINT_URL", "https://AKIAUSER-pw-sEcReT@host:1/path", "AWS_ENDPOINT_URL 'https://***@host:1/path'"},
      {"config", "ftp://AKIAUSER:pw-sEcReT@general:1", "/.aws/config 'ftp://***@general:1'"}};
  for (const auto& [source, url, shown] : cases) {
    StoreOptions options;
    env_.erase("AWS_ENDPOINT_URL");
    WriteConfig("");
    if (source == "option") options.endpoint_url = url;
    if (source == "AWS_ENDPOINT_URL") env_[source] = url;
    if (source == "config") WriteConfig("[default]\nendpoint_url = " + url + "\n");
    const std::string message = ResolveError(options);
    EXPECT_TRUE(Contains(message, shown + " must not carry credentials")) << message;
    EXPECT_FALSE(Contains(message, "AKIAUSER")) << message;
  }
}

TEST_F(AwsConfigTest, EndpointMustBeHttpOrHttpsWithoutPath) {
  SetEnvKeys();
  StoreOptions options;
  options.endpoint_url = "localhost:9000";
  std::string message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "StoreOptions.endpoint_url")) << message;
  EXPECT_TRUE(Contains(message, "'localhost:9000'")) << message;

  env_["AWS_ENDPOINT_URL"] = "ftp://host";
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "AWS_ENDPOINT_URL 'ftp://host'")) << message;

  env_.erase("AWS_ENDPOINT_URL");
  WriteConfig("[default]\ns3 =\n  endpoint_url = minio:9000\n");
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "s3.endpoint_url")) << message;
  EXPECT_TRUE(Contains(message, ConfigPath())) << message;

  WriteConfig("");
  options.endpoint_url = "http://host:9000/some/path";
  EXPECT_TRUE(Contains(ResolveError(options), "no path"));
  options.endpoint_url = "https://";
  EXPECT_TRUE(Contains(ResolveError(options), "no path"));
  options.endpoint_url = "HTTPS://Host:9000";  // the scheme is case-insensitive
  EXPECT_EQ(Resolve(options)->endpoint_url, "https://Host:9000");
}

// --- addressing style ---

TEST_F(AwsConfigTest, AddressingStylePrecedence) {
  SetEnvKeys();
  WriteConfig("[default]\ns3 =\n  addressing_style = path\n");
  StoreOptions options;
  options.addressing_style = "virtual";
  EXPECT_FALSE(Resolve(options)->path_style);
  options.addressing_style = "auto";
  EXPECT_TRUE(Resolve(options)->path_style);  // from the config file
  WriteConfig("[default]\ns3 =\n  addressing_style = virtual\n");
  options.addressing_style = "path";
  EXPECT_TRUE(Resolve(options)->path_style);
  EXPECT_FALSE(Resolve()->path_style);
}

TEST_F(AwsConfigTest, InvalidAddressingStyleNamesFieldAndValue) {
  SetEnvKeys();
  StoreOptions options;
  options.addressing_style = "sideways";
  std::string message = ResolveError(options);
  EXPECT_TRUE(Contains(message, "addressing_style")) << message;
  EXPECT_TRUE(Contains(message, "'sideways'")) << message;

  WriteConfig("[default]\ns3 =\n  addressing_style = diagonal\n");
  message = ResolveError();
  EXPECT_TRUE(Contains(message, "s3.addressing_style")) << message;
  EXPECT_TRUE(Contains(message, "'diagonal'")) << message;
}

TEST_F(AwsConfigTest, AutoAddressingUsesPathStyleForCustomEndpointsAndNonDnsBuckets) {
  SetEnvKeys();
  EXPECT_FALSE(Resolve({}, "my-bucket")->path_style);
  EXPECT_FALSE(Resolve({}, "abc")->path_style);
  for (const std::string& bucket :
       std::vector<std::string>{"my.bucket", "MyBucket", "my_bucket", "ab", std::string(64, 'a')}) {
    EXPECT_TRUE(Resolve({}, bucket)->path_style) << bucket;
  }
  StoreOptions options;
  options.endpoint_url = "http://127.0.0.1:9000";
  EXPECT_TRUE(Resolve(options, "my-bucket")->path_style);
  options.addressing_style = "virtual";  // an explicit style still wins over the endpoint rule
  EXPECT_FALSE(Resolve(options, "my-bucket")->path_style);
}

TEST_F(AwsConfigTest, CaBundleFromOptionsThenEnvThenProfileAndMustExist) {
  SetEnvKeys();
  const std::string bundle = (tmp_.path() / "ca.pem").string();
  WriteText(bundle, "-----BEGIN CERTIFICATE-----\n");
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ca_bundle, "");
  WriteConfig("[default]\nca_bundle = " + bundle + "\n");
  s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ca_bundle, bundle);
  env_["AWS_CA_BUNDLE"] = (tmp_.path() / "missing.pem").string();
  const std::string message = ResolveError();
  EXPECT_TRUE(Contains(message, "AWS_CA_BUNDLE")) << message;
  EXPECT_TRUE(Contains(message, "missing.pem")) << message;
  StoreOptions options;
  options.ca_bundle = bundle;
  s = Resolve(options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ca_bundle, bundle);
}

}  // namespace
}  // namespace shardvec
