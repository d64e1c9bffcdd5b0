// CEL-routed snapshots end to end: the writer puts every record in its expression's shard (checked
// with plain SQLite and an independent xxh3), the manifest carries the CEL fields, and a query's
// routing context searches exactly that shard with exact top-k.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "format/current_pointer.h"
#include "format/manifest.h"
#include "shardvec/distributed.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDim = 8;

fs::path PathFromUrl(const std::string& url) { return fs::path(url.substr(std::string("file://").size())); }

// Independent of the CEL engine: xxh3_64 (seed 0) of the canonical bytes.
uint64_t HashString(const std::string& s) { return XXH3_64bits(s.data(), s.size()); }
uint64_t HashInt(int64_t v) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
  return XXH3_64bits(bytes, 8);
}

class CelSnapshotTest : public ::testing::Test {
 protected:
  WriteConfig Config(std::string expr, std::map<std::string, std::string> columns) {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kCel;
    c.sharding.cel_expr = std::move(expr);
    c.sharding.cel_columns = std::move(columns);
    return c;
  }
  // Records with random vectors; context(i) gives each one's routing context.
  template <typename ContextFn>
  std::vector<Record> Records(int64_t n, ContextFn context) {
    data_ = testing::RandomMatrix(n, kDim, 7);
    std::vector<Record> out;
    for (int64_t i = 0; i < n; ++i) {
      Record r;
      r.id = i;
      r.vector.assign(data_.row(i), data_.row(i) + kDim);
      r.routing_context = context(i);
      out.push_back(std::move(r));
    }
    return out;
  }
  Manifest CurrentManifest() {
    auto ptr = ParseCurrentPointer(testing::ReadText(tmp_ / "store" / "_CURRENT"));
    EXPECT_TRUE(ptr.ok()) << ptr.status().ToString();
    auto m = ParseManifest(testing::ReadText(PathFromUrl(ptr->manifest_ref)));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return *m;
  }
  // db_id -> ids stored in that shard, read with plain SQLite.
  std::map<int64_t, std::set<int64_t>> StoredIds() {
    std::map<int64_t, std::set<int64_t>> out;
    for (const ManifestShard& s : CurrentManifest().shards) {
      sqlite3* db = testing::OpenWithVec0(PathFromUrl(*s.db_url) / "shard.db");
      for (auto& row : testing::QueryRows(db, "SELECT json_extract(original_id, '$.v') FROM vec_id_map")) {
        out[s.db_id].insert(std::stoll(row[0]));
      }
      sqlite3_close(db);
    }
    return out;
  }
  std::unique_ptr<ShardedVectorReader> OpenReader() {
    ReaderOptions o;
    o.store = (tmp_ / "store").string();
    o.cache_dir = (tmp_ / "cache").string();
    auto reader = ShardedVectorReader::Open(o);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return std::move(reader).value();
  }
  // Every query's top-10 within `shard_rows` equals an exact scan of those rows.
  void ExpectExactWithinShard(ShardedVectorReader& reader, const RoutingContext& context,
                              const std::vector<int64_t>& shard_rows) {
    Matrix subset{static_cast<int64_t>(shard_rows.size()), kDim, {}};
    for (int64_t row : shard_rows) subset.data.insert(subset.data.end(), data_.row(row), data_.row(row) + kDim);
    const Matrix queries = testing::RandomMatrix(20, kDim, 99);
    SearchOptions options;
    options.routing_context = context;
    for (int64_t q = 0; q < queries.rows; ++q) {
      auto response = reader.Search(std::span<const float>(queries.row(q), kDim), 10, options);
      ASSERT_TRUE(response.ok()) << response.status().ToString();
      EXPECT_EQ(response->num_shards_queried, 1);
      const auto truth = testing::BruteForce(subset, queries.row(q), Metric::kL2, 10);
      ASSERT_EQ(response->results.size(), truth.size());
      for (size_t k = 0; k < truth.size(); ++k) {
        EXPECT_EQ(std::get<int64_t>(response->results[k].id), shard_rows[static_cast<size_t>(truth[k].second)]);
      }
    }
  }

  testing::TempDir tmp_;
  Matrix data_;
};

TEST_F(CelSnapshotTest, CategoricalRegionsLandInTheirShardAndQueriesSearchOnlyIt) {
  const std::vector<std::string> regions = {"eu", "us", "apac"};
  WriteConfig c = Config("region", {{"region", "string"}});
  c.sharding.routing_values = std::vector<RoutingValue>{"eu", "us", "apac"};
  auto region_of = [&](int64_t i) { return regions[static_cast<size_t>((i * 7) % 5 % 3)]; };
  VectorRecordSource source(Records(600, [&](int64_t i) { return RoutingContext{{"region", region_of(i)}}; }));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->num_dbs, 3);

  const Manifest m = CurrentManifest();
  const auto& v = m.custom["vector"];
  EXPECT_EQ(v["sharding_strategy"], "cel");
  EXPECT_EQ(v["cel_expr"], "region");
  EXPECT_EQ(v["cel_columns"], nlohmann::json({{"region", "string"}}));
  EXPECT_EQ(v["routing_values"], nlohmann::json({"eu", "us", "apac"}));

  const auto stored = StoredIds();
  std::map<int64_t, std::vector<int64_t>> expected;
  for (int64_t i = 0; i < 600; ++i) {
    const auto index = std::find(regions.begin(), regions.end(), region_of(i)) - regions.begin();
    expected[index].push_back(i);
  }
  for (const auto& [db, rows] : expected) {
    EXPECT_EQ(stored.at(db), std::set<int64_t>(rows.begin(), rows.end())) << "db " << db;
  }

  auto reader = OpenReader();
  const SnapshotInfo info = reader->Info();
  EXPECT_EQ(info.cel_expr, "region");
  ASSERT_TRUE(info.routing_values.has_value());
  EXPECT_EQ(info.routing_values->size(), 3u);
  for (size_t db = 0; db < regions.size(); ++db) {
    ExpectExactWithinShard(*reader, {{"region", regions[db]}}, expected[static_cast<int64_t>(db)]);
  }
  const std::vector<float> q(kDim, 0.5f);
  auto route = reader->Route(q, std::nullopt, RoutingContext{{"region", "apac"}});
  ASSERT_TRUE(route.ok()) << route.status().ToString();
  EXPECT_EQ(*route, std::vector<int64_t>{2});
}

// Threads share one reader (and its CEL program); each evaluates in its own scratch.
TEST_F(CelSnapshotTest, ConcurrentQueriesRouteByTheirOwnContext) {
  WriteConfig c = Config("int(shard_hash(tenant) % 4u)", {{"tenant", "string"}});
  c.sharding.num_dbs = 4;
  auto tenant_of = [](int64_t i) { return "t" + std::to_string(i % 11); };
  VectorRecordSource source(Records(300, [&](int64_t i) { return RoutingContext{{"tenant", tenant_of(i)}}; }));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  auto reader = OpenReader();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < 300; i += 4) {
        SearchOptions options;
        options.routing_context = RoutingContext{{"tenant", tenant_of(i)}};
        auto response = reader->Search(std::span<const float>(data_.row(i), kDim), 1, options);
        if (!response.ok() || response->results.empty() || std::get<int64_t>(response->results[0].id) != i) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(CelSnapshotTest, QueryErrorsAreClearNotEmptyAnswers) {
  WriteConfig c = Config("region", {{"region", "string"}});
  c.sharding.routing_values = std::vector<RoutingValue>{"eu", "us"};
  VectorRecordSource source(Records(40, [](int64_t i) { return RoutingContext{{"region", i % 2 ? "eu" : "us"}}; }));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  auto reader = OpenReader();
  const std::vector<float> q(kDim, 0.1f);

  auto no_context = reader->Search(q, 5);
  ASSERT_FALSE(no_context.ok());
  EXPECT_NE(no_context.status().message().find("requires routing_context"), std::string::npos)
      << no_context.status().message();

  SearchOptions unknown;
  unknown.routing_context = RoutingContext{{"region", "mars"}};
  auto mars = reader->Search(q, 5, unknown);
  ASSERT_FALSE(mars.ok());
  EXPECT_NE(mars.status().message().find("\"mars\" is not in routing_values"), std::string::npos)
      << mars.status().message();

  SearchOptions wrong_type;
  wrong_type.routing_context = RoutingContext{{"region", int64_t{3}}};
  auto typed = reader->Search(q, 5, wrong_type);
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("region"), std::string::npos) << typed.status().message();

  SearchOptions bypass;
  bypass.shard_ids = std::vector<int64_t>{0, 1};
  auto both = reader->Search(q, 5, bypass);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->num_shards_queried, 2);
}

TEST_F(CelSnapshotTest, HashedTenantsMatchAnIndependentXxh3) {
  WriteConfig c = Config("shard_hash(tenant) % 8u", {{"tenant", "string"}});
  c.sharding.num_dbs = 8;
  auto tenant_of = [](int64_t i) { return "tenant-" + std::to_string(i % 37) + (i % 2 ? "-é" : ""); };
  VectorRecordSource source(Records(500, [&](int64_t i) { return RoutingContext{{"tenant", tenant_of(i)}}; }));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(CurrentManifest().custom["vector"].contains("routing_values"));

  std::map<int64_t, std::vector<int64_t>> expected;
  for (int64_t i = 0; i < 500; ++i) expected[static_cast<int64_t>(HashString(tenant_of(i)) % 8)].push_back(i);
  const auto stored = StoredIds();
  ASSERT_EQ(stored.size(), expected.size());
  for (const auto& [db, rows] : expected) {
    EXPECT_EQ(stored.at(db), std::set<int64_t>(rows.begin(), rows.end())) << "db " << db;
  }
  auto reader = OpenReader();
  const std::string tenant = tenant_of(3);
  ExpectExactWithinShard(*reader, {{"tenant", tenant}}, expected[static_cast<int64_t>(HashString(tenant) % 8)]);
}

TEST_F(CelSnapshotTest, HashedIntegersIncludingNegativesAndExtremes) {
  WriteConfig c = Config("int(shard_hash(user) % 5u)", {{"user", "int"}});
  c.sharding.num_dbs = 5;
  const std::vector<int64_t> users = {0, -1, 1, INT64_MIN, INT64_MAX, -42, 1LL << 40};
  VectorRecordSource source(Records(static_cast<int64_t>(users.size()), [&](int64_t i) {
    return RoutingContext{{"user", users[static_cast<size_t>(i)]}};
  }));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  const auto stored = StoredIds();
  for (size_t i = 0; i < users.size(); ++i) {
    const auto db = static_cast<int64_t>(HashInt(users[i]) % 5);
    EXPECT_TRUE(stored.at(db).count(static_cast<int64_t>(i))) << "user " << users[i];
  }
}

TEST_F(CelSnapshotTest, BytesTokensRoundTripThroughTheManifest) {
  WriteConfig c = Config("key", {{"key", "bytes"}});
  c.sharding.routing_values = std::vector<RoutingValue>{Bytes{std::string("\x00k", 2)}, Bytes{"\xff"}};
  VectorRecordSource source(Records(30, [](int64_t i) {
    return RoutingContext{{"key", i % 3 ? Bytes{"\xff"} : Bytes{std::string("\x00k", 2)}}};
  }));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  EXPECT_EQ(CurrentManifest().custom["vector"]["routing_values"],
            nlohmann::json::parse(R"([{"__bytes_hex__": "006b"}, {"__bytes_hex__": "ff"}])"));
  auto reader = OpenReader();
  const std::vector<float> q(kDim, 0.2f);
  auto route = reader->Route(q, std::nullopt, RoutingContext{{"key", Bytes{"\xff"}}});
  ASSERT_TRUE(route.ok()) << route.status().ToString();
  EXPECT_EQ(*route, std::vector<int64_t>{1});
  EXPECT_EQ(StoredIds().at(1).size(), 20u);
}

TEST_F(CelSnapshotTest, BadRecordsFailTheWriteAndPublishNothing) {
  struct Case {
    std::string expr;
    std::optional<std::vector<RoutingValue>> tokens;
    RoutingContext bad;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"region", std::vector<RoutingValue>{"eu"}, {{"region", "mars"}}, "\"mars\" is not in routing_values"},
      {"slot", std::nullopt, {{"slot", int64_t{4}}}, "shard_id 4 outside [0, 4)"},
      {"slot", std::nullopt, {{"slot", int64_t{-1}}}, "shard_id -1 outside [0, 4)"},
      {"10 / slot - 10", std::nullopt, {{"slot", int64_t{0}}}, "divide by zero"},
      {"slot", std::nullopt, {}, "slot"},
  };
  for (const Case& tc : cases) {
    testing::TempDir dir;
    const bool categorical = tc.tokens.has_value();
    WriteConfig c = Config(tc.expr, {{categorical ? "region" : "slot", categorical ? "string" : "int"}});
    c.store = (dir.path() / "store").string();
    c.sharding.routing_values = tc.tokens;
    if (!categorical) c.sharding.num_dbs = 4;
    std::vector<Record> records = Records(10, [&](int64_t) {
      return categorical ? RoutingContext{{"region", "eu"}} : RoutingContext{{"slot", int64_t{1}}};
    });
    records[6].routing_context = tc.bad;
    VectorRecordSource source(std::move(records));
    auto result = WriteSharded(c, source);
    ASSERT_FALSE(result.ok()) << tc.expr;
    EXPECT_NE(result.status().message().find(tc.message), std::string::npos) << result.status().message();
    EXPECT_NE(result.status().message().find("id=6"), std::string::npos) << result.status().message();
    EXPECT_FALSE(fs::exists(dir.path() / "store" / "_CURRENT"));
  }
  WriteConfig c = Config("slot", {{"slot", "int"}});
  c.sharding.num_dbs = 2;
  std::vector<Record> records = Records(3, [](int64_t) { return RoutingContext{{"slot", int64_t{0}}}; });
  records[1].routing_context.reset();
  VectorRecordSource source(std::move(records));
  auto missing = WriteSharded(c, source);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("CEL sharding requires routing_context (record id=1)"),
            std::string::npos)
      << missing.status().message();
}

TEST_F(CelSnapshotTest, ConfigErrorsNameTheField) {
  struct Case {
    std::string expr;
    std::map<std::string, std::string> columns;
    std::optional<std::vector<RoutingValue>> tokens;
    std::optional<int64_t> num_dbs;
    int64_t num_probes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", {{"r", "string"}}, std::vector<RoutingValue>{"a"}, std::nullopt, 1, "requires cel_expr"},
      {"r", {}, std::vector<RoutingValue>{"a"}, std::nullopt, 1, "requires cel_columns"},
      {"r", {{"r", "text"}}, std::vector<RoutingValue>{"a"}, std::nullopt, 1, "cel_columns"},
      {"r +", {{"r", "string"}}, std::vector<RoutingValue>{"a"}, std::nullopt, 1, "cel_expr"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{"a", "b", "a"}, std::nullopt, 1, "routing_values[2] repeats"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{"a", int64_t{1}}, std::nullopt, 1, "mixes types"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{int64_t{1}}, std::nullopt, 1, "returns string"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{2.5}, std::nullopt, 1, "routing_values[0]"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{}, std::nullopt, 1, "must not be empty"},
      {"r", {{"r", "string"}}, std::vector<RoutingValue>{"a", "b"}, 3, 1, "num_dbs (3) != len(routing_values) (2)"},
      {"r", {{"r", "string"}}, std::nullopt, 4, 1, "must return an int or uint shard id"},
      {"r", {{"r", "int"}}, std::nullopt, std::nullopt, 1, "num_dbs must be provided"},
      {"r", {{"r", "int"}}, std::nullopt, 4, 2, "num_probes is only supported for CLUSTER and LSH"},
      {"shard_hash(r) % 4", {{"r", "string"}}, std::nullopt, 4, 1, "4u"},
  };
  for (const Case& tc : cases) {
    WriteConfig c = Config(tc.expr, tc.columns);
    c.sharding.routing_values = tc.tokens;
    c.sharding.num_dbs = tc.num_dbs;
    c.sharding.num_probes = tc.num_probes;
    Status st = Validate(c);
    ASSERT_FALSE(st.ok()) << tc.expr;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(tc.message), std::string::npos)
        << "expr '" << tc.expr << "': " << st.message();
  }
}

TEST_F(CelSnapshotTest, RouteRowsWithContextsMatchesTheWriter) {
  WriteConfig c = Config("tier == 'gold' ? 0 : 1 + int(shard_hash(tenant) % 3u)",
                         {{"tier", "string"}, {"tenant", "string"}});
  c.sharding.num_dbs = 4;
  auto context_of = [](int64_t i) {
    return RoutingContext{{"tier", i % 4 == 0 ? "gold" : "basic"}, {"tenant", "t" + std::to_string(i)}};
  };
  std::vector<Record> records = Records(200, context_of);
  auto plan = PlanRouting(c, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::vector<RoutingContext> contexts;
  for (int64_t i = 0; i < 200; ++i) contexts.push_back(context_of(i));
  auto routed = RouteRows(*plan, data_.data.data(), 200, nullptr, 0, contexts.data());
  ASSERT_TRUE(routed.ok()) << routed.status().ToString();

  VectorRecordSource source(std::move(records));
  ASSERT_TRUE(WriteSharded(c, source).ok());
  const auto stored = StoredIds();
  for (int64_t i = 0; i < 200; ++i) {
    EXPECT_TRUE(stored.at((*routed)[static_cast<size_t>(i)]).count(i)) << "row " << i;
    if (i % 4 == 0) EXPECT_EQ((*routed)[static_cast<size_t>(i)], 0);
  }
  auto no_contexts = RouteRows(*plan, data_.data.data(), 200, nullptr, 0, nullptr);
  ASSERT_FALSE(no_contexts.ok());
  EXPECT_NE(no_contexts.status().message().find("requires routing_context (row 0)"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
