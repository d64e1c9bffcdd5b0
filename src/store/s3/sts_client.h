// The two AWS STS calls the credential chain needs (AssumeRole, signed with SigV4, and the unsigned
// AssumeRoleWithWebIdentity), over the query API with the answer parsed from XML.
#pragma once

#include <memory>
#include <string>

#include "shardvec/status.h"
#include "store/s3/aws_profile.h"
#include "store/s3/credential_provider.h"
#include "store/s3/http_transport.h"

namespace shardvec {

struct StsTarget {
  std::string endpoint_url;  // "scheme://host[:port]"
  std::string region;        // signs AssumeRole
  std::shared_ptr<HttpTransport> transport;
};

// The STS endpoint the way botocore finds it: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's
// sts.endpoint_url or endpoint_url, else https://sts.<region>.amazonaws.com.
Result<StsTarget> ResolveStsTarget(const EnvLookup& env, const IniSection* config_profile,
                                   const std::string& profile_description, std::string region,
                                   std::shared_ptr<HttpTransport> transport);

struct AssumeRoleRequest {
  std::string role_arn;
  std::string session_name;
  std::string external_id;  // optional
  int duration_seconds = 0; // 0: STS's default (1 hour)
};

// `what` names the provider and setting in errors (e.g. "profile 'dev' (role_arn)").
Result<ExpiringCredentials> StsAssumeRole(const StsTarget& target, const AwsCredentials& source,
                                          const AssumeRoleRequest& request, const std::string& what);
Result<ExpiringCredentials> StsAssumeRoleWithWebIdentity(const StsTarget& target, const AssumeRoleRequest& request,
                                                         const std::string& token, const std::string& what);

}  // namespace shardvec
