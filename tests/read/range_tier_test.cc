// The reader's tiers (ReaderOptions::reader_mode): the range tier queries shards in place through
// ranged reads and answers exactly what the download tier answers, on a folder and on the S3 test
// server; auto picks a tier by the reference's thresholds; each tier's settings are checked.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "format/keys.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDim = 24;
constexpr int64_t kDbs = 4;

class RangeTierTest : public ::testing::Test {
 protected:
  virtual std::shared_ptr<ObjectStore> MakeStore() {
    auto store = OpenStore((tmp_ / "store").string());
    EXPECT_TRUE(store.ok());
    return store.ok() ? *store : nullptr;
  }
  void SetUp() override {
    store_ = MakeStore();
    ASSERT_TRUE(store_);
  }
  void Write(const Matrix& data, Metric metric = Metric::kL2, bool payloads = true) {
    WriteConfig c;
    c.store = store_->PrefixUrl();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data.cols;
    c.index.metric = metric;
    c.sharding.strategy = Strategy::kCluster;
    c.sharding.num_dbs = kDbs;
    c.sharding.train_centroids = true;
    c.allow_schema_change = true;  // each metric's snapshot replaces the other's in the same store
    std::vector<Record> records = testing::MakeRecords(data, false);
    if (!payloads) {
      for (Record& r : records) r.payload_json.reset();
    }
    VectorRecordSource source(std::move(records));
    auto built = WriteSharded(c, source, store_);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
  }
  ReaderOptions Options(ReaderMode mode) {
    ReaderOptions o;
    o.store = store_->PrefixUrl();
    o.cache_dir = (tmp_ / ("cache" + std::to_string(++readers_))).string();
    o.reader_mode = mode;
    return o;
  }
  std::unique_ptr<ShardedVectorReader> Open(const ReaderOptions& o) {
    auto r = ShardedVectorReader::Open(o, store_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  // Every query's hits over all shards: (id, score, payload).
  std::vector<std::vector<std::tuple<RecordId, double, std::string>>> SearchAll(ShardedVectorReader& reader,
                                                                             const Matrix& queries) {
    SearchOptions all;
    all.num_probes = kDbs;
    std::vector<std::vector<std::tuple<RecordId, double, std::string>>> out;
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto r = reader.Search(std::span<const float>(queries.row(q), static_cast<size_t>(queries.cols)), 10, all);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return out;
      out.emplace_back();
      for (const SearchHit& h : r->results) out.back().emplace_back(h.id, h.score, h.payload_json.value_or("-"));
    }
    return out;
  }
  int64_t ShardBytes(ShardedVectorReader& reader) {
    int64_t total = 0;
    for (const ShardDetail& d : reader.ShardDetails()) total += d.db_bytes;
    return total;
  }

  // Both tiers answer the same hits, bit for bit, and those are the exact top-k of a brute force;
  // the range tier downloads nothing.
  void ExpectSameHitsAsTheDownloadTier() {
    for (Metric metric : {Metric::kL2, Metric::kCosine}) {
      SCOPED_TRACE(MetricName(metric));
      store_ = MakeStore();
      const Matrix data = testing::ClusteredMatrix(3000, kDim, 8, 5);
      const Matrix queries = testing::RandomMatrix(25, kDim, 6);
      Write(data, metric);
      auto download = Open(Options(ReaderMode::kDownload));
      const ReaderOptions range_options = Options(ReaderMode::kRange);
      auto range = Open(range_options);
      ASSERT_TRUE(download && range);
      const auto expected = SearchAll(*download, queries);
      EXPECT_EQ(SearchAll(*range, queries), expected);
      // Against an independent brute force: the same distances rank by rank, and the same ids but
      // for near-ties (distances within float rounding may swap).
      int64_t same_ids = 0, total = 0;
      for (int64_t q = 0; q < queries.rows; ++q) {
        const auto truth = testing::BruteForce(data, queries.row(q), metric, 10);
        const auto& got = expected[static_cast<size_t>(q)];
        ASSERT_EQ(got.size(), truth.size());
        for (size_t k = 0; k < truth.size(); ++k) {
          EXPECT_NEAR(std::get<1>(got[k]), truth[k].first, 1e-4 * std::max(1.0, truth[k].first)) << q << " rank " << k;
          same_ids += std::get<0>(got[k]) == RecordId(truth[k].second * 3);
          ++total;
        }
      }
      EXPECT_GE(same_ids, total - 4) << same_ids << " of " << total << " ids as the brute force's";
      const ReadStats ranged = range->Stats();
      EXPECT_EQ(ranged.reader_mode, ReaderMode::kRange);
      EXPECT_EQ(ranged.shards_downloaded, 0);
      EXPECT_GT(ranged.range_bytes_fetched, 0);
      EXPECT_LE(ranged.range_bytes_fetched, ShardBytes(*range));
      EXPECT_TRUE(testing::ListFiles(range_options.cache_dir).empty());
      EXPECT_EQ(download->Stats().reader_mode, ReaderMode::kDownload);
      // A folder store's shards are read in place (nothing downloaded); an S3 store's are downloaded.
      const bool in_place = dynamic_cast<LocalStore*>(store_.get()) != nullptr;
      EXPECT_EQ(download->Stats().shards_downloaded, in_place ? 0 : kDbs);
      EXPECT_EQ(download->Stats().bytes_downloaded, in_place ? 0 : ShardBytes(*download));
      EXPECT_EQ(download->Stats().range_bytes_fetched, 0);
    }
  }

  // A cold query reads every vector of the shards it probes, the id map and the pages on the way,
  // not the payloads (here 3 KB a row, most of each file); a warm one only its hits' payloads.
  void ExpectColdQueriesReadVectorsNotPayloads() {
    const Matrix data = testing::RandomMatrix(8000, 64, 8);
    std::vector<Record> records = testing::MakeRecords(data, false);
    for (Record& r : records) r.payload_json = "{\"text\": \"" + std::string(3000, 'x') + "\"}";
    WriteConfig c;
    c.store = store_->PrefixUrl();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = 64;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = kDbs;
    VectorRecordSource source(std::move(records));
    ASSERT_TRUE(WriteSharded(c, source, store_).ok());
    auto range = Open(Options(ReaderMode::kRange));
    ASSERT_TRUE(range);
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1, 2, 3};
    const Matrix q1 = testing::RandomMatrix(1, 64, 9), q2 = testing::RandomMatrix(1, 64, 10);
    ASSERT_TRUE(range->Search(std::span<const float>(q1.data), 10, all).ok());
    const int64_t vectors = data.rows * data.cols * static_cast<int64_t>(sizeof(float));
    const int64_t cold = range->Stats().range_bytes_fetched;
    const int64_t shard_bytes = ShardBytes(*range);
    EXPECT_GE(cold, vectors);
    EXPECT_LT(cold, shard_bytes / 3) << cold << " bytes fetched for " << vectors << " bytes of vectors in "
                                     << shard_bytes;
    auto warm = range->Search(std::span<const float>(q2.data), 10, all);
    ASSERT_TRUE(warm.ok());
    EXPECT_EQ(warm->results.size(), 10u);
    EXPECT_NE(warm->results[0].payload_json->find("xxx"), std::string::npos);
    const int64_t warm_bytes = range->Stats().range_bytes_fetched - cold;
    EXPECT_GT(warm_bytes, 0);
    EXPECT_LE(warm_bytes, 20 * 65536) << "a warm query fetched " << warm_bytes << " bytes";
  }

  void ExpectSameHitsWithSmallPageCaches() {
    const Matrix data = testing::ClusteredMatrix(1500, kDim, 6, 15);
    const Matrix queries = testing::RandomMatrix(10, kDim, 16);
    Write(data);
    auto download = Open(Options(ReaderMode::kDownload));
    ASSERT_TRUE(download);
    const auto expected = SearchAll(*download, queries);
    for (int64_t pages : {0, 1, 3}) {
      ReaderOptions o = Options(ReaderMode::kRange);
      o.page_cache_pages = pages;
      o.max_cached_shards = 1;  // shards are reopened, so their reads repeat
      auto range = Open(o);
      ASSERT_TRUE(range);
      EXPECT_EQ(SearchAll(*range, queries), expected) << pages << " pages";
    }
  }

  testing::TempDir tmp_;
  std::shared_ptr<ObjectStore> store_;
  int readers_ = 0;
};

class S3RangeTierTest : public RangeTierTest {
 protected:
  std::shared_ptr<ObjectStore> MakeStore() override {
    return testing::OpenS3TestStore(testing::UniqueS3Prefix("range-tier"));
  }
};

#define RANGE_TIER_TESTS(Fixture)                                                                     \
  TEST_F(Fixture, RangeTierAnswersExactlyTheDownloadTiersHitsWithoutDownloading) {                 \
    ExpectSameHitsAsTheDownloadTier();                                                               \
  }                                                                                                  \
  TEST_F(Fixture, AColdRangeQueryReadsTheVectorsNotThePayloads) { ExpectColdQueriesReadVectorsNotPayloads(); } \
  TEST_F(Fixture, ASmallOrNoPageCacheAnswersTheSame) { ExpectSameHitsWithSmallPageCaches(); }

RANGE_TIER_TESTS(RangeTierTest)
RANGE_TIER_TESTS(S3RangeTierTest)

TEST_F(RangeTierTest, AutoPicksRangeWhenAShardOrTheSnapshotReachesItsThreshold) {
  Write(testing::ClusteredMatrix(800, kDim, 4, 3));
  auto probe = Open(Options(ReaderMode::kDownload));
  ASSERT_TRUE(probe);
  int64_t largest = 0, total = 0;
  for (const ShardDetail& d : probe->ShardDetails()) {
    largest = std::max(largest, d.db_bytes);
    total += d.db_bytes;
  }
  struct Case {
    int64_t per_shard, budget;
    ReaderMode expected;
  };
  for (const Case& c : {Case{largest, total + 1, ReaderMode::kRange}, Case{largest + 1, total + 1, ReaderMode::kDownload},
                        Case{largest + 1, total, ReaderMode::kRange}}) {
    ReaderOptions o = Options(ReaderMode::kAuto);
    o.auto_per_shard_threshold_bytes = c.per_shard;
    o.auto_total_budget_bytes = c.budget;
    auto reader = Open(o);
    ASSERT_TRUE(reader);
    EXPECT_EQ(reader->Stats().reader_mode, c.expected) << c.per_shard << " " << c.budget;
    ASSERT_TRUE(reader->Search(std::span<const float>(testing::RandomMatrix(1, kDim, 1).data), 3).ok());
    EXPECT_EQ(reader->Stats().range_bytes_fetched > 0, c.expected == ReaderMode::kRange);
  }
  // The defaults are the reference's: 16 MiB per shard, 2 GiB in all (>= tips to range).
  EXPECT_EQ(ResolveReaderMode(ReaderMode::kAuto, {1, 16 << 20}, kDefaultAutoPerShardThresholdBytes,
                              kDefaultAutoTotalBudgetBytes), ReaderMode::kRange);
  EXPECT_EQ(ResolveReaderMode(ReaderMode::kAuto, {(16 << 20) - 1}, kDefaultAutoPerShardThresholdBytes,
                              kDefaultAutoTotalBudgetBytes), ReaderMode::kDownload);
  EXPECT_EQ(ResolveReaderMode(ReaderMode::kAuto, std::vector<int64_t>(128, (16 << 20) - 1),
                              kDefaultAutoPerShardThresholdBytes, kDefaultAutoTotalBudgetBytes), ReaderMode::kDownload);
  EXPECT_EQ(ResolveReaderMode(ReaderMode::kAuto, std::vector<int64_t>(129, (16 << 20) - 1),
                              kDefaultAutoPerShardThresholdBytes, kDefaultAutoTotalBudgetBytes), ReaderMode::kRange);
  EXPECT_EQ(ResolveReaderMode(ReaderMode::kAuto, {}, kDefaultAutoPerShardThresholdBytes, kDefaultAutoTotalBudgetBytes),
            ReaderMode::kDownload);
}

TEST_F(RangeTierTest, SettingsOfATierTheReaderDoesNotUseAreRefusedNamingThem) {
  Write(testing::ClusteredMatrix(200, kDim, 4, 3));
  auto refused = [&](ReaderOptions o, const std::string& needle) {
    auto r = ShardedVectorReader::Open(o, store_);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  struct Case {
    ReaderMode mode;
    std::function<void(ReaderOptions&)> set;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {ReaderMode::kDownload, [](ReaderOptions& o) { o.page_cache_pages = 10; },
       "page_cache_pages (10) applies to the range tier; reader_mode is download"},
      {ReaderMode::kRange, [](ReaderOptions& o) { o.mmap_size = 1 << 20; },
       "mmap_size (1048576) applies to the download tier; reader_mode is range"},
      {ReaderMode::kRange, [](ReaderOptions& o) { o.auto_total_budget_bytes = 5; },
       "apply to reader_mode auto; it is range"},
      {ReaderMode::kRange, [](ReaderOptions& o) { o.page_cache_pages = -1; }, "page_cache_pages must be in 0.."},
      {ReaderMode::kAuto, [](ReaderOptions& o) { o.auto_per_shard_threshold_bytes = 0; },
       "auto_per_shard_threshold_bytes and auto_total_budget_bytes must be > 0"},
      {ReaderMode::kDownload, [](ReaderOptions& o) { o.mmap_size = -1; }, "mmap_size must be >= 0 (got -1)"},
      {ReaderMode::kDownload, [](ReaderOptions& o) { o.shard_store_options = StoreOptions{}; },
       "shard_store_options applies to an s3:// store"},
      {static_cast<ReaderMode>(7), [](ReaderOptions&) {}, "reader_mode 7 is not download, range or auto"},
  };
  for (const Case& c : cases) {
    ReaderOptions o = Options(c.mode);
    c.set(o);
    refused(o, c.needle);
  }
  auto parsed = ParseReaderMode("ranged", "--reader-mode");
  EXPECT_EQ(parsed.status().message(), "--reader-mode must be download, range or auto (got 'ranged')");
  EXPECT_EQ(*ParseReaderMode("auto"), ReaderMode::kAuto);
}

TEST_F(RangeTierTest, AShardGoneFromTheStoreIsReportedAsTheStoresError) {
  Write(testing::ClusteredMatrix(400, kDim, 4, 3));
  auto range = Open(Options(ReaderMode::kRange));
  ASSERT_TRUE(range);
  for (const ShardDetail& d : range->ShardDetails()) {
    if (d.db_url) ASSERT_TRUE(fs::remove(d.db_url->substr(std::string("file://").size()) + "/shard.db"));
  }
  SearchOptions all;
  all.num_probes = kDbs;
  auto r = range->Search(std::span<const float>(testing::RandomMatrix(1, kDim, 1).data), 3, all);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find("shard.db"), std::string::npos) << r.status().message();
}

TEST_F(S3RangeTierTest, ShardStoreOptionsReachTheShardsAndNotTheManifests) {
  Write(testing::ClusteredMatrix(400, kDim, 4, 3));
  ReaderOptions o = Options(ReaderMode::kRange);
  o.store_options = testing::S3TestOptions();
  o.shard_store_options = testing::S3TestOptions();
  o.shard_store_options->secret_access_key = "wrong-secret";
  o.shard_store_options->max_attempts = 1;
  // The manifest is read with store_options, so the reader opens; its shards then fail with the
  // shard settings' bad key.
  auto reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto r = (*reader)->Search(std::span<const float>(testing::RandomMatrix(1, kDim, 1).data), 3);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("shard"), std::string::npos) << r.status().message();
  o.shard_store_options = testing::S3TestOptions();
  reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->Search(std::span<const float>(testing::RandomMatrix(1, kDim, 1).data), 3).ok());
}

}  // namespace
}  // namespace shardvec
