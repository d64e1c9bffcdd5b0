// The standard AWS credential chain, in botocore's order:
//   1. explicit StoreOptions keys;  2. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (not with an explicit profile);
//   3. the profile's role_arn with source_profile or credential_source (STS AssumeRole);
//   4. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the profile's web_identity_token_file
//      + role_arn (STS AssumeRoleWithWebIdentity);
//   5. the profile's SSO settings (sso_session or sso_start_url; the `aws sso login` token cache);
//   6. static keys in the credentials file;  7. credential_process;  8. static keys in the config file;
//   9. ECS/EKS container credentials;  10. EC2 instance metadata (IMDSv2).
// Temporary keys are refreshed before they expire (CredentialProvider).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "store/s3/aws_config.h"
#include "store/s3/aws_profile.h"
#include "store/s3/credential_provider.h"
#include "store/s3/http_transport.h"

namespace shardvec {

struct CredentialChainInput {
  const StoreOptions* options = nullptr;
  const EnvLookup* env = nullptr;
  std::string profile;           // the profile in use ("default" unless chosen)
  bool explicit_profile = false; // StoreOptions.profile was given: environment keys are skipped
  const IniFile* credentials_file = nullptr;
  const IniFile* config_file = nullptr;
  std::optional<std::string> home;
  std::string region;            // for STS
  std::string bucket;            // for messages
  std::shared_ptr<HttpTransport> transport;  // for STS, SSO and the metadata services
};

// The first provider in the chain that has keys, with its first keys already fetched; errors name the
// provider and the setting (a configured provider that fails is an error, not a fall-through).
Result<std::shared_ptr<CredentialProvider>> ResolveCredentialChain(const CredentialChainInput& input);

}  // namespace shardvec
