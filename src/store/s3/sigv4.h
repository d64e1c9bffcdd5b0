// AWS Signature Version 4 for S3 requests: canonical request, string to sign, HMAC chain (OpenSSL).
// Kept separate from HTTP so it can be checked against AWS's published examples.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardvec {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SigningKey {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
};

struct SignableRequest {
  std::string method;
  std::string host;           // as sent in the Host header (host, or host:port for non-default ports)
  std::string encoded_path;   // already URI-encoded, starts with '/'
  HeaderList query;           // raw (not encoded) name/value pairs; order does not matter
  HeaderList headers;         // every header to sign besides host and the x-amz-* the signer adds
  std::string payload_sha256; // lowercase hex, or "UNSIGNED-PAYLOAD"
};

// The headers to send in addition to the request's own: x-amz-date, x-amz-content-sha256,
// x-amz-security-token (with a session token) and Authorization. `amz_date` is "YYYYMMDDTHHMMSSZ".
HeaderList SignV4(const SignableRequest& request, const SigningKey& key, std::string_view region,
                  std::string_view service, std::string_view amz_date);

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX (uppercase);
// '/' is kept when `keep_slash` (object key paths).
std::string UriEncode(std::string_view text, bool keep_slash);
// "a=1&b=2" with names and values encoded and sorted, as in the canonical request and the URL.
std::string CanonicalQueryString(const HeaderList& query);

std::string Sha256Hex(std::string_view data);
// SHA-1 in lowercase hex: the AWS CLI names its SSO token cache files with it.
std::string Sha1Hex(std::string_view data);
std::string Md5Base64(std::string_view data);
// The current UTC time as "YYYYMMDDTHHMMSSZ".
std::string AmzDateNow();

}  // namespace shardvec
