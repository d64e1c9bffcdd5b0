#include "store/s3/metadata_credentials.h"

#include <fmt/format.h>

#include <string>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "store/s3/aws_profile.h"

namespace shardvec {

namespace {

constexpr double kContainerTimeoutSeconds = 2;
constexpr int kContainerAttempts = 3;
constexpr double kImdsTimeoutSeconds = 1;
constexpr int kImdsAttempts = 2;
constexpr int64_t kMaxMetadataAnswerBytes = int64_t{64} << 10;

const CredentialJsonFields kMetadataFields{nullptr, "AccessKeyId", "SecretAccessKey", "Token", "Expiration"};

// One exchange, retried on network failures only; a non-2xx answer is an error naming `what`.
Result<std::string> Fetch(HttpTransport& transport, HttpRequest request, int attempts, const std::string& what) {
  request.max_body_bytes = kMaxMetadataAnswerBytes;
  Status last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    Result<HttpResponse> response = transport.Send(request);
    if (!response.ok()) {
      last = response.status();
      if (last.code() != StatusCode::kUnavailable) break;
      continue;
    }
    if (response->status >= 200 && response->status < 300) return std::move(response->body);
    return Status::InvalidArgument(fmt::format("{}: {} {} answered HTTP {}", what, request.method, request.url,
                                               response->status));
  }
  return Status::Unavailable(fmt::format("{}: {}", what, last.message()));
}

// The host of "scheme://host[:port]/path" (brackets kept for IPv6).
std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  std::string authority = url.substr(start, url.find_first_of("/?#", start) - start);
  if (!authority.empty() && authority.front() == '[') return authority.substr(0, authority.find(']') + 1);
  return authority.substr(0, authority.find(':'));
}

// botocore's rule: a full URI must use https or name the container agent or the local machine, so a
// bad variable cannot send the authorization token anywhere else.
bool AllowedFullUri(const std::string& url) {
  if (AsciiLower(url).rfind("https://", 0) == 0) return true;
  if (AsciiLower(url).rfind("http://", 0) != 0) return false;
  const std::string host = AsciiLower(UrlHost(url));
  return host == "localhost" || host == "[::1]" || host == "169.254.170.2" || host == "169.254.170.23" ||
         host == "[fd00:ec2::23]" || host.rfind("127.", 0) == 0;
}

}  // namespace

bool ContainerCredentialsConfigured(const EnvLookup& env) {
  return EnvValue(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
         EnvValue(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

Result<ExpiringCredentials> FetchContainerCredentials(const EnvLookup& env, HttpTransport& transport) {
  HttpRequest request;
  request.method = "GET";
  request.connect_timeout_seconds = kContainerTimeoutSeconds;
  request.timeout_seconds = kContainerTimeoutSeconds;
  std::string what;
  if (auto relative = EnvValue(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    what = "ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)";
    if (relative->front() != '/') {
      return Status::InvalidArgument(fmt::format("{} '{}' must start with '/'", what, *relative));
    }
    request.url = "http://169.254.170.2" + *relative;
  } else {
    what = "ECS container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)";
    request.url = *EnvValue(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!AllowedFullUri(request.url)) {
      return Status::InvalidArgument(fmt::format(
          "{} '{}' must be https:// or an http:// URL on the container agent (169.254.170.2, 169.254.170.23) "
          "or a loopback address",
          what, request.url));
    }
    std::optional<std::string> token;
    if (auto file = EnvValue(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
      auto text = ReadWholeFile(*file, kMaxMetadataAnswerBytes);
      if (!text.ok()) {
        return text.status().WithContext(fmt::format("{}: reading AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", what));
      }
      token = TrimSpace(*text);
    } else {
      token = EnvValue(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (token) {
      if (token->find_first_of("\r\n") != std::string::npos) {
        return Status::InvalidArgument(fmt::format("{}: the authorization token contains a line break", what));
      }
      request.headers.emplace_back("Authorization", *token);
    }
  }
  request.headers.emplace_back("Accept", "application/json");
  ASSIGN_OR_RETURN(std::string body, Fetch(transport, request, kContainerAttempts, what));
  return CredentialsFromJson(body, kMetadataFields, what);
}

bool InstanceMetadataDisabled(const EnvLookup& env) {
  return AsciiLower(EnvValue(env, "AWS_EC2_METADATA_DISABLED").value_or("")) == "true";
}

Result<ExpiringCredentials> FetchInstanceCredentials(const EnvLookup& env, HttpTransport& transport) {
  const Candidate endpoint_setting{
      EnvValue(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254"),
      "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
  ASSIGN_OR_RETURN(const std::string endpoint, NormalizeEndpoint(endpoint_setting));
  const std::string what = fmt::format("EC2 instance metadata ({})", endpoint);
  HttpRequest request;
  request.connect_timeout_seconds = kImdsTimeoutSeconds;
  request.timeout_seconds = kImdsTimeoutSeconds;

  request.method = "PUT";
  request.url = endpoint + "/latest/api/token";
  request.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  ASSIGN_OR_RETURN(const std::string token, Fetch(transport, request, kImdsAttempts, what));

  request.method = "GET";
  request.headers = {{"X-aws-ec2-metadata-token", TrimSpace(token)}};
  request.url = endpoint + "/latest/meta-data/iam/security-credentials/";
  ASSIGN_OR_RETURN(const std::string roles, Fetch(transport, request, kImdsAttempts, what));
  const std::string role = TrimSpace(roles.substr(0, roles.find('\n')));
  if (role.empty() || role.find_first_of("/?#% ") != std::string::npos) {
    return Status::InvalidArgument(fmt::format("{}: the instance has no usable IAM role (got '{}')", what, role));
  }
  request.url += role;
  ASSIGN_OR_RETURN(const std::string body, Fetch(transport, request, kImdsAttempts, what));
  return CredentialsFromJson(body, kMetadataFields, fmt::format("{} role '{}'", what, role));
}

}  // namespace shardvec
