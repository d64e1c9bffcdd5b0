#include "shardvec/reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <chrono>
#include <thread>

#include "routing/distance.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

using testing::BruteForce;
using testing::MakeRecords;

class ReaderTest : public ::testing::Test {
 protected:
  std::string Store() const { return (tmp_ / "store").string(); }
  Result<BuildResult> Write(const Matrix& data, Metric metric, Strategy strategy, int64_t num_dbs,
                            bool string_ids = false, std::string run_id = "") {
    WriteConfig c;
    c.store = Store();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data.cols;
    c.index.metric = metric;
    c.sharding.strategy = strategy;
    c.sharding.num_dbs = num_dbs;
    if (strategy == Strategy::kCluster) c.sharding.train_centroids = true;
    if (!run_id.empty()) c.run_id = run_id;
    c.allow_schema_change = true;  // snapshots here tell themselves apart by their ids' type, on purpose
    VectorRecordSource source(MakeRecords(data, string_ids, strategy == Strategy::kExplicit ? num_dbs : 0));
    return WriteSharded(c, source);
  }
  std::unique_ptr<ShardedVectorReader> OpenReader(int64_t max_cached = 0) {
    ReaderOptions o;
    o.store = Store();
    o.cache_dir = (tmp_ / "cache").string();
    o.max_cached_shards = max_cached;
    auto r = ShardedVectorReader::Open(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  testing::TempDir tmp_;
};

TEST_F(ReaderTest, AllShardsProbedGivesExactRecallForBothMetricsAndIdTypes) {
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    for (bool string_ids : {false, true}) {
      testing::TempDir round;
      Matrix data = testing::ClusteredMatrix(600, 12, 6, 21);
      ReaderOptions o;
      WriteConfig c;
      c.store = (round / "store").string();
      c.local_root = (round / "build").string();
      c.index.dim = 12;
      c.index.metric = metric;
      c.sharding.num_dbs = 6;
      c.sharding.train_centroids = true;
      VectorRecordSource source(MakeRecords(data, string_ids));
      ASSERT_TRUE(WriteSharded(c, source).ok());
      o.store = c.store;
      o.cache_dir = (round / "cache").string();
      auto reader = ShardedVectorReader::Open(o);
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      Matrix queries = testing::RandomMatrix(20, 12, 99);
      SearchOptions all;
      all.num_probes = 6;
      for (int64_t qi = 0; qi < queries.rows; ++qi) {
        const float* q = queries.row(qi);
        auto r = (*reader)->Search(std::span<const float>(q, 12), 10, all);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->num_shards_queried, 6);
        auto truth = BruteForce(data, q, metric, 10);
        ASSERT_EQ(r->results.size(), 10u);
        for (size_t k = 0; k < 10; ++k) {
          const auto& hit = r->results[k];
          const int64_t row = truth[k].second;
          EXPECT_NEAR(hit.score, truth[k].first, 1e-3 * std::max(1.0, truth[k].first));
          const RecordId expected_id = string_ids ? RecordId("doc-" + std::to_string(row)) : RecordId(row * 3);
          EXPECT_EQ(hit.id, expected_id) << "rank " << k;
          ASSERT_TRUE(hit.payload_json);
          EXPECT_EQ(*hit.payload_json, "{\"row\": " + std::to_string(row) + "}");
        }
      }
    }
  }
}

// A single search hands each later shard the k-th distance found so far, and the shard skips rows
// beyond it; a batch does not. Both give the same hits, including ties at the k-th place between
// copies of one vector in different shards, with one search thread or several.
TEST_F(ReaderTest, SingleSearchAnswersAsTheBatchDoesWithTiesAcrossShards) {
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    testing::TempDir round;
    Matrix data = testing::ClusteredMatrix(800, 200, 8, 31);
    for (int64_t r = 1; r < data.rows; r += 2) std::copy(data.row(r - 1), data.row(r - 1) + data.cols, data.row(r));
    WriteConfig c;
    c.store = (round / "store").string();
    c.local_root = (round / "build").string();
    c.index.dim = data.cols;
    c.index.metric = metric;
    c.sharding.strategy = Strategy::kExplicit;  // row i to shard i % 4: each copy in another shard
    c.sharding.num_dbs = 4;
    VectorRecordSource source(MakeRecords(data, false, 4));
    ASSERT_TRUE(WriteSharded(c, source).ok());
    Matrix queries = testing::ClusteredMatrix(12, 200, 8, 32);
    std::copy(data.row(10), data.row(10) + data.cols, queries.row(0));  // a stored vector: distance 0, twice
    for (int64_t workers : {1, 0}) {
      ReaderOptions o;
      o.store = c.store;
      o.cache_dir = (round / fmt::format("cache-{}", workers)).string();
      o.max_workers = workers;
      auto reader = ShardedVectorReader::Open(o);
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      SearchOptions all;
      all.shard_ids = std::vector<int64_t>{0, 1, 2, 3};
      for (const int64_t k : {int64_t{1}, int64_t{5}, int64_t{10}}) {
        auto batch = (*reader)->BatchSearch(queries, k, all);
        ASSERT_TRUE(batch.ok()) << batch.status().ToString();
        for (int64_t qi = 0; qi < queries.rows; ++qi) {
          auto one = (*reader)->Search(std::span<const float>(queries.row(qi), data.cols), k, all);
          ASSERT_TRUE(one.ok()) << one.status().ToString();
          const auto& want = (*batch)[static_cast<size_t>(qi)].results;
          ASSERT_EQ(one->results.size(), static_cast<size_t>(k));
          ASSERT_EQ(one->results.size(), want.size());
          for (size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ(one->results[i].id, want[i].id) << MetricName(metric) << " workers " << workers << " k " << k;
            EXPECT_EQ(one->results[i].score, want[i].score);
          }
          const auto truth = BruteForce(data, queries.row(qi), metric, k);
          EXPECT_NEAR(one->results.back().score, truth.back().first, 1e-3 * std::max(1.0, truth.back().first));
        }
      }
    }
  }
}

TEST_F(ReaderTest, EveryWrittenVectorsShardIsTheFirstProbe) {
  for (Strategy strategy : {Strategy::kCluster, Strategy::kLsh, Strategy::kExplicit}) {
    testing::TempDir round;
    Matrix data = testing::RandomMatrix(300, 8, 5 + static_cast<int>(strategy));
    WriteConfig c;
    c.store = (round / "store").string();
    c.local_root = (round / "build").string();
    c.index.dim = 8;
    c.index.metric = Metric::kCosine;
    c.sharding.strategy = strategy;
    c.sharding.num_dbs = 5;
    c.sharding.train_centroids = strategy == Strategy::kCluster;
    VectorRecordSource source(MakeRecords(data, false, strategy == Strategy::kExplicit ? 5 : 0));
    ASSERT_TRUE(WriteSharded(c, source).ok());
    ReaderOptions o;
    o.store = c.store;
    o.cache_dir = (round / "cache").string();
    auto reader = ShardedVectorReader::Open(o);
    ASSERT_TRUE(reader.ok());
    // Which shard holds each row, from the shard files themselves.
    std::map<int64_t, int64_t> shard_of_row;
    for (const ShardDetail& d : (*reader)->ShardDetails()) {
      if (!d.db_url) continue;
      sqlite3* db = testing::OpenWithVec0(d.db_url->substr(7) + "/shard.db");
      for (auto& row : testing::QueryRows(db, "SELECT json_extract(original_id, '$.v') FROM vec_id_map")) {
        shard_of_row[std::stoll(row[0]) / 3] = d.db_id;
      }
      sqlite3_close(db);
    }
    ASSERT_EQ(shard_of_row.size(), 300u);
    for (int64_t i = 0; i < data.rows; ++i) {
      std::span<const float> q(data.row(i), 8);
      if (strategy == Strategy::kExplicit) {
        EXPECT_FALSE((*reader)->Route(q).ok());
        SearchOptions o2;
        o2.shard_ids = std::vector<int64_t>{shard_of_row[i]};
        auto r = (*reader)->Search(q, 1, o2);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->results[0].id, RecordId(i * 3));
        continue;
      }
      auto probes = (*reader)->Route(q, 1);
      ASSERT_TRUE(probes.ok());
      EXPECT_EQ((*probes)[0], shard_of_row[i]) << StrategyName(strategy) << " row " << i;
      auto r = (*reader)->Search(q, 1);  // default num_probes = 1
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->results[0].id, RecordId(i * 3));
      EXPECT_LT(r->results[0].score, 1e-5);
    }
  }
}

TEST_F(ReaderTest, BadQueriesAreRejectedBeforeAnySql) {
  Matrix data = testing::RandomMatrix(50, 4, 1);
  ASSERT_TRUE(Write(data, Metric::kCosine, Strategy::kLsh, 3).ok());
  auto reader = OpenReader();
  std::vector<float> q = {1, 2, 3, 4};
  struct Case { std::vector<float> query; int64_t top_k; SearchOptions options; std::string expect; };
  SearchOptions probes0; probes0.num_probes = 0;
  SearchOptions bad_shard; bad_shard.shard_ids = std::vector<int64_t>{1, 3};
  std::vector<Case> cases = {
      {{1, 2, 3}, 10, {}, "query has 3 values, but the snapshot's dim is 4"},
      {{1, NAN, 3, 4}, 10, {}, "query[1] is nan"},
      {{1, 2, INFINITY, 4}, 10, {}, "query[2] is inf"},
      {{0, 0, 0, 0}, 10, {}, "all zeros"},
      {q, 0, {}, "top_k must be in 1..4096 (got 0)"},
      {q, 4097, {}, "top_k must be in 1..4096 (got 4097)"},
      {q, 5, probes0, "num_probes must be >= 1 (got 0)"},
      {q, 5, bad_shard, "shard_ids contains 3, outside [0, 3)"},
  };
  for (const auto& tc : cases) {
    auto r = reader->Search(tc.query, tc.top_k, tc.options);
    ASSERT_FALSE(r.ok()) << tc.expect;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(tc.expect), std::string::npos) << r.status().message();
  }
  SearchOptions dup; dup.shard_ids = std::vector<int64_t>{2, 2, 0};
  auto r = reader->Search(q, 5, dup);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->num_shards_queried, 2);  // de-duplicated (and empty shards skipped)
}

TEST_F(ReaderTest, ExplicitSnapshotsNeedShardIds) {
  ASSERT_TRUE(Write(testing::RandomMatrix(20, 4, 2), Metric::kL2, Strategy::kExplicit, 2).ok());
  auto reader = OpenReader();
  auto r = reader->Search(std::vector<float>{1, 2, 3, 4}, 5);
  EXPECT_NE(r.status().message().find("requires shard_ids"), std::string::npos) << r.status().ToString();
}

TEST_F(ReaderTest, PinnedUntilRefreshThenAnswersFromTheNewSnapshot) {
  Matrix a = testing::RandomMatrix(100, 6, 1);
  Matrix b = testing::RandomMatrix(100, 6, 2);
  ASSERT_TRUE(Write(a, Metric::kL2, Strategy::kLsh, 3, false, "run-a").ok());
  auto reader = OpenReader();
  ASSERT_TRUE(Write(b, Metric::kL2, Strategy::kLsh, 3, true, "run-b").ok());
  std::span<const float> qb(b.row(7), 6);
  SearchOptions all; all.num_probes = 3;
  auto before = reader->Search(qb, 1, all);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(std::holds_alternative<int64_t>(before->results[0].id));  // still snapshot A
  EXPECT_EQ(reader->Info().run_id, "run-a");
  auto refreshed = reader->Refresh();
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_TRUE(*refreshed);
  EXPECT_FALSE(*reader->Refresh());  // nothing new
  auto after = reader->Search(qb, 1, all);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->results[0].id, RecordId(std::string("doc-7")));
  EXPECT_EQ(reader->Info().run_id, "run-b");
}

TEST_F(ReaderTest, StressSearchesRacingRefreshesNeverFail) {
  Matrix data = testing::RandomMatrix(200, 8, 3);
  ASSERT_TRUE(Write(data, Metric::kL2, Strategy::kLsh, 4, false, "s0").ok());
  auto reader = OpenReader(/*max_cached=*/2);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, searches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      int i = t;
      while (!stop.load()) {
        SearchOptions all; all.num_probes = 4;
        auto r = reader->Search(std::span<const float>(data.row(i % 200), 8), 3, all);
        if (!r.ok() || r->results.size() != 3) ++failures;
        ++searches;
        ++i;
      }
    });
  }
  for (int round = 1; round <= 4; ++round) {
    ASSERT_TRUE(Write(data, Metric::kL2, Strategy::kLsh, 4, false, "s" + std::to_string(round)).ok());
    const int before = searches.load();
    auto refreshed = reader->Refresh();
    EXPECT_TRUE(refreshed.ok() && *refreshed) << refreshed.status().ToString();
    // Every snapshot serves a few searches before the next swap, however slow the build (TSan):
    // bounded at 30 s a round.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (searches.load() < before + 3 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 10);
  EXPECT_EQ(reader->Info().run_id, "s4");
}

TEST_F(ReaderTest, CorruptManifestFallsBackToTheOlderOne) {
  Matrix data = testing::RandomMatrix(60, 4, 4);
  ASSERT_TRUE(Write(data, Metric::kL2, Strategy::kLsh, 2, false, "old").ok());
  auto newer = Write(data, Metric::kL2, Strategy::kLsh, 2, false, "new");
  ASSERT_TRUE(newer.ok());
  testing::WriteText(newer->manifest_ref.substr(7), "garbage, not sqlite");
  auto reader = OpenReader();
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->Info().run_id, "old");
  EXPECT_TRUE(reader->Search(std::vector<float>{1, 2, 3, 4}, 3, SearchOptions{.num_probes = 2}).ok());
  // With fallback disabled the error names the manifest.
  ReaderOptions o;
  o.store = Store();
  o.max_fallback_attempts = 0;
  auto strict = ShardedVectorReader::Open(o);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kCorruption);
  EXPECT_NE(strict.status().message().find("magic header not found"), std::string::npos);
}

TEST_F(ReaderTest, CorruptShardBytesGiveAClearErrorNotAnswers) {
  Matrix data = testing::RandomMatrix(80, 4, 6);
  auto built = Write(data, Metric::kL2, Strategy::kLsh, 2);
  ASSERT_TRUE(built.ok());
  const std::string file = built->shards[0].db_url.substr(7) + "/shard.db";
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(5000);
  f.put('\x7f');
  f.close();
  auto reader = OpenReader();
  SearchOptions only; only.shard_ids = std::vector<int64_t>{built->shards[0].db_id};
  auto r = reader->Search(std::vector<float>{1, 2, 3, 4}, 3, only);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("shard " + std::to_string(built->shards[0].db_id)), std::string::npos)
      << r.status().message();
}

TEST_F(ReaderTest, MissingOrCorruptPointerIsAClearError) {
  ReaderOptions o;
  o.store = Store();
  auto none = ShardedVectorReader::Open(o);
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(none.status().kind(), ErrorKind::kNoCurrentPointer);
  EXPECT_NE(none.status().message().find("No CURRENT pointer"), std::string::npos);
  fs::create_directories(tmp_ / "store");
  testing::WriteText(tmp_ / "store/_CURRENT", "{not json");
  auto bad = ShardedVectorReader::Open(o);
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(bad.status().kind(), ErrorKind::kManifestParse);
  EXPECT_NE(bad.status().message().find("CURRENT pointer validation failed"), std::string::npos);
}

TEST_F(ReaderTest, InfoShardsHealthAndClose) {
  Matrix data = testing::RandomMatrix(90, 4, 7);
  ASSERT_TRUE(Write(data, Metric::kCosine, Strategy::kCluster, 3, false, "info-run").ok());
  auto reader = OpenReader();
  SnapshotInfo info = reader->Info();
  EXPECT_EQ(info.run_id, "info-run");
  EXPECT_EQ(info.num_dbs, 3);
  EXPECT_EQ(info.dim, 4);
  EXPECT_EQ(info.metric, Metric::kCosine);
  EXPECT_EQ(info.strategy, Strategy::kCluster);
  EXPECT_EQ(info.total_vectors, 90);
  auto details = reader->ShardDetails();
  ASSERT_EQ(details.size(), 3u);
  int64_t sum = 0;
  for (auto& d : details) sum += d.vector_count;
  EXPECT_EQ(sum, 90);
  EXPECT_EQ(reader->Health(std::chrono::seconds(3600)).status, "healthy");
  EXPECT_EQ(reader->Health(std::chrono::seconds(0)).status, "degraded");
  reader->Close();
  reader->Close();
  EXPECT_EQ(reader->Health().status, "unhealthy");
  EXPECT_TRUE(reader->Health().is_closed);
  EXPECT_NE(reader->Search(std::vector<float>{1, 2, 3, 4}, 3).status().message().find("closed"), std::string::npos);
  const Status closed = reader->Search(std::vector<float>{1, 2, 3, 4}, 3).status();
  EXPECT_EQ(closed.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(closed.kind(), ErrorKind::kReaderClosed);
}

// 300 queries over 4 shards: more than one scan task's worth of queries per shard.
TEST_F(ReaderTest, BatchSearchMatchesSingleSearches) {
  Matrix data = testing::ClusteredMatrix(300, 8, 4, 8);
  ASSERT_TRUE(Write(data, Metric::kL2, Strategy::kCluster, 4).ok());
  auto reader = OpenReader();
  Matrix queries = testing::RandomMatrix(300, 8, 9);
  auto batch = reader->BatchSearch(queries, 5, SearchOptions{.num_probes = 2});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 300u);
  for (int64_t i = 0; i < queries.rows; ++i) {
    auto single = reader->Search(std::span<const float>(queries.row(i), 8), 5, SearchOptions{.num_probes = 2});
    ASSERT_TRUE(single.ok());
    ASSERT_EQ(single->results.size(), (*batch)[i].results.size());
    EXPECT_EQ(single->num_shards_queried, (*batch)[i].num_shards_queried);
    for (size_t k = 0; k < single->results.size(); ++k) {
      EXPECT_EQ(single->results[k].id, (*batch)[i].results[k].id) << "query " << i << " rank " << k;
      EXPECT_EQ(single->results[k].score, (*batch)[i].results[k].score);
      EXPECT_EQ(single->results[k].payload_json, (*batch)[i].results[k].payload_json);
    }
  }
}

// A view over rows the caller owns (here the middle rows of a larger buffer) is searched in place:
// the same answers as those rows copied into a Matrix of their own.
TEST_F(ReaderTest, BatchSearchReadsAViewOfTheCallersRows) {
  Matrix data = testing::ClusteredMatrix(200, 8, 4, 8);
  ASSERT_TRUE(Write(data, Metric::kL2, Strategy::kCluster, 4).ok());
  auto reader = OpenReader();
  Matrix buffer = testing::RandomMatrix(30, 8, 11);
  const MatrixView middle(buffer.row(10), 12, 8);
  Matrix copied{12, 8, std::vector<float>(buffer.row(10), buffer.row(22))};
  auto viewed = reader->BatchSearch(middle, 4, SearchOptions{.num_probes = 2});
  auto owned = reader->BatchSearch(copied, 4, SearchOptions{.num_probes = 2});
  ASSERT_TRUE(viewed.ok()) << viewed.status().ToString();
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  ASSERT_EQ(viewed->size(), 12u);
  for (size_t i = 0; i < viewed->size(); ++i) {
    ASSERT_EQ((*viewed)[i].results.size(), (*owned)[i].results.size());
    for (size_t k = 0; k < (*viewed)[i].results.size(); ++k) {
      EXPECT_EQ((*viewed)[i].results[k].id, (*owned)[i].results[k].id) << "query " << i << " rank " << k;
      EXPECT_EQ((*viewed)[i].results[k].score, (*owned)[i].results[k].score);
    }
  }
}

TEST_F(ReaderTest, BatchSearchNamesTheBadRowAndAnswersNothing) {
  Matrix data = testing::ClusteredMatrix(100, 4, 2, 3);
  ASSERT_TRUE(Write(data, Metric::kCosine, Strategy::kCluster, 2).ok());
  auto reader = OpenReader();
  Matrix queries = testing::RandomMatrix(10, 4, 5);
  std::fill(queries.row(6), queries.row(6) + 4, 0.0f);
  auto batch = reader->BatchSearch(queries, 3);
  ASSERT_EQ(batch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("query row 6"), std::string::npos) << batch.status().ToString();
  EXPECT_NE(batch.status().message().find("all zeros"), std::string::npos) << batch.status().ToString();
}

}  // namespace
}  // namespace shardvec
