#include "store/s3/s3_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/url_redact.h"
#include "store/s3/s3_xml.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxDeleteBatch = 1000;  // S3's DeleteObjects limit
constexpr int64_t kMinPartSize = int64_t{5} << 20;  // S3 rejects smaller parts (except the last)

bool ValidBucketName(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 255) return false;
  return std::all_of(bucket.begin(), bucket.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_';
  });
}

// Exactly [offset, offset + length) of a file being uploaded.
Result<std::string> ReadExactly(int fd, const fs::path& path, int64_t offset, int64_t length) {
  ASSIGN_OR_RETURN(std::string data, ReadFileRange(fd, path, offset, length));
  if (static_cast<int64_t>(data.size()) != length) {
    return Status::IOError(fmt::format("cannot read '{}' at byte {}: unexpected end of file", path.string(),
                                       offset + static_cast<int64_t>(data.size())));
  }
  return data;
}

// The first error among finished futures, after waiting for all of them (none may outlive the call).
template <typename T>
Status WaitAll(std::vector<std::future<T>>& futures, std::vector<T>* values = nullptr) {
  Status first;
  for (auto& f : futures) {
    T value = f.get();
    Status st;
    if constexpr (std::is_same_v<T, Status>) {
      st = value;
    } else {
      st = value.status();
    }
    if (!st.ok() && first.ok()) first = st;
    if (values) values->push_back(std::move(value));
  }
  return first;
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseS3Url(std::string_view url) {
  if (url.rfind("s3://", 0) != 0) {
    return Status::InvalidArgument(fmt::format("store '{}' is not an s3:// URL", RedactUrlUserinfo(url)));
  }
  if (UrlHasUserinfo(url)) {
    return Status::InvalidArgument(fmt::format(
        "store '{}' must not carry credentials (user:password@); an s3:// URL is s3://bucket/prefix",
        RedactUrlUserinfo(url)));
  }
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  std::string bucket(rest.substr(0, slash));
  std::string prefix(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!ValidBucketName(bucket)) {
    return Status::InvalidArgument(fmt::format(
        "store '{}': bucket name '{}' is not valid (3+ characters of letters, digits, '.', '-')", url, bucket));
  }
  for (size_t start = 0; !prefix.empty() && start <= prefix.size();) {
    size_t end = std::min(prefix.find('/', start), prefix.size());
    std::string_view segment = std::string_view(prefix).substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return Status::InvalidArgument(
          fmt::format("store '{}': prefix has an empty, '.' or '..' segment", url));
    }
    start = end + 1;
  }
  return std::make_pair(bucket, prefix);
}

Result<std::shared_ptr<S3Store>> S3Store::Open(std::string_view url, const StoreOptions& options,
                                               std::shared_ptr<HttpTransport> transport, const EnvLookup& env) {
  ASSIGN_OR_RETURN(auto parts, ParseS3Url(url));
  if (options.part_size_bytes < kMinPartSize) {
    return Status::InvalidArgument(fmt::format("part_size_bytes must be at least {} (S3's minimum part), got {}",
                                               kMinPartSize, options.part_size_bytes));
  }
  if (options.max_concurrency < 1 || options.max_concurrency > kMaxPoolThreads || options.max_attempts < 1) {
    return Status::InvalidArgument(fmt::format("max_concurrency must be in 1..{} and max_attempts >= 1 (got {} and {})",
                                               kMaxPoolThreads, options.max_concurrency, options.max_attempts));
  }
  ASSIGN_OR_RETURN(S3Settings settings, ResolveS3Settings(options, parts.first, env));
  if (!transport) transport = std::make_shared<CurlTransport>(TlsOptions{options.verify_tls, settings.ca_bundle});
  ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool,
                   ThreadPool::Create(static_cast<size_t>(options.max_concurrency), "S3 transfers (max_concurrency)"));
  return std::make_shared<S3Store>(S3Client(std::move(settings), parts.first, options, std::move(transport)),
                                   parts.second, options, std::move(pool));
}

S3Store::S3Store(S3Client client, std::string prefix, const StoreOptions& options, std::unique_ptr<ThreadPool> pool)
    : client_(std::move(client)),
      prefix_(std::move(prefix)),
      multipart_threshold_(std::max(options.multipart_threshold_bytes, options.part_size_bytes)),
      part_size_(options.part_size_bytes),
      ranged_get_threshold_(std::max(options.ranged_get_threshold_bytes, options.part_size_bytes)),
      pool_(std::move(pool)) {}

std::string S3Store::ObjectKey(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "/" + std::string(key);
}

std::string S3Store::Url(std::string_view key) const { return client_.Describe(ObjectKey(key)); }

std::string S3Store::PrefixUrl() const { return client_.Describe(prefix_); }

Result<std::string> S3Store::Get(std::string_view key, int64_t max_bytes) {
  ASSIGN_OR_RETURN(VersionedObject object, GetVersioned(key, max_bytes));
  return std::move(object.data);
}

Result<std::string> S3Store::GetRange(std::string_view key, int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    return Status::InvalidArgument(fmt::format("range of '{}' must be non-negative (offset {}, length {})",
                                               Url(key), offset, length));
  }
  if (length == 0) return std::string();
  // A server that ignores Range answers 200 with the whole object: never more than the range's end.
  S3Call call{.method = "GET", .object_key = ObjectKey(key), .max_body_bytes = offset + length};
  call.headers.emplace_back("Range", fmt::format("bytes={}-{}", offset, offset + length - 1));
  ASSIGN_OR_RETURN(HttpResponse response, client_.Execute(call));
  if (response.status == 200) return response.body.substr(std::min<size_t>(offset, response.body.size()), length);
  return std::move(response.body);
}

Result<VersionedObject> S3Store::GetVersioned(std::string_view key, int64_t max_bytes) {
  // The transport refuses a Content-Length past the bound before the body, and a body that runs on.
  Result<HttpResponse> response =
      client_.Execute({.method = "GET", .object_key = ObjectKey(key), .max_body_bytes = max_bytes});
  if (!response.ok()) return response.status();
  return VersionedObject{std::move(response->body), response->Header("etag")};
}

Result<ObjectInfo> S3Store::Head(std::string_view key) {
  ASSIGN_OR_RETURN(HttpResponse response, client_.Execute({.method = "HEAD", .object_key = ObjectKey(key)}));
  ObjectInfo info{std::string(key), -1, response.Header("etag")};
  try {
    info.size = std::stoll(response.Header("content-length"));
  } catch (const std::exception&) {
    return S3BadResponse(fmt::format("S3 HEAD {}: no valid Content-Length", Url(key)));
  }
  return info;
}

Status S3Store::GetRangesToFd(const std::string& object_key, const std::string& etag, int64_t size, int fd) {
  std::vector<std::future<Status>> parts;
  for (int64_t offset = 0; offset < size; offset += part_size_) {
    int64_t length = std::min(part_size_, size - offset);
    parts.push_back(pool_->Submit([this, &object_key, &etag, offset, length, fd]() -> Status {
      S3Call call{.method = "GET", .object_key = object_key, .response_fd = fd, .response_offset = offset,
                  .max_body_bytes = length};
      call.headers.emplace_back("Range", fmt::format("bytes={}-{}", offset, offset + length - 1));
      // Every range must come from the same object, even if it is replaced meanwhile.
      if (!etag.empty()) call.headers.emplace_back("If-Match", etag);
      ASSIGN_OR_RETURN(HttpResponse response, client_.Execute(call));
      if (response.status != 206 || response.body_bytes != length) {
        return Status::IOError(fmt::format("S3 GET {} bytes {}-{}: got HTTP {} with {} bytes",
                                           client_.Describe(object_key), offset, offset + length - 1,
                                           response.status, response.body_bytes));
      }
      return Status::OK();
    }));
  }
  return WaitAll(parts);
}

Status S3Store::GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) {
  return Download(key, dest, max_bytes, /*durable=*/true);
}

Status S3Store::GetToScratchFile(std::string_view key, const fs::path& dest, int64_t max_bytes) {
  return Download(key, dest, max_bytes, /*durable=*/false);
}

Status S3Store::Download(std::string_view key, const fs::path& dest, int64_t max_bytes, bool durable) {
  ASSIGN_OR_RETURN(ObjectInfo info, Head(key));
  if (info.size > max_bytes) return TooLarge(key, info.size, max_bytes);
  RETURN_IF_ERROR(CreatePrivateDirectories(dest.parent_path()));
  const fs::path staged = TempSiblingPath(dest);
  Status st;
  {
    ScopedFd file(open(staged.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600));
    const int fd = file.get();
    if (fd < 0) {
      return Status::IOError(fmt::format("cannot create '{}': {}", staged.string(), std::strerror(errno)));
    }
    const std::string object_key = ObjectKey(key);
    if (info.size > ranged_get_threshold_) {
      st = GetRangesToFd(object_key, info.version, info.size, fd);
    } else {
      // Exactly the size HEAD gave: an object replaced by a larger one meanwhile fails If-Match or this.
      S3Call call{.method = "GET", .object_key = object_key, .response_fd = fd, .max_body_bytes = info.size};
      if (!info.version.empty()) call.headers.emplace_back("If-Match", info.version);
      Result<HttpResponse> response = client_.Execute(call);
      st = response.status();
      if (st.ok() && response->body_bytes != info.size) {
        st = Status::IOError(fmt::format("S3 GET {}: received {} bytes, expected {}", Url(key),
                                         response->body_bytes, info.size));
      }
    }
    if (st.ok() && durable && fsync(fd) != 0) {
      st = Status::IOError(fmt::format("cannot fsync '{}': {}", staged.string(), std::strerror(errno)));
    }
  }
  std::error_code ec;
  if (st.ok()) {
    fs::rename(staged, dest, ec);
    if (ec) st = Status::IOError(fmt::format("cannot rename '{}' to '{}': {}", staged.string(), dest.string(),
                                             ec.message()));
  }
  if (!st.ok()) fs::remove(staged, ec);
  return st;
}

Result<HttpResponse> S3Store::PutObject(const std::string& object_key, std::string_view data, HeaderList headers) {
  S3Call call{.method = "PUT", .object_key = object_key, .headers = std::move(headers), .body = data};
  call.headers.emplace_back("Content-Type", "application/octet-stream");
  return client_.Execute(call);
}

Status S3Store::PutMultipart(const std::string& object_key, int64_t size,
                             const std::function<Result<std::string>(int64_t, int64_t)>& read_part,
                             HeaderList complete_headers) {
  S3Call initiate{.method = "POST", .object_key = object_key, .query = {{"uploads", ""}}};
  initiate.headers.emplace_back("Content-Type", "application/octet-stream");
  ASSIGN_OR_RETURN(HttpResponse created, client_.Execute(initiate));
  ASSIGN_OR_RETURN(std::string upload_id, ParseInitiateMultipartUpload(created.body));

  std::vector<std::future<Result<std::string>>> parts;
  int part_number = 1;
  for (int64_t offset = 0; offset < size; offset += part_size_, ++part_number) {
    int64_t length = std::min(part_size_, size - offset);
    parts.push_back(pool_->Submit([&, offset, length, part_number]() -> Result<std::string> {
      ASSIGN_OR_RETURN(std::string data, read_part(offset, length));
      S3Call call{.method = "PUT",
                  .object_key = object_key,
                  .query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
                  .body = data};
      ASSIGN_OR_RETURN(HttpResponse response, client_.Execute(call));
      std::string etag = response.Header("etag");
      if (etag.empty()) {
        return S3BadResponse(fmt::format("S3 UploadPart {} part {}: no ETag in the answer",
                                         client_.Describe(object_key), part_number));
      }
      return etag;
    }));
  }
  std::vector<Result<std::string>> etags;
  Status st = WaitAll(parts, &etags);
  if (st.ok()) {
    std::vector<std::string> etag_values;
    for (auto& e : etags) etag_values.push_back(*e);
    std::string body = CompleteMultipartUploadXml(etag_values);
    S3Call complete{.method = "POST", .object_key = object_key, .query = {{"uploadId", upload_id}},
                    .headers = std::move(complete_headers), .body = body};
    complete.headers.emplace_back("Content-Type", "application/xml");
    Result<HttpResponse> done = client_.Execute(complete);
    st = done.status();
    // S3 may answer 200 and still report an error in the body.
    if (S3ErrorBody error = st.ok() ? ParseS3Error(done->body) : S3ErrorBody{}; !error.code.empty()) {
      st = Status::IOError(fmt::format("S3 CompleteMultipartUpload {}: {} ({})", client_.Describe(object_key),
                                       error.code, error.message));
    }
  }
  if (!st.ok()) {
    // Abort so the parts stop costing storage; the original error is the one worth reporting.
    (void)client_.Execute({.method = "DELETE", .object_key = object_key, .query = {{"uploadId", upload_id}}});
  }
  return st;
}

Status S3Store::Put(std::string_view key, std::string_view data) {
  const std::string object_key = ObjectKey(key);
  if (static_cast<int64_t>(data.size()) <= multipart_threshold_) return PutObject(object_key, data, {}).status();
  return PutMultipart(object_key, static_cast<int64_t>(data.size()),
                      [data](int64_t offset, int64_t length) -> Result<std::string> {
                        return std::string(data.substr(offset, length));
                      }, {});
}

Status S3Store::PutFile(std::string_view key, const fs::path& source) {
  ScopedFd file(open(source.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = file.get();
  if (fd < 0) return Status::IOError(fmt::format("cannot open '{}': {}", source.string(), std::strerror(errno)));
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) return Status::IOError(fmt::format("cannot size '{}': {}", source.string(), std::strerror(errno)));
  const std::string object_key = ObjectKey(key);
  // Never over an existing object: If-None-Match on the PUT, or on the multipart upload's completion.
  const HeaderList if_absent = {{"If-None-Match", "*"}};
  Status st;
  if (size <= multipart_threshold_) {
    ASSIGN_OR_RETURN(std::string data, ReadExactly(fd, source, 0, size));
    st = PutObject(object_key, data, if_absent).status();
    if (st.code() == StatusCode::kConflict && HoldsExactly(object_key, data, nullptr)) return Status::OK();
  } else {
    // A retried completion of the same upload is answered as a success by S3 itself.
    st = PutMultipart(object_key, size, [fd, &source](int64_t offset, int64_t length) {
      return ReadExactly(fd, source, offset, length);
    }, if_absent);
  }
  if (st.code() == StatusCode::kConflict) {
    return Status::AlreadyExists(fmt::format("object '{}' already exists", Url(key)));
  }
  return st;
}

// After a lost answer a retried conditional write fails against our own first write; the object
// then holds exactly our bytes (manifests and pointers are unique per run), which counts as success.
bool S3Store::HoldsExactly(const std::string& object_key, std::string_view data, std::string* etag) {
  Result<HttpResponse> current = client_.Execute(
      {.method = "GET", .object_key = object_key, .max_body_bytes = static_cast<int64_t>(data.size())});
  if (!current.ok() || current->body != data) return false;
  if (etag) *etag = current->Header("etag");
  return true;
}

Status S3Store::PutIfAbsent(std::string_view key, std::string_view data) {
  const std::string object_key = ObjectKey(key);
  Status st = PutObject(object_key, data, {{"If-None-Match", "*"}}).status();
  if (st.code() == StatusCode::kConflict) {
    if (HoldsExactly(object_key, data, nullptr)) return Status::OK();
    return Status::AlreadyExists(fmt::format("object '{}' already exists", Url(key)));
  }
  return st;
}

Result<std::string> S3Store::CompareAndSwap(std::string_view key, std::string_view data,
                                            const std::optional<std::string>& expected_version) {
  const std::string object_key = ObjectKey(key);
  Result<HttpResponse> response =
      PutObject(object_key, data,
                {expected_version ? std::pair<std::string, std::string>("If-Match", *expected_version)
                                  : std::pair<std::string, std::string>("If-None-Match", "*")});
  // 412: someone else wrote first; 404 under If-Match: someone deleted it. Both lose the swap.
  if (response.status().code() == StatusCode::kConflict ||
      (expected_version && response.status().code() == StatusCode::kNotFound)) {
    std::string etag;
    if (HoldsExactly(object_key, data, &etag)) return etag;
    return Status::Conflict(fmt::format("object '{}' changed since it was read ({})", Url(key),
                                        expected_version ? "If-Match " + *expected_version : "If-None-Match *"));
  }
  if (!response.ok()) return response.status();
  return response->Header("etag");
}

Result<ListResult> S3Store::List(std::string_view prefix, std::string_view delimiter) {
  ListResult result;
  const std::string full_prefix = ObjectKey(prefix);
  const size_t strip = prefix_.empty() ? 0 : prefix_.size() + 1;
  std::string token;
  do {
    S3Call call{.method = "GET", .query = {{"list-type", "2"}, {"prefix", full_prefix}}};
    if (!delimiter.empty()) call.query.emplace_back("delimiter", std::string(delimiter));
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    if (list_page_size_ > 0) call.query.emplace_back("max-keys", std::to_string(list_page_size_));
    ASSIGN_OR_RETURN(HttpResponse response, client_.Execute(call));
    ASSIGN_OR_RETURN(S3ListPage page, ParseListObjectsV2(response.body));
    for (auto& entry : page.contents) {
      result.objects.push_back(ObjectInfo{entry.key.substr(strip), entry.size, entry.etag});
    }
    for (auto& common : page.common_prefixes) result.common_prefixes.push_back(common.substr(strip));
    token = page.truncated ? page.next_continuation_token : "";
  } while (!token.empty());
  return result;
}

Status S3Store::Delete(std::string_view key) {
  Status st = client_.Execute({.method = "DELETE", .object_key = ObjectKey(key)}).status();
  return st.code() == StatusCode::kNotFound ? Status::OK() : st;
}

Status S3Store::DeleteMany(const std::vector<std::string>& keys) {
  Status first;
  for (size_t begin = 0; begin < keys.size(); begin += kMaxDeleteBatch) {
    std::vector<std::string> batch;
    for (size_t i = begin; i < std::min(keys.size(), begin + kMaxDeleteBatch); ++i) batch.push_back(ObjectKey(keys[i]));
    std::string body = DeleteObjectsXml(batch);
    S3Call call{.method = "POST", .query = {{"delete", ""}}, .body = body};
    call.headers.emplace_back("Content-MD5", Md5Base64(body));  // S3 requires it on DeleteObjects
    call.headers.emplace_back("Content-Type", "application/xml");
    Result<HttpResponse> response = client_.Execute(call);
    Status st = response.status();
    if (st.ok()) {
      Result<std::vector<S3DeleteFailure>> failures = ParseDeleteResult(response->body);
      st = failures.status();
      if (st.ok() && !failures->empty()) {
        const S3DeleteFailure& f = failures->front();
        st = Status::IOError(fmt::format("S3 DeleteObjects: {} of {} keys failed, first {}: {} ({})",
                                         failures->size(), batch.size(), client_.Describe(f.key), f.code,
                                         f.message));
      }
    }
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace shardvec
