#include "store/s3/s3_client.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "common/log.h"
#include "store/s3/s3_xml.h"

namespace shardvec {
namespace {

// What an error answer says when it has no body (HEAD) or a foreign one.
std::string CodeForStatus(long status, const std::string& body_code) {
  if (!body_code.empty()) return body_code;
  switch (status) {
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 412: return "PreconditionFailed";
    case 429: return "TooManyRequests";
    case 503: return "ServiceUnavailable";
    default: return fmt::format("HTTP {}", status);
  }
}

}  // namespace

S3Client::S3Client(S3Settings settings, std::string bucket, const StoreOptions& options,
                   std::shared_ptr<HttpTransport> transport)
    : settings_(std::move(settings)),
      bucket_(std::move(bucket)),
      connect_timeout_seconds_(options.connect_timeout_seconds),
      request_timeout_seconds_(options.request_timeout_seconds),
      transport_(std::move(transport)) {
  retry_.max_attempts = std::max(1, options.max_attempts);
  retry_.max_total_seconds = options.max_retry_seconds;
  std::string endpoint = settings_.endpoint_url.empty()
                             ? fmt::format("https://s3.{}.amazonaws.com", settings_.region)
                             : settings_.endpoint_url;
  size_t sep = endpoint.find("://");
  scheme_ = endpoint.substr(0, sep);
  authority_ = endpoint.substr(sep + 3);
  authority_ = authority_.substr(0, authority_.find('/'));  // endpoints carry no path of their own
}

std::string S3Client::Describe(std::string_view object_key) const {
  return object_key.empty() ? fmt::format("s3://{}", bucket_) : fmt::format("s3://{}/{}", bucket_, object_key);
}

S3Client::Target S3Client::TargetFor(const S3Call& call) const {
  Target t;
  std::string key_path = "/" + UriEncode(call.object_key, /*keep_slash=*/true);
  if (settings_.path_style) {
    t.host = authority_;
    t.encoded_path = "/" + bucket_ + (call.object_key.empty() ? "" : key_path);
  } else {
    t.host = bucket_ + "." + authority_;
    t.encoded_path = key_path;
  }
  std::string query = CanonicalQueryString(call.query);
  t.url = scheme_ + "://" + t.host + t.encoded_path + (query.empty() ? "" : "?" + query);
  return t;
}

std::string S3Client::UrlFor(const S3Call& call) const { return TargetFor(call).url; }

Status S3Client::ErrorFor(const S3Call& call, const HttpResponse& response) const {
  S3ErrorBody error = ParseS3Error(response.body);
  std::string code = CodeForStatus(response.status, error.code);
  std::string what = fmt::format("S3 {} {}", call.method, Describe(call.object_key));
  std::string detail = error.message.empty() ? code : fmt::format("{} ({})", code, error.message);
  // A missing bucket is a bad store prefix, not a missing object: callers treat NotFound as "absent".
  if (code == "NoSuchBucket") {
    return Status::InvalidArgument(fmt::format("{}: bucket '{}' does not exist (NoSuchBucket)", what, bucket_));
  }
  switch (response.status) {
    case 403:
      return Status::PermissionDenied(fmt::format(
          "{}: access denied: {}; check the credentials from {}", what, detail, settings_.credentials_source));
    case 404:
      return Status::NotFound(fmt::format("{}: not found ({})", what, code));
    case 412:
      return Status::Conflict(fmt::format("{}: precondition failed ({})", what, code));
    default:
      break;
  }
  std::string message = fmt::format("{}: HTTP {} {}", what, response.status, detail);
  if (IsRetryableS3Status(response.status, code)) return Status::Unavailable(message);
  if (response.status >= 400 && response.status < 500) return Status::InvalidArgument(message);
  return Status::IOError(message);
}

Result<HttpResponse> S3Client::Execute(const S3Call& call) const {
  const Target target = TargetFor(call);
  const std::string payload_hash = Sha256Hex(call.body);
  const auto start = std::chrono::steady_clock::now();

  for (int attempt = 1;; ++attempt) {
    HttpRequest request;
    request.method = call.method;
    request.url = target.url;
    request.body = call.body;
    request.response_fd = call.response_fd;
    request.response_offset = call.response_offset;
    request.max_body_bytes = call.max_body_bytes;
    request.connect_timeout_seconds = connect_timeout_seconds_;
    request.timeout_seconds = request_timeout_seconds_;
    request.headers = call.headers;
    request.headers.emplace_back("Host", target.host);
    // Signed afresh on every attempt (a signature is only valid for a few minutes), with the current keys:
    // temporary ones are refreshed shortly before they expire.
    Result<AwsCredentials> keys = settings_.credential_provider
                                      ? settings_.credential_provider->Current()
                                      : Result<AwsCredentials>(settings_.credentials);
    if (!keys.ok()) return keys.status().WithContext(fmt::format("S3 {} {}", call.method, Describe(call.object_key)));
    const SigningKey key{keys->access_key_id, keys->secret_access_key, keys->session_token};
    SignableRequest signable{call.method, target.host, target.encoded_path, call.query, call.headers,
                             payload_hash};
    for (auto& header : SignV4(signable, key, settings_.region, "s3", AmzDateNow())) {
      request.headers.push_back(std::move(header));
    }

    Result<HttpResponse> response = transport_->Send(request);
    Status failure;
    if (response.ok()) {
      if (response->status >= 200 && response->status < 300) return response;
      failure = ErrorFor(call, *response);
    } else {
      failure = response.status().WithContext(
          fmt::format("S3 {} {}{}", call.method, Describe(call.object_key),
                      attempt > 1 ? fmt::format(" (attempt {})", attempt) : ""));
    }
    if (failure.code() != StatusCode::kUnavailable) return failure;

    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double delay = retry_.DelaySeconds(attempt);
    if (attempt >= retry_.max_attempts || elapsed + delay > retry_.max_total_seconds) {
      return Status::Unavailable(fmt::format("{} (gave up after {} attempts in {:.1f} s)", failure.message(),
                                             attempt, elapsed));
    }
    LogEvent(LogLevel::kInfo, "s3_request_retried",
             {{"method", call.method}, {"key", call.object_key}, {"attempt", attempt}, {"delay_seconds", delay},
              {"error", failure.message()}});
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  }
}

}  // namespace shardvec
