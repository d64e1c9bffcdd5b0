// The distributed write API driven by hand, as the Spark/Dask/Ray writers drive it: plan from a sample,
// route batches, build one shard per db_id in claimed attempt folders, publish the winners.
#include "shardvec/distributed.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "format/keys.h"
#include "format/manifest.h"
#include "format/run_record.h"
#include "shardvec/reader.h"
#include "shardvec/update.h"
#include "support/fault_injection_store.h"
#include "support/id_index_check.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kDim = 8;

struct Case {
  std::string name;
  Strategy strategy;
  bool train = false;
};

// Everything the tests compare between two snapshots.
struct Snapshot {
  Manifest manifest;
  std::map<int64_t, std::vector<std::string>> ids;  // db_id → original ids in rowid order
  std::string routing_npy;                          // centroids.npy or hyperplanes.npy bytes
};

class DistributedTest : public ::testing::Test {
 protected:
  WriteConfig Config(const Case& c, const std::string& store) {
    WriteConfig config;
    config.store = store;
    config.local_root = (tmp_ / "build").string();
    config.index.dim = kDim;
    config.index.metric = Metric::kCosine;
    config.sharding.strategy = c.strategy;
    config.sharding.num_dbs = 4;
    if (c.strategy == Strategy::kCluster && c.train) {
      config.sharding.train_centroids = true;
      config.sharding.centroids_training_sample_size = data_.rows;  // WriteSharded then samples every row
    } else if (c.strategy == Strategy::kCluster) {
      config.sharding.centroids = testing::MakeMatrix(4, kDim, {data_.data.begin(), data_.data.begin() + 4 * kDim});
    }
    return config;
  }

  // The rows as records; shard ids only for EXPLICIT (other strategies refuse a record carrying one).
  std::vector<Record> Records(Strategy strategy = Strategy::kExplicit) const {
    return testing::MakeRecords(data_, false, strategy == Strategy::kExplicit ? 4 : 0);
  }

  ShardTask Task(const WriteConfig& config, const std::string& run_id, int64_t db_id) const {
    ShardTask t;
    t.store = config.store;
    t.store_options = config.store_options;
    t.local_root = config.local_root;
    t.run_id = run_id;
    t.db_id = db_id;
    t.dim = config.index.dim;
    t.metric = config.index.metric;
    t.quantization = config.index.quantization;
    return t;
  }

  // A driver and its workers in one process: routes in uneven batches, groups by db_id, builds every
  // db_id (empty ones too) and publishes.
  Result<BuildResult> WriteDistributed(const WriteConfig& config, std::shared_ptr<ObjectStore> store,
                                       const std::string& writer_type = "vector-test") {
    auto write = DistributedWrite::Begin(config, writer_type, store);
    if (!write.ok()) return write.status();
    const Matrix* sample = config.sharding.train_centroids ? &data_ : nullptr;
    auto plan = PlanRouting(config, sample);
    if (!plan.ok()) return plan.status();
    const std::vector<Record> records = Records(config.sharding.strategy);
    std::vector<int64_t> shard_ids;
    for (const Record& r : records) shard_ids.push_back(r.shard_id.value_or(kNoShardId));
    std::map<int64_t, std::vector<Record>> by_db;
    for (int64_t begin = 0; begin < data_.rows; begin += 37) {
      const int64_t rows = std::min<int64_t>(37, data_.rows - begin);
      auto routed = RouteRows(*plan, data_.row(begin), rows, shard_ids.data() + begin, begin);
      if (!routed.ok()) return routed.status();
      for (int64_t i = 0; i < rows; ++i) by_db[(*routed)[i]].push_back(records[begin + i]);
    }
    std::vector<ShardInfo> attempts;
    for (int64_t db = 0; db < plan->num_dbs; ++db) {
      VectorRecordSource source(by_db[db]);
      auto info = BuildShardAttempt(Task(config, (*write)->run_id(), db), source, store);
      if (!info.ok()) return info.status();
      attempts.push_back(*info);
    }
    return (*write)->Publish(*plan, attempts);
  }

  // Reads the current snapshot through the store (works for folders and S3 alike).
  Snapshot ReadSnapshot(ObjectStore& store) {
    Snapshot out;
    auto current = ReadCurrent(store);
    EXPECT_TRUE(current.ok() && *current);
    const std::string ref = (*current)->pointer.manifest_ref;
    auto manifest = ReadManifest(store, *KeyFromUrl(store.PrefixUrl(), ref), ref);
    EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
    out.manifest = *manifest;
    for (const ManifestShard& s : out.manifest.shards) {
      const fs::path local = tmp_ / ("dl" + std::to_string(++downloads_) + ".db");
      EXPECT_TRUE(store.GetToFile(*KeyFromUrl(store.PrefixUrl(), *s.db_url + "/shard.db"), local, s.db_bytes).ok());
      sqlite3* db = testing::OpenWithVec0(local);
      for (auto& row : testing::QueryRows(db, "SELECT original_id FROM vec_id_map ORDER BY internal_id")) {
        out.ids[s.db_id].push_back(row[0]);
      }
      sqlite3_close(db);
    }
    const auto& vec = out.manifest.custom["vector"];
    for (const char* field : {"centroids_ref", "hyperplanes_ref"}) {
      if (vec.contains(field)) out.routing_npy = *store.Get(*KeyFromUrl(store.PrefixUrl(), vec[field].get<std::string>()));
    }
    return out;
  }

  // (a): the same data written by WriteSharded into `reference` and by hand into `distributed`.
  void ExpectSameSnapshot(const Case& c, std::shared_ptr<ObjectStore> reference,
                          std::shared_ptr<ObjectStore> distributed) {
    SCOPED_TRACE(c.name);
    WriteConfig ref_config = Config(c, reference->PrefixUrl());
    VectorRecordSource source(Records(c.strategy));
    auto expected = WriteSharded(ref_config, source, reference);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    auto got = WriteDistributed(Config(c, distributed->PrefixUrl()), distributed);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->total_vectors, data_.rows);
    EXPECT_EQ(got->num_dbs, expected->num_dbs);
    ASSERT_EQ(got->shards.size(), expected->shards.size());
    for (size_t i = 0; i < got->shards.size(); ++i) {
      EXPECT_EQ(got->shards[i].db_id, expected->shards[i].db_id);
      EXPECT_EQ(got->shards[i].row_count, expected->shards[i].row_count);
      EXPECT_EQ(got->shards[i].attempt, 0);
    }
    Snapshot want = ReadSnapshot(*reference), have = ReadSnapshot(*distributed);
    EXPECT_EQ(have.ids, want.ids);
    EXPECT_EQ(have.routing_npy, want.routing_npy);
    EXPECT_EQ(c.strategy == Strategy::kExplicit, have.routing_npy.empty());
    EXPECT_EQ(have.manifest.custom["shardvec"]["shard_digests"], want.manifest.custom["shardvec"]["shard_digests"]);
    EXPECT_EQ(have.manifest.num_dbs, want.manifest.num_dbs);
    // The driver merged the tasks' id index parts into the index WriteSharded writes.
    EXPECT_EQ(testing::ExpectIdIndexMatchesShards(*distributed, have.manifest, tmp_ / "scratch"), data_.rows);
    EXPECT_EQ(have.manifest.custom["shardvec"]["id_index"]["digest"],
              want.manifest.custom["shardvec"]["id_index"]["digest"]);
    // Every local build folder is gone.
    EXPECT_TRUE(testing::ListFiles(tmp_ / "build").empty());
  }

  std::shared_ptr<ObjectStore> LocalStore(const std::string& name) {
    auto store = OpenStore((tmp_ / name).string());
    EXPECT_TRUE(store.ok());
    return *store;
  }

  // Every object key under the run's shard folder, relative to it.
  std::vector<std::string> RunShardObjects(ObjectStore& store, const std::string& run_id) {
    const std::string prefix = RunShardsPrefix(run_id);
    std::vector<std::string> keys;
    auto listed = store.List(prefix);
    EXPECT_TRUE(listed.ok());
    for (const ObjectInfo& o : listed->objects) keys.push_back(o.key.substr(prefix.size()));
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  RunRecord ReadRunRecord(ObjectStore& store, const std::string& run_id) {
    auto listed = store.List("runs/");
    EXPECT_TRUE(listed.ok());
    for (const ObjectInfo& o : listed->objects) {
      if (o.key.find("_run_id=" + run_id + "_") == std::string::npos) continue;
      auto record = ParseRunRecord(*store.Get(o.key));
      EXPECT_TRUE(record.ok());
      return *record;
    }
    ADD_FAILURE() << "no run record for " << run_id;
    return {};
  }

  // (c): three attempts at db 0, one empty db 1; publish gets a loser first and a duplicate winner.
  void ExpectOnlyWinnersSurvive(std::shared_ptr<ObjectStore> store) {
    WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
    config.sharding.num_dbs = 2;
    config.run_id = "R";
    auto write = DistributedWrite::Begin(config, "vector-spark", store);
    ASSERT_TRUE(write.ok()) << write.status().ToString();
    auto plan = PlanRouting(config, nullptr);
    ASSERT_TRUE(plan.ok());
    std::vector<Record> records = Records();
    std::vector<ShardInfo> attempts;
    for (int i = 0; i < 3; ++i) {
      VectorRecordSource source(std::vector<Record>(records.begin(), records.begin() + 10 + i));
      auto info = BuildShardAttempt(Task(config, "R", 0), source, store);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->attempt, i);
      EXPECT_THAT(info->db_url, ::testing::EndsWith(fmt::format("db=00000/attempt={:02d}", i)));
      attempts.push_back(*info);
    }
    VectorRecordSource empty(std::vector<Record>{});
    auto empty_info = BuildShardAttempt(Task(config, "R", 1), empty, store);
    ASSERT_TRUE(empty_info.ok());
    EXPECT_EQ(empty_info->row_count, 0);
    EXPECT_EQ(RunShardObjects(*store, "R"),
              (std::vector<std::string>{"_RUN", "db=00000/attempt=00/_CLAIM", "db=00000/attempt=00/id_index.part",
                                        "db=00000/attempt=00/shard.db", "db=00000/attempt=01/_CLAIM",
                                        "db=00000/attempt=01/id_index.part", "db=00000/attempt=01/shard.db",
                                        "db=00000/attempt=02/_CLAIM", "db=00000/attempt=02/id_index.part",
                                        "db=00000/attempt=02/shard.db", "db=00001/attempt=00/_CLAIM"}));

    // Attempt 2 "failed" after its upload: the driver never hears of it.
    auto result = (*write)->Publish(*plan, {attempts[1], attempts[0], attempts[0], *empty_info});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->shards.size(), 1u);
    EXPECT_EQ(result->total_vectors, 10);
    // Every attempt reported counts (the duplicate and the empty one too); the publish is timed.
    EXPECT_EQ(result->num_attempt_results, 4);
    EXPECT_GT(result->durations.manifest_ms, 0);
    EXPECT_EQ(result->durations.total_ms, result->elapsed_ms);
    EXPECT_EQ(result->durations.write_ms, result->elapsed_ms - result->durations.manifest_ms);
    EXPECT_EQ(result->durations.sharding_ms, 0);  // the plan was made by the caller
    // The run's claim (_RUN) stays with its published shards; the id index parts went, merged into
    // the run's index (of the winner's 10 rows).
    EXPECT_EQ(RunShardObjects(*store, "R"),
              (std::vector<std::string>{"_RUN", "db=00000/attempt=00/_CLAIM", "db=00000/attempt=00/shard.db"}));
    Snapshot snapshot = ReadSnapshot(*store);
    EXPECT_EQ(testing::ExpectIdIndexMatchesShards(*store, snapshot.manifest, tmp_ / "scratch"), 10);
    ASSERT_EQ(snapshot.manifest.shards.size(), 1u);
    EXPECT_THAT(*snapshot.manifest.shards[0].db_url, ::testing::EndsWith("db=00000/attempt=00"));
    EXPECT_EQ(snapshot.manifest.shards[0].attempt, 0);
    EXPECT_EQ(snapshot.ids[0].size(), 10u);
    EXPECT_EQ(ReadRunRecord(*store, "R").status, "succeeded");
    EXPECT_EQ(ReadRunRecord(*store, "R").writer_type, "vector-spark");
    EXPECT_TRUE(testing::ListFiles(tmp_ / "build").empty());
  }

  testing::TempDir tmp_;
  int downloads_ = 0;
  Matrix data_ = testing::ClusteredMatrix(300, kDim, 4, 21);
};

const std::vector<Case> kCases = {
    {"cluster, given centroids", Strategy::kCluster},
    {"cluster, trained", Strategy::kCluster, true},
    {"lsh", Strategy::kLsh},
    {"explicit", Strategy::kExplicit},
};

TEST_F(DistributedTest, HandDrivenRunMatchesWriteSharded) {
  for (size_t i = 0; i < kCases.size(); ++i) {
    ExpectSameSnapshot(kCases[i], LocalStore("ref" + std::to_string(i)), LocalStore("dist" + std::to_string(i)));
  }
}

TEST_F(DistributedTest, RouteRowsAgreesWithTheReadersFirstProbe) {
  for (size_t index : {0, 2}) {
    const Case& c = kCases[index];
    SCOPED_TRACE(c.name);
    auto store = LocalStore("probe" + std::to_string(index));
    WriteConfig config = Config(c, store->PrefixUrl());
    auto plan = PlanRouting(config, nullptr);
    ASSERT_TRUE(plan.ok());
    ASSERT_TRUE(WriteDistributed(config, store).ok());
    ReaderOptions options;
    options.store = store->PrefixUrl();
    options.cache_dir = (tmp_ / ("cache" + std::to_string(index))).string();
    auto reader = ShardedVectorReader::Open(options, store);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Matrix queries = testing::RandomMatrix(200, kDim, 5);  // unseen vectors, not only the written ones
    for (const Matrix* m : {&data_, &queries}) {
      auto routed = RouteRows(*plan, m->data.data(), m->rows, nullptr);
      ASSERT_TRUE(routed.ok()) << routed.status().ToString();
      for (int64_t i = 0; i < m->rows; ++i) {
        auto probe = (*reader)->Route(std::span<const float>(m->row(i), kDim), 1);
        ASSERT_TRUE(probe.ok());
        ASSERT_EQ((*probe)[0], (*routed)[i]) << "row " << i;
      }
    }
  }
}

TEST_F(DistributedTest, RetriedAttemptsClaimNewFoldersAndOnlyWinnersSurvivePublish) {
  ExpectOnlyWinnersSurvive(LocalStore("store"));
}

TEST_F(DistributedTest, ConcurrentAttemptsOfOneShardClaimDistinctFolders) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
  std::vector<Result<ShardInfo>> results(4, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      VectorRecordSource source(Records());
      results[i] = BuildShardAttempt(Task(config, "C", 3), source, store);
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> claimed;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->row_count, data_.rows);
    claimed.insert(r->attempt);
    EXPECT_TRUE(store->Head(ShardKey("C", 3, r->attempt)).ok());
  }
  EXPECT_EQ(claimed, (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(testing::ListFiles(tmp_ / "build").empty());
}

TEST_F(DistributedTest, FirstAttemptStartsTheClaimAndABadRecordNamesItsRow) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"lsh", Strategy::kLsh}, store->PrefixUrl());
  ShardTask task = Task(config, "F", 0);
  task.first_attempt = 7;
  std::vector<Record> records = Records();
  records[12].vector[1] = std::nanf("");
  VectorRecordSource bad(records);
  auto failed = BuildShardAttempt(task, bad, store);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("row 12"));
  EXPECT_THAT(failed.status().message(), HasSubstr("vector[1] is nan"));
  VectorRecordSource good(Records());
  auto info = BuildShardAttempt(task, good, store);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->attempt, 8);  // 7 is held by the failed attempt's claim
  EXPECT_TRUE(testing::ListFiles(tmp_ / "build").empty());
  task.run_id = "../x";
  EXPECT_THAT(BuildShardAttempt(task, good, store).status().message(), HasSubstr("run_id '../x'"));
}

// A task's quantization takes effect in the shard it builds, and an unknown one is refused by name.
TEST_F(DistributedTest, ATaskWithInt8QuantizationWritesCodesAndAnUnknownOneIsRefused) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"lsh", Strategy::kLsh}, store->PrefixUrl());
  ShardTask task = Task(config, "Q", 0);
  task.quantization = "int8";
  VectorRecordSource source(Records());
  auto info = BuildShardAttempt(task, source, store);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  sqlite3* db = testing::OpenWithVec0(info->db_url.substr(std::string("file://").size()) + "/shard.db");
  EXPECT_EQ(testing::QueryRows(db, "SELECT rows FROM shardvec_sq8_params")[0][0], std::to_string(info->row_count));
  sqlite3_close(db);
  task.quantization = "fp16";
  task.db_id = 1;
  VectorRecordSource again(Records());
  EXPECT_THAT(BuildShardAttempt(task, again, store).status().message(),
              HasSubstr("shard task quantization 'fp16' is not supported"));
}

// A task's sublists_per_shard takes effect in the shard it builds (as in WriteSharded), and a value
// out of range is refused by name.
TEST_F(DistributedTest, ATaskWithSublistsPerShardWritesSublistsAndABadCountIsRefused) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"lsh", Strategy::kLsh}, store->PrefixUrl());
  ShardTask task = Task(config, "L", 0);
  task.sublists_per_shard = 4;
  VectorRecordSource source(Records());
  auto info = BuildShardAttempt(task, source, store);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_GE(info->sublists, 2);
  EXPECT_LE(info->sublists, 4);
  sqlite3* db = testing::OpenWithVec0(info->db_url.substr(std::string("file://").size()) + "/shard.db");
  EXPECT_EQ(testing::QueryRows(db, "SELECT count(*) FROM shardvec_sublists")[0][0], std::to_string(info->sublists));
  EXPECT_EQ(testing::QueryRows(db, "SELECT max(rowid_hi) FROM shardvec_sublists")[0][0], std::to_string(info->row_count));
  sqlite3_close(db);
  task.sublists_per_shard = -1;
  task.db_id = 1;
  VectorRecordSource again(Records());
  EXPECT_THAT(BuildShardAttempt(task, again, store).status().message(),
              HasSubstr("shard task sublists_per_shard must be in 0..65536"));
}

// A task's filter_columns take effect in the shard it builds, its statistics reach the manifest by
// db_id, and a task built with other columns than the driver declares is refused at publish.
TEST_F(DistributedTest, ATaskWithFilterColumnsStoresThemAndOtherColumnsThanTheDriversAreRefused) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
  config.filter_columns = {{"row", "int"}};
  config.run_id = "F";
  auto write = DistributedWrite::Begin(config, "vector-dask", store);
  ASSERT_TRUE(write.ok()) << write.status().ToString();
  auto plan = PlanRouting(config, nullptr);
  ASSERT_TRUE(plan.ok());
  ShardTask task = Task(config, "F", 1);
  task.filter_columns = config.filter_columns;
  VectorRecordSource records(Records());
  auto info = BuildShardAttempt(task, records, store);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const auto stats = nlohmann::json::parse(info->filter_stats);
  EXPECT_EQ(stats, nlohmann::json::parse(fmt::format(R"({{"row": {{"nulls": 0, "min": 0, "max": {}}}}})", data_.rows - 1)));
  sqlite3* db = testing::OpenWithVec0(info->db_url.substr(std::string("file://").size()) + "/shard.db");
  EXPECT_EQ(testing::QueryRows(db, "SELECT name, type, rows FROM shardvec_filter_columns"),
            (std::vector<std::vector<std::string>>{{"row", "int", std::to_string(data_.rows)}}));
  sqlite3_close(db);
  ASSERT_TRUE((*write)->Publish(*plan, {*info}).ok());
  const Snapshot published = ReadSnapshot(*store);
  EXPECT_EQ(published.manifest.custom["shardvec"]["filter_columns"], nlohmann::json({{"row", "int"}}));
  EXPECT_EQ(published.manifest.custom["shardvec"]["filter_stats"]["1"], stats);
  const std::string current = *store->Get("_CURRENT");

  config.run_id = "G";
  auto other = DistributedWrite::Begin(config, "vector-dask", store);
  ASSERT_TRUE(other.ok());
  ShardTask plain = Task(config, "G", 1);  // a task not given the driver's columns
  VectorRecordSource more(Records());
  auto built = BuildShardAttempt(plain, more, store);
  ASSERT_TRUE(built.ok());
  const Status refused = (*other)->Publish(*plan, {*built}).status();
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("shard db_id 1 reports filter column statistics for [] but the write "
                                           "declares filter_columns [row]"));
  EXPECT_EQ(*store->Get("_CURRENT"), current);

  for (const auto& [columns, fragment] : std::vector<std::pair<std::map<std::string, std::string>, std::string>>{
           {{{"row", "bool"}}, "filter column 'row' (bool): value 0 is not true or false"},
           {{{"1x", "int"}}, "shard task filter_columns name '1x'"}}) {
    task.filter_columns = columns;
    task.db_id = 2;
    VectorRecordSource again(Records());
    EXPECT_THAT(BuildShardAttempt(task, again, store).status().message(), HasSubstr(fragment));
  }
}

TEST_F(DistributedTest, PublishRejectsADbIdOutOfRangeAndLeavesCurrentAlone) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
  VectorRecordSource source(Records());
  ASSERT_TRUE(WriteSharded(config, source, store).ok());
  const std::string current = *store->Get("_CURRENT");

  config.run_id = "OUT";
  auto write = DistributedWrite::Begin(config, "vector-dask", store);
  ASSERT_TRUE(write.ok());
  auto plan = PlanRouting(config, nullptr);
  VectorRecordSource records(Records());
  auto good = BuildShardAttempt(Task(config, "OUT", 1), records, store);
  auto stray = BuildShardAttempt(Task(config, "OUT", 9), records, store);
  ASSERT_TRUE(good.ok() && stray.ok());
  auto published = (*write)->Publish(*plan, {*good, *stray});
  ASSERT_EQ(published.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(published.status().message(), HasSubstr("db_id 9"));
  EXPECT_THAT(published.status().message(), HasSubstr("num_dbs 4"));
  EXPECT_EQ(*store->Get("_CURRENT"), current);
  EXPECT_TRUE(RunShardObjects(*store, "OUT").empty());
  EXPECT_EQ(ReadRunRecord(*store, "OUT").status, "failed");
  EXPECT_EQ(ReadRunRecord(*store, "OUT").writer_type, "vector-dask");
  // The run is over: a second Publish is refused.
  EXPECT_FALSE((*write)->Publish(*plan, {*good}).ok());
  EXPECT_EQ(*store->Get("_CURRENT"), current);

  // A shard that is not this run's folder for its db_id (another run's, say) is refused as well.
  config.run_id = "OTHER";
  auto other = DistributedWrite::Begin(config, "vector-dask", store);
  ASSERT_TRUE(other.ok());
  VectorRecordSource more(Records());
  auto foreign = BuildShardAttempt(Task(config, "OUT", 1), more, store);
  ASSERT_TRUE(foreign.ok());
  EXPECT_THAT((*other)->Publish(*plan, {*foreign}).status().message(), HasSubstr("is not this run's"));
  EXPECT_EQ(*store->Get("_CURRENT"), current);
}

TEST_F(DistributedTest, LosingThePublishRaceKeepsTheWinnersForRollbackAndDropsTheRest) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
  config.run_id = "SLOW";
  auto write = DistributedWrite::Begin(config, "vector-spark", store);
  ASSERT_TRUE(write.ok());
  auto plan = PlanRouting(config, nullptr);
  std::vector<ShardInfo> attempts;
  for (int i = 0; i < 2; ++i) {
    VectorRecordSource source(Records());
    attempts.push_back(*BuildShardAttempt(Task(config, "SLOW", 2), source, store));
  }
  // Another writer publishes while this run is still building.
  WriteConfig other = config;
  other.run_id = "FAST";
  VectorRecordSource source(Records());
  ASSERT_TRUE(WriteSharded(other, source, store).ok());
  const std::string current = *store->Get("_CURRENT");

  auto published = (*write)->Publish(*plan, attempts);
  ASSERT_EQ(published.status().code(), StatusCode::kConflict);
  EXPECT_THAT(published.status().message(), HasSubstr("PublishConflictError"));
  EXPECT_EQ(*store->Get("_CURRENT"), current);
  EXPECT_EQ(ReadRunRecord(*store, "SLOW").status, "failed");
  // The manifest stays in history, so the shard it names stays too; the losing attempt goes.
  EXPECT_EQ(RunShardObjects(*store, "SLOW"),
            (std::vector<std::string>{"_RUN", "db=00002/attempt=00/_CLAIM", "db=00002/attempt=00/shard.db"}));
}

TEST_F(DistributedTest, RouteRowsErrorsNameTheRow) {
  WriteConfig config = Config({"lsh", Strategy::kLsh}, (tmp_ / "store").string());
  auto plan = PlanRouting(config, nullptr);
  ASSERT_TRUE(plan.ok());
  Matrix batch = testing::RandomMatrix(5, kDim, 3);
  batch.row(3)[2] = std::nanf("");
  auto nan = RouteRows(*plan, batch.data.data(), batch.rows, nullptr, 100);
  ASSERT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("row 103"));
  EXPECT_THAT(nan.status().message(), HasSubstr("vector[2] is nan"));
  std::fill(batch.row(3), batch.row(3) + kDim, 0.0f);
  EXPECT_THAT(RouteRows(*plan, batch.data.data(), batch.rows, nullptr, 100).status().message(),
              HasSubstr("all zeros"));

  config.sharding.strategy = Strategy::kExplicit;
  auto explicit_plan = PlanRouting(config, nullptr);
  ASSERT_TRUE(explicit_plan.ok());
  Matrix ok_batch = testing::RandomMatrix(3, kDim, 4);
  std::vector<int64_t> ids = {0, 3, kNoShardId};
  auto missing = RouteRows(*explicit_plan, ok_batch.data.data(), 3, ids.data(), 40);
  EXPECT_THAT(missing.status().message(), HasSubstr("EXPLICIT sharding requires shard_id"));
  EXPECT_THAT(missing.status().message(), HasSubstr("row 42"));
  EXPECT_THAT(RouteRows(*explicit_plan, ok_batch.data.data(), 3, nullptr, 40).status().message(),
              HasSubstr("row 40"));
  ids = {0, 4, 1};
  auto out_of_range = RouteRows(*explicit_plan, ok_batch.data.data(), 3, ids.data(), 40);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("shard_id 4 out of range [0, 4)"));
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("row 41"));
  ids = {0, 3, 1};
  EXPECT_EQ(*RouteRows(*explicit_plan, ok_batch.data.data(), 3, ids.data(), 40), ids);

  // A trained plan needs its sample.
  config.sharding.strategy = Strategy::kCluster;
  config.sharding.train_centroids = true;
  EXPECT_THAT(PlanRouting(config, nullptr).status().message(), HasSubstr("needs a training sample"));
}

TEST_F(DistributedTest, RunRecordEndsWithTheWriterTypeAndStatus) {
  auto store = LocalStore("store");
  WriteConfig config = Config({"lsh", Strategy::kLsh}, store->PrefixUrl());
  config.run_id = "OK";
  ASSERT_TRUE(WriteDistributed(config, store, "vector-ray").ok());
  RunRecord ok = ReadRunRecord(*store, "OK");
  EXPECT_EQ(ok.status, "succeeded");
  EXPECT_EQ(ok.writer_type, "vector-ray");
  EXPECT_EQ(ok.manifest_ref, ReadCurrent(*store).value()->pointer.manifest_ref);

  // Abort, and a run dropped without Publish, both end failed with their shards removed.
  for (const std::string run : {"ABORTED", "DROPPED"}) {
    config.run_id = run;
    auto write = DistributedWrite::Begin(config, "vector-spark", store);
    ASSERT_TRUE(write.ok());
    VectorRecordSource source(Records());
    ASSERT_TRUE(BuildShardAttempt(Task(config, run, 0), source, store).ok());
    if (run == "ABORTED") (*write)->Abort(Status::IOError("executor lost"));
    write->reset();
    RunRecord failed = ReadRunRecord(*store, run);
    EXPECT_EQ(failed.status, "failed") << run;
    EXPECT_EQ(failed.writer_type, "vector-spark");
    EXPECT_TRUE(RunShardObjects(*store, run).empty()) << run;
  }
  EXPECT_EQ(ReadRunRecord(*store, "ABORTED").error_message, "executor lost");
}

// The update after a distributed build finds its shards through the index the driver merged, reading
// only the shard it rebuilds. A publish that fails before its manifest leaves neither the index nor
// the parts; a winner without a part (a task of an older shardvec) publishes without an index, and
// the next update reads every shard's id map instead.
TEST_F(DistributedTest, TheNextUpdateUsesTheMergedIdIndexAndAFailedPublishLeavesNone) {
  auto plain = LocalStore("store");
  auto store = std::make_shared<testing::ShardReadCountingStore>(plain);
  WriteConfig config = Config({"explicit", Strategy::kExplicit}, store->PrefixUrl());
  ASSERT_TRUE(WriteDistributed(config, store).ok());
  // Row 5 (id 15, shard 1) upserted and row 9 (id 27, shard 1) deleted.
  const Matrix vector = testing::MakeMatrix(1, kDim, {data_.row(5), data_.row(5) + kDim});
  const std::vector<int64_t> ids = {15}, shard_ids = {1};
  RecordBatch upsert{1, kDim, vector.data.data()};
  upsert.int_ids = ids;
  upsert.shard_ids = shard_ids;
  store->shard_reads = 0;
  auto updated = UpdateSharded(config, &upsert, {RecordId(int64_t{27})}, {}, store);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_TRUE(updated->report.used_id_index);
  EXPECT_EQ(updated->report.replaced, 1);
  EXPECT_EQ(updated->report.deleted, 1);
  ASSERT_EQ(updated->report.rebuilt.size(), 1u);
  EXPECT_EQ(updated->report.rebuilt[0].db_id, 1);
  EXPECT_EQ(store->shard_reads.load(), 1);

  // The driver's store fails just before the manifest's upload, after the index's.
  config.run_id = "FAILED";
  auto failing = std::make_shared<testing::FaultInjectionStore>(
      plain, testing::FaultAt(testing::kFaultAfterRoutingArtifacts, 1, /*crash=*/false));
  auto write = DistributedWrite::Begin(config, "vector-ray", failing);
  ASSERT_TRUE(write.ok());
  auto plan = PlanRouting(config, nullptr);
  ASSERT_TRUE(plan.ok());
  std::vector<ShardInfo> attempts;
  const std::vector<Record> records = Records();
  for (int64_t db = 0; db < 2; ++db) {
    VectorRecordSource source(std::vector<Record>(records.begin() + 10 * db, records.begin() + 10 * db + 10));
    auto info = BuildShardAttempt(Task(config, "FAILED", db), source, plain);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    attempts.push_back(*info);
  }
  EXPECT_THAT((*write)->Publish(*plan, attempts).status().message(), HasSubstr("fault injected"));
  EXPECT_TRUE(RunShardObjects(*plain, "FAILED").empty());
  auto meta = plain->List(VectorMetaKey("FAILED", ""));
  ASSERT_TRUE(meta.ok());
  EXPECT_TRUE(meta->objects.empty()) << meta->objects[0].key;

  // A winner without its part: published without an index; the next update reads every shard.
  config.run_id = "OLDTASK";
  write = DistributedWrite::Begin(config, "vector-spark", plain);
  ASSERT_TRUE(write.ok());
  attempts.clear();
  for (int64_t db = 0; db < 4; ++db) {
    std::vector<Record> rows;
    for (const Record& r : records) {
      if (r.shard_id == db) rows.push_back(r);
    }
    VectorRecordSource source(rows);
    auto info = BuildShardAttempt(Task(config, "OLDTASK", db), source, plain);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    attempts.push_back(*info);
  }
  ASSERT_TRUE(plain->Delete(ShardIdIndexPartKey("OLDTASK", 2, 0)).ok());
  auto published = (*write)->Publish(*plan, attempts);
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  Snapshot snapshot = ReadSnapshot(*plain);
  EXPECT_FALSE(snapshot.manifest.custom["shardvec"].contains("id_index"));
  EXPECT_EQ(RunShardObjects(*plain, "OLDTASK").size(), 9u) << "_RUN and each shard's claim and file, no part";
  config.run_id.reset();
  store->shard_reads = 0;
  updated = UpdateSharded(config, &upsert, {}, {}, store);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_FALSE(updated->report.used_id_index);
  EXPECT_EQ(store->shard_reads.load(), 5) << "every shard's id map, then the rebuilt shard";
}

// On the S3 test server: claims are If-None-Match puts, deletes are batched.
class S3DistributedTest : public DistributedTest {};

TEST_F(S3DistributedTest, HandDrivenRunMatchesWriteShardedAndKeepsOnlyWinners) {
  std::shared_ptr<ObjectStore> s3 = testing::OpenS3TestStore(testing::UniqueS3Prefix("distributed"));
  ASSERT_TRUE(s3);
  ExpectSameSnapshot(kCases[2], LocalStore("ref"), s3);
  ExpectOnlyWinnersSurvive(testing::OpenS3TestStore(testing::UniqueS3Prefix("distributed-attempts")));
}

}  // namespace
}  // namespace shardvec
