// S3Store: an ObjectStore over s3://bucket/prefix. Conditional writes map onto S3's own
// (If-None-Match: * for put-if-absent, If-Match on the ETag for compare-and-swap); large objects go
// up in parallel multipart uploads and come down in parallel ranged GETs pinned to one ETag.
#pragma once

#include <memory>
#include <string>

#include "common/thread_pool.h"
#include "shardvec/object_store.h"
#include "store/s3/aws_config.h"
#include "store/s3/s3_client.h"

namespace shardvec {

class S3Store final : public ObjectStore {
 public:
  // `url` is s3://bucket[/prefix]. `transport` defaults to libcurl (tests pass a faulty one).
  static Result<std::shared_ptr<S3Store>> Open(std::string_view url, const StoreOptions& options,
                                               std::shared_ptr<HttpTransport> transport = nullptr,
                                               const EnvLookup& env = ProcessEnv);

  S3Store(S3Client client, std::string prefix, const StoreOptions& options, std::unique_ptr<ThreadPool> pool);

  std::string Url(std::string_view key) const override;
  std::string PrefixUrl() const override;

  using ObjectStore::Get;
  using ObjectStore::GetVersioned;
  Result<std::string> Get(std::string_view key, int64_t max_bytes) override;
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override;
  Result<VersionedObject> GetVersioned(std::string_view key, int64_t max_bytes) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Status GetToFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override;
  Status GetToScratchFile(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes) override;

  Status Put(std::string_view key, std::string_view data) override;
  Status PutFile(std::string_view key, const std::filesystem::path& source) override;
  Status PutIfAbsent(std::string_view key, std::string_view data) override;
  Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                     const std::optional<std::string>& expected_version) override;

  Result<ListResult> List(std::string_view prefix, std::string_view delimiter) override;
  Status Delete(std::string_view key) override;
  Status DeleteMany(const std::vector<std::string>& keys) override;

  const S3Client& client() const { return client_; }
  // Test seam: list pages of at most this many keys (S3's own default is 1000).
  void set_list_page_size(int keys) { list_page_size_ = keys; }

 private:
  // GetToFile and GetToScratchFile: the file fsynced before it takes its name when `durable`.
  Status Download(std::string_view key, const std::filesystem::path& dest, int64_t max_bytes, bool durable);
  std::string ObjectKey(std::string_view key) const;
  // Uploads `size` bytes in parts read by `read_part(offset, length)`; aborts the upload on failure.
  // `complete_headers` go on the completion (e.g. If-None-Match: *, which S3 checks there).
  Status PutMultipart(const std::string& object_key, int64_t size,
                      const std::function<Result<std::string>(int64_t, int64_t)>& read_part,
                      HeaderList complete_headers);
  // One PUT of a whole object with extra (conditional) headers.
  Result<HttpResponse> PutObject(const std::string& object_key, std::string_view data, HeaderList headers);
  bool HoldsExactly(const std::string& object_key, std::string_view data, std::string* etag);
  Status GetRangesToFd(const std::string& object_key, const std::string& etag, int64_t size, int fd);

  S3Client client_;
  std::string prefix_;  // without leading or trailing '/'; may be empty
  int64_t multipart_threshold_;
  int64_t part_size_;
  int64_t ranged_get_threshold_;
  int list_page_size_ = 0;
  std::unique_ptr<ThreadPool> pool_;  // parts and ranges of large objects
};

// Splits "s3://bucket/some/prefix/" into {"bucket", "some/prefix"}; errors name the URL.
Result<std::pair<std::string, std::string>> ParseS3Url(std::string_view url);

}  // namespace shardvec
