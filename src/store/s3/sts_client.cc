#include "store/s3/sts_client.h"

#include <fmt/format.h>
#include <pugixml.hpp>

#include <utility>

#include "common/status_macros.h"
#include "store/s3/s3_xml.h"
#include "store/s3/sigv4.h"

namespace shardvec {

namespace {

constexpr double kStsTimeoutSeconds = 30;

pugi::xml_node FindDescendant(pugi::xml_node node, const char* name) {
  return node.find_node([name](pugi::xml_node n) { return std::string_view(n.name()) == name; });
}

Result<ExpiringCredentials> ParseStsCredentials(const std::string& body, const std::string& what,
                                                const std::string& action) {
  pugi::xml_document doc;
  pugi::xml_node credentials;
  if (doc.load_buffer(body.data(), body.size())) credentials = FindDescendant(doc, "Credentials");
  ExpiringCredentials out;
  if (credentials) {
    out.keys = {credentials.child_value("AccessKeyId"), credentials.child_value("SecretAccessKey"),
                credentials.child_value("SessionToken")};
  }
  if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: STS {} answered without credentials (no Credentials/AccessKeyId)", what, action));
  }
  ASSIGN_OR_RETURN(out.expiry, ParseCredentialExpiry(credentials.child_value("Expiration"),
                                                      fmt::format("{}: STS {} Expiration", what, action)));
  return out;
}

Result<ExpiringCredentials> CallSts(const StsTarget& target, const HeaderList& fields, const AwsCredentials* signer,
                                    const std::string& what) {
  const std::string& action = fields.front().second;
  const std::string body = CanonicalQueryString(fields);  // form encoding, as the query API takes it
  const std::string host = target.endpoint_url.substr(target.endpoint_url.find("://") + 3);
  HttpRequest request;
  request.method = "POST";
  request.url = target.endpoint_url + "/";
  request.body = body;
  request.timeout_seconds = kStsTimeoutSeconds;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  if (signer != nullptr) {
    SignableRequest signable{"POST", host, "/", {}, request.headers, Sha256Hex(body)};
    const SigningKey key{signer->access_key_id, signer->secret_access_key, signer->session_token};
    for (auto& header : SignV4(signable, key, target.region, "sts", AmzDateNow())) {
      request.headers.push_back(std::move(header));
    }
  }
  request.headers.emplace_back("Host", host);
  Result<HttpResponse> response = target.transport->Send(request);
  if (!response.ok()) {
    return response.status().WithContext(fmt::format("{}: STS {} at {}", what, action, target.endpoint_url));
  }
  if (response->status < 200 || response->status >= 300) {
    const S3ErrorBody error = ParseS3Error(response->body);
    const std::string detail = error.code.empty() ? fmt::format("HTTP {}", response->status)
                                                  : fmt::format("HTTP {} {}: {}", response->status, error.code,
                                                                error.message);
    const std::string message = fmt::format("{}: STS {} at {} failed: {}", what, action, target.endpoint_url, detail);
    if (response->status == 403 || error.code == "AccessDenied") return Status::PermissionDenied(message);
    if (response->status >= 500) return Status::Unavailable(message);
    return Status::InvalidArgument(message);
  }
  return ParseStsCredentials(response->body, what, action);
}

HeaderList RoleFields(const char* action, const AssumeRoleRequest& request) {
  HeaderList fields = {{"Action", action},
                       {"Version", "2011-06-15"},
                       {"RoleArn", request.role_arn},
                       {"RoleSessionName", request.session_name}};
  if (!request.external_id.empty()) fields.emplace_back("ExternalId", request.external_id);
  if (request.duration_seconds > 0) fields.emplace_back("DurationSeconds", std::to_string(request.duration_seconds));
  return fields;
}

}  // namespace

Result<StsTarget> ResolveStsTarget(const EnvLookup& env, const IniSection* config_profile,
                                   const std::string& profile_description, std::string region,
                                   std::shared_ptr<HttpTransport> transport) {
  const auto in_profile = [&](std::string_view key) { return fmt::format("{} in {}", key, profile_description); };
  const auto endpoint = FirstSet({
      {EnvValue(env, "AWS_ENDPOINT_URL_STS"), "AWS_ENDPOINT_URL_STS"},
      {EnvValue(env, "AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"},
      {SectionValue(config_profile, "sts.endpoint_url"), in_profile("sts.endpoint_url")},
      {SectionValue(config_profile, "endpoint_url"), in_profile("endpoint_url")},
  });
  StsTarget target;
  if (endpoint) {
    ASSIGN_OR_RETURN(target.endpoint_url, NormalizeEndpoint(*endpoint));
  } else {
    target.endpoint_url = fmt::format("https://sts.{}.amazonaws.com", region);
  }
  target.region = std::move(region);
  target.transport = std::move(transport);
  return target;
}

Result<ExpiringCredentials> StsAssumeRole(const StsTarget& target, const AwsCredentials& source,
                                          const AssumeRoleRequest& request, const std::string& what) {
  return CallSts(target, RoleFields("AssumeRole", request), &source, what);
}

Result<ExpiringCredentials> StsAssumeRoleWithWebIdentity(const StsTarget& target, const AssumeRoleRequest& request,
                                                         const std::string& token, const std::string& what) {
  HeaderList fields = RoleFields("AssumeRoleWithWebIdentity", request);
  fields.emplace_back("WebIdentityToken", token);
  return CallSts(target, fields, nullptr, what);
}

}  // namespace shardvec
