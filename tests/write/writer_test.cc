#include "shardvec/writer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/digest.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "format/npy.h"
#include "routing/cluster.h"
#include "routing/lsh.h"
#include "shard/shard_builder.h"
#include "shardvec/update.h"
#include "snapshot/publisher.h"
#include "support/id_index_check.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using testing::QueryRows;

std::vector<Record> MakeRecords(const Matrix& m) {
  std::vector<Record> records;
  for (int64_t i = 0; i < m.rows; ++i) {
    Record r;
    r.id = (i % 2 == 0) ? RecordId(i * 10) : RecordId("doc-" + std::to_string(i));
    r.vector.assign(m.row(i), m.row(i) + m.cols);
    if (i % 3 == 0) r.payload_json = "{\"row\": " + std::to_string(i) + ", \"tag\": \"t\"}";
    records.push_back(std::move(r));
  }
  return records;
}

fs::path PathFromUrl(const std::string& url) { return fs::path(url.substr(std::string("file://").size())); }

class WriterTest : public ::testing::Test {
 protected:
  WriteConfig BaseConfig(int64_t dim) {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = dim;
    c.index.metric = Metric::kL2;
    return c;
  }
  Manifest CurrentManifest() {
    auto ptr = ParseCurrentPointer(testing::ReadText(tmp_ / "store" / "_CURRENT"));
    EXPECT_TRUE(ptr.ok()) << ptr.status().ToString();
    auto m = ParseManifest(testing::ReadText(PathFromUrl(ptr->manifest_ref)));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return *m;
  }
  // Original ids of every row in a shard, read with plain SQLite.
  std::vector<std::string> ShardIds(const ManifestShard& s) {
    sqlite3* db = testing::OpenWithVec0(PathFromUrl(*s.db_url) / "shard.db");
    auto rows = QueryRows(db, "SELECT original_id FROM vec_id_map ORDER BY internal_id");
    sqlite3_close(db);
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(r[0]);
    return out;
  }
  testing::TempDir tmp_;
};

TEST_F(WriterTest, ClusterWithGivenCentroidsPublishesAVerifiableSnapshot) {
  Matrix data = testing::ClusteredMatrix(300, 8, 4, 7);
  WriteConfig c = BaseConfig(8);
  Matrix centroids{4, 8, {}};
  for (int64_t k = 0; k < 4; ++k) centroids.data.insert(centroids.data.end(), data.row(k), data.row(k) + 8);
  c.sharding.centroids = centroids;
  c.sharding.num_probes = 2;
  VectorRecordSource source(MakeRecords(data));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->total_vectors, 300);
  EXPECT_EQ(result->num_dbs, 4);

  Manifest m = CurrentManifest();
  EXPECT_EQ(m.run_id, result->run_id);
  EXPECT_EQ(m.num_dbs, 4);
  const auto& vec = m.custom["vector"];
  EXPECT_EQ(vec["dim"], 8);
  EXPECT_EQ(vec["metric"], "l2");
  EXPECT_EQ(vec["sharding_strategy"], "cluster");
  EXPECT_EQ(vec["num_probes"], 2);
  EXPECT_EQ(vec["total_vectors"], 300);
  EXPECT_EQ(vec["index_type"], "hnsw");
  EXPECT_TRUE(vec["quantization"].is_null());
  auto stored = ParseNpyMatrix(testing::ReadText(PathFromUrl(vec["centroids_ref"])), "centroids");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->data, centroids.data);

  // Every row sits in the shard the router assigns it, and digests match the bytes.
  int64_t rows = 0;
  for (const ManifestShard& s : m.shards) {
    const auto file = PathFromUrl(*s.db_url) / "shard.db";
    auto digest = DigestFile(file);
    EXPECT_EQ(m.custom["shardvec"]["shard_digests"][std::to_string(s.db_id)], digest->digest);
    EXPECT_EQ(s.db_bytes, digest->size);
    rows += s.row_count;
    sqlite3* db = testing::OpenWithVec0(file);
    auto vectors = QueryRows(db, "SELECT rowid, vec_to_json(embedding) FROM vec_index");
    EXPECT_EQ(static_cast<int64_t>(vectors.size()), s.row_count);
    for (auto& row : vectors) {
      auto values = nlohmann::json::parse(row[1]).get<std::vector<float>>();
      EXPECT_EQ(ClusterAssign(values.data(), centroids, Metric::kL2), s.db_id);
    }
    sqlite3_close(db);
  }
  EXPECT_EQ(rows, 300);
  // The run-scoped build folder is gone.
  EXPECT_FALSE(fs::exists(tmp_ / "build" / ("run_id=" + result->run_id)));
}

// The writer knows each shard's row count before building it, so the shard's pages and vec0 chunks
// are sized to it: within 1.15x of the raw vectors and ids even for shards of a few hundred rows.
TEST_F(WriterTest, EachShardIsSizedToItsRowCount) {
  constexpr int64_t kDim = 384;
  Matrix data = testing::ClusteredMatrix(3000, kDim, 4, 11);
  WriteConfig c = BaseConfig(kDim);
  Matrix centroids{4, kDim, {}};
  for (int64_t k = 0; k < 4; ++k) centroids.data.insert(centroids.data.end(), data.row(k), data.row(k) + kDim);
  c.sharding.centroids = centroids;
  std::vector<Record> records;
  for (int64_t i = 0; i < data.rows; ++i) {
    Record r;
    r.id = RecordId(i);
    r.vector.assign(data.row(i), data.row(i) + kDim);
    records.push_back(std::move(r));
  }
  VectorRecordSource source(std::move(records));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  Manifest m = CurrentManifest();
  ASSERT_GE(m.shards.size(), 2u);
  for (const ManifestShard& s : m.shards) {
    SCOPED_TRACE(::testing::Message() << "shard " << s.db_id << ", " << s.row_count << " rows");
    const double raw = static_cast<double>(s.row_count) * (kDim * sizeof(float) + sizeof(int64_t));
    EXPECT_LE(static_cast<double>(s.db_bytes), 1.15 * raw);
    sqlite3* db = testing::OpenWithVec0(PathFromUrl(*s.db_url) / "shard.db");
    EXPECT_EQ(QueryRows(db, "PRAGMA page_size")[0][0], std::to_string(PageSizeFor(kDim, s.row_count)));
    EXPECT_EQ(QueryRows(db, "SELECT sql FROM sqlite_master WHERE name = 'vec_index'")[0][0],
              "CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[384] distance_metric=l2, chunk_size=" +
                  std::to_string(ChunkSizeFor(kDim, s.row_count)) + ")");
    EXPECT_EQ(QueryRows(db, "SELECT count(*) FROM vec_index")[0][0], std::to_string(s.row_count));
    sqlite3_close(db);
  }
  // The manifest still names the largest page size.
  EXPECT_EQ(m.custom["shardvec"]["page_size"], kShardPageSize);
}

// quantization "int8": every shard carries the code tables and the manifest says so; "none" and
// unset: no code tables, custom.shardvec.quantization "none".
TEST_F(WriterTest, QuantizationInt8WritesCodesInEveryShardAndTheManifestRecordsIt) {
  for (const std::optional<std::string>& q : {std::optional<std::string>("int8"), std::optional<std::string>("none"),
                                             std::optional<std::string>()}) {
    Matrix data = testing::ClusteredMatrix(200, 8, 3, 5);
    WriteConfig c = BaseConfig(8);
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 3;
    c.index.quantization = q;
    c.allow_schema_change = true;
    VectorRecordSource source(MakeRecords(data));
    auto result = WriteSharded(c, source);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    Manifest m = CurrentManifest();
    const bool int8 = q == "int8";
    EXPECT_EQ(m.custom["shardvec"]["quantization"], int8 ? "int8" : "none");
    EXPECT_EQ(m.custom["vector"]["quantization"], q ? nlohmann::json(*q) : nlohmann::json());
    for (const ManifestShard& s : m.shards) {
      sqlite3* db = testing::OpenWithVec0(PathFromUrl(*s.db_url) / "shard.db");
      auto tables = QueryRows(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'shardvec_sq8%'");
      EXPECT_EQ(tables[0][0], int8 ? "2" : "0") << q.value_or("unset");
      if (int8) {
        EXPECT_EQ(QueryRows(db, "SELECT rows FROM shardvec_sq8_params")[0][0], std::to_string(s.row_count));
      }
      sqlite3_close(db);
    }
  }
}

TEST_F(WriterTest, PayloadsAndTypedIdsAreStoredAsTheReferenceStoresThem) {
  Matrix data = testing::RandomMatrix(30, 4, 1);
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 1;
  auto records = MakeRecords(data);
  for (auto& r : records) r.shard_id = 0;
  records[0].payload_json = R"({"z": 1, "a": [1, 2], "u": "é"})";
  VectorRecordSource source(records);
  ASSERT_TRUE(WriteSharded(c, source).ok());
  Manifest m = CurrentManifest();
  ASSERT_EQ(m.shards.size(), 1u);
  auto ids = ShardIds(m.shards[0]);
  ASSERT_EQ(ids.size(), 30u);
  EXPECT_EQ(ids[0], R"({"v": 0, "t": "int"})");
  EXPECT_EQ(ids[1], R"({"v": "doc-1", "t": "str"})");
  sqlite3* db = testing::OpenWithVec0(PathFromUrl(*m.shards[0].db_url) / "shard.db");
  auto payloads = QueryRows(db, "SELECT rowid, payload FROM vec_payloads ORDER BY rowid");
  sqlite3_close(db);
  ASSERT_EQ(payloads.size(), 10u);  // rows 0, 3, 6, … have payloads
  EXPECT_EQ(payloads[0][1], R"({"z": 1, "a": [1, 2], "u": "\u00e9"})");
  EXPECT_EQ(payloads[1][0], "3");
}

// The reference's BuildStats fields, measured: each phase's time, their sum within the call's, and
// one attempt per shard built (shard 3 gets no rows, so it is not built).
TEST_F(WriterTest, BuildResultReportsEachPhasesTimeAndTheAttemptsBuilt) {
  Matrix data = testing::ClusteredMatrix(400, 8, 4, 2);
  WriteConfig c = BaseConfig(8);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 4;
  auto records = MakeRecords(data);
  for (size_t i = 0; i < records.size(); ++i) records[i].shard_id = static_cast<int64_t>(i % 3);
  VectorRecordSource source(records);
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->num_attempt_results, 3);
  EXPECT_EQ(result->shards.size(), 3u);
  const BuildDurations& d = result->durations;
  EXPECT_GT(d.sharding_ms, 0);
  EXPECT_GT(d.write_ms, 0);
  EXPECT_GT(d.manifest_ms, 0);
  EXPECT_EQ(d.total_ms, result->elapsed_ms);
  EXPECT_LE(d.sharding_ms + d.write_ms + d.manifest_ms, d.total_ms);
}

TEST_F(WriterTest, TrainedCentroidsAreDeterministic) {
  Matrix data = testing::ClusteredMatrix(500, 6, 5, 3);
  std::string first;
  for (int run = 0; run < 2; ++run) {
    WriteConfig c = BaseConfig(6);
    c.sharding.num_dbs = 5;
    c.sharding.train_centroids = true;
    c.sharding.centroids_training_sample_size = 200;
    VectorRecordSource source(MakeRecords(data));
    auto result = WriteSharded(c, source);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    const std::string npy = testing::ReadText(PathFromUrl(CurrentManifest().custom["vector"]["centroids_ref"]));
    if (run == 0) first = npy;
    else EXPECT_EQ(npy, first);
  }
}

// A stream that can be read once, as a Python iterator is: Rewind after the first Next fails.
class OneShotSource final : public RecordSource {
 public:
  explicit OneShotSource(std::vector<Record> records) : inner_(std::move(records)) {}
  Result<bool> Next(Record* out) override {
    ++reads_;
    return inner_.Next(out);
  }
  Status Rewind() override {
    if (reads_ > 0) return Status::Internal("OneShotSource rewound after reading");
    return Status::OK();
  }
  bool CanRewind() const override { return false; }
  int64_t reads() const { return reads_; }

 private:
  VectorRecordSource inner_;
  int64_t reads_ = 0;
};

TEST_F(WriterTest, OneShotStreamTrainsCentroidsReadingTheStreamOnce) {
  Matrix data = testing::ClusteredMatrix(400, 6, 4, 9);
  std::vector<std::vector<std::string>> contents[2];
  std::string centroids[2];
  for (int run = 0; run < 2; ++run) {
    WriteConfig c = BaseConfig(6);
    c.sharding.num_dbs = 4;
    c.sharding.train_centroids = true;
    c.sharding.centroids_training_sample_size = 150;
    Result<BuildResult> result = Status::Internal("not run");
    if (run == 0) {
      VectorRecordSource source(MakeRecords(data));
      result = WriteSharded(c, source);
    } else {
      OneShotSource source(MakeRecords(data));
      result = WriteSharded(c, source);
      EXPECT_EQ(source.reads(), data.rows + 1);  // every record once, then the end
    }
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    Manifest m = CurrentManifest();
    centroids[run] = testing::ReadText(PathFromUrl(m.custom["vector"]["centroids_ref"]));
    for (const ManifestShard& s : m.shards) contents[run].push_back(ShardIds(s));
    // The replay spool lives in the run's build folder, which is gone afterwards.
    EXPECT_TRUE(fs::is_empty(tmp_ / "build"));
  }
  EXPECT_EQ(centroids[1], centroids[0]);
  EXPECT_EQ(contents[1], contents[0]);
}

TEST_F(WriterTest, OneShotStreamWithoutTrainingIsReadOnce) {
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = 3;
  OneShotSource source(MakeRecords(testing::RandomMatrix(50, 4, 2)));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->total_vectors, 50);
  EXPECT_EQ(source.reads(), 51);
}

TEST_F(WriterTest, LshStoresHyperplanesAndRoutesByThem) {
  Matrix data = testing::RandomMatrix(200, 5, 9);
  WriteConfig c = BaseConfig(5);
  c.index.metric = Metric::kCosine;
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = 6;
  c.sharding.num_hash_bits = 4;
  VectorRecordSource source(MakeRecords(data));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  Manifest m = CurrentManifest();
  EXPECT_EQ(m.custom["vector"]["num_hash_bits"], 4);
  EXPECT_FALSE(m.custom["vector"].contains("centroids_ref"));
  auto planes = ParseNpyMatrix(testing::ReadText(PathFromUrl(m.custom["vector"]["hyperplanes_ref"])), "hp");
  ASSERT_TRUE(planes.ok());
  EXPECT_EQ(planes->rows, 4);
  EXPECT_EQ(planes->data, GenerateHyperplanes(4, 5).data);
  std::map<std::string, int64_t> shard_of;
  for (const auto& s : m.shards) for (auto& id : ShardIds(s)) shard_of[id] = s.db_id;
  auto records = MakeRecords(data);
  for (const auto& r : records) {
    const std::string key = std::holds_alternative<int64_t>(r.id)
        ? "{\"v\": " + std::to_string(std::get<int64_t>(r.id)) + ", \"t\": \"int\"}"
        : "{\"v\": \"" + std::get<std::string>(r.id) + "\", \"t\": \"str\"}";
    EXPECT_EQ(shard_of.at(key), LshAssign(r.vector.data(), *planes, 6));
  }
}

TEST_F(WriterTest, EmptyInputPublishesAManifestWithNoShards) {
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 3;
  VectorRecordSource source({});
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  Manifest m = CurrentManifest();
  EXPECT_EQ(m.num_dbs, 3);
  EXPECT_TRUE(m.shards.empty());
  EXPECT_EQ(m.custom["vector"]["total_vectors"], 0);
}

TEST_F(WriterTest, BadRecordsFailTheRunAndLeaveCurrentAndShardsUntouched) {
  Matrix data = testing::RandomMatrix(50, 4, 2);
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 2;
  auto good = MakeRecords(data);
  for (auto& r : good) r.shard_id = 1;
  VectorRecordSource ok_source(good);
  ASSERT_TRUE(WriteSharded(c, ok_source).ok());
  const std::string before = testing::ReadText(tmp_ / "store" / "_CURRENT");

  struct Case { std::string name; std::function<void(Record&)> spoil; std::string expect; };
  std::vector<Case> cases = {
      {"shard out of range", [](Record& r) { r.shard_id = 2; }, "shard_id 2 out of range [0, 2)"},
      {"missing shard", [](Record& r) { r.shard_id.reset(); }, "EXPLICIT sharding requires shard_id"},
      {"nan", [](Record& r) { r.vector[2] = std::nanf(""); }, "vector[2] is nan"},
      {"inf", [](Record& r) { r.vector[0] = INFINITY; }, "vector[0] is inf"},
      {"wrong dim", [](Record& r) { r.vector.push_back(1); }, "vector has 5 values, expected dim 4"},
      {"bad payload", [](Record& r) { r.payload_json = "[1]"; }, "payload must be a JSON object"},
      {"payload not json", [](Record& r) { r.payload_json = "{\"a\": "; }, "payload is not valid JSON"},
      // 16 MiB + 1 byte as stored: {"x": "<16777208 x's>"}.
      {"huge payload", [](Record& r) { r.payload_json = "{\"x\": \"" + std::string((16 << 20) - 8, 'x') + "\"}"; },
       "payload is 16777217 bytes, above the limit of 16777216 bytes"},
  };
  for (const auto& tc : cases) {
    auto records = good;
    tc.spoil(records[37]);
    VectorRecordSource source(records);
    auto result = WriteSharded(c, source);
    ASSERT_FALSE(result.ok()) << tc.name;
    EXPECT_NE(result.status().message().find(tc.expect), std::string::npos)
        << tc.name << ": " << result.status().message();
    EXPECT_NE(result.status().message().find("row 37"), std::string::npos) << result.status().message();
    EXPECT_EQ(testing::ReadText(tmp_ / "store" / "_CURRENT"), before) << tc.name;
  }
  // Only the one good run's shard directory exists.
  int runs = 0;
  for (auto& e : fs::directory_iterator(tmp_ / "store" / "shards")) runs += e.is_directory();
  EXPECT_EQ(runs, 1);
}

TEST_F(WriterTest, ZeroVectorIsRejectedUnderCosineOnly) {
  WriteConfig c = BaseConfig(3);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 1;
  Record zero{RecordId(int64_t{5}), {0, 0, 0}, std::nullopt, 0, std::nullopt};
  c.index.metric = Metric::kCosine;
  VectorRecordSource cosine_source({zero});
  auto r = WriteSharded(c, cosine_source);
  EXPECT_NE(r.status().message().find("all zeros"), std::string::npos) << r.status().ToString();
  c.index.metric = Metric::kL2;
  VectorRecordSource l2_source({zero});
  EXPECT_TRUE(WriteSharded(c, l2_source).ok());
}

TEST_F(WriterTest, ConfigErrorsNameTheFieldAndValue) {
  struct Case { std::function<void(WriteConfig&)> edit; std::string expect; };
  std::vector<Case> cases = {
      {[](WriteConfig& c) { c.index.dim = 0; }, "index_config.dim must be > 0 (got 0)"},
      {[](WriteConfig& c) { c.sharding.num_dbs = -2; c.sharding.train_centroids = true; }, "num_dbs must be > 0, got -2"},
      {[](WriteConfig& c) { c.sharding.num_probes = 0; c.sharding.train_centroids = true; c.sharding.num_dbs = 2; }, "num_probes must be >= 1 (got 0)"},
      {[](WriteConfig& c) {}, "CLUSTER sharding requires either centroids or train_centroids=True"},
      {[](WriteConfig& c) { c.sharding.train_centroids = true; }, "num_dbs must be provided for CLUSTER sharding with train_centroids"},
      {[](WriteConfig& c) { c.sharding.centroids = Matrix{2, 3, std::vector<float>(6)}; }, "centroids has 3 columns but index_config.dim is 4"},
      {[](WriteConfig& c) { c.sharding.centroids = Matrix{2, 4, std::vector<float>(8)}; c.sharding.num_dbs = 3; }, "centroids count (2) != num_dbs (3)"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kLsh; }, "num_dbs must be provided for LSH sharding"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kLsh; c.sharding.num_dbs = 2; c.sharding.num_hash_bits = 0; }, "num_hash_bits must be in 1..62 (got 0)"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kExplicit; c.sharding.num_dbs = 2; c.sharding.num_probes = 3; }, "num_probes is only supported for CLUSTER and LSH sharding, got 3 for explicit"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kCel; }, "CEL sharding requires cel_expr to be set"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kExplicit; c.sharding.num_dbs = 1; c.run_id = "a/b"; }, "run_id 'a/b' must be"},
      // kMaxNumDbs holds however the shard count is given: num_dbs, centroids rows or routing_values.
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kLsh; c.sharding.num_dbs = 1000000000; }, "num_dbs must be <= 1000000, got 1000000000"},
      {[](WriteConfig& c) { c.sharding.strategy = Strategy::kExplicit; c.sharding.num_dbs = int64_t{1} << 40; }, "num_dbs must be <= 1000000, got 1099511627776"},
      {[](WriteConfig& c) { c.sharding.centroids = Matrix{kMaxNumDbs + 1, 4, std::vector<float>((kMaxNumDbs + 1) * 4, 1.0f)}; },
       "centroids count (num_dbs) must be <= 1000000, got 1000001"},
      {[](WriteConfig& c) {
         c.sharding.strategy = Strategy::kCel;
         c.sharding.cel_expr = "k";
         c.sharding.cel_columns = {{"k", "int"}};
         c.sharding.routing_values = std::vector<RoutingValue>(kMaxNumDbs + 1, RoutingValue(int64_t{0}));
       }, "len(routing_values) (num_dbs) must be <= 1000000, got 1000001"},
  };
  for (const auto& tc : cases) {
    WriteConfig c = BaseConfig(4);
    tc.edit(c);
    Status st = Validate(c);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << tc.expect;
    EXPECT_NE(st.message().find(tc.expect), std::string::npos) << st.message();
  }
  EXPECT_NE(ParseMetric("dot_product").status().message().find("'dot_product' is not supported"), std::string::npos);
  EXPECT_NE(ParseMetric("hamming").status().message().find("'hamming'"), std::string::npos);
}

TEST_F(WriterTest, PublishRefusesToMoveCurrentBackwardsUnlessLastWriterWins) {
  Matrix data = testing::RandomMatrix(20, 4, 4);
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 1;
  auto records = MakeRecords(data);
  for (auto& r : records) r.shard_id = 0;
  VectorRecordSource source(records);
  const SystemTime before_newer = NowUtc();
  ASSERT_TRUE(WriteSharded(c, source).ok());
  const std::string current = testing::ReadText(tmp_ / "store" / "_CURRENT");

  // A run that started before the published one must not replace it.
  auto store = OpenStore(c.store);
  Manifest stale = CurrentManifest();
  stale.run_id = "stale-run";
  auto conflict = PublishSnapshot(**store, stale, before_newer - std::chrono::seconds(5),
                                  PublishPolicy::kRejectIfNewer);
  ASSERT_EQ(conflict.status().code(), StatusCode::kConflict);
  EXPECT_NE(conflict.status().message().find("PublishConflictError"), std::string::npos);
  EXPECT_EQ(conflict.status().kind(), ErrorKind::kPublishConflict);
  // The subject names the losing manifest, which stays in history.
  EXPECT_NE(conflict.status().message().find("'" + conflict.status().subject() + "' stays in history"),
            std::string::npos);
  EXPECT_NE(conflict.status().subject().find("stale-run"), std::string::npos);
  EXPECT_EQ(testing::ReadText(tmp_ / "store" / "_CURRENT"), current);
  // The losing manifest is still in history.
  auto listed = (*store)->List("manifests/", "/");
  ASSERT_EQ(listed->common_prefixes.size(), 2u);

  auto forced = PublishSnapshot(**store, stale, before_newer - std::chrono::seconds(5),
                                PublishPolicy::kLastWriterWins);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(CurrentManifest().run_id, "stale-run");
}

TEST_F(WriterTest, ReusingALocalRootAndRunIdIsSafe) {
  Matrix data = testing::RandomMatrix(40, 4, 5);
  for (int i = 0; i < 2; ++i) {
    WriteConfig c = BaseConfig(4);
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 3;
    VectorRecordSource source(MakeRecords(data));
    auto r = WriteSharded(c, source);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_TRUE(fs::is_empty(tmp_ / "build"));
}

TEST_F(WriterTest, RunRecordEndsSucceededWithTheManifestRef) {
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 1;
  c.run_id = "my-run";
  VectorRecordSource source({});
  auto r = WriteSharded(c, source);
  ASSERT_TRUE(r.ok());
  auto store = OpenStore(c.store);
  auto runs = (*store)->List("runs/", "");
  ASSERT_EQ(runs->objects.size(), 1u);
  const std::string yaml = *(*store)->Get(runs->objects[0].key);
  EXPECT_NE(yaml.find("status: succeeded"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find(r->manifest_ref), std::string::npos);
  EXPECT_NE(runs->objects[0].key.find("_run_id=my-run_"), std::string::npos);
}


// MakeRecords' columns, kept for a RecordBatch to view.
struct BatchColumns {
  explicit BatchColumns(const std::vector<Record>& records) {
    for (const Record& r : records) {
      ids.push_back(r.id);
      payloads.push_back(r.payload_json);
      shard_ids.push_back(r.shard_id.value_or(kNoShardId));
    }
  }
  RecordBatch View(const Matrix& m) const {
    RecordBatch b{m.rows, m.cols, m.data.data()};
    b.ids = ids;
    b.payloads = payloads;
    b.shard_ids = shard_ids;
    return b;
  }
  std::vector<RecordId> ids;
  std::vector<std::optional<std::string>> payloads;
  std::vector<int64_t> shard_ids;
};

TEST_F(WriterTest, ABatchInMemoryPublishesTheShardsAStreamOfTheSameRecordsDoes) {
  Matrix data = testing::RandomMatrix(400, 6, 21);
  const std::vector<Record> records = MakeRecords(data);
  for (bool train : {false, true}) {
    SCOPED_TRACE(train ? "cluster, trained" : "lsh");
    WriteConfig stream_config = BaseConfig(6);
    stream_config.store = (tmp_ / (train ? "stream-trained" : "stream")).string();
    stream_config.sharding.num_dbs = 5;
    if (train) {
      stream_config.sharding.train_centroids = true;
    } else {
      stream_config.sharding.strategy = Strategy::kLsh;
    }
    VectorRecordSource stream(records);
    auto streamed = WriteSharded(stream_config, stream);
    ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
    WriteConfig batch_config = stream_config;
    batch_config.store = (tmp_ / (train ? "batch-trained" : "batch")).string();
    const BatchColumns columns(records);
    auto batched = WriteSharded(batch_config, columns.View(data));
    ASSERT_TRUE(batched.ok()) << batched.status().ToString();
    ASSERT_EQ(batched->shards.size(), streamed->shards.size());
    EXPECT_EQ(batched->total_vectors, 400);
    for (size_t i = 0; i < streamed->shards.size(); ++i) {
      ManifestShard a, b;
      a.db_url = streamed->shards[i].db_url;
      b.db_url = batched->shards[i].db_url;
      EXPECT_EQ(batched->shards[i].db_id, streamed->shards[i].db_id);
      EXPECT_EQ(ShardIds(b), ShardIds(a)) << "db " << streamed->shards[i].db_id;
    }
  }
}

TEST_F(WriterTest, ABatchWithAColumnOfTheWrongLengthIsRefusedNamingItBeforeAnythingIsWritten) {
  Matrix data = testing::RandomMatrix(5, 4, 3);
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = 2;
  const std::vector<std::optional<std::string>> payloads(3, std::nullopt);
  RecordBatch batch{data.rows, data.cols, data.data.data()};
  batch.payloads = payloads;
  auto result = WriteSharded(c, batch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("record batch: payloads has 3 entries for 5 rows"), std::string::npos)
      << result.status().message();
  EXPECT_FALSE(fs::exists(tmp_ / "store"));
}

TEST_F(WriterTest, BadRowsOfABatchFailTheRunNamingTheRowAsInAStream) {
  Matrix data = testing::RandomMatrix(50, 4, 2);
  WriteConfig c = BaseConfig(4);
  c.sharding.strategy = Strategy::kExplicit;
  c.sharding.num_dbs = 2;
  struct Case { std::string name; std::function<void(Matrix&, BatchColumns&)> spoil; std::string expect; };
  std::vector<Case> cases = {
      {"shard out of range", [](Matrix&, BatchColumns& b) { b.shard_ids[37] = 2; }, "shard_id 2 out of range [0, 2)"},
      {"missing shard", [](Matrix&, BatchColumns& b) { b.shard_ids[37] = kNoShardId; }, "EXPLICIT sharding requires shard_id"},
      {"nan", [](Matrix& m, BatchColumns&) { m.row(37)[2] = std::nanf(""); }, "vector[2] is nan"},
      {"bad payload", [](Matrix&, BatchColumns& b) { b.payloads[37] = "[1]"; }, "payload must be a JSON object"},
      {"bad id", [](Matrix&, BatchColumns& b) { b.ids[37] = std::string("\xff"); }, "valid UTF-8"},
  };
  auto good = MakeRecords(data);
  for (auto& r : good) r.shard_id = 1;
  for (const auto& tc : cases) {
    Matrix spoiled = data;
    BatchColumns columns(good);
    tc.spoil(spoiled, columns);
    auto result = WriteSharded(c, columns.View(spoiled));
    ASSERT_FALSE(result.ok()) << tc.name;
    EXPECT_NE(result.status().message().find(tc.expect), std::string::npos) << tc.name << ": " << result.status().message();
    EXPECT_NE(result.status().message().find("row 37"), std::string::npos) << result.status().message();
    EXPECT_FALSE(fs::exists(tmp_ / "store" / "_CURRENT")) << tc.name;
  }
}

// Every build writes the snapshot's id index before its manifest (a stream through spool files, a
// batch in place; rows reordered by sub-lists): each row's id hash and shard as plain SQLite reads
// them from the shards. The next update finds the shards of its ids through it, reading only the
// shard it rebuilds, and writes the next index.
TEST_F(WriterTest, EveryBuildWritesTheIdIndexAndTheNextUpdateReadsOnlyTheShardItRebuilds) {
  Matrix data = testing::ClusteredMatrix(300, 8, 4, 7);
  const std::vector<Record> records = MakeRecords(data);  // int and string ids
  const BatchColumns columns(records);
  for (bool batch : {false, true}) {
    SCOPED_TRACE(batch ? "batch" : "stream");
    WriteConfig c = BaseConfig(8);
    c.store = (tmp_ / (batch ? "batch" : "stream")).string();
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 4;
    c.sharding.sublists_per_shard = 3;
    auto opened = OpenStore(c.store);
    ASSERT_TRUE(opened.ok());
    auto store = std::make_shared<testing::ShardReadCountingStore>(*opened);
    VectorRecordSource stream(records);
    auto built = batch ? WriteSharded(c, columns.View(data), store) : WriteSharded(c, stream, store);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    ASSERT_GE(built->shards.size(), 2u);
    auto current = ReadCurrent(*store);
    ASSERT_TRUE(current.ok() && *current);
    const std::string ref = (*current)->pointer.manifest_ref;
    auto manifest = ReadManifest(*store, *KeyFromUrl(store->PrefixUrl(), ref), ref);
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    EXPECT_EQ(testing::ExpectIdIndexMatchesShards(*store, *manifest, tmp_ / "scratch"), 300);

    // Row 4 (id 40) upserted with its own vector (so routed to the shard that holds it) and another
    // id of that shard deleted: one shard rebuilt, the only shard file read.
    const ManifestShard* holder = nullptr;
    std::string other;
    for (const ManifestShard& shard : manifest->shards) {
      const std::vector<std::string> ids = ShardIds(shard);
      if (std::find(ids.begin(), ids.end(), R"({"v": 40, "t": "int"})") == ids.end()) continue;
      holder = &shard;
      for (const std::string& id : ids) {
        if (id != R"({"v": 40, "t": "int"})") other = id;
      }
    }
    ASSERT_NE(holder, nullptr);
    ASSERT_FALSE(other.empty());
    const nlohmann::json deleted = nlohmann::json::parse(other)["v"];
    const std::vector<RecordId> deletes = {deleted.is_string() ? RecordId(deleted.get<std::string>())
                                                               : RecordId(deleted.get<int64_t>())};
    const std::vector<Record> upsert = {records[4]};
    const Matrix upsert_vector = testing::MakeMatrix(1, 8, {data.row(4), data.row(4) + 8});
    const BatchColumns upsert_columns(upsert);
    const RecordBatch upsert_batch = upsert_columns.View(upsert_vector);
    store->shard_reads = 0;
    auto updated = UpdateSharded(c, &upsert_batch, deletes, {}, store);
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    EXPECT_TRUE(updated->report.used_id_index);
    EXPECT_EQ(updated->report.replaced, 1);
    EXPECT_EQ(updated->report.deleted, 1);
    ASSERT_EQ(updated->report.rebuilt.size(), 1u);
    EXPECT_EQ(updated->report.rebuilt[0].db_id, holder->db_id);
    EXPECT_EQ(updated->report.shared_shards, static_cast<int64_t>(built->shards.size()) - 1);
    EXPECT_EQ(store->shard_reads.load(), 1) << "the update read other shards than the one it rebuilt";
    auto next = ReadManifest(*store, *KeyFromUrl(store->PrefixUrl(), updated->build.manifest_ref),
                             updated->build.manifest_ref);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(testing::ExpectIdIndexMatchesShards(*store, *next, tmp_ / "scratch"), 299);
  }
}

}  // namespace
}  // namespace shardvec
