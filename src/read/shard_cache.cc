#include "read/shard_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <utility>
#include <cerrno>
#include <cstring>

#include "common/digest.h"
#include "common/file_lock.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "format/keys.h"
#include "shard/ranged_object_vfs.h"
#include "store/local_store.h"

namespace shardvec {
namespace fs = std::filesystem;

struct ShardCacheEntry {
  std::string name;
  std::unique_ptr<ShardSearcher> searcher;  // null once closed
  int64_t borrows = 0;
  bool retired = false;
};

namespace {

constexpr size_t kMaxPlainIdentity = 64;

bool IsPlainIdentityChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '=';
}

// Identities such as checkpoint ids are used as they are; anything else (URLs, long strings) is
// sanitised and suffixed with its hash so two identities never share a folder.
std::string SafeIdentity(const std::string& identity) {
  bool plain = !identity.empty() && identity.size() <= kMaxPlainIdentity;
  for (char c : identity) plain = plain && IsPlainIdentityChar(c);
  if (plain) return identity;
  std::string safe;
  for (char c : identity.substr(0, 40)) safe += IsPlainIdentityChar(c) ? c : '_';
  return fmt::format("{}-{:016x}", safe, Xxh3_64(identity));
}

// A hidden partial download: "<dir>/.<name>.tmp.<random>" (ours and the stores' staging names).
bool IsPartialDownload(const std::string& file_name) {
  return file_name.size() > 1 && file_name[0] == '.' && file_name.find(".tmp.") != std::string::npos;
}

// Checks the file open as `fd` against the manifest's size and (when known) digest.
Status VerifyFd(const ShardLocation& loc, int fd, const fs::path& path) {
  if (!loc.digest) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return Status::IOError(fmt::format("cannot stat '{}': {}", path.string(), std::strerror(errno)));
    }
    if (static_cast<int64_t>(st.st_size) == loc.size) return Status::OK();
    return Status::Corruption(
        fmt::format("shard {} failed verification: expected {} bytes, got {} bytes", loc.db_id,
                    loc.size, static_cast<int64_t>(st.st_size))).WithKind(ErrorKind::kShardVerification);
  }
  ASSIGN_OR_RETURN(FileDigest actual, DigestFd(fd, path));
  if (actual.size == loc.size && actual.digest == AsciiLower(*loc.digest)) return Status::OK();
  return Status::Corruption(
      fmt::format("shard {} failed verification: expected {} ({} bytes), got {} ({} bytes)",
                  loc.db_id, *loc.digest, loc.size, actual.digest, actual.size)).WithKind(ErrorKind::kShardVerification);
}

FileIdentity IdentityOf(const struct stat& st) {
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<int64_t>(st.st_size),
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

// ---- ShardLease ---------------------------------------------------------------------------------

ShardLease::ShardLease(ShardCache* cache, std::shared_ptr<ShardCacheEntry> entry)
    : cache_(cache), entry_(std::move(entry)) {}

ShardLease::~ShardLease() { Release(); }

ShardLease::ShardLease(ShardLease&& other) noexcept
    : cache_(other.cache_), entry_(std::move(other.entry_)) {
  other.cache_ = nullptr;
}

ShardLease& ShardLease::operator=(ShardLease&& other) noexcept {
  if (this != &other) {
    Release();
    cache_ = other.cache_;
    entry_ = std::move(other.entry_);
    other.cache_ = nullptr;
  }
  return *this;
}

ShardSearcher& ShardLease::searcher() const { return *entry_->searcher; }

void ShardLease::Release() {
  if (entry_ == nullptr) return;
  cache_->Release(entry_);
  entry_.reset();
  cache_ = nullptr;
}

// ---- ShardCache ---------------------------------------------------------------------------------

ShardCache::ShardCache(std::shared_ptr<ObjectStore> store, fs::path cache_dir, int64_t dim,
                       Metric metric, int64_t max_open, bool record_downloads, ShardAccess access)
    : store_(std::move(store)),
      cache_dir_(std::move(cache_dir)),
      dim_(dim),
      metric_(metric),
      max_open_(max_open),
      record_downloads_(record_downloads),
      access_(std::move(access)) {}

std::vector<ShardDownload> ShardCache::TakeDownloads() {
  if (!record_downloads_) return {};
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(downloads_, {});
}

ShardCache::~ShardCache() { RetireAll(); }

std::string ShardCache::CacheDirName(const ShardLocation& loc) {
  return fmt::format("db={:05d}-{}", loc.db_id, SafeIdentity(loc.identity));
}

int64_t ShardCache::open_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_count_;
}

int64_t ShardCache::cached_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(lru_.size());
}

Result<ShardLease> ShardCache::Acquire(const ShardLocation& loc) {
  const std::string name = CacheDirName(loc);
  if (std::optional<ShardLease> lease = TryBorrowCached(name)) return std::move(*lease);

  std::shared_ptr<std::mutex> load_lock;
  int64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<std::mutex>& slot = load_locks_[name];
    if (slot == nullptr) slot = std::make_shared<std::mutex>();
    load_lock = slot;
    generation = generation_;
  }
  std::lock_guard<std::mutex> loading(*load_lock);
  // Another thread may have finished loading while this one waited for the shard's lock.
  if (std::optional<ShardLease> lease = TryBorrowCached(name)) return std::move(*lease);
  if (access_.ranged) {
    ASSIGN_OR_RETURN(std::unique_ptr<ShardSearcher> searcher, OpenRanged(loc));
    return Install(name, std::move(searcher), generation);
  }
  std::optional<int> in_place;
  if (access_.in_place) {
    ASSIGN_OR_RETURN(in_place, OpenInPlace(loc, name));
  }
  if (!in_place) RETURN_IF_ERROR(HoldUseLock(name));
  const fs::path file = in_place ? fs::path(store_->Url(loc.key)) : cache_dir_ / name / std::string(kShardFileName);
  int fd;
  if (in_place) {
    fd = *in_place;
  } else {
    ASSIGN_OR_RETURN(fd, OpenVerifiedFile(loc, name));
  }
  // Bound to the verified file: a file put at its path later is never read through this searcher.
  ASSIGN_OR_RETURN(std::unique_ptr<ShardSearcher> searcher,
                   ShardSearcher::OpenPinned(fd, file, dim_, metric_,
                                             std::to_string(loc.db_id), kDefaultShardConnections, ScanPath::kAuto,
                                             access_.mmap_size));
  return Install(name, std::move(searcher), generation);
}

Result<std::unique_ptr<ShardSearcher>> ShardCache::OpenRanged(const ShardLocation& loc) {
  const std::string shard = std::to_string(loc.db_id);
  const std::string context = fmt::format("shard {}: ranged read of '{}'", shard, loc.key);
  Result<ObjectInfo> info = store_->Head(loc.key);
  if (!info.ok()) return info.status().WithContext(context);
  if (info->size != loc.size) {
    return Status::Corruption(fmt::format("shard {} failed verification: expected {} bytes, the object '{}' has {}",
                                          loc.db_id, loc.size, loc.key, info->size))
        .WithKind(ErrorKind::kShardVerification);
  }
  // The first page holds the page size. One read of the largest page SQLite allows fetches it
  // whatever it is; the pages it covers are kept.
  Result<std::string> fetched = store_->GetRange(loc.key, 0, std::min(kMaxSqlitePageBytes, loc.size));
  if (!fetched.ok()) return fetched.status().WithContext(context);
  if (access_.counters) {
    access_.counters->requests.fetch_add(1);
    access_.counters->bytes_fetched.fetch_add(static_cast<int64_t>(fetched->size()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<RangedObject> object,
                   MakeSqliteRangedObject(store_, loc.key, loc.size, *fetched, shard, access_.page_cache_pages,
                                          access_.counters, access_.fetch_pool.get()));
  return ShardSearcher::OpenRanged(std::move(object), dim_, metric_, shard);
}

Result<std::optional<int>> ShardCache::OpenInPlace(const ShardLocation& loc, const std::string& name) {
  auto* local = dynamic_cast<LocalStore*>(store_.get());
  if (local == nullptr) return std::optional<int>();
  struct stat st {};
  Result<ScopedFd> opened = local->OpenForRead(loc.key, &st);
  if (!opened.ok()) return opened.status().WithContext(fmt::format("shard {}", loc.db_id));
  // Someone other than the store's owner could rewrite such a file after it was verified.
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return std::optional<int>();
  ScopedFd fd = std::move(opened).value();
  const FileIdentity identity = IdentityOf(st);
  const std::string verified_name = "in-place/" + name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = verified_.find(verified_name);
    if (it != verified_.end() && it->second == identity) return std::optional<int>(fd.Release());
  }
  Status checked = VerifyFd(loc, fd.get(), store_->Url(loc.key));
  if (!checked.ok()) {
    LogEvent(LogLevel::kError, "shard_verification_failed",
             {{"shard_id", loc.db_id}, {"key", loc.key}, {"error", checked.message()}});
    return checked;
  }
  std::lock_guard<std::mutex> lock(mu_);
  verified_[verified_name] = identity;
  return std::optional<int>(fd.Release());
}

Status ShardCache::HoldUseLock(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (use_locks_.count(name) != 0) return Status::OK();
  }
  const fs::path folder = cache_dir_ / name;
  // A pruner may remove the folder between its creation and the lock; then it is made again.
  constexpr int kAttempts = 4;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    RETURN_IF_ERROR(CreatePrivateDirectories(folder));
    Result<std::optional<FileLock>> held =
        FileLock::Acquire(folder / std::string(kUseLockName), FileLock::Mode::kShared, /*wait=*/true);
    if (held.ok() && held->has_value()) {
      // The folder's mtime is when a reader last opened the shard: what pruning orders by.
      ::utimensat(AT_FDCWD, folder.c_str(), nullptr, 0);
      std::lock_guard<std::mutex> lock(mu_);
      use_locks_.emplace(name, std::move(**held));
      return Status::OK();
    }
    last = held.ok() ? Status::Unavailable("the lock was not granted") : held.status();
  }
  return last.WithContext(fmt::format("shard cache folder '{}'", folder.string()));
}

std::optional<ShardLease> ShardCache::TryBorrowCached(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::shared_ptr<ShardCacheEntry> entry = *it->second;
  ++entry->borrows;
  return ShardLease(this, std::move(entry));
}

Result<int> ShardCache::OpenVerifiedFile(const ShardLocation& loc, const std::string& name) {
  const fs::path final_path = cache_dir_ / name / std::string(kShardFileName);
  ASSIGN_OR_RETURN(std::optional<int> cached, OpenCachedCopy(loc, name, final_path));
  if (cached) return *cached;
  RETURN_IF_ERROR(CreatePrivateDirectories(final_path.parent_path()));
  // One download per shard folder at a time, across processes sharing the cache; the lock also
  // tells a reader opening later that this folder's partial files are alive.
  ASSIGN_OR_RETURN(std::optional<FileLock> lock,
                   FileLock::Acquire(final_path.parent_path() / std::string(kDownloadLockName),
                                     FileLock::Mode::kExclusive, /*wait=*/true));
  // Another process may have finished this download while this one waited.
  ASSIGN_OR_RETURN(cached, OpenCachedCopy(loc, name, final_path));
  if (cached) return *cached;
  return DownloadVerified(loc, name, final_path);
}

Result<std::optional<int>> ShardCache::OpenCachedCopy(const ShardLocation& loc, const std::string& name,
                                                      const fs::path& final_path) {
  const int fd = ::open(final_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<int>();
    if (errno != ELOOP) {
      return Status::IOError(fmt::format("shard {}: cannot open '{}': {}", loc.db_id, final_path.string(),
                                         std::strerror(errno)));
    }
  }
  struct stat st {};
  Status checked;
  if (fd < 0) {
    checked = Status::Corruption("a symbolic link, not a file");
  } else if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    checked = Status::Corruption("not a regular file");
  } else {
    const FileIdentity identity = IdentityOf(st);
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = verified_.find(name);
      // The very file this process verified (same device, inode, size and mtime): no need to hash it again.
      if (it != verified_.end() && it->second == identity) return std::optional<int>(fd);
    }
    // Left by an earlier process, or replaced since this one verified it: trusted only once checked.
    checked = VerifyFd(loc, fd, final_path);
    if (checked.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      verified_[name] = identity;
      return std::optional<int>(fd);
    }
  }
  if (fd >= 0) ::close(fd);
  LogEvent(LogLevel::kInfo, "shard_cache_file_replaced",
           {{"shard_id", loc.db_id}, {"path", final_path.string()}, {"error", checked.message()}});
  ::unlink(final_path.c_str());
  return std::optional<int>();
}

Result<int> ShardCache::DownloadVerified(const ShardLocation& loc, const std::string& name,
                                         const fs::path& final_path) {
  // The bytes are checked under a temp name, so the final name only ever holds a verified file; the
  // descriptor they were checked through is the one the searcher reads.
  const fs::path staged = TempSiblingPath(final_path);
  const auto t0 = std::chrono::steady_clock::now();
  // Never more than the manifest's db_bytes: a larger object (or /dev/zero) fails before filling the disk.
  Status st = store_->GetToFile(loc.key, staged, loc.size);
  if (!st.ok()) {
    ::unlink(staged.c_str());
    return st.WithContext(fmt::format("shard {}: download of '{}'", loc.db_id, loc.key));
  }
  const int fd = ::open(staged.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat stat_buf {};
  if (fd < 0 || ::fstat(fd, &stat_buf) != 0) {
    st = Status::IOError(fmt::format("shard {}: cannot open the download '{}': {}", loc.db_id, staged.string(),
                                     std::strerror(errno)));
  } else {
    st = VerifyFd(loc, fd, staged);
    if (!st.ok()) {
      LogEvent(LogLevel::kError, "shard_verification_failed",
               {{"shard_id", loc.db_id}, {"key", loc.key}, {"error", st.message()}});
    }
  }
  if (st.ok() && ::rename(staged.c_str(), final_path.c_str()) != 0) {
    st = Status::IOError(fmt::format("shard {}: cannot rename into '{}': {}", loc.db_id,
                                     final_path.string(), std::strerror(errno)));
  }
  if (!st.ok()) {
    if (fd >= 0) ::close(fd);
    ::unlink(staged.c_str());
    return st;
  }
  if (access_.downloads) {
    access_.downloads->shards.fetch_add(1);
    access_.downloads->bytes.fetch_add(loc.size);
  }
  std::lock_guard<std::mutex> lock(mu_);
  verified_[name] = IdentityOf(stat_buf);
  if (record_downloads_) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    downloads_.push_back(ShardDownload{loc.db_id, loc.size, ms});
  }
  return fd;
}

int64_t ShardCache::RemoveStaleDownloads(const fs::path& cache_dir) {
  int64_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path folder = it->path();
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || it->is_symlink(type_ec) || !folder.filename().string().starts_with("db=")) {
      continue;
    }
    std::vector<fs::path> partials;
    std::error_code list_ec;
    for (fs::directory_iterator f(folder, list_ec), f_end; !list_ec && f != f_end; f.increment(list_ec)) {
      if (IsPartialDownload(f->path().filename().string())) partials.push_back(f->path());
    }
    if (partials.empty()) continue;
    // Held by a live download (in any process): its partial files stay.
    Result<std::optional<FileLock>> lock =
        FileLock::Acquire(folder / std::string(kDownloadLockName), FileLock::Mode::kExclusive, /*wait=*/false);
    if (!lock.ok() || !lock->has_value()) continue;
    for (const fs::path& partial : partials) removed += ::unlink(partial.c_str()) == 0 ? 1 : 0;
  }
  if (removed > 0) {
    LogEvent(LogLevel::kInfo, "shard_cache_partials_removed", {{"path", cache_dir.string()}, {"files", removed}});
  }
  return removed;
}

ShardLease ShardCache::Install(const std::string& name, std::unique_ptr<ShardSearcher> searcher,
                               int64_t generation) {
  std::vector<std::unique_ptr<ShardSearcher>> graveyard;  // destroyed after the lock is dropped
  std::shared_ptr<ShardCacheEntry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = index_.find(name);
    if (it != index_.end()) {
      // A load that started before a RetireAll raced ours; serve the cached one.
      lru_.splice(lru_.begin(), lru_, it->second);
      entry = *it->second;
      ++entry->borrows;
      graveyard.push_back(std::move(searcher));
    } else {
      entry = std::make_shared<ShardCacheEntry>();
      entry->name = name;
      entry->searcher = std::move(searcher);
      entry->borrows = 1;
      ++open_count_;
      if (generation != generation_) {
        // The cache was retired while this shard loaded: serve this one caller, then close.
        entry->retired = true;
      } else {
        lru_.push_front(entry);
        index_[name] = lru_.begin();
        EvictOverflowLocked(&graveyard);
      }
    }
  }
  return ShardLease(this, std::move(entry));
}

void ShardCache::Release(const std::shared_ptr<ShardCacheEntry>& entry) {
  std::unique_ptr<ShardSearcher> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --entry->borrows;
    if (entry->retired && entry->borrows == 0 && entry->searcher != nullptr) {
      closing = std::move(entry->searcher);
      --open_count_;
    }
  }
}

void ShardCache::RetireAll() {
  std::vector<std::unique_ptr<ShardSearcher>> graveyard;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    for (const auto& entry : lru_) RetireLocked(*entry, &graveyard);
    lru_.clear();
    index_.clear();
    PruneLoadLocksLocked();
  }
}

void ShardCache::RetireLocked(ShardCacheEntry& entry,
                              std::vector<std::unique_ptr<ShardSearcher>>* graveyard) {
  entry.retired = true;
  if (entry.borrows == 0 && entry.searcher != nullptr) {
    graveyard->push_back(std::move(entry.searcher));
    --open_count_;
  }
}

void ShardCache::EvictOverflowLocked(std::vector<std::unique_ptr<ShardSearcher>>* graveyard) {
  if (max_open_ <= 0) return;
  // The entry just installed sits at the front, so it is never the one evicted.
  while (static_cast<int64_t>(lru_.size()) > max_open_) {
    std::shared_ptr<ShardCacheEntry> victim = std::move(lru_.back());
    lru_.pop_back();
    index_.erase(victim->name);
    RetireLocked(*victim, graveyard);
  }
  PruneLoadLocksLocked();
}

void ShardCache::PruneLoadLocksLocked() {
  // A lock nobody holds or waits for (only the map owns it) can go; it is recreated on demand.
  for (auto it = load_locks_.begin(); it != load_locks_.end();) {
    if (it->second.use_count() == 1 && index_.count(it->first) == 0) {
      it = load_locks_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace shardvec
