#include "read/shard_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/digest.h"
#include "shard/shard_builder.h"
#include "store/local_store.h"
#include "support/forwarding_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int64_t kDim = 8;
constexpr int64_t kRows = 40;

// Delegates to another store and counts downloads; GetToFile can be slowed to widen races.
class CountingStore : public testing::ForwardingStore {
 public:
  explicit CountingStore(std::shared_ptr<ObjectStore> inner) : ForwardingStore(std::move(inner)) {}

  int downloads() const { return downloads_.load(); }
  void set_download_delay(std::chrono::milliseconds delay) { delay_ = delay; }

  Status GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) override {
    ++downloads_;
    std::this_thread::sleep_for(delay_);
    return ForwardingStore::GetToFile(key, dest, max_bytes);
  }

 private:
  std::atomic<int> downloads_{0};
  std::chrono::milliseconds delay_{0};
};

void FlipByteInTheMiddle(const fs::path& path) {
  std::string bytes = testing::ReadText(path);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::WriteText(path, bytes);
}

std::vector<std::string> FileNamesIn(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ShardCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = std::make_shared<LocalStore>(tmp_.path() / "store");
    store_ = std::make_shared<CountingStore>(local_);
  }

  // Builds shard `db_id` (row r is the r-th row of data(db_id)), uploads it, and describes it.
  ShardLocation PublishShard(int64_t db_id) {
    const fs::path built = tmp_.path() / "build" / std::to_string(db_id) / "shard.db";
    fs::create_directories(built.parent_path());
    const Matrix vectors = Data(db_id);
    auto builder = ShardBuilder::Create(built, {kDim, Metric::kL2});
    EXPECT_TRUE(builder.ok()) << builder.status().ToString();
    for (int64_t row = 0; row < kRows; ++row) {
      const RecordId id(db_id * 1000 + row);
      EXPECT_TRUE((*builder)->Add(id, vectors.row(row), std::nullopt).ok());
    }
    EXPECT_TRUE((*builder)->Seal().ok());
    ShardLocation loc;
    loc.db_id = db_id;
    loc.key = fmt::format("shards/run_id=r1/db={:05d}/attempt=00/shard.db", db_id);
    EXPECT_TRUE(local_->PutFile(loc.key, built).ok());
    const FileDigest digest = *DigestFile(built);
    loc.size = digest.size;
    loc.digest = digest.digest;
    loc.identity = fmt::format("ckpt{}", db_id);
    return loc;
  }

  static Matrix Data(int64_t db_id) { return testing::RandomMatrix(kRows, kDim, 100 + db_id); }

  std::unique_ptr<ShardCache> MakeCache(int64_t max_open) {
    return std::make_unique<ShardCache>(store_, tmp_.path() / "cache", kDim, Metric::kL2, max_open);
  }

  fs::path CachedFile(const ShardLocation& loc) {
    return tmp_.path() / "cache" / ShardCache::CacheDirName(loc) / "shard.db";
  }

  // The shard answers a query for its own row with that row's id.
  static void ExpectServes(ShardSearcher& searcher, int64_t db_id, int64_t row = 5) {
    auto hits = searcher.Search(Data(db_id).row(row), 1);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, RecordId(db_id * 1000 + row));
  }

  TempDir tmp_;
  std::shared_ptr<LocalStore> local_;
  std::shared_ptr<CountingStore> store_;
};

TEST_F(ShardCacheTest, FirstAcquireDownloadsVerifiesAndLaterOnesReuse) {
  const ShardLocation loc = PublishShard(3);
  auto cache = MakeCache(0);
  auto lease = cache->Acquire(loc);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ExpectServes(lease->searcher(), 3);
  EXPECT_EQ(store_->downloads(), 1);
  EXPECT_EQ(cache->open_count(), 1);
  EXPECT_EQ(CachedFile(loc), tmp_.path() / "cache" / "db=00003-ckpt3" / "shard.db");
  // Only the final file and the folder's download lock are left: no temp files beside them.
  EXPECT_EQ(FileNamesIn(CachedFile(loc).parent_path()), (std::vector<std::string>{".download.lock", ".use.lock", "shard.db"}));
  EXPECT_EQ(DigestFile(CachedFile(loc))->digest, *loc.digest);

  ShardSearcher* first = &lease->searcher();
  lease->Release();
  auto again = cache->Acquire(loc);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(&again->searcher(), first);
  EXPECT_EQ(store_->downloads(), 1);
}

TEST_F(ShardCacheTest, FileLeftByAnEarlierProcessIsReverifiedBeforeReuse) {
  const ShardLocation loc = PublishShard(0);
  {
    auto cache = MakeCache(0);
    ASSERT_TRUE(cache->Acquire(loc).ok());
  }
  {
    auto cache = MakeCache(0);  // a "new process" over the same folder
    auto lease = cache->Acquire(loc);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    ExpectServes(lease->searcher(), 0);
    EXPECT_EQ(store_->downloads(), 1);
  }
  FlipByteInTheMiddle(CachedFile(loc));
  auto cache = MakeCache(0);
  auto lease = cache->Acquire(loc);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ExpectServes(lease->searcher(), 0);
  EXPECT_EQ(store_->downloads(), 2);  // the damaged copy was replaced
  EXPECT_EQ(DigestFile(CachedFile(loc))->digest, *loc.digest);
}

TEST_F(ShardCacheTest, CorruptObjectIsRefusedDeletedAndNeverServed) {
  const ShardLocation loc = PublishShard(3);
  FlipByteInTheMiddle(local_->root() / loc.key);
  const std::string actual = DigestFile(local_->root() / loc.key)->digest;
  auto cache = MakeCache(0);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto lease = cache->Acquire(loc);
    ASSERT_EQ(lease.status().code(), StatusCode::kCorruption);
    EXPECT_EQ(lease.status().kind(), ErrorKind::kShardVerification);
    EXPECT_EQ(lease.status().message(),
              fmt::format("shard 3 failed verification: expected {} ({} bytes), got {} ({} bytes)",
                          *loc.digest, loc.size, actual, loc.size));
  }
  EXPECT_EQ(store_->downloads(), 2);  // a refused shard is never cached
  EXPECT_FALSE(fs::exists(CachedFile(loc)));
  EXPECT_EQ(FileNamesIn(CachedFile(loc).parent_path()), (std::vector<std::string>{".download.lock", ".use.lock"}));
  EXPECT_EQ(cache->open_count(), 0);
  EXPECT_EQ(cache->cached_count(), 0);
}

TEST_F(ShardCacheTest, SizeMismatchWithoutDigestIsCorruption) {
  ShardLocation loc = PublishShard(1);
  loc.digest.reset();
  loc.size += 1;
  auto cache = MakeCache(0);
  auto lease = cache->Acquire(loc);
  ASSERT_EQ(lease.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(lease.status().kind(), ErrorKind::kShardVerification);
  EXPECT_EQ(lease.status().message(),
            fmt::format("shard 1 failed verification: expected {} bytes, got {} bytes", loc.size,
                        loc.size - 1));
  EXPECT_FALSE(fs::exists(CachedFile(loc)));
}

TEST_F(ShardCacheTest, MissingObjectIsNotFoundNamingTheKey) {
  ShardLocation loc = PublishShard(2);
  loc.key = "shards/run_id=r1/db=00002/attempt=07/shard.db";
  auto cache = MakeCache(0);
  auto lease = cache->Acquire(loc);
  ASSERT_EQ(lease.status().code(), StatusCode::kNotFound);
  EXPECT_NE(lease.status().message().find("shard 2"), std::string::npos);
  EXPECT_NE(lease.status().message().find("attempt=07"), std::string::npos);
}

TEST_F(ShardCacheTest, SnapshotDimensionMismatchIsCorruptionNamingTheShard) {
  const ShardLocation loc = PublishShard(4);
  ShardCache cache(store_, tmp_.path() / "cache", kDim + 1, Metric::kL2, 0);
  auto lease = cache.Acquire(loc);
  ASSERT_EQ(lease.status().code(), StatusCode::kCorruption);
  EXPECT_NE(lease.status().message().find("shard 4"), std::string::npos);
  EXPECT_EQ(cache.open_count(), 0);
}

TEST_F(ShardCacheTest, ConcurrentAcquireFromEightThreadsDownloadsOnce) {
  const ShardLocation loc = PublishShard(0);
  store_->set_download_delay(std::chrono::milliseconds(100));
  auto cache = MakeCache(0);
  std::vector<ShardSearcher*> seen(8, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto lease = cache->Acquire(loc);
      if (!lease.ok()) {
        ++failures;
        return;
      }
      seen[t] = &lease->searcher();
      auto hits = lease->searcher().Search(Data(0).row(t), 1);
      if (!hits.ok() || hits->empty() || (*hits)[0].id != RecordId(int64_t{t})) ++failures;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->downloads(), 1);
  EXPECT_EQ(cache->open_count(), 1);
  for (ShardSearcher* searcher : seen) EXPECT_EQ(searcher, seen[0]);
}

TEST_F(ShardCacheTest, LruKeepsAtMostMaxOpenAndReusesEvictedFiles) {
  std::vector<ShardLocation> locs;
  for (int64_t db_id = 0; db_id < 4; ++db_id) locs.push_back(PublishShard(db_id));
  auto cache = MakeCache(2);
  for (const ShardLocation& loc : locs) {
    auto lease = cache->Acquire(loc);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    ExpectServes(lease->searcher(), loc.db_id);
    EXPECT_LE(cache->open_count(), 2);
  }
  EXPECT_EQ(cache->open_count(), 2);
  EXPECT_EQ(cache->cached_count(), 2);
  EXPECT_EQ(store_->downloads(), 4);

  // Shard 2 is the LRU one; touching it makes 3 the victim of the next load.
  ShardSearcher* two_before = nullptr;
  {
    auto lease = cache->Acquire(locs[2]);
    ASSERT_TRUE(lease.ok());
    two_before = &lease->searcher();
  }
  auto reloaded = cache->Acquire(locs[0]);  // evicted earlier: reopened from the cached file
  ASSERT_TRUE(reloaded.ok());
  ExpectServes(reloaded->searcher(), 0);
  EXPECT_EQ(store_->downloads(), 4);
  EXPECT_EQ(cache->open_count(), 2);
  reloaded->Release();
  auto two_after = cache->Acquire(locs[2]);
  ASSERT_TRUE(two_after.ok());
  EXPECT_EQ(&two_after->searcher(), two_before);  // 2 survived; 3 was the victim
  EXPECT_EQ(store_->downloads(), 4);
}

TEST_F(ShardCacheTest, EvictedBorrowedSearcherStaysUsableUntilReleased) {
  const ShardLocation zero = PublishShard(0);
  const ShardLocation one = PublishShard(1);
  auto cache = MakeCache(1);
  auto lease0 = cache->Acquire(zero);
  ASSERT_TRUE(lease0.ok());
  auto lease1 = cache->Acquire(one);  // evicts shard 0 while it is borrowed
  ASSERT_TRUE(lease1.ok());
  EXPECT_EQ(cache->cached_count(), 1);
  EXPECT_EQ(cache->open_count(), 2);
  ExpectServes(lease0->searcher(), 0);
  lease0->Release();
  EXPECT_EQ(cache->open_count(), 1);
  ExpectServes(lease1->searcher(), 1);
}

TEST_F(ShardCacheTest, RetireAllClosesIdleSearchersNowAndBorrowedOnesOnRelease) {
  const ShardLocation zero = PublishShard(0);
  const ShardLocation one = PublishShard(1);
  auto cache = MakeCache(0);
  auto held = cache->Acquire(zero);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(cache->Acquire(one).ok());
  EXPECT_EQ(cache->open_count(), 2);

  cache->RetireAll();
  EXPECT_EQ(cache->cached_count(), 0);
  EXPECT_EQ(cache->open_count(), 1);  // shard 1 closed; shard 0 is still borrowed
  ExpectServes(held->searcher(), 0);
  ShardSearcher* retired = &held->searcher();

  // A fresh acquire opens a new searcher (from the verified file) beside the retired one.
  auto fresh = cache->Acquire(zero);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(&fresh->searcher(), retired);
  EXPECT_EQ(cache->open_count(), 2);
  held->Release();
  EXPECT_EQ(cache->open_count(), 1);
  EXPECT_EQ(store_->downloads(), 2);
}

TEST_F(ShardCacheTest, MovedLeasesReleaseExactlyOnce) {
  const ShardLocation loc = PublishShard(0);
  auto cache = MakeCache(0);
  ShardLease a = std::move(cache->Acquire(loc)).value();
  ShardLease b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from leases are empty
  ASSERT_TRUE(b);
  ShardLease c;
  c = std::move(b);
  cache->RetireAll();
  EXPECT_EQ(cache->open_count(), 1);  // one borrow outstanding, held by c
  c = ShardLease();
  EXPECT_EQ(cache->open_count(), 0);
}

// A verified shard stays bound to the file that was verified: a file swapped in at its cache path
// later (by anything that can write the folder) is checked again before any search reads it, so
// forged rows are never served; the verified copy comes back from the store.
TEST_F(ShardCacheTest, AFileSwappedInAfterVerificationIsNeverServed) {
  const ShardLocation zero = PublishShard(0);
  const ShardLocation one = PublishShard(1);
  auto cache = MakeCache(1);
  {
    auto lease = cache->Acquire(zero);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    ExpectServes(lease->searcher(), 0);
  }
  // A valid shard with other rows (shard 1's file) replaces shard 0's cached file.
  const fs::path forged = CachedFile(zero).parent_path() / "forged";
  fs::copy_file(local_->root() / one.key, forged);
  ASSERT_EQ(::rename(forged.c_str(), CachedFile(zero).c_str()), 0);
  {
    auto lease = cache->Acquire(zero);  // the searcher open before the swap: still the verified file
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    ExpectServes(lease->searcher(), 0);
  }
  ASSERT_TRUE(cache->Acquire(one).ok());  // evicts shard 0 (max_open 1)
  auto reopened = cache->Acquire(zero);   // opened again from its path
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ExpectServes(reopened->searcher(), 0);
  EXPECT_EQ(store_->downloads(), 3);  // the swapped file failed verification and was fetched again
  EXPECT_EQ(DigestFile(CachedFile(zero))->digest, *zero.digest);
}

// The searcher reads the very file behind the descriptor it was given, whatever its path names.
TEST_F(ShardCacheTest, APinnedSearcherReadsTheFileBehindItsDescriptor) {
  const ShardLocation zero = PublishShard(0);
  const ShardLocation one = PublishShard(1);
  const fs::path path = tmp_.path() / "pinned.db";
  fs::copy_file(local_->root() / zero.key, path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const fs::path other = tmp_.path() / "other.db";
  fs::copy_file(local_->root() / one.key, other);
  ASSERT_EQ(::rename(other.c_str(), path.c_str()), 0);  // the path now names shard 1's file
  auto searcher = ShardSearcher::OpenPinned(fd, path, kDim, Metric::kL2, "0", /*max_connections=*/4);
  ASSERT_TRUE(searcher.ok()) << searcher.status().ToString();
  // Parallel searches open more connections, each through the descriptor.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int row = 0; row < 10; ++row) {
        auto hits = (*searcher)->Search(Data(0).row(row + t), 1);
        if (!hits.ok() || hits->size() != 1 || (*hits)[0].id != RecordId(int64_t{row + t})) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Partial downloads of killed readers go when a reader opens the cache; one a live process is
// writing (its folder's download lock held, here by a child process) stays until that process is gone.
TEST_F(ShardCacheTest, StalePartialDownloadsAreRemovedLiveOnesKept) {
  const fs::path cache_dir = tmp_.path() / "cache";
  const fs::path dead = cache_dir / "db=00000-a";
  const fs::path live = cache_dir / "db=00001-b";
  fs::create_directories(dead);
  fs::create_directories(live);
  testing::WriteText(dead / "shard.db", "kept: a finished file");
  testing::WriteText(dead / ".shard.db.tmp.0123456789ab", "partial");
  testing::WriteText(dead / "..shard.db.tmp.0123456789ab.tmp.ba9876543210", "a store's own partial");
  testing::WriteText(live / ".shard.db.tmp.111111111111", "partial being written");
  {
    testing::LockHolder writer(live / ".download.lock");
    EXPECT_EQ(ShardCache::RemoveStaleDownloads(cache_dir), 2);
    EXPECT_EQ(FileNamesIn(dead), (std::vector<std::string>{".download.lock", "shard.db"}));
    EXPECT_EQ(FileNamesIn(live), (std::vector<std::string>{".download.lock", ".shard.db.tmp.111111111111"}));
  }
  EXPECT_EQ(ShardCache::RemoveStaleDownloads(cache_dir), 1);  // its writer is gone now
  EXPECT_EQ(FileNamesIn(live), std::vector<std::string>{".download.lock"});
}

TEST(ShardCacheDirNameTest, PlainIdentitiesAreKeptOthersAreMadeSafeAndDistinct) {
  ShardLocation loc;
  loc.db_id = 3;
  loc.identity = "0123abcd";
  EXPECT_EQ(ShardCache::CacheDirName(loc), "db=00003-0123abcd");
  loc.identity = "file:///a/b/shard.db";
  const std::string url_name = ShardCache::CacheDirName(loc);
  EXPECT_EQ(url_name.find('/'), std::string::npos);
  EXPECT_EQ(url_name.rfind("db=00003-file", 0), 0u);
  loc.identity = "file:///a_b/shard.db";
  EXPECT_NE(ShardCache::CacheDirName(loc), url_name);
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

TEST_F(ShardCacheTest, MmapSizeReachesEveryConnectionOfADownloadedShard) {
  const ShardLocation loc = PublishShard(1);
  auto cache1 = MakeCache(0);
  auto defaults = cache1->Acquire(loc);
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  // By default SQLite maps the whole file.
  EXPECT_EQ(*(*defaults)->MmapSize(), loc.size);
  ShardAccess access;
  access.mmap_size = 12345;
  ShardCache cache(store_, tmp_.path() / "cache2", kDim, Metric::kL2, 0, false, access);
  auto lease = cache.Acquire(loc);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(*(*lease)->MmapSize(), 12345);
  ExpectServes(lease->searcher(), 1);
  access.mmap_size = 0;  // mapping off
  ShardCache unmapped(store_, tmp_.path() / "cache3", kDim, Metric::kL2, 0, false, access);
  auto off = unmapped.Acquire(loc);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(*(*off)->MmapSize(), 0);
  ExpectServes(off->searcher(), 1);
}

TEST_F(ShardCacheTest, RangedAccessServesAShardWithoutDownloadingIt) {
  const ShardLocation loc = PublishShard(2);
  ShardAccess access;
  access.ranged = true;
  access.page_cache_pages = 8;
  access.counters = std::make_shared<RangeReadCounters>();
  ShardCache cache(store_, tmp_.path() / "cache", kDim, Metric::kL2, 0, false, access);
  auto lease = cache.Acquire(loc);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  for (int64_t row : {0, 7, 39}) ExpectServes(lease->searcher(), 2, row);
  EXPECT_EQ(store_->downloads(), 0);
  EXPECT_FALSE(fs::exists(tmp_.path() / "cache"));  // nothing written locally
  EXPECT_GT(access.counters->bytes_fetched.load(), 0);
  EXPECT_LE(access.counters->bytes_fetched.load(), loc.size);
}

TEST_F(ShardCacheTest, RangedAccessRefusesAnObjectOfAnotherSizeOrNotSqlite) {
  ShardLocation loc = PublishShard(3);
  ShardAccess access;
  access.ranged = true;
  ShardCache cache(store_, tmp_.path() / "cache", kDim, Metric::kL2, 0, false, access);
  ShardLocation wrong = loc;
  wrong.size += 1;
  auto lease = cache.Acquire(wrong);
  EXPECT_EQ(lease.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(lease.status().kind(), ErrorKind::kShardVerification);
  EXPECT_NE(lease.status().message().find(std::to_string(loc.size)), std::string::npos) << lease.status().message();
  ASSERT_TRUE(local_->Delete(loc.key).ok());
  ASSERT_TRUE(local_->Put(loc.key, std::string(static_cast<size_t>(loc.size), 'x')).ok());
  lease = cache.Acquire(loc);
  EXPECT_EQ(lease.status().code(), StatusCode::kCorruption);
  EXPECT_NE(lease.status().message().find("not an SQLite database"), std::string::npos) << lease.status().message();
}

}  // namespace
}  // namespace shardvec
