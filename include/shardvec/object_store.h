// ObjectStore: the few operations a snapshot needs from a folder or a bucket. Keys are relative to the
// store's prefix and use '/' separators. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/limits.h"
#include "shardvec/status.h"

namespace shardvec {

struct ObjectInfo {
  std::string key;
  int64_t size = 0;
  std::string version;  // an opaque token for compare-and-swap (an ETag on S3)
};

// A hidden temp file a store stages an upload or download in before the object takes its name; one
// that stays was left by a killed process.
struct StagedObject {
  std::string key;  // deletable with Delete
  int64_t size = 0;
  std::chrono::system_clock::time_point modified;
};

struct VersionedObject {
  std::string data;
  std::string version;
};

struct ListResult {
  std::vector<ObjectInfo> objects;          // keys directly matched (below the delimiter, if any)
  std::vector<std::string> common_prefixes;  // "dir/" entries when a delimiter is given
};

// How an s3:// store connects. Empty fields fall back to the AWS environment the way the AWS CLI finds
// it: AWS_* variables, then the profile in ~/.aws/credentials and ~/.aws/config; credentials from the
// standard chain (keys, roles, web identity, SSO, credential_process, ECS and EC2 metadata, refreshed
// before they expire). OpenStore refuses a folder prefix with any field set to other than its default (it could not take effect).
struct StoreOptions {
  std::string endpoint_url;  // e.g. http://127.0.0.1:9000 for S3-compatible servers
  std::string region;
  std::string profile;
  std::string addressing_style = "auto";  // auto | path | virtual
  // Explicit credentials win over every other source (all three or none; the token is optional).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;

  int max_attempts = 6;               // per request, first try included
  double max_retry_seconds = 60.0;    // total time a request may spend retrying
  double connect_timeout_seconds = 10.0;
  double request_timeout_seconds = 300.0;  // per attempt; large parts stream within it
  int64_t multipart_threshold_bytes = int64_t{64} << 20;  // uploads above this go multipart
  int64_t part_size_bytes = int64_t{16} << 20;            // multipart part and ranged-GET chunk size
  int64_t ranged_get_threshold_bytes = int64_t{32} << 20; // downloads above this use parallel ranges
  int max_concurrency = 8;            // parallel parts / ranges per object
  // TLS for https endpoints: a PEM CA bundle (empty: AWS_CA_BUNDLE, then ca_bundle in the profile,
  // then the system store); verify_tls = false accepts any certificate (self-signed test servers only).
  std::string ca_bundle;
  bool verify_tls = true;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // The absolute URL of a key: file:///abs/prefix/key or s3://bucket/prefix/key.
  virtual std::string Url(std::string_view key) const = 0;
  // The URL of the prefix itself (no trailing slash).
  virtual std::string PrefixUrl() const = 0;

  // Reads never trust the size a store declares. Get, GetVersioned and GetToFile refuse an object
  // larger than `max_bytes` (Corruption naming the object, its size and the limit) before reading
  // its bytes, and stop one byte past the bound if it grows meanwhile; a folder store also refuses a
  // symlink, FIFO, device or folder where an object should be (Corruption naming the key).
  virtual Result<std::string> Get(std::string_view key, int64_t max_bytes) = 0;
  // A metadata object: at most kMaxMetadataObjectBytes.
  Result<std::string> Get(std::string_view key) { return Get(key, kMaxMetadataObjectBytes); }
  virtual Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) = 0;
  virtual Result<VersionedObject> GetVersioned(std::string_view key, int64_t max_bytes) = 0;
  Result<VersionedObject> GetVersioned(std::string_view key) {
    return GetVersioned(key, kMaxMetadataObjectBytes);
  }
  virtual Result<ObjectInfo> Head(std::string_view key) = 0;
  // Downloads an object of at most `max_bytes` to a local file (written whole, then renamed into place).
  virtual Status GetToFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) = 0;
  // GetToFile for a scratch copy: the store may skip making the file durable before it takes its
  // name (no fsync), so a crash may leave it torn. For a file this process alone reads, or makes
  // durable itself before it counts (an update's private copy of a shard it edits and uploads).
  virtual Status GetToScratchFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) {
    return GetToFile(key, dest, max_bytes);
  }

  virtual Status Put(std::string_view key, std::string_view data) = 0;
  // Uploads a sealed local file to a key that must be free: AlreadyExists when the key is taken, and
  // an existing object is never replaced (snapshot data is written once; a manifest may name it).
  // The caller must not change `source` in place afterwards (it may be replaced or removed): a local
  // store links it into place when it can instead of copying it.
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
  // Deletes many keys (S3: batched DeleteObjects). The first failure is returned after trying all.
  virtual Status DeleteMany(const std::vector<std::string>& keys);
  // Staged temp files under the store (which List never shows). A store that stages nothing under
  // its prefix (S3 writes objects in one request or one multipart upload) has none.
  virtual Result<std::vector<StagedObject>> ListStaged();

 protected:
  // The error of an object larger than a read allows.
  Status TooLarge(std::string_view key, int64_t size, int64_t max_bytes) const;
};

// Opens the store a prefix names: a plain path or file:// URL gives a LocalStore, s3://bucket/prefix an
// S3Store configured by `options` and the AWS environment.
Result<std::shared_ptr<ObjectStore>> OpenStore(std::string_view prefix, const StoreOptions& options = {});

// What OpenStore decides from a prefix and the connection settings, for front ends that check their
// flags before opening a store: whether `prefix` names an S3 store (s3://bucket/prefix; anything else
// is a folder), and the StoreOptions fields set to other than their defaults, by their option names
// (endpoint_url, region, …, connect_timeout, read_timeout), which OpenStore refuses for a folder.
bool IsS3Prefix(std::string_view prefix);
std::vector<std::string_view> SetS3Options(const StoreOptions& options);

}  // namespace shardvec
