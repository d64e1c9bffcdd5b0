#include "format/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

namespace shardvec {

std::string ShardDirKey(std::string_view run_id, int64_t db_id, int64_t attempt) {
  return fmt::format("{}/run_id={}/db={:05d}/attempt={:02d}", kShardPrefix, run_id, db_id, attempt);
}

std::string ShardKey(std::string_view run_id, int64_t db_id, int64_t attempt) {
  return ShardDirKey(run_id, db_id, attempt) + "/" + std::string(kShardFileName);
}

std::string ShardClaimKey(std::string_view run_id, int64_t db_id, int64_t attempt) {
  return ShardDirKey(run_id, db_id, attempt) + "/" + std::string(kClaimFileName);
}

std::string RunShardsPrefix(std::string_view run_id) {
  return fmt::format("{}/run_id={}/", kShardPrefix, run_id);
}

std::string RunClaimKey(std::string_view run_id) {
  return RunShardsPrefix(run_id) + std::string(kRunClaimFileName);
}

std::string VectorMetaKey(std::string_view run_id, std::string_view file_name) {
  return fmt::format("{}run_id={}/{}", kVectorMetaPrefix, run_id, file_name);
}

std::string ManifestKey(std::string_view timestamp, std::string_view run_id) {
  return fmt::format("{}{}_run_id={}/manifest", kManifestsPrefix, timestamp, run_id);
}

std::string RunRecordKey(std::string_view timestamp, std::string_view run_id,
                         std::string_view uuid_hex) {
  return fmt::format("{}{}_run_id={}_{}/run.yaml", kRunsPrefix, timestamp, run_id, uuid_hex);
}

std::optional<std::string> RunIdOfRecordKey(std::string_view key) {
  static const std::regex kPattern(R"(^runs/[^/]*?_run_id=([^/]+)_[0-9a-fA-F]+/run\.yaml$)");
  std::cmatch m;
  if (!std::regex_match(key.begin(), key.end(), m, kPattern)) return std::nullopt;
  return m[1].str();
}

Result<std::string> KeyFromUrl(std::string_view prefix_url, std::string_view url) {
  // Snapshot URLs come from manifests and pointers anyone with write access to the store may have
  // written: a URL that leaves the prefix (another folder or bucket, another scheme, '..') would
  // make the reader fetch, and trust, bytes from somewhere else. No fallback by folder names.
  const std::string prefix = std::string(prefix_url) + "/";
  if (url.substr(0, prefix.size()) != prefix) {
    return Status::Corruption(fmt::format("URL '{}' is outside the store '{}'", url, prefix_url));
  }
  const std::string_view key = url.substr(prefix.size());
  size_t start = 0;
  for (;;) {
    const size_t end = std::min(key.find('/', start), key.size());
    const std::string_view segment = key.substr(start, end - start);
    // Empty segments stay: the reference writes "prefix//shards/…" for a prefix with a trailing
    // slash, and on S3 that is the object's real key; on a folder "a//b" is "a/b", still inside.
    if (segment == "." || segment == "..") {
      return Status::Corruption(fmt::format(
          "URL '{}' has a '.' or '..' path segment below the store '{}'", url, prefix_url));
    }
    if (end == key.size()) break;
    start = end + 1;
  }
  return std::string(key);
}

std::optional<ManifestDirName> ParseManifestDirName(std::string_view name) {
  static const std::regex kPattern(
      R"(^(?:manifests/)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)_run_id=([^/]+)/?$)");
  std::cmatch m;
  if (!std::regex_match(name.begin(), name.end(), m, kPattern)) return std::nullopt;
  return ManifestDirName{m[1].str(), m[2].str()};
}

std::optional<ManifestDirName> ParseManifestRef(std::string_view ref) {
  const size_t at = ref.rfind("manifests/");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = ref.substr(at + 10);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  return ParseManifestDirName(rest.substr(0, slash));
}

}  // namespace shardvec
