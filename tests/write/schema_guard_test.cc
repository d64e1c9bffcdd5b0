// Guarded publishes: a snapshot of another dim or metric than the current one is refused unless
// allow_schema_change; a live reader refuses to refresh onto one, keeps serving, and says so.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <mutex>

#include "shardvec/distributed.h"
#include "shardvec/metrics.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::HasSubstr;

class RecordingSink : public MetricsSink {
 public:
  void Emit(std::string_view event, const MetricPayload& payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    events.emplace_back(std::string(event), payload);
  }
  std::mutex mu_;
  std::vector<std::pair<std::string, MetricPayload>> events;
};

class SchemaGuardTest : public ::testing::Test {
 protected:
  Result<BuildResult> Write(int64_t dim, Metric metric, bool allow = false, bool string_ids = false) {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = dim;
    c.index.metric = metric;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 2;
    c.allow_schema_change = allow;
    data_ = testing::RandomMatrix(50, dim, static_cast<uint64_t>(dim));
    VectorRecordSource source(testing::MakeRecords(data_, string_ids));
    return WriteSharded(c, source);
  }
  std::string Current() { return testing::ReadText(tmp_ / "store" / "_CURRENT"); }
  Matrix data_;
  testing::TempDir tmp_;
};

TEST_F(SchemaGuardTest, AnotherDimOrMetricIsRefusedUnlessAllowed) {
  ASSERT_TRUE(Write(8, Metric::kCosine).ok());
  const std::string before = Current();
  auto refused = Write(16, Metric::kL2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kConflict);
  EXPECT_EQ(refused.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_THAT(refused.status().message(), HasSubstr("dim 16 (current: 8) and metric l2 (current: cosine)"));
  EXPECT_THAT(refused.status().message(), HasSubstr("allow_schema_change"));
  EXPECT_EQ(Current(), before);  // nothing published
  auto metric_only = Write(8, Metric::kL2);
  ASSERT_FALSE(metric_only.ok());
  EXPECT_THAT(metric_only.status().message(), HasSubstr("metric l2 (current: cosine)"));
  EXPECT_THAT(metric_only.status().message(), ::testing::Not(HasSubstr("dim")));

  // The same schema publishes as before; another one with allow_schema_change too.
  ASSERT_TRUE(Write(8, Metric::kCosine).ok());
  auto allowed = Write(16, Metric::kL2, /*allow=*/true);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_THAT(Current(), HasSubstr(allowed->run_id));
}

// The id type is recorded (custom.shardvec.id_type) and guarded too: readers' callers would get ids
// of another type. Manifests that record none (other writers') are not compared.
TEST_F(SchemaGuardTest, AnotherIdTypeIsRefusedUnlessAllowed) {
  ASSERT_TRUE(Write(8, Metric::kCosine).ok());
  const std::string before = Current();
  auto refused = Write(8, Metric::kCosine, /*allow=*/false, /*string_ids=*/true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_THAT(refused.status().message(), HasSubstr("id type str (current: int)"));
  EXPECT_THAT(refused.status().message(), ::testing::Not(HasSubstr("dim")));
  EXPECT_EQ(Current(), before);
  auto allowed = Write(8, Metric::kCosine, /*allow=*/true, /*string_ids=*/true);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  sqlite3* db = testing::OpenWithVec0(nlohmann::json::parse(Current())["manifest_ref"].get<std::string>().substr(7));
  const auto custom = nlohmann::json::parse(testing::QueryRows(db, "SELECT custom FROM build_meta").at(0).at(0));
  sqlite3_close(db);
  EXPECT_EQ(custom["shardvec"]["id_type"], "str");
}

// The check runs first too: a refused change claims, samples, trains and uploads nothing (the
// writer's and a distributed driver's), so it fails before the work, not after it.
TEST_F(SchemaGuardTest, ARefusedChangeFailsBeforeAnythingIsWritten) {
  ASSERT_TRUE(Write(8, Metric::kCosine).ok());
  const std::vector<std::string> before = testing::ListFiles(tmp_ / "store");
  auto sink = std::make_shared<RecordingSink>();
  WriteConfig c;
  c.store = (tmp_ / "store").string();
  c.local_root = (tmp_ / "build").string();
  c.index.dim = 16;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kCluster;
  c.sharding.num_dbs = 2;
  c.sharding.train_centroids = true;
  c.metrics = sink;
  data_ = testing::RandomMatrix(50, 16, 16);
  VectorRecordSource source(testing::MakeRecords(data_, false));
  auto refused = WriteSharded(c, source);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_THAT(refused.status().message(), HasSubstr("dim 16 (current: 8)"));
  EXPECT_TRUE(sink->events.empty());  // not even vector.write.started
  auto distributed = DistributedWrite::Begin(c, "vector-dask", nullptr);
  ASSERT_FALSE(distributed.ok());
  EXPECT_EQ(distributed.status().kind(), ErrorKind::kPublishConflict);
  EXPECT_EQ(testing::ListFiles(tmp_ / "store"), before);
}

TEST_F(SchemaGuardTest, ALiveReaderRefusesToRefreshOntoAnotherSchemaAndKeepsServing) {
  ASSERT_TRUE(Write(8, Metric::kCosine).ok());
  const Matrix old_data = data_;
  auto sink = std::make_shared<RecordingSink>();
  ReaderOptions o;
  o.store = (tmp_ / "store").string();
  o.cache_dir = (tmp_ / "cache").string();
  o.metrics = sink;
  auto reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto next = Write(16, Metric::kL2, /*allow=*/true);
  ASSERT_TRUE(next.ok());

  for (int attempt = 0; attempt < 2; ++attempt) {
    auto refreshed = (*reader)->Refresh();
    ASSERT_FALSE(refreshed.ok());
    EXPECT_EQ(refreshed.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(refreshed.status().message(),
                HasSubstr("has dim 16 and metric l2, but this reader serves dim 8 and metric cosine"));
  }
  EXPECT_EQ((*reader)->Info().dim, 8);
  SearchOptions all;
  all.shard_ids = std::vector<int64_t>{0, 1};
  auto r = (*reader)->Search(std::span<const float>(old_data.row(3), 8), 1, all);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->results.at(0).id, RecordId(int64_t{9}));  // MakeRecords ids are 3 x row

  int refused_events = 0;
  for (const auto& [event, payload] : sink->events) {
    if (event != metric_events::kReaderRefreshRefused) continue;
    ++refused_events;
    EXPECT_THAT(std::get<std::string>(payload.at("manifest_ref")), HasSubstr(next->run_id));
    EXPECT_THAT(std::get<std::string>(payload.at("reason")), HasSubstr("dim 16"));
  }
  EXPECT_EQ(refused_events, 2);
}

}  // namespace
}  // namespace shardvec
