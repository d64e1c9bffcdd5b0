// Resolves how to reach an S3 bucket the way the AWS CLI (botocore) does: explicit StoreOptions, then
// AWS_* environment variables, then the profile in the shared credentials and config files. Only static
// keys are supported; role, SSO and credential_process profiles are reported as unsupported.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "shardvec/object_store.h"
#include "shardvec/status.h"

namespace shardvec {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

struct S3Settings {
  AwsCredentials credentials;
  std::string region;              // never empty; default "us-east-1"
  std::string endpoint_url;        // "scheme://host[:port]", no trailing slash; empty = AWS's own endpoint
  bool path_style = false;         // resolved addressing style
  std::string credentials_source;  // where the keys came from, for messages; never contains a secret
  std::string ca_bundle;           // PEM file to verify TLS with; empty = the system store
};

// Looks up an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// Resolves credentials, region, endpoint and addressing style for `bucket`.
Result<S3Settings> ResolveS3Settings(const StoreOptions& options, std::string_view bucket,
                                     const EnvLookup& env = ProcessEnv);

// Parses AWS shared config/credentials INI text into section -> key -> value. Keys are lower-cased;
// a botocore nested block ("s3 =" followed by indented lines) becomes keys like "s3.addressing_style".
using IniSections = std::map<std::string, std::map<std::string, std::string>>;
Result<IniSections> ParseAwsIni(std::string_view text, std::string_view file_name_for_errors);

}  // namespace shardvec
