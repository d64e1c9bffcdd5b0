// ObjectStore: the few operations a snapshot needs from a folder or a bucket. Keys are relative to the
// store's prefix and use '/' separators. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"

namespace shardvec {

struct ObjectInfo {
  std::string key;
  int64_t size = 0;
  std::string version;  // an opaque token for compare-and-swap (an ETag on S3)
};

struct VersionedObject {
  std::string data;
  std::string version;
};

struct ListResult {
  std::vector<ObjectInfo> objects;          // keys directly matched (below the delimiter, if any)
  std::vector<std::string> common_prefixes;  // "dir/" entries when a delimiter is given
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // The absolute URL of a key: file:///abs/prefix/key or s3://bucket/prefix/key.
  virtual std::string Url(std::string_view key) const = 0;
  // The URL of the prefix itself (no trailing slash).
  virtual std::string PrefixUrl() const = 0;

  virtual Result<std::string> Get(std::string_view key) = 0;
  virtual Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) = 0;
  virtual Result<VersionedObject> GetVersioned(std::string_view key) = 0;
  virtual Result<ObjectInfo> Head(std::string_view key) = 0;
  // Downloads an object to a local file (written whole, then renamed into place).
  virtual Status GetToFile(std::string_view key, const std::filesystem::path& dest) = 0;

  virtual Status Put(std::string_view key, std::string_view data) = 0;
  virtual Status PutFile(std::string_view key, const std::filesystem::path& source) = 0;
  // AlreadyExists when the key is taken; never overwrites.
  virtual Status PutIfAbsent(std::string_view key, std::string_view data) = 0;
  // Writes only if the object's current version equals `expected_version` (nullopt: only if absent).
  // Conflict otherwise. Returns the new version.
  virtual Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                             const std::optional<std::string>& expected_version) = 0;

  // Lists keys under `prefix`; with a delimiter, groups deeper keys into common prefixes.
  virtual Result<ListResult> List(std::string_view prefix, std::string_view delimiter = "") = 0;
  // Deleting a missing key is not an error.
  virtual Status Delete(std::string_view key) = 0;
};

// Opens the store a prefix names: a plain path or file:// URL gives a LocalStore.
Result<std::shared_ptr<ObjectStore>> OpenStore(std::string_view prefix);

}  // namespace shardvec
