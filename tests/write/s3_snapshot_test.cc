// Snapshots on the S3 test server through the C++ API: the same answers as a local folder, two
// writers racing, faults injected into chosen requests, multipart shards and ranged downloads.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/digest.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/s3/s3_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {

using ::testing::HasSubstr;
using testing::FaultAction;
using testing::FaultyTransport;

constexpr int64_t kDim = 16;

class S3SnapshotTest : public ::testing::Test {
 protected:
  WriteConfig Config(const std::string& run_id, int64_t num_dbs = 4, int64_t dim = kDim) {
    WriteConfig c;
    c.local_root = (tmp_ / "build").string();
    c.index.dim = dim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = num_dbs;
    c.run_id = run_id;
    return c;
  }

  Result<BuildResult> Write(std::shared_ptr<ObjectStore> store, const Matrix& data, const std::string& run_id,
                            int64_t num_dbs = 4) {
    WriteConfig c = Config(run_id, num_dbs, data.cols);
    c.store = store->PrefixUrl();
    VectorRecordSource source(testing::MakeRecords(data, false));
    return WriteSharded(c, source, store);
  }

  std::unique_ptr<ShardedVectorReader> OpenReader(std::shared_ptr<ObjectStore> store) {
    ReaderOptions o;
    o.store = store->PrefixUrl();
    o.cache_dir = (tmp_ / ("cache" + std::to_string(++readers_))).string();
    auto r = ShardedVectorReader::Open(o, store);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // Every query's full-probe answer as (id, score) pairs; checks it against brute force.
  std::vector<std::vector<std::pair<RecordId, double>>> SearchAll(ShardedVectorReader& reader, const Matrix& data,
                                                                  int64_t num_dbs = 4) {
    std::vector<std::vector<std::pair<RecordId, double>>> out;
    SearchOptions all;  // every shard: LSH probes may revisit a shard, explicit ids never do
    all.shard_ids.emplace();
    for (int64_t db = 0; db < num_dbs; ++db) all.shard_ids->push_back(db);
    for (int64_t qi = 0; qi < queries_.rows; ++qi) {
      auto r = reader.Search(std::span<const float>(queries_.row(qi), data.cols), 10, all);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return out;
      auto truth = testing::BruteForce(data, queries_.row(qi), Metric::kL2, 10);
      out.emplace_back();
      for (size_t k = 0; k < r->results.size(); ++k) {
        EXPECT_EQ(r->results[k].id, RecordId(truth[k].second * 3)) << "query " << qi << " rank " << k;
        out.back().emplace_back(r->results[k].id, r->results[k].score);
      }
    }
    return out;
  }

  std::string CurrentBytes(ObjectStore& store) {
    auto got = store.Get("_CURRENT");
    return got.ok() ? *got : "<" + got.status().ToString() + ">";
  }

  testing::TempDir tmp_;
  int readers_ = 0;
  Matrix data1_ = testing::RandomMatrix(400, kDim, 11);
  Matrix data2_ = testing::RandomMatrix(400, kDim, 12);
  Matrix queries_ = testing::RandomMatrix(8, kDim, 13);
};

TEST_F(S3SnapshotTest, ApiCycleOnS3AnswersExactlyAsOnALocalFolder) {
  auto local = OpenStore((tmp_ / "local").string());
  ASSERT_TRUE(local.ok());
  std::shared_ptr<ObjectStore> s3 = testing::OpenS3TestStore(testing::UniqueS3Prefix("api-cycle"));
  ASSERT_TRUE(s3);
  for (auto store : {*local, s3}) {
    SCOPED_TRACE(store->PrefixUrl());
    ASSERT_TRUE(Write(store, data1_, "R1").ok());
    ASSERT_TRUE(Write(store, data2_, "R2").ok());
  }
  auto local_reader = OpenReader(*local);
  auto s3_reader = OpenReader(s3);
  ASSERT_TRUE(local_reader && s3_reader);
  EXPECT_EQ(SearchAll(*s3_reader, data2_), SearchAll(*local_reader, data2_));

  for (auto store : {*local, s3}) {
    auto manifests = ListManifests(*store, 0);
    ASSERT_TRUE(manifests.ok());
    ASSERT_EQ(manifests->size(), 2u);
    EXPECT_EQ((*manifests)[0].run_id, "R2");
    auto target = FindManifest(*store, {.run_id = "R1"});
    ASSERT_TRUE(target.ok());
    ASSERT_TRUE(Rollback(*store, *target).ok());
    ASSERT_TRUE(store->Put(ShardKey("DEAD", 0, 0), "orphan").ok());
    auto report = Cleanup(*store, {});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->removed_runs, std::vector<std::string>{"DEAD"});
  }
  ASSERT_TRUE(*s3_reader->Refresh());
  ASSERT_TRUE(*local_reader->Refresh());
  EXPECT_EQ(SearchAll(*s3_reader, data1_), SearchAll(*local_reader, data1_));
}

TEST_F(S3SnapshotTest, TwoWritersAtOnceExactlyOneWinsAndThePointerIsAlwaysWhole) {
  const std::string prefix = testing::UniqueS3Prefix("race");
  std::shared_ptr<ObjectStore> observer = testing::OpenS3TestStore(prefix);
  ASSERT_TRUE(observer);
  std::atomic<bool> done{false};
  std::atomic<int> pointer_reads{0};
  std::vector<std::string> bad_reads;
  std::thread poll([&] {
    while (!done) {
      auto bytes = observer->Get("_CURRENT");
      if (!bytes.ok()) {
        if (bytes.status().code() != StatusCode::kNotFound) bad_reads.push_back(bytes.status().ToString());
        continue;
      }
      ++pointer_reads;
      auto pointer = ParseCurrentPointer(*bytes);
      if (!pointer.ok()) {
        bad_reads.push_back("torn pointer: " + *bytes);
        continue;
      }
      auto key = KeyFromUrl(observer->PrefixUrl(), pointer->manifest_ref);
      if (!key.ok() || !observer->Head(*key).ok()) bad_reads.push_back("names a missing manifest: " + *bytes);
    }
  });

  std::vector<Result<BuildResult>> results(2, Status::Internal("not run"));
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      // Slow manifest uploads make sure both runs have started before either publishes.
      auto transport = std::make_shared<FaultyTransport>();
      transport->AddRule({.method = "PUT", .url_contains = "/manifest", .action = FaultAction::kDelay,
                          .times = -1, .delay_ms = 400});
      auto store = testing::OpenS3TestStore(prefix, transport);
      results[w] = Write(store, w == 0 ? data1_ : data2_, "W" + std::to_string(w));
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  poll.join();

  int wins = 0;
  std::string winner;
  for (auto& r : results) {
    if (r.ok()) {
      ++wins;
      winner = r->manifest_ref;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kConflict) << r.status().ToString();
      EXPECT_THAT(r.status().message(), HasSubstr("PublishConflictError"));
    }
  }
  EXPECT_EQ(wins, 1);
  EXPECT_THAT(bad_reads, ::testing::IsEmpty());
  EXPECT_GT(pointer_reads.load(), 0);
  auto manifests = ListManifests(*observer, 0);
  ASSERT_TRUE(manifests.ok());
  EXPECT_EQ(manifests->size(), 2u);  // the loser's manifest stays in history
  auto pointer = ParseCurrentPointer(CurrentBytes(*observer));
  ASSERT_TRUE(pointer.ok());
  EXPECT_EQ(pointer->manifest_ref, winner);
}

TEST_F(S3SnapshotTest, TransientFaultsAreRetriedAndTheSnapshotIsWhole) {
  const std::string prefix = testing::UniqueS3Prefix("transient");
  auto transport = std::make_shared<FaultyTransport>();
  transport->AddRule({.method = "PUT", .url_contains = "shard.db", .action = FaultAction::kSlowDown503, .times = 3});
  transport->AddRule({.method = "PUT", .url_contains = "shard.db", .action = FaultAction::kReset, .skip = 2});
  transport->AddRule({.method = "PUT", .url_contains = ".npy", .action = FaultAction::kInternal500});
  transport->AddRule({.method = "PUT", .url_contains = "/manifest", .action = FaultAction::kResetAfterSend});
  transport->AddRule({.method = "GET", .url_contains = "_CURRENT", .action = FaultAction::kReset});
  transport->AddRule({.method = "PUT", .url_contains = "_CURRENT", .action = FaultAction::kResetAfterSend});
  auto store = testing::OpenS3TestStore(prefix, transport);
  ASSERT_TRUE(store);
  auto built = Write(store, data1_, "T1");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ(transport->faults_injected(), 8);

  auto clean = testing::OpenS3TestStore(prefix);
  auto reader = OpenReader(clean);
  ASSERT_TRUE(reader);
  int64_t total = 0;
  for (const auto& shard : reader->ShardDetails()) total += shard.vector_count;
  EXPECT_EQ(total, data1_.rows);
  SearchAll(*reader, data1_);
}

TEST_F(S3SnapshotTest, PermanentFaultsFailTheWriteAndLeaveCurrentUnchanged) {
  const std::string prefix = testing::UniqueS3Prefix("permanent");
  std::shared_ptr<ObjectStore> clean = testing::OpenS3TestStore(prefix);
  ASSERT_TRUE(Write(clean, data1_, "GOOD").ok());
  const std::string before = CurrentBytes(*clean);

  struct Case {
    const char* url;
    FaultAction action;
    StatusCode code;
  };
  for (const Case& c : {Case{"/manifest", FaultAction::kInternal500, StatusCode::kUnavailable},
                        Case{"_CURRENT", FaultAction::kDeny403, StatusCode::kPermissionDenied},
                        Case{"shard.db", FaultAction::kSlowDown503, StatusCode::kUnavailable}}) {
    SCOPED_TRACE(c.url);
    auto transport = std::make_shared<FaultyTransport>();
    transport->AddRule({.method = "PUT", .url_contains = c.url, .action = c.action, .times = -1});
    auto faulty = testing::OpenS3TestStore(prefix, transport);
    auto failed = Write(faulty, data2_, std::string("BAD") + (c.url[0] == '/' ? "m" : c.url[0] == '_' ? "c" : "s"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), c.code) << failed.status().ToString();
    EXPECT_EQ(CurrentBytes(*clean), before);
  }
  auto reader = OpenReader(clean);
  ASSERT_TRUE(reader);
  SearchAll(*reader, data1_);
}

// The shard that failed first is the error reported, never a shard skipped after it (both are
// Unavailable, a code that once let the skipped one's status replace the cause), with one build at
// a time and with all at once, for a server that answers 503 and for one whose connections fail.
TEST_F(S3SnapshotTest, AFailedShardReportsItsOwnCauseNotASkippedShard) {
  const std::string prefix = testing::UniqueS3Prefix("first-cause");
  for (const FaultAction action : {FaultAction::kSlowDown503, FaultAction::kReset}) {
    for (const int64_t parallel : {1, 4}) {
      SCOPED_TRACE(fmt::format("action {} parallel {}", static_cast<int>(action), parallel));
      auto transport = std::make_shared<FaultyTransport>();
      transport->AddRule({.method = "PUT", .url_contains = "shard.db", .action = action, .times = -1});
      auto faulty = testing::OpenS3TestStore(prefix, transport);
      ASSERT_TRUE(faulty);
      WriteConfig c = Config(fmt::format("CAUSE{}{}", static_cast<int>(action), parallel), 8);
      c.store = faulty->PrefixUrl();
      c.max_parallel_shards = parallel;
      VectorRecordSource source(testing::MakeRecords(data1_, false));
      auto failed = WriteSharded(c, source, faulty);
      ASSERT_FALSE(failed.ok());
      const std::string message = failed.status().ToString();
      EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << message;
      EXPECT_THAT(message, ::testing::Not(HasSubstr("skipped"))) << message;
      EXPECT_THAT(message, HasSubstr("upload of shard")) << message;
      EXPECT_THAT(message, HasSubstr("shard.db")) << message;
    }
  }
}

TEST_F(S3SnapshotTest, LargeShardsGoUpMultipartAndComeDownInVerifiedRanges) {
  StoreOptions options = testing::S3TestOptions();
  options.part_size_bytes = 5 << 20;
  options.multipart_threshold_bytes = 5 << 20;
  options.ranged_get_threshold_bytes = 5 << 20;
  const std::string prefix = testing::UniqueS3Prefix("multipart");
  auto up = std::make_shared<FaultyTransport>();
  // One failed part is retried inside the multipart upload.
  up->AddRule({.method = "PUT", .url_contains = "partNumber=2", .action = FaultAction::kSlowDown503});
  Matrix big = testing::RandomMatrix(7000, 256, 5);  // ~7 MB of vectors in one shard
  auto store = testing::OpenS3TestStore(prefix, up, options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(Write(store, big, "BIG", 1).ok());
  EXPECT_GE(up->CountRequests("PUT", "partNumber="), 3);

  auto down = std::make_shared<FaultyTransport>();
  auto reader_store = testing::OpenS3TestStore(prefix, down, options);
  auto reader = OpenReader(reader_store);
  ASSERT_TRUE(reader);
  auto details = reader->ShardDetails();
  ASSERT_EQ(details.size(), 1u);
  ASSERT_GT(details[0].db_bytes, 5 << 20);
  ASSERT_TRUE(details[0].digest);
  auto hit = reader->Search(std::span<const float>(big.row(42), 256), 1);
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();  // the cache checks size and xxh3 digest
  EXPECT_EQ(hit->results[0].id, RecordId(42 * 3));
  EXPECT_EQ(down->CountRequests("GET", "shard.db"), 2);  // two ranges
  // The cached file's digest is the manifest's.
  std::vector<std::string> cached;
  for (const auto& f : testing::ListFiles(tmp_ / ("cache" + std::to_string(readers_)))) {
    if (f.find("shard") != std::string::npos) cached.push_back(f);
  }
  ASSERT_EQ(cached.size(), 1u);
  auto digest = DigestFile(tmp_ / ("cache" + std::to_string(readers_)) / cached[0]);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(digest->digest, *details[0].digest);
}

}  // namespace
}  // namespace shardvec
