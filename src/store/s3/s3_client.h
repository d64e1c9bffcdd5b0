// One S3 request, signed (SigV4) and retried by policy, with S3 errors turned into Status values
// that name the object and the S3 error code. S3Store builds its operations on top.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "store/s3/aws_config.h"
#include "store/s3/http_transport.h"
#include "store/s3/retry_policy.h"

namespace shardvec {

struct S3Call {
  std::string method;
  std::string object_key;  // the key inside the bucket; empty for bucket-level calls
  HeaderList query;        // raw name/value pairs
  HeaderList headers;      // signed with the request (Range, If-Match, Content-MD5, …)
  std::string_view body;
  int response_fd = -1;    // a 2xx body goes to this file at response_offset
  int64_t response_offset = 0;
  int64_t max_body_bytes = kMaxMetadataObjectBytes;  // a longer 2xx body is a Corruption error
};

class S3Client {
 public:
  S3Client(S3Settings settings, std::string bucket, const StoreOptions& options,
           std::shared_ptr<HttpTransport> transport);

  // The 2xx response, or an error: NotFound (404), PermissionDenied (403), Conflict (412),
  // InvalidArgument (other 4xx, and a missing bucket), Unavailable/IOError after the last retry.
  Result<HttpResponse> Execute(const S3Call& call) const;

  const std::string& bucket() const { return bucket_; }
  // "s3://bucket/key", for messages.
  std::string Describe(std::string_view object_key) const;
  // The URL a call goes to (tests check path and virtual-hosted addressing).
  std::string UrlFor(const S3Call& call) const;

 private:
  struct Target {
    std::string url;
    std::string host;
    std::string encoded_path;
  };
  Target TargetFor(const S3Call& call) const;
  Status ErrorFor(const S3Call& call, const HttpResponse& response) const;

  S3Settings settings_;
  std::string bucket_;
  std::string scheme_;     // http or https
  std::string authority_;  // host[:port] of the endpoint (without the bucket)
  RetryPolicy retry_;
  double connect_timeout_seconds_;
  double request_timeout_seconds_;
  std::shared_ptr<HttpTransport> transport_;
};

}  // namespace shardvec
