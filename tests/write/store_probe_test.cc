// Fail fast: a store the writer cannot write to is refused before any sampling, training or build
// (no progress phase ever starts), with an error naming the store; on a folder and on the S3 test
// server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "shardvec/writer.h"
#include "support/forwarding_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDim = 8;

// A CLUSTER build that trains centroids, recording every progress phase it reports.
struct ProbedWrite {
  Result<BuildResult> result = Status::Internal("not run");
  std::vector<std::string> phases;
};

ProbedWrite WriteTrained(std::shared_ptr<ObjectStore> store, const std::filesystem::path& local_root) {
  ProbedWrite out;
  std::mutex mu;
  WriteConfig c;
  c.store = store->PrefixUrl();
  c.local_root = local_root.string();
  c.index.dim = kDim;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kCluster;
  c.sharding.num_dbs = 3;
  c.sharding.train_centroids = true;
  c.on_progress = [&](const WriteProgress& p) {
    std::lock_guard<std::mutex> lock(mu);
    out.phases.push_back(p.phase);
  };
  VectorRecordSource source(testing::MakeRecords(testing::RandomMatrix(300, kDim, 3), false));
  out.result = WriteSharded(c, source, store);
  return out;
}

// Refuses the put of the writer's probe object, as a store whose credentials may not write would.
class RefuseProbe : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status Put(std::string_view key, std::string_view data) override {
    if (key.find("_WRITE_PROBE") != std::string_view::npos) return Status::PermissionDenied("access denied (test)");
    return ForwardingStore::Put(key, data);
  }
};

class StoreProbeTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
};

TEST_F(StoreProbeTest, AGoodStoreBuildsAndTheProbeLeavesNothing) {
  auto store = OpenStore((tmp_ / "store").string());
  ASSERT_TRUE(store.ok());
  ProbedWrite w = WriteTrained(*store, tmp_ / "build");
  ASSERT_TRUE(w.result.ok()) << w.result.status().ToString();
  EXPECT_THAT(w.phases, ::testing::Contains("train"));
  for (const std::string& file : testing::ListFiles(tmp_ / "store")) EXPECT_THAT(file, ::testing::Not(HasSubstr("PROBE")));
}

TEST_F(StoreProbeTest, ARefusedProbeStopsTheBuildBeforeTraining) {
  auto inner = OpenStore((tmp_ / "store").string());
  ASSERT_TRUE(inner.ok());
  auto store = std::make_shared<RefuseProbe>(*inner);
  ProbedWrite w = WriteTrained(store, tmp_ / "build");
  ASSERT_FALSE(w.result.ok());
  EXPECT_EQ(w.result.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(w.result.status().message(), HasSubstr("store '" + store->PrefixUrl() + "' cannot be written"));
  EXPECT_THAT(w.result.status().message(), HasSubstr("_WRITE_PROBE"));
  EXPECT_EQ(w.phases, std::vector<std::string>{});  // no sample, train, route or build phase ran
}

TEST_F(StoreProbeTest, AFolderThatCannotBeMadeStopsTheBuildBeforeTraining) {
  testing::WriteText(tmp_ / "file", "a file where the store's folder would go");
  auto store = OpenStore((tmp_ / "file" / "store").string());
  ASSERT_TRUE(store.ok());
  ProbedWrite w = WriteTrained(*store, tmp_ / "build");
  ASSERT_FALSE(w.result.ok());
  EXPECT_THAT(w.result.status().message(), HasSubstr("store '" + (*store)->PrefixUrl() + "' cannot be written"));
  EXPECT_EQ(w.phases, std::vector<std::string>{});
}

// The S3 test server's suite (run with the server: --gtest_filter='S3*').
class S3StoreProbeTest : public StoreProbeTest {};

TEST_F(S3StoreProbeTest, WrongCredentialsStopTheBuildBeforeTraining) {
  StoreOptions options = testing::S3TestOptions();
  options.secret_access_key = "not-the-secret";
  auto store = testing::OpenS3TestStore(testing::UniqueS3Prefix("probe"), nullptr, options);
  ASSERT_TRUE(store);
  ProbedWrite w = WriteTrained(store, tmp_ / "build");
  ASSERT_FALSE(w.result.ok());
  EXPECT_EQ(w.result.status().code(), StatusCode::kPermissionDenied) << w.result.status().ToString();
  EXPECT_THAT(w.result.status().message(), HasSubstr("store '" + store->PrefixUrl() + "' cannot be written"));
  EXPECT_EQ(w.phases, std::vector<std::string>{});
}

TEST_F(S3StoreProbeTest, ADeniedProbeStopsTheBuildBeforeTraining) {
  auto transport = std::make_shared<testing::FaultyTransport>();
  transport->AddRule({.method = "PUT", .url_contains = "_WRITE_PROBE", .action = testing::FaultAction::kDeny403, .times = -1});
  auto store = testing::OpenS3TestStore(testing::UniqueS3Prefix("probe"), transport);
  ASSERT_TRUE(store);
  ProbedWrite w = WriteTrained(store, tmp_ / "build");
  ASSERT_FALSE(w.result.ok());
  EXPECT_EQ(w.result.status().code(), StatusCode::kPermissionDenied) << w.result.status().ToString();
  EXPECT_THAT(w.result.status().message(), HasSubstr("_WRITE_PROBE"));
  EXPECT_EQ(w.phases, std::vector<std::string>{});
}

}  // namespace
}  // namespace shardvec
