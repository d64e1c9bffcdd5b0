// Incremental snapshots (UpdateSharded, shardvec update): after rounds of random upserts and deletes
// the snapshot holds exactly what a full rebuild of the same final records holds (same ids and tables
// per shard, read with plain SQLite + vec0 per manifest entry), searches equal brute force, a failure
// or a SIGKILL at every publish step leaves the previous snapshot current and whole, cleanup keeps
// every shard a kept manifest shares, and copy / verify / rollback follow shared shards. Folder and
// S3 stores.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <tuple>
#include <thread>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/status_macros.h"
#include "common/time_util.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "shardvec/admin.h"
#include "shardvec/copy.h"
#include "shardvec/distributed.h"
#include "shardvec/manifest_store.h"
#include "shardvec/reader.h"
#include "shardvec/update.h"
#include "shardvec/verify.h"
#include "shardvec/writer.h"
#include "snapshot/publisher.h"
#include "support/fault_injection_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"
#include "write/id_index.h"
#include "write/run_registry.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kDim = 8;
constexpr int64_t kDbs = 4;
const std::vector<std::string> kRegions = {"eu", "us", "apac", "sa"};

// One record of the model the snapshot must equal.
struct Row {
  int64_t id = 0;
  std::vector<float> vector;
  std::string tag;         // payload {"tag": …}, a filter column under CLUSTER
  int64_t shard_id = 0;    // EXPLICIT
  std::string region;      // CEL routing context
};
using Model = std::map<int64_t, Row>;

// Rows as a RecordBatch (the batch views this object's columns): shard ids only under EXPLICIT and
// routing contexts only under CEL (a column the strategy does not read is refused).
struct Batch {
  Batch(const std::vector<Row>& rows, Strategy strategy) {
    for (const Row& r : rows) {
      vectors.insert(vectors.end(), r.vector.begin(), r.vector.end());
      ids.push_back(r.id);
      payloads.push_back(nlohmann::json({{"tag", r.tag}}).dump());
      shard_ids.push_back(r.shard_id);
      contexts.push_back(RoutingContext{{"region", RoutingValue(r.region)}});
    }
    batch.rows = static_cast<int64_t>(rows.size());
    batch.dim = kDim;
    batch.vectors = vectors.data();
    batch.int_ids = ids;
    batch.payloads = payloads;
    if (strategy == Strategy::kExplicit) batch.shard_ids = shard_ids;
    if (strategy == Strategy::kCel) batch.routing_contexts = contexts;
  }
  std::vector<float> vectors;
  std::vector<int64_t> ids;
  std::vector<std::optional<std::string>> payloads;
  std::vector<int64_t> shard_ids;
  std::vector<std::optional<RoutingContext>> contexts;
  RecordBatch batch;
};

std::vector<Row> RowsOf(const Model& m) {
  std::vector<Row> rows;
  for (const auto& [id, r] : m) rows.push_back(r);
  return rows;
}

Row RandomRow(int64_t id, std::mt19937_64& rng) {
  std::normal_distribution<float> gauss;
  Row r;
  r.id = id;
  for (int64_t d = 0; d < kDim; ++d) r.vector.push_back(gauss(rng));
  r.tag = rng() % 2 ? "a" : "b";
  r.shard_id = static_cast<int64_t>(rng() % kDbs);
  r.region = kRegions[rng() % kRegions.size()];
  return r;
}

WriteConfig ConfigFor(Strategy strategy, const std::string& store, const StoreOptions& options, const fs::path& work) {
  WriteConfig c;
  c.store = store;
  c.store_options = options;
  c.local_root = (work / "build").string();
  c.index.dim = kDim;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = strategy;
  c.sharding.num_dbs = kDbs;
  c.sharding.sublists_per_shard = 1;
  c.max_parallel_shards = 2;
  switch (strategy) {
    case Strategy::kCluster:
      c.sharding.centroids = testing::RandomMatrix(kDbs, kDim, 7);
      c.sharding.sublists_per_shard = 3;  // sub-lists rebuilt in every rebuilt shard
      c.index.quantization = "int8";      // and int8 codes
      c.filter_columns = {{"tag", "string"}};
      break;
    case Strategy::kLsh:
      c.sharding.num_hash_bits = 3;
      break;
    case Strategy::kExplicit:
      break;
    case Strategy::kCel:
      c.sharding.cel_expr = "region";
      c.sharding.cel_columns = {{"region", "string"}};
      c.sharding.routing_values = std::vector<RoutingValue>(kRegions.begin(), kRegions.end());
      c.sharding.num_dbs.reset();
      break;
  }
  return c;
}

// What one manifest entry's shard holds, read with plain SQLite + vec0 (the other reader's view).
struct ShardContents {
  std::vector<int64_t> ids;          // sorted
  std::vector<std::string> tables;   // sorted table names
  int64_t vectors = 0;               // rows of vec_index
  bool operator==(const ShardContents&) const = default;
};

std::map<int64_t, ShardContents> ReadWithPlainSqlite(ObjectStore& store, const fs::path& scratch) {
  auto manifests = MakeObjectManifestStore(std::shared_ptr<ObjectStore>(&store, [](ObjectStore*) {}));
  auto current = manifests->LoadCurrent();
  EXPECT_TRUE(current.ok() && current->has_value());
  auto manifest = manifests->LoadManifest((*current)->ref);
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  std::map<int64_t, ShardContents> out;
  fs::create_directories(scratch);
  for (const ManifestShard& shard : manifest->shards) {
    auto key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest->s3_prefix, *shard.db_url + "/shard.db");
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    auto bytes = store.Get(*key, int64_t{1} << 30);
    EXPECT_TRUE(bytes.ok()) << *key << ": " << bytes.status().ToString();
    const fs::path file = scratch / fmt::format("db{}.db", shard.db_id);
    fs::remove(file);
    testing::WriteText(file, *bytes);
    sqlite3* db = testing::OpenWithVec0(file);
    ShardContents c;
    for (const auto& row : testing::QueryRows(db, "SELECT original_id FROM vec_id_map")) {
      c.ids.push_back(nlohmann::json::parse(row[0])["v"].get<int64_t>());
    }
    std::sort(c.ids.begin(), c.ids.end());
    for (const auto& row : testing::QueryRows(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")) {
      c.tables.push_back(row[0]);
    }
    c.vectors = std::stoll(testing::QueryRows(db, "SELECT count(*) FROM vec_index")[0][0]);
    EXPECT_EQ(c.vectors, shard.row_count) << "db " << shard.db_id;
    // The shard answers a vec0 KNN query on its own.
    const std::string knn = testing::QueryRows(
        db, "SELECT count(*) FROM (SELECT rowid FROM vec_index WHERE embedding MATCH '[0,0,0,0,0,0,0,0]' AND k = 3)")[0][0];
    EXPECT_EQ(std::stoll(knn), std::min<int64_t>(3, shard.row_count));
    sqlite3_close(db);
    out[shard.db_id] = std::move(c);
  }
  return out;
}

// The exact top-k ids of `rows` (l2), optionally only rows with tag `tag`.
std::vector<int64_t> BruteForceIds(const Model& model, const std::vector<float>& q, int64_t k,
                                   const std::string& tag = "") {
  std::vector<std::pair<double, int64_t>> scored;
  for (const auto& [id, r] : model) {
    if (!tag.empty() && r.tag != tag) continue;
    double d = 0;
    for (int64_t i = 0; i < kDim; ++i) d += (r.vector[i] - q[i]) * (r.vector[i] - q[i]);
    scored.emplace_back(d, id);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<int64_t> ids;
  for (size_t i = 0; i < scored.size() && static_cast<int64_t>(i) < k; ++i) ids.push_back(scored[i].second);
  return ids;
}

class UpdateTestBase : public ::testing::Test {
 protected:
  // A store under test, with the options a reader or CLI child needs to reach it.
  struct Target {
    std::string prefix;
    std::shared_ptr<ObjectStore> store;  // injects the armed fault
    StoreOptions options;
    std::string cli_env;
  };
  Target Folder(const std::string& name) {
    const std::string prefix = (tmp_ / name).string();
    auto store = OpenStore(prefix);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return {prefix, Injecting(*store), {}, ""};
  }
  Target S3(const std::string& name) {
    const std::string prefix = testing::UniqueS3Prefix(name);
    return {prefix, Injecting(testing::OpenS3TestStore(prefix)), testing::S3TestOptions(), testing::S3CliEnv() + " "};
  }
  Target Make(bool s3, const std::string& name) { return s3 ? S3(name) : Folder(name); }

  std::shared_ptr<ObjectStore> Injecting(std::shared_ptr<ObjectStore> store) {
    return std::make_shared<testing::FaultInjectionStore>(std::move(store), [this](std::string_view point) {
      std::shared_ptr<testing::FaultHook> hook;
      {
        std::lock_guard<std::mutex> lock(mu_);
        hook = fault_;
      }
      return hook ? (*hook)(point) : Status::OK();
    });
  }
  void Arm(testing::FaultHook hook) {
    std::lock_guard<std::mutex> lock(mu_);
    fault_ = hook ? std::make_shared<testing::FaultHook>(std::move(hook)) : nullptr;
  }

  // Searches the current snapshot of `t` (every shard, every sub-list) and compares with brute force.
  void ExpectSearchEqualsModel(const Target& t, const Model& model, bool filtered, uint64_t seed) {
    ReaderOptions o;
    o.store = t.prefix;
    o.store_options = t.options;
    o.cache_dir = (tmp_ / fmt::format("cache{}", ++caches_)).string();
    auto reader = ShardedVectorReader::Open(o);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    std::mt19937_64 rng(seed);
    for (int q = 0; q < 6; ++q) {
      const std::vector<float> query = RandomRow(0, rng).vector;
      SearchOptions so;
      so.shard_ids = std::vector<int64_t>{0, 1, 2, 3};
      if (filtered) so.sublist_probes = 1000;
      auto hits = (*reader)->Search(query, 10, so);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      std::vector<int64_t> got;
      for (const SearchHit& h : hits->results) got.push_back(std::get<int64_t>(h.id));
      EXPECT_EQ(got, BruteForceIds(model, query, 10)) << "query " << q;
      if (!filtered) continue;
      so.filter = "tag == 'a'";
      auto tagged = (*reader)->Search(query, 10, so);
      ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
      got.clear();
      for (const SearchHit& h : tagged->results) got.push_back(std::get<int64_t>(h.id));
      EXPECT_EQ(got, BruteForceIds(model, query, 10, "a")) << "filtered query " << q;
    }
  }

  // Rewrites the current manifest with `edit` applied to its custom.shardvec.
  static void EditCurrentManifest(ObjectStore& store, const std::function<void(nlohmann::json&)>& edit) {
    auto current = ReadCurrent(store);
    ASSERT_TRUE(current.ok() && *current);
    const std::string ref = (*current)->pointer.manifest_ref;
    auto key = KeyFromUrl(store.PrefixUrl(), ref);
    ASSERT_TRUE(key.ok());
    auto manifest = ReadManifest(store, *key, ref);
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    edit(manifest->custom["shardvec"]);
    auto bytes = SerializeManifest(*manifest);
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE(store.Put(*key, *bytes).ok());
  }
  // The current manifest without custom.shardvec.id_index: the snapshot of a build before builds
  // wrote the index (or of another writer), which an update reads by every shard's id map.
  static void DropIdIndex(ObjectStore& store) {
    EditCurrentManifest(store, [](nlohmann::json& shardvec) {
      ASSERT_EQ(shardvec.erase("id_index"), 1u) << "the build wrote no id index";
    });
  }

  testing::TempDir dir_;
  const fs::path tmp_ = dir_.path();
  std::mutex mu_;
  std::shared_ptr<testing::FaultHook> fault_;
  int caches_ = 0;
};

// ---- Property: rounds of random changes equal a full rebuild ------------------------------------

struct PropertyCase {
  Strategy strategy;
  bool s3;
  bool int8 = true;  // CLUSTER: int8 codes
};

std::string PropertyCaseName(const PropertyCase& pc) {
  return std::string(StrategyName(pc.strategy)) + (pc.strategy == Strategy::kCluster && !pc.int8 ? "_float" : "");
}

class UpdatePropertyTest : public UpdateTestBase, public ::testing::WithParamInterface<PropertyCase> {
 protected:
  void RunProperty(const PropertyCase& pc);
};

// Four rounds of 10 replaced ids, 12 new ids, 8 deleted ids and 1 missing delete, seeded.
void UpdatePropertyTest::RunProperty(const PropertyCase& pc) {
  const Target t = Make(pc.s3, "prop");
  WriteConfig config = ConfigFor(pc.strategy, t.prefix, t.options, tmp_);
  if (!pc.int8) config.index.quantization = "none";
  std::mt19937_64 rng(1234 + static_cast<uint64_t>(pc.strategy));
  int64_t edited = 0, whole = 0;  // shards edited in place and rebuilt whole, over the rounds
  Model model;
  int64_t next_id = 0;
  for (; next_id < 160; ++next_id) model[next_id] = RandomRow(next_id, rng);
  {
    const Batch b(RowsOf(model), pc.strategy);
    auto built = WriteSharded(config, b.batch, t.store);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    // Round 0 updates a base without an id index (as an older build's), by the shards' id maps.
    DropIdIndex(*t.store);
  }
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    std::vector<int64_t> existing;
    for (const auto& [id, r] : model) existing.push_back(id);
    std::shuffle(existing.begin(), existing.end(), rng);
    std::vector<Row> upserts;
    for (int i = 0; i < 10; ++i) upserts.push_back(RandomRow(existing[i], rng));      // replaced
    for (int i = 0; i < 12; ++i) upserts.push_back(RandomRow(next_id++, rng));        // new
    std::vector<RecordId> deletes;
    for (int i = 10; i < 18; ++i) deletes.emplace_back(existing[i]);
    deletes.emplace_back(int64_t{1000000 + round});  // not in the snapshot
    for (const Row& r : upserts) model[r.id] = r;
    for (int i = 10; i < 18; ++i) model.erase(existing[i]);
    std::shuffle(upserts.begin(), upserts.end(), rng);

    const Batch b(upserts, pc.strategy);
    // The last round compacts: every touched shard rebuilt whole.
    const UpdateOptions options{.compact = round == 3};
    auto updated = UpdateSharded(config, &b.batch, deletes, options, t.store);
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    const UpdateReport& r = updated->report;
    if (options.compact) EXPECT_TRUE(r.edited_in_place.empty());
    EXPECT_EQ(r.upserted, 22);
    EXPECT_EQ(r.replaced, 10);
    EXPECT_EQ(r.deleted, 8);
    EXPECT_EQ(r.missing_deletes, 1);
    EXPECT_EQ(r.used_id_index, round > 0) << "round 0's base had its index dropped; every update writes one";
    EXPECT_EQ(updated->build.total_vectors, static_cast<int64_t>(model.size()));
    EXPECT_EQ(r.shared_shards + static_cast<int64_t>(r.rebuilt.size()), kDbs);
    edited += static_cast<int64_t>(r.edited_in_place.size());
    whole += static_cast<int64_t>(r.rebuilt.size() - r.edited_in_place.size());
    if (pc.strategy == Strategy::kCluster) {
      EXPECT_TRUE(r.upsert_centroid_distance.has_value());
      EXPECT_TRUE(r.base_centroid_distance.has_value());
    }

    // A full rebuild of the same final records, in a folder of its own.
    WriteConfig full = config;
    full.store = (tmp_ / fmt::format("full-{}", round)).string();
    full.store_options = {};
    const Batch all(RowsOf(model), pc.strategy);
    auto rebuilt = WriteSharded(full, all.batch);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
    auto full_store = OpenStore(full.store);
    ASSERT_TRUE(full_store.ok());
    const auto want = ReadWithPlainSqlite(**full_store, tmp_ / fmt::format("sql-full-{}", round));
    const auto got = ReadWithPlainSqlite(*t.store, tmp_ / fmt::format("sql-upd-{}", round));
    EXPECT_EQ(got, want);
    std::set<int64_t> seen;
    for (const auto& [db, c] : got) {
      for (int64_t id : c.ids) EXPECT_TRUE(seen.insert(id).second) << "id " << id << " twice";
    }
    ExpectSearchEqualsModel(t, model, pc.strategy == Strategy::kCluster, 99 + round);
  }
  if (pc.strategy == Strategy::kCluster) {
    // Edited in place (the rows added take the rowids and slots of those removed, int8 codes kept by
    // rowid), then compacted.
    EXPECT_GT(edited, 0);
    EXPECT_GT(whole, 0);
  }
  auto verified = VerifySnapshot(t.store);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << (verified->problems.empty() ? "" : verified->problems[0].message);
}

TEST_P(UpdatePropertyTest, RoundsOfUpsertsAndDeletesEqualAFullRebuild) { RunProperty(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Folder, UpdatePropertyTest,
                         ::testing::Values(PropertyCase{Strategy::kCluster, false},
                                           PropertyCase{Strategy::kCluster, false, /*int8=*/false},
                                           PropertyCase{Strategy::kLsh, false}, PropertyCase{Strategy::kExplicit, false},
                                           PropertyCase{Strategy::kCel, false}),
                         [](const auto& info) { return PropertyCaseName(info.param); });

class S3UpdatePropertyTest : public UpdatePropertyTest {};
TEST_P(S3UpdatePropertyTest, RoundsOfUpsertsAndDeletesEqualAFullRebuild) { RunProperty(GetParam()); }
INSTANTIATE_TEST_SUITE_P(S3, S3UpdatePropertyTest,
                         ::testing::Values(PropertyCase{Strategy::kCluster, true, /*int8=*/false},
                                           PropertyCase{Strategy::kCel, true}),
                         [](const auto& info) { return PropertyCaseName(info.param); });

// ---- Crash safety: a failure or SIGKILL at every publish step of an update --------------------

struct CrashCase {
  std::string_view point;
  int nth;
  bool swapped;  // the new snapshot became current before the fault
};

const std::vector<CrashCase>& CrashCases() {
  static const std::vector<CrashCase> cases = {
      {testing::kFaultAfterShardUpload, 1, false},      {testing::kFaultAfterShardUpload, 2, false},
      {testing::kFaultAfterRoutingArtifacts, 1, false}, {testing::kFaultAfterManifestPut, 1, false},
      {testing::kFaultDuringCurrentSwap, 1, false},     {testing::kFaultAfterCurrentSwap, 1, true},
  };
  return cases;
}

// The records of `rows` as a .jsonl file `shardvec update --upsert` reads.
void WriteJsonl(const fs::path& path, const std::vector<Row>& rows) {
  std::string text;
  for (const Row& r : rows) {
    text += nlohmann::json({{"id", r.id}, {"vector", r.vector}, {"payload", {{"tag", r.tag}}}}).dump() + "\n";
  }
  testing::WriteText(path, text);
}

class UpdateCrashTest : public UpdateTestBase, public ::testing::WithParamInterface<bool> {
 protected:
  // Publishes a build and one update (so the snapshot a crash must leave whole is an incremental
  // one), then runs every fault case in turn on that store.
  void RunCases(bool s3, bool crash) {
    const Target t = Make(s3, crash ? "crash" : "fail");
    WriteConfig config = ConfigFor(Strategy::kCluster, t.prefix, t.options, tmp_);
    std::mt19937_64 rng(77);
    Model model;
    int64_t next_id = 0;
    for (; next_id < 120; ++next_id) model[next_id] = RandomRow(next_id, rng);
    const Batch base(RowsOf(model), Strategy::kCluster);
    auto built = WriteSharded(config, base.batch, t.store);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    std::vector<Row> first = {RandomRow(next_id++, rng), RandomRow(3, rng)};
    for (const Row& r : first) model[r.id] = r;
    const Batch first_batch(first, Strategy::kCluster);
    ASSERT_TRUE(UpdateSharded(config, &first_batch.batch, {RecordId(int64_t{5})}, {}, t.store).ok());
    model.erase(5);
    int n = 0;
    for (const CrashCase& fc : CrashCases()) {
      SCOPED_TRACE(fmt::format("{}:{} {}", fc.point, fc.nth, crash ? "crash" : "fail"));
      auto before = t.store->Get("_CURRENT", 1 << 20);
      ASSERT_TRUE(before.ok());
      std::vector<Row> upserts;
      std::vector<int64_t> existing;
      for (const auto& [id, r] : model) existing.push_back(id);
      std::shuffle(existing.begin(), existing.end(), rng);
      for (int i = 0; i < 4; ++i) upserts.push_back(RandomRow(existing[i], rng));
      for (int i = 0; i < 4; ++i) upserts.push_back(RandomRow(next_id++, rng));
      const std::vector<int64_t> deleted = {existing[4], existing[5]};
      Model after = model;
      for (const Row& r : upserts) after[r.id] = r;
      for (int64_t id : deleted) after.erase(id);
      const std::string run_id = fmt::format("crash{}", ++n);
      if (crash) {
        const fs::path upsert_file = tmp_ / (run_id + ".jsonl");
        const fs::path delete_file = tmp_ / (run_id + ".ids");
        WriteJsonl(upsert_file, upserts);
        testing::WriteText(delete_file, fmt::format("{}\n{}\n", deleted[0], deleted[1]));
        const auto r = testing::RunCommand(fmt::format(
            "{}SHARDVEC_FAULT_POINT={}:{} SHARDVEC_FAULT_ACTION=crash {} update --store {} --upsert {} --delete {} "
            "--run-id {} --local-root {} --sublists-per-shard 3",
            t.cli_env, fc.point, fc.nth, testing::ShellQuote(SHARDVEC_FAULT_CLI_PATH), testing::ShellQuote(t.prefix),
            testing::ShellQuote(upsert_file.string()), testing::ShellQuote(delete_file.string()), run_id,
            testing::ShellQuote((tmp_ / "cli-build").string())));
        ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "the updater was not killed: " << r.err;
      } else {
        Arm(testing::FaultAt(fc.point, fc.nth, /*crash=*/false));
        WriteConfig c = config;
        c.run_id = run_id;
        std::vector<RecordId> deletes(deleted.begin(), deleted.end());
        const Batch b(upserts, Strategy::kCluster);
        auto r = UpdateSharded(c, &b.batch, deletes, {}, t.store);
        Arm(nullptr);
        ASSERT_FALSE(r.ok());
        EXPECT_THAT(r.status().message(), HasSubstr("fault injected"));
      }
      auto now = t.store->Get("_CURRENT", 1 << 20);
      ASSERT_TRUE(now.ok());
      if (fc.swapped) {
        EXPECT_NE(*now, *before);
        model = after;
      } else {
        EXPECT_EQ(*now, *before) << "_CURRENT moved";
      }
      ExpectSearchEqualsModel(t, model, /*filtered=*/true, 500 + n);
      auto verified = VerifySnapshot(t.store);
      ASSERT_TRUE(verified.ok()) << verified.status().ToString();
      EXPECT_TRUE(verified->ok()) << (verified->problems.empty() ? "" : verified->problems[0].message);
      if (!fc.swapped && fc.point != testing::kFaultAfterManifestPut && fc.point != testing::kFaultDuringCurrentSwap) {
        // No manifest of the run: a failed update removed its objects; a killed one's go at cleanup.
        if (crash) {
          // The killed updater's run record still holds its lease: cleanup removes its objects after it.
          CleanupOptions expired;
          expired.now = NowUtc() + kRunLease + std::chrono::seconds(1);
          ASSERT_TRUE(Cleanup(*t.store, expired).ok());
        }
        for (const std::string& prefix : {"shards/run_id=" + run_id + "/", "vector_meta/run_id=" + run_id + "/"}) {
          auto listed = t.store->List(prefix);
          ASSERT_TRUE(listed.ok());
          EXPECT_TRUE(listed->objects.empty()) << prefix << " keeps " << listed->objects.size() << " objects";
        }
      }
    }
    // The next update publishes.
    const std::vector<Row> last = {RandomRow(next_id++, rng)};
    const Batch b(last, Strategy::kCluster);
    auto next = UpdateSharded(config, &b.batch, {}, {}, t.store);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    model[last[0].id] = last[0];
    ExpectSearchEqualsModel(t, model, /*filtered=*/true, 999);
  }
};

TEST_P(UpdateCrashTest, AFailureAtEveryStepLeavesThePreviousSnapshotCurrentAndWhole) { RunCases(GetParam(), false); }
TEST_P(UpdateCrashTest, ASigkillAtEveryStepLeavesThePreviousSnapshotCurrentAndWhole) { RunCases(GetParam(), true); }
INSTANTIATE_TEST_SUITE_P(Folder, UpdateCrashTest, ::testing::Values(false));

class S3UpdateCrashTest : public UpdateCrashTest {};
TEST_P(S3UpdateCrashTest, AFailureAtEveryStepLeavesThePreviousSnapshotCurrentAndWhole) { RunCases(GetParam(), false); }
TEST_P(S3UpdateCrashTest, ASigkillAtEveryStepLeavesThePreviousSnapshotCurrentAndWhole) { RunCases(GetParam(), true); }
INSTANTIATE_TEST_SUITE_P(S3, S3UpdateCrashTest, ::testing::Values(true));

// ---- History, cleanup, rollback, copy across incremental snapshots ------------------------------

class UpdateHistoryTest : public UpdateTestBase, public ::testing::WithParamInterface<bool> {
 protected:
  // Ten updates each touching one of shards 0..2 (EXPLICIT), so shard 3 is the build's throughout.
  void RunRounds(bool s3) {
    const Target t = Make(s3, "history");
    const WriteConfig config = ConfigFor(Strategy::kExplicit, t.prefix, t.options, tmp_);
    std::mt19937_64 rng(5);
    Model model;
    int64_t next_id = 0;
    for (; next_id < 80; ++next_id) model[next_id] = RandomRow(next_id, rng);
    const Batch base(RowsOf(model), Strategy::kExplicit);
    auto built = WriteSharded(config, base.batch, t.store);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    std::vector<Model> models = {model};
    for (int round = 0; round < 10; ++round) {
      const int64_t shard = round % 3;
      std::vector<Row> upserts;
      for (int i = 0; i < 3; ++i) {
        Row r = RandomRow(next_id++, rng);
        r.shard_id = shard;
        upserts.push_back(r);
      }
      int64_t victim = -1;
      for (const auto& [id, r] : model) {
        if (r.shard_id == shard) victim = id;
      }
      for (const Row& r : upserts) model[r.id] = r;
      model.erase(victim);
      const Batch b(upserts, Strategy::kExplicit);
      auto updated = UpdateSharded(config, &b.batch, {RecordId(victim)}, {}, t.store);
      ASSERT_TRUE(updated.ok()) << updated.status().ToString();
      ASSERT_EQ(updated->report.rebuilt.size(), 1u);
      EXPECT_EQ(updated->report.shared_shards, 3);
      models.push_back(model);
    }
    // History marks what each snapshot shares.
    auto history = ListSnapshots(*t.store, {.limit = 0, .read_manifests = true});
    ASSERT_TRUE(history.ok());
    ASSERT_EQ(history->size(), 11u);
    EXPECT_EQ((*history)[0].manifest->shared_shards, 3);
    EXPECT_EQ((*history)[0].manifest->base_run_id, (*history)[1].run_id);
    EXPECT_EQ(history->back().manifest->shared_shards, 0);
    EXPECT_EQ(history->back().manifest->base_run_id, "");

    // Rollback two snapshots back answers with that round's records; then forward again.
    auto rollback_and_back = [&](uint64_t seed) {
      ASSERT_TRUE(RollbackSnapshot(*t.store, {.offset = 2}).ok());
      ExpectSearchEqualsModel(t, models[8], false, seed);
      ASSERT_TRUE(RollbackSnapshot(*t.store, {.offset = 0}).ok());
    };
    // Cleanup keeping the newest `n`: something goes, every shard they name stays.
    auto cleanup_keeping = [&](int64_t n) {
      auto report = Cleanup(*t.store, {.keep_last = n});
      EXPECT_TRUE(report.ok()) << report.status().ToString();
      if (report.ok()) EXPECT_FALSE(report->deleted_keys.empty());
      ExpectNamedShardsPresent(*t.store, n);
      return report;
    };
    rollback_and_back(1);
    ASSERT_TRUE(cleanup_keeping(3).ok());
    rollback_and_back(2);  // the oldest kept snapshot still has every shard

    // Keeping only the current one: it shares shard 3 with the build (run kept), and every shard it
    // names stays; an older snapshot whose own shards went can no longer be made current.
    auto kept1 = cleanup_keeping(1);
    ASSERT_TRUE(kept1.ok());
    EXPECT_THAT(kept1->kept_runs, ::testing::Contains(built->run_id));
    ExpectSearchEqualsModel(t, model, false, 3);
    auto verified = VerifySnapshot(t.store);
    ASSERT_TRUE(verified.ok());
    EXPECT_TRUE(verified->ok()) << (verified->problems.empty() ? "" : verified->problems[0].message);
    auto refused = RollbackSnapshot(*t.store, {.offset = 2});
    EXPECT_FALSE(refused.ok());

    // Copy follows the shared shards (and the id index): the copy verifies and updates by index.
    auto dst = OpenStore((tmp_ / "copy").string());
    ASSERT_TRUE(dst.ok());
    auto copied = CopySnapshots(*t.store, **dst);
    ASSERT_TRUE(copied.ok()) << copied.status().ToString();
    auto copy_verified = VerifySnapshot(*dst);
    ASSERT_TRUE(copy_verified.ok());
    EXPECT_TRUE(copy_verified->ok()) << (copy_verified->problems.empty() ? "" : copy_verified->problems[0].message);
    WriteConfig in_copy = config;
    in_copy.store = (tmp_ / "copy").string();
    in_copy.store_options = {};
    const std::vector<Row> one = {RandomRow(next_id++, rng)};
    const Batch b(one, Strategy::kExplicit);
    auto updated = UpdateSharded(in_copy, &b.batch, {}, {}, *dst);
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    EXPECT_TRUE(updated->report.used_id_index);
  }

  // Every shard the `newest` newest manifests name exists.
  void ExpectNamedShardsPresent(ObjectStore& store, int64_t newest) {
    auto manifests = MakeObjectManifestStore(std::shared_ptr<ObjectStore>(&store, [](ObjectStore*) {}));
    auto listed = manifests->ListManifests(newest);
    ASSERT_TRUE(listed.ok());
    for (const ManifestRef& ref : *listed) {
      auto manifest = manifests->LoadManifest(ref.ref);
      ASSERT_TRUE(manifest.ok());
      for (const ManifestShard& shard : manifest->shards) {
        auto key = KeyFromSnapshotUrl(store.PrefixUrl(), manifest->s3_prefix, *shard.db_url + "/shard.db");
        ASSERT_TRUE(key.ok());
        EXPECT_TRUE(store.Head(*key).ok()) << ref.ref << " names " << *key << ", which cleanup removed";
      }
    }
  }
};

TEST_P(UpdateHistoryTest, CleanupRollbackCopyAndVerifyFollowSharedShardsOverTenRounds) { RunRounds(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Folder, UpdateHistoryTest, ::testing::Values(false));
class S3UpdateHistoryTest : public UpdateHistoryTest {};
TEST_P(S3UpdateHistoryTest, CleanupRollbackCopyAndVerifyFollowSharedShardsOverTenRounds) { RunRounds(GetParam()); }
INSTANTIATE_TEST_SUITE_P(S3, S3UpdateHistoryTest, ::testing::Values(true));

// ---- The sub-lists of the base --------------------------------------------------------------------

// An update without a config of its own (the CLI's, SnapshotWriteConfig) rebuilds shards with the
// sub-lists the snapshot was built with: as its manifest records them, or, in a manifest that does
// not (an older shardvec's, shardyfusion's), none where no shard has lists though one holds enough
// rows for auto to make them. A base built without lists is then edited in place, not rebuilt whole.
class UpdateSublistDefaultTest : public UpdateTestBase {
 protected:
  // Builds 1,200 rows (about 300 a shard: enough for auto sub-lists) with `sublists_per_shard`.
  Target Build(const std::string& name, int64_t sublists_per_shard) {
    Target t = Folder(name);
    WriteConfig config = ConfigFor(Strategy::kLsh, t.prefix, {}, tmp_ / name);
    config.sharding.sublists_per_shard = sublists_per_shard;
    std::mt19937_64 rng(4);
    for (int64_t id = 0; id < 1200; ++id) rows_.push_back(RandomRow(id, rng));
    const Batch b(rows_, Strategy::kLsh);
    auto built = WriteSharded(config, b.batch, t.store);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return t;
  }
  Result<int64_t> Default(const Target& t) {
    ASSIGN_OR_RETURN(WriteConfig c, SnapshotWriteConfig(t.prefix, {}, "current", nullptr, t.store));
    return c.sharding.sublists_per_shard;
  }
  int64_t DefaultOk(const Target& t) {
    Result<int64_t> got = Default(t);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : -1;
  }
  std::vector<Row> rows_;
};

TEST_F(UpdateSublistDefaultTest, AnUpdateRebuildsWithTheSublistsTheSnapshotWasBuiltWith) {
  const Target none = Build("none", 1);
  EXPECT_EQ(DefaultOk(none), 1);
  EditCurrentManifest(*none.store, [](nlohmann::json& shardvec) {
    ASSERT_EQ(shardvec.erase("sublists_per_shard"), 1u) << "the build did not record it";
  });
  EXPECT_EQ(DefaultOk(none), 1) << "no lists in shards that could have them: built with none";

  // Edited in place with no lists, as built: not every touched shard rebuilt whole with auto lists.
  auto config = SnapshotWriteConfig(none.prefix, {}, "current", nullptr, none.store);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  std::mt19937_64 rng(8);
  std::vector<Row> changed;
  for (int64_t id = 0; id < 1200; id += 100) changed.push_back(RandomRow(id, rng));
  const Batch b(changed, Strategy::kLsh);
  auto report = UpdateSharded(*config, &b.batch, {}, {}, none.store);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(report->report.rebuilt.empty());
  EXPECT_EQ(report->report.edited_in_place.size(), report->report.rebuilt.size());
  EXPECT_EQ(DefaultOk(none), 1) << "the update records the setting it used";

  const Target automatic = Build("auto", 0);
  EXPECT_EQ(DefaultOk(automatic), 0);
  EditCurrentManifest(*automatic.store, [](nlohmann::json& shardvec) { shardvec.erase("sublists_per_shard"); });
  EXPECT_EQ(DefaultOk(automatic), 0) << "shards with lists: auto";

  for (const nlohmann::json& bad : {nlohmann::json("3"), nlohmann::json(-1), nlohmann::json(70000)}) {
    EditCurrentManifest(*automatic.store, [&](nlohmann::json& shardvec) { shardvec["sublists_per_shard"] = bad; });
    const Result<int64_t> got = Default(automatic);
    ASSERT_FALSE(got.ok()) << bad.dump();
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
    EXPECT_THAT(got.status().message(), HasSubstr("custom.shardvec.sublists_per_shard must be an integer in 0..65536, got " + bad.dump()));
  }
}

// ---- Refusals ------------------------------------------------------------------------------------

class UpdateErrorsTest : public UpdateTestBase {
 protected:
  void SetUp() override {
    t_ = Folder("errors");
    config_ = ConfigFor(Strategy::kCluster, t_.prefix, {}, tmp_);
    std::mt19937_64 rng(3);
    for (int64_t id = 0; id < 40; ++id) rows_.push_back(RandomRow(id, rng));
    const Batch b(rows_, Strategy::kCluster);
    auto built = WriteSharded(config_, b.batch, t_.store);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    base_run_ = built->run_id;
  }
  Target t_;
  WriteConfig config_;
  std::vector<Row> rows_;
  std::string base_run_;
};

TEST_F(UpdateErrorsTest, AConfigThatDisagreesWithTheBaseIsRefusedNamingTheField) {
  const Batch b({rows_[0]}, Strategy::kCluster);
  WriteConfig probes = config_;
  probes.sharding.num_probes = 2;
  auto r = UpdateSharded(probes, &b.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("sharding.num_probes is 2 but the base snapshot"));
  WriteConfig filters = config_;
  filters.filter_columns = {{"tag", "string"}, {"year", "int"}};
  r = UpdateSharded(filters, &b.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("filter_columns"));
  WriteConfig centroids = config_;
  centroids.sharding.centroids = testing::RandomMatrix(kDbs, kDim, 8);
  r = UpdateSharded(centroids, &b.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("sharding.centroids"));
  WriteConfig quant = config_;
  quant.index.quantization = "none";
  r = UpdateSharded(quant, &b.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("index.quantization is none"));
}

TEST_F(UpdateErrorsTest, ChangesThatCannotAllTakeEffectAreRefused) {
  Batch twice({rows_[0], rows_[0]}, Strategy::kCluster);
  auto r = UpdateSharded(config_, &twice.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("id 0 appears at rows 0 and 1"));
  const Batch one({rows_[1]}, Strategy::kCluster);
  r = UpdateSharded(config_, &one.batch, {RecordId(int64_t{1})}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("id 1 (entry 0) is also upserted"));
  Batch no_ids({rows_[2]}, Strategy::kCluster);
  no_ids.batch.int_ids = {};
  r = UpdateSharded(config_, &no_ids.batch, {}, {}, t_.store);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("without ids"));
}

// An update reports its progress through config.on_progress, on the calling thread: the id maps of
// a base without an index shard by shard, the touched shards as each ends, and the publish.
TEST_F(UpdateErrorsTest, TheUpdateReportsItsProgressThroughOnProgress) {
  DropIdIndex(*t_.store);
  std::vector<std::tuple<std::string, int64_t, int64_t>> events;
  const std::thread::id caller = std::this_thread::get_id();
  WriteConfig config = config_;
  config.on_progress = [&](const WriteProgress& p) {
    EXPECT_EQ(std::this_thread::get_id(), caller) << p.phase;
    events.emplace_back(p.phase, p.done, p.total);
  };
  std::vector<Row> changed;
  for (int64_t id = 0; id < 40; id += 3) changed.push_back(rows_[static_cast<size_t>(id)]);
  const Batch b(changed, Strategy::kCluster);
  auto r = UpdateSharded(config, &b.batch, {RecordId(int64_t{1})}, {}, t_.store);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto touched = static_cast<int64_t>(r->report.rebuilt.size());
  ASSERT_GT(touched, 0);
  std::vector<std::tuple<std::string, int64_t, int64_t>> want;
  for (int64_t i = 0; i <= kDbs; ++i) want.emplace_back("id maps", i, kDbs);
  for (int64_t i = 0; i <= touched; ++i) want.emplace_back("shards", i, touched);
  want.emplace_back("publish", 0, 1);
  want.emplace_back("publish", 1, 1);
  EXPECT_EQ(events, want);
}

// retrain builds the whole snapshot anew from the base's rows and the changes, the centroids trained
// anew: every shard rebuilt, none shared; the searches equal brute force over the final records
// (filtered too); the counts exact. Refused: a missing delete with strict (nothing published),
// compact, a strategy without trained routing, the phased update.
TEST_F(UpdateErrorsTest, ARetrainBuildsTheSnapshotAnewWithCentroidsTrainedOnTheFinalRecords) {
  Model model;
  for (const Row& r : rows_) model[r.id] = r;
  std::mt19937_64 rng(21);
  std::vector<Row> changed;
  for (const int64_t id : {2, 5, 9}) changed.push_back(RandomRow(id, rng));  // replaced
  for (int64_t id = 100; id < 110; ++id) changed.push_back(RandomRow(id, rng));  // new
  for (Row& r : changed) {
    for (float& v : r.vector) v += 6.0f;  // far from every base row: the drift a retrain is for
    model[r.id] = r;
  }
  model.erase(7);
  const Batch b(changed, Strategy::kCluster);
  const std::vector<RecordId> deletes = {RecordId(int64_t{7}), RecordId(int64_t{7}), RecordId(int64_t{999})};

  auto strict = UpdateSharded(config_, &b.batch, deletes, {.strict = true, .retrain = true}, t_.store);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(strict.status().message(), HasSubstr("strict: 1 id(s) to delete are not in the base snapshot"));
  auto still = SnapshotWriteConfig(t_.prefix, {}, "current", nullptr, t_.store);
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_EQ(still->sharding.centroids->data, config_.sharding.centroids->data) << "the strict failure published";

  auto r = UpdateSharded(config_, &b.batch, deletes, {.retrain = true}, t_.store);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const UpdateReport& report = r->report;
  EXPECT_EQ(report.base_run_id, base_run_);
  EXPECT_EQ(report.upserted, 13);
  EXPECT_EQ(report.replaced, 3);
  EXPECT_EQ(report.deleted, 1);
  EXPECT_EQ(report.missing_deletes, 1);
  EXPECT_EQ(report.shared_shards, 0);
  EXPECT_TRUE(report.edited_in_place.empty());
  EXPECT_EQ(r->build.total_vectors, static_cast<int64_t>(model.size()));
  int64_t rows = 0;
  for (const UpdateShardChange& c : report.rebuilt) rows += c.rows;
  EXPECT_EQ(rows, static_cast<int64_t>(model.size()));
  auto next = SnapshotWriteConfig(t_.prefix, {}, "current", nullptr, t_.store);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->sharding.centroids.has_value());
  EXPECT_NE(next->sharding.centroids->data, config_.sharding.centroids->data) << "the centroids were not trained anew";
  ExpectSearchEqualsModel(t_, model, /*filtered=*/true, 4);

  // The next update (retrain or not) takes the trained centroids as the base's.
  UpdateOptions compact;
  compact.retrain = true;
  compact.compact = true;
  auto both = UpdateSharded(*next, &b.batch, {}, compact, t_.store);
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("compact cannot take effect with retrain"));
  auto phased = UpdateRun::Begin(*next, {.retrain = true}, "test", t_.store);
  ASSERT_FALSE(phased.ok());
  EXPECT_THAT(phased.status().message(), HasSubstr("retrain cannot take effect in a distributed update"));

  const Target lsh = Folder("lsh");
  WriteConfig lsh_config = ConfigFor(Strategy::kLsh, lsh.prefix, {}, tmp_ / "lsh");
  const Batch all(rows_, Strategy::kLsh);
  ASSERT_TRUE(WriteSharded(lsh_config, all.batch, lsh.store).ok());
  auto refused = UpdateSharded(lsh_config, &b.batch, {}, {.retrain = true}, lsh.store);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("is sharded by lsh, whose routing is not trained"));
}

TEST_F(UpdateErrorsTest, AMissingDeleteIsCountedOrWithStrictFatal) {
  auto strict = UpdateSharded(config_, nullptr, {RecordId(int64_t{7}), RecordId(int64_t{999})},
                              {.base = "current", .strict = true}, t_.store);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(strict.status().message(), HasSubstr("999"));
  auto counted = UpdateSharded(config_, nullptr, {RecordId(int64_t{7}), RecordId(int64_t{999})}, {}, t_.store);
  ASSERT_TRUE(counted.ok()) << counted.status().ToString();
  EXPECT_EQ(counted->report.deleted, 1);
  EXPECT_EQ(counted->report.missing_deletes, 1);
  EXPECT_EQ(counted->build.total_vectors, 39);
}

TEST_F(UpdateErrorsTest, ABaseThatIsNotCurrentIsAPublishConflict) {
  const Batch b({rows_[3]}, Strategy::kCluster);
  ASSERT_TRUE(UpdateSharded(config_, &b.batch, {}, {}, t_.store).ok());
  auto stale = UpdateSharded(config_, &b.batch, {}, {.base = base_run_}, t_.store);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  EXPECT_EQ(stale.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_THAT(stale.status().message(), HasSubstr("PublishConflictError"));
  // Another snapshot published while an update runs: its publish is refused the same way.
  std::atomic<bool> raced{false};
  Arm([&](std::string_view point) {
    if (point == testing::kFaultAfterShardUpload && !raced.exchange(true)) {
      const Batch other({rows_[4]}, Strategy::kCluster);
      EXPECT_TRUE(WriteSharded(config_, other.batch, t_.store).ok());
    }
    return Status::OK();
  });
  auto racing = UpdateSharded(config_, &b.batch, {}, {}, t_.store);
  Arm(nullptr);
  ASSERT_FALSE(racing.ok());
  EXPECT_EQ(racing.status().kind(), ErrorKind::kPublishConflict);
}

TEST_F(UpdateErrorsTest, WithRebaseAnUpdateIsRedoneOnTheCurrentSnapshot) {
  const Batch b({rows_[3]}, Strategy::kCluster);
  auto first = UpdateSharded(config_, &b.batch, {RecordId(int64_t{5})}, {}, t_.store);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A stale base: redone on the current snapshot (id 5 already gone there: a missing delete).
  std::mt19937_64 rng(9);
  const Batch again({RandomRow(3, rng)}, Strategy::kCluster);
  auto stale = UpdateSharded(config_, &again.batch, {RecordId(int64_t{5}), RecordId(int64_t{6})},
                             {.base = base_run_, .rebase = true}, t_.store);
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  EXPECT_EQ(stale->report.rebased, 1);
  EXPECT_EQ(stale->report.base_run_id, first->build.run_id);
  EXPECT_EQ(stale->report.replaced, 1);
  EXPECT_EQ(stale->report.deleted, 1);
  EXPECT_EQ(stale->report.missing_deletes, 1);
  EXPECT_EQ(stale->build.total_vectors, 38);
  // Another snapshot published while the update runs: the update is redone on it.
  std::atomic<bool> raced{false};
  Arm([&](std::string_view point) {
    if (point == testing::kFaultAfterShardUpload && !raced.exchange(true)) {
      const Batch other({rows_[4], rows_[7]}, Strategy::kCluster);
      EXPECT_TRUE(WriteSharded(config_, other.batch, t_.store).ok());
    }
    return Status::OK();
  });
  auto racing = UpdateSharded(config_, &b.batch, {RecordId(int64_t{7})}, {.rebase = true}, t_.store);
  Arm(nullptr);
  ASSERT_TRUE(racing.ok()) << racing.status().ToString();
  EXPECT_EQ(racing->report.rebased, 1);
  EXPECT_EQ(racing->report.deleted, 1);
  EXPECT_EQ(racing->build.total_vectors, 2) << "the raced snapshot's rows 4 and 7, less 7, plus the upsert of 3";
  ReaderOptions o;
  o.store = t_.prefix;
  o.cache_dir = (tmp_ / "rebase-cache").string();
  auto reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SearchOptions so;
  so.shard_ids = std::vector<int64_t>{0, 1, 2, 3};
  auto hits = (*reader)->Search(rows_[3].vector, 10, so);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  std::set<int64_t> ids;
  for (const SearchHit& h : hits->results) ids.insert(std::get<int64_t>(h.id));
  EXPECT_EQ(ids, (std::set<int64_t>{3, 4}));
  // The raced attempt's uploads are gone: the shard folders are the 5 published runs' (the build, 3
  // updates, the raced write).
  auto listed = t_.store->List("shards/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::set<std::string> runs;
  for (const ObjectInfo& object : listed->objects) runs.insert(object.key.substr(0, object.key.find('/', 7)));
  EXPECT_EQ(runs.size(), 5u) << fmt::format("{}", fmt::join(runs, ", "));
  // With last-writer-wins there is no conflict to rebase on: refused, naming both.
  WriteConfig lww = config_;
  lww.publish_policy = PublishPolicy::kLastWriterWins;
  auto both = UpdateSharded(lww, &b.batch, {}, {.rebase = true}, t_.store);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(both.status().message(), HasSubstr("rebase"));
  EXPECT_THAT(both.status().message(), HasSubstr("last-writer-wins"));
}

TEST_F(UpdateErrorsTest, TheWriteRateLimiterPacesTheRebuiltShards) {
  struct Counting final : RateLimiter {
    Status Acquire(int64_t tokens) override {
      taken += tokens;
      return Status::OK();
    }
    std::atomic<int64_t> taken{0};
  };
  auto limiter = std::make_shared<Counting>();
  WriteConfig paced = config_;
  paced.write_rate_limiter = limiter;
  paced.batch_size = 4;
  const Batch b({rows_[0]}, Strategy::kCluster);
  auto r = UpdateSharded(paced, &b.batch, {}, UpdateOptions{.compact = true}, t_.store);  // rebuilt whole
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->report.rebuilt.size(), 1u);
  EXPECT_TRUE(r->report.edited_in_place.empty());
  const int64_t rows = r->report.rebuilt[0].rows;
  EXPECT_EQ(limiter->taken.load(), (rows + 3) / 4) << "one token before each batch_size rows of the rebuilt shard";
}

// ---- The same update in phases (the distributed writers' path) ------------------------------------

// Runs the update as a distributed driver and its tasks do: Begin, route with the base's routing,
// Plan, one RebuildUpdateShard per planned shard (with only that shard's rows), Finish.
Result<UpdateResult> PhasedUpdate(const WriteConfig& config, const std::vector<Row>& upserts,
                                  const std::vector<RecordId>& deletes, const UpdateOptions& options,
                                  std::shared_ptr<ObjectStore> store) {
  ASSIGN_OR_RETURN(std::unique_ptr<UpdateRun> run, UpdateRun::Begin(config, options, "vector-test-update", store));
  ASSIGN_OR_RETURN(std::unique_ptr<RowRouter> router, RowRouter::Create(run->routing()));
  const Batch all(upserts, run->routing().strategy);
  ASSIGN_OR_RETURN(std::vector<int64_t> dbs, router->Route(all.batch));
  std::vector<UpsertRoute> routes;
  for (size_t i = 0; i < upserts.size(); ++i) routes.push_back(UpsertRoute{RecordId(upserts[i].id), dbs[i]});
  ASSIGN_OR_RETURN(UpdatePlan plan, run->Plan(routes, deletes));
  std::vector<UpdateShardResult> results;
  for (const UpdateShardPlan& shard : plan.shards) {
    std::vector<Row> mine;
    for (size_t i = 0; i < upserts.size(); ++i) {
      if (dbs[i] == shard.db_id) mine.push_back(upserts[i]);
    }
    const Batch batch(mine, Strategy::kLsh);  // routed already: no shard ids or routing contexts
    ASSIGN_OR_RETURN(UpdateShardResult r, RebuildUpdateShard(plan, shard.db_id, mine.empty() ? nullptr : &batch.batch, store));
    results.push_back(std::move(r));
  }
  return run->Finish(std::move(results));
}

class UpdatePhasesTest : public UpdateTestBase {
 protected:
  // The same base in two folders: one updated in phases, the other by UpdateSharded.
  void SetUp() override {
    std::mt19937_64 rng(11);
    for (int64_t id = 0; id < 60; ++id) rows_.push_back(RandomRow(id, rng));
    for (const char* name : {"phased", "single"}) {
      targets_.push_back(Folder(name));
      configs_.push_back(ConfigFor(Strategy::kCluster, targets_.back().prefix, {}, tmp_ / name));
      if (configs_.size() == 1) configs_.back().max_parallel_shards = 0;  // refused by a phased update
      const Batch b(rows_, Strategy::kCluster);
      ASSERT_TRUE(WriteSharded(configs_.back(), b.batch, targets_.back().store).ok());
    }
  }
  std::vector<Target> targets_;
  std::vector<WriteConfig> configs_;
  std::vector<Row> rows_;
};

TEST_F(UpdatePhasesTest, PublishesWhatUpdateShardedPublishesWithTheSameReport) {
  std::mt19937_64 rng(12);
  std::vector<Row> upserts = {RandomRow(3, rng), RandomRow(17, rng), RandomRow(100, rng), RandomRow(101, rng)};
  const std::vector<RecordId> deletes = {RecordId(int64_t{5}), RecordId(int64_t{40}), RecordId(int64_t{5}),
                                         RecordId(int64_t{777})};
  auto phased = PhasedUpdate(configs_[0], upserts, deletes, {}, targets_[0].store);
  ASSERT_TRUE(phased.ok()) << phased.status().ToString();
  const Batch b(upserts, Strategy::kCluster);
  auto single = UpdateSharded(configs_[1], &b.batch, deletes, {}, targets_[1].store);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  const UpdateReport &p = phased->report, &s = single->report;
  EXPECT_EQ(std::tie(p.upserted, p.replaced, p.deleted, p.missing_deletes, p.shared_shards, p.used_id_index),
            std::tie(s.upserted, s.replaced, s.deleted, s.missing_deletes, s.shared_shards, s.used_id_index));
  EXPECT_EQ(std::tie(p.replaced, p.deleted, p.missing_deletes), std::make_tuple(int64_t{2}, int64_t{2}, int64_t{1}));
  ASSERT_EQ(p.rebuilt.size(), s.rebuilt.size());
  for (size_t i = 0; i < p.rebuilt.size(); ++i) {
    EXPECT_EQ(std::tie(p.rebuilt[i].db_id, p.rebuilt[i].base_rows, p.rebuilt[i].rows),
              std::tie(s.rebuilt[i].db_id, s.rebuilt[i].base_rows, s.rebuilt[i].rows));
  }
  EXPECT_DOUBLE_EQ(p.imbalance, s.imbalance);
  ASSERT_TRUE(p.upsert_centroid_distance && s.upsert_centroid_distance);
  EXPECT_DOUBLE_EQ(*p.upsert_centroid_distance, *s.upsert_centroid_distance);
  EXPECT_DOUBLE_EQ(*p.base_centroid_distance, *s.base_centroid_distance);
  EXPECT_EQ(phased->build.total_vectors, single->build.total_vectors);
  ASSERT_EQ(phased->build.shards.size(), single->build.shards.size());
  for (size_t i = 0; i < phased->build.shards.size(); ++i) {
    EXPECT_EQ(phased->build.shards[i].row_count, single->build.shards[i].row_count);
    EXPECT_EQ(phased->build.shards[i].digest, single->build.shards[i].digest) << "db_id " << phased->build.shards[i].db_id;
  }
  // The next update of each finds the changed ids through the id index the phases wrote.
  auto next = PhasedUpdate(configs_[0], {}, {RecordId(int64_t{100})}, {.base = "current", .strict = true}, targets_[0].store);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(next->report.used_id_index);
  EXPECT_EQ(next->report.deleted, 1);
}

TEST_F(UpdatePhasesTest, TasksAndFinishRefuseWhatThePlanDidNotSay) {
  const WriteConfig& config = configs_[0];
  std::shared_ptr<ObjectStore> store = targets_[0].store;
  WriteConfig parallel = config;
  parallel.max_parallel_shards = 2;
  auto refused = UpdateRun::Begin(parallel, {}, "vector-test-update", store);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("max_parallel_shards=2 cannot take effect"));

  auto run = UpdateRun::Begin(config, {}, "vector-test-update", store);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  auto plan = (*run)->Plan({}, {RecordId(int64_t{7})});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->shards.size(), 1u);
  const int64_t db = plan->shards[0].db_id;
  auto other = RebuildUpdateShard(*plan, (db + 1) % kDbs, nullptr, store);
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.status().message(), HasSubstr(fmt::format("db_id {} is not a shard the update plan rebuilds", (db + 1) % kDbs)));
  const Batch stray({rows_[0]}, Strategy::kLsh);
  auto unplanned = RebuildUpdateShard(*plan, db, &stray.batch, store);
  ASSERT_FALSE(unplanned.ok());
  EXPECT_THAT(unplanned.status().message(), HasSubstr("received 1 upserted rows but the plan routed 0 there"));
  auto missing = (*run)->Finish({});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(fmt::format("no shard result for db_id {}", db)));
  // The failed Finish ended the run: its uploads are gone and the base is still current.
  auto listed = store->List(fmt::format("shards/run_id={}/", (*run)->run_id()));
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->objects.empty());
}

// ---- The id index artifact -----------------------------------------------------------------------

TEST(IdIndexTest, EncodesParsesAndFindsTheShardsOfAnId) {
  const uint64_t a = IdIndexHash(RecordId(int64_t{7})), b = IdIndexHash(RecordId(std::string("7")));
  EXPECT_NE(a, b);
  const IdIndex index({{a, 2}, {b, 0}, {a, 1}});
  const std::string bytes = index.bytes();
  EXPECT_EQ(bytes.size(), 16u + 3 * 12);
  EXPECT_EQ(index.size(), 3);
  EXPECT_EQ(index.entry(0), (IdIndexEntry{std::min(a, b), a < b ? 1u : 0u}));
  auto parsed = IdIndex::Parse(bytes, 3, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->ShardsOf(a), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(parsed->ShardsOf(b), (std::vector<int64_t>{0}));
  EXPECT_TRUE(parsed->ShardsOf(a + 1).empty());
  EXPECT_EQ(IdIndex::Parse(bytes, 2, "test").status().code(), StatusCode::kCorruption);  // db_id 2 of 2
  EXPECT_EQ(IdIndex::Parse(bytes.substr(0, bytes.size() - 1), 3, "test").status().code(), StatusCode::kCorruption);
  std::string unsorted = bytes;  // the first and last hashes (a and b) swapped
  const std::string first_hash = unsorted.substr(16, 8), last_hash = unsorted.substr(32, 8);
  unsorted.replace(16, 8, last_hash);
  unsorted.replace(32, 8, first_hash);
  EXPECT_EQ(IdIndex::Parse(unsorted, 3, "test").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(IdIndex::Parse("SVIDX", 3, "test").status().code(), StatusCode::kCorruption);
}

// Entries in any order come out sorted: random ones, and an update's (the base's sorted entries, then
// its new rows' in any order, some equal to a base entry and some below the first).
TEST(IdIndexTest, SortsEntriesInAnyOrder) {
  std::mt19937_64 rng(5);
  std::vector<IdIndexEntry> random, update;
  for (int i = 0; i < 2000; ++i) random.push_back(IdIndexEntry{rng() % 500, static_cast<uint32_t>(rng() % 4)});
  for (int i = 0; i < 2000; ++i) update.push_back(IdIndexEntry{100 + rng() % 1000, static_cast<uint32_t>(rng() % 4)});
  std::sort(update.begin(), update.end());
  for (int i = 0; i < 300; ++i) update.push_back(IdIndexEntry{rng() % 1200, static_cast<uint32_t>(rng() % 4)});
  update.push_back(update.front());
  for (std::vector<IdIndexEntry>* entries : {&random, &update}) {
    std::vector<IdIndexEntry> want = *entries;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(IdIndex(*entries).entries(), want);
  }
}

// An update's next index, merged from the base's artifact: exactly the kept base entries and the
// added ones, sorted (an added entry equal to a kept one, below the first, past the last), in the
// bytes IdIndex encodes the same entries to; and it finds every entry's shards.
TEST(IdIndexTest, MergedKeepsTheFlaggedBaseEntriesAndSortsInTheAddedOnes) {
  std::mt19937_64 rng(9);
  for (const int base_rows : {0, 1, 3000}) {
    SCOPED_TRACE(base_rows);
    std::vector<IdIndexEntry> base_entries;
    for (int i = 0; i < base_rows; ++i) base_entries.push_back(IdIndexEntry{100 + rng() % 5000, static_cast<uint32_t>(rng() % 6)});
    const IdIndex base(base_entries);
    std::vector<bool> keep;
    std::vector<IdIndexEntry> want;
    for (const IdIndexEntry& e : base.entries()) {
      keep.push_back(rng() % 4 != 0);
      if (keep.back()) want.push_back(e);
    }
    std::vector<IdIndexEntry> added;
    for (int i = 0; i < 400; ++i) added.push_back(IdIndexEntry{rng() % 5200, static_cast<uint32_t>(rng() % 6)});
    if (!want.empty()) added.push_back(want[want.size() / 2]);
    added.push_back(IdIndexEntry{0, 5});
    added.push_back(IdIndexEntry{~uint64_t{0}, 0});
    want.insert(want.end(), added.begin(), added.end());
    std::sort(want.begin(), want.end());

    const IdIndex merged = IdIndex::Merged(base, keep, added);
    EXPECT_EQ(merged.entries(), want);
    EXPECT_EQ(merged.bytes(), IdIndex(want).bytes());
    auto parsed = IdIndex::Parse(merged.bytes(), 6, "merged");
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    for (const IdIndexEntry& e : want) {
      std::vector<int64_t> shards = parsed->ShardsOf(e.hash);
      EXPECT_TRUE(std::find(shards.begin(), shards.end(), e.db_id) != shards.end()) << e.hash;
      EXPECT_TRUE(std::is_sorted(shards.begin(), shards.end()));
    }
  }
}

}  // namespace
}  // namespace shardvec
