// Credentials from the metadata services of the machine the process runs on: the ECS/EKS container
// credentials endpoint and EC2 instance metadata (IMDSv2). Both are found through the standard
// environment variables, which also let tests point them at a local server.
#pragma once

#include "shardvec/status.h"
#include "store/s3/aws_config.h"
#include "store/s3/credential_provider.h"
#include "store/s3/http_transport.h"

namespace shardvec {

// Whether the container provider applies (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set).
bool ContainerCredentialsConfigured(const EnvLookup& env);
// GET from http://169.254.170.2<RELATIVE_URI> or from FULL_URI (https, or a loopback/ECS/EKS address),
// with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read on every fetch) or _TOKEN as Authorization.
Result<ExpiringCredentials> FetchContainerCredentials(const EnvLookup& env, HttpTransport& transport);

// Whether AWS_EC2_METADATA_DISABLED turns instance metadata off.
bool InstanceMetadataDisabled(const EnvLookup& env);
// IMDSv2: PUT a session token, GET the role name, GET its keys; AWS_EC2_METADATA_SERVICE_ENDPOINT
// overrides http://169.254.169.254. Short timeouts and few attempts, so a machine without IMDS fails
// within seconds with Unavailable.
Result<ExpiringCredentials> FetchInstanceCredentials(const EnvLookup& env, HttpTransport& transport);

}  // namespace shardvec
