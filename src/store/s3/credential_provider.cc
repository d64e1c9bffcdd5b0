#include "store/s3/credential_provider.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <utility>

#include "common/log.h"
#include "common/status_macros.h"
#include "common/time_util.h"

namespace shardvec {

namespace {

using Clock = std::chrono::system_clock;

// Whether keys expiring at `expiry` still have more than `margin` left.
bool ValidFor(const ExpiringCredentials& keys, Clock::duration margin) {
  return !keys.expiry || *keys.expiry - Clock::now() > margin;
}

}  // namespace

CredentialProvider::CredentialProvider(std::string source, CredentialFetch fetch, ExpiringCredentials first)
    : source_(std::move(source)), fetch_(std::move(fetch)), current_(std::move(first)) {}

Result<std::shared_ptr<CredentialProvider>> CredentialProvider::Start(std::string source, CredentialFetch fetch) {
  Result<ExpiringCredentials> first = fetch();
  if (!first.ok()) return first.status();
  return std::shared_ptr<CredentialProvider>(
      new CredentialProvider(std::move(source), std::move(fetch), std::move(*first)));
}

std::shared_ptr<CredentialProvider> CredentialProvider::Static(std::string source, AwsCredentials keys) {
  return std::shared_ptr<CredentialProvider>(
      new CredentialProvider(std::move(source), nullptr, ExpiringCredentials{std::move(keys), std::nullopt}));
}

AwsCredentials CredentialProvider::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_.keys;
}

int CredentialProvider::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

Result<AwsCredentials> CredentialProvider::Current() {
  ExpiringCredentials seen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fetch_ || ValidFor(current_, kRefreshAhead)) return current_.keys;
    seen = current_;
  }
  const bool usable = ValidFor(seen, kMandatoryRefresh);
  std::unique_lock<std::mutex> refresh(refresh_mu_, std::defer_lock);
  if (usable) {
    if (!refresh.try_lock()) return seen.keys;  // another thread is refreshing; these still work
  } else {
    refresh.lock();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);  // a refresh may have finished while this thread waited
    if (ValidFor(current_, kRefreshAhead)) return current_.keys;
  }
  Result<ExpiringCredentials> fresh = fetch_();
  if (!fresh.ok()) {
    LogEvent(LogLevel::kWarning, "aws_credentials_refresh_failed",
             {{"source", source_}, {"error", fresh.status().message()}, {"old_keys_usable", usable}});
    if (usable) return seen.keys;
    return fresh.status().WithContext(fmt::format("refreshing AWS credentials from {}", source_));
  }
  LogEvent(LogLevel::kInfo, "aws_credentials_refreshed", {{"source", source_}});
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(*fresh);
  ++fetches_;
  return current_.keys;
}

Result<Clock::time_point> ParseCredentialExpiry(std::string_view text, std::string_view what) {
  std::string normalized(text);
  if (normalized.size() > 3 && normalized.compare(normalized.size() - 3, 3, "UTC") == 0) {
    normalized.replace(normalized.size() - 3, 3, "Z");
  }
  std::optional<SystemTime> parsed = ParseTimestamp(normalized);
  if (!parsed) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' is not a UTC time like 2026-01-31T12:00:00Z", what, text));
  }
  return std::chrono::time_point_cast<Clock::duration>(*parsed);
}

Result<ExpiringCredentials> CredentialsFromJson(std::string_view text, const CredentialJsonFields& fields,
                                                const std::string& what) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Status::InvalidArgument(fmt::format("{}: the answer is not a JSON object", what));
  const nlohmann::json* keys = &doc;
  if (fields.object != nullptr) {
    auto it = doc.find(fields.object);
    if (it == doc.end() || !it->is_object()) {
      return Status::InvalidArgument(fmt::format("{}: the answer has no '{}' object", what, fields.object));
    }
    keys = &*it;
  }
  const auto text_field = [&](const char* name) -> std::optional<std::string> {
    auto it = keys->find(name);
    if (it == keys->end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return std::nullopt;
    return it->get<std::string>();
  };
  ExpiringCredentials out;
  for (const auto& [name, target] : {std::pair{fields.id, &out.keys.access_key_id},
                                     std::pair{fields.secret, &out.keys.secret_access_key}}) {
    auto value = text_field(name);
    if (!value) return Status::InvalidArgument(fmt::format("{}: the answer has no string '{}'", what, name));
    *target = std::move(*value);
  }
  out.keys.session_token = text_field(fields.token).value_or("");
  auto expiration = keys->find(fields.expiration);
  if (expiration == keys->end() || expiration->is_null()) return out;
  if (fields.expiration_is_epoch_ms) {
    if (!expiration->is_number_integer()) {
      return Status::InvalidArgument(fmt::format("{}: '{}' is not a number of milliseconds", what, fields.expiration));
    }
    out.expiry = Clock::time_point(std::chrono::milliseconds(expiration->get<int64_t>()));
    return out;
  }
  if (!expiration->is_string()) {
    return Status::InvalidArgument(fmt::format("{}: '{}' is not a time string", what, fields.expiration));
  }
  ASSIGN_OR_RETURN(out.expiry, ParseCredentialExpiry(expiration->get<std::string>(),
                                                      fmt::format("{}: '{}'", what, fields.expiration)));
  return out;
}

}  // namespace shardvec
