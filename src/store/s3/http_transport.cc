#include "store/s3/http_transport.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

#include "common/text_util.h"
#include "common/url_redact.h"

namespace shardvec {
namespace {

struct Exchange {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  int write_errno = 0;
  bool too_large = false;  // a 2xx body went past request->max_body_bytes
};

bool IsSuccess(long status) { return status >= 200 && status < 300; }

// Whether a 2xx body of `total` bytes (received so far, or declared by Content-Length) passes the bound.
bool PastBound(const Exchange& ex, int64_t total) { return total > ex.request->max_body_bytes; }

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(data, size * count);
  // A new status line (after a redirect or 100-continue) starts a fresh header set.
  if (line.rfind("HTTP/", 0) == 0) ex->response->headers.clear();
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = AsciiLower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    ex->response->headers[name] = std::string(value);
  }
  return size * count;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(ex->curl, CURLINFO_RESPONSE_CODE, &status);
  if (IsSuccess(status)) {
    curl_off_t declared = -1;
    curl_easy_getinfo(ex->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
    if (PastBound(*ex, std::max<int64_t>(declared, ex->response->body_bytes + static_cast<int64_t>(n)))) {
      ex->too_large = true;
      return 0;  // aborts the transfer before these bytes are stored
    }
  } else if (static_cast<int64_t>(ex->response->body.size()) >= kMaxErrorBodyBytes) {
    ex->response->body_bytes += static_cast<int64_t>(n);
    return n;  // the rest of an error body is read and dropped
  }
  // Only a successful body goes to the file; an error body is kept for its S3 error code.
  if (ex->request->response_fd >= 0 && IsSuccess(status)) {
    const char* p = data;
    size_t left = n;
    while (left > 0) {
      ssize_t w = pwrite(ex->request->response_fd, p, left,
                         ex->request->response_offset + ex->response->body_bytes + (n - left));
      if (w < 0) {
        if (errno == EINTR) continue;
        ex->write_errno = errno;
        return 0;  // aborts the transfer
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  } else {
    ex->response->body.append(data, IsSuccess(status) ? n : std::min<size_t>(n, kMaxErrorBodyBytes));
  }
  ex->response->body_bytes += static_cast<int64_t>(n);
  return n;
}

bool IsRetryable(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

// For messages: no query (it may hold upload ids) and never userinfo.
std::string UrlWithoutQuery(const std::string& url) { return RedactUrlUserinfo(url.substr(0, url.find('?'))); }

}  // namespace

CurlTransport::CurlTransport(TlsOptions tls) : tls_(std::move(tls)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlTransport::~CurlTransport() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* CurlTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      // reset clears options but keeps the live connection and DNS cache
      curl_easy_reset(static_cast<CURL*>(h));
      return h;
    }
  }
  return curl_easy_init();
}

void CurlTransport::Release(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(handle);
}

Result<HttpResponse> CurlTransport::Send(const HttpRequest& request) {
  CURL* curl = static_cast<CURL*>(Acquire());
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");

  HttpResponse response;
  Exchange ex{curl, &request, &response, 0};
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, fmt::format("{}: {}", name, value).c_str());
  }
  // curl would otherwise add "Expect: 100-continue" and wait on large bodies; and never a default type.
  headers = curl_slist_append(headers, "Expect:");
  if (std::none_of(request.headers.begin(), request.headers.end(),
                   [](const auto& h) { return h.first == "Content-Type"; })) {
    headers = curl_slist_append(headers, "Content-Type:");
  }

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!tls_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_bundle.c_str());
  if (!tls_.verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    // Never a null pointer: curl would then read the body from stdin.
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);

  if (code != CURLE_OK) {
    curl_easy_cleanup(curl);  // a failed connection is not worth keeping
    if (ex.too_large) {
      return Status::Corruption(fmt::format("{} {}: the response body is larger than the {} bytes expected",
                                            request.method, UrlWithoutQuery(request.url),
                                            request.max_body_bytes));
    }
    if (ex.write_errno != 0) {
      return Status::IOError(fmt::format("writing the body of {} {} to a local file: {}", request.method,
                                         UrlWithoutQuery(request.url), std::strerror(ex.write_errno)));
    }
    std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    std::string message = fmt::format("{} {}: {}", request.method, UrlWithoutQuery(request.url), detail);
    return IsRetryable(code) ? Status::Unavailable(message) : Status::IOError(message);
  }
  Release(curl);
  return response;
}

}  // namespace shardvec
