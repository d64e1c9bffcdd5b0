// The few S3 XML documents we read and write (pugixml). Parsers fail with Corruption (kind
// kStoreResponse) naming the document, never crash on a hostile body.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardvec/status.h"

namespace shardvec {

// A Corruption of kind kStoreResponse: S3 answered with something that does not parse.
Status S3BadResponse(std::string message);

struct S3ErrorBody {
  std::string code;     // e.g. "NoSuchKey", "SlowDown"; empty when the body is not an S3 error
  std::string message;
};
// Reads <Error><Code/><Message/></Error> (also inside STS's <ErrorResponse>); an empty or foreign
// body gives empty fields.
S3ErrorBody ParseS3Error(std::string_view body);

struct S3ListPage {
  struct Entry {
    std::string key;
    int64_t size = 0;
    std::string etag;
  };
  std::vector<Entry> contents;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;
};
Result<S3ListPage> ParseListObjectsV2(std::string_view body);

Result<std::string> ParseInitiateMultipartUpload(std::string_view body);  // the UploadId
// <CompleteMultipartUpload> for parts 1..N with their ETags.
std::string CompleteMultipartUploadXml(const std::vector<std::string>& part_etags);

// <Delete><Quiet>true</Quiet>… for up to 1000 keys; the result lists only the failures.
std::string DeleteObjectsXml(const std::vector<std::string>& keys);
struct S3DeleteFailure {
  std::string key, code, message;
};
Result<std::vector<S3DeleteFailure>> ParseDeleteResult(std::string_view body);

}  // namespace shardvec
