#include "store/s3/sso_credentials.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "store/s3/aws_profile.h"
#include "store/s3/sigv4.h"

namespace shardvec {

namespace {

constexpr int64_t kMaxTokenFileBytes = int64_t{1} << 20;
constexpr double kPortalTimeoutSeconds = 30;

const CredentialJsonFields kPortalFields{"roleCredentials", "accessKeyId", "secretAccessKey", "sessionToken",
                                         "expiration", /*expiration_is_epoch_ms=*/true};

std::string LoginHint(const SsoProfile& sso) { return fmt::format("run aws sso login --profile {}", sso.profile); }

}  // namespace

std::string SsoTokenCachePath(const SsoProfile& sso, const std::string& home) {
  const std::string& key = sso.session_name.empty() ? sso.start_url : sso.session_name;
  return fmt::format("{}/.aws/sso/cache/{}.json", home, Sha1Hex(key));
}

Result<ExpiringCredentials> FetchSsoCredentials(const SsoProfile& sso, const EnvLookup& env,
                                                const std::optional<std::string>& home, HttpTransport& transport) {
  const std::string what = fmt::format("SSO profile '{}'", sso.profile);
  if (!home) return Status::InvalidArgument(fmt::format("{}: HOME is not set, so the SSO token cache cannot be found", what));
  const std::string path = SsoTokenCachePath(sso, *home);
  auto text = ReadWholeFile(path, kMaxTokenFileBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::InvalidArgument(fmt::format("{}: no SSO token in {}; {}", what, path, LoginHint(sso)));
    }
    return text.status().WithContext(what);
  }
  const nlohmann::json token = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  const auto text_field = [&](const char* name) -> std::string {
    if (!token.is_object()) return "";
    auto it = token.find(name);
    return it != token.end() && it->is_string() ? it->get<std::string>() : "";
  };
  const std::string access_token = text_field("accessToken");
  const std::string expires_at = text_field("expiresAt");
  if (access_token.empty() || expires_at.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: the SSO token cache {} has no accessToken/expiresAt; {}", what, path, LoginHint(sso)));
  }
  ASSIGN_OR_RETURN(auto expiry, ParseCredentialExpiry(expires_at, fmt::format("{}: expiresAt in {}", what, path)));
  if (expiry <= std::chrono::system_clock::now()) {
    return Status::PermissionDenied(
        fmt::format("{}: the SSO token in {} expired at {}; {}", what, path, expires_at, LoginHint(sso)));
  }

  const auto endpoint = FirstSet({
      {EnvValue(env, "AWS_ENDPOINT_URL_SSO"), "AWS_ENDPOINT_URL_SSO"},
      {EnvValue(env, "AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"},
      {fmt::format("https://portal.sso.{}.amazonaws.com", sso.region), "sso_region"},
  });
  ASSIGN_OR_RETURN(const std::string portal, NormalizeEndpoint(*endpoint));
  HttpRequest request;
  request.method = "GET";
  request.url = fmt::format("{}/federation/credentials?{}", portal,
                            CanonicalQueryString({{"account_id", sso.account_id}, {"role_name", sso.role_name}}));
  request.headers = {{"x-amz-sso_bearer_token", access_token}, {"Accept", "application/json"}};
  request.timeout_seconds = kPortalTimeoutSeconds;
  const std::string call = fmt::format("{}: SSO GetRoleCredentials at {} (account {}, role {})", what, portal,
                                       sso.account_id, sso.role_name);
  Result<HttpResponse> sent = transport.Send(request);
  if (!sent.ok()) return sent.status().WithContext(call);
  const HttpResponse& response = *sent;
  if (response.status == 401 || response.status == 403) {
    return Status::PermissionDenied(
        fmt::format("{} refused the SSO token (HTTP {}); {}", call, response.status, LoginHint(sso)));
  }
  if (response.status < 200 || response.status >= 300) {
    return Status::InvalidArgument(fmt::format("{} failed: HTTP {}", call, response.status));
  }
  return CredentialsFromJson(response.body, kPortalFields, call);
}

}  // namespace shardvec
