// ShardCache: the reader's local copies of shards and the searchers open on them (docs/architecture.md#search, with
// docs/snapshot-format.md#digests). A shard is downloaded once into
// `cache_dir/db=NNNNN-<identity>/shard.db` (temp file + rename, verified by size and xxh3 before it
// takes the final name), its folder's use lock (`.use.lock`) held shared for as long as the cache
// lives (so no pruning, in this process or another, removes a file a live snapshot uses), opened read-only through the descriptor it was verified through (so a file
// swapped in at its path is never read), and kept in an LRU of at most `max_open` searchers.
// Evicted or retired searchers that are still borrowed close when their last lease goes.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/file_lock.h"
#include "common/thread_pool.h"
#include "shard/shard_searcher.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

struct ShardLocation {
  int64_t db_id = 0;
  std::string key;  // object key of shard.db, relative to the store
  int64_t size = 0;
  std::optional<std::string> digest;  // "xxh3:<16hex>" or none
  std::string identity;  // e.g. checkpoint id or url; part of the cache file name
};

class ShardCache;
struct ShardCacheEntry;

// What a verified cached file was when it was checked; a file at its path that differs in any of
// these (replaced, rewritten) is checked again before it is used.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// How the cache reaches a shard's bytes: downloaded into the cache folder (the default), or read in
// place through ranged reads (no local copy; the size is checked with a HEAD, the digest cannot be
// without reading every byte, so it is not).
// Downloads done, summed over every cache that shares the counters (e.g. one reader's).
struct DownloadCounters {
  std::atomic<int64_t> shards{0};
  std::atomic<int64_t> bytes{0};
};

struct ShardAccess {
  bool ranged = false;
  std::shared_ptr<DownloadCounters> downloads;  // counts downloads when set
  int64_t page_cache_pages = 1024;  // ranged: pages each open shard caches (0: none)
  // Ranged: counts every ranged read; the fetch pool runs a read's parts in parallel (may be null).
  std::shared_ptr<RangeReadCounters> counters;
  std::shared_ptr<ThreadPool> fetch_pool;
  std::optional<int64_t> mmap_size;  // downloaded shards: PRAGMA mmap_size (none: the whole file)
  // A folder store (LocalStore): each shard is read where it lies (no copy into the cache), verified
  // once (size, digest) through the descriptor it is then read through. A shard file group or others
  // may write is downloaded into the cache instead, as from any other store.
  bool in_place = false;
};

// One shard fetched from the store into the cache (for the reader's shard_download metric event).
struct ShardDownload {
  int64_t db_id = 0;
  int64_t bytes = 0;
  double elapsed_ms = 0;  // download and verification
};

// A borrowed searcher. Movable; releases its borrow when destroyed. The cache must outlive it.
class ShardLease {
 public:
  ShardLease() = default;
  ~ShardLease();
  ShardLease(ShardLease&& other) noexcept;
  ShardLease& operator=(ShardLease&& other) noexcept;
  ShardLease(const ShardLease&) = delete;
  ShardLease& operator=(const ShardLease&) = delete;

  ShardSearcher& searcher() const;
  ShardSearcher* operator->() const { return &searcher(); }
  explicit operator bool() const { return entry_ != nullptr; }
  // Gives the borrow back early; the lease is empty afterwards.
  void Release();

 private:
  friend class ShardCache;
  ShardLease(ShardCache* cache, std::shared_ptr<ShardCacheEntry> entry);

  ShardCache* cache_ = nullptr;
  std::shared_ptr<ShardCacheEntry> entry_;
};

class ShardCache {
 public:
  // max_open = 0 keeps every searcher open.
  // record_downloads keeps a list of completed downloads for TakeDownloads (off: nothing is kept).
  ShardCache(std::shared_ptr<ObjectStore> store, std::filesystem::path cache_dir, int64_t dim,
             Metric metric, int64_t max_open, bool record_downloads = false, ShardAccess access = {});
  // Retires everything; leases still out must be released before the cache is destroyed.
  ~ShardCache();
  ShardCache(const ShardCache&) = delete;
  ShardCache& operator=(const ShardCache&) = delete;

  // Borrows the searcher for `loc`, downloading, verifying and opening the shard on first use.
  // Corruption when the bytes do not match loc.size / loc.digest (the file is then deleted).
  Result<ShardLease> Acquire(const ShardLocation& loc);
  // Retires every open searcher (each closes when unborrowed) and empties the LRU, e.g. when the
  // reader swaps manifests. Loads in flight at the time serve their caller once and then close.
  void RetireAll();
  // The downloads completed since the last call (empty unless record_downloads), so the caller can
  // report them outside the cache's locks.
  std::vector<ShardDownload> TakeDownloads();

  // Searchers open now, including retired ones still borrowed.
  int64_t open_count() const;
  // Searchers held in the LRU.
  int64_t cached_count() const;
  // "db=00003-<identity>": the folder holding a shard's cached file.
  static std::string CacheDirName(const ShardLocation& loc);
  // Removes the partial downloads killed processes left in `cache_dir`'s shard folders; a folder
  // whose download lock a live process holds (in this process or another) is left alone. Returns
  // how many files went.
  static int64_t RemoveStaleDownloads(const std::filesystem::path& cache_dir);
  // The lock a shard folder's users hold shared (a live snapshot's cache) and a pruner exclusive.
  static constexpr std::string_view kUseLockName = ".use.lock";
  // The lock a download holds on its shard folder.
  static constexpr std::string_view kDownloadLockName = ".download.lock";

 private:
  friend class ShardLease;
  using LruList = std::list<std::shared_ptr<ShardCacheEntry>>;  // front = most recently used

  std::optional<ShardLease> TryBorrowCached(const std::string& name);
  // An open descriptor of the shard's cached file, verified (now, or before with the same
  // identity), downloading it first when there is no good copy. The caller owns the descriptor.
  Result<int> OpenVerifiedFile(const ShardLocation& loc, const std::string& name);
  // The cached copy open and verified, or nullopt when there is none (a bad one is removed).
  Result<std::optional<int>> OpenCachedCopy(const ShardLocation& loc, const std::string& name,
                                            const std::filesystem::path& final_path);
  // Downloads into a temp name, verifies through an open descriptor, renames into final_path.
  // Needs the shard folder's download lock held.
  Result<int> DownloadVerified(const ShardLocation& loc, const std::string& name,
                               const std::filesystem::path& final_path);
  // A folder store's shard opened where it lies and verified (once per file identity); nullopt when
  // group or others may write the file (it is then downloaded).
  Result<std::optional<int>> OpenInPlace(const ShardLocation& loc, const std::string& name);
  // Takes the shard folder's use lock (shared) for the cache's lifetime, creating the folder.
  Status HoldUseLock(const std::string& name);
  // The searcher of a shard read in place through ranged reads.
  Result<std::unique_ptr<ShardSearcher>> OpenRanged(const ShardLocation& loc);
  ShardLease Install(const std::string& name, std::unique_ptr<ShardSearcher> searcher,
                     int64_t generation);
  void Release(const std::shared_ptr<ShardCacheEntry>& entry);

  // The *Locked helpers need mu_ held; closed searchers go to `graveyard` so they are destroyed
  // after the lock is dropped.
  void RetireLocked(ShardCacheEntry& entry,
                    std::vector<std::unique_ptr<ShardSearcher>>* graveyard);
  void EvictOverflowLocked(std::vector<std::unique_ptr<ShardSearcher>>* graveyard);
  void PruneLoadLocksLocked();

  const std::shared_ptr<ObjectStore> store_;
  const std::filesystem::path cache_dir_;
  const int64_t dim_;
  const Metric metric_;
  const int64_t max_open_;
  const bool record_downloads_;
  const ShardAccess access_;

  mutable std::mutex mu_;
  LruList lru_;
  std::unordered_map<std::string, LruList::iterator> index_;
  // One lock per shard so a cold shard is downloaded and opened once, outside mu_.
  std::unordered_map<std::string, std::shared_ptr<std::mutex>> load_locks_;
  // Cache folders whose file this process downloaded or re-verified, and what that file was.
  std::unordered_map<std::string, FileIdentity> verified_;
  // The use locks this cache holds, by cache folder name (released when the cache goes).
  std::unordered_map<std::string, FileLock> use_locks_;
  int64_t generation_ = 0;
  int64_t open_count_ = 0;
  std::vector<ShardDownload> downloads_;
};

}  // namespace shardvec
