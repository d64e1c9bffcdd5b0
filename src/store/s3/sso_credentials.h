// AWS IAM Identity Center (SSO) profiles: the access token `aws sso login` left in the token cache
// (~/.aws/sso/cache/<sha1>.json) is exchanged for role keys at the SSO portal (GetRoleCredentials).
#pragma once

#include <optional>
#include <string>

#include "shardvec/status.h"
#include "store/s3/aws_config.h"
#include "store/s3/credential_provider.h"
#include "store/s3/http_transport.h"

namespace shardvec {

struct SsoProfile {
  std::string profile;       // for messages and the "aws sso login --profile" hint
  std::string session_name;  // sso_session; empty for a legacy profile with sso_start_url in it
  std::string start_url;
  std::string region;        // sso_region
  std::string account_id;    // sso_account_id
  std::string role_name;     // sso_role_name
};

// The token cache file: <home>/.aws/sso/cache/<sha1 of the session name, or of the start URL>.json.
std::string SsoTokenCachePath(const SsoProfile& sso, const std::string& home);

// Reads the cached token (an expired or missing one says to run `aws sso login`) and calls the portal
// at AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL or https://portal.sso.<sso_region>.amazonaws.com.
Result<ExpiringCredentials> FetchSsoCredentials(const SsoProfile& sso, const EnvLookup& env,
                                                const std::optional<std::string>& home, HttpTransport& transport);

}  // namespace shardvec
