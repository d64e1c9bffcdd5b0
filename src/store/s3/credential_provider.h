// Credentials that may expire: a provider holds the current keys and fetches new ones shortly before
// they expire, one refresh at a time, so long-running readers and writers keep signing with valid keys.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

struct ExpiringCredentials {
  AwsCredentials keys;
  std::optional<std::chrono::system_clock::time_point> expiry;  // nullopt: the keys do not expire
};

using CredentialFetch = std::function<Result<ExpiringCredentials>()>;

class CredentialProvider {
 public:
  // Keys are refreshed when they have less than this left (botocore refreshes a few minutes ahead too).
  static constexpr std::chrono::seconds kRefreshAhead{5 * 60};
  // Below this, keys are too close to expiry to sign with: callers wait for the refresh instead.
  static constexpr std::chrono::seconds kMandatoryRefresh{30};

  // Fetches the first keys now (so resolution fails fast); `source` names the provider in messages.
  static Result<std::shared_ptr<CredentialProvider>> Start(std::string source, CredentialFetch fetch);
  // Fixed keys that never expire.
  static std::shared_ptr<CredentialProvider> Static(std::string source, AwsCredentials keys);

  // Keys valid for at least kMandatoryRefresh: the current ones, or fresh ones when they are due. While
  // one thread refreshes, others keep using keys that are still valid (or wait when they are not). A
  // failed refresh keeps the old keys while they last and is an error naming the provider after that.
  Result<AwsCredentials> Current();

  // The keys held now, without refreshing (what resolution found, for settings and tests).
  AwsCredentials Snapshot() const;
  const std::string& source() const { return source_; }
  // How many times the keys were fetched (the first fetch included); for tests and logs.
  int fetches() const;

 private:
  CredentialProvider(std::string source, CredentialFetch fetch, ExpiringCredentials first);

  const std::string source_;
  const CredentialFetch fetch_;
  mutable std::mutex mu_;  // guards current_ and fetches_
  ExpiringCredentials current_;
  int fetches_ = 1;
  std::mutex refresh_mu_;  // held by the one thread that refreshes
};

// Parses an expiry as AWS writes it ("2026-12-06T16:40:00Z", fractional seconds and "+00:00" or "UTC"
// suffixes accepted); errors name `what` and the value.
Result<std::chrono::system_clock::time_point> ParseCredentialExpiry(std::string_view text, std::string_view what);

// Field names of a JSON credentials document (they differ between credential_process, the ECS/EC2
// metadata services and the SSO portal).
struct CredentialJsonFields {
  const char* object = nullptr;  // the keys sit in this member object; null: at the top level
  const char* id;
  const char* secret;
  const char* token;
  const char* expiration;
  bool expiration_is_epoch_ms = false;  // the SSO portal gives milliseconds since 1970
};

// Reads keys from a JSON document; errors name `what` and the missing or bad field, never a value.
Result<ExpiringCredentials> CredentialsFromJson(std::string_view text, const CredentialJsonFields& fields,
                                                const std::string& what);

}  // namespace shardvec
