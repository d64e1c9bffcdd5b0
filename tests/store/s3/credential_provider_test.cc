// CredentialProvider: temporary keys are fetched again shortly before they expire, by one thread at a
// time, and a failed refresh keeps still-valid keys; plus the JSON and time parsing every provider uses.
#include "store/s3/credential_provider.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace shardvec {
namespace {

using Clock = std::chrono::system_clock;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fetch that hands out "AKIA<n>" keys expiring `lifetime` after each fetch.
struct CountingFetch {
  std::chrono::seconds lifetime;
  std::shared_ptr<std::atomic<int>> count = std::make_shared<std::atomic<int>>(0);
  Result<ExpiringCredentials> operator()() const {
    const int n = ++*count;
    return ExpiringCredentials{{"AKIA" + std::to_string(n), "sEcReT", "token"}, Clock::now() + lifetime};
  }
};

TEST(CredentialProviderTest, KeysExpiringWithinMinutesAreFetchedAgainOnTheNextRequest) {
  CountingFetch fetch{std::chrono::seconds(10)};
  auto provider = CredentialProvider::Start("test provider", fetch);
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  EXPECT_EQ((*provider)->fetches(), 1);
  auto second = (*provider)->Current();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->access_key_id, "AKIA2");
  EXPECT_EQ((*provider)->fetches(), 2);
  EXPECT_EQ((*provider)->Current()->access_key_id, "AKIA3");
}

TEST(CredentialProviderTest, KeysFarFromExpiryAndStaticKeysAreReused) {
  CountingFetch fetch{std::chrono::hours(1)};
  auto provider = CredentialProvider::Start("test provider", fetch);
  ASSERT_TRUE(provider.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*provider)->Current()->access_key_id, "AKIA1");
  EXPECT_EQ(*fetch.count, 1);

  auto fixed = CredentialProvider::Static("fixed", {"AKIAFIXED", "sEcReT", ""});
  EXPECT_EQ(fixed->Current()->access_key_id, "AKIAFIXED");
  EXPECT_EQ(fixed->source(), "fixed");
}

TEST(CredentialProviderTest, OneRefreshAtATimeWhileOthersUseStillValidKeys) {
  std::atomic<int> running{0}, most{0}, count{0};
  // Keys inside the refresh window but far from unusable: every call wants a refresh.
  CredentialFetch fetch = [&]() -> Result<ExpiringCredentials> {
    const int now_running = ++running;
    int seen = most.load();
    while (now_running > seen && !most.compare_exchange_weak(seen, now_running)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --running;
    return ExpiringCredentials{{"AKIA" + std::to_string(++count), "sEcReT", ""}, Clock::now() + std::chrono::minutes(2)};
  };
  auto provider = CredentialProvider::Start("test provider", fetch);
  ASSERT_TRUE(provider.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto keys = (*provider)->Current();
        if (!keys.ok() || keys->access_key_id.rfind("AKIA", 0) != 0) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(most, 1) << "two refreshes ran at once";
  EXPECT_GT(count, 1);
}

TEST(CredentialProviderTest, FailedRefreshKeepsValidKeysAndNamesTheProviderOnceTheyExpire) {
  int calls = 0;
  Clock::duration lifetime = std::chrono::minutes(2);
  CredentialFetch fetch = [&]() -> Result<ExpiringCredentials> {
    if (++calls > 1) return Status::Unavailable("metadata service down");
    return ExpiringCredentials{{"AKIAOLD", "sEcReT", ""}, Clock::now() + lifetime};
  };
  auto still_valid = CredentialProvider::Start("EC2 instance metadata", fetch);
  ASSERT_TRUE(still_valid.ok());
  auto keys = (*still_valid)->Current();
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->access_key_id, "AKIAOLD");
  EXPECT_EQ(calls, 2);

  calls = 0;
  lifetime = std::chrono::seconds(-1);  // already expired
  auto expired = CredentialProvider::Start("EC2 instance metadata", fetch);
  ASSERT_TRUE(expired.ok());
  auto failed = (*expired)->Current();
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(Contains(failed.status().message(), "refreshing AWS credentials from EC2 instance metadata"))
      << failed.status().message();
  EXPECT_TRUE(Contains(failed.status().message(), "metadata service down")) << failed.status().message();
}

TEST(CredentialProviderTest, ParsesAwsExpiryFormatsAndNamesABadOne) {
  auto z = ParseCredentialExpiry("2030-01-02T03:04:05Z", "Expiration");
  auto frac = ParseCredentialExpiry("2030-01-02T03:04:05.250+00:00", "Expiration");
  auto utc = ParseCredentialExpiry("2030-01-02T03:04:05UTC", "expiresAt");
  ASSERT_TRUE(z.ok() && frac.ok() && utc.ok());
  EXPECT_EQ(*z, *utc);
  EXPECT_EQ(*frac - *z, std::chrono::milliseconds(250));
  auto bad = ParseCredentialExpiry("tomorrow", "profile 'x': Expiration");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), "profile 'x': Expiration 'tomorrow'")) << bad.status().message();
}

TEST(CredentialProviderTest, JsonCredentialsNameTheMissingFieldNeverASecret) {
  const CredentialJsonFields fields{nullptr, "AccessKeyId", "SecretAccessKey", "Token", "Expiration"};
  auto ok = CredentialsFromJson(
      R"({"AccessKeyId":"AKIA1","SecretAccessKey":"sEcReT","Token":"tok","Expiration":"2030-01-02T03:04:05Z"})",
      fields, "ECS container credentials");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->keys.session_token, "tok");
  EXPECT_TRUE(ok->expiry.has_value());

  auto missing = CredentialsFromJson(R"({"AccessKeyId":"AKIA1","Token":"sEcReT"})", fields, "ECS container credentials");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "ECS container credentials: the answer has no string 'SecretAccessKey'");
  auto not_json = CredentialsFromJson("sEcReT{", fields, "ECS container credentials");
  ASSERT_FALSE(not_json.ok());
  EXPECT_FALSE(Contains(not_json.status().message(), "sEcReT"));

  const CredentialJsonFields sso{"roleCredentials", "accessKeyId", "secretAccessKey", "sessionToken", "expiration",
                                 true};
  auto portal = CredentialsFromJson(
      R"({"roleCredentials":{"accessKeyId":"AKIA2","secretAccessKey":"sEcReT","sessionToken":"t","expiration":1893456000000}})",
      sso, "SSO");
  ASSERT_TRUE(portal.ok()) << portal.status().ToString();
  EXPECT_EQ(*portal->expiry, Clock::time_point(std::chrono::seconds(1893456000)));
}

}  // namespace
}  // namespace shardvec
