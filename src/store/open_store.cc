#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string_view>
#include <vector>

#include "common/status_macros.h"
#include "shardvec/object_store.h"
#include "store/local_store.h"
#include "store/s3/s3_store.h"

namespace shardvec {

bool IsS3Prefix(std::string_view prefix) { return prefix.rfind("s3://", 0) == 0; }

std::vector<std::string_view> SetS3Options(const StoreOptions& o) {
  const StoreOptions d;
  std::vector<std::string_view> set;
  const auto note = [&set](bool differs, std::string_view name) {
    if (differs) set.push_back(name);
  };
  note(o.endpoint_url != d.endpoint_url, "endpoint_url");
  note(o.region != d.region, "region");
  note(o.profile != d.profile, "profile");
  note(o.addressing_style != d.addressing_style, "addressing_style");
  note(o.access_key_id != d.access_key_id, "access_key_id");
  note(o.secret_access_key != d.secret_access_key, "secret_access_key");
  note(o.session_token != d.session_token, "session_token");
  note(o.max_attempts != d.max_attempts, "max_attempts");
  note(o.max_retry_seconds != d.max_retry_seconds, "max_retry_seconds");
  note(o.connect_timeout_seconds != d.connect_timeout_seconds, "connect_timeout");
  note(o.request_timeout_seconds != d.request_timeout_seconds, "read_timeout");
  note(o.multipart_threshold_bytes != d.multipart_threshold_bytes, "multipart_threshold_bytes");
  note(o.part_size_bytes != d.part_size_bytes, "part_size_bytes");
  note(o.ranged_get_threshold_bytes != d.ranged_get_threshold_bytes, "ranged_get_threshold_bytes");
  note(o.max_concurrency != d.max_concurrency, "max_concurrency");
  note(o.ca_bundle != d.ca_bundle, "ca_bundle");
  note(o.verify_tls != d.verify_tls, "verify_tls");
  return set;
}

Result<std::shared_ptr<ObjectStore>> OpenStore(std::string_view prefix, const StoreOptions& options) {
  if (IsS3Prefix(prefix)) {
    ASSIGN_OR_RETURN(std::shared_ptr<S3Store> store, S3Store::Open(prefix, options));
    return std::shared_ptr<ObjectStore>(std::move(store));
  }
  if (const auto set = SetS3Options(options); !set.empty()) {
    return Status::InvalidArgument(fmt::format("S3 connection setting(s) {} apply to s3:// stores only, and '{}' is a folder",
                                               fmt::join(set, ", "), prefix));
  }
  ASSIGN_OR_RETURN(std::filesystem::path root, LocalPathFromPrefix(prefix));
  return std::shared_ptr<ObjectStore>(std::make_shared<LocalStore>(std::move(root)));
}

}  // namespace shardvec
