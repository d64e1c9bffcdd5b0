// The reader's shard cache under a byte budget: unused shards pruned after refresh and downloads
// (least recently used first), never a shard a live snapshot uses; a folder store's shards read in
// place (nothing copied into the cache); `ListShardCache` / `PruneShardCache`.
#include "shardvec/shard_cache_admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "common/file_lock.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/forwarding_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The bytes of every regular file under `dir` (what the cache holds on disk).
int64_t BytesUnder(const fs::path& dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file() && !it->is_symlink()) bytes += static_cast<int64_t>(it->file_size());
  }
  return bytes;
}

int64_t ShardFilesUnder(const fs::path& dir) {
  int64_t n = 0;
  for (const std::string& f : testing::ListFiles(dir)) n += f.ends_with("shard.db") ? 1 : 0;
  return n;
}

// A folder store seen through a wrapper, so the reader downloads its shards as from any remote store.
// A download of a key containing `block_key` waits until released (bounded), after saying so.
class DownloadingStore : public testing::ForwardingStore {
 public:
  explicit DownloadingStore(const fs::path& root) : ForwardingStore(std::make_shared<LocalStore>(root)) {}
  Status GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) override {
    std::shared_future<void> gate;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!block_key.empty() && key.find(block_key) != std::string_view::npos && !reached_set_) {
        reached_set_ = true;
        reached_.set_value();
        gate = release_.get_future().share();
      }
    }
    if (gate.valid()) gate.wait_for(std::chrono::seconds(60));
    return ForwardingStore::GetToFile(key, dest, max_bytes);
  }
  std::string block_key;
  std::future<void> Reached() { return reached_.get_future(); }
  void Release() { release_.set_value(); }

 private:
  std::mutex mu_;
  bool reached_set_ = false;
  std::promise<void> reached_;
  std::promise<void> release_;
};

class ShardCacheBudgetTest : public ::testing::Test {
 protected:
  // Publishes a new snapshot of `rows` random rows (a new run: new shard files).
  BuildResult Publish(uint64_t seed, int64_t rows = 400, int64_t dim = 16, Metric metric = Metric::kL2) {
    WriteConfig c;
    c.store = Store();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = dim;
    c.index.metric = metric;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 2;
    data_ = testing::RandomMatrix(rows, dim, seed);
    VectorRecordSource source(testing::MakeRecords(data_, false));
    auto built = WriteSharded(c, source);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return built.ok() ? *built : BuildResult{};
  }
  std::string Store() const { return (tmp_ / "store").string(); }
  fs::path Cache() const { return tmp_ / "cache"; }
  ReaderOptions Options(int64_t budget) const {
    ReaderOptions o;
    o.store = Store();
    o.cache_dir = Cache().string();
    o.max_cache_bytes = budget;
    return o;
  }
  // Searches every shard for row 7 of the data published last; it must be its own nearest (id 21:
  // MakeRecords ids are 3 x row).
  void ExpectAnswers(ShardedVectorReader& reader) {
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1};
    auto r = reader.Search(std::span<const float>(data_.row(7), static_cast<size_t>(data_.cols)), 1, all);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->results.at(0).id, RecordId(int64_t{21}));
  }
  Matrix data_;
  testing::TempDir tmp_;
};

TEST_F(ShardCacheBudgetTest, TheCacheStaysUnderItsBudgetAcross20Refreshes) {
  Publish(1);
  auto store = std::make_shared<DownloadingStore>(Store());
  // A snapshot's two shards are about 1/3 of the budget: the current one plus up to two old ones fit.
  const int64_t snapshot_bytes = [&] {
    auto probe = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes), store);
    int64_t total = 0;
    for (const ShardDetail& d : (*probe)->ShardDetails()) total += d.db_bytes;
    return total;
  }();
  fs::remove_all(Cache());
  const int64_t budget = snapshot_bytes * 3 + snapshot_bytes / 2;
  auto reader = ShardedVectorReader::Open(Options(budget), store);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ExpectAnswers(**reader);
  std::vector<int64_t> sizes;
  for (int round = 0; round < 20; ++round) {
    Publish(100 + static_cast<uint64_t>(round));
    auto refreshed = (*reader)->Refresh();
    ASSERT_TRUE(refreshed.ok() && *refreshed) << refreshed.status().ToString();
    ExpectAnswers(**reader);  // downloads the new snapshot's two shards
    sizes.push_back(BytesUnder(Cache()));
    EXPECT_LE(sizes.back(), budget) << "after refresh " << round + 1;
  }
  std::string shown;
  for (int64_t s : sizes) shown += std::to_string(s) + " ";
  std::cout << "[ cache bytes after each of 20 refreshes, budget " << budget << " (one snapshot " << snapshot_bytes
            << ") ] " << shown << "\n";
  // The budget holds at least the current snapshot and the two most recent others (shards differ in
  // size by a page, so sometimes one more shard fits): it was not merely emptied.
  EXPECT_GE(ShardFilesUnder(Cache()), 6);
  EXPECT_GE(sizes.back(), snapshot_bytes * 3);

  // Budget 0 keeps only what a live snapshot uses.
  auto strict = ShardedVectorReader::Open(Options(0), store);
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  ExpectAnswers(**strict);
  EXPECT_EQ(ShardFilesUnder(Cache()), 2);
  EXPECT_EQ(BytesUnder(Cache()), snapshot_bytes);
}

TEST_F(ShardCacheBudgetTest, AnInFlightSearchKeepsItsShardsWhileARefreshPrunes) {
  Publish(1);
  auto store = std::make_shared<DownloadingStore>(Store());
  auto reader = ShardedVectorReader::Open(Options(0), store);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const Matrix old_data = data_;
  // Shard 0 is cached; the search below then waits in shard 1's download.
  SearchOptions first;
  first.shard_ids = std::vector<int64_t>{0};
  ASSERT_TRUE((*reader)->Search(std::span<const float>(old_data.row(0), 16), 1, first).ok());
  ASSERT_EQ(ShardFilesUnder(Cache()), 1);
  store->block_key = "db=00001";
  std::future<void> reached = store->Reached();
  auto in_flight = std::async(std::launch::async, [&] {
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1};
    return (*reader)->Search(std::span<const float>(old_data.row(7), 16), 1, all);
  });
  ASSERT_EQ(reached.wait_for(std::chrono::seconds(60)), std::future_status::ready);

  Publish(2);  // new shards: the old snapshot's are unused by the current one
  auto refreshed = (*reader)->Refresh();
  ASSERT_TRUE(refreshed.ok() && *refreshed) << refreshed.status().ToString();
  // The refresh pruned with budget 0, but the old snapshot is still held by the search: its cached
  // shard stays on disk.
  EXPECT_EQ(ShardFilesUnder(Cache()), 1);
  store->Release();
  auto answered = in_flight.get();
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  EXPECT_EQ(answered->results.at(0).id, RecordId(int64_t{21}));
  EXPECT_EQ(answered->results.at(0).score, 0.0);

  // Once the search let go, the next prune (after a download) removes the old snapshot's shards.
  ExpectAnswers(**reader);
  EXPECT_EQ(ShardFilesUnder(Cache()), 2);
  EXPECT_EQ(BytesUnder(Cache()), [&] {
    int64_t total = 0;
    for (const ShardDetail& d : (*reader)->ShardDetails()) total += d.db_bytes;
    return total;
  }());
}

TEST_F(ShardCacheBudgetTest, AFolderStoreIsReadInPlaceNotCopied) {
  Publish(1, 2000);
  auto reader = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ExpectAnswers(**reader);
  EXPECT_EQ(ShardFilesUnder(Cache()), 0);
  EXPECT_EQ(BytesUnder(Cache()), 0);
  EXPECT_EQ((*reader)->Stats().shards_downloaded, 0);
  EXPECT_EQ((*reader)->Stats().bytes_downloaded, 0);
}

TEST_F(ShardCacheBudgetTest, AnInPlaceShardIsStillVerified) {
  BuildResult built = Publish(1);
  // One byte of shard 1 changed in place (same size): its digest no longer matches.
  fs::path shard;
  for (const std::string& f : testing::ListFiles(tmp_ / "store")) {
    if (f.find("db=00001") != std::string::npos && f.ends_with("shard.db")) shard = tmp_ / "store" / f;
  }
  ASSERT_FALSE(shard.empty());
  {
    std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-100, std::ios::end);
    file.put('\x7f');
  }
  auto reader = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SearchOptions one;
  one.shard_ids = std::vector<int64_t>{1};
  auto r = (*reader)->Search(std::span<const float>(data_.row(0), 16), 1, one);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(r.status().kind(), ErrorKind::kShardVerification);
  EXPECT_THAT(r.status().message(), HasSubstr("shard 1 failed verification"));

  // A symlink where the shard should be is refused, never followed.
  fs::remove(shard);
  fs::create_symlink("/etc/passwd", shard);
  auto fresh = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes));
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  auto linked = (*fresh)->Search(std::span<const float>(data_.row(0), 16), 1, one);
  ASSERT_FALSE(linked.ok());
  EXPECT_THAT(linked.status().message(), HasSubstr("symbolic link"));
  EXPECT_EQ(ShardFilesUnder(Cache()), 0);
}

TEST_F(ShardCacheBudgetTest, AShardOthersMayWriteIsCopiedIntoTheCache) {
  Publish(1);
  for (const std::string& f : testing::ListFiles(tmp_ / "store")) {
    if (f.ends_with("shard.db")) fs::permissions(tmp_ / "store" / f, fs::perms::group_write, fs::perm_options::add);
  }
  auto reader = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ExpectAnswers(**reader);
  EXPECT_EQ(ShardFilesUnder(Cache()), 2);
  EXPECT_EQ((*reader)->Stats().shards_downloaded, 2);
}

TEST_F(ShardCacheBudgetTest, ListAndPruneKeepWhatALiveReaderUses) {
  Publish(1);
  auto store = std::make_shared<DownloadingStore>(Store());
  {
    auto old_reader = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes), store);
    ASSERT_TRUE(old_reader.ok());
    ExpectAnswers(**old_reader);
  }
  Publish(2);
  auto reader = ShardedVectorReader::Open(Options(kDefaultMaxCacheBytes), store);
  ASSERT_TRUE(reader.ok());
  ExpectAnswers(**reader);

  auto listed = ListShardCache(Cache().string());
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 4u);
  int64_t in_use = 0, total = 0;
  for (const CachedShardFolder& f : *listed) {
    EXPECT_GT(f.bytes, 0) << f.name;
    in_use += f.in_use ? 1 : 0;
    total += f.bytes;
  }
  EXPECT_EQ(in_use, 2);
  EXPECT_EQ(total, BytesUnder(Cache()));

  auto pruned = PruneShardCache(Cache().string(), 0);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->removed_folders, 2);
  EXPECT_EQ(pruned->kept_folders, 2);
  EXPECT_EQ(pruned->kept_bytes, pruned->in_use_bytes);
  EXPECT_EQ(pruned->kept_bytes, BytesUnder(Cache()));
  EXPECT_EQ(ShardFilesUnder(Cache()), 2);
  ExpectAnswers(**reader);  // still served from the kept files, nothing downloaded again
  EXPECT_EQ((*reader)->Stats().shards_downloaded, 2);

  // Closed, its shards are unused: everything goes.
  reader->reset();
  pruned = PruneShardCache(Cache().string(), 0);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->removed_folders, 2);
  EXPECT_EQ(BytesUnder(Cache()), 0);

  EXPECT_EQ(PruneShardCache(Cache().string(), -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ListShardCache((tmp_ / "nope").string()).status().code(), StatusCode::kNotFound);
}

TEST_F(ShardCacheBudgetTest, ABudgetIsRefusedWhereItCannotTakeEffect) {
  Publish(1);
  ReaderOptions negative = Options(-1);
  auto refused = ShardedVectorReader::Open(negative);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("max_cache_bytes must be >= 0 (got -1)"));
  ReaderOptions ranged = Options(1 << 20);
  ranged.reader_mode = ReaderMode::kRange;
  auto range = ShardedVectorReader::Open(ranged);
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.status().message(), HasSubstr("max_cache_bytes (1048576) applies to the download tier"));
}

}  // namespace
}  // namespace shardvec
