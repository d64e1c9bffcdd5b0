// One HTTP exchange over libcurl, with connection reuse. No retries and no signing here: S3Client
// does both, so tests can put a fault-injecting transport underneath it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/limits.h"
#include "shardvec/status.h"
#include "store/s3/sigv4.h"

namespace shardvec {

struct HttpRequest {
  std::string method;
  std::string url;
  HeaderList headers;
  std::string_view body;          // sent as is (must outlive Send)
  int response_fd = -1;           // when >= 0, a 2xx body is written to this file at response_offset
  int64_t response_offset = 0;
  // A 2xx body longer than this (declared by Content-Length or received) ends the exchange with a
  // Corruption error before more is stored: a hostile server cannot fill the memory or the disk.
  int64_t max_body_bytes = kMaxMetadataObjectBytes;
  double connect_timeout_seconds = 10;
  double timeout_seconds = 300;
};

// Of an error (non-2xx) body only this much is kept: enough for S3's XML error, never a flood.
inline constexpr int64_t kMaxErrorBodyBytes = int64_t{64} << 10;

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // the body unless it went to response_fd
  int64_t body_bytes = 0;                      // bytes received, wherever they went

  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // A completed exchange (any status), or Unavailable for a network failure worth retrying
  // (timeout, refused or reset connection), or IOError for one that is not (bad URL, TLS failure).
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

struct TlsOptions {
  bool verify = true;
  std::string ca_bundle;  // PEM file; empty = the system store
};

// libcurl easy handles kept in a pool: a handle keeps its connection alive between requests.
class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(TlsOptions tls = {});
  ~CurlTransport() override;
  Result<HttpResponse> Send(const HttpRequest& request) override;

 private:
  void* Acquire();
  void Release(void* handle);

  TlsOptions tls_;
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace shardvec
