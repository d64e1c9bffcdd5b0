// Resolves how to reach an S3 bucket the way the AWS CLI (botocore) does: region, endpoint, addressing
// style and TLS from explicit StoreOptions, then AWS_* environment variables, then the profile in the
// shared config file; credentials from the standard chain (credential_chain.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "store/s3/credential_provider.h"

namespace shardvec {

struct S3Settings {
  AwsCredentials credentials;      // the keys found at resolution (credential_provider has the current ones)
  std::shared_ptr<CredentialProvider> credential_provider;  // never null after ResolveS3Settings
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
